"""Theta, the GAN's protein code: a (n_proteins, D) matrix plus its protein list.

Either random Gaussian, or the learned embedding table of a trained regression U-Net
(``protloc export-theta``), which places proteins with similar images close together. Saved as
``.safetensors`` (when the safetensors package is installed) or ``.npz``, with the protein names
in ``<file>.proteins.json`` beside it; both formats load without unpickling.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from protloc.data.proteins import ProteinList, read_protein_list
from protloc.errors import DataError

__all__ = ["proteins_path", "random_theta", "read_theta", "write_theta"]

_KEY = "theta"


def proteins_path(path: str | Path) -> Path:
    """The protein list that goes with the theta file ``path``."""
    path = Path(path)
    return path.with_name(path.name + ".proteins.json")


def random_theta(n_proteins: int, dim: int, *, seed: int, std: float = 1.0) -> np.ndarray:
    """A random Gaussian theta, N(0, std), reproducible from ``seed``."""
    rng = np.random.default_rng((seed, 0x7E7A))
    return (rng.standard_normal((n_proteins, dim)) * std).astype(np.float32)


def write_theta(
    path: str | Path, theta: np.ndarray, proteins: ProteinList, *, overwrite: bool = False
) -> Path:
    """Write theta (.safetensors or .npz, chosen by the suffix) and its protein list."""
    from cellsight_shared.io import atomic_write, ensure_absent
    from protloc.data.proteins import write_protein_list

    path = Path(path)
    theta = np.ascontiguousarray(theta, dtype=np.float32)
    if theta.ndim != 2 or theta.shape[0] != len(proteins):
        raise DataError(f"theta has shape {theta.shape}; expected ({len(proteins)}, D), one row per protein")
    ensure_absent(proteins_path(path), overwrite=overwrite)
    with atomic_write(path, overwrite=overwrite) as tmp:
        if path.suffix == ".safetensors":
            try:
                from safetensors.numpy import save_file
            except ImportError as err:
                raise DataError(
                    f"writing {path} needs the safetensors package (pip install 'protloc[safetensors]'); "
                    "or name the file .npz"
                ) from err
            save_file({_KEY: theta}, str(tmp), metadata={"proteins": str(len(proteins))})
        elif path.suffix == ".npz":
            with open(tmp, "wb") as handle:
                np.savez(handle, **{_KEY: theta})
        else:
            raise DataError(f"theta file {path}: use the suffix .npz or .safetensors")
    write_protein_list(proteins_path(path), proteins, overwrite=True)
    return path


def read_theta(path: str | Path) -> tuple[np.ndarray, ProteinList]:
    """Read a theta file and its protein list; checks that they agree."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"theta file {path} does not exist; make one with protloc export-theta")
    if path.suffix == ".safetensors":
        try:
            from safetensors.numpy import load_file
        except ImportError as err:
            raise DataError(
                f"reading {path} needs the safetensors package (pip install safetensors)"
            ) from err
        try:
            tensors = load_file(str(path))
        except Exception as err:  # noqa: BLE001 - safetensors raises its own types
            raise DataError(f"{path} is not a readable safetensors file ({err})") from err
    else:
        try:
            with np.load(path, allow_pickle=False) as data:
                tensors = {k: data[k] for k in data.files}
        except (OSError, ValueError) as err:
            raise DataError(f"{path} is not a readable NPZ theta file ({err})") from err
    if _KEY not in tensors:
        raise DataError(f"{path} holds {sorted(tensors)}; a theta file holds one array named {_KEY!r}")
    theta = np.asarray(tensors[_KEY], dtype=np.float32)
    side = proteins_path(path)
    if not side.is_file():
        raise DataError(f"theta file {path} has no protein list {side.name} beside it")
    proteins = read_protein_list(side)
    if theta.ndim != 2 or theta.shape[0] != len(proteins):
        raise DataError(
            f"{path} has shape {theta.shape} but {side.name} names {len(proteins)} proteins; "
            "they must agree (one row per protein)"
        )
    if not np.isfinite(theta).all():
        raise DataError(f"{path} holds NaN or infinite values")
    return theta, proteins


def export_theta(checkpoint: str | Path, out: str | Path, *, overwrite: bool = False) -> Path:
    """Write a trained regression U-Net's embedding table as a theta file for the GAN."""
    from protloc.checkpoint import load_checkpoint, model_config_of, proteins_of
    from protloc.config import RegressionConfig
    from protloc.errors import CheckpointError

    data = load_checkpoint(checkpoint)
    if not isinstance(model_config_of(data), RegressionConfig):
        raise CheckpointError(
            f"{checkpoint} is a GAN checkpoint; export-theta reads the embedding of a regression U-Net"
        )
    table = data["generator"].get("thetas")
    if table is None:
        raise CheckpointError(
            f"{checkpoint} has no embedding table 'thetas'; is it a protloc regression model?"
        )
    return write_theta(out, table.detach().cpu().numpy(), proteins_of(data), overwrite=overwrite)
