"""Loading the published Keras 2.1 h5 weights: by conv name and BN parent, refusing mismatches."""

import numpy as np
import pytest
from legacy_h5 import write_keras2_h5

from pairedinpaint.config import ModelConfig
from pairedinpaint.errors import CheckpointError


@pytest.fixture(scope="module")
def models():
    from pairedinpaint.model import build_pair_model

    return build_pair_model(ModelConfig()), build_pair_model(ModelConfig.for_organism("human"))


@pytest.mark.parametrize("with_config", [True, False])
def test_keras2_file_loads_bit_exactly(tmp_path, models, with_config):
    """Every conv and BN tensor lands in its layer (BN by stored inbound conv, else creation order)."""
    from pairedinpaint.legacy import load_weights

    model = models[0]
    path = tmp_path / "model_weights.h5"
    expected = write_keras2_h5(path, model, seed=1, with_config=with_config)
    load_weights(model, path)
    assert len(expected) == 22
    for name, arrays in expected.items():
        for got, want in zip(model.get_layer(name).get_weights(), arrays, strict=True):
            np.testing.assert_array_equal(got, want)


def test_human_file_in_the_yeast_model_is_refused_with_the_layers_listed(tmp_path, models):
    """A file of another architecture names the layers whose shapes differ."""
    from pairedinpaint.legacy import load_weights

    yeast, human = models
    path = tmp_path / "human.h5"
    write_keras2_h5(path, human)
    with pytest.raises(CheckpointError, match=r"conv1_1: file \[\(3, 3, 3, 96\).*rfpconv1_1"):
        load_weights(yeast, path)


def test_missing_layer_is_refused(tmp_path, models):
    """A file without conv6_1 reports it as missing."""
    from pairedinpaint.legacy import load_weights

    path = tmp_path / "short.h5"
    write_keras2_h5(path, models[0], drop="conv6_1")
    with pytest.raises(CheckpointError, match="conv6_1: missing from the file"):
        load_weights(models[0], path)


def test_conversion_writes_a_keras3_file_once(tmp_path, models):
    """convert_legacy writes .weights.h5 that loads back equal; an existing target is refused."""
    from pairedinpaint.legacy import convert_legacy, load_weights
    from pairedinpaint.model import build_pair_model

    source = tmp_path / "model_weights.h5"
    expected = write_keras2_h5(source, models[0], seed=2)
    dest = convert_legacy(source, tmp_path / "yeast.weights.h5", models[0])
    fresh = build_pair_model(ModelConfig())
    load_weights(fresh, dest)
    np.testing.assert_array_equal(fresh.get_layer("conv4_1_bn").get_weights()[2], expected["conv4_1_bn"][2])
    with pytest.raises(CheckpointError, match="already exists"):
        convert_legacy(source, dest, models[0])


def test_non_keras_files_are_refused(tmp_path, models):
    """A text file or a missing file gives a CheckpointError naming it."""
    from pairedinpaint.legacy import load_weights

    bad = tmp_path / "x.h5"
    bad.write_text("not hdf5")
    with pytest.raises(CheckpointError, match="not a readable HDF5"):
        load_weights(models[0], bad)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_weights(models[0], tmp_path / "none.h5")
