"""Patch sampling (v2): centres 60 % on scribbles, inside the field of view, jittered, clipped.

All randomness comes from one ``torch.Generator`` so a resumed run draws what an uninterrupted
run would have drawn.
"""

from __future__ import annotations

import torch

from impartial.config import SamplerConfig
from impartial.data.readers import Sample
from impartial.errors import DataError

__all__ = ["PatchSampler"]


class PatchSampler:
    """Draws (image, y0, x0) patch corners and assembles batches of (input, target, scribble)."""

    def __init__(self, samples: list[Sample], config: SamplerConfig, *, validation: bool = False) -> None:
        self.config = config
        p = config.patch_size
        self.images, self.scribbles, self.probs = [], [], []
        for s in samples:
            _, h, w = s.image.shape
            if h < p or w < p:
                raise DataError(
                    f"{s.name}: image {h}x{w} is smaller than the {p}x{p} patch; lower sampler.patch_size"
                )
            img = torch.from_numpy(s.image)
            scr = torch.from_numpy(s.scribble.astype("float32"))
            val = (
                torch.from_numpy(s.val_mask.astype("float32"))
                if s.val_mask is not None
                else torch.zeros(h, w)
            )
            fov = val if validation else 1.0 - val
            on = scr.sum(0) > 0
            n_on, n_off = int(on.sum()), int((~on).sum())
            prob = (
                torch.where(on, config.p_scribble / max(n_on, 1), (1 - config.p_scribble) / max(n_off, 1))
                * fov
            )
            if float(prob.sum()) <= 0:
                continue
            self.images.append(img)
            self.scribbles.append(scr)
            self.probs.append((prob / prob.sum()).flatten())
        if not self.images:
            kind = "validation square" if validation else "training area"
            raise DataError(f"no image has a non-empty {kind} to sample patches from")

    def centres(self, i: int, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` patch centres (y, x) of image ``i``, drawn from its probability map (before jitter)."""
        w = self.images[i].shape[2]
        c = torch.multinomial(self.probs[i], n, replacement=True, generator=generator)
        return c // w, c % w

    def jitter(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Shifts in -(s-1)..(s-1) as the original: U{0..s-1} with a random sign (0 twice as likely)."""
        s = self.config.shift_crop
        value = torch.randint(0, s, (n,), generator=generator)
        sign = torch.randint(0, 2, (n,), generator=generator)
        return value * (1 - 2 * sign)

    def draw(self, n_total: int, generator: torch.Generator) -> torch.Tensor:
        """(N, 3) int64 rows (image, y0, x0): images in shuffled order, max(N / n, min) patches each.

        As the original, an image's patches are added before the running count is compared, and
        sampling stops once the count exceeds ``n_total``.
        """
        cfg = self.config
        n_img = len(self.images)
        per = max(int(n_total / n_img), cfg.min_npatch_image)
        p = cfg.patch_size
        rows, count = [], 0
        for i in torch.randperm(n_img, generator=generator).tolist():
            h, w = self.images[i].shape[1:]
            cy, cx = self.centres(i, per, generator)
            cy = cy + self.jitter(per, generator)
            cx = cx + self.jitter(per, generator)
            y0 = torch.clamp(torch.clamp(cy + p // 2, max=h) - p, min=0)
            x0 = torch.clamp(torch.clamp(cx + p // 2, max=w) - p, min=0)
            rows.append(torch.stack([torch.full((per,), i), y0, x0], dim=1))
            count += per
            if count > n_total:
                break
        return torch.cat(rows)

    def batch(
        self, rows: torch.Tensor, generator: torch.Generator | None, *, flips: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Crops (B, C, p, p) and scribbles (B, S, p, p), flipped jointly when ``flips``."""
        p = self.config.patch_size
        imgs, scrs = [], []
        flip = torch.rand(len(rows), 2, generator=generator) < 0.5 if flips else None
        for j, (i, y0, x0) in enumerate(rows.tolist()):
            a = self.images[i][:, y0 : y0 + p, x0 : x0 + p]
            b = self.scribbles[i][:, y0 : y0 + p, x0 : x0 + p]
            if flip is not None:
                dims = [d for d, f in zip((2, 1), flip[j].tolist(), strict=True) if f]
                if dims:
                    a, b = a.flip(dims), b.flip(dims)
            imgs.append(a)
            scrs.append(b)
        return torch.stack(imgs), torch.stack(scrs)
