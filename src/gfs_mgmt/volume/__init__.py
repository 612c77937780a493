"""Volume layout and lifecycle."""
