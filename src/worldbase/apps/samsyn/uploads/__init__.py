"""samsyn: uploads."""
