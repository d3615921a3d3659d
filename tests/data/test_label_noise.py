"""Label noise: the stated fraction corrupted, seeded, test split untouched."""

import numpy as np
import pytest

from genjax.config import defaults
from genjax.data import label_noise
from genjax.errors import ConfigError
from genjax.run import setup as experiment


def test_fraction_and_determinism():
  labels = np.repeat(np.arange(10), 400).astype(np.int32)
  noisy = label_noise.corrupt(labels, 10, 0.5, seed=3)
  changed = np.mean(noisy != labels)
  assert abs(changed - 0.5 * 0.9) < 0.03          # a corrupted label keeps its class w.p. 1/C
  np.testing.assert_array_equal(noisy, label_noise.corrupt(labels, 10, 0.5, seed=3))
  assert not np.array_equal(noisy, label_noise.corrupt(labels, 10, 0.5, seed=4))
  np.testing.assert_array_equal(label_noise.corrupt(labels, 10, 0.0, seed=3), labels)
  random = label_noise.corrupt(labels, 10, 1.0, seed=0)
  assert abs(np.mean(random == labels) - 0.1) < 0.03
  with pytest.raises(ConfigError, match="label_noise"):
    label_noise.corrupt(labels, 10, 1.5, seed=0)


def test_setup_corrupts_training_labels_only(tmp_path):
  config = defaults.get_config()
  clean = experiment.prepare(config, str(tmp_path))
  config.data.label_noise = 0.2
  noisy = experiment.prepare(config, str(tmp_path))
  assert 0.15 < float(np.mean(np.asarray(noisy.y_train) != np.asarray(clean.y_train))) < 0.2
  np.testing.assert_array_equal(noisy.splits.test_y, clean.splits.test_y)
