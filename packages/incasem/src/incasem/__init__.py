"""ASEM organelle segmentation in FIB-SEM volumes on PyTorch, gunpowder, daisy, zarr and sacred.

A re-implementation of Gallusser et al., "Deep neural network automated segmentation of cellular
structures in volume electron microscopy", J. Cell Biol. 222(2): e202208005 (2023). Importing this
package does not import torch or gunpowder.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("incasem")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
