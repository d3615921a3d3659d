"""Label noise: a seeded fraction of the training split's labels replaced at random.

For memorization (Zhang et al., 2017: `fraction=1` gives random labels) and
double-descent experiments (e.g. 15% noise). Example i (of n) is corrupted iff
it is among the first round(fraction·n) of a permutation drawn from
fold_in(key(seed), STREAM); a corrupted label is drawn uniformly from all
classes (so it keeps its value with probability 1/C, as in Zhang et al.). The
test split is never touched.
"""

from __future__ import annotations

import jax
import numpy as np

from genjax.errors import ConfigError

STREAM = 0x1abe1


def check_fraction(fraction: float) -> None:
  if not 0.0 <= float(fraction) <= 1.0:
    raise ConfigError(f"data.label_noise must be in [0, 1], got {fraction}; "
                      "e.g. --config.data.label_noise=0.15")


def corrupt(labels: np.ndarray, num_classes: int, fraction: float, seed: int) -> np.ndarray:
  """A copy of `labels` with `fraction` of them replaced by uniform random classes.

  The corrupted sets are nested: a larger fraction corrupts a superset, with the
  same new labels on the common part (so a sweep over fractions is one family).
  """
  check_fraction(fraction)
  labels = np.asarray(labels)
  if fraction == 0:
    return labels
  key = jax.random.fold_in(jax.random.key(seed), STREAM)
  k_pick, k_label = jax.random.split(key)
  n = len(labels)
  picked = np.asarray(jax.random.permutation(k_pick, n))[:int(round(fraction * n))]
  out = labels.copy()
  out[picked] = np.asarray(jax.random.randint(k_label, (len(picked),), 0, num_classes))
  return out.astype(labels.dtype)
