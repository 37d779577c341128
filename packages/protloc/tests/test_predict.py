"""predict: multi-protein TIFFs with names, tiling, and clear errors; theta export; checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from protloc.checkpoint import load_checkpoint, load_generator
from protloc.config import PredictConfig
from protloc.errors import CheckpointError, DataError, ProteinError
from protloc.predict import predict, predict_image, read_prediction
from protloc.theta import export_theta, read_theta, write_theta


def _nucleus_file(tmp_path, size=64):
    from protloc.synthetic import synthetic_field

    field = synthetic_field("nuclear", size=size, seed=7)
    path = tmp_path / f"nucleus{size}.tif"
    tifffile.imwrite(path, np.round(100 + 3000 * field.image[0]).astype(np.uint16))
    return path


def test_several_proteins_give_one_multichannel_tiff_with_their_names(regression_run, tmp_path):
    """Two proteins -> a (2, H, W) float32 TIFF whose metadata lists them in order."""
    out = predict(
        PredictConfig(
            checkpoint=regression_run / "checkpoints" / "latest.pt",
            images=[_nucleus_file(tmp_path)],
            proteins=["NUCA", "MEMA"],
            out=tmp_path / "pred",
            device="cpu",
        )
    )
    data, names = read_prediction(out / "nucleus64_pred.tif")
    assert data.shape == (2, 64, 64) and data.dtype == np.float32 and names == ["NUCA", "MEMA"]
    assert (out / "config.json").is_file()
    with pytest.raises(ValueError, match="already exists"):
        predict(
            PredictConfig(
                checkpoint=regression_run / "checkpoints" / "latest.pt",
                images=[_nucleus_file(tmp_path)],
                proteins=["NUCA"],
                out=tmp_path / "pred",
            )
        )


def test_tiled_prediction_of_a_large_image_matches_the_whole_image(regression_run):
    """Blended tiles with enough context agree with one pass over the whole image."""
    net, config, proteins, theta = load_generator(regression_run / "checkpoints" / "latest.pt")
    nucleus = np.random.default_rng(0).random((160, 200), dtype=np.float32)
    whole = predict_image(net, config, nucleus, [0, 2], tile=256)
    tiled = predict_image(net, config, nucleus, [0, 2], tile=64, margin=24)
    assert tiled.shape == whole.shape == (2, 160, 200)
    assert np.abs(tiled - whole).mean() < 0.02 * (np.abs(whole).mean() + 1e-3) + 0.01


def test_unknown_protein_is_refused_before_any_output(regression_run, tmp_path):
    """An unknown name raises ProteinError and writes nothing."""
    with pytest.raises(ProteinError, match="unknown protein 'NUCB'.*NUCA"):
        predict(
            PredictConfig(
                checkpoint=regression_run / "checkpoints" / "latest.pt",
                images=[_nucleus_file(tmp_path)],
                proteins=["NUCB"],
                out=tmp_path / "pred",
            )
        )
    assert not (tmp_path / "pred").exists()


def test_theta_export_round_trip_and_mismatch(regression_run, tmp_path):
    """export-theta writes the embedding table and its proteins; a list of another length is refused."""
    path = export_theta(regression_run / "checkpoints" / "latest.pt", tmp_path / "theta.npz")
    theta, proteins = read_theta(path)
    table = load_checkpoint(regression_run / "checkpoints" / "latest.pt")["generator"]["thetas"].numpy()
    np.testing.assert_array_equal(theta, table)
    assert proteins.names == ("CYTA", "MEMA", "NUCA", "PUNA")
    (tmp_path / "theta.npz.proteins.json").write_text('["A", "B"]')
    with pytest.raises(DataError, match="names 2 proteins"):
        read_theta(path)
    with pytest.raises(DataError, match="one row per protein"):
        write_theta(tmp_path / "t2.npz", theta[:2], proteins)


def test_checkpoint_with_another_protein_list_is_refused(regression_run, tmp_path):
    """Weights for 4 proteins with a list of 5 fail with a CheckpointError naming the mismatch."""
    import torch

    data = load_checkpoint(regression_run / "checkpoints" / "latest.pt")
    data["proteins"] = [*data["proteins"], "EXTRA"]
    torch.save(data, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="do not fit its model config / protein list"):
        load_generator(tmp_path / "bad.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_generator(tmp_path / "junk.pt")


def test_safetensors_theta_round_trip_or_a_clear_error(tmp_path):
    """.safetensors works when the package is installed, and otherwise says how to get it."""
    from protloc.data.proteins import ProteinList
    from protloc.theta import random_theta

    proteins = ProteinList(["A", "B", "C"])
    theta = random_theta(3, 16, seed=1)
    try:
        import safetensors  # noqa: F401
    except ImportError:
        with pytest.raises(DataError, match="needs the safetensors package"):
            write_theta(tmp_path / "t.safetensors", theta, proteins)
        return
    path = write_theta(tmp_path / "t.safetensors", theta, proteins)
    loaded, names = read_theta(path)
    np.testing.assert_array_equal(loaded, theta)
    assert names == proteins


def test_protein_list_that_misses_a_protein_of_the_data_is_refused(synthetic_root, tmp_path):
    """Images of a protein the list does not name fail before training, naming the protein."""
    from protloc.config import DataConfig
    from protloc.data import load_dataset

    listing = tmp_path / "proteins.json"
    listing.write_text('["NUCA", "CYTA", "MEMA"]')
    with pytest.raises(DataError, match="PUNA"):
        load_dataset(DataConfig(root=synthetic_root, protein_list=listing))
