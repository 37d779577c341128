"""Metric masks: the exclusion zone's geometry, blockwise == whole volume, voxel counts."""

from __future__ import annotations

import numpy as np
import pytest

from incasem.metric_mask import exclusion_zone, metric_mask_array


def test_zone_around_one_voxel_is_an_l1_ball():
    labels = np.zeros((9, 9, 9), dtype=np.uint8)
    labels[4, 4, 4] = 1
    assert exclusion_zone(labels, inwards=0, outwards=1).sum() == 6  # the 6 face neighbours
    assert exclusion_zone(labels, inwards=1, outwards=1).sum() == 7  # plus the eroded voxel
    assert exclusion_zone(labels, inwards=1, outwards=2).sum() == 25  # L1 ball of radius 2


def test_zone_around_a_plane_is_a_band_of_in_plus_out_voxels():
    labels = np.zeros((10, 12, 12), dtype=np.uint8)
    labels[:5] = 1
    zone = exclusion_zone(labels, inwards=2, outwards=3)
    # inside the volume the band spans z = 3..7; the label also touches the volume border,
    # and erosion treats outside as background, so the border faces are excluded too
    assert zone[3:8, 5, 5].all() and not zone[2, 5, 5] and not zone[8, 5, 5]
    assert zone[0:5, 0, 5].all()


def test_zero_width_means_no_exclusion():
    labels = np.zeros((6, 6, 6), dtype=np.uint8)
    labels[2:4, 2:4, 2:4] = 7
    assert not exclusion_zone(labels, inwards=0, outwards=0).any()


def test_metric_mask_is_0_in_the_zone_and_255_elsewhere():
    labels = np.zeros((8, 8, 8), dtype=np.uint8)
    labels[3, 3, 3] = 2
    mask = metric_mask_array(labels, inwards=1, outwards=1)
    assert mask.dtype == np.uint8
    assert set(np.unique(mask)) == {0, 255}
    assert (mask == 0).sum() == 7


def test_blockwise_metric_mask_equals_the_whole_volume_and_counts(em_zarr, tmp_path):
    import shutil

    from cellsight_shared.io import read_zarr
    from incasem.config.tools import MetricMaskConfig
    from incasem.metric_mask import metric_mask

    store = tmp_path / "cell.zarr"
    shutil.copytree(em_zarr, store)
    config = MetricMaskConfig(
        zarr=store,
        labels="volumes/labels/mito",
        inwards=2,
        outwards=3,
        out_dataset="volumes/metric_masks/mito_2_3",
        block_size=24,
        workers=2,
    )
    counts = metric_mask(config)
    written = read_zarr(store, config.output_dataset)
    labels = read_zarr(store, "volumes/labels/mito")
    np.testing.assert_array_equal(written, metric_mask_array(labels, inwards=2, outwards=3))
    zone = written == 0
    assert counts["voxels"] == labels.size
    assert counts["foreground_voxels"] == int((labels != 0).sum())
    assert counts["excluded_voxels"] == int(zone.sum())
    assert counts["counted_foreground_voxels"] == int(((labels != 0) & ~zone).sum())
    assert counts["counted_foreground_voxels"] < counts["foreground_voxels"]


def test_metric_mask_of_a_missing_dataset_is_a_data_error(em_zarr):
    from incasem.config.tools import MetricMaskConfig
    from incasem.errors import DataError
    from incasem.metric_mask import metric_mask

    with pytest.raises(DataError, match="no dataset 'volumes/labels/cilia'"):
        metric_mask(MetricMaskConfig(zarr=em_zarr, labels="volumes/labels/cilia"))
