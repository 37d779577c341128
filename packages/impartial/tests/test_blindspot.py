"""Blind-spot masking: 5 % per channel, offsets in [-5, 4], wrap-around, equal to the loop."""

import torch

from impartial.train.blindspot import apply_blind_spots, apply_blind_spots_loop, draw_blind_spots


def test_counts_offsets_and_mask():
    """819 draws per channel for 128x128; offsets cover exactly -5..4; mask 0 only at drawn spots."""
    g = torch.Generator().manual_seed(0)
    draw = draw_blind_spots((4, 2, 128, 128), generator=g)
    assert draw.y.shape == (4, 2, 819)
    assert set(draw.dy.unique().tolist()) == set(range(-5, 5))
    assert set(draw.dx.unique().tolist()) == set(range(-5, 5))
    patch = torch.rand(4, 2, 128, 128)
    out, mask = apply_blind_spots(patch, draw)
    drawn = torch.zeros(4, 2, 128 * 128)
    drawn.scatter_(2, draw.y * 128 + draw.x, 1.0)
    assert torch.equal(mask.reshape(4, 2, -1) == 0, drawn == 1)
    assert torch.equal(out[mask == 1], patch[mask == 1])
    # per channel independence: the two channels' blind spots differ
    assert not torch.equal(mask[:, 0], mask[:, 1])


def test_values_come_from_the_original_patch_with_wrap_around():
    """Each blind pixel holds the original value at (y + dy) mod H, (x + dx) mod W."""
    patch = torch.arange(2 * 8 * 8, dtype=torch.float32).reshape(1, 2, 8, 8)
    g = torch.Generator().manual_seed(3)
    draw = draw_blind_spots((1, 2, 8, 8), ratio=0.9, generator=g)
    out, _ = apply_blind_spots(patch, draw)
    for c in range(2):
        flat = draw.y[0, c] * 8 + draw.x[0, c]
        for j, (y, x, dy, dx) in enumerate(
            zip(*(t[0, c].tolist() for t in (draw.y, draw.x, draw.dy, draw.dx)), strict=True)
        ):
            if (flat == flat[j]).sum() == 1:  # unique position: exactly its own neighbour
                assert out[0, c, y, x] == patch[0, c, (y + dy) % 8, (x + dx) % 8]


def test_vectorised_equals_loop_when_positions_are_unique():
    """Same draws -> same output and mask as the per-pixel loop (duplicates aside)."""
    g = torch.Generator().manual_seed(5)
    patch = torch.rand(2, 3, 32, 32)
    draw = draw_blind_spots((2, 3, 32, 32), generator=g)
    flat = draw.y * 32 + draw.x
    unique = all(flat[i, c].unique().numel() == flat.shape[2] for i in range(2) for c in range(3))
    out, mask = apply_blind_spots(patch, draw)
    ref_out, ref_mask = apply_blind_spots_loop(patch, draw)
    assert torch.equal(mask, ref_mask)
    if unique:
        assert torch.equal(out, ref_out)
    else:  # a duplicated position holds one of its draws' values; all others agree exactly
        dup = torch.zeros(2, 3, 32 * 32)
        dup.scatter_add_(2, flat, torch.ones_like(flat, dtype=torch.float32))
        single = (dup <= 1).reshape(2, 3, 32, 32)
        assert torch.equal(out[single], ref_out[single])
