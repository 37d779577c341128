"""Exception types raised by cellsight_shared.

Every error derives from :class:`CellsightSharedError`, and the data errors also from ``ValueError``,
so callers can catch either family. Messages say what was expected, what was found and what to do.
"""

from __future__ import annotations

__all__ = [
    "CellsightSharedError",
    "DataFileError",
    "DownloadError",
    "InvalidArgumentError",
    "NonFiniteError",
    "ShapeMismatchError",
]


class CellsightSharedError(Exception):
    """Base class of every error raised by cellsight_shared."""


class DataFileError(CellsightSharedError, ValueError):
    """A file is missing, unreadable, corrupt, of the wrong format, or would be overwritten."""


class ShapeMismatchError(CellsightSharedError, ValueError):
    """Arrays that must agree in shape (or channel count) do not."""


class NonFiniteError(CellsightSharedError, ValueError):
    """An input array holds NaN or infinite values."""


class InvalidArgumentError(CellsightSharedError, ValueError):
    """An argument is out of range or inconsistent with another (a caller's bug or a bad config)."""


class DownloadError(CellsightSharedError, OSError):
    """A download failed: HTTP error, truncated transfer or checksum mismatch."""
