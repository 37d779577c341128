"""Whole-image inference: tiled passes reproduce the original's stride-8 patch stitching."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import randomize_batch_norm

from isl.config.model import ModelConfig
from isl.errors import DataError
from isl.inference import (
    STATISTICS,
    auto_tile_size,
    distribution_statistics,
    naive_patchwise,
    original_input_crop,
    output_region,
    predict_image,
    predict_statistics,
    tiled_macs,
)
from isl.model import build_model, count_macs

TINY = ModelConfig(
    num_z_values=2, target_channels=("DAPI_CONFOCAL", "MAP2_CONFOCAL"), base_depth=24,
    projection_depth=4,
)  # fmt: skip
#: 6 x 5 output blocks: odd and even block counts, several tiles per phase with tile 282.
HEIGHT, WIDTH = 250 + 8 * 5, 250 + 8 * 4
TILE = 250 + 16


@pytest.fixture(scope="module")
def net():  # noqa: ANN201
    """A tiny network with random BN statistics, so that every layer matters."""
    network = build_model(TINY, seed=3)
    return randomize_batch_norm(network)


@pytest.fixture(scope="module")
def stack() -> np.ndarray:
    """A random 290x282 stack in the network's interleaved layout."""
    return np.random.default_rng(1).random((HEIGHT, WIDTH, TINY.input_depth), dtype=np.float32)


@pytest.fixture(scope="module")
def naive(net, stack: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """The reference: one 250-px patch per 8x8 block at stride 8."""
    return naive_patchwise(net, stack, batch_size=8, heads="all")


def test_tiled_prediction_equals_naive_patchwise(net, stack, naive) -> None:  # noqa: ANN001
    """Four phase-shifted tiled passes give the stitched patch outputs within 1e-5."""
    tiled = predict_image(net, stack, tile_size=TILE, heads="all")

    assert tiled.shape == (48, 40, TINY.num_heads, 256) == naive.shape
    np.testing.assert_allclose(tiled.sum(axis=-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(tiled, naive, atol=1e-5, rtol=0)
    assert naive.std(axis=(0, 1)).mean() > 1e-3  # the output is not constant


def test_exact_path_equals_the_four_pass_path(net, stack) -> None:  # noqa: ANN001
    """The shared-trunk exact tiles and four full phase passes give the same probabilities."""
    from isl.inference.stitching import _predict_tiled

    options = {"tile_size": TILE, "reflect_pad": False, "exact": True, "heads": "all", "statistics": False}
    four = _predict_tiled(net, stack, show_progress=False, path="four_pass", **options)
    shared = _predict_tiled(net, stack, show_progress=False, **options)

    np.testing.assert_allclose(shared, four, atol=1e-5, rtol=0)


@pytest.mark.parametrize("tile", [None, 250 + 16 * 2])
def test_exact_path_equals_naive_with_reflect_padding(net, tile) -> None:  # noqa: ANN001
    """Padded, non-square, sides not of the 8- or 16-px grid: every pixel equals the patches'."""
    image = np.random.default_rng(5).random((61, 45, TINY.input_depth), dtype=np.float32)
    heads = ["MAXPROJECT/DAPI_CONFOCAL"]

    exact = predict_image(net, image, tile_size=tile, reflect_pad=True, heads=heads, show_progress=False)
    naive = naive_patchwise(net, image, batch_size=32, reflect_pad=True, heads=heads, show_progress=False)

    assert exact.shape == naive.shape == (61, 45, 1, 256)
    np.testing.assert_allclose(exact, naive, atol=1e-5, rtol=0)


def test_paper_network_exact_path_equals_naive_patchwise() -> None:
    """The paper-size network (base depth 400) on a 266x258 stack: 3 x 2 blocks, within 1e-5."""
    config = ModelConfig()
    network = build_model(config, seed=0)
    stack = np.random.default_rng(6).random((266, 258, config.input_depth), dtype=np.float32)
    heads = ["MAXPROJECT/DAPI_CONFOCAL"]

    exact = predict_image(network, stack, heads=heads, show_progress=False)
    naive = naive_patchwise(network, stack, batch_size=6, heads=heads, show_progress=False)

    assert exact.shape == naive.shape == (24, 16, 1, 256)
    np.testing.assert_allclose(exact, naive, atol=1e-5, rtol=0)


def test_tiled_statistics_equal_statistics_of_naive_probabilities(net, stack, naive) -> None:  # noqa: ANN001
    """The in-graph statistics agree with the numpy definition on the reference output."""
    heads = ["MAXPROJECT/MAP2_CONFOCAL", "0.0/TRANSMISSION"]
    order = [TINY.head_names.index(h) for h in heads]

    stats = predict_statistics(net, stack, tile_size=TILE, heads=heads)

    reference = distribution_statistics(naive[:, :, order])
    assert set(stats) == set(STATISTICS)
    for name in STATISTICS:
        assert stats[name].shape == (48, 40, 2)
        np.testing.assert_allclose(stats[name], reference[name], atol=2e-5, err_msg=name)


def test_one_pass_mode_differs_only_on_odd_blocks(net, stack, naive) -> None:  # noqa: ANN001
    """exact=False keeps the blocks aligned with the 16-px grid exact and changes the others."""
    fast = predict_image(net, stack, tile_size=TILE, exact=False, heads="all")

    even = np.zeros(48, bool)
    even[np.arange(48) // 8 % 2 == 0] = True
    cols = np.arange(40) // 8 % 2 == 0
    np.testing.assert_allclose(fast[np.ix_(even, cols)], naive[np.ix_(even, cols)], atol=1e-5)
    assert np.abs(fast[~even] - naive[~even]).max() > 1e-4


def test_reflect_padding_predicts_the_whole_image(net, stack, naive) -> None:  # noqa: ANN001
    """With reflect_pad every pixel gets a prediction.

    Where the unpadded run predicts (the interior, 121 px in) both agree: the padding keeps the
    patch grid.
    """
    image = stack[:258, :258]  # 2 x 2 blocks without padding: naive[:16, :16]

    padded = predict_image(net, image, reflect_pad=True, heads="all")

    assert padded.shape == (258, 258, TINY.num_heads, 256)
    np.testing.assert_allclose(padded[121 : 121 + 16, 121 : 121 + 16], naive[:16, :16], atol=1e-5)
    np.testing.assert_allclose(padded.sum(axis=-1), 1.0, atol=1e-5)


def test_bad_stacks_are_refused(net) -> None:  # noqa: ANN001
    """Wrong depth, unscaled values, small images, bad tiles or heads fail before any work."""
    with pytest.raises(DataError, match="interleaved"):
        predict_image(net, np.zeros((300, 300, 3), np.float32))
    with pytest.raises(DataError, match="reflect_pad"):
        predict_image(net, np.zeros((200, 300, TINY.input_depth), np.float32))
    with pytest.raises(DataError, match="250 \\+ 16k"):
        predict_image(net, np.zeros((300, 300, TINY.input_depth), np.float32), tile_size=300)
    with pytest.raises(DataError, match="must lie in \\[0, 1\\]"):
        predict_image(net, np.full((250, 250, TINY.input_depth), 255.0, np.float32))
    with pytest.raises(DataError, match="unknown head"):
        predict_image(net, np.zeros((250, 250, TINY.input_depth), np.float32), heads=["X"])


def test_output_region_and_original_crop() -> None:
    """Output starts at (121, 121) and covers whole 8-px blocks; the original's 128-px runs."""
    assert output_region(290, 282) == (121, 121, 48, 40)
    assert output_region(290, 282, reflect_pad=True) == (0, 0, 290, 282)
    assert original_input_crop(2000, 2000, stitch_crop_size=1500) == (1152 + 242, 1152 + 242)
    assert original_input_crop(1024, 1024, stitch_crop_size=1024) == (768 + 242, 768 + 242)
    with pytest.raises(DataError):
        original_input_crop(300, 300)


def test_multiply_accumulate_counts_per_output_pixel() -> None:
    """The paper network's counts: patchwise 63.72 M per pixel; one pass 3.05 M + 1.15 M heads.

    The shared-trunk exact path tends to about 9.07 M (7.0x) for large tiles, 9.25 M without
    splitting the first upper module; four full passes tended to 13.4 M (4.75x). On a 1500-px crop
    with the automatic tiles (490 exact, 666 one pass) the exact path needs 6.9x fewer than patches
    with the target heads, one pass 13.9x with all heads.
    """
    from isl.model.plan import count_exact_tile_macs, head_macs_per_pixel

    config = ModelConfig()
    assert count_macs(config) / 64 == pytest.approx(63.72e6, rel=1e-4)
    assert head_macs_per_pixel(config) == 35 * 128 * 256 == 1_146_880
    side = 250 + 16 * 511
    trunk = count_macs(config, (side, side), heads=False) / (side - 242) ** 2
    assert trunk == pytest.approx(3.05e6, rel=0.01)
    steps = 512
    exact = count_exact_tile_macs(config, (steps, steps)) / (16 * steps) ** 2
    unsplit = count_exact_tile_macs(config, (steps, steps), split_first_upper=False) / (16 * steps) ** 2
    assert exact == pytest.approx(9.0e6, rel=0.01) and unsplit == pytest.approx(9.2e6, rel=0.01)
    assert 7.0 < 63.72e6 / exact < 7.1
    patches = count_macs(config) * ((1500 - 250) // 8 + 1) ** 2
    tile = auto_tile_size(config, 1500, 1500)
    assert (tile, auto_tile_size(config, 1500, 1500, exact=False)) == (490, 666)
    assert 6.9 < patches / tiled_macs(config, 1500, 1500, tile_size=tile, heads=9) < 7.0
    four_pass = tiled_macs(config, 1500, 1500, tile_size=506, path="four_pass")
    assert 4.0 < patches / four_pass < 4.75  # the earlier exact path
    tile = auto_tile_size(config, 1500, 1500, exact=False)
    one_pass = tiled_macs(config, 1500, 1500, tile_size=tile, exact=False)
    assert 13.8 < patches / one_pass < 13.9


def test_exact_tiles_cover_every_block_once_per_tile() -> None:
    """Exact tiles hold both phases, share one shape per axis and cover every block."""
    from isl.inference.geometry import exact_segments

    for blocks in range(1, 40):
        for steps in range(1, 8):
            covered = np.zeros(8 * blocks, int)
            segments = exact_segments(blocks, steps)
            assert len({s.length for s in segments}) == 1
            for seg in segments:
                assert seg.start + seg.length <= 250 + 8 * (blocks - 1)
                assert seg.length == 250 + 16 * (seg.steps - 1) + 8 * (seg.phases - 1)
                assert len(seg.dest) == 8 * seg.steps * seg.phases <= 16 * steps
                assert seg.start % 8 == 0 and np.array_equal(seg.start + seg.keep, seg.dest)
                covered[seg.dest] += 1
            assert covered.min() >= 1, (blocks, steps)
            assert covered.sum() - covered.size < 8 * 2 * steps * len(segments)


@pytest.mark.parametrize("exact", [True, False])
def test_tiles_cover_every_output_block(exact: bool) -> None:
    """For any image length and tile size every output row is written from a valid tile row.

    Exact tiles keep only rows at 16-px steps from their start (the patch results) and overlap
    little; tiles stay inside the image, within the tile size, at the network's 250 + 16k sizes.
    """
    from isl.inference.geometry import axis_segments

    for blocks in range(1, 30):
        for steps in range(1, 10):
            covered = np.zeros(8 * blocks, int)
            for seg in axis_segments(blocks, steps, exact=exact):
                assert (seg.length - 250) % 16 == 0 and seg.length <= 250 + 16 * (steps - 1)
                assert seg.start + seg.length <= 250 + 8 * (blocks - 1)
                assert np.array_equal(seg.start + seg.keep, seg.dest)
                if exact:
                    assert np.all(seg.keep // 8 % 2 == 0)
                covered[seg.dest] += 1
            assert covered.min() >= 1, (blocks, steps)
            if exact:  # equal tiles overlap by less than one tile's share
                tiles = sum(-(-len(range(p, blocks, 2)) // steps) for p in (0, 1))
                assert covered.sum() - covered.size <= 8 * tiles, (blocks, steps)


def test_distribution_statistics_golden_values() -> None:
    """The original's four-class golden test (values 0, 1/3, 2/3, 1), ported as numbers."""
    probs = np.array([[0, 1, 0, 0], [0.25, 0.25, 0.25, 0.25], [0, 0.5, 0, 0.5], [0.1, 0.2, 0.2, 0.5]])
    expected = {
        "mode": [1 / 3, 0, 1 / 3, 1],
        "median": [1 / 3, 1 / 3, 1 / 3, 2 / 3],
        "mean": [1 / 3, 0.5, 2 / 3, 0.7],
        "std": [0, 0.372678, 1 / 3, 0.348010],
        "probability_nonzero": [1, 0.75, 1, 0.9],
        "entropy": [0, 1, 0.5, 0.880482],
    }

    stats = distribution_statistics(probs)

    for name, values in expected.items():
        np.testing.assert_allclose(stats[name], values, atol=1e-5, err_msg=name)


def test_distribution_statistics_match_a_direct_reference() -> None:
    """256-bin distributions: each statistic equals its definition computed pixel by pixel."""
    rng = np.random.default_rng(2)
    logits = rng.normal(0, 3, (5, 4, 256))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    values = np.linspace(0, 1, 256)

    stats = distribution_statistics(probs)

    for i, j in np.ndindex(5, 4):
        p = probs[i, j]
        mean = sum(pk * v for pk, v in zip(p, values, strict=True))
        cdf = np.cumsum(p)
        assert stats["mode"][i, j] == pytest.approx(int(np.argmax(p)) / 255)
        assert stats["median"][i, j] == pytest.approx(int((cdf < 0.5).sum()) / 255)
        assert stats["mean"][i, j] == pytest.approx(mean, abs=1e-6)
        var = sum(pk * (v - mean) ** 2 for pk, v in zip(p, values, strict=True))
        assert stats["std"][i, j] == pytest.approx(np.sqrt(var), abs=1e-6)
        entropy = -sum(pk * np.log(pk + 1e-7) for pk in p) / np.log(256)
        assert stats["entropy"][i, j] == pytest.approx(entropy, abs=1e-6)
    with pytest.raises(DataError, match="sum to 1"):
        distribution_statistics(probs * 2)


@pytest.mark.slow
def test_paper_network_tiled_prediction_equals_naive_patchwise() -> None:
    """The full-size network (9.27 M parameters) stitches exactly too, on a 282x282 stack."""
    config = ModelConfig()
    network = build_model(config, seed=0)
    stack = np.random.default_rng(4).random((282, 282, config.input_depth), dtype=np.float32)
    heads = ["MAXPROJECT/DAPI_CONFOCAL", "0.48/TRANSMISSION"]

    tiled = predict_image(network, stack, heads=heads, show_progress=False)
    naive = naive_patchwise(network, stack, heads=heads, show_progress=False)

    assert tiled.shape == (40, 40, 2, 256)
    np.testing.assert_allclose(tiled, naive, atol=1e-5, rtol=0)


def test_default_heads_are_the_target_heads_only(net, stack, naive) -> None:  # noqa: ANN001
    """Without ``heads`` only the target heads are computed; they equal those of all heads."""
    stats = predict_statistics(net, stack, tile_size=TILE, show_progress=False)
    targets = predict_image(net, stack, tile_size=TILE, show_progress=False)
    assert stats["median"].shape == (48, 40, len(TINY.target_channels))
    first = TINY.num_input_heads
    np.testing.assert_allclose(targets, naive[:, :, first:], atol=1e-5, rtol=0)
