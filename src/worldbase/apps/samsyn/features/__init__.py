"""samsyn: features."""
