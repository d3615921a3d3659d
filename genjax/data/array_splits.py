"""`ArraySplits`: one dataset's train and test arrays, checked, read-only.

Every source of data gives one: an offline TFDS builder, a prepared TFDS dataset
(`genjax.data.datasets.load`), or arrays registered in memory (`genjax.data.arrays`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from genjax.errors import ConfigError


@dataclasses.dataclass(frozen=True, eq=False)
class ArraySplits:
  """Train and test arrays of one dataset; arrays are read-only.

  `*_x` keep the stored dtype (float32 signals, uint8 images: not rescaled);
  examples are rank 1 (signal, length L) or rank 3 (image, HWC). `*_y` are
  int32 labels in [0, num_classes).
  """

  name: str
  train_x: np.ndarray
  train_y: np.ndarray
  test_x: np.ndarray
  test_y: np.ndarray
  num_classes: int

  def __post_init__(self):
    for part in ("train", "test"):
      x, y = np.asarray(getattr(self, f"{part}_x")), np.asarray(getattr(self, f"{part}_y"))
      if (x.ndim not in (2, 4) or y.ndim != 1 or len(x) != len(y)
          or not np.issubdtype(y.dtype, np.integer)):
        raise ConfigError(
            f"dataset {self.name!r} {part} split has x {x.shape}, y {y.shape} "
            f"{y.dtype}; need x [N, L] or [N, H, W, C] and integer y [N]: use "
            "another dataset.")
      if y.size and (y.min() < 0 or y.max() >= self.num_classes):
        raise ConfigError(
            f"dataset {self.name!r} {part} labels span [{y.min()}, {y.max()}], "
            f"outside [0, num_classes={self.num_classes}); fix num_classes.")
      for key, a in ((f"{part}_x", x), (f"{part}_y", y.astype(np.int32, copy=False))):
        view = a.view()  # Read-only view: the caller's array stays writable.
        view.flags.writeable = False
        object.__setattr__(self, key, view)
    if self.train_x.shape[1:] != self.test_x.shape[1:]:
      raise ConfigError(
          f"dataset {self.name!r} train/test example shapes differ "
          f"({self.train_x.shape[1:]} vs {self.test_x.shape[1:]}); use another dataset.")

  @property
  def input_shape(self) -> tuple[int, ...]:
    """Shape of one example, e.g. (40,) or (28, 28, 1)."""
    return tuple(self.train_x.shape[1:])

  @property
  def kind(self) -> str:
    """"signal" for rank-1 examples, "image" for rank-3 (HWC) examples."""
    return "signal" if self.train_x.ndim == 2 else "image"
