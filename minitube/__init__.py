"""minitube: a small, self-hostable video service."""

__version__ = "0.1.0"
