"""TF1's Adam, as the original trained with it: one fused ``ResourceApplyAdam`` per variable.

``tf.compat.v1.train.AdamOptimizer`` semantics (beta1 0.9, beta2 0.999, epsilon 1e-8 "hat"
form): ``lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)``, ``var -= lr_t * m / (sqrt(v) + eps)``.
The slots are plain variables of a ``tf.Module``, so ``tf.train.Checkpoint`` saves and restores
them; the bias-correction powers come from the step number, so they need no state of their own.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

__all__ = ["Adam"]


class Adam(tf.Module):
    """Adam with TF1's update kernel; build it (inside a strategy scope) for fixed variables."""

    def __init__(
        self,
        variables: Sequence[tf.Variable],
        *,
        learning_rate: float,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
    ) -> None:
        super().__init__(name="adam")
        self.learning_rate = float(learning_rate)
        self.beta1, self.beta2, self.epsilon = float(beta1), float(beta2), float(epsilon)
        self.m = [
            tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False, name=f"m_{i}")
            for i, v in enumerate(variables)
        ]
        self.v = [
            tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False, name=f"v_{i}")
            for i, v in enumerate(variables)
        ]

    def apply(
        self, gradients: Sequence[tf.Tensor], variables: Sequence[tf.Variable], step: tf.Tensor
    ) -> None:
        """Update ``variables`` with ``gradients``; ``step`` is the 1-based update number."""
        if len(variables) != len(self.m):
            raise ValueError(f"Adam was built for {len(self.m)} variables but got {len(variables)}")
        t = tf.cast(step, tf.float32)
        beta1_power, beta2_power = tf.pow(self.beta1, t), tf.pow(self.beta2, t)
        for variable, m, v, gradient in zip(variables, self.m, self.v, gradients, strict=True):
            if gradient is None:
                continue
            tf.raw_ops.ResourceApplyAdam(
                var=variable.handle,
                m=m.handle,
                v=v.handle,
                beta1_power=beta1_power,
                beta2_power=beta2_power,
                lr=tf.constant(self.learning_rate, variable.dtype),
                beta1=tf.constant(self.beta1, variable.dtype),
                beta2=tf.constant(self.beta2, variable.dtype),
                epsilon=tf.constant(self.epsilon, variable.dtype),
                grad=gradient,
            )
