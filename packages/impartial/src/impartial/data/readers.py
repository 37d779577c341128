"""Images, labels and scribbles from disk, as channels-first arrays, validated before any work.

Layouts:
- ``tiff_roi`` (v3): ``root/<name>.tif`` images, ``root/labels/final/<name>.zip`` ImageJ ROI zips
  (or ``<name>.tif`` label images), optional ``root/scribbles/<name>.tif``.
- ``tiff_pairs``: ``root/images/<name>.tif``, ``root/labels/<name>.tif`` (instance labels),
  optional ``root/scribbles/<name>.tif``.
- ``npz_csv`` (v2): a scribble CSV with ``input_dir, input_file, scribble_file`` naming image npz
  files (``image`` (H, W, C), ``label`` (H, W, L)) and scribble npz files (``scribble`` (H, W, S),
  ``val_mask`` (H, W)). Relative or stale ``input_dir`` values resolve next to the CSV. The
  columns ``gt_index_task{t}`` ("[0]", "[1, 2]") say which label map (of the L in ``label``) each
  foreground class of task t is scored against (the original's ``ix_gt_labels``).

A scribble file is either a label image (0 = none, i = scribble channel i - 1, e.g. 1 = cell,
2 = background for one task: what napari's Labels layer or Fiji's pencil draw) or a (S, H, W)
binary stack.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from impartial.config import DataConfig
from impartial.errors import DataError

__all__ = [
    "Sample",
    "check_scribbles",
    "gt_label_indices",
    "parse_gt_index",
    "load_dataset",
    "normalize_image",
    "read_image",
    "read_label_image",
    "read_scribble_file",
]

log = logging.getLogger(__name__)
_IMAGE_SUFFIXES = (".tif", ".tiff")


@dataclass(frozen=True, eq=False)
class Sample:
    """One image with what is known about it; arrays are channels first."""

    name: str
    image: np.ndarray
    """float32 (C, H, W), normalised."""
    label: np.ndarray | None = None
    """int32 (L, H, W) ground-truth instance maps, one per GT class."""
    scribble: np.ndarray | None = None
    """uint8 (S, H, W) in {0, 1}."""
    val_mask: np.ndarray | None = None
    """uint8 (H, W), 1 inside the validation square."""
    group: str = "train"
    gt_index: tuple[tuple[int, ...], ...] | None = None
    """Per task, the label map (index into ``label``) of each foreground class (v2 CSV)."""


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    if not path.is_file():
        raise DataError(f"{path} does not exist; check the path.")
    try:
        arr = np.asarray(tifffile.imread(path))
    except Exception as err:  # tifffile raises many types for corrupt files
        raise DataError(
            f"{path} is not a readable TIFF ({type(err).__name__}: {err}); is the file complete?"
        ) from err
    if arr.size == 0:
        raise DataError(f"{path} is not a readable TIFF (no image data); is the file complete?")
    return arr


def read_image(path: str | Path) -> np.ndarray:
    """An image as float32 (C, H, W); a 3-D array's smallest axis becomes the channels."""
    path = Path(path)
    arr = _read_tiff(path) if path.suffix.lower() in _IMAGE_SUFFIXES else _read_other(path)
    arr = np.squeeze(arr)
    if arr.ndim == 2:
        arr = arr[None]
    elif arr.ndim == 3:
        arr = np.moveaxis(arr, int(np.argmin(arr.shape)), 0)
    else:
        raise DataError(f"{path}: expected a 2-D image or a 3-D multichannel image, got shape {arr.shape}")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        n = int((~np.isfinite(arr)).sum())
        raise DataError(f"{path} holds {n} NaN or infinite pixels; fill or crop them before training.")
    return arr


def _read_other(path: Path) -> np.ndarray:
    from cellsight_shared.io import read_image as shared_read

    if not path.is_file():
        raise DataError(f"{path} does not exist; check the path.")
    try:
        return np.asarray(shared_read(path))
    except Exception as err:
        raise DataError(f"{path} is not a readable image ({type(err).__name__}: {err})") from err


def normalize_image(image: np.ndarray, how: str = "global_p1_p98") -> np.ndarray:
    """(x - P1) / (P98 - P1) over the whole multichannel array, unclipped (the original's)."""
    if how == "none":
        return image.astype(np.float32)
    lo, hi = np.percentile(image, [1.0, 98.0])
    return ((image - lo) / max(float(hi - lo), 1e-6)).astype(np.float32)


def check_instance_labels(labels: np.ndarray, *, where: str, relabel: bool = False) -> np.ndarray:
    """Instance ids must be 1..N without gaps (so budgets and counts mean what they say)."""
    if labels.dtype.kind not in "iu":
        if not np.all(np.equal(np.mod(labels, 1), 0)):
            raise DataError(
                f"{where}: a label image must hold integer instance ids, got {labels.dtype} values"
            )
        labels = labels.astype(np.int64)
    if labels.min() < 0:
        raise DataError(f"{where}: label ids must be >= 0 (0 = background), found {labels.min()}")
    ids = np.unique(labels[labels > 0])
    if ids.size and ids[-1] != ids.size:
        if relabel:
            from skimage.segmentation import relabel_sequential

            return relabel_sequential(labels)[0].astype(np.int32)
        missing = sorted(set(range(1, int(ids[-1]) + 1)) - set(ids.tolist()))[:5]
        raise DataError(
            f"{where}: instance ids have gaps ({ids.size} instances but the largest id is {ids[-1]}; "
            f"missing e.g. {missing}). Relabel 1..N (skimage.segmentation.relabel_sequential) or set "
            "data.relabel = true."
        )
    return labels.astype(np.int32)


def read_label_image(path: str | Path, shape: tuple[int, int], *, relabel: bool = False) -> np.ndarray:
    """Ground-truth instances as int32 (L, H, W) from a label TIFF or an ImageJ ROI zip."""
    from impartial.data.roi import read_roi_zip

    path = Path(path)
    if path.suffix.lower() == ".zip":
        lab = read_roi_zip(path, shape)[None]
    else:
        lab = np.squeeze(_read_tiff(path))
        lab = lab[None] if lab.ndim == 2 else lab
        if lab.ndim == 3 and lab.shape[-1] < lab.shape[0]:
            lab = np.moveaxis(lab, -1, 0)
    if lab.shape[-2:] != tuple(shape):
        raise DataError(
            f"{path}: label image is {lab.shape[-2:]} but the image is {tuple(shape)}; they must match."
        )
    return np.stack([check_instance_labels(x, where=str(path), relabel=relabel) for x in lab])


def read_scribble_file(path: str | Path, shape: tuple[int, int], n_channels: int) -> np.ndarray:
    """Scribbles as uint8 (S, H, W) from a scribble label image or a binary stack."""
    path = Path(path)
    arr = np.squeeze(_read_tiff(path) if path.suffix.lower() in _IMAGE_SUFFIXES else _read_other(path))
    if arr.ndim == 2:
        values = np.unique(arr)
        bad = values[(values < 0) | (values > n_channels) | (values != np.round(values))]
        if bad.size:
            raise DataError(
                f"{path}: a scribble label image holds 0 (none) and 1..{n_channels} (the scribble channels: "
                f"foreground classes then background per task), found {bad[:5].tolist()}"
            )
        out = np.stack([(arr == i + 1) for i in range(n_channels)]).astype(np.uint8)
    elif arr.ndim == 3:
        if arr.shape[-1] == n_channels and arr.shape[0] != n_channels:
            arr = np.moveaxis(arr, -1, 0)
        if arr.shape[0] != n_channels:
            raise DataError(f"{path}: scribble stack has shape {arr.shape}; expected {n_channels} channels")
        out = (arr > 0).astype(np.uint8)
    else:
        raise DataError(f"{path}: scribbles must be 2-D or 3-D, got shape {arr.shape}")
    if out.shape[-2:] != tuple(shape):
        raise DataError(
            f"{path}: scribbles are {out.shape[-2:]} but the image is {tuple(shape)}; "
            "draw them on the same image."
        )
    return out


def check_scribbles(samples: list[Sample], n_channels: int) -> None:
    """Every training sample has (S, H, W) scribbles and the set holds foreground and background."""
    train = [s for s in samples if s.group == "train"]
    if not train:
        raise DataError("no training images: give data.train names or images with scribbles/labels")
    for s in train:
        if s.scribble is None:
            raise DataError(f"{s.name}: no scribbles; draw some or set data.scribble_budget to generate them")
        if s.scribble.shape != (n_channels, *s.image.shape[1:]):
            raise DataError(
                f"{s.name}: scribbles have shape {s.scribble.shape}, "
                f"expected {(n_channels, *s.image.shape[1:])} "
                "(scribble channels x image height x width)"
            )
    total = np.sum([s.scribble.reshape(n_channels, -1).sum(axis=1) for s in train], axis=0)
    if total.sum() == 0:
        raise DataError(
            "the training images hold no scribbles at all; draw foreground and background scribbles"
        )
    empty = [i for i, t in enumerate(total) if t == 0]
    if empty:
        log.warning("scribble channels %s are empty in every training image; their loss terms stay 0", empty)


def _resolve(csv_path: Path, input_dir: str, name: str) -> Path:
    """``input_dir / name`` (relative to the CSV) if it exists, else the file beside the CSV."""
    if input_dir:
        folder = Path(input_dir)
        folder = folder if folder.is_absolute() else csv_path.parent / folder
        if (folder / name).is_file():
            return folder / name
    return csv_path.parent / name


def _load_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError(f"{path} does not exist (named in the CSV); fix input_dir or the file names.")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in keys if k not in z.files]
            if missing:
                raise DataError(f"{path} lacks the arrays {missing} (has {z.files})")
            return {k: np.asarray(z[k]) for k in z.files}
    except (OSError, ValueError) as err:
        if isinstance(err, DataError):
            raise
        raise DataError(f"{path} is not a readable npz file ({err})") from err


def parse_gt_index(text: str, *, where: str) -> tuple[int, ...]:
    """A ``gt_index_task{t}`` cell ("[0]", "[1, 2]", "['1', ' 2']") as label-map indices."""
    body = text.strip()
    if not (body.startswith("[") and body.endswith("]")) or not body[1:-1].strip():
        raise DataError(f"{where}: expected a list of label-map indices such as [0] or [1, 2], got {text!r}")
    out = []
    for item in body[1:-1].split(","):
        item = item.strip().strip("'\"").strip()
        if not item.isdigit():
            raise DataError(f"{where}: {item!r} in {text!r} is not a label-map index (an integer >= 0)")
        out.append(int(item))
    return tuple(out)


def _gt_index_columns(row: dict[str, str], where: str) -> tuple[tuple[int, ...], ...] | None:
    tasks = []
    while f"gt_index_task{len(tasks)}" in row:
        col = f"gt_index_task{len(tasks)}"
        tasks.append(parse_gt_index(row[col] or "", where=f"{where}, column {col}"))
    known = {f"gt_index_task{t}" for t in range(len(tasks))}
    extra = sorted(k for k in row if k and k.startswith("gt_index_task") and k not in known)
    if extra:
        raise DataError(
            f"{where}: columns {extra} do not follow gt_index_task0..{len(tasks) - 1}; "
            "number the tasks from 0 without gaps"
        )
    return tuple(tasks) or None


def gt_label_indices(tasks: list, sample: Sample) -> list[list[int]]:
    """For each task and foreground class, the index of the GT label map it is scored against.

    The v2 CSV's ``gt_index_task{t}`` columns when the sample has them; otherwise one label map
    per foreground class in task order; a single label map (whole-cell labels) serves a
    single-class layout.
    """
    if sample.label is None:
        raise DataError(f"{sample.name}: no ground-truth labels to score against")
    n_maps = sample.label.shape[0]
    classes = [t.classes for t in tasks]
    if sample.gt_index is not None:
        if len(sample.gt_index) != len(tasks):
            raise DataError(
                f"{sample.name}: the CSV has gt_index_task0..{len(sample.gt_index) - 1} "
                f"({len(sample.gt_index)} tasks) but the model has {len(tasks)} tasks"
            )
        out = []
        for t, (idx, c) in enumerate(zip(sample.gt_index, classes, strict=True)):
            if len(idx) != c:
                raise DataError(
                    f"{sample.name}: gt_index_task{t} lists {len(idx)} label maps {list(idx)} but "
                    f"task {tasks[t].name!r} has {c} foreground classes"
                )
            out.append(list(idx))
    elif n_maps == sum(classes):
        starts = [sum(classes[:t]) for t in range(len(classes))]
        out = [list(range(s, s + c)) for s, c in zip(starts, classes, strict=True)]
    elif n_maps == 1 and sum(classes) == 1:
        out = [[0]]
    else:
        raise DataError(
            f"{sample.name}: {n_maps} label maps for {sum(classes)} foreground classes over "
            f'{len(tasks)} tasks; give gt_index_task{{t}} columns in the CSV (e.g. "[1, 2]")'
        )
    bad = [i for idx in out for i in idx if i >= n_maps]
    if bad:
        raise DataError(
            f"{sample.name}: gt_index names label maps {bad} but the label holds {n_maps} "
            f"(0..{n_maps - 1}); fix the gt_index_task columns"
        )
    return out


def _read_csv(path: Path | None, what: str) -> list[dict[str, str]]:
    if path is None or not Path(path).is_file():
        raise DataError(f"{what} {path} does not exist; give the v2 CSV")
    with Path(path).open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if rows and "input_file" not in rows[0]:
        raise DataError(f"{path} lacks the column 'input_file'; found {list(rows[0])}")
    return rows


def _npz_sample(
    csv_path: Path, row: dict[str, str], how: str, *, group: str, gt_index: tuple | None, where: str
) -> Sample:
    """One v2 image npz (and its scribble npz when the row names one)."""
    input_dir = row.get("input_dir") or ""
    img = _load_npz(_resolve(csv_path, input_dir, row["input_file"]), ("image",))
    image = normalize_image(np.moveaxis(np.atleast_3d(img["image"]), -1, 0).astype(np.float32), how)
    if not np.isfinite(image).all():
        raise DataError(f"{row['input_file']}: NaN or infinite pixels")
    label = None
    if "label" in img:
        lab = np.moveaxis(np.atleast_3d(img["label"]), -1, 0)
        label = np.stack([check_instance_labels(x, where=row["input_file"], relabel=True) for x in lab])
    scribble = val_mask = None
    if row.get("scribble_file"):
        scr = _load_npz(_resolve(csv_path, input_dir, row["scribble_file"]), ("scribble",))
        scribble = (np.moveaxis(np.atleast_3d(scr["scribble"]), -1, 0) > 0).astype(np.uint8)
        if "val_mask" in scr:
            val_mask = (scr["val_mask"] > 0).astype(np.uint8)
    if gt_index is not None and label is not None:
        bad = sorted({i for idx in gt_index for i in idx if i >= label.shape[0]})
        if bad:
            raise DataError(
                f"{where}: gt_index columns name label maps {bad} but "
                f"{row['input_file']} holds {label.shape[0]} (0..{label.shape[0] - 1})"
            )
    return Sample(Path(row["input_file"]).stem, image, label, scribble, val_mask, group, gt_index)


def _load_npz_csv(config: DataConfig) -> list[Sample]:
    """The scribble CSV's images (train); with ``files_csv``, its group = test images too."""
    rows = _read_csv(config.csv, "data.csv")
    how = "none" if config.normalize == "auto" else config.normalize
    samples = []
    for number, row in enumerate(rows, start=2):
        where = f"{config.csv}, line {number}"
        gt_index = _gt_index_columns(row, where)
        default = "train" if row.get("scribble_file") else "test"
        samples.append(
            _npz_sample(
                config.csv, row, how, group=row.get("group") or default, gt_index=gt_index, where=where
            )
        )
    if config.files_csv is not None:
        # the original scored every files.csv image with the first scribble row's gt_index
        first = samples[0].gt_index if samples else None
        seen = {s.name for s in samples}
        for number, row in enumerate(_read_csv(config.files_csv, "data.files_csv"), start=2):
            name = Path(row["input_file"]).stem
            if name in seen:
                continue
            if (row.get("group") or "test") != "test":
                log.warning(
                    "%s: %s is a train image without scribbles; it is not used", config.files_csv, name
                )
                continue
            where = f"{config.files_csv}, line {number}"
            row = {k: v for k, v in row.items() if k != "scribble_file"}
            samples.append(_npz_sample(config.files_csv, row, how, group="test", gt_index=first, where=where))
    return samples


def _stems(folder: Path) -> list[str]:
    return sorted(p.name.rsplit(".", 1)[0] for p in folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)


def _load_folder(config: DataConfig, n_scribble: int) -> list[Sample]:
    root = config.root
    if root is None or not root.is_dir():
        raise DataError(f"data.root {root} is not a folder; give the dataset folder")
    if config.format == "tiff_roi":
        img_dir, label_dirs = root, [root / "labels" / "final", root / "labels"]
    else:
        img_dir, label_dirs = root / "images", [root / "labels"]
        if not img_dir.is_dir():
            raise DataError(f"{img_dir} does not exist; a tiff_pairs dataset has images/ and labels/ folders")
    names = _stems(img_dir)
    wanted = list(config.train) + list(config.test)
    missing = [n for n in wanted if n not in names]
    if missing:
        raise DataError(f"images {missing} not found in {img_dir} (found {names})")
    samples = []
    how = "global_p1_p98" if config.normalize == "auto" else config.normalize
    for name in wanted or names:
        path = next(img_dir / f"{name}{s}" for s in (".tif", ".tiff") if (img_dir / f"{name}{s}").is_file())
        image = normalize_image(read_image(path), how)
        shape = image.shape[1:]
        label = None
        for d in label_dirs:
            for suffix in (".zip", ".tif", ".tiff"):
                if label is None and (d / f"{name}{suffix}").is_file():
                    label = read_label_image(d / f"{name}{suffix}", shape, relabel=config.relabel)
        scribble = None
        for suffix in (".tif", ".tiff", ".png"):
            p = root / "scribbles" / f"{name}{suffix}"
            if scribble is None and p.is_file():
                scribble = read_scribble_file(p, shape, n_scribble)
        group = "test" if name in config.test else "train"
        samples.append(Sample(name, image, label, scribble, None, group))
    return samples


def load_dataset(
    config: DataConfig, *, n_scribble_channels: int, in_channels: int | None = None
) -> list[Sample]:
    """Read every sample of ``config``; generate scribbles and validation squares where asked."""
    from impartial.scribbles import scribbles_for_images, validation_square

    if config.format == "npz_csv":
        samples = _load_npz_csv(config)
    elif config.format in ("tiff_roi", "tiff_pairs"):
        samples = _load_folder(config, n_scribble_channels)
    else:
        raise DataError(
            f"data.format {config.format!r} is not read from disk (use the demo for synthetic data)"
        )
    if in_channels is not None:
        for s in samples:
            if s.image.shape[0] != in_channels:
                raise DataError(
                    f"{s.name}: image has {s.image.shape[0]} channels but the model expects {in_channels} "
                    "(model.in_channels, or the checkpoint's)"
                )
    rng = np.random.default_rng(config.seed)
    need = [s for s in samples if s.group == "train" and s.scribble is None]
    if need and (config.scribble_budget or config.scribble_rate):
        if n_scribble_channels != 2:
            raise DataError(
                "scribbles can be generated only for a one-task, one-class layout; give scribble files"
            )
        lacking = [s.name for s in need if s.label is None]
        if lacking:
            raise DataError(f"images {lacking} have neither scribbles nor labels to generate them from")
        if config.scribble_budget:
            res = scribbles_for_images([s.label[0] for s in need], config.scribble_budget, rng=rng)
        else:
            res = [
                scribbles_for_images(
                    [s.label[0]], max(2, int(config.scribble_rate * s.label[0].max())), rng=rng
                )[0]
                for s in need
            ]
        done = {s.name: r for s, r in zip(need, res, strict=True)}
        samples = [replace(s, scribble=done[s.name].scribble) if s.name in done else s for s in samples]
    val_rng = np.random.default_rng(config.seed + 1)
    samples = [
        replace(s, val_mask=validation_square(s.scribble, val_perc=config.val_perc, rng=val_rng))
        if s.group == "train" and s.scribble is not None and s.val_mask is None
        else s
        for s in samples
    ]
    return samples
