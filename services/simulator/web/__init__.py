"""The simulator's HTTP and WebSocket handlers (the IO shell around the pure simulation)."""
