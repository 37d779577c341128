"""The concordance network: its layer plan (no TensorFlow) and its TensorFlow 2 implementation.

``build_model(config)`` returns an :class:`IslNetwork`; ``isl.model.plan`` holds the sizes, depths,
TF1 variable names and parameter counts and can be used without building the network.
"""

from isl.model.network import IslNetwork, build_model
from isl.model.plan import (
    GRID,
    MARGIN,
    OUTPUT_PATCH_SIZE,
    PATCH_SIZE,
    count_macs,
    count_parameters,
    input_size,
    network_plan,
    output_size,
    variable_shapes,
)

__all__ = [
    "GRID",
    "MARGIN",
    "OUTPUT_PATCH_SIZE",
    "PATCH_SIZE",
    "IslNetwork",
    "build_model",
    "count_macs",
    "count_parameters",
    "input_size",
    "network_plan",
    "output_size",
    "variable_shapes",
]
