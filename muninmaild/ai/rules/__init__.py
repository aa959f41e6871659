"""The offline `rules` backend: deterministic triage from words, dates and headers."""
