"""The training pipeline end to end: shapes, dtypes, ranges, balancing, padding, repeatability."""

from __future__ import annotations

import gunpowder as gp
import numpy as np
import pytest
from conftest import entry, small_train_config

from incasem.config.data import load_data_config
from incasem.pipeline import ArrayKeys, build_train_pipeline, build_train_request, padding_voxels


def _batches(config, seeds):
    data = load_data_config(config.data, context=config.context[0], require_labels=True)
    keys = ArrayKeys.create()
    pipeline = build_train_pipeline(config, data, keys, json_path=config.data)
    with gp.build(pipeline):
        return keys, [
            pipeline.request_batch(build_train_request(config, keys, data.voxel_size, seed=s)) for s in seeds
        ]


@pytest.fixture
def config(em_zarr, write_data_json, tmp_path):
    path = write_data_json({"a": entry(em_zarr), "b": entry(em_zarr, offset=(9, 11, 9))})
    return small_train_config(path, tmp_path / "run")


def test_batches_have_the_network_geometry_and_ranges(config):
    keys, (batch,) = _batches(config, [3])
    assert batch[keys.raw].data.shape == (36, 36, 36)
    assert batch[keys.raw].data.dtype == np.float32
    assert -1.0 <= batch[keys.raw].data.min() and batch[keys.raw].data.max() <= 1.0
    for key in (keys.labels, keys.mask, keys.metric_mask, keys.loss_scalings, keys.foreground):
        assert batch[key].data.shape == (18, 18, 18)
    assert batch[keys.labels].data.dtype == np.int64
    assert set(np.unique(batch[keys.labels].data)) <= {0, 1}
    np.testing.assert_array_equal(batch[keys.foreground].data, batch[keys.labels].data != 0)


def test_loss_scalings_give_both_classes_equal_total_weight(config):
    keys, batches = _batches(config, range(4))
    for batch in batches:
        labels, scale = batch[keys.labels].data, batch[keys.loss_scalings].data
        mask = batch[keys.mask].data != 0
        if len(np.unique(labels[mask])) == 2:
            fg, bg = scale[labels == 1].sum(), scale[(labels == 0) & mask].sum()
            assert fg == pytest.approx(bg, rel=1e-4)
            assert scale[~mask].sum() == 0
            return
    pytest.fail("no batch held both classes")


def test_foreground_rule_raises_the_foreground_in_samples(em_zarr, write_data_json, tmp_path):
    path = write_data_json({"a": entry(em_zarr), "b": entry(em_zarr, offset=(9, 11, 9))})
    means = {}
    for probability in (0.9, 0.0):
        config = small_train_config(
            path, tmp_path / "run", reject={"foreground_reject_probability": probability}
        )
        keys, batches = _batches(config, range(12))
        means[probability] = np.mean([b[keys.foreground].data.mean() for b in batches])
    # the rule is measured on the (rotation-enlarged) block upstream, so it is not a hard floor
    assert means[0.9] > 1.3 * means[0.0]


def test_same_seed_gives_the_same_batch(config):
    keys, (a, b, c) = _batches(config, [7, 7, 8])
    np.testing.assert_array_equal(a[keys.raw].data, b[keys.raw].data)
    assert not np.array_equal(a[keys.raw].data, c[keys.raw].data)


def test_regions_smaller_than_a_block_are_padded(em_zarr, write_data_json, tmp_path):
    path = write_data_json({"tiny": entry(em_zarr, offset=(20, 20, 20), shape=(12, 30, 30))})
    config = small_train_config(path, tmp_path / "run")
    data = load_data_config(path, context=9)
    label_pad, raw_pad = padding_voxels(config, data.entries["tiny"])
    assert label_pad[0] > 0 and raw_pad[0] > 0
    keys, (batch,) = _batches(config, [1])
    assert batch[keys.labels].data.shape == (18, 18, 18)
    # padded voxels count as background: mask 1, label 0
    assert batch[keys.mask].data.min() == 1


def test_without_augmentation_the_batch_is_the_zarr_content(em_zarr, write_data_json, tmp_path):
    from cellsight_shared.io import read_zarr

    # a ROI of exactly one output block leaves RandomLocation a single choice
    path = write_data_json({"a": entry(em_zarr, offset=(20, 21, 22), shape=(18, 18, 18))})
    config = small_train_config(
        path,
        tmp_path / "run",
        augmentation={"simple": False, "elastic": {"enabled": False}, "intensity": {"enabled": False}},
    )
    keys, (batch,) = _batches(config, [2])
    raw = read_zarr(em_zarr, "volumes/raw").astype(np.float32) / 255 * 2 - 1
    labels = read_zarr(em_zarr, "volumes/labels/mito")
    np.testing.assert_array_equal(batch[keys.labels].data, labels[20:38, 21:39, 22:40])
    np.testing.assert_allclose(batch[keys.raw].data, raw[11:47, 12:48, 13:49], atol=1e-6)


def test_precache_workers_deliver_the_same_kind_of_batches(config):
    keys, batches = _batches(config.model_copy(update={"precache_workers": 1, "precache_size": 2}), [1, 2])
    assert [b[keys.raw].data.shape for b in batches] == [(36, 36, 36)] * 2
    assert all(b[keys.labels].data.dtype == np.int64 for b in batches)
