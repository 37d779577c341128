"""Inference: tiled, N checkpoints x M MC-dropout passes batched -> mean, variance, entropy, MI.

Per task the class distribution is [foreground classes..., background] (sums of component
softmaxes). Over the N*M samples: the mean probability, the population variance, the entropy of
the mean (total uncertainty) and the mutual information = entropy of the mean - mean entropy
(epistemic). Tiles are reflect-padded to a multiple of 16 and stitched from their cores, so any
image size works and memory stays bounded by the tile.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from impartial.config import ModelConfig, PredictConfig
from impartial.errors import DataError
from impartial.model import build_model, enable_dropout, task_slices
from impartial.train.checkpoint import checkpoint_paths, load_checkpoint

__all__ = ["Ensemble", "TaskMaps", "load_ensemble", "predict", "predict_image"]

log = logging.getLogger(__name__)
_EPS = 1e-7


@dataclass(frozen=True)
class Ensemble:
    """The model config and the state dicts of the checkpoints to average over."""

    config: ModelConfig
    states: list[dict]


@dataclass(frozen=True, eq=False)
class TaskMaps:
    """Per-task outputs: prob and variance (C+1, H, W), entropy and mutual information (H, W)."""

    prob: np.ndarray
    variance: np.ndarray
    entropy: np.ndarray
    mutual_information: np.ndarray


def load_ensemble(run: Path, n: int | None = None) -> Ensemble:
    """Load the cycle checkpoints of a run (all must share one layout)."""
    paths = checkpoint_paths(run, n)
    config, first = load_checkpoint(paths[0])
    states = [first] + [load_checkpoint(p, expect=config)[1] for p in paths[1:]]
    return Ensemble(config, states)


def _entropy(p: torch.Tensor, dim: int) -> torch.Tensor:
    return -(p * torch.log(torch.clamp(p, min=_EPS))).sum(dim=dim)


def _tile_stats(
    model: torch.nn.Module,
    ens: Ensemble,
    tile: torch.Tensor,
    mc_passes: int,
    batch: int,
    device: torch.device,
) -> np.ndarray:
    """Stacked [per task: sum p (C+1), sum p^2 (C+1), sum H(p) (1)] over all samples, then averaged."""
    layout = task_slices(ens.config)
    _, h, w = tile.shape
    ph, pw = (-h) % 16, (-w) % 16
    x = tile[None]
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="reflect" if min(h, w) > max(ph, pw) else "replicate")
    x = x.to(device)
    acc = None
    n = 0
    for state in ens.states:
        model.load_state_dict(state)
        model.eval()
        if ens.config.mc_dropout:
            enable_dropout(model)
        passes = mc_passes if ens.config.mc_dropout else 1
        for b0 in range(0, passes, batch):
            k = min(batch, passes - b0)
            with torch.no_grad():
                out = model(x.expand(k, -1, -1, -1))[:, :, :h, :w]
            chunks = []
            for ts in layout:
                comp = torch.softmax(out[:, ts.logits], dim=1)
                cls = torch.stack([comp[:, g].sum(dim=1) for g in ts.groups], dim=1)
                chunks += [cls.sum(0), (cls**2).sum(0), _entropy(cls, 1).sum(0, keepdim=True)]
            s = torch.cat(chunks).cpu()
            acc = s if acc is None else acc + s
            n += k
        if not ens.config.mc_dropout and len(ens.states) == 1:
            break
    return (acc / n).numpy()


def predict_image(
    ens: Ensemble,
    image: np.ndarray,
    *,
    mc_passes: int = 10,
    tile: int = 512,
    margin: int = 32,
    batch: int = 10,
    device: str = "cpu",
) -> dict[str, TaskMaps]:
    """Uncertainty maps for one normalised (C, H, W) image, per task name."""
    from cellsight_shared.tiling import predict_tiled

    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[0] != ens.config.in_channels:
        raise DataError(
            f"image has shape {image.shape}; the checkpoint expects "
            f"{ens.config.in_channels} channels (C, H, W)"
        )
    if not np.isfinite(image).all():
        raise DataError("image holds NaN or infinite pixels")
    dev = torch.device(device)
    model = build_model(ens.config).to(dev)
    stats = predict_tiled(
        image,
        lambda t: _tile_stats(model, ens, torch.from_numpy(np.ascontiguousarray(t)), mc_passes, batch, dev),
        tile_shape=tile,
        margin=margin,
        spatial_axes=(1, 2),
    )
    out, off = {}, 0
    for ts in task_slices(ens.config):
        c = ts.task.classes + 1
        mean, sq, mean_h = stats[off : off + c], stats[off + c : off + 2 * c], stats[off + 2 * c]
        off += 2 * c + 1
        ent = -(mean * np.log(np.clip(mean, _EPS, None))).sum(axis=0)
        out[ts.task.name] = TaskMaps(
            prob=mean.astype(np.float32),
            variance=np.clip(sq - mean**2, 0, None).astype(np.float32),
            entropy=ent.astype(np.float32),
            mutual_information=np.clip(ent - mean_h, 0, None).astype(np.float32),
        )
    return out


def write_maps(maps: dict[str, TaskMaps], folder: Path) -> list[Path]:
    """Write each map as an OME-TIFF with axes metadata (CYX or YX), never pickle."""
    from cellsight_shared.io import write_tiff

    paths = []
    for task, m in maps.items():
        for name, arr, axes in (
            ("prob", m.prob, "CYX"),
            ("variance", m.variance, "CYX"),
            ("entropy", m.entropy, "YX"),
            ("mutual_information", m.mutual_information, "YX"),
        ):
            paths.append(write_tiff(folder / f"{task}_{name}.ome.tif", arr, axes=axes, ome=True))
    return paths


def predict(config: PredictConfig) -> Path:
    """Predict every image of ``config`` into ``config.out/<image stem>/``; returns the folder."""
    from cellsight_shared.cli import progress
    from cellsight_shared.io import ensure_absent, write_json, write_tiff
    from impartial.data.readers import normalize_image, read_image
    from impartial.figures import overlay_panel
    from impartial.postprocess import threshold_instances, watershed_instances

    out = ensure_absent(config.out)
    ens = load_ensemble(config.run, config.checkpoints)
    images = []
    for path in config.images:  # read and check everything before the first forward pass
        img = read_image(path)
        if img.shape[0] != ens.config.in_channels:
            raise DataError(
                f"{path}: {img.shape[0]} channels, the checkpoint expects {ens.config.in_channels}"
            )
        images.append((Path(path), normalize_image(img, config.normalize)))
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.mkdir(parents=True)
    for path, img in progress(images, desc="images", unit="image"):
        stem = path.name.split(".")[0]
        maps = predict_image(
            ens,
            img,
            mc_passes=config.mc_passes,
            tile=config.tile,
            margin=config.margin,
            batch=config.batch,
            device=config.device,
        )
        write_maps(maps, tmp / stem)
        first = next(iter(maps.values()))
        fg = first.prob[:-1].sum(axis=0)
        inst = threshold_instances(fg, config.threshold)
        write_tiff(tmp / stem / "instances_threshold.tif", inst.astype(np.int32))
        if config.watershed:
            inst = watershed_instances(fg, config.threshold)
            write_tiff(tmp / stem / "instances_watershed.tif", inst.astype(np.int32))
        overlay_panel(img, fg, first.entropy, inst, tmp / stem / "overlay.png", title=stem)
    write_json(tmp / "config.json", json.loads(config.model_dump_json()))
    # the task order, so that evaluate can read a v2 CSV's gt_index_task{t} for a task name
    write_json(tmp / "tasks.json", [json.loads(t.model_dump_json()) for t in ens.config.tasks])
    tmp.rename(out)
    return out
