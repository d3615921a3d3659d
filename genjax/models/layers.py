"""Layers shared by the model zoo.

`Dropout` takes one PRNG key *per example* at call time, so a dropout mask
depends only on (run seed, epoch, example index, layer), never on how examples
are laid out in batches, vmapped members or devices. Its rate is fixed at
construction, or passed at call time as an array (so one compiled program can
train members with different rates); a rate of 0 is the identity.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

ACTIVATIONS = {
    "relu": jax.nn.relu,
    "gelu": jax.nn.gelu,
    "tanh": jnp.tanh,
    "elu": jax.nn.elu,
    "silu": jax.nn.silu,
    "leaky_relu": jax.nn.leaky_relu,
}


class Dropout(nnx.Module):
  """Inverted dropout: y = x * m / (1 - rate), m ~ Bernoulli(1 - rate) per unit.

  Training: E[y] = x. Evaluation (`train=False`) or rate 0: y = x exactly.
  `rng` is a (B,) array of typed keys, one per example; the mask of example b
  is drawn from `fold_in(rng[b], layer_id)`.
  """

  def __init__(self, rate: float, layer_id: int):
    self.rate = float(rate)
    self.layer_id = int(layer_id)

  def __call__(self, x: jax.Array, *, train: bool, rng: jax.Array | None,
               rate: jax.Array | float | None = None) -> jax.Array:
    """`rate` (a scalar, possibly traced) overrides the constructed rate."""
    if rate is None:
      rate = self.rate
      if rate == 0.0:
        return x
    if not train:
      return x
    if rng is None:
      raise ValueError("Dropout in training mode needs per-example keys (rng=...).")
    keep = 1.0 - rate

    def mask(key):
      return jax.random.bernoulli(jax.random.fold_in(key, self.layer_id), keep, x.shape[1:])

    m = jax.vmap(mask)(rng)
    return jnp.where(m, x / keep, jnp.zeros_like(x))
