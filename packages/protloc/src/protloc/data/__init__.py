"""Data: on-disk layouts, protein lists, loading, normalisation, splits and crops (numpy only)."""

from protloc.data.dataset import (
    ImageSet,
    Split,
    load_dataset,
    load_pair,
    load_set,
    read_nucleus,
    split_records,
)
from protloc.data.layout import ImageRecord, find_images, parse_opencell_name
from protloc.data.proteins import ProteinList, read_legacy_pickle, read_protein_list, write_protein_list

__all__ = [
    "ImageRecord",
    "ImageSet",
    "ProteinList",
    "Split",
    "find_images",
    "load_dataset",
    "load_pair",
    "load_set",
    "parse_opencell_name",
    "read_legacy_pickle",
    "read_nucleus",
    "read_protein_list",
    "split_records",
    "write_protein_list",
]
