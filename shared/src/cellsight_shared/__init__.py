"""cellsight_shared: the framework-free library shared by the cellsight method packages.

Submodules are imported on demand (``from cellsight_shared import io``) so that importing the
package stays cheap.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cellsight-shared")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = [
    "__version__",
    "cli",
    "download",
    "errors",
    "io",
    "metrics",
    "normalize",
    "provenance",
    "synthetic",
    "testing",
    "tiling",
]
