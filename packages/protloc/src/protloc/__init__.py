"""protloc: protein localisation images from a nucleus image and the protein's identity (OpenCell)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("protloc")
except PackageNotFoundError:  # source tree without installation
    __version__ = "0.0.0"

__all__ = ["__version__"]
