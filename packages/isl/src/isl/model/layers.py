"""Building blocks of the concordance network as ``tf.Module``s with TF1-named variables.

Written with ``tf.nn`` ops and plain ``tf.Variable``s rather than Keras layers, so that every
variable carries the name it has in the published TF1 checkpoint and the arithmetic is exactly
the original's: slim batch norm (epsilon 1e-3, decay 0.999, centre and scale), VALID padding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import tensorflow as tf

from isl.model.plan import ModuleSpec

__all__ = [
    "BN_EPSILON",
    "BN_MOMENTUM",
    "FUSION_MIN_ELEMENTS",
    "BatchNorm",
    "Minception",
    "Projection",
    "ResidualV2Conv",
    "crop_border",
    "cross_replica_sum",
    "fused_inference_activation",
    "global_moments",
    "inference_activation",
    "glorot_uniform",
]

#: slim.batch_norm defaults used by the original.
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.999


def inference_activation(parts: list[tf.Tensor], scale: tf.Tensor, shift: tf.Tensor) -> tf.Tensor:
    """concat[ReLU, tanh] of ``x * scale + shift`` for ``x`` = ``parts`` concatenated on channels.

    ``scale`` and ``shift`` are a batch norm's inference affine (:meth:`BatchNorm.affine`). The
    parts are never concatenated: each part's affine feeds one final concatenation.
    """
    normed, first = [], 0
    for part in parts:
        depth = int(part.shape[-1])
        normed.append(part * scale[first : first + depth] + shift[first : first + depth])
        first += depth
    return tf.concat([tf.nn.relu(n) for n in normed] + [tf.nn.tanh(n) for n in normed], axis=-1)


#: Inputs with fewer elements run op by op: each fused shape costs an XLA compilation (0.1-0.2 s)
#: and small activations gain little (paper network, 490-px exact tile: 3.58 s all fused, 3.72 s
#: from 4 M elements, 4.22 s op by op; first call 24 s, 12 s and 7 s).
FUSION_MIN_ELEMENTS = 1 << 22

#: The rv2 unit's inference-time BN -> [ReLU, tanh] as one XLA cluster. TensorFlow's op-by-op
#: version writes the batch norm, ReLU, tanh and their concatenation, and the reduce unit's input
#: was a concatenation too; XLA writes ReLU and tanh and one concatenation (measured op totals in
#: docs/inference_profile.md). The same arithmetic up to float32 rounding (XLA's tanh).
_fused_activation = tf.function(inference_activation, autograph=False, jit_compile=True)


def fused_inference_activation(
    parts: list[tf.Tensor], bn: BatchNorm, channels: np.ndarray | None = None
) -> tf.Tensor:
    """Inference-mode ``concat[ReLU(BN(x)), tanh(BN(x))]`` for ``x`` = ``parts`` concatenated.

    ``channels`` restricts the batch norm to those input channels (``parts`` then hold only
    them). Inputs of :data:`FUSION_MIN_ELEMENTS` or more run as one XLA cluster per input
    shape, compiled on first use.
    """
    scale, shift = bn.affine(channels)
    known = sum(int(np.prod([d for d in part.shape if d is not None])) for part in parts)
    if known >= FUSION_MIN_ELEMENTS:  # unknown dimensions (a retraced batch) count as 1
        return _fused_activation(list(parts), scale, shift)
    return inference_activation(list(parts), scale, shift)


def glorot_uniform(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Slim's default ``xavier_initializer`` (uniform), fans counted over the receptive field."""
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(np.float32)


def _variable(value: np.ndarray, name: str, *, trainable: bool = True) -> tf.Variable:
    if trainable:
        return tf.Variable(value, name=name, trainable=True)
    # Moving statistics: one copy per replica under tf.distribute, averaged when read across
    # replicas (what Keras does), so the training step may update them inside the replica context.
    return tf.Variable(
        value,
        name=name,
        trainable=False,
        synchronization=tf.VariableSynchronization.ON_READ,
        aggregation=tf.VariableAggregation.MEAN,
    )


class NamedModule(tf.Module):
    """A module whose variables are listed under their TF1 checkpoint names."""

    def named_variables(self) -> Iterator[tuple[str, tf.Variable]]:  # pragma: no cover
        """Yield ``(tf1_name, variable)`` pairs in the original's creation order."""
        raise NotImplementedError


class BatchNorm(NamedModule):
    """slim.batch_norm(scale=True): per-channel affine with moving statistics.

    Under a ``tf.distribute`` strategy with several replicas, training-mode statistics are those
    of the global batch (all replicas' slices together) when ``synchronized`` is true, the
    default: the step then computes what one device computes on the whole batch. With
    ``synchronized = False`` each replica normalises its own slice with its own statistics, as
    each of the original's asynchronous workers did (see :func:`isl.train.set_batch_norm_sync`).
    """

    def __init__(self, scope: str, depth: int) -> None:
        super().__init__()
        self.scope = scope
        self.synchronized = True
        self.beta = _variable(np.zeros(depth, np.float32), f"{scope}/beta")
        self.gamma = _variable(np.ones(depth, np.float32), f"{scope}/gamma")
        self.moving_mean = _variable(np.zeros(depth, np.float32), f"{scope}/moving_mean", trainable=False)
        self.moving_variance = _variable(
            np.ones(depth, np.float32), f"{scope}/moving_variance", trainable=False
        )

    def named_variables(self) -> Iterator[tuple[str, tf.Variable]]:
        """Yield the four variables: beta, gamma, moving_mean, moving_variance."""
        for leaf in ("beta", "gamma", "moving_mean", "moving_variance"):
            yield f"{self.scope}/{leaf}", getattr(self, leaf)

    def __call__(self, x: tf.Tensor, *, training: bool) -> tf.Tensor:
        """Normalise ``x`` [B, H, W, C]; in training use and update the batch statistics.

        The fused kernel is what slim used: one op, and in training it returns the moving averages
        already updated with the Bessel-corrected batch variance, as TF1 did. Synchronised
        training across replicas computes the same quantities from the global batch.
        """
        if not training:
            scale, shift = self.affine()
            return x * scale + shift
        context = tf.distribute.get_replica_context()
        if self.synchronized and context is not None and context.num_replicas_in_sync > 1:
            return self._synchronized_training(x, context)
        y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            x,
            self.gamma,
            self.beta,
            self.moving_mean,
            self.moving_variance,
            epsilon=BN_EPSILON,
            is_training=True,
            exponential_avg_factor=1.0 - BN_MOMENTUM,
        )
        self.moving_mean.assign(mean)
        self.moving_variance.assign(variance)
        return y

    def affine(self, channels: np.ndarray | None = None) -> tuple[tf.Tensor, tf.Tensor]:
        """Inference-mode ``(scale, shift)`` with ``BN(x) = x * scale + shift``, per channel.

        ``channels`` selects some input channels (in that order); the default is all of them.
        """
        params = [self.gamma, self.beta, self.moving_mean, self.moving_variance]
        if channels is not None:
            params = [tf.gather(v, channels) for v in params]
        gamma, beta, mean, variance = params
        scale = gamma * tf.math.rsqrt(variance + BN_EPSILON)
        return scale, beta - mean * scale

    def _synchronized_training(self, x: tf.Tensor, context: tf.distribute.ReplicaContext) -> tf.Tensor:
        """Training-mode BN with the statistics of the global batch, in one all-reduce."""
        count, mean, variance = global_moments(x, context)
        y = tf.nn.batch_normalization(x, mean, variance, self.beta, self.gamma, BN_EPSILON)
        factor = 1.0 - BN_MOMENTUM
        unbiased = variance * (count / tf.maximum(count - 1.0, 1.0))
        self.moving_mean.assign((1.0 - factor) * self.moving_mean + factor * tf.stop_gradient(mean))
        self.moving_variance.assign(
            (1.0 - factor) * self.moving_variance + factor * tf.stop_gradient(unbiased)
        )
        return y


def cross_replica_sum(value: tf.Tensor, context: tf.distribute.ReplicaContext) -> tf.Tensor:
    """``context.all_reduce(SUM, value)`` whose graph-mode tracing cost does not grow with depth.

    ``ReplicaContext.all_reduce`` wraps the reduction in a ``tf.custom_gradient`` that, in a
    ``tf.function``, walks the graph backwards from the reduced value to find variables. Under
    ``MirroredStrategy`` the reduced value depends on every other replica's whole graph, so each
    walk grows with the network and a few hundred BN layers took minutes to trace. Reducing
    ``stop_gradient`` copies ends those walks at the reduction; the gradient is the one an
    all-sum has: the all-sum of the incoming gradients.
    """

    @tf.custom_gradient
    def reduce(x: tf.Tensor) -> tuple[tf.Tensor, Callable[[tf.Tensor], tf.Tensor]]:
        def gradient(upstream: tf.Tensor) -> tf.Tensor:
            return cross_replica_sum(upstream, context)

        return context.all_reduce(tf.distribute.ReduceOp.SUM, tf.stop_gradient(x)), gradient

    return reduce(value)


def global_moments(
    x: tf.Tensor, context: tf.distribute.ReplicaContext
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Count, mean and (biased) variance per channel of ``x`` [B, H, W, C] over all replicas.

    Each replica computes its slice's count, mean and sum of squared deviations and puts them in
    its own row of an [R, 2C + 1] array; one SUM all-reduce gathers every row, and the rows are
    combined with Chan's parallel formula (no E[x^2] - E[x]^2 cancellation), so the result equals
    one device's statistics of the whole batch within float32 rounding. The all-reduce is
    differentiable, so gradients flow to every replica's inputs as they would on one device.
    """
    x = tf.convert_to_tensor(x)
    axes = [0, 1, 2]
    local_count = tf.cast(tf.reduce_prod(tf.shape(x)[:3]), x.dtype)
    local_mean = tf.reduce_mean(x, axis=axes)
    local_m2 = tf.reduce_sum(tf.math.squared_difference(x, local_mean), axis=axes)
    row = tf.concat([local_count[None], local_mean, local_m2], axis=0)
    replicas = context.num_replicas_in_sync
    slot = tf.one_hot(context.replica_id_in_sync_group, replicas, dtype=x.dtype)
    rows = cross_replica_sum(slot[:, None] * row[None, :], context)
    depth = tf.shape(local_mean)[0]
    counts = rows[:, :1]  # [R, 1]
    means = rows[:, 1 : 1 + depth]
    m2s = rows[:, 1 + depth :]
    count = tf.reduce_sum(counts)
    mean = tf.reduce_sum(counts * means, axis=0) / count
    m2 = tf.reduce_sum(m2s, axis=0) + tf.reduce_sum(counts * tf.math.squared_difference(means, mean), axis=0)
    return count, mean, m2 / count


class ResidualV2Conv(NamedModule):
    """The rv2 unit: BN -> concat[ReLU, tanh] -> conv (or transposed conv), VALID padding.

    With ``max_pool`` a max-pool of the raw (pre-BN) input with the conv's kernel and stride is
    concatenated after the conv output, so the output depth is ``depth + in_depth``.
    """

    def __init__(
        self,
        scope: str,
        in_depth: int,
        depth: int,
        *,
        kernel: int,
        stride: int,
        rng: np.random.Generator,
        deconv: bool = False,
        max_pool: bool = False,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.scope = scope
        self.kernel, self.stride, self.deconv, self.max_pool = kernel, stride, deconv, max_pool
        self.out_depth = depth
        self.bn = BatchNorm(f"{scope}/BatchNorm", in_depth)
        if deconv:
            shape = (kernel, kernel, depth, 2 * in_depth)  # slim/TF transposed layout [k,k,out,in]
            self.weights_name = f"{scope}/Conv2d_transpose/weights"
        else:
            shape = (kernel, kernel, 2 * in_depth, depth)
            self.weights_name = f"{scope}/Conv/weights"
        self.weights = _variable(glorot_uniform(rng, shape), self.weights_name)
        self.biases = _variable(np.zeros(depth, np.float32), f"{scope}/Conv/biases") if bias else None

    def named_variables(self) -> Iterator[tuple[str, tf.Variable]]:
        """Yield the BN variables, then the weights, then the biases (if any)."""
        yield from self.bn.named_variables()
        yield self.weights_name, self.weights
        if self.biases is not None:
            yield f"{self.scope}/Conv/biases", self.biases

    def __call__(self, x: tf.Tensor | list[tf.Tensor], *, training: bool) -> tf.Tensor:
        """Apply the unit to ``x`` [B, H, W, C] (or to parts concatenated on channels)."""
        parts = self.parts(x, training=training)
        return parts[0] if len(parts) == 1 else tf.concat(parts, axis=-1)

    def parts(self, x: tf.Tensor | list[tf.Tensor], *, training: bool) -> list[tf.Tensor]:
        """The output as ``[conv]`` or, with ``max_pool``, ``[conv, max-pool of the input]``.

        Left unconcatenated so that the next unit's inference activation takes them as parts;
        ``x`` may itself be such a list. Training runs TensorFlow's ops one by one (the
        fused batch norm updates the moving statistics); inference runs the fused activation.
        """
        pieces = list(x) if isinstance(x, (list, tuple)) else [x]
        if training:
            whole = pieces[0] if len(pieces) == 1 else tf.concat(pieces, axis=-1)
            normed = self.bn(whole, training=training)
            act = tf.concat([tf.nn.relu(normed), tf.nn.tanh(normed)], axis=-1)
        else:
            act = fused_inference_activation(pieces, self.bn)
        return self.convolve(act, pieces)

    def convolve(self, act: tf.Tensor, inputs: list[tf.Tensor]) -> list[tf.Tensor]:
        """The convolution of the activation ``act``, then the max-pool branch of ``inputs``."""
        k, s = self.kernel, self.stride
        if self.deconv:
            shape = tf.shape(act)
            out_shape = tf.stack([shape[0], (shape[1] - 1) * s + k, (shape[2] - 1) * s + k, self.out_depth])
            y = tf.nn.conv2d_transpose(act, self.weights, out_shape, strides=s, padding="VALID")
        else:
            y = tf.nn.conv2d(act, self.weights, strides=s, padding="VALID")
        if self.biases is not None:
            y = tf.nn.bias_add(y, self.biases)
        if not self.max_pool:
            return [y]
        x = inputs[0] if len(inputs) == 1 else tf.concat(inputs, axis=-1)
        return [y, tf.nn.max_pool2d(x, k, s, padding="VALID")]


def crop_border(x: tf.Tensor, pixels: int) -> tf.Tensor:
    """Remove ``pixels`` rows and columns on every side of the spatial axes."""
    if pixels == 0:
        return x
    # tf.slice, not x[:, p:-p, p:-p]: its gradient is one Pad, while StridedSliceGrad was 12 %
    # of a training step's op time (see docs/training_profile.md).
    x = tf.convert_to_tensor(x)
    shape = tf.shape(x)
    size = tf.stack([shape[0], shape[1] - 2 * pixels, shape[2] - 2 * pixels, shape[3]])
    y = tf.slice(x, [0, pixels, pixels, 0], size)
    static = x.shape
    if static.rank == 4:
        y.set_shape(
            [
                static[0],
                None if static[1] is None else static[1] - 2 * pixels,
                None if static[2] is None else static[2] - 2 * pixels,
                static[3],
            ]
        )
    return y


def _add_mismatched(passthrough: tf.Tensor, reduced: tf.Tensor, *, pad: bool) -> tf.Tensor:
    """The original's add_with_mismatched_depths: zero-pad the shallower (conv) or crop (deconv)."""
    a, b = passthrough.shape[-1], reduced.shape[-1]
    if a == b:
        return passthrough + reduced
    if pad:
        if a < b:
            passthrough = tf.pad(passthrough, [[0, 0], [0, 0], [0, 0], [0, b - a]])
        else:
            reduced = tf.pad(reduced, [[0, 0], [0, 0], [0, 0], [0, a - b]])
    else:
        depth = min(a, b)
        passthrough, reduced = passthrough[..., :depth], reduced[..., :depth]
    return passthrough + reduced


class Minception(NamedModule):
    """A Minception module: expand rv2 (k3/s1, k4/s2 or transposed k4/s2), 1x1 reduce rv2, residual.

    Residual paths: k3/s1 crops 1 px per side; k4/s2 crops 1 px then 2x2 average-pools; the
    transposed module upsamples by nearest neighbour and pads 1 px symmetrically.
    """

    def __init__(self, spec: ModuleSpec, rng: np.random.Generator) -> None:
        super().__init__()
        self.spec = spec
        deconv = spec.kind == "up"
        self.expand = ResidualV2Conv(
            f"{spec.name}/expand_rv2",
            spec.in_depth,
            spec.expansion,
            kernel=spec.kernel,
            stride=spec.stride,
            rng=rng,
            deconv=deconv,
            max_pool=not deconv,
        )
        reduce_in = spec.expansion if deconv else spec.expansion + spec.in_depth
        self.reduce = ResidualV2Conv(
            f"{spec.name}/reduce_rv2", reduce_in, spec.reduction, kernel=1, stride=1, rng=rng
        )

    def named_variables(self) -> Iterator[tuple[str, tf.Variable]]:
        """Yield the expand unit's variables, then the reduce unit's."""
        yield from self.expand.named_variables()
        yield from self.reduce.named_variables()

    def __call__(self, x: tf.Tensor, *, training: bool) -> tf.Tensor:
        """Apply the module to ``x`` [B, H, W, C]."""
        reduced = self.reduce(self.expand.parts(x, training=training), training=training)
        kind = self.spec.kind
        if kind == "in_scale":
            passthrough = crop_border(x, 1)
        elif kind == "down":
            passthrough = tf.nn.avg_pool2d(crop_border(x, 1), 2, 2, padding="VALID")
        else:
            upsampled = tf.nn.depth_to_space(tf.tile(x, [1, 1, 1, 4]), 2)
            passthrough = tf.pad(upsampled, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
        return _add_mismatched(passthrough, reduced, pad=kind != "up")


class Projection(NamedModule):
    """The initial 1x1 linear projection (with bias, no BN, no activation): ``Conv/*``."""

    def __init__(self, in_depth: int, depth: int, rng: np.random.Generator) -> None:
        super().__init__()
        self.weights = _variable(glorot_uniform(rng, (1, 1, in_depth, depth)), "Conv/weights")
        self.biases = _variable(np.zeros(depth, np.float32), "Conv/biases")

    def named_variables(self) -> Iterator[tuple[str, tf.Variable]]:
        """Yield ``Conv/weights`` and ``Conv/biases``."""
        yield "Conv/weights", self.weights
        yield "Conv/biases", self.biases

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        """Project ``x`` [B, H, W, input_depth] to [B, H, W, depth]."""
        return tf.nn.bias_add(tf.nn.conv2d(x, self.weights, strides=1, padding="VALID"), self.biases)
