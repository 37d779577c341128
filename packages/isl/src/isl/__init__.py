"""In silico labeling: predict fluorescent labels from transmitted-light z-stacks (TensorFlow 2).

A re-implementation of Christiansen et al., "In silico labeling: Predicting fluorescent labels in
unlabeled images", Cell 173(3):792-803 (2018). Importing this package does not import TensorFlow.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("isl")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
