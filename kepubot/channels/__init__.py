"""Channel contract, registry and the built-in channel types."""
