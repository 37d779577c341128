"""ImPartial (Martinez et al. 2021) in PyTorch: cells from a few scribbles plus blind-spot imputation."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("impartial")
except PackageNotFoundError:  # source tree without installation
    __version__ = "0.0.0"

__all__ = ["__version__"]
