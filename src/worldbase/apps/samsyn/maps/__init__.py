"""samsyn: maps."""
