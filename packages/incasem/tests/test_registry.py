"""The published-model registry shipped as package data."""

import pytest

from incasem.config.model import ModelConfig
from incasem.errors import ConfigError
from incasem.registry import get_model, list_models, load_registry


def test_registry_lists_the_seven_published_models():
    """Ids 1847/1837/1841 (CF, 5 nm), 1675/1669 (HPF, 4 nm), 1986/2000 (HPF, 5 nm)."""
    models = {m.id: m for m in list_models()}
    assert sorted(models) == ["1669", "1675", "1837", "1841", "1847", "1986", "2000"]
    assert {i for i, m in models.items() if m.preparation == "CF"} == {"1837", "1841", "1847"}
    assert models["1675"].voxel_size == (4, 4, 4)
    assert models["1669"].voxel_size == (4, 4, 4)
    assert models["1986"].voxel_size == (5, 5, 5)
    assert models["1841"].organelle == "endoplasmic reticulum"
    assert models["2000"].organelle == "nuclear pores"


def test_cf_models_name_their_published_checkpoint_files():
    """The three CF checkpoints have the file names of the original repository."""
    assert get_model("1847").checkpoint == "model_checkpoint_1847_mito_CF.pt"
    assert get_model(1837).checkpoint == "model_checkpoint_1837_golgi_CF.pt"
    assert get_model("1841").checkpoint == "model_checkpoint_1841_er_CF.pt"
    assert get_model("1675").checkpoint is None  # unpublished name, found by listing the bucket


def test_every_model_is_the_default_two_class_unet():
    """Architecture: the published U-Net (204 -> 110) with background + one organelle."""
    for model in list_models():
        assert model.model == ModelConfig()
        assert model.model.output_shape((204, 204, 204)) == (110, 110, 110)
        assert len(model.classes) == 2
        assert model.classes[0] == "background"
        assert model.train_id == int(model.id)


def test_registry_points_at_the_public_bucket():
    """Checkpoints live under models/pretrained_checkpoints/ of s3://asem-project."""
    registry = load_registry()
    assert registry.bucket == "asem-project"
    assert registry.checkpoint_prefix == "models/pretrained_checkpoints/"


def test_unknown_model_id_lists_the_known_ones():
    """A typo names every valid id."""
    with pytest.raises(ConfigError, match="1847 .*1837 .*2000"):
        get_model("1848")
