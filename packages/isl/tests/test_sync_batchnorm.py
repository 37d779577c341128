"""Batch norm under ``mirrored``: global-batch statistics make two replicas equal one device.

Each check trains the same network from the same weights on the same batch of 4, once on one
device and once split 2 + 2 over two logical CPU devices, and compares the losses of steps 1 and
2, the step-1 gradients (read back from Adam's first moment, which after one step is
``(1 - beta1) * gradient``), the moving statistics and the weights after each step.

Float32 tolerances: both paths add the same numbers in different orders, so the step-1 loss and
gradients agree to rounding. Adam's first update is about ``lr * sign(gradient)``, so a gradient
component that is zero up to rounding can move its weight by up to ``lr`` either way; step 2 and
the updated weights amplify rounding accordingly. Each test measures that floor on one device (the
same batch in reversed order). The small network is held to fixed float32 bounds and to the floor;
the real network, where rounding also grows through 211 BN layers, to ten times the floor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from conftest import two_logical_cpus  # noqa: E402

from isl.config import ModelConfig  # noqa: E402

TWO_CPUS = two_logical_cpus()

needs_two_cpus = pytest.mark.skipif(not TWO_CPUS, reason="could not create two logical CPU devices")

LEARNING_RATE = 1e-3
BATCH = 4


def make_two_module_network(config: ModelConfig, seed: int = 0) -> Any:
    """The real building blocks, small: projection, two in-scale Minception modules, BN heads.

    Five :class:`isl.model.layers.BatchNorm` layers (expand and reduce of each module, one shared
    head unit), the original's rv2 units and residual paths; output = input - 4 px.
    """
    from isl.model.layers import Minception, Projection, ResidualV2Conv
    from isl.model.plan import ModuleSpec

    class TwoModuleNetwork(tf.Module):
        def __init__(self) -> None:
            super().__init__(name="two_module")
            rng = np.random.default_rng(seed)
            self.head_names = tuple(config.head_names)
            self.num_classes = config.num_classes
            self.projection = Projection(config.input_depth, 6, rng)
            sizes = dict(in_size=0, out_size=0, in_level=0, out_level=0)  # unused by the layers
            specs = [
                ModuleSpec(
                    name=f"m{i}", kind="in_scale", in_depth=d, expansion=12, reduction=8, out_depth=8, **sizes
                )
                for i, d in enumerate((6, 8))
            ]
            self.modules_ = [Minception(spec, rng) for spec in specs]
            self.head = ResidualV2Conv(
                "head", 8, len(self.head_names) * config.num_classes, kernel=1, stride=1, rng=rng, bias=True
            )

        @staticmethod
        def output_size(size: int) -> int:
            return size - 4

        def __call__(self, x, training: bool = False):  # noqa: ANN001, ANN204
            h = self.projection(tf.convert_to_tensor(x, tf.float32))
            for module in self.modules_:
                h = module(h, training=training)
            y = self.head(h, training=training)
            shape = tf.shape(y)
            return tf.reshape(y, [shape[0], shape[1], shape[2], len(self.head_names), self.num_classes])

    return TwoModuleNetwork()


def _batch(model: ModelConfig, size: int, out: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.3, 0.2, (BATCH, size, size, model.input_depth)).astype(np.float32)
    x[..., 1::2] = 1.0  # the presence-mask channels
    bins = rng.integers(0, model.num_classes, (BATCH, out, out, model.num_heads)).astype(np.int32)
    weights = np.ones((BATCH, out, out, model.num_heads), np.float32)
    return x, bins, weights


def _train_two_steps(
    strategy: tf.distribute.Strategy,
    factory: Callable[[ModelConfig, int], Any],
    model: ModelConfig,
    batch: tuple[np.ndarray, ...],
    *,
    sync: bool = True,
) -> dict[str, Any]:
    """Two real training steps (isl's own train step); losses, step-1 gradients, states."""
    from isl.model.layers import BatchNorm
    from isl.optimizer import Adam
    from isl.train import set_batch_norm_sync
    from isl.train.run import _make_train_step

    with strategy.scope():
        net = factory(model, 2)
        assert set_batch_norm_sync(net, sync) > 0
        optimizer = Adam(net.trainable_variables, learning_rate=LEARNING_RATE)
        step = tf.Variable(0, dtype=tf.int64)
    train_step = _make_train_step(strategy, net, optimizer, model.num_input_heads, step)

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        # One pipeline; the replicas take consecutive per-replica batches (as isl's input does).
        per_replica = context.get_per_replica_batch_size(BATCH)
        return tf.data.Dataset.from_tensor_slices(batch).batch(per_replica).repeat()

    iterator = iter(strategy.distribute_datasets_from_function(dataset_fn))
    layers = [m for m in net.submodules if isinstance(m, BatchNorm)]
    result: dict[str, Any] = {"losses": [], "weights": [], "moving": []}
    for i in range(2):
        result["losses"].append(float(train_step(iterator)[0].numpy()))
        step.assign(i + 1)
        if i == 0:
            result["gradients"] = [m.numpy() / (1.0 - optimizer.beta1) for m in optimizer.m]
        result["weights"].append([v.numpy() for v in net.trainable_variables])
        # Replica 0's copy and the cross-replica mean (they must agree too).
        result["moving"].append(
            [
                (b.moving_mean.values[0].numpy(), b.moving_variance.values[0].numpy())
                if hasattr(b.moving_mean, "values")
                else (b.moving_mean.numpy(), b.moving_variance.numpy())
                for b in layers
            ]
        )
        result.setdefault("moving_read", []).append(
            [(b.moving_mean.numpy(), b.moving_variance.numpy()) for b in layers]
        )
    return result


def _batch_statistics(moving: list[list[tuple[np.ndarray, np.ndarray]]]) -> list[np.ndarray]:
    """The batch statistics each step folded into the moving averages (mean, unbiased variance).

    ``moving = decay * moving + (1 - decay) * statistic``, so a moving average moves by only 1e-3
    of a statistic's difference: comparing the recovered statistics is the sharp check.
    """
    from isl.model.layers import BN_MOMENTUM

    start = [(np.zeros_like(m), np.ones_like(v)) for m, v in moving[0]]
    out = []
    for before, after in zip([start, *moving[:-1]], moving, strict=True):
        for (m0, v0), (m1, v1) in zip(before, after, strict=True):
            for a, b in ((m0, m1), (v0, v1)):
                out.append((b.astype(np.float64) - BN_MOMENTUM * a) / (1.0 - BN_MOMENTUM))
    return out


def _gradient_error(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Largest |a - b| over all gradients, relative to the largest |b|.

    Relative to the global scale, not per array: the projection's biases feed batch norm, so their
    exact gradient is 0 and what is computed is rounding noise in either run.
    """
    scale = max(float(np.abs(y).max()) for y in b)
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True)) / scale


def _weight_error(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True))


def _assert_equal_runs(one: dict[str, Any], two: dict[str, Any], *, step2_rel: float) -> None:
    """``two`` (mirrored) equals ``one`` (one device) within float32 rounding and Adam's amplification."""
    # Step 1: the same sums in another order.
    assert two["losses"][0] == pytest.approx(one["losses"][0], rel=2e-6, abs=0)
    assert _gradient_error(two["gradients"], one["gradients"]) < 1e-4
    want_stats = _batch_statistics(one["moving"])
    for key in ("moving", "moving_read"):  # replica 0's copy, and the value read across replicas
        for got, want in zip(_batch_statistics(two[key]), want_stats, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)
    # Adam's step-1 update is lr * g / (|g| + 1e-8): a gradient that is 0 up to rounding (the
    # projection's biases) moves its weight by a fraction of lr that rounding decides.
    assert _weight_error(two["weights"][0], one["weights"][0]) < 0.1 * LEARNING_RATE
    assert _weight_error(two["weights"][1], one["weights"][1]) < 0.2 * LEARNING_RATE
    assert two["losses"][1] == pytest.approx(one["losses"][1], rel=step2_rel, abs=0)


def _statistics_error(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.max(np.abs(x - y) / (1e-3 + np.abs(y)))) for x, y in zip(a, b, strict=True))


def _assert_within_floor(
    one: dict[str, Any], two: dict[str, Any], floor: dict[str, Any], *, factor: float = 10.0
) -> None:
    """``two`` is as close to ``one`` as ``floor`` (one device, batch reversed) is, within ``factor``.

    For a deep network rounding differences grow through the layers (and Adam's sign-like first
    update turns them into weight differences of up to 2 lr), so the bound is the one-device
    rounding floor measured in the same run; the step-1 loss keeps an absolute bound.
    """
    assert two["losses"][0] == pytest.approx(one["losses"][0], rel=2e-6, abs=0)
    floor_step2 = abs(floor["losses"][1] - one["losses"][1]) / one["losses"][1]
    assert abs(two["losses"][1] - one["losses"][1]) / one["losses"][1] <= factor * max(floor_step2, 1e-6)
    floor_gradients = _gradient_error(floor["gradients"], one["gradients"])
    assert _gradient_error(two["gradients"], one["gradients"]) <= factor * max(floor_gradients, 1e-5)
    want = _batch_statistics(one["moving"])
    floor_stats = _statistics_error(_batch_statistics(floor["moving"]), want)
    for key in ("moving", "moving_read"):
        assert _statistics_error(_batch_statistics(two[key]), want) <= factor * max(floor_stats, 1e-3)


@needs_two_cpus
def test_two_module_bn_network_on_two_replicas_equals_one_device() -> None:
    """Synchronised BN: the mirrored run is the one-device run, within the measured rounding floor.

    Unsynchronised BN, the original's per-worker statistics, must differ by more: the check
    would fail without the synchronisation.
    """
    from isl.train.strategy import make_strategy

    model = ModelConfig(num_z_values=2, target_channels=("DAPI_CONFOCAL",), base_depth=8)
    batch = _batch(model, size=20, out=16, seed=3)
    one = _train_two_steps(tf.distribute.get_strategy(), make_two_module_network, model, batch)
    reversed_batch = tuple(a[::-1].copy() for a in batch)
    floor = _train_two_steps(tf.distribute.get_strategy(), make_two_module_network, model, reversed_batch)
    mirrored = make_strategy("mirrored")
    assert mirrored.num_replicas_in_sync == 2
    two = _train_two_steps(mirrored, make_two_module_network, model, batch)
    per_replica = _train_two_steps(
        make_strategy("mirrored"), make_two_module_network, model, batch, sync=False
    )

    # The floor: one device, the same batch reversed (other float32 order), step 2 after Adam.
    floor_rel = abs(floor["losses"][1] - one["losses"][1]) / one["losses"][1]
    _assert_equal_runs(one, two, step2_rel=max(10 * floor_rel, 2e-6))
    _assert_within_floor(one, two, floor)
    # Per-replica statistics (synchronisation off): other losses, gradients and statistics.
    assert abs(per_replica["losses"][0] - one["losses"][0]) > 20 * abs(two["losses"][0] - one["losses"][0])
    assert _gradient_error(per_replica["gradients"], one["gradients"]) > 1e-2
    with pytest.raises(AssertionError):
        _assert_equal_runs(one, per_replica, step2_rel=1.0)
    with pytest.raises(AssertionError):
        _assert_within_floor(one, per_replica, floor)


@pytest.mark.slow
@needs_two_cpus
def test_real_network_on_two_replicas_equals_one_device() -> None:
    """The paper architecture (all 211 BN layers, base depth 8, 250-px patches), batch 4 on 2 CPUs."""
    from isl.model import build_model
    from isl.train.strategy import make_strategy

    model = ModelConfig(num_z_values=2, target_channels=("DAPI_CONFOCAL",), base_depth=8, projection_depth=4)
    batch = _batch(model, size=250, out=8, seed=11)

    def factory(config: ModelConfig, seed: int) -> Any:
        return build_model(config, seed=seed)

    one = _train_two_steps(tf.distribute.get_strategy(), factory, model, batch)
    reversed_batch = tuple(a[::-1].copy() for a in batch)
    floor = _train_two_steps(tf.distribute.get_strategy(), factory, model, reversed_batch)
    two = _train_two_steps(make_strategy("mirrored"), factory, model, batch)
    # Measured (shared 2-core machine): step-1 loss 2.4e-7 apart (floor 2.4e-7), step-1 gradients
    # 0.035 of the largest (floor 0.018), step-2 loss 2.4e-5 (floor 1.5e-5); per-replica BN gave
    # 5.6e-4, 1.3 and 1.9e-3.
    _assert_within_floor(one, two, floor)
