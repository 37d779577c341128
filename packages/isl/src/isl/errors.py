"""Exceptions raised by isl; catch :class:`IslError` for any of them."""


class IslError(Exception):
    """Base class of every error isl raises on purpose."""


class ConfigError(IslError, ValueError):
    """A configuration value is invalid or inconsistent with the data or checkpoint."""


class DataError(IslError, ValueError):
    """An input file or directory is missing, unreadable or has the wrong shape or naming."""


class CheckpointError(IslError):
    """A checkpoint is missing, or its variables do not match the network."""


class TrainingError(IslError, RuntimeError):
    """Training cannot go on (a non-finite loss, out of memory); the message says what to try."""


class ResourceError(IslError, MemoryError):
    """TensorFlow ran out of memory; the message names the setting that lowers the footprint."""


__all__ = ["CheckpointError", "ConfigError", "DataError", "IslError", "ResourceError", "TrainingError"]
