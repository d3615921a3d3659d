"""Shared by the benchmark peers (scripts/peers/*_kfold.py): the task, the data and the folds.

The task is identical in every contender of `scripts/bench kfold`:
  MNIST-1D (generated offline: 4000 training examples x 40 features, 10 classes), 5-fold
  StratifiedKFold(shuffle=True, random_state=0); per fold, standardize with the fold's training
  mean/std (std < 1e-6 -> 1); MLP 40-100-100-10 with a residual second layer and dropout 0.2 after
  each hidden activation; AdamW lr 1e-3, decoupled weight decay 1e-4 on kernels; batch 100,
  shuffled each epoch; 20 epochs; softmax cross-entropy; validation after every epoch.

Each peer prints, last, one JSON line (see `emit`) that scripts/bench_kfold.py parses.
Only numpy, scikit-learn and mnist1d are needed here.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

N_SPLITS = 5
SEED = 0
EPOCHS = 20
BATCH_SIZE = 100
LEARNING_RATE = 1e-3
WEIGHT_DECAY = 1e-4
DROPOUT = 0.2
HIDDEN = 100
NUM_CLASSES = 10


def load_mnist1d() -> tuple[np.ndarray, np.ndarray]:
  """MNIST-1D's training split, generated offline (never downloads): x float32 (4000, 40), y int64."""
  from mnist1d.data import get_dataset_args, make_dataset

  state = np.random.get_state()  # make_dataset reseeds numpy's global RNG
  try:
    d = make_dataset(get_dataset_args())
  finally:
    np.random.set_state(state)
  return np.asarray(d["x"], np.float32), np.asarray(d["y"], np.int64)


def folds(y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
  """[(train_idx, val_idx)] for the 5 stratified folds (the same splitter genjax uses)."""
  return list(splitter().split(np.zeros(len(y)), y))


def splitter():
  from sklearn.model_selection import StratifiedKFold

  return StratifiedKFold(n_splits=N_SPLITS, shuffle=True, random_state=SEED)


def standardize(x_train: np.ndarray, x_val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Standardize both parts with the training part's per-feature mean/std (std < 1e-6 -> 1)."""
  part = x_train.astype(np.float64)  # as genjax.data.standardize.fit does
  mean = part.mean(axis=0)
  std = part.std(axis=0)
  std = np.where(std < 1e-6, 1.0, std)
  return ((x_train - mean) / std).astype(np.float32), ((x_val - mean) / std).astype(np.float32)


class Timer:
  """Wall time from data ready to all folds trained and validated."""

  def __enter__(self):
    self.start = time.perf_counter()
    return self

  def __exit__(self, *exc):
    self.seconds = time.perf_counter() - self.start
    return False


def emit(name: str, wall_s: float, fold_val_accuracy, **extra) -> None:
  """Prints the one JSON result line, last, that scripts/bench_kfold.py parses."""
  accs = [float(a) for a in fold_val_accuracy]
  result = {
      "name": name,
      "wall_s": round(float(wall_s), 4),
      "mean_val_accuracy": round(float(np.mean(accs)), 5),
      "fold_val_accuracy": [round(a, 5) for a in accs],
      "epochs": EPOCHS,
      "folds": N_SPLITS,
      **extra,
  }
  sys.stdout.flush()
  sys.stderr.flush()
  print(json.dumps(result), flush=True)
