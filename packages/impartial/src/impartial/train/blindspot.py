"""Blind-spot masking (v2 ``generate_mask``), vectorised on the tensor.

Per sample and per channel, ``int(H*W*(1-ratio))`` positions are drawn uniformly with
replacement; each takes the value of the *original* pixel at an offset (dy, dx), each uniform in
[-w//2 + w%2, w//2 + w%2) = [-5, 4] for w=10 ((0, 0) allowed), wrapping around the patch.
``mask`` is 1 where untouched and 0 at blind spots. No Python loop over pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["BlindSpotDraw", "apply_blind_spots", "apply_blind_spots_loop", "draw_blind_spots"]


@dataclass(frozen=True)
class BlindSpotDraw:
    """The random draws of one masking: positions and offsets, each (B, C, n)."""

    y: torch.Tensor
    x: torch.Tensor
    dy: torch.Tensor
    dx: torch.Tensor


def draw_blind_spots(
    shape: tuple[int, int, int, int],
    *,
    ratio: float = 0.95,
    window: int = 10,
    generator: torch.Generator | None = None,
) -> BlindSpotDraw:
    """Draw blind-spot positions and neighbour offsets for a (B, C, H, W) batch."""
    b, c, h, w = shape
    num = int(h * w * (1 - ratio))
    lo, hi = -window // 2 + window % 2, window // 2 + window % 2
    size = (b, c, num)
    y = torch.randint(0, h, size, generator=generator)
    x = torch.randint(0, w, size, generator=generator)
    dy = torch.randint(lo, hi, size, generator=generator)
    dx = torch.randint(lo, hi, size, generator=generator)
    return BlindSpotDraw(y, x, dy, dx)


def apply_blind_spots(patch: torch.Tensor, draw: BlindSpotDraw) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (blind-spot input, mask) for ``patch`` (B, C, H, W); the patch itself is the target."""
    b, c, h, w = patch.shape
    flat = patch.reshape(b, c, h * w)
    dst = (draw.y * w + draw.x).to(patch.device)
    src = (((draw.y + draw.dy) % h) * w + (draw.x + draw.dx) % w).to(patch.device)
    values = torch.gather(flat, 2, src)
    out = flat.clone().scatter_(2, dst, values).reshape(b, c, h, w)
    mask = torch.ones(b, c, h * w, dtype=patch.dtype, device=patch.device).scatter_(2, dst, 0.0)
    return out, mask.reshape(b, c, h, w)


def apply_blind_spots_loop(patch: torch.Tensor, draw: BlindSpotDraw) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-pixel loop of the original (reference for tests and the benchmark only)."""
    b, c, h, w = patch.shape
    src = patch.numpy()
    out = src.copy()
    mask = torch.ones_like(patch).numpy()
    ys, xs, dys, dxs = (t.numpy() for t in (draw.y, draw.x, draw.dy, draw.dx))
    for i in range(b):
        for ch in range(c):
            for j in range(ys.shape[2]):
                y, x = ys[i, ch, j], xs[i, ch, j]
                out[i, ch, y, x] = src[i, ch, (y + dys[i, ch, j]) % h, (x + dxs[i, ch, j]) % w]
                mask[i, ch, y, x] = 0
    return torch.from_numpy(out), torch.from_numpy(mask)
