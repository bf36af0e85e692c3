"""Built-in vision architectures."""
