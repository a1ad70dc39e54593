"""glosmsd: a desktop SMS/MMS daemon, its CLI, and a reference server."""

__version__ = "0.1.0"
