"""Errors of pairedinpaint: catch PairedinpaintError for all, or the ValueError family for bad input."""


class PairedinpaintError(Exception):
    """Base class of every error pairedinpaint raises on purpose."""


class ConfigError(PairedinpaintError, ValueError):
    """A configuration value is invalid or inconsistent."""


class DataError(PairedinpaintError, ValueError):
    """Input data is missing, unreadable or of the wrong shape."""


class CheckpointError(PairedinpaintError):
    """A checkpoint is missing, corrupt or belongs to another architecture."""


class DownloadError(PairedinpaintError):
    """A download of HPA data failed or its input list is invalid."""
