"""The Gatekeeper: pre-trade risk, slippage-protected orders, order lifecycle and positions."""
