"""Built-in supervised objectives."""
