"""Custom gunpowder nodes, tested the gunpowder way: an array source plus the node."""

from __future__ import annotations

import gunpowder as gp
import numpy as np
import pytest
from funlib.persistence import Array

from incasem.nodes import AddMask, BinarizeLabels, MergeLabels, MergeMasks, RandomLocation

VOXEL = (4, 4, 4)


def _source(key: gp.ArrayKey, data: np.ndarray) -> gp.ArraySource:
    return gp.ArraySource(key, Array(data, offset=(0, 0, 0), voxel_size=VOXEL), False)


def _request(shape, *keys, offset=(0, 0, 0), seed=1) -> gp.BatchRequest:
    request = gp.BatchRequest(random_seed=seed)
    for key in keys:
        request[key] = gp.ArraySpec(roi=gp.Roi(offset, gp.Coordinate(shape) * gp.Coordinate(VOXEL)))
    return request


def test_merge_labels_multiplies_by_class_id_and_drops_overlaps():
    a, b, merged = gp.ArrayKey("NODE_A"), gp.ArrayKey("NODE_B"), gp.ArrayKey("NODE_MERGED")
    first = np.zeros((4, 4, 4), np.uint8)
    first[0, :2] = 255
    second = np.zeros((4, 4, 4), np.uint8)
    second[0, 1:3] = 1
    pipeline = (
        (_source(a, first), _source(b, second)) + gp.MergeProvider() + MergeLabels({a: 1, b: 2}, merged)
    )
    with gp.build(pipeline):
        batch = pipeline.request_batch(_request((4, 4, 4), merged))
    out = batch[merged].data
    assert out.dtype == np.uint32
    assert out[0, 0, 0] == 1 and out[0, 2, 0] == 2 and out[0, 1, 0] == 0 and out[2, 2, 2] == 0


def test_merge_masks_is_a_logical_and():
    a, b, merged = gp.ArrayKey("NODE_MA"), gp.ArrayKey("NODE_MB"), gp.ArrayKey("NODE_MM")
    first = np.ones((2, 2, 2), np.uint8) * 255
    second = np.zeros((2, 2, 2), np.uint8)
    second[1] = 7
    pipeline = (_source(a, first), _source(b, second)) + gp.MergeProvider() + MergeMasks([a, b], merged)
    with gp.build(pipeline):
        batch = pipeline.request_batch(_request((2, 2, 2), merged))
    assert batch[merged].data.dtype == np.uint8
    assert batch[merged].data.sum() == 4 and batch[merged].data[1].all()


def test_add_mask_is_ones_on_the_reference_roi():
    raw, mask = gp.ArrayKey("NODE_RAW"), gp.ArrayKey("NODE_ONES")
    pipeline = _source(raw, np.zeros((6, 6, 6), np.uint8)) + AddMask(mask, raw)
    with gp.build(pipeline):
        batch = pipeline.request_batch(_request((3, 2, 1), mask, offset=(4, 4, 4)))
    assert batch[mask].data.shape == (3, 2, 1)
    assert batch[mask].data.dtype == np.uint8 and batch[mask].data.min() == 1


def test_binarize_labels_marks_any_class_as_foreground():
    labels, fg = gp.ArrayKey("NODE_LABELS"), gp.ArrayKey("NODE_FG")
    data = np.array([0, 1, 2, 0, 3, 0, 0, 9], np.uint32).reshape(2, 2, 2)
    pipeline = _source(labels, data) + BinarizeLabels(labels, fg)
    with gp.build(pipeline):
        batch = pipeline.request_batch(_request((2, 2, 2), fg, labels))
    assert batch[fg].data.tolist() == (data != 0).astype(np.uint8).tolist()
    assert batch[labels].data.max() == 9  # the source is left as it was


def _foreground_fractions(reject_probability: float, n: int = 60) -> np.ndarray:
    fg = gp.ArrayKey("NODE_FOREGROUND")
    data = np.zeros((40, 40, 40), np.uint8)
    data[:20, :20, :20] = 1  # foreground in one corner only
    pipeline = _source(fg, data) + RandomLocation(
        fg, min_foreground=0.2, reject_probability=reject_probability
    )
    fractions = []
    with gp.build(pipeline):
        for seed in range(n):
            batch = pipeline.request_batch(_request((8, 8, 8), fg, seed=seed))
            fractions.append(batch[fg].data.mean())
    return np.array(fractions)


def test_random_location_with_reject_probability_one_always_has_foreground():
    fractions = _foreground_fractions(1.0)
    assert fractions.min() >= 0.2


def test_random_location_soft_rule_keeps_some_background_samples():
    soft = _foreground_fractions(0.9)
    never = _foreground_fractions(0.0)
    # p = 0 samples locations uniformly: about a third have enough foreground
    assert 0.15 < (never >= 0.2).mean() < 0.5
    # p = 0.9 re-draws most of the others, yet some background samples get through
    assert (never >= 0.2).mean() + 0.25 < (soft >= 0.2).mean() < 1.0


def test_random_location_is_repeatable_for_a_seed():
    assert np.array_equal(_foreground_fractions(0.9, n=10), _foreground_fractions(0.9, n=10))


def test_random_location_rejects_a_bad_probability():
    with pytest.raises(ValueError, match=r"reject_probability must be in \[0, 1\]"):
        RandomLocation(gp.ArrayKey("NODE_FOREGROUND"), reject_probability=1.5)


def test_reject_retries_a_seeded_request_with_new_seeds():
    from incasem.nodes import Reject

    mask = gp.ArrayKey("NODE_SAMPLE_MASK")
    data = np.zeros((30, 30, 30), np.uint8)
    data[:10, :10, :10] = 1  # only ~5 % of random 6^3 blocks are inside the sample
    pipeline = (
        _source(mask, data) + gp.RandomLocation() + Reject(mask, min_masked=0.5, reject_probability=1.0)
    )
    with gp.build(pipeline):
        ratios = [
            pipeline.request_batch(_request((6, 6, 6), mask, seed=seed))[mask].data.mean()
            for seed in range(5)
        ]
    # gunpowder 1.4.4's Reject would re-send the identical seeded request forever here
    assert min(ratios) > 0.5


def test_reject_still_accepts_some_bad_batches():
    from incasem.nodes import Reject

    mask = gp.ArrayKey("NODE_SAMPLE_MASK2")
    pipeline = (
        _source(mask, np.zeros((10, 10, 10), np.uint8))
        + gp.RandomLocation()
        + Reject(mask, min_masked=0.5, reject_probability=0.5)
    )
    with gp.build(pipeline):
        batch = pipeline.request_batch(_request((4, 4, 4), mask, seed=1))
    assert batch[mask].data.mean() == 0.0
