"""The patch sampler's distribution over many draws, against the v2 rules.

60 % of the probability mass on scribble pixels, centres inside the field of view (outside the
validation square for training, inside it for validation), jitter U{0..31} with a random sign,
npatch_image = max(N / n, 6) with the original's stopping rule, and joint flips.
"""

import numpy as np
import pytest
import torch

from impartial.config import SamplerConfig
from impartial.data.readers import Sample
from impartial.train.sampler import PatchSampler

N_DRAWS = 20000


def _tolerance(p: float, n: int) -> float:
    """Four binomial standard deviations: a correct sampler fails about once in 16 000 runs."""
    return 4 * np.sqrt(p * (1 - p) / n)


def _coordinate_sample(size: int = 200, *, val: bool = True) -> Sample:
    """Channel 0 = row index, channel 1 = column index (so a crop says where it came from)."""
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    scribble = np.zeros((2, size, size), np.uint8)
    scribble[0, 20:24, 10:150] = 1  # foreground strokes, all outside the validation square
    scribble[1, 150:190, 20:26] = 1
    val_mask = np.zeros((size, size), np.uint8)
    if val:
        val_mask[100:180, 100:180] = 1
        scribble[0, 120:122, 110:170] = 1  # and some inside it
    return Sample("coords", np.stack([yy, xx]), None, scribble, val_mask)


def _on_fraction(sample: Sample, fov: np.ndarray, p: float = 0.6) -> float:
    """The original's expected share of centres on scribbles, once the FOV cuts its map."""
    on = sample.scribble.any(axis=0)
    a, b = (on & fov).sum() / on.sum(), (~on & fov).sum() / (~on).sum()
    return p * a / (p * a + (1 - p) * b)


def test_sixty_percent_of_centres_fall_on_scribbles():
    """Without a validation square, the share of centres on scribble pixels is 0.6 +- 4 sigma."""
    sample = _coordinate_sample(val=False)
    sampler = PatchSampler([sample], SamplerConfig())
    cy, cx = sampler.centres(0, N_DRAWS, torch.Generator().manual_seed(0))
    on = sample.scribble.any(axis=0)[cy.numpy(), cx.numpy()]
    assert abs(on.mean() - 0.6) < _tolerance(0.6, N_DRAWS), on.mean()
    # off the scribbles the centres are uniform: the left half holds its share of those pixels
    off_x = cx.numpy()[~on]
    share = (~sample.scribble.any(axis=0))[:, :100].sum() / (~sample.scribble.any(axis=0)).sum()
    assert abs((off_x < 100).mean() - share) < _tolerance(share, len(off_x))


def test_centres_stay_in_the_training_area_or_the_validation_square():
    """Train centres never fall in the square; validation centres always do; both keep the 60 % rule."""
    sample = _coordinate_sample()
    square = sample.val_mask.astype(bool)
    for validation, fov in ((False, ~square), (True, square)):
        sampler = PatchSampler([sample], SamplerConfig(), validation=validation)
        cy, cx = sampler.centres(0, N_DRAWS, torch.Generator().manual_seed(1))
        inside = square[cy.numpy(), cx.numpy()]
        assert inside.all() if validation else not inside.any()
        expected = _on_fraction(sample, fov)
        on = sample.scribble.any(axis=0)[cy.numpy(), cx.numpy()].mean()
        assert abs(on - expected) < _tolerance(expected, N_DRAWS), (validation, on, expected)
    # the square holds a smaller share of the scribbles than of the pixels: its rate is measurably lower
    assert _on_fraction(sample, square) < 0.6 - 3 * _tolerance(0.6, N_DRAWS)


def test_jitter_is_within_31_px_with_the_original_distribution():
    """Shifts span exactly -31..31; 0 is drawn with probability 1/32, each other value 1/64."""
    sampler = PatchSampler([_coordinate_sample()], SamplerConfig())
    shifts = sampler.jitter(N_DRAWS, torch.Generator().manual_seed(2)).numpy()
    assert shifts.min() == -31 and shifts.max() == 31
    counts = np.bincount(shifts + 31, minlength=63) / N_DRAWS
    assert abs(counts[31] - 1 / 32) < _tolerance(1 / 32, N_DRAWS)
    assert abs(counts[:31].sum() - counts[32:].sum()) < 2 * _tolerance(0.5, N_DRAWS)

    # through draw(): all centres on one pixel far from the border, so the boxes are not clipped
    size = 512
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    scr = np.zeros((2, size, size), np.uint8)
    scr[0, 256, 300] = 1
    one = Sample("one", np.stack([yy, xx]), None, scr, np.zeros((size, size), np.uint8))
    rows = PatchSampler([one], SamplerConfig(p_scribble=1.0)).draw(4000, torch.Generator().manual_seed(3))
    dy, dx = (rows[:, 1] + 64 - 256).numpy(), (rows[:, 2] + 64 - 300).numpy()
    for d in (dy, dx):
        assert d.min() == -31 and d.max() == 31
        assert abs((d == 0).mean() - 1 / 32) < _tolerance(1 / 32, len(d))


def test_boxes_are_clipped_to_the_image():
    """Centres near the border still give full 128x128 boxes inside the image."""
    sample = _coordinate_sample(val=False)
    rows = PatchSampler([sample], SamplerConfig()).draw(3000, torch.Generator().manual_seed(4))
    assert rows[:, 1].min() == 0 and rows[:, 2].min() == 0
    assert rows[:, 1].max() == 200 - 128 and rows[:, 2].max() == 200 - 128


@pytest.mark.parametrize(
    ("n_images", "n_total", "per_image", "n_rows"),
    [(3, 4096, 1365, 4095), (2, 4096, 2048, 4096), (4, 8, 6, 12), (4, 12, 6, 18), (5, 100, 20, 100)],
)
def test_patches_per_image_and_the_stopping_rule(n_images, n_total, per_image, n_rows):
    """max(int(N / n), 6) per image, images shuffled, stop once the count exceeds N (as v2)."""
    samples = [_coordinate_sample(val=False) for _ in range(n_images)]
    sampler = PatchSampler(samples, SamplerConfig())
    rows = sampler.draw(n_total, torch.Generator().manual_seed(5))
    assert len(rows) == n_rows
    images = rows[:, 0].tolist()
    blocks = [images[i : i + per_image] for i in range(0, len(images), per_image)]
    assert all(len(set(b)) == 1 and len(b) == per_image for b in blocks)
    assert len({b[0] for b in blocks}) == len(blocks)  # each image once
    orders = {
        tuple(sampler.draw(n_total, torch.Generator().manual_seed(s))[::per_image, 0].tolist())
        for s in range(8)
    }
    assert len(orders) > 1 or n_images == 1  # the image order is shuffled


def test_flips_are_joint_and_each_combination_is_drawn():
    """Image and scribble crops flip together; LR and UD each with probability 1/2."""
    size = 200
    sample = _coordinate_sample(size, val=False)
    yy, xx = np.mgrid[:size, :size]
    pattern = ((3 * yy + xx) % 5 == 0).astype(np.uint8)  # not symmetric under either flip
    sample = Sample("coords", sample.image, None, np.stack([pattern, 1 - pattern]), sample.val_mask)
    sampler = PatchSampler([sample], SamplerConfig())
    gen = torch.Generator().manual_seed(6)
    rows = sampler.draw(400, gen)
    img, scr = sampler.batch(rows, gen, flips=True)
    combos = []
    for b in range(len(rows)):
        y, x = img[b, 0].long().numpy(), img[b, 1].long().numpy()
        assert np.array_equal(scr[b, 0].numpy(), pattern[y, x])  # the scribble moved with the image
        ud, lr = bool(y[0, 0] > y[-1, 0]), bool(x[0, 0] > x[0, -1])
        y0, x0 = int(rows[b, 1]), int(rows[b, 2])
        assert (int(y.min()), int(x.min())) == (y0, x0)
        combos.append((ud, lr))
    share = {c: combos.count(c) / len(combos) for c in ((a, b) for a in (False, True) for b in (False, True))}
    assert all(abs(v - 0.25) < _tolerance(0.25, len(combos)) for v in share.values()), share
    plain, _ = sampler.batch(rows, None, flips=False)
    assert all(float(plain[b, 0, 0, 0]) == float(rows[b, 1]) for b in range(len(rows)))
