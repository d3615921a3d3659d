"""Shared by the CNN benchmark's peers (scripts/peers/*_cnn.py): the task, the data, the folds.

The task of `scripts/bench cnn`, identical in every contender:
  Fashion-MNIST's 60000 training images (Debian's IDX files), 5-fold
  StratifiedKFold(shuffle=True, random_state=0); per fold, standardize with the fold's training
  mean/std (one channel); `cnn2d`: conv 3×3 SAME 32 → relu → avgpool 2 → conv 3×3 SAME 64 →
  relu → avgpool 2 → dense 256 → relu → dropout 0.2 → dense 10; Adam lr 1e-3 (eps 1e-8);
  batch 128, shuffled each epoch; softmax cross-entropy; EPOCHS epochs, validation after every
  epoch; the fold's accuracy is its last epoch's validation accuracy.

Each peer prints, last, one JSON line (see `emit`) that scripts/bench_cnn.py parses, with the
per-fold epoch times from which it derives steady-state images/s and the warm-up share.
Only numpy and scikit-learn are needed here.
"""

from __future__ import annotations

import gzip
import json
import os
import sys
import time

import numpy as np

N_SPLITS = 5
SEED = 0
EPOCHS = int(os.environ.get("GENJAX_BENCH_CNN_EPOCHS", "2"))
BATCH_SIZE = 128
LEARNING_RATE = 1e-3
DROPOUT = 0.2
NUM_CLASSES = 10
DATA_DIR = os.environ.get("GENJAX_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")


def _idx(name: str, header: int) -> np.ndarray:
  for path in (os.path.join(DATA_DIR, name + ".gz"), os.path.join(DATA_DIR, name)):
    if os.path.exists(path):
      with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=header)
  sys.exit(f"error: {name}[.gz] not found in {DATA_DIR}; apt-get install dataset-fashion-mnist")


def load_fashion_mnist() -> tuple[np.ndarray, np.ndarray]:
  """The training split: x float32 (60000, 28, 28, 1) in [0, 255], y int64 (60000,)."""
  x = _idx("train-images-idx3-ubyte", 16).reshape(60000, 28, 28, 1).astype(np.float32)
  y = _idx("train-labels-idx1-ubyte", 8).astype(np.int64)
  return x, y


def folds(y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
  """[(train_idx, val_idx)] for the 5 stratified folds (the splitter genjax uses)."""
  from sklearn.model_selection import StratifiedKFold

  splitter = StratifiedKFold(n_splits=N_SPLITS, shuffle=True, random_state=SEED)
  return list(splitter.split(np.zeros(len(y)), y))


def standardize(x_train: np.ndarray, x_val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Both parts standardized with the training part's mean/std over every pixel (one channel)."""
  part = x_train.astype(np.float64)
  mean, std = part.mean(), part.std()
  std = std if std >= 1e-6 else 1.0
  return ((x_train - mean) / std).astype(np.float32), ((x_val - mean) / std).astype(np.float32)


class EpochClock:
  """Wall time of each epoch (training and validation), per fold."""

  def __init__(self):
    self.folds: list[list[float]] = []

  def fold(self):
    self.folds.append([])
    self._last = time.perf_counter()

  def epoch_end(self):
    now = time.perf_counter()
    self.folds[-1].append(now - self._last)
    self._last = now


def emit(name: str, wall_s: float, fold_val_accuracy, epoch_s, train_images: int,
         **extra) -> None:
  """The one JSON result line, printed last. `epoch_s`: per fold (or per vmapped group) the
  wall seconds of each epoch; `train_images`: training images per epoch over all folds."""
  accs = [float(a) for a in fold_val_accuracy]
  result = {"name": name, "wall_s": round(float(wall_s), 3),
            "mean_val_accuracy": round(float(np.mean(accs)), 5),
            "fold_val_accuracy": [round(a, 5) for a in accs], "epochs": EPOCHS,
            "folds": N_SPLITS, "epoch_s": [[round(t, 3) for t in f] for f in epoch_s],
            "train_images": int(train_images), **extra}
  sys.stdout.flush()
  sys.stderr.flush()
  print(json.dumps(result), flush=True)
