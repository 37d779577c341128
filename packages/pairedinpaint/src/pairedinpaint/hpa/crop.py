"""`segment-and-crop`: single-cell crops from HPA composites, the original's procedure in modern skimage.

Per ``<GENE>/<plate>_<well>_<field>_blue_red_green.jpg``: downscale by ``scale`` (bilinear, no
anti-aliasing, as scikit-image 0.13 did), Otsu threshold of the unsmoothed nucleus channel applied
to its sigma-5 Gaussian, holes under 300 px filled, 8-connected labels, border objects cleared,
objects of <= 100 px dropped, a 128-px crop centred on each nucleus' truncated centroid (crops
crossing the edge skipped), saved as three float TIFFs ``<GENE>_<plate>_<well>/<stem>_<label>_
{blue,green,red}.tif``. Parallel over images; a ``.done`` marker per image makes reruns resume.
"""

from __future__ import annotations

import logging
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from pairedinpaint.config import CropConfig
from pairedinpaint.errors import DataError
from pairedinpaint.preprocess import block_mean_2x

logger = logging.getLogger(__name__)


def segment_nuclei(nuclei: np.ndarray, config: CropConfig) -> np.ndarray:
    """Label image of nuclei (the original's Otsu-on-Gaussian recipe)."""
    from skimage.filters import gaussian, threshold_otsu
    from skimage.measure import label
    from skimage.morphology import remove_small_holes, remove_small_objects
    from skimage.segmentation import clear_border

    if nuclei.max() == nuclei.min():
        return np.zeros(nuclei.shape, np.int32)
    mask = gaussian(nuclei, sigma=config.sigma) > threshold_otsu(nuclei)
    if config.hole_area:  # holes smaller than hole_area px are filled
        mask = _small_removed(remove_small_holes, mask, config.hole_area)
    labels = clear_border(label(mask, connectivity=2))
    return _small_removed(remove_small_objects, labels, config.min_area) if config.min_area else labels


def _small_removed(func, image: np.ndarray, area: int) -> np.ndarray:  # noqa: ANN001
    """Remove regions of fewer than ``area`` px across skimage versions (max_size is inclusive)."""
    import inspect

    if "max_size" in inspect.signature(func).parameters:
        return func(image, max_size=area - 1)
    key = "area_threshold" if "area_threshold" in inspect.signature(func).parameters else "min_size"
    return func(image, **{key: area})


def crop_image(path: Path, config: CropConfig) -> int:
    """Crop every nucleus of one composite into ``config.out``; returns the number of cells written."""
    import tifffile
    from PIL import Image
    from scipy import ndimage as ndi
    from skimage.transform import resize

    try:
        rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    except OSError as err:
        raise DataError(f"cannot read {path} ({err}); the image may be corrupt") from err
    h, w = rgb.shape[0] // config.scale, rgb.shape[1] // config.scale
    small = resize(rgb, (h, w), order=1, mode="constant", anti_aliasing=False).astype(np.float32)
    microtubules, antibody, nuclei = small[..., 0], small[..., 1], small[..., 2]
    labels = segment_nuclei(nuclei, config)
    stem = path.name.rsplit("_", 3)[0]
    folder = Path(config.out) / f"{path.parent.name}_{path.name.rsplit('_', 4)[0]}"
    ids = np.unique(labels[labels > 0])
    if config.legacy_skip_last_label and ids.size:
        ids = ids[ids < labels.max()]
    half = config.crop // 2
    written = 0
    for i in ids:
        region = labels == i
        if region.sum() <= config.min_area:
            continue
        y, x = (int(v) for v in ndi.center_of_mass(region))
        if y - half < 0 or x - half < 0 or y + half > h or x + half > w:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        for name, channel in (("blue", nuclei), ("green", antibody), ("red", microtubules)):
            crop = channel[y - half : y + half, x - half : x + half]
            while crop.shape[0] > config.save_size:
                crop = block_mean_2x(crop)
            tmp = folder / f"{stem}_{i}_{name}.tmp.tif"
            tifffile.imwrite(tmp, crop.astype(np.float32))
            tmp.replace(folder / f"{stem}_{i}_{name}.tif")
        written += 1
    return written


def _one(args: tuple[Path, CropConfig]) -> tuple[str, int]:
    path, config = args
    count = crop_image(path, config)
    marker = Path(config.out) / ".done" / f"{path.parent.name}__{path.name}.done"
    marker.write_text(str(count))
    return path.name, count


def segment_and_crop(config: CropConfig, *, progress: bool = True) -> int:
    """Crop every composite under ``config.images`` that is not done yet; returns cells written now."""
    from cellsight_shared.cli import progress as bar

    images = sorted(Path(config.images).glob("*/*_blue_red_green.jpg"))
    if not images:
        raise DataError(
            f"no <GENE>/*_blue_red_green.jpg composites under {config.images}; run download-hpa first"
        )
    done_dir = Path(config.out) / ".done"
    done_dir.mkdir(parents=True, exist_ok=True)
    todo = [p for p in images if not (done_dir / f"{p.parent.name}__{p.name}.done").exists()]
    logger.info("%d composites, %d already cropped", len(images), len(images) - len(todo))
    total = 0
    jobs = [(p, config) for p in todo]
    if config.workers > 1:
        with ProcessPoolExecutor(config.workers) as pool:
            for _, count in bar(pool.map(_one, jobs), total=len(jobs), desc="cropping", disable=not progress):
                total += count
    else:
        for job in bar(jobs, desc="cropping", disable=not progress):
            total += _one(job)[1]
    return total
