"""samsyn: comments."""
