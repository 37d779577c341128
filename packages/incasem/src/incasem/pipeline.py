"""gunpowder pipelines, assembled node by node with ``+`` (brief section 2).

Only assembly lives here: the nodes are stock gunpowder 1.4.4 or ``incasem.nodes``. ROIs are in
world units (nm), so voxel counts are multiplied by the voxel size.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import gunpowder as gp
import numpy as np

from incasem.config.data import DataConfig, DataEntry, resolve_file
from incasem.config.train import TrainConfig
from incasem.nodes import AddMask, BinarizeLabels, MergeLabels, MergeMasks, RandomLocation, Reject

__all__ = ["ArrayKeys", "build_train_pipeline", "build_train_request", "padding_voxels"]


@dataclass(frozen=True)
class ArrayKeys:
    """The array keys the training pipeline provides; created once per process."""

    raw: gp.ArrayKey
    labels: gp.ArrayKey
    mask: gp.ArrayKey
    foreground: gp.ArrayKey
    metric_mask: gp.ArrayKey
    loss_scalings: gp.ArrayKey

    @classmethod
    def create(cls) -> ArrayKeys:
        """The keys, named as in the original (RAW, LABELS, MASK, ...)."""
        return cls(
            raw=gp.ArrayKey("RAW"),
            labels=gp.ArrayKey("LABELS"),
            mask=gp.ArrayKey("MASK"),
            foreground=gp.ArrayKey("BACKGROUND_MASK"),
            metric_mask=gp.ArrayKey("METRIC_MASK"),
            loss_scalings=gp.ArrayKey("LOSS_SCALINGS"),
        )


def padding_voxels(config: TrainConfig, entry: DataEntry) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Voxels per side to pad (labels/masks, raw) so a small ROI still yields samples.

    ElasticAugment asks upstream for the bounding box of the rotated block (up to sqrt(2) larger
    in the rotated plane, which SimpleAugment may map to any axis pair) plus the jitter; a ROI
    smaller than that is padded (raw with mid-grey, labels with background, masks with ones),
    as the original's PadDownstreamOfRandomLocation allowed regions smaller than a block.
    """
    elastic = config.augmentation.elastic
    grow = math.sqrt(2) if elastic.enabled and elastic.rotation_max > 0 else 1.0
    margin = 0
    if elastic.enabled:
        margin = 2 * (math.ceil(3 * max(elastic.jitter_sigma)) + elastic.max_misalign) + 2
    label_pad, raw_pad = [], []
    for roi, out, inp, ctx in zip(
        entry.shape, config.output_shape, config.input_shape, config.context, strict=True
    ):
        label_pad.append(max(0, math.ceil((math.ceil(out * grow) + margin - roi) / 2)))
        raw_pad.append(max(0, math.ceil((math.ceil(inp * grow) + margin - roi - 2 * ctx) / 2)))
    return tuple(label_pad), tuple(raw_pad)


def _entry_source(
    index: int,
    entry: DataEntry,
    config: TrainConfig,
    keys: ArrayKeys,
    *,
    store: Path,
) -> gp.Pipeline:
    """ZarrSource -> crops -> merged labels and masks -> normalise -> pad -> random location."""
    vs = gp.Coordinate(tuple(int(v) for v in entry.voxel_size))
    roi = gp.Roi(gp.Coordinate(entry.offset) * vs, gp.Coordinate(entry.shape) * vs)
    context = gp.Coordinate(config.context) * vs
    label_keys = {gp.ArrayKey(f"LABELS_{index}_{j}"): cid for j, cid in enumerate(entry.labels.values())}
    datasets = {keys.raw: entry.raw}
    datasets.update(dict(zip(label_keys, entry.labels, strict=True)))
    specs = {keys.raw: gp.ArraySpec(voxel_size=vs, interpolatable=True)}
    specs.update({k: gp.ArraySpec(voxel_size=vs, interpolatable=False) for k in label_keys})
    mask_key = gp.ArrayKey(f"MASK_{index}") if entry.mask else None
    if mask_key is not None:
        datasets[mask_key] = entry.mask
        specs[mask_key] = gp.ArraySpec(voxel_size=vs, interpolatable=False)
    metric_keys = [gp.ArrayKey(f"METRIC_MASK_{index}_{j}") for j in range(len(entry.metric_masks))]
    datasets.update(dict(zip(metric_keys, entry.metric_masks, strict=True)))
    specs.update({k: gp.ArraySpec(voxel_size=vs, interpolatable=False) for k in metric_keys})

    pipeline = gp.ZarrSource(str(store), datasets=datasets, array_specs=specs)
    # raw keeps the context around the ROI (validated to exist); everything else is the ROI
    pipeline += gp.Crop(keys.raw, roi.grow(context, context))
    for key in datasets:
        if key != keys.raw:
            pipeline += gp.Crop(key, roi)
    pipeline += MergeLabels(label_keys, keys.labels)
    pipeline += MergeMasks([mask_key], keys.mask) if mask_key else AddMask(keys.mask, keys.labels)
    pipeline += (
        MergeMasks(metric_keys, keys.metric_mask) if metric_keys else AddMask(keys.metric_mask, keys.labels)
    )
    # uint8 -> float32 in [0, 1]
    pipeline += gp.Normalize(keys.raw)
    # any organelle = 1: what the foreground rule measures
    pipeline += BinarizeLabels(keys.labels, keys.foreground)
    label_pad, raw_pad = padding_voxels(config, entry)
    if any(label_pad) or any(raw_pad):
        # regions smaller than a (rotated) block: raw mid-grey, labels background, masks count
        pipeline += gp.Pad(keys.raw, gp.Coordinate(raw_pad) * vs, value=0.5)
        pipeline += gp.Pad(keys.labels, gp.Coordinate(label_pad) * vs, value=0)
        pipeline += gp.Pad(keys.foreground, gp.Coordinate(label_pad) * vs, value=0)
        pipeline += gp.Pad(keys.mask, gp.Coordinate(label_pad) * vs, value=1)
        pipeline += gp.Pad(keys.metric_mask, gp.Coordinate(label_pad) * vs, value=1)
    # random block, usually with >= 5 % foreground in the output
    pipeline += RandomLocation(
        keys.foreground,
        min_foreground=config.reject.min_foreground,
        reject_probability=config.reject.foreground_reject_probability,
    )
    return pipeline


def build_train_pipeline(
    config: TrainConfig,
    data: DataConfig,
    keys: ArrayKeys,
    *,
    json_path: Path | None = None,
) -> gp.Pipeline:
    """The training pipeline of the original, from sources to the model-ready batch.

    Batches hold RAW (float32 in [-1, 1], input shape), LABELS (int64), MASK, METRIC_MASK,
    BACKGROUND_MASK (uint8) and LOSS_SCALINGS (float32), all but RAW at the output shape.
    """
    entries = list(data.entries.values())
    sources = tuple(
        _entry_source(
            i,
            entry,
            config,
            keys,
            store=resolve_file(entry, data_dir=config.data_dir, json_path=json_path),
        )
        for i, entry in enumerate(entries)
    )
    volumes = [float(np.prod(entry.shape)) for entry in entries]
    augmentation = config.augmentation

    # one dataset per sample, chosen in proportion to its ROI volume
    pipeline = sources + gp.RandomProvider(probabilities=volumes)
    # mostly-outside-the-cell samples are re-drawn (5 % still pass)
    pipeline += Reject(
        keys.mask,
        min_masked=config.reject.min_masked,
        reject_probability=config.reject.mask_reject_probability,
    )
    if augmentation.simple:
        # random flips and axis permutations
        pipeline += gp.SimpleAugment(transpose_only=list(augmentation.transpose_only))
    elastic = augmentation.elastic
    if elastic.enabled:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # DeformAugment differs; keep faithful
            # smooth deformation, in-plane rotation, section shifts
            pipeline += gp.ElasticAugment(
                control_point_spacing=tuple(elastic.control_point_spacing),
                jitter_sigma=tuple(elastic.jitter_sigma),
                rotation_interval=(0.0, elastic.rotation_max),
                prob_slip=elastic.prob_slip,
                prob_shift=elastic.prob_shift,
                max_misalign=elastic.max_misalign,
                subsample=elastic.subsample,
                spatial_dims=3,
            )
    if augmentation.simple:
        pipeline += gp.SimpleAugment(transpose_only=list(augmentation.transpose_only))
    if augmentation.intensity.enabled:
        scale, shift = augmentation.intensity.scale, augmentation.intensity.shift
        # mean-centred contrast and brightness jitter, clipped to [0, 1]
        pipeline += gp.IntensityAugment(keys.raw, 1 - scale, 1 + scale, -shift, shift)
    # class ids for the loss
    pipeline += gp.AsType(keys.labels, np.int64)
    # per-batch class balancing inside the sample mask
    pipeline += gp.BalanceLabels(
        keys.labels,
        keys.loss_scalings,
        mask=keys.mask,
        num_classes=config.model.num_classes,
        clipmin=config.balance.clipmin,
        clipmax=config.balance.clipmax,
    )
    # [0, 1] -> [-1, 1], the network's input range
    pipeline += gp.IntensityScaleShift(keys.raw, 2, -1)
    if config.precache_workers > 0:
        # batches produced ahead by worker processes (order then depends on timing)
        pipeline += gp.PreCache(cache_size=config.precache_size, num_workers=config.precache_workers)
    return pipeline


def build_train_request(
    config: TrainConfig, keys: ArrayKeys, voxel_size: tuple[float, ...], *, seed: int | None = None
) -> gp.BatchRequest:
    """One sample: RAW at the input shape around the output block of every other array."""
    vs = gp.Coordinate(tuple(int(v) for v in voxel_size))
    output = gp.Roi((0, 0, 0), gp.Coordinate(config.output_shape) * vs)
    context = gp.Coordinate(config.context) * vs
    request = gp.BatchRequest(random_seed=seed)
    request[keys.raw] = gp.ArraySpec(roi=output.grow(context, context))
    for key in (keys.labels, keys.mask, keys.foreground, keys.metric_mask, keys.loss_scalings):
        request[key] = gp.ArraySpec(roi=output)
    return request
