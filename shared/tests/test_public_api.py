"""The public surface of cellsight_shared (each module's __all__) changes only on purpose.

Method packages depend on these names with a compatible-release range; removing or renaming one
is a breaking change that needs a version bump and a CHANGELOG entry, so this snapshot must be
edited by hand alongside.
"""

from __future__ import annotations

import importlib

import pytest

PUBLIC_API = {
    "cli": [
        "EXIT_FAILURE",
        "EXIT_OK",
        "EXIT_USAGE",
        "add_verbosity_arguments",
        "configure_logging",
        "format_error",
        "progress",
        "run_cli",
        "run_command",
        "seed_everything",
    ],
    "download": ["download_file", "extract_archive", "sha256sum"],
    "errors": [
        "CellsightSharedError",
        "DataFileError",
        "DownloadError",
        "InvalidArgumentError",
        "NonFiniteError",
        "ShapeMismatchError",
    ],
    "io": [
        "atomic_write",
        "check_finite",
        "create_zarr",
        "ensure_absent",
        "geometry_attrs",
        "open_zarr",
        "read_hdf5",
        "read_image",
        "read_json",
        "read_npz",
        "read_png",
        "read_tiff",
        "read_tiff_metadata",
        "read_zarr",
        "write_hdf5",
        "write_image",
        "write_json",
        "write_npz",
        "write_png",
        "write_tiff",
        "write_zarr",
        "zarr_geometry",
    ],
    "metrics": [
        "BinaryCounts",
        "BinaryScores",
        "KnnAccuracy",
        "MAP_IOU_THRESHOLDS",
        "MatchResult",
        "aggregated_jaccard_index",
        "average_precision",
        "binary_counts",
        "binary_scores",
        "binary_scores_at_thresholds",
        "f1",
        "iou",
        "iou_matrix",
        "knn_accuracy",
        "mae",
        "match_instances",
        "mean_average_precision",
        "mse",
        "pearson_r",
        "precision",
        "psnr",
        "recall",
        "ssim",
    ],
    "normalize": ["dtype_range_normalize", "minmax_normalize", "percentile_normalize"],
    "provenance": ["package_version", "run_info", "write_run_info"],
    "synthetic": [
        "CELL_CHANNELS",
        "CellCrops",
        "EM_ORGANELLES",
        "LOCALIZATIONS",
        "SyntheticCells",
        "SyntheticEM",
        "SyntheticZStack",
        "ZSTACK_TARGETS",
        "cell_crops",
        "cells_2d",
        "em_volume",
        "write_em_volume_zarr",
        "zstack",
    ],
    "testing": ["find_repo_root", "require_test_data", "serve_directory", "test_data_dir"],
    "tiling": ["Tile", "plan_tiles", "predict_tiled"],
}


@pytest.mark.parametrize("module", sorted(PUBLIC_API))
def test_module_all_matches_the_snapshot(module):
    """Each module's __all__ is exactly the recorded public names, and each name exists."""
    mod = importlib.import_module(f"cellsight_shared.{module}")
    assert sorted(mod.__all__) == PUBLIC_API[module]
    for name in mod.__all__:
        assert hasattr(mod, name), f"cellsight_shared.{module}.{name} is listed but missing"
