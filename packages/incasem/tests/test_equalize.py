"""3-D CLAHE: golden values of the original implementation, reference == fast, blockwise."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from incasem.equalize import NR_OF_GREY, clahe_3d, clahe_fast, clahe_reference, clip_histogram


def _volume() -> np.ndarray:
    z, y, x = np.meshgrid(np.arange(24), np.arange(20), np.arange(28), indexing="ij")
    value = 127 + 60 * np.sin(z / 3.1) * np.cos(y / 4.7) + 50 * np.sin(x / 2.3 + z / 5.0)
    return np.clip(value, 0, 255).astype(np.uint8)


# Computed with incasem's vendored adapthist.py (np.product -> np.prod) on _volume().
GOLDEN = [
    (8, 0.02, 1736551, "04f3e3f26ac1bd16", (29, 209, 9)),
    ((8, 10, 12), 0.01, 1759489, "6634f71046687446", (96, 229, 15)),
    (16, 0.0, 1693380, "848488bc48271719", (122, 229, 12)),
    (32, 0.02, 1664034, "f395512d53dc5aba", (125, 226, 25)),
]


@pytest.mark.parametrize(("kernel", "clip", "total", "digest", "voxels"), GOLDEN)
@pytest.mark.parametrize("method", ["fast", "reference"])
def test_clahe_reproduces_the_original_bit_for_bit(method, kernel, clip, total, digest, voxels):
    out = clahe_3d(_volume(), kernel_size=kernel, clip_limit=clip, nbins=256, method=method)
    assert out.dtype == np.uint8
    assert int(out.astype(np.int64).sum()) == total
    assert hashlib.sha256(out.tobytes()).hexdigest()[:16] == digest
    assert (out[0, 0, 0], out[12, 10, 14], out[23, 19, 27]) == voxels


def test_fast_and_reference_agree_on_noisy_data(rng):
    from scipy import ndimage

    smooth = ndimage.gaussian_filter(rng.normal(size=(30, 41, 37)), 2)
    volume = ((smooth - smooth.min()) / np.ptp(smooth) * 230 + 10).astype(np.uint8)
    reference = clahe_reference(volume, kernel_size=16)
    fast = clahe_fast(volume, kernel_size=16)
    difference = np.abs(reference.astype(int) - fast.astype(int))
    assert difference.max() <= 1
    assert (difference > 0).mean() < 1e-3


def test_fast_region_equals_the_same_part_of_the_whole(rng):
    volume = rng.integers(0, 256, size=(20, 22, 24), dtype=np.uint8)
    whole = clahe_fast(volume, kernel_size=8)
    region = (slice(3, 17), slice(0, 9), slice(11, 24))
    np.testing.assert_array_equal(clahe_fast(volume, kernel_size=8, region=region), whole[region])


def test_equalization_spreads_a_narrow_histogram(rng):
    volume = rng.integers(100, 120, size=(32, 32, 32), dtype=np.uint8)
    out = clahe_fast(volume, kernel_size=16, clip_limit=0.02)
    assert np.ptp(out) > 3 * np.ptp(volume)


def test_clip_histogram_redistributes_the_excess_below_the_limit():
    hist = np.array([100, 10, 10, 10])
    clipped = clip_histogram(hist, 50)
    assert clipped.max() <= 50
    # the original's strided loop hands out one count more than the 50 clipped: kept for parity
    assert clipped.tolist() == [50, 26, 27, 28]


def test_clip_histogram_keeps_the_originals_mid_band_quirk():
    # The original sets every bin in [limit - increment, limit) to the limit after adding the
    # increment, which can hand out more counts than were clipped; reproduced for parity.
    clipped = clip_histogram(np.array([500, 3, 0, 0, 40, 1, 0, 0]), 70)
    assert clipped.tolist() == [70] * 8


def test_fourteen_bit_scaling_maps_the_uint8_range_onto_0_to_16383():
    from incasem.equalize import _to_grey14

    grey = _to_grey14(np.array([[[0, 1, 128, 255]]], dtype=np.uint8))
    assert grey.tolist() == [[[0, 64, 8224, NR_OF_GREY - 1]]]


def test_blockwise_equalize_equals_one_global_clahe_away_from_the_border(tmp_path, rng):
    from scipy import ndimage

    from cellsight_shared.io import read_zarr, write_zarr
    from incasem.config.tools import EqualizeConfig
    from incasem.equalize import equalize

    smooth = ndimage.gaussian_filter(rng.normal(size=(64, 64, 64)), 2)
    volume = ((smooth - smooth.min()) / np.ptp(smooth) * 200 + 20).astype(np.uint8)
    write_zarr(tmp_path / "c.zarr", "volumes/raw", volume, offset=(0, 0, 0), resolution=(4, 4, 4))
    config = EqualizeConfig(zarr=tmp_path / "c.zarr", kernel_size=16, block_size=16, workers=2)
    equalize(config)
    blockwise = read_zarr(tmp_path / "c.zarr", "volumes/raw_equalized_0.02")
    # The block grid starts half a kernel before the volume; so does this padded global CLAHE.
    whole = clahe_fast(np.pad(volume, 8, mode="edge"), kernel_size=16)[8:-8, 8:-8, 8:-8]
    inner = (slice(16, 48),) * 3
    np.testing.assert_array_equal(blockwise[inner], whole[inner])
    from cellsight_shared.io import zarr_geometry

    assert zarr_geometry(tmp_path / "c.zarr", "volumes/raw_equalized_0.02")[1] == (4, 4, 4)


def test_blockwise_reference_and_fast_paths_write_the_same(tmp_path, rng):
    from cellsight_shared.io import read_zarr, write_zarr
    from incasem.config.tools import EqualizeConfig
    from incasem.equalize import equalize

    volume = rng.integers(30, 200, size=(24, 20, 28), dtype=np.uint8)
    write_zarr(tmp_path / "c.zarr", "volumes/raw", volume, offset=(0, 0, 0), resolution=(5, 5, 5))
    for method in ("fast", "reference"):
        equalize(
            EqualizeConfig(
                zarr=tmp_path / "c.zarr",
                out_dataset=f"eq/{method}",
                kernel_size=8,
                block_size=8,
                method=method,
            )
        )
    np.testing.assert_array_equal(
        read_zarr(tmp_path / "c.zarr", "eq/fast"), read_zarr(tmp_path / "c.zarr", "eq/reference")
    )


def test_equalize_refuses_to_overwrite_and_names_the_flag(tmp_path, rng):
    from cellsight_shared.io import write_zarr
    from incasem.config.tools import EqualizeConfig
    from incasem.equalize import equalize
    from incasem.errors import DataError

    volume = rng.integers(0, 255, size=(16, 16, 16), dtype=np.uint8)
    write_zarr(tmp_path / "c.zarr", "volumes/raw", volume, offset=(0, 0, 0), resolution=(5, 5, 5))
    config = EqualizeConfig(zarr=tmp_path / "c.zarr", kernel_size=8, block_size=8)
    first = equalize(config)
    before = sorted(p.name for p in first.iterdir())
    with pytest.raises(DataError, match="--overwrite"):
        equalize(config)
    assert sorted(p.name for p in first.iterdir()) == before
