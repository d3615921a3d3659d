"""scikit-learn's bundled 8x8 digits as an offline TFDS builder.

1797 images (values 0..16) split 80/20 into 1437 train / 360 test, stratified
by label and fixed (`train_test_split(stratify=y, random_state=0)`).

Examples: `image` uint8 (8, 8, 1) with values 0..16 (not rescaled to 0..255),
`label` ClassLabel(10), `index` int64 (the row in `load_digits()`).
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from genjax.data.builders._base import OfflineBuilder

NAME = "digits"
NUM_CLASSES = 10
TEST_FRACTION = 0.2
SPLIT_SEED = 0


def split_indices() -> tuple[np.ndarray, np.ndarray]:
  """Sorted (train, test) row indices into `load_digits()`; deterministic."""
  from sklearn import datasets, model_selection  # pylint: disable=g-import-not-at-top

  y = datasets.load_digits().target
  train, test = model_selection.train_test_split(
      np.arange(len(y)), test_size=TEST_FRACTION, stratify=y,
      random_state=SPLIT_SEED)
  return np.sort(train), np.sort(test)


class Digits(OfflineBuilder):
  """UCI optical digits (sklearn `load_digits`), 8x8 grey levels 0..16."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  X_KEY, X_SHAPE, X_DTYPE = "image", (8, 8, 1), np.uint8
  LABEL = tfds.features.ClassLabel(num_classes=NUM_CLASSES)
  HOMEPAGE = "https://scikit-learn.org/stable/datasets/toy_dataset.html"

  def _split_generators(self, dl_manager):
    del dl_manager  # Bundled with scikit-learn.
    from sklearn import datasets  # pylint: disable=g-import-not-at-top

    digits = datasets.load_digits()
    images = digits.images.astype(np.uint8)[..., None]  # Exact: ints 0..16.
    train, test = split_indices()
    return {
        "train": self._generate_examples(images, digits.target, train),
        "test": self._generate_examples(images, digits.target, test),
    }

  def _generate_examples(self, images, labels, rows):
    for row in rows:
      yield int(row), {"image": images[row], "label": int(labels[row]),
                       "index": int(row)}
