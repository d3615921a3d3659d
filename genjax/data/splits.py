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
  from sklearn import model_selection  # slow to import: only when splitting
  try:
    train_idx, val_idx = model_selection.train_test_split(
        np.arange(n), test_size=fraction, stratify=labels, random_state=seed)
  except ValueError as e:
    raise ConfigError(
        f"cannot stratify a {fraction} hold-out of {n} examples: "
        f"{str(e).splitlines()[0]}; change the fraction or the data.") from e
  return np.sort(train_idx).astype(np.int32), np.sort(val_idx).astype(np.int32)


CV_METHODS = ("kfold", "stratified_kfold", "group_kfold", "repeated_kfold",
              "repeated_stratified_kfold")


def kfold_splits(labels: np.ndarray, *, method: str, folds: int, shuffle: bool = True,
                 seed: int = 0, repeats: int = 1,
                 groups: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
  """Cross-validation plans from `sklearn.model_selection`, identical to scikit-learn's.

  Returns [(train_idx, val_idx), ...] (sorted int32) in sklearn's order: K
  folds, or K·repeats for the repeated methods. ConfigError (one line) for K<2,
  K above the smallest class count (stratified) or the number of groups, or
  groups missing for group_kfold.
  """
  labels = _check_labels(labels)
  seed = _check_seed(seed)
  if method not in CV_METHODS:
    raise ConfigError(f"unknown cv.method '{method}'; choose from {', '.join(CV_METHODS)}")
  if isinstance(folds, bool) or not isinstance(folds, numbers.Integral) or folds < 2:
    raise ConfigError(f"cv.folds must be an integer >= 2, got {folds!r}; e.g. --config.cv.folds=5")
  if folds > len(labels):
    raise ConfigError(f"cv.folds={folds} exceeds the {len(labels)} training examples; "
                      "lower --config.cv.folds")
  if method.startswith("repeated") and (not isinstance(repeats, numbers.Integral) or repeats < 1):
    raise ConfigError(f"cv.repeats must be an integer >= 1, got {repeats!r}")
  if "stratified" in method:
    classes, counts = np.unique(labels, return_counts=True)
    if folds > counts.min():
      raise ConfigError(f"cv.folds={folds} exceeds the {counts.min()} examples of class "
                        f"{classes[counts.argmin()]}; stratified K-fold needs K <= the smallest "
                        "class count: lower --config.cv.folds or use cv.method=kfold")
  if method == "group_kfold":
    if groups is None:
      raise ConfigError("cv.method=group_kfold needs groups: set --config.cv.groups to a .npy "
                        "file with one group id per training example")
    groups = np.asarray(groups)
    if groups.shape != labels.shape:
      raise ConfigError(f"cv.groups has shape {groups.shape} but the training split has "
                        f"{len(labels)} examples; give one group id per training example")
    if folds > len(np.unique(groups)):
      raise ConfigError(f"cv.folds={folds} exceeds the {len(np.unique(groups))} groups; "
                        "lower --config.cv.folds or provide more groups")
  from sklearn import model_selection  # slow to import: only when splitting
  rs = seed if shuffle else None
  splitter = {
      "kfold": lambda: model_selection.KFold(folds, shuffle=shuffle, random_state=rs),
      "stratified_kfold": lambda: model_selection.StratifiedKFold(
          folds, shuffle=shuffle, random_state=rs),
      "group_kfold": lambda: model_selection.GroupKFold(folds, shuffle=shuffle, random_state=rs),
      "repeated_kfold": lambda: model_selection.RepeatedKFold(
          n_splits=folds, n_repeats=repeats, random_state=seed),
      "repeated_stratified_kfold": lambda: model_selection.RepeatedStratifiedKFold(
          n_splits=folds, n_repeats=repeats, random_state=seed),
  }[method]()
  x = np.zeros((len(labels), 1))
  return [(np.sort(tr).astype(np.int32), np.sort(va).astype(np.int32))
          for tr, va in splitter.split(x, labels, groups if method == "group_kfold" else None)]
