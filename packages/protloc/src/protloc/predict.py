"""``protloc predict``: nucleus image + protein names -> predicted protein images, tiled, as TIFF.

Images of any size are cut into tiles of ``tile`` pixels with ``margin`` pixels of context,
each tile reflect-padded to a size the network accepts, and overlapping tiles blended with
linear ramps. Several proteins give one (P, H, W) float32 TIFF whose metadata names them in order.
Intensities are in the training normalisation: the protein's P1..P99.8 range maps to 0..1.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from protloc.config import GanConfig, PredictConfig, RegressionConfig, write_config
from protloc.model import fit_input

__all__ = ["predict", "predict_image"]

logger = logging.getLogger(__name__)


@torch.no_grad()
def _run_tile(
    net: torch.nn.Module,
    config: RegressionConfig | GanConfig,
    tile: np.ndarray,
    ids: torch.Tensor,
    theta: torch.Tensor | None,
    device: torch.device,
) -> np.ndarray:
    h, w = tile.shape
    in_h, off_h = fit_input(config, h)
    in_w, off_w = fit_input(config, w)
    padded = np.pad(
        tile,
        ((off_h, in_h - h - off_h), (off_w, in_w - w - off_w)),
        mode="reflect" if min(h, w) > 1 else "edge",
    )
    x = torch.from_numpy(np.ascontiguousarray(padded, dtype=np.float32))[None, None].to(device)
    x = x.expand(len(ids), -1, -1, -1)
    if isinstance(config, GanConfig):
        assert theta is not None
        out = (net((x * 2 - 1).clamp(-1, 1), theta[ids]) + 1.0) / 2.0
    else:
        out = net(x, ids)
    return out[:, 0, :h, :w].float().cpu().numpy()


def predict_image(
    net: torch.nn.Module,
    config: RegressionConfig | GanConfig,
    nucleus: np.ndarray,
    protein_ids: list[int],
    *,
    theta: torch.Tensor | None = None,
    device: torch.device | str = "cpu",
    tile: int = 512,
    margin: int = 64,
) -> np.ndarray:
    """(P, H, W) predictions for one normalised (H, W) nucleus image and P protein ids."""
    from cellsight_shared.tiling import predict_tiled

    device = torch.device(device)
    ids = torch.tensor(protein_ids, dtype=torch.long, device=device)
    net.eval()
    image = np.asarray(nucleus, dtype=np.float32)[None]
    if max(image.shape[1:]) <= tile:
        return _run_tile(net, config, image[0], ids, theta, device)
    return predict_tiled(
        image,
        lambda t: _run_tile(net, config, t[0], ids, theta, device),
        tile_shape=tile,
        margin=margin,
        spatial_axes=(1, 2),
        blend=margin > 0,
    )


def predict(config: PredictConfig) -> Path:
    """Predict every image for every protein; returns the output folder."""
    from cellsight_shared.cli import progress
    from cellsight_shared.io import ensure_absent, write_tiff
    from cellsight_shared.provenance import write_run_info
    from protloc.checkpoint import load_checkpoint, load_generator
    from protloc.data.dataset import read_nucleus
    from protloc.train import resolve_device

    ensure_absent(config.out)
    device = resolve_device(config.device)
    net, model_config, proteins, theta = load_generator(config.checkpoint, device=device)
    ids = proteins.indices(config.proteins)  # unknown names fail here, before any work
    stored = load_checkpoint(config.checkpoint).get("percentiles", [1.0, 99.8])
    low = config.percentile_low if config.percentile_low is not None else float(stored[0])
    high = config.percentile_high if config.percentile_high is not None else float(stored[1])
    nuclei = [read_nucleus(p, channel=config.nucleus_channel, low=low, high=high) for p in config.images]
    stems = [p.name.split(".")[0] for p in config.images]
    if len(set(stems)) != len(stems):
        raise ValueError("two input images share a file name; outputs would collide, rename one")
    tmp = config.out.with_name(f".{config.out.name}.tmp")
    tmp.mkdir(parents=True, exist_ok=False)
    try:
        for path, stem, nucleus in progress(
            list(zip(config.images, stems, nuclei, strict=True)), desc="predicting", unit="image"
        ):
            out = predict_image(
                net,
                model_config,
                nucleus,
                ids,
                theta=theta,
                device=device,
                tile=config.tile,
                margin=config.margin,
            )
            write_tiff(
                tmp / f"{stem}_pred.tif",
                out.astype(np.float32),
                metadata={"axes": "CYX", "proteins": list(config.proteins), "source": str(path)},
            )
            logger.info("%s -> %s_pred.tif (%s)", path, stem, ", ".join(config.proteins))
        write_config(tmp, config)
        write_run_info(tmp, package="protloc", config=config.model_dump(mode="json"), seed=None)
        tmp.rename(config.out)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return config.out


def read_prediction(path: str | Path) -> tuple[np.ndarray, list[str]]:
    """A prediction TIFF and the protein names in its metadata."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        data = tif.asarray()
        meta = tif.shaped_metadata[0] if tif.shaped_metadata else {}
    return data, list(meta.get("proteins", []))
