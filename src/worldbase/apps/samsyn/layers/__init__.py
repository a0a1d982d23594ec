"""samsyn: layers."""
