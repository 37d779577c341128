"""Config of ``incasem demo``: synthetic cells -> CLAHE -> metric masks -> train -> predict -> F1."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from incasem.config.base import FrozenModel
from incasem.config.model import ModelConfig

__all__ = ["DemoConfig"]

Shape = Annotated[tuple[Annotated[int, Field(ge=32, le=512)], ...], Field(min_length=3, max_length=3)]
Triple = Annotated[tuple[Annotated[int, Field(gt=0)], ...], Field(min_length=3, max_length=3)]


class DemoConfig(FrozenModel):
    """A small end-to-end run on synthetic FIB-SEM cells, sized for a CPU."""

    out: Path
    """Demo folder to create (must not exist, or be empty)."""
    seed: int = Field(0, ge=0, lt=2**31)
    """Seed of the training cell (the held-out cell uses seed + 1) and of training."""
    shape: Shape = (96, 96, 96)
    """Synthetic volume (z, y, x) in voxels; each cell is this big."""
    organelle: Literal["mito", "er", "golgi", "nucleus"] = "mito"
    """Organelle to segment (class 1)."""
    model: ModelConfig = ModelConfig(num_fmaps=4, downsample_factors=((2, 2, 2),))
    """A reduced U-Net (the published one has 32 feature maps and three downsamplings)."""
    input_shape: Triple = (44, 44, 44)
    """Training and prediction block (44^3 -> 26^3 for the default reduced network)."""
    iterations: int = Field(600, ge=1)
    """Training iterations."""
    lr: float = Field(3e-3, gt=0)
    """Adam learning rate (higher than the paper's 3e-5: the demo trains briefly)."""
    elastic: bool = False
    """Use ElasticAugment in training (faithful, but slower per iteration on a CPU)."""
    intensity: bool = False
    """Use IntensityAugment in training (faithful; the two synthetic cells share one intensity
    distribution, and within a CPU budget the augmentation mostly slows learning)."""
    foreground_reject_probability: float = Field(0.0, ge=0, le=1)
    """The foreground rule of the sampler (the paper: 0.9). The synthetic cells are small and
    their hard negatives (nucleus, ER, Golgi) hold no mitochondria, so with the paper's rule they
    are rarely sampled and the network mistakes them for mitochondria; uniform sampling (0)
    shows them as often as they occur."""
    metric_mask_voxels: tuple[int, int] = (1, 1)
    """Exclusion zone (inwards, outwards): smaller than the paper's 4/4, as the synthetic
    organelles are about four times smaller than real ones."""
    workers: int = Field(2, ge=0)
    """daisy workers for prediction."""
    device: str = "cpu"
    """torch device for training and prediction."""

    @model_validator(mode="after")
    def _fits(self) -> DemoConfig:
        output = self.model.output_shape(self.input_shape)
        context = [(i - o) // 2 for i, o in zip(self.input_shape, output, strict=True)]
        for size, block, ctx in zip(self.shape, self.input_shape, context, strict=True):
            if size - 2 * ctx < block:
                raise ValueError(
                    f"shape {list(self.shape)} is too small for input_shape "
                    f"{list(self.input_shape)}; each axis needs at least {block + 2 * ctx} voxels"
                )
        return self
