"""Configuration of ``incasem predict`` (the ``prediction.*`` keys of ``config_prediction.yaml``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from incasem.config.base import FrozenModel

__all__ = ["PredictConfig"]

Triple = tuple[int, int, int]


class PredictConfig(FrozenModel):
    """Blockwise prediction of a data JSON's regions with one checkpoint.

    Give ``checkpoint``, ``model_id`` (a published model, looked up in ``models_dir``), or both
    (the file, with the registry's metadata). Outputs go to
    ``volumes/predictions/train_<id>/predict_<n>/{prob_maps/class_<c>, segmentation}`` of ``out``
    (or, when ``out`` is not set, of each region's own container, as the original did); an
    existing prediction is never overwritten: every run takes the next free ``<n>``, and
    ``resume`` continues an interrupted run instead.
    """

    data: Path
    """Data JSON with the regions to predict (``file``, ``offset``, ``shape``, ``voxel_size``, ``raw``)."""
    data_dir: Path | None = None
    """Folder the JSON's ``file`` paths are relative to (default: the JSON's folder)."""
    checkpoint: Path | None = None
    """Checkpoint file (``.pt`` or ``model_checkpoint_<iteration>``)."""
    model_id: str | None = Field(None, pattern=r"^\d+$")
    """Published model id (1847, 1837, 1841, 1675, 1669, 1986, 2000): voxel size and names."""
    models_dir: Path = Path("models/pretrained_checkpoints")
    """Where ``incasem download`` put the published checkpoints (used with ``model_id`` only)."""
    train_id: int | None = Field(None, ge=0)
    """Number in ``train_<id>``; default: ``model_id``, else the run id stored in the checkpoint."""
    out: Path | None = None
    """Output zarr container; default: write into each region's input container."""
    input_shape: Triple = (204, 204, 204)
    """Raw block fed to the network, in voxels (8k + 4 for the default network; 204 -> 110)."""
    chunk_shape: Triple | None = None
    """Output chunks; must divide the output block (default: half the block when even, 55^3)."""
    pad_context: bool = False
    """Predict the whole ROI: read raw context beyond it (constant grey where the data ends).

    Off by default, as in the original, which leaves a rim of 47 voxels unpredicted."""
    raw_range: tuple[float, float] | None = None
    """Map raw values ``[low, high]`` linearly onto the network's input range (clipped outside).

    Needed for raw that is not uint8; the published models expect CLAHE-equalised uint8 (the
    output of ``incasem equalize``), so other raw is refused unless this is set."""
    workers: int = Field(1, ge=0, le=256)
    """daisy worker processes; 0 runs the blocks in this process (debugging, small volumes)."""
    channels_last: bool = False
    """Run the network in channels-last (NDHWC) memory format. On this project's 2-core CPU bench
    the published network's forward ran 1.57x faster (8.1 s instead of 12.7 s per 204^3 block);
    outputs equal the default's to float32 rounding (about 1e-6), not bit for bit."""
    threads_per_worker: int | None = Field(None, ge=1, le=256)
    """CPU threads of torch per worker (default: 1 per worker process, torch's default in-process)."""
    device: str = Field("cpu", pattern=r"^(cpu|cuda(:\d+)?|mps)$")
    """torch device of every worker, e.g. ``cpu``, ``cuda`` or ``cuda:1``."""
    resume: int | None = Field(None, ge=1)
    """Continue the interrupted run ``predict_<resume>`` (finished blocks are skipped)."""
    max_retries: int = Field(1, ge=0, le=10)
    """How often daisy retries a failed block before giving up on it."""
    block_timeout: float = Field(3600.0, gt=0)
    """Seconds after which a block is considered stuck; its worker is killed and it is retried."""
    worker_command: list[str] | None = None
    """Command prefix that starts each worker (cluster), e.g. ``["srun", "-c", "4", "--gpus", "1"]``.

    The worker runs ``<prefix> python -m incasem.predict.worker <settings.json>``, with the
    scheduler address in ``$DAISY_CONTEXT``. Default: daisy starts local worker processes."""
    observer: Literal["file", "sqlite"] = "file"
    """Local sacred observer (a MongoObserver is added when a Mongo URL is given)."""
    name: str = Field("predict", min_length=1, max_length=100)
    """Experiment name recorded by sacred."""

    @model_validator(mode="after")
    def _model_source(self) -> PredictConfig:
        if self.checkpoint is None and self.model_id is None:
            raise ValueError(
                "give a checkpoint file (checkpoint = 'path') or a published model id "
                "(model_id = '1847'), or both"
            )
        if self.raw_range is not None and not self.raw_range[0] < self.raw_range[1]:
            raise ValueError(f"raw_range must be [low, high] with low < high, got {list(self.raw_range)}")
        return self
