"""Validation plans: which training examples are held out for validation.

A plan is index arrays into the training split (never copies of the data), so
members of a vmapped run can share one device-resident copy. `holdout_split`
is the single hold-out plan; K-fold plans (KFold, StratifiedKFold, GroupKFold
from `sklearn.model_selection`) belong here too and reuse `_check_labels`.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from sklearn import model_selection

from genjax.errors import ConfigError


def _check_labels(labels) -> np.ndarray:
  """`labels` as a 1-D integer array, or ConfigError."""
  labels = np.asarray(labels)
  if labels.ndim != 1 or labels.size == 0 or not np.issubdtype(labels.dtype, np.integer):
    raise ConfigError(
        f"labels must be a non-empty 1-D integer array, got shape {labels.shape} "
        f"dtype {labels.dtype}; pass the training labels (e.g. splits.train_y).")
  return labels


def _check_seed(seed) -> int:
  if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**32:
    raise ConfigError(f"split seed={seed!r} is invalid; use an integer in [0, 2**32).")
  return int(seed)


def holdout_split(labels: np.ndarray, fraction: float,
                  seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Stratified, seeded hold-out: (train_idx, val_idx), sorted int32, disjoint.

  `val_idx` has `ceil(fraction * n)` examples with class proportions as in
  `labels` (sklearn `train_test_split(stratify=labels, random_state=seed)`);
  together the two cover `range(len(labels))`. Same inputs, same split.
  """
  labels = _check_labels(labels)
  seed = _check_seed(seed)
  if (isinstance(fraction, bool) or not isinstance(fraction, numbers.Real)
      or not 0.0 < float(fraction) < 1.0):
    raise ConfigError(
        f"validation fraction={fraction!r} is not in (0, 1); use e.g. 0.1 or 0.2.")
  fraction = float(fraction)
  n = len(labels)
  classes, counts = np.unique(labels, return_counts=True)
  n_val = math.ceil(fraction * n)
  if counts.min() < 2:
    rare = classes[counts.argmin()]
    raise ConfigError(
        f"class {rare} has {counts.min()} example(s); a stratified hold-out needs "
        ">= 2 per class: use more data or drop the class.")
  if n_val < len(classes) or n - n_val < len(classes):
    raise ConfigError(
        f"validation fraction={fraction} of {n} examples gives {n_val} validation / "
        f"{n - n_val} training examples, fewer than the {len(classes)} classes; "
        f"choose a fraction in [{len(classes) / n:.3g}, {1 - len(classes) / n:.3g}].")
  try:
    train_idx, val_idx = model_selection.train_test_split(
        np.arange(n), test_size=fraction, stratify=labels, random_state=seed)
  except ValueError as e:
    raise ConfigError(
        f"cannot stratify a {fraction} hold-out of {n} examples: "
        f"{str(e).splitlines()[0]}; change the fraction or the data.") from e
  return np.sort(train_idx).astype(np.int32), np.sort(val_idx).astype(np.int32)
