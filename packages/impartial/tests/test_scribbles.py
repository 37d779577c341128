"""Scribbles from labels: on skeletons/rings inside cells, background outside, budget spent."""

import numpy as np
import pytest

from impartial.scribbles import scribbles_for_images, scribbles_from_labels, validation_square


def _grid_labels(n=4, size=20, gap=6):
    side = n * (size + gap) + gap
    lab = np.zeros((side, side), np.int32)
    k = 0
    for i in range(n):
        for j in range(n):
            k += 1
            y, x = gap + i * (size + gap), gap + j * (size + gap)
            lab[y : y + size, x : x + size] = k
    return lab


def test_foreground_inside_cells_background_outside_and_budget():
    """Fg only on instance pixels, bg only off them; instances used >= budget (boxes overshoot)."""
    lab = _grid_labels()
    res = scribbles_from_labels(lab, 5, rng=np.random.default_rng(0), disk_scribble=True)
    fg, bg = res.scribble.astype(bool)
    assert fg.any() and bg.any()
    assert not (fg & (lab == 0)).any()
    assert not (bg & (lab > 0)).any()
    touched = np.unique(lab[fg])
    assert res.n_used >= 5 and len(touched) == res.n_used
    assert res.n_labels == 16
    # thin scribbles: far fewer pixels than the cells they mark
    assert fg.sum() < 0.35 * (np.isin(lab, touched)).sum()


def test_ring_adds_pixels_three_inside_the_outline():
    """disk_scribble adds a ring 3 px inside each outline to the skeleton."""
    lab = np.zeros((40, 40), np.int32)
    lab[5:35, 5:35] = 1
    plain = scribbles_from_labels(lab, 1, rng=np.random.default_rng(0)).scribble[0]
    ring = scribbles_from_labels(lab, 1, rng=np.random.default_rng(0), disk_scribble=True).scribble[0]
    assert ring.sum() > plain.sum()
    extra = ring.astype(bool) & ~plain.astype(bool)
    ys, xs = np.nonzero(extra)
    assert ys.min() == 8 and xs.min() == 8  # 5 + 3


def test_budget_split_over_images_by_ascending_count_and_seeded():
    """Budget per image max(2, remaining / images left), smallest image first; same seed, same scribbles."""
    small, big = _grid_labels(2), _grid_labels(4)
    a = scribbles_for_images([big, small], 6, rng=np.random.default_rng(1))
    b = scribbles_for_images([big, small], 6, rng=np.random.default_rng(1))
    assert all(np.array_equal(x.scribble, y.scribble) for x, y in zip(a, b, strict=True))
    assert a[1].n_used >= 3  # small image first: max(2, int(6 / 2)) = 3
    assert sum(r.n_used for r in a) >= 6


def test_validation_square_is_40_percent_of_each_side_and_near_scribbles():
    """A 2h x 2h square, h = int(0.4 * H / 2); it covers scribble pixels."""
    scr = np.zeros((2, 100, 120), np.uint8)
    scr[0, 70:72, 60:80] = 1
    mask = validation_square(scr, rng=np.random.default_rng(0))
    assert mask.sum() == 40 * 48
    assert (mask.astype(bool) & scr.any(axis=0)).any()


def test_labels_must_be_2d():
    """A 3-D label array is refused with the shape in the message."""
    with pytest.raises(ValueError, match="2-D"):
        scribbles_from_labels(np.zeros((2, 4, 4), np.int32), 2, rng=np.random.default_rng(0))
