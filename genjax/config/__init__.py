"""Configuration: defaults (get_config, validate), config files, overrides."""
