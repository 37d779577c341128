"""``isl predict``: whole-image prediction of every label for wells, with statistics and panels.

For each well: the top-left ``crop_size`` region (the original's stitch_crop_size; all by
default) is predicted fully convolutionally, the per-pixel 256-bin distributions are reduced to
mode/median/mean/std/entropy, each statistic of each predicted channel is written as a 16-bit
image, and ``target_error_panel.png`` / ``input_error_panel.png`` are drawn as the original did.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from isl import __version__
from isl.config import DataConfig, ModelConfig, PredictConfig, TrainConfig, save_config
from isl.data import PatchLayout, WellFiles, check_wells, find_wells, interleave
from isl.errors import CheckpointError, ConfigError, ResourceError
from isl.figures import PanelRow, write_error_panel
from isl.outputs import PREDICTION_INFO, statistic_filename, write_statistic

__all__ = ["load_network", "predict"]

logger = logging.getLogger(__name__)


def _resolve_checkpoint(config: PredictConfig) -> tuple[ModelConfig, DataConfig, Path, bool]:
    """(model config, data config, checkpoint location, is an isl run) for ``config.checkpoint``."""
    source = Path(config.checkpoint)
    if not source.exists():
        raise CheckpointError(
            f"checkpoint {source} does not exist; give an isl run directory or a TF1 checkpoint"
        )
    stored = source / "config.json"
    if stored.is_file():
        from cellsight_shared.io import read_json

        run = TrainConfig.model_validate(read_json(stored))
        for name in ("model", "data"):
            given = getattr(config, name)
            if given is not None and given != getattr(run, name):
                raise ConfigError(
                    f"'{name}' is set in the predict config but differs from the run's own "
                    f"({stored}); remove it from the predict config"
                )
        return run.model, run.data, source / "checkpoints", True
    return config.model or ModelConfig(), config.data or DataConfig(), source, False


def load_network(model: ModelConfig, checkpoint: Path, *, isl_run: bool) -> tuple[Any, int]:
    """Build the network and restore weights; return it with the checkpoint's step."""
    import tensorflow as tf

    from isl.model import build_model

    net = build_model(model)
    if isl_run:
        latest = tf.train.latest_checkpoint(str(checkpoint))
        if latest is None:
            raise CheckpointError(f"{checkpoint} holds no checkpoint; train first")
        step = tf.Variable(0, dtype=tf.int64)
        status = tf.train.Checkpoint(model=net, step=step).restore(latest)
        status.expect_partial()
        status.assert_existing_objects_matched()
        return net, int(step.numpy())
    from isl.checkpoint import load_tf1_checkpoint

    report = load_tf1_checkpoint(net, checkpoint)
    step = getattr(report, "global_step", None)
    return net, int(step or 0)


def _prepare(config: PredictConfig, model: ModelConfig, data: DataConfig) -> list[WellFiles]:
    wells = find_wells(config.wells)
    names = [w.name for w in wells]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"several wells are named {duplicates}; their outputs would collide")
    check_wells(
        wells,
        input_channels=data.input_channels,
        model_input_channels=model.input_channels,
        min_size=250 if config.pad == "none" else 1,
    )
    unknown = sorted(set(config.channels or ()) - set(model.target_channels))
    if unknown:
        raise ConfigError(
            f"channels {unknown} are not predicted by this network; it predicts {list(model.target_channels)}"
        )
    for well in wells:
        target = config.out / well.name
        if target.exists() and not config.overwrite:
            raise ConfigError(f"{target} exists; set overwrite = true or choose another --out")
    return wells


def predict(config: PredictConfig) -> Path:
    """Predict every well of ``config``; return the output directory."""
    model, data, checkpoint, isl_run = _resolve_checkpoint(config)
    wells = _prepare(config, model, data)
    net, step = load_network(model, checkpoint, isl_run=isl_run)
    config.out.mkdir(parents=True, exist_ok=True)
    save_config(config, config.out)
    from cellsight_shared.provenance import write_run_info

    write_run_info(
        config.out,
        package="isl",
        config=config.model_dump(mode="json"),
        seed=None,
        extra={"checkpoint_step": step, "model": model.model_dump(mode="json")},
    )
    logger.info("isl %s: predicting %d well(s) with the step-%d network", __version__, len(wells), step)
    from cellsight_shared.cli import progress

    for well in progress(wells, desc="predict", unit="well"):
        _predict_well(config, model, data, net, well, step)
    return config.out


def _predict_well(
    config: PredictConfig, model: ModelConfig, data: DataConfig, net: Any, well: WellFiles, step: int
) -> Path:
    from isl.inference import original_input_crop, output_region, predict_statistics

    layout = PatchLayout(
        num_z_values=model.num_z_values,
        model_input_channels=tuple(model.input_channels),
        target_channels=tuple(model.target_channels),
        patch_size=250,
        output_size=8,
        input_channels=tuple(data.input_channels),
        derived_channels=dict(data.derived_channels),
    )
    images = layout.load(well)
    rows, cols = well.shape
    if config.original_extent:
        rows, cols = original_input_crop(rows, cols, stitch_crop_size=config.crop_size or max(rows, cols))
    elif config.crop_size is not None:
        rows, cols = min(rows, config.crop_size), min(cols, config.crop_size)
    in_values, in_masks = images.input_planes(model.num_z_values, model.input_channels, (0, 0, rows, cols))
    stack = interleave(in_values, in_masks)
    channels = config.channels or tuple(c for c in model.target_channels if _present(images, c, data))
    # Only the heads whose outputs are written: the 26 input heads cost 3/4 of the head
    # arithmetic and are computed only for the input panel.
    heads = [f"MAXPROJECT/{c}" for c in channels]
    if config.input_panel:
        heads = list(model.input_head_names) + heads
    panel_stats = ("median",) if config.simplify_panels else ("mode", "median", "mean", "std")
    row0, col0, out_rows, out_cols = output_region(rows, cols, reflect_pad=config.pad == "reflect")
    panel_values = in_values if config.input_panel else None  # only the input panel reuses them
    del in_values
    import tensorflow as tf

    # Statistics stream to disk tile by tile (one plane per statistic and head), so memory does
    # not grow with the crop's area times the number of heads; the planes go once images exist.
    scratch = tempfile.TemporaryDirectory(prefix=f".{well.name}.statistics-", dir=config.out)
    try:
        predicted = predict_statistics(
            net,
            stack,
            reflect_pad=config.pad == "reflect",
            exact=config.stitching == "exact",
            heads=heads,
            show_progress=True,
            store_dir=Path(scratch.name),
            **({"tile_size": config.tile_size} if config.tile_size else {}),
        )
    except tf.errors.ResourceExhaustedError as err:
        scratch.cleanup()
        raise ResourceError(
            f"{well.name}: TensorFlow ran out of memory predicting a {rows}x{cols} crop with "
            f"{len(heads)} heads; set a smaller tile_size (now {config.tile_size or 'default'}), "
            "a smaller crop_size, fewer channels, or input_panel = false"
        ) from err
    except BaseException:
        scratch.cleanup()
        raise
    del stack
    with scratch:
        return _write_well(
            config, model, data, well, step, images, layout, predicted, channels,
            region=(row0, col0, out_rows, out_cols), in_values=panel_values, in_masks=in_masks,
            panel_stats=panel_stats,
        )  # fmt: skip


def _write_well(
    config: PredictConfig,
    model: ModelConfig,
    data: DataConfig,
    well: WellFiles,
    step: int,
    images: Any,
    layout: PatchLayout,
    predicted: Any,
    channels: tuple[str, ...],
    *,
    region: tuple[int, int, int, int],
    in_values: np.ndarray | None,
    in_masks: np.ndarray,
    panel_stats: tuple[str, ...],
) -> Path:
    """Write one well's statistic images, panels and prediction.json (atomically)."""
    from cellsight_shared.io import atomic_write, write_json

    row0, col0, out_rows, out_cols = region
    if next(iter(predicted.values())).shape[:2] != (out_rows, out_cols):
        raise RuntimeError("prediction does not cover the region output_region() promised")
    truth, truth_masks = images.target_images(channels, layout.derived_channels, region)
    offset = model.num_input_heads if config.input_panel else 0

    with atomic_write(config.out / well.name, overwrite=config.overwrite) as tmp:
        folder = Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for c, channel in enumerate(channels):
            for statistic in config.statistics:
                image = predicted[statistic][..., offset + c]
                write_statistic(folder / statistic_filename(channel, statistic, config.image_format), image)
        target_rows = (
            PanelRow(
                statistics={s: predicted[s][..., offset + c] for s in panel_stats},
                truth=truth[..., c],
                mask=np.full((out_rows, out_cols), truth_masks[c], np.float32),
            )
            for c in range(len(channels))
        )
        if channels:
            write_error_panel(folder / "target_error_panel.png", target_rows, simplify=config.simplify_panels)
        if in_values is not None:
            in_truth = in_values[row0 : row0 + out_rows, col0 : col0 + out_cols]
            in_truth = in_truth.reshape(out_rows, out_cols, -1)
            input_rows = (
                PanelRow(
                    statistics={s: predicted[s][..., h] for s in panel_stats},
                    truth=in_truth[..., h],
                    mask=np.full((out_rows, out_cols), in_masks.reshape(-1)[h], np.float32),
                )
                for h in range(model.num_input_heads)
            )
            write_error_panel(folder / "input_error_panel.png", input_rows, simplify=config.simplify_panels)
        write_json(
            folder / PREDICTION_INFO,
            {
                "well": str(well.directory.resolve()),
                "region": list(region),
                "channels": list(channels),
                "statistics": list(config.statistics),
                "image_format": config.image_format,
                "derived_channels": {k: list(v) for k, v in data.derived_channels.items()},
                "checkpoint": str(Path(config.checkpoint).resolve()),
                "checkpoint_step": step,
                "pad": config.pad,
                "stitching": config.stitching,
                "isl_version": __version__,
            },
        )
    logger.info("%s: predicted %dx%d pixels of %s", well.name, out_rows, out_cols, list(channels))
    return config.out / well.name


def _present(images: Any, channel: str, data: DataConfig) -> bool:
    sources = data.derived_channels.get(channel, (channel,))
    return all(s in images.projections for s in sources)
