"""Real servers the integration tests start for themselves."""
