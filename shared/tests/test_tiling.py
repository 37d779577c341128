"""Tiling round trips exactly for fully convolutional functions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from cellsight_shared.errors import ShapeMismatchError
from cellsight_shared.tiling import plan_tiles, predict_tiled


def _conv_net(x: np.ndarray) -> np.ndarray:
    """A stand-in fully convolutional 'network': two 5x5 filters and a nonlinearity, zero padding."""
    k = np.arange(25, dtype=np.float64).reshape(5, 5) / 300.0
    h = np.tanh(ndimage.correlate(x, k, mode="constant"))
    return ndimage.correlate(h, k.T, mode="constant")  # receptive radius 4


def test_tiles_cover_every_pixel_exactly_once():
    """Tile cores partition the image; inputs include the margin clipped to the image."""
    tiles = plan_tiles((50, 37), tile_shape=(16, 10), margin=3)
    cover = np.zeros((50, 37), int)
    for t in tiles:
        cover[t.output_slices] += 1
        for sl, crop, out in zip(t.input_slices, t.crop_slices, t.output_slices, strict=True):
            assert sl.start >= 0 and out.start - sl.start == crop.start
            assert crop.stop - crop.start == out.stop - out.start
    assert (cover == 1).all()
    assert len(tiles) == 4 * 4


@pytest.mark.parametrize(("tile", "margin"), [(16, 4), (7, 5), ((13, 20), (4, 6))])
def test_stitched_output_equals_untiled_output(rng, tile, margin):
    """With margin >= receptive radius the stitched result is bit-identical to the whole image."""
    image = rng.random((45, 61))
    np.testing.assert_array_equal(
        predict_tiled(image, _conv_net, tile_shape=tile, margin=margin), _conv_net(image)
    )


def test_too_small_margin_is_not_exact(rng):
    """A margin smaller than the receptive field changes pixels near tile seams (the test can fail)."""
    image = rng.random((40, 40))
    tiled = predict_tiled(image, _conv_net, tile_shape=10, margin=1)
    assert np.abs(tiled - _conv_net(image)).max() > 1e-3


def test_channel_axes_may_change_size(rng):
    """Non-spatial axes (channels first) pass through, and may change size, e.g. 1 -> 3 channels."""
    image = rng.random((1, 30, 30))

    def fn(x: np.ndarray) -> np.ndarray:
        y = _conv_net(x[0])
        return np.stack([y, 2 * y, -y])

    out = predict_tiled(image, fn, tile_shape=12, margin=4, spatial_axes=(1, 2))
    np.testing.assert_array_equal(out, fn(image))


def test_3d_volume_round_trip(rng):
    """N-D: a 3-D filter tiled over a volume matches the untiled result."""
    volume = rng.random((20, 22, 18))

    def fn(x: np.ndarray) -> np.ndarray:
        return ndimage.uniform_filter(x, size=3, mode="constant")

    np.testing.assert_allclose(predict_tiled(volume, fn, tile_shape=8, margin=1), fn(volume), atol=1e-12)


def test_blending_averages_overlaps_to_identity(rng):
    """Blended tiling of a pointwise function reproduces it (weights normalise to one)."""
    image = rng.random((33, 29))
    out = predict_tiled(image, lambda x: x * 3.0, tile_shape=10, margin=4, blend=True)
    np.testing.assert_allclose(out, image * 3.0, rtol=1e-6)


def test_function_changing_spatial_size_is_rejected(rng):
    """A function that crops its input is reported with the shapes involved."""
    with pytest.raises(ShapeMismatchError, match="keep the spatial size"):
        predict_tiled(rng.random((20, 20)), lambda x: x[1:-1, 1:-1], tile_shape=10, margin=2)
