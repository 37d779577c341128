"""Errors of impartial: catch ImpartialError for all, or the ValueError family for bad input."""


class ImpartialError(Exception):
    """Base class of every error impartial raises on purpose."""


class ConfigError(ImpartialError, ValueError):
    """A configuration value is invalid or inconsistent."""


class DataError(ImpartialError, ValueError):
    """Input data is missing, unreadable or of the wrong shape."""


class CheckpointError(ImpartialError, ValueError):
    """A checkpoint is missing, corrupt or belongs to another architecture or task layout."""
