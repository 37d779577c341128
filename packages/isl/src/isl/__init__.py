"""In silico labeling: predict fluorescent labels from transmitted-light z-stacks (TensorFlow 2).

A re-implementation of Christiansen et al., "In silico labeling: Predicting fluorescent labels in
unlabeled images", Cell 173(3):792-803 (2018). Importing this package does not import TensorFlow.
"""

import os
from importlib.metadata import PackageNotFoundError, version

# TensorFlow's CPU allocator otherwise takes every large tensor from the OS and gives it back
# (mmap/munmap and page faults each training step); its BFC allocator keeps and reuses the memory.
# Read when TensorFlow creates its CPU device, so this works if isl is imported first; an existing
# setting wins. See docs/training_profile.md for the measured effect.
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")

try:
    __version__ = version("isl")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
