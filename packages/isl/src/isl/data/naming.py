"""Parse the file names of the original data (both naming schemes).

The repository's scheme (``data_sample.zip``, ``isl/testdata``)::

    lab-FINKBEINER,condition-KEVAN_0_8,...,well-A4,tile_computation-STITCHED,z_depth-7,
    channel-PHASE_CONTRAST,is_mask-false.png
    ...,depth_computation-MAXPROJECT,channel-DAPI_CONFOCAL,is_mask-false.png

The paper-data scheme (``gs://in-silico-labeling/paper_data``) spells keys and values as two tokens::

    ...,z_depth-0,channel,value-PHASE_CONTRAST,is_mask-false,kind,value-ORIGINAL.png
    ...,depth_computation,value-MAXPROJECT,channel,value-DAPI_CONFOCAL,is_mask-false,kind,value-ORIGINAL.png
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["MAXPROJECT", "ImageKey", "format_image_name", "parse_image_name"]

#: The z "value" of fluorescence targets (maximum projections).
MAXPROJECT = "MAXPROJECT"


@dataclass(frozen=True)
class ImageKey:
    """What one PNG holds: a z-plane index (or MAXPROJECT), a channel, and whether it is a mask."""

    z: int | str
    channel: str
    is_mask: bool = False


def _tokens_to_fields(stem: str) -> dict[str, str]:
    """Map keys to values for both ``key-value`` and ``key,value-VALUE`` token styles."""
    fields: dict[str, str] = {}
    pending_key: str | None = None
    for token in stem.split(","):
        key, sep, value = token.partition("-")
        if sep and key == "value" and pending_key is not None:
            fields[pending_key] = value
            pending_key = None
        elif sep:
            fields[key] = value
            pending_key = None
        else:
            pending_key = key  # a bare key; its value follows as "value-..."
    return fields


def parse_image_name(path: str | Path) -> ImageKey | None:
    """Return the :class:`ImageKey` of a well PNG, or None for prediction images.

    Raises ValueError (with the expected pattern) when the name has no channel or no z.
    """
    name = Path(path).name
    stem = name[:-4] if name.lower().endswith(".png") else name
    fields = _tokens_to_fields(stem)
    if fields.get("kind") == "PREDICTED" or "PREDICTED" in name:
        return None
    channel = fields.get("channel")
    if not channel:
        raise ValueError(
            f"{name}: no channel in the file name; expected a token 'channel-<NAME>' "
            "(or 'channel,value-<NAME>')"
        )
    if fields.get("depth_computation") == MAXPROJECT:
        z: int | str = MAXPROJECT
    elif "z_depth" in fields:
        try:
            z = int(fields["z_depth"])
        except ValueError:
            raise ValueError(f"{name}: z_depth must be an integer, got {fields['z_depth']!r}") from None
    else:
        raise ValueError(
            f"{name}: no z in the file name; expected 'z_depth-<INT>' for a z-plane or "
            "'depth_computation-MAXPROJECT' for a fluorescence projection"
        )
    is_mask = fields.get("is_mask", "false").lower() == "true"
    return ImageKey(z=z, channel=channel, is_mask=is_mask)


def format_image_name(key: ImageKey, *, well: str = "A1", lab: str = "SYNTHETIC") -> str:
    """Build a file name in the repository's scheme (used for synthetic and predicted wells)."""
    if key.z == MAXPROJECT:
        depth = f"depth_computation-{MAXPROJECT}"
    else:
        depth = f"z_depth-{int(key.z)}"
    mask = "true" if key.is_mask else "false"
    return (
        f"lab-{lab},condition-SYNTHETIC,well-{well},tile_computation-STITCHED,"
        f"{depth},channel-{key.channel},is_mask-{mask}.png"
    )
