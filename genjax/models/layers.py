"""Layers shared by the model zoo.

`Dropout` takes one PRNG key *per example* at call time, so a dropout mask
depends only on (run seed, member, epoch, example index, layer), never on how examples
are laid out in batches, vmapped members or devices. Its rate is fixed at
construction, or passed at call time as an array (so one compiled program can
train members with different rates); a rate of 0 is the identity. Its mask
comes from `keep_mask`: one threefry draw per example and layer, then a cheap
counter hash per pair of units (a quarter of the cost of a 32-bit uniform per
unit; see BENCHMARKS.md, "Dropout randomness").
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

# MurmurHash3's 32-bit finalizer constants, and the golden-ratio increment (2^32 / φ).
_FMIX_1, _FMIX_2, _GOLDEN = np.uint32(0x85EBCA6B), np.uint32(0xC2B2AE35), np.uint32(0x9E3779B9)
LANE_BITS = 16   # each unit's uniform draw: a keep probability resolves to 2^-16

ACTIVATIONS = {
    "relu": jax.nn.relu,
    "gelu": jax.nn.gelu,
    "tanh": jnp.tanh,
    "elu": jax.nn.elu,
    "silu": jax.nn.silu,
    "leaky_relu": jax.nn.leaky_relu,
}


class Dropout(nnx.Module):
  """Inverted dropout: y = x * m / p, m ~ Bernoulli(p) per unit, p = round((1 − rate)·2^16)/2^16.

  Training: E[y] = x exactly, and P(dropped) is within 2^−17 of `rate`. Evaluation
  (`train=False`) or rate 0: y = x exactly. `rng` is a (B,) array of typed keys, one per
  example; the mask of example b is `keep_mask(fold_in(rng[b], layer_id), ...)`.
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
    m = jax.vmap(lambda key: keep_mask(jax.random.fold_in(key, self.layer_id), x.shape[1:],
                                       keep))(rng)
    p = keep_threshold(keep).astype(x.dtype) / (1 << LANE_BITS)
    return jnp.where(m, x / p, jnp.zeros_like(x))


def fmix32(h: jax.Array) -> jax.Array:
  """MurmurHash3's finalizer: a bijection of uint32 in which every input bit flips each
  output bit with probability ~1/2."""
  h = h ^ (h >> 16)
  h = h * _FMIX_1
  h = h ^ (h >> 13)
  h = h * _FMIX_2
  return h ^ (h >> 16)


def keep_threshold(keep) -> jax.Array:
  """t = round(keep · 2^16) as uint32: a lane u (uniform on 0..2^16−1) is kept iff u < t,
  so P(kept) = t / 2^16, within 2^−17 of `keep` (a float, or a traced array)."""
  scale = float(1 << LANE_BITS)
  if isinstance(keep, (int, float)):
    return jnp.uint32(round(keep * scale))
  return jnp.round(jnp.asarray(keep, jnp.float32) * scale).astype(jnp.uint32)


def keep_mask(key: jax.Array, shape: tuple[int, ...], keep) -> jax.Array:
  """A bool mask of `shape`, each entry True with probability round(keep·2^16)/2^16.

  With (k0, k1) the 32-bit words of the threefry key `key` and n = prod(shape) units:
  word c = fmix32(k0 ^ fmix32(k1 + φ·c)) for c = 0..W−1, W = ceil(n/2), φ = 0x9E3779B9;
  unit u < W reads word u's low 16 bits, unit u ≥ W word u−W's high 16 bits. For a fixed key
  the words are distinct (c ↦ word is a bijection of uint32), and keys are threefry outputs,
  so the mask depends on the key alone: never on batch, member or device layout.
  """
  n = math.prod(shape)
  k0, k1 = jax.random.key_data(key)
  c = jnp.arange(-(-n // 2), dtype=jnp.uint32)
  word = fmix32(k0 ^ fmix32(k1 + _GOLDEN * c))
  lanes = jnp.concatenate([word & np.uint32(0xFFFF), word >> 16])[:n]
  return (lanes < keep_threshold(keep)).reshape(shape)
