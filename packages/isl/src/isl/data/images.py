"""Pixels of a well, loaded once and cut into model inputs and per-head targets.

Pixels are kept in their file dtype (uint8/uint16) and scaled by the dtype maximum only when a
region is cut, so a well costs its file size in memory, not four times that.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from isl.data.naming import MAXPROJECT
from isl.data.well import TRANSMISSION, WellFiles, z_index, z_labels
from isl.errors import DataError

__all__ = ["Region", "WellImages", "load_well"]

logger = logging.getLogger(__name__)

#: (row start, column start, rows, columns)
Region = tuple[int, int, int, int]


def _read(path) -> np.ndarray:
    from cellsight_shared.errors import DataFileError
    from cellsight_shared.io import read_png

    try:
        image = read_png(path)
    except DataFileError as err:
        raise DataError(str(err)) from err
    if image.ndim != 2 or image.dtype not in (np.uint8, np.uint16):
        raise DataError(
            f"{path} is not a single-channel 8- or 16-bit PNG (shape {image.shape}, {image.dtype})"
        )
    return image


@dataclass
class WellImages:
    """Raw pixels of one well: per model input channel a plane stack, per target a projection."""

    files: WellFiles
    planes: dict[str, list[np.ndarray]]
    """Model input channel -> z-planes (file dtype), index = file z."""
    projections: dict[str, np.ndarray]
    """Target channel -> maximum projection (file dtype)."""

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of the well's images."""
        return self.files.shape

    def input_planes(
        self, num_z_values: int, channels: Sequence[str], region: Region | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pixel values [h, w, num_z, C] in [0, 1] and presence masks [num_z, C] (0 or 1).

        Each normalised z maps to a file plane by ``int(round((N - 1) * z))``; a channel without
        planes is black with mask 0.
        """
        y, x, h, w = region or (0, 0, *self.shape)
        labels = z_labels(num_z_values)
        values = np.zeros((h, w, num_z_values, len(channels)), np.float32)
        masks = np.zeros((num_z_values, len(channels)), np.float32)
        for c, channel in enumerate(channels):
            stack = self.planes.get(channel)
            if not stack:
                continue
            cache: dict[int, np.ndarray] = {}
            for k, label in enumerate(labels):
                index = z_index(label, len(stack))
                if index not in cache:
                    plane = stack[index][y : y + h, x : x + w]
                    cache[index] = plane.astype(np.float32) / np.iinfo(plane.dtype).max
                values[:, :, k, c] = cache[index]
                masks[k, c] = 1.0
        return values, masks

    def target_images(
        self,
        channels: Sequence[str],
        derived: Mapping[str, Sequence[str]],
        region: Region | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Target values [h, w, T] in [0, 1] and presence masks [T].

        A derived channel is the mean of its sources with mask = product of theirs (the original's
        NEURITE_CONFOCAL = (NFH + MAP2) / 2); it is computed even if a file of that name exists.
        """
        y, x, h, w = region or (0, 0, *self.shape)
        values = np.zeros((h, w, len(channels)), np.float32)
        masks = np.zeros(len(channels), np.float32)

        def single(channel: str) -> tuple[np.ndarray | None, float]:
            image = self.projections.get(channel)
            if image is None:
                return None, 0.0
            crop = image[y : y + h, x : x + w]
            return crop.astype(np.float32) / np.iinfo(crop.dtype).max, 1.0

        for t, channel in enumerate(channels):
            if channel in derived:
                parts = [single(source) for source in derived[channel]]
                mask = float(np.prod([m for _, m in parts]))
                total = np.zeros((h, w), np.float32)
                for image, _ in parts:
                    if image is not None:
                        total += image
                values[:, :, t] = total / len(parts) if mask else 0.0
                masks[t] = mask
            else:
                image, mask = single(channel)
                if image is not None:
                    values[:, :, t] = image
                masks[t] = mask
        return values, masks


def load_well(
    files: WellFiles,
    *,
    input_channels: Sequence[str],
    model_input_channels: Sequence[str] = (TRANSMISSION,),
    target_channels: Sequence[str] = (),
    derived: Mapping[str, Sequence[str]] | None = None,
) -> WellImages:
    """Read the PNGs a model needs from one well (only those; other channels stay on disk).

    TRANSMISSION is the sum of the ``input_channels`` modalities; ``check_wells`` has ensured
    exactly one is present, so the sum is that modality's planes.
    """
    derived = dict(derived or {})
    planes: dict[str, list[np.ndarray]] = {}
    for channel in model_input_channels:
        sources = list(input_channels) if channel == TRANSMISSION else [channel]
        present = [s for s in sources if any(c == s for _, c in files.files)]
        if not present:
            continue
        if len(present) > 1:
            raise DataError(f"well {files.directory}: several modalities {present} for {channel}; keep one")
        source = present[0]
        planes[channel] = [_read(files.files[(z, source)]) for z in range(files.num_planes)]
    wanted: set[str] = set()
    for channel in target_channels:
        wanted.update(derived.get(channel, (channel,)))
    projections = {
        channel: _read(files.files[(MAXPROJECT, channel)])
        for channel in sorted(wanted)
        if (MAXPROJECT, channel) in files.files
    }
    logger.debug("loaded well %s: %d planes, targets %s", files.name, files.num_planes, sorted(projections))
    return WellImages(files=files, planes=planes, projections=projections)
