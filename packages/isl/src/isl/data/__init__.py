"""Reading wells in the original PNG naming and sampling training patches (numpy level)."""

from isl.data.images import WellImages, load_well
from isl.data.naming import MAXPROJECT, ImageKey, format_image_name, parse_image_name
from isl.data.sampling import PatchLayout, PatchRecipe, PatchStream, interleave, to_bins
from isl.data.well import (
    TRANSMISSION,
    WellFiles,
    check_wells,
    find_wells,
    index_well,
    z_index,
    z_labels,
)

__all__ = [
    "MAXPROJECT",
    "TRANSMISSION",
    "ImageKey",
    "PatchLayout",
    "PatchRecipe",
    "PatchStream",
    "WellFiles",
    "WellImages",
    "check_wells",
    "find_wells",
    "format_image_name",
    "index_well",
    "interleave",
    "load_well",
    "parse_image_name",
    "to_bins",
    "z_index",
    "z_labels",
]
