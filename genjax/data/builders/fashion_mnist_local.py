"""Full Fashion-MNIST from local IDX files (Debian `dataset-fashion-mnist`).

Reads `{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]` from, in order:
the builder kwarg `source_dir`, the env var `GENJAX_FASHION_MNIST_DIR`, or
`/usr/share/datasets/fashion-mnist`. Nothing is downloaded.

Examples: `image` uint8 (28, 28, 1), `label` ClassLabel(10 names), `index`
int64 (the row in the split's IDX file). 60000 train / 10000 test.
"""

from __future__ import annotations

import gzip
import os
import pathlib

import numpy as np
import tensorflow_datasets as tfds

from genjax.data.builders._base import OfflineBuilder
from genjax.errors import ConfigError

NAME = "fashion_mnist_local"
DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
ENV_VAR = "GENJAX_FASHION_MNIST_DIR"
LABEL_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
               "Shirt", "Sneaker", "Bag", "Ankle boot")
_FILES = {  # split -> (images stem, labels stem, count)
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60000),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10000),
}
_IMAGE_MAGIC, _LABEL_MAGIC = 2051, 2049


def resolve_source_dir(override: str | os.PathLike | None = None) -> pathlib.Path:
  """The directory to read: `override`, else $GENJAX_FASHION_MNIST_DIR, else Debian's."""
  return pathlib.Path(override or os.environ.get(ENV_VAR) or DEFAULT_DIR)


def _find(directory: pathlib.Path, stem: str) -> pathlib.Path | None:
  for name in (stem + ".gz", stem):
    if (directory / name).is_file():
      return directory / name
  return None


def check_files(directory: str | os.PathLike) -> dict[str, pathlib.Path]:
  """Stem -> path for all four files; ConfigError naming what is missing."""
  directory = pathlib.Path(directory)
  stems = [s for img, lab, _ in _FILES.values() for s in (img, lab)]
  found = {s: _find(directory, s) for s in stems}
  missing = [s + ".gz" for s, p in found.items() if p is None]
  if missing:
    raise ConfigError(
        f"Fashion-MNIST IDX files not found in {directory} (missing "
        f"{', '.join(missing)}); install them with `apt-get install "
        f"dataset-fashion-mnist` or set {ENV_VAR} to a folder holding them.")
  return found


def read_idx(path: pathlib.Path, magic: int, shape: tuple[int, ...]) -> np.ndarray:
  """A uint8 IDX file (optionally gzipped) as an array of exactly `shape`."""
  opener = gzip.open if path.suffix == ".gz" else open
  try:
    with opener(path, "rb") as f:
      raw = f.read()
  except (OSError, EOFError) as e:
    raise ConfigError(
        f"cannot read {path} ({e}); reinstall it with `apt-get install "
        f"--reinstall dataset-fashion-mnist` or set {ENV_VAR}.") from e
  ndim = len(shape)
  header = 4 + 4 * ndim
  dims = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big")
               for i in range(ndim)) if len(raw) >= header else ()
  if (len(raw) < header or int.from_bytes(raw[:4], "big") != magic
      or dims != shape or len(raw) != header + int(np.prod(shape))):
    raise ConfigError(
        f"{path} is not a uint8 IDX file of shape {shape}; reinstall it with "
        f"`apt-get install --reinstall dataset-fashion-mnist` or set {ENV_VAR}.")
  return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def load_split(directory: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
  """(images uint8 [N, 28, 28, 1], labels int64 [N]) of `split` read from `directory`."""
  found = check_files(directory)
  img_stem, lab_stem, count = _FILES[split]
  images = read_idx(found[img_stem], _IMAGE_MAGIC, (count, 28, 28))[..., None]
  labels = read_idx(found[lab_stem], _LABEL_MAGIC, (count,)).astype(np.int64)
  if labels.max() >= len(LABEL_NAMES):
    raise ConfigError(
        f"{found[lab_stem]} holds labels >= {len(LABEL_NAMES)}; it is not "
        f"Fashion-MNIST: reinstall dataset-fashion-mnist or fix {ENV_VAR}.")
  return images, labels


class FashionMnistLocal(OfflineBuilder):
  """Fashion-MNIST (Xiao et al. 2017) from local IDX files; no network."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  X_KEY, X_SHAPE, X_DTYPE = "image", (28, 28, 1), np.uint8
  LABEL = tfds.features.ClassLabel(names=LABEL_NAMES)
  HOMEPAGE = "https://github.com/zalandoresearch/fashion-mnist"

  def __init__(self, *, source_dir: str | os.PathLike | None = None, **kwargs):
    """`source_dir` overrides where the IDX files are read (see module doc)."""
    self._source_dir = source_dir
    super().__init__(**kwargs)

  @property
  def source_dir(self) -> pathlib.Path:
    return resolve_source_dir(self._source_dir)

  def _split_generators(self, dl_manager):
    del dl_manager  # Local files only.
    directory = self.source_dir
    check_files(directory)  # Fail before writing anything.
    return {split: self._generate_examples(directory, split) for split in _FILES}

  def _generate_examples(self, directory, split):
    images, labels = load_split(directory, split)
    for i in range(len(labels)):
      yield i, {"image": images[i], "label": int(labels[i]), "index": i}
