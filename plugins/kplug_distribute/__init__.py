"""Built-in distribution strategies."""
