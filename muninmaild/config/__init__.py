"""Configuration: the TOML file, the environment and secrets into typed, frozen settings."""
