"""The concordance network of Christiansen et al. (2018) as a ``tf.Module``."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from isl.config.model import ModelConfig
from isl.errors import DataError
from isl.model import plan as _plan
from isl.model.layers import Minception, Projection, ResidualV2Conv, crop_border

__all__ = ["IslNetwork", "build_model"]

#: Pixels cropped on each side after a transposed module ("overlap" defovea).
_DECONV_CROP = 2


class IslNetwork(tf.Module):
    """Five towers at 1x-16x downsampling, merged at 36x36, an upper stack to 8x8, 256-bin heads.

    Call it on float32 inputs [B, H, W, input_depth] with H and W of the form 250 + 16k; it returns
    logits [B, H - 242, W - 242, num_heads, num_classes]. Output pixel (i, j) is predicted for input
    pixel (121 + i, 121 + j). On a 250x250 patch this is exactly the original network; on larger
    inputs the towers' centre crops become fixed margins, which is equivalent to running the patch
    network at every offset that is a multiple of 16 (inference mode only: BN in training mode
    uses the statistics of the whole input).
    """

    # Compiled functions cached by isl.inference are not part of the network's state.
    _TF_MODULE_IGNORED_PROPERTIES = tf.Module._TF_MODULE_IGNORED_PROPERTIES | {"_isl_functions"}

    def __init__(self, config: ModelConfig, *, seed: int = 0) -> None:
        super().__init__(name="isl_network")
        self.config = config
        self.plan = _plan.network_plan(config)
        rng = np.random.default_rng(seed)
        self.projection = Projection(config.input_depth, config.projection_depth, rng)
        self.towers = [[Minception(spec, rng) for spec in t.modules] for t in self.plan.towers]
        self.upper = [Minception(spec, rng) for spec in self.plan.upper]
        self.head_units = [
            ResidualV2Conv(
                _plan.head_scope(name),
                self.plan.embedding_depth,
                config.num_classes,
                kernel=1,
                stride=1,
                rng=rng,
                bias=True,
            )
            for name in config.head_names
        ]

    # -- description --------------------------------------------------------------------------

    @property
    def head_names(self) -> tuple[str, ...]:
        """Heads in output order: ``"<z>/<input channel>"`` then ``"MAXPROJECT/<target>"``."""
        return self.config.head_names

    @property
    def num_heads(self) -> int:
        """Number of heads (the second-to-last output axis)."""
        return len(self.head_units)

    @property
    def variables_by_name(self) -> dict[str, tf.Variable]:
        """Every variable under its TF1 checkpoint name, in the original's creation order."""
        named: dict[str, tf.Variable] = dict(self.projection.named_variables())
        for modules in [*self.towers, self.upper]:
            for module in modules:
                named.update(module.named_variables())
        for head in self.head_units:
            named.update(head.named_variables())
        return named

    def count_parameters(self, *, trainable_only: bool = True) -> int:
        """Number of scalar parameters (BN moving statistics only with ``trainable_only=False``)."""
        variables = self.trainable_variables if trainable_only else self.variables
        return int(sum(int(np.prod(v.shape)) for v in variables))

    #: Input pixels lost per side; output pixel (i, j) belongs to input pixel (121 + i, 121 + j).
    output_offset = _plan.MARGIN
    #: Valid input sides are 250 + 16k.
    input_grid = _plan.GRID

    @staticmethod
    def output_size(input_size: int) -> int:
        """Output side for an input side of 250 + 16k."""
        return _plan.output_size(input_size)

    @staticmethod
    def input_size(output_size: int) -> int:
        """Input side for an output side of 8 + 16k."""
        return _plan.input_size(output_size)

    # -- forward ------------------------------------------------------------------------------

    def _check_input(self, x: tf.Tensor) -> None:
        shape = x.shape
        if shape.rank != 4 or shape[-1] != self.config.input_depth:
            raise DataError(
                f"network input must be [batch, rows, columns, {self.config.input_depth}] "
                f"({self.config.num_z_values} z-values x {len(self.config.input_channels)} "
                f"channel(s) x [image, mask]); got shape {shape.as_list()}"
            )
        for axis, side in (("rows", shape[1]), ("columns", shape[2])):
            if side is not None and (side < _plan.PATCH_SIZE or (side - _plan.PATCH_SIZE) % 16):
                raise DataError(
                    f"network input {axis} = {side}; the network takes 250 + 16k pixels "
                    "(crop or pad the input, or use isl.inference.predict_image for whole images)"
                )

    def embed(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        """The trunk: inputs [B, H, W, D] -> embedding [B, H - 242, W - 242, 64]."""
        x = tf.convert_to_tensor(x, dtype=tf.float32)
        self._check_input(x)
        projected = self.projection(x)
        tower_outputs = [self.tower(s, projected, training=training) for s in range(len(self.towers))]
        return self.upper_stack(tf.concat(tower_outputs, axis=-1), training=training)

    # -- parts of the forward pass (the shared-trunk exact inference runs them piecewise) -----

    def tower(
        self,
        index: int,
        h: tf.Tensor,
        *,
        start: int = 0,
        stop: int | None = None,
        training: bool = False,
    ) -> tf.Tensor:
        """Modules ``start:stop`` of tower ``index``.

        With ``start == 0``, ``h`` is the projected input and is first cropped by the tower's
        margin; otherwise ``h`` is the output of module ``start - 1``. A transposed module's
        output is cropped by 2 px per side, as in :meth:`embed`.
        """
        if start == 0:
            h = crop_border(h, self.plan.towers[index].margin)
        for module in self.towers[index][start:stop]:
            h = module(h, training=training)
            if module.spec.kind == "up":
                h = crop_border(h, _DECONV_CROP)
        return h

    def upper_stack(
        self, h: tf.Tensor, *, start: int = 0, stop: int | None = None, training: bool = False
    ) -> tf.Tensor:
        """Upper modules ``start:stop`` on the merged tower outputs (or module ``start - 1``'s)."""
        for module in self.upper[start:stop]:
            h = module(h, training=training)
        return h

    def heads(self, embedding: tf.Tensor, training: bool = False) -> tf.Tensor:
        """All heads: embedding [B, h, w, C] -> logits [B, h, w, num_heads, num_classes].

        Each head is its own rv2 unit (BN -> [ReLU, tanh] -> 1x1 conv + bias) on the shared
        embedding; the heads are stacked on a new second-to-last axis in ``head_names`` order.
        """
        return tf.stack([unit(embedding, training=training) for unit in self.head_units], axis=-2)

    def __call__(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Inputs [B, H, W, D] -> logits [B, H - 242, W - 242, num_heads, num_classes]."""
        return self.heads(self.embed(x, training=training), training=training)


def build_model(config: ModelConfig, *, seed: int = 0) -> IslNetwork:
    """Build the network for ``config`` with slim's initialisation, seeded by ``seed``.

    Build it inside ``strategy.scope()`` to train with a ``tf.distribute`` strategy.
    """
    return IslNetwork(config, seed=seed)
