"""MNIST-1D as an offline TFDS builder (generated locally, never downloaded).

Configs:
  * `standard` (default): `mnist1d.data.make_dataset(get_dataset_args())`,
    i.e. 5000 samples, seed 42 -> 4000 train / 1000 test, length 40, 10 classes.
  * `shuffled`: the same data with one fixed spatial permutation of the 40
    positions applied to train and test (the paper's "spatially shuffled"
    variant). The permutation is the one `mnist1d` itself draws for
    `shuffle_seq=True` with the same seed, so the arrays equal the library's
    own shuffled dataset exactly. It is stored in `info.metadata["permutation"]`.
  * `n{N}_seed{S}` and `n{N}_seed{S}_shuffled`: any sample count (multiple of
    10) and seed, built on demand by `config_from_name`.

Examples: `signal` float32 (40,), `label` ClassLabel(10), `index` int64 (the
row in mnist1d's own `x`/`x_test` array, so order and provenance are kept).
"""

from __future__ import annotations

import dataclasses
import random
import re

import numpy as np
import tensorflow_datasets as tfds

from genjax.data.builders._base import OfflineBuilder
from genjax.errors import ConfigError

NAME = "mnist1d"
NUM_CLASSES = 10
SEQ_LEN = 40

_PARAM_RE = re.compile(r"n(\d+)_seed(\d+)(_shuffled)?")


@dataclasses.dataclass(eq=False)
class Mnist1dConfig(tfds.core.BuilderConfig):
  """How to generate: `num_samples` total (80% train), `seed`, `shuffled`."""

  num_samples: int = 5000
  seed: int = 42
  shuffled: bool = False


def make_config(num_samples: int = 5000, seed: int = 42,
                shuffled: bool = False) -> Mnist1dConfig:
  """A config for any sample count/seed; named `n{N}_seed{S}[_shuffled]`."""
  if (isinstance(num_samples, bool) or not isinstance(num_samples, int)
      or num_samples < 10 or num_samples % NUM_CLASSES):
    raise ConfigError(
        f"mnist1d num_samples={num_samples!r} is invalid; use a positive "
        f"multiple of {NUM_CLASSES} (e.g. 5000).")
  if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
    raise ConfigError(
        f"mnist1d seed={seed!r} is invalid; use an integer in [0, 2**32).")
  name = f"n{num_samples}_seed{seed}" + ("_shuffled" if shuffled else "")
  return Mnist1dConfig(
      name=name, num_samples=num_samples, seed=seed, shuffled=shuffled,
      description=(f"{num_samples} samples, seed {seed}"
                   + (", spatially shuffled" if shuffled else "")))


_STANDARD = dataclasses.replace(
    make_config(), name="standard",
    description="The standard MNIST-1D: 4000 train / 1000 test, seed 42.")
_SHUFFLED = dataclasses.replace(
    make_config(shuffled=True), name="shuffled",
    description="Standard MNIST-1D with a fixed permutation of the 40 positions.")


def config_from_name(name: str) -> Mnist1dConfig:
  """`standard`, `shuffled`, or `n{N}_seed{S}[_shuffled]` -> a config."""
  for config in (_STANDARD, _SHUFFLED):
    if name == config.name:
      return config
  match = _PARAM_RE.fullmatch(name)
  if not match:
    raise ConfigError(
        f"unknown mnist1d config {name!r}; use 'standard', 'shuffled' or "
        "'n{N}_seed{S}[_shuffled]' (e.g. 'mnist1d/n10000_seed0').")
  return make_config(int(match[1]), int(match[2]), bool(match[3]))


def generate(config: Mnist1dConfig) -> dict[str, np.ndarray]:
  """Arrays `x, y, x_test, y_test` (+ `permutation` if shuffled) for `config`.

  Calls only `mnist1d.data.make_dataset` (never `get_dataset`, which
  downloads). numpy's and Python's global RNG states are restored afterwards.
  """
  import mnist1d.data  # pylint: disable=g-import-not-at-top

  np_state, py_state = np.random.get_state(), random.getstate()
  try:
    args = mnist1d.data.get_dataset_args()
    args.num_samples = config.num_samples
    args.seed = config.seed
    args.shuffle_seq = False
    data = mnist1d.data.make_dataset(args)
    # The draw make_dataset would make next for shuffle_seq=True (it is the
    # last use of the RNG there, and standardization is order-invariant).
    perm = np.random.permutation(args.final_seq_length)
  finally:
    np.random.set_state(np_state)
    random.setstate(py_state)
  out = {
      "x": np.asarray(data["x"], np.float32),
      "y": np.asarray(data["y"], np.int64),
      "x_test": np.asarray(data["x_test"], np.float32),
      "y_test": np.asarray(data["y_test"], np.int64),
  }
  if config.shuffled:
    out["x"] = np.ascontiguousarray(out["x"][:, perm])
    out["x_test"] = np.ascontiguousarray(out["x_test"][:, perm])
    out["permutation"] = perm
  return out


class Mnist1d(OfflineBuilder):
  """MNIST-1D (Greydanus 2020), generated offline by the `mnist1d` package."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [_STANDARD, _SHUFFLED]
  DEFAULT_CONFIG_NAME = "standard"
  X_KEY, X_SHAPE, X_DTYPE = "signal", (SEQ_LEN,), np.float32
  LABEL = tfds.features.ClassLabel(num_classes=NUM_CLASSES)
  HOMEPAGE = "https://github.com/greydanus/mnist1d"

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download.
    data = generate(self.builder_config)
    if "permutation" in data:
      self.info.metadata["permutation"] = data["permutation"].tolist()
    return {
        "train": self._generate_examples(data["x"], data["y"]),
        "test": self._generate_examples(data["x_test"], data["y_test"]),
    }

  def _generate_examples(self, x, y):
    for i in range(len(y)):
      yield i, {"signal": x[i], "label": int(y[i]), "index": i}
