"""Errors of protloc: catch ProtlocError for all, or the ValueError family for bad input."""


class ProtlocError(Exception):
    """Base class of every error protloc raises on purpose."""


class ConfigError(ProtlocError, ValueError):
    """A configuration value is invalid or inconsistent."""


class DataError(ProtlocError, ValueError):
    """Input data is missing, unreadable or of the wrong shape."""


class ProteinError(DataError, KeyError):
    """A protein name is unknown, or two protein lists disagree."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CheckpointError(ProtlocError, ValueError):
    """A checkpoint is missing, corrupt or belongs to another architecture or protein list."""
