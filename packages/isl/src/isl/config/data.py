"""How wells are read and how training patches are sampled."""

from __future__ import annotations

from pydantic import Field, model_validator

from isl.config.base import IslConfigModel

__all__ = ["DEFAULT_DERIVED_CHANNELS", "DEFAULT_INPUT_CHANNELS", "DataConfig"]

#: Transmitted-light modalities; the original sums them into one ``TRANSMISSION`` channel.
DEFAULT_INPUT_CHANNELS: tuple[str, ...] = ("BRIGHTFIELD", "PHASE_CONTRAST", "DIC")
#: Channels computed from others: the mean of the sources, present only where all sources are.
DEFAULT_DERIVED_CHANNELS: dict[str, tuple[str, ...]] = {
    "NEURITE_CONFOCAL": ("NFH_CONFOCAL", "MAP2_CONFOCAL"),
}


class DataConfig(IslConfigModel):
    """Reading wells (original PNG naming) and sampling training patches.

    The number of z-values and the target channels belong to the model (they fix its heads), so
    they live in ``ModelConfig``; this model holds everything else about the data.
    """

    input_channels: tuple[str, ...] = Field(default=DEFAULT_INPUT_CHANNELS, min_length=1)
    """Transmitted-light channels summed into TRANSMISSION; a well must hold exactly one of them."""
    derived_channels: dict[str, tuple[str, ...]] = Field(
        default_factory=lambda: dict(DEFAULT_DERIVED_CHANNELS)
    )
    """Synthetic targets: name -> source channels (mean of the sources; mask = AND of masks)."""
    required_channels: tuple[str, ...] = ()
    """Target channels every well must contain (others absent are black with a zero mask)."""
    expected_z_planes: int | None = Field(default=None, ge=1)
    """If set, every well must hold exactly this many z-planes (e.g. 13 for Conditions A-D)."""
    patch_size: int = Field(default=250, ge=8)
    """Side of the network input patch; 250 in the original."""
    crop_size: int = Field(default=520, ge=8)
    """Side of the random crop taken from a well per sampling step (``--loss_crop_size``)."""
    patch_stride: int = Field(default=256, ge=1)
    """Stride of the patches cut from a crop (``--loss_patch_stride``): 520/256 -> 4 patches."""
    flip_and_rotate: bool = True
    """Random left-right flip and rot90 of each crop (the 8 dihedral transforms)."""
    augment_offset_std: float = Field(default=0.0, ge=0.0)
    """Std of an additive offset per crop and z-plane (input pixels only; 0 = off)."""
    augment_multiplier_std: float = Field(default=0.0, ge=0.0)
    """Std of a multiplicative gain around 1 per crop and z-plane (0 = off)."""
    augment_noise_std: float = Field(default=0.0, ge=0.0)
    """Std of per-pixel Gaussian noise on the inputs (0 = off)."""
    crops_per_visit: int = Field(default=16, ge=1)
    """Crops sampled from a well each time it is loaded; bounds memory to one well at a time."""

    @model_validator(mode="after")
    def _crop_holds_a_patch(self) -> DataConfig:
        if self.crop_size < self.patch_size:
            raise ValueError(f"crop_size ({self.crop_size}) must be at least patch_size ({self.patch_size})")
        overlap = set(self.input_channels) & set(self.derived_channels)
        if overlap:
            raise ValueError(f"channels {sorted(overlap)} are both inputs and derived targets")
        return self

    @property
    def patches_per_crop(self) -> int:
        """Number of patches cut from one crop (4 with the defaults)."""
        per_axis = (self.crop_size - self.patch_size) // self.patch_stride + 1
        return per_axis * per_axis
