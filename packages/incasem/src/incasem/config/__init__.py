"""Pydantic configs, one per command; every run writes its resolved config next to its outputs.

The data-JSON contract of the original (training, validation and prediction share it) is
:class:`DataConfig` in :mod:`incasem.config.data`.
"""

from incasem.config.base import FrozenModel, load_config, write_config

__all__ = ["FrozenModel", "load_config", "write_config"]
