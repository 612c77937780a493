"""gfs: a replicated POSIX filesystem."""

__version__ = "0.1.0"
