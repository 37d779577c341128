"""Exceptions raised by incasem; catch :class:`IncasemError` for any of them."""


class IncasemError(Exception):
    """Base class of every error incasem raises on purpose."""


class ConfigError(IncasemError, ValueError):
    """A configuration value (or data JSON entry) is invalid or inconsistent with the data."""


class DataError(IncasemError, ValueError):
    """A zarr container, dataset, TIFF sequence or chunk is missing, unreadable or inconsistent."""


class CheckpointError(IncasemError):
    """A checkpoint is missing, unreadable, or its tensors do not match the network."""


__all__ = ["CheckpointError", "ConfigError", "DataError", "IncasemError"]
