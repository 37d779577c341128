"""Paired cell inpainting (Lu et al. 2019): self-supervised single-cell features, in Keras 3."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pairedinpaint")
except PackageNotFoundError:  # source tree without installation
    __version__ = "0.0.0"

__all__ = ["__version__"]
