"""Checkpoints: original dict format, safe loading, strict checks and architecture inference."""

import pytest
import torch

from incasem.checkpoint import (
    build_model_from_checkpoint,
    infer_model_config,
    latest_checkpoint,
    load_checkpoint,
    load_model_weights,
    save_checkpoint,
)
from incasem.config.model import ModelConfig
from incasem.errors import CheckpointError
from incasem.model import UNet


class Payload:
    """A plain Python object: weights_only loading must not construct it."""


SMALL = ModelConfig(num_fmaps=2, downsample_factors=((2, 2, 2),))


def _trained_pair(seed: int = 0):
    torch.manual_seed(seed)
    model = UNet(SMALL)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-5, weight_decay=3e-5)
    x = torch.rand(1, 1, 44, 44, 44)
    model(x).sum().backward()
    optimizer.step()  # creates Adam moments, as in the published files
    return model, optimizer


def test_round_trip_restores_weights_optimizer_and_iteration(tmp_path):
    """Save -> load gives identical tensors, Adam state and the iteration number."""
    model, optimizer = _trained_pair()
    path = save_checkpoint(
        tmp_path / "model_checkpoint_1000",
        model,
        optimizer,
        iteration=1000,
        metadata={"run_id": 12, "voxel_size": [5, 5, 5]},
    )
    checkpoint = load_checkpoint(path)
    assert set(checkpoint) == {"model_state_dict", "optimizer_state_dict", "iteration", "incasem"}
    assert checkpoint["iteration"] == 1000
    assert checkpoint["incasem"]["run_id"] == 12
    restored = load_model_weights(UNet(SMALL), checkpoint)
    for key, value in model.state_dict().items():
        assert torch.equal(restored.state_dict()[key], value)
    new_optimizer = torch.optim.Adam(restored.parameters(), lr=3e-5, weight_decay=3e-5)
    new_optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
    assert new_optimizer.state_dict()["state"][0]["step"] == 1


def test_build_from_checkpoint_reproduces_outputs(tmp_path):
    """A model rebuilt from the file (architecture from metadata) gives the same logits."""
    model, _ = _trained_pair(seed=3)
    path = save_checkpoint(tmp_path / "m.pt", model)
    rebuilt, _ = build_model_from_checkpoint(path)
    x = torch.rand(1, 1, 44, 44, 44)
    with torch.inference_mode():
        assert torch.equal(model.eval()(x), rebuilt(x))
    assert rebuilt.config == SMALL
    assert not rebuilt.training


def test_published_format_without_metadata_is_inferred_from_shapes(tmp_path):
    """A file with only model/optimizer state (the published format) loads by tensor shapes."""
    model = UNet(ModelConfig(num_fmaps=4))
    path = tmp_path / "model_checkpoint_1841_er_CF.pt"
    torch.save({"model_state_dict": model.state_dict(), "optimizer_state_dict": {}}, path)
    rebuilt, _ = build_model_from_checkpoint(path)
    assert rebuilt.config == ModelConfig(num_fmaps=4)


def test_infer_model_config_of_published_architecture():
    """32 fmaps, x2, 3 downsamplings, 2 classes are read off the state dict."""
    with torch.device("meta"):
        state = UNet().state_dict()
    assert infer_model_config(state) == ModelConfig()


def test_other_architecture_raises_listing_mismatches(tmp_path):
    """Loading a 4-fmap checkpoint into the published network names tensors and the fix."""
    path = save_checkpoint(tmp_path / "other.pt", UNet(ModelConfig(num_fmaps=4)))
    with pytest.raises(CheckpointError) as info:
        load_model_weights(UNet(SMALL), path)
    message = str(info.value)
    assert "other.pt" in message
    assert "shape mismatches" in message
    assert "unet.l_conv.0.conv_pass.0.weight (4, 1, 3, 3, 3) vs (2, 1, 3, 3, 3)" in message
    assert "unexpected tensors: unet.l_conv.2" in message
    assert "num_fmaps=4" in message


def test_foreign_state_dict_is_rejected(tmp_path):
    """A checkpoint of an unrelated network is not an incasem U-Net."""
    path = tmp_path / "resnet.pt"
    torch.save({"model_state_dict": {"fc.weight": torch.zeros(3, 3)}}, path)
    with pytest.raises(CheckpointError, match="not an incasem U-Net"):
        build_model_from_checkpoint(path)
    with pytest.raises(CheckpointError, match="missing tensors: unet.l_conv.0"):
        load_model_weights(UNet(SMALL), path)


def test_pickled_objects_are_refused(tmp_path):
    """weights_only loading refuses arbitrary Python objects instead of running them."""
    path = tmp_path / "evil.pt"
    torch.save({"model_state_dict": {}, "extra": Payload()}, path)
    with pytest.raises(CheckpointError, match="refuses to unpickle"):
        load_checkpoint(path)


def test_corrupt_and_missing_files_raise_checkpoint_error(tmp_path):
    """Truncated, non-torch and absent files give CheckpointError naming the path."""
    good = save_checkpoint(tmp_path / "good.pt", UNet(SMALL))
    broken = tmp_path / "broken.pt"
    broken.write_bytes(good.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="broken.pt"):
        load_checkpoint(broken)
    text = tmp_path / "notes.pt"
    torch.save(["just", "a", "list"], text)
    with pytest.raises(CheckpointError, match="notes.pt"):
        load_checkpoint(text)
    with pytest.raises(CheckpointError, match="incasem download"):
        load_checkpoint(tmp_path / "absent.pt")


def test_save_refuses_to_overwrite(tmp_path):
    """An existing checkpoint is kept unless overwrite=True."""
    first = save_checkpoint(tmp_path / "c.pt", UNet(SMALL), iteration=1)
    with pytest.raises(Exception, match="already exists"):
        save_checkpoint(first, UNet(SMALL), iteration=2)
    assert load_checkpoint(first)["iteration"] == 1
    save_checkpoint(first, UNet(SMALL), iteration=2, overwrite=True)
    assert load_checkpoint(first)["iteration"] == 2


def test_latest_checkpoint_sorts_by_iteration_number(tmp_path):
    """model_checkpoint_10000 is later than model_checkpoint_9000 (numeric, not text, order)."""
    for iteration in (0, 9000, 10000, 500):
        (tmp_path / f"model_checkpoint_{iteration}").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    assert latest_checkpoint(tmp_path).name == "model_checkpoint_10000"
    assert latest_checkpoint(tmp_path / "absent") is None
