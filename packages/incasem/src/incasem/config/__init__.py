"""Pydantic configs, one per command; every run writes its resolved config next to its outputs.

The data-JSON contract of the original (training, validation and prediction share it) is
:class:`DataConfig`, read and checked against the zarr metadata by :func:`load_data_config`.
Importing this package imports neither torch nor gunpowder.
"""

from incasem.config.base import FrozenModel, load_config, write_config
from incasem.config.data import DataConfig, DataEntry, load_data_config
from incasem.config.demo import DemoConfig
from incasem.config.evaluate import EvaluateConfig
from incasem.config.model import ModelConfig
from incasem.config.predict import PredictConfig
from incasem.config.tools import ConvertConfig, EqualizeConfig, ExportTiffConfig, MetricMaskConfig
from incasem.config.train import TrainConfig

__all__ = [
    "ConvertConfig",
    "DataConfig",
    "DataEntry",
    "DemoConfig",
    "EqualizeConfig",
    "EvaluateConfig",
    "ExportTiffConfig",
    "FrozenModel",
    "MetricMaskConfig",
    "ModelConfig",
    "PredictConfig",
    "TrainConfig",
    "load_config",
    "load_data_config",
    "write_config",
]
