"""Dropout masks: the formula (recomputed in numpy), the rate (statistical tests), layout independence."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from genjax import models
from genjax.errors import ConfigError
from genjax.models.layers import Dropout, keep_mask

M32 = np.uint64(0xFFFFFFFF)


def _fmix32_numpy(h):
  h = h.astype(np.uint64)
  h ^= h >> np.uint64(16)
  h = (h * np.uint64(0x85EBCA6B)) & M32
  h ^= h >> np.uint64(13)
  h = (h * np.uint64(0xC2B2AE35)) & M32
  return h ^ (h >> np.uint64(16))


def _mask_numpy(key, n, keep):
  """The documented formula, in numpy (64-bit arithmetic, reduced mod 2^32)."""
  k0, k1 = (np.uint64(v) for v in np.asarray(jax.random.key_data(key)))
  c = np.arange(-(-n // 2), dtype=np.uint64)
  word = _fmix32_numpy(k0 ^ _fmix32_numpy((k1 + np.uint64(0x9E3779B9) * c) & M32))
  lanes = np.concatenate([word & np.uint64(0xFFFF), word >> np.uint64(16)])[:n]
  return lanes < np.uint64(round(keep * 65536))


@pytest.mark.parametrize("n,keep", [(1, 0.5), (7, 0.8), (100, 0.9), (257, 0.3)])
def test_mask_equals_the_documented_formula(n, keep):
  for s in range(3):
    key = jax.random.key(s)
    np.testing.assert_array_equal(np.asarray(keep_mask(key, (n,), keep)), _mask_numpy(key, n, keep))


def test_layer_applies_its_mask_to_each_example_and_scales_by_the_exact_keep_probability():
  rate, layer_id = 0.2, 3
  keys = jax.random.split(jax.random.key(0), 5)
  x = jax.random.normal(jax.random.key(1), (5, 4, 6))
  y = np.asarray(Dropout(rate, layer_id)(x, train=True, rng=keys))
  p = round(0.8 * 65536) / 65536
  for b in range(5):
    m = _mask_numpy(jax.random.fold_in(keys[b], layer_id), 24, 0.8).reshape(4, 6)
    np.testing.assert_allclose(y[b], np.where(m, np.asarray(x[b]) / p, 0.0), rtol=1e-6)


def _masks(rate, examples=4000, units=256, layer_id=0, seed=0):
  keys = jax.random.split(jax.random.key(seed), examples)
  y = Dropout(rate, layer_id)(jnp.ones((examples, units)), train=True, rng=keys)
  return np.asarray(y) != 0   # kept


@pytest.mark.parametrize("rate", [0.05, 0.2, 0.5, 0.9])
def test_drop_rate_is_unbiased(rate):
  kept = _masks(rate)
  n, p = kept.size, round((1 - rate) * 65536) / 65536
  assert abs(p - (1 - rate)) <= 2 ** -17
  assert stats.binomtest(int(kept.sum()), n, p).pvalue > 1e-4
  # Every unit position (the low and the high 16-bit lanes alike) keeps at the same rate.
  assert stats.chisquare(kept.sum(0), np.full(kept.shape[1], kept.sum() / kept.shape[1])).pvalue > 1e-4


@pytest.mark.parametrize("pair", ["adjacent units", "lanes of one word", "next example", "next layer"])
def test_masks_are_independent(pair):
  kept = _masks(0.5)
  if pair == "adjacent units":
    a, b = kept[:, :-1], kept[:, 1:]
  elif pair == "lanes of one word":       # unit u and unit u + 128 read one 32-bit word
    a, b = kept[:, :128], kept[:, 128:]
  elif pair == "next example":
    a, b = kept[:-1], kept[1:]
  else:
    a, b = kept, _masks(0.5, layer_id=1)
  table = np.array([[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]])
  assert stats.chi2_contingency(table, correction=False).pvalue > 1e-4


def test_traced_rate_matches_the_constant_rate_and_vmapped_members_match_members_alone():
  x = jnp.ones((32, 50))
  layer = Dropout(0.0, layer_id=1)
  rates = jnp.array([0.1, 0.3, 0.6])
  member_keys = jnp.stack([jax.random.split(jax.random.key(10 + m), 32) for m in range(3)])
  vmapped = jax.jit(jax.vmap(lambda k, r: layer(x, train=True, rng=k, rate=r)))(member_keys, rates)
  for m, r in enumerate([0.1, 0.3, 0.6]):
    alone = Dropout(r, layer_id=1)(x, train=True, rng=member_keys[m])
    np.testing.assert_allclose(vmapped[m], alone, rtol=1e-6)
    half = Dropout(r, layer_id=1)(x[5:9], train=True, rng=member_keys[m][5:9])  # another batch
    np.testing.assert_allclose(vmapped[m][5:9], half, rtol=1e-6)


@pytest.mark.parametrize("rate", [1.0, 1 - 2 ** -17, -0.1])
def test_rates_a_16_bit_mask_cannot_resolve_are_refused(rate):
  cfg = models.default_config()
  cfg.dropout = rate
  with pytest.raises(ConfigError, match=r"\[0, 1 - 2\^-16\]"):
    models.validate_config(cfg)
