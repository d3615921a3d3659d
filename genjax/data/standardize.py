"""Input standardization fitted on a member's training examples only.

x' = (x - mean) / std, with statistics over the training portion:
  * "feature": one (mean, std) per input feature (per time step / pixel);
  * "channel": one per channel (last axis) — for images;
  * "none":    mean 0, std 1.
Features whose std is below 1e-6 (e.g. constant border pixels) get std 1, so
they are centred but never blown up. Validation and test data are transformed
with the training statistics, never with their own.
"""

from __future__ import annotations

import numpy as np

from genjax.errors import ConfigError

MODES = ("feature", "channel", "none")


def fit(x: np.ndarray, idx: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
  """(mean, std), each of the per-example shape x.shape[1:], from x[idx]."""
  if mode not in MODES:
    raise ConfigError(f"unknown data.standardize '{mode}'; choose from {', '.join(MODES)}")
  shape = x.shape[1:]
  if mode == "none":
    return np.zeros(shape, np.float32), np.ones(shape, np.float32)
  part = x[np.asarray(idx)].astype(np.float64)
  axes = (0,) if mode == "feature" else tuple(range(part.ndim - 1))
  mean = part.mean(axis=axes, keepdims=True)
  std = part.std(axis=axes, keepdims=True)
  std = np.where(std < 1e-6, 1.0, std)
  mean = np.broadcast_to(mean[0], shape)
  std = np.broadcast_to(std[0], shape)
  return mean.astype(np.float32), std.astype(np.float32)
