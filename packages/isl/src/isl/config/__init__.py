"""Configuration models, one per command (pydantic v2, frozen, unknown keys rejected)."""

from isl.config.base import IslConfigModel, load_config, save_config
from isl.config.data import DataConfig
from isl.config.demo import DemoConfig
from isl.config.download import DownloadConfig
from isl.config.evaluate import EvaluateConfig
from isl.config.figures import FiguresConfig
from isl.config.model import ModelConfig
from isl.config.predict import PredictConfig
from isl.config.train import TrainConfig

__all__ = [
    "DataConfig",
    "DemoConfig",
    "DownloadConfig",
    "EvaluateConfig",
    "FiguresConfig",
    "IslConfigModel",
    "ModelConfig",
    "PredictConfig",
    "TrainConfig",
    "load_config",
    "save_config",
]
