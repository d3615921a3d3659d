"""Tests for genjax.data.splits."""

import math

import numpy as np
import pytest

from genjax.data import splits as validation
from genjax.errors import ConfigError


def _labels():
  # Imbalanced: 60 / 30 / 10 examples of classes 0 / 1 / 2, interleaved.
  return np.random.default_rng(0).permutation(np.repeat([0, 1, 2], [60, 30, 10]))


def test_holdout_is_disjoint_sorted_and_covers_everything():
  labels = _labels()
  train, val = validation.holdout_split(labels, 0.2, seed=0)
  assert train.dtype == np.int32 and val.dtype == np.int32
  assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
  assert not set(train) & set(val)
  np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(100))
  assert len(val) == math.ceil(0.2 * 100)


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.37, 0.5])
def test_holdout_is_stratified(fraction):
  labels = _labels()
  _, val = validation.holdout_split(labels, fraction, seed=3)
  expected = np.bincount(labels) * fraction
  assert np.all(np.abs(np.bincount(labels[val], minlength=3) - expected) <= 1)


def test_holdout_is_deterministic_per_seed():
  labels = _labels()
  a = validation.holdout_split(labels, 0.2, seed=1)
  b = validation.holdout_split(labels, 0.2, seed=1)
  c = validation.holdout_split(labels, 0.2, seed=2)
  np.testing.assert_array_equal(a[1], b[1])
  np.testing.assert_array_equal(a[0], b[0])
  assert not np.array_equal(a[1], c[1])


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5, float("nan"), True, "0.2", None])
def test_holdout_rejects_bad_fraction(fraction):
  with pytest.raises(ConfigError, match=r"not in \(0, 1\)") as e:
    validation.holdout_split(_labels(), fraction, seed=0)
  assert "\n" not in str(e.value)


def test_holdout_rejects_too_few_examples_per_class():
  labels = np.array([0, 0, 0, 1, 1, 1, 2])  # Class 2 has a single example.
  with pytest.raises(ConfigError, match="class 2 has 1 example"):
    validation.holdout_split(labels, 0.3, seed=0)


def test_holdout_rejects_fraction_too_small_for_the_classes():
  labels = np.repeat(np.arange(10), 5)  # 50 examples, 10 classes.
  with pytest.raises(ConfigError, match="fewer than the 10 classes") as e:
    validation.holdout_split(labels, 0.1, seed=0)  # 5 validation examples.
  assert "choose a fraction in [0.2, 0.8]" in str(e.value)
  validation.holdout_split(labels, 0.2, seed=0)  # One per class is enough.


@pytest.mark.parametrize("labels", [np.zeros((4, 2), int), np.zeros(6), np.array([], int)])
def test_holdout_rejects_bad_labels(labels):
  with pytest.raises(ConfigError, match="1-D integer"):
    validation.holdout_split(labels, 0.5, seed=0)


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, True])
def test_holdout_rejects_bad_seed(seed):
  with pytest.raises(ConfigError, match="seed"):
    validation.holdout_split(_labels(), 0.2, seed=seed)
