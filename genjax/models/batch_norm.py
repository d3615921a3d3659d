"""Batch normalization with weighted, device-reduced statistics, and the model zoo's norm layers.

`BatchNorm` normalizes the last axis: y = γ·(x − μ)/√(σ² + ε) + β. In training mode μ and σ²
are the *weighted* statistics of the batch over every other axis (P positions per example):

    n = P·Σ_i w_i,   μ = Σ_i w_i Σ_p x_ip / n,   σ² = Σ_i w_i Σ_p (x_ip − μ)² / n,

with the sums `psum`-reduced over `axis_name` when given, so that a padded example (w = 0)
never moves them and D devices give the statistics of the whole batch, as one device does.
(flax's BatchNorm averages per-device masked means with `pmean`, which differs whenever devices
hold different numbers of real examples.) The running averages r ← m·r + (1 − m)·s (biased σ²,
as flax) are updated on every training call; evaluation (`train=False`) uses them.

`NORMS`: "none", "batch" (this), "layer" (`nnx.LayerNorm`), "group" (`nnx.GroupNorm`, 8 groups
or fewer); only "batch" has state.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

NORMS = ("none", "batch", "layer", "group")


class BatchNorm(nnx.Module):
  """See the module docstring. `momentum` m of the running averages, `epsilon` ε."""

  def __init__(self, features: int, *, momentum: float = 0.9, epsilon: float = 1e-5,
               rngs: nnx.Rngs | None = None):
    del rngs
    self.scale = nnx.Param(jnp.ones((features,), jnp.float32))
    self.bias = nnx.Param(jnp.zeros((features,), jnp.float32))
    self.mean = nnx.BatchStat(jnp.zeros((features,), jnp.float32))
    self.var = nnx.BatchStat(jnp.ones((features,), jnp.float32))
    self.momentum, self.epsilon = float(momentum), float(epsilon)

  def __call__(self, x, *, train: bool, weight=None, axis_name: str | None = None):
    """y in x's dtype; statistics and running averages in float32 (so in bfloat16, too)."""
    dtype, x = x.dtype, x.astype(jnp.float32)
    if not train:
      mean, var = self.mean[...], self.var[...]
    else:
      w = jnp.ones(x.shape[:1], jnp.float32) if weight is None else weight.astype(jnp.float32)
      w = w.reshape(x.shape[:1] + (1,) * (x.ndim - 1))
      axes = tuple(range(x.ndim - 1))
      positions = x[..., 0].size // x.shape[0]
      psum = (lambda v: jax.lax.psum(v, axis_name)) if axis_name else (lambda v: v)
      n = jnp.maximum(psum(jnp.sum(w) * positions), 1.0)
      mean = psum(jnp.sum(w * x, axes)) / n
      var = psum(jnp.sum(w * jnp.square(x - mean), axes)) / n
      m = self.momentum
      self.mean[...] = m * self.mean[...] + (1 - m) * jax.lax.stop_gradient(mean)
      self.var[...] = m * self.var[...] + (1 - m) * jax.lax.stop_gradient(var)
    y = (x - mean) * jax.lax.rsqrt(var + self.epsilon) * self.scale[...] + self.bias[...]
    return y.astype(dtype)


class Norm(nnx.Module):
  """One of `NORMS` over the last axis of `features`; "none" is the identity."""

  def __init__(self, kind: str, features: int, *, rngs: nnx.Rngs):
    if kind not in NORMS:
      raise ValueError(f"unknown norm {kind!r}; choose from {', '.join(NORMS)}")
    self.kind = kind
    if kind == "batch":
      self.layer = BatchNorm(features)
    elif kind == "layer":
      self.layer = nnx.LayerNorm(features, rngs=rngs)
    elif kind == "group":
      groups = max(g for g in range(1, 9) if features % g == 0)
      self.layer = nnx.GroupNorm(features, num_groups=groups, rngs=rngs)

  def __call__(self, x, *, train: bool, weight=None, axis_name: str | None = None):
    if self.kind == "none":
      return x
    if self.kind == "batch":
      return self.layer(x, train=train, weight=weight, axis_name=axis_name)
    return self.layer(x)
