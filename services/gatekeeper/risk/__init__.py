"""Pure risk primitives: rate limits, kill switch, circuit breaker, rules and sizing."""
