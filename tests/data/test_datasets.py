"""Tests for genjax.data.datasets and the offline TFDS builders."""

import gzip
import os
import pathlib
import random
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from genjax import data
from genjax.data import builders
from genjax.data import datasets
from genjax.data.builders import digits as digits_lib
from genjax.data.builders import fashion_mnist_local as fashion_lib
from genjax.data.builders import mnist1d as mnist1d_lib
from genjax.errors import ConfigError

FASHION_DIR = pathlib.Path(fashion_lib.DEFAULT_DIR)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture(autouse=True)
def _no_fashion_env(monkeypatch):
  monkeypatch.delenv(fashion_lib.ENV_VAR, raising=False)


def _one_line_error(fn, *needles):
  with pytest.raises(ConfigError) as e:
    fn()
  msg = str(e.value)
  assert "\n" not in msg
  for needle in needles:
    assert needle in msg, msg
  return msg


def _index(builder, split):
  return datasets.read_source(builder.as_data_source(split), ("index",))["index"]


# ------------------------------------------------------------- registration


def test_names_do_not_collide_with_tfds_catalog():
  code = ("import tensorflow_datasets as tfds; "
          "print('\\n'.join(tfds.list_builders(with_community_datasets=False)))")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, check=True).stdout.split()
  assert len(out) > 100  # The TFDS catalog really was listed.
  for name, cls in builders.BUILDERS.items():
    assert name not in out
    assert tfds.builder_cls(name) is cls
  assert data.OFFLINE_DATASETS == ("mnist1d", "digits", "fashion_mnist_local")


# ------------------------------------------------------------------ mnist1d


def test_mnist1d_standard_matches_the_library(data_dir):
  import mnist1d.data  # pylint: disable=g-import-not-at-top

  s = data.load("mnist1d", data_dir=data_dir)
  assert (s.name, s.kind, s.input_shape, s.num_classes) == ("mnist1d", "signal", (40,), 10)
  assert s.train_x.shape == (4000, 40) and s.test_x.shape == (1000, 40)
  assert s.train_x.dtype == np.float32 and s.train_y.dtype == np.int32
  ref = mnist1d.data.make_dataset(mnist1d.data.get_dataset_args())
  np.testing.assert_array_equal(s.train_x, ref["x"].astype(np.float32))
  np.testing.assert_array_equal(s.test_x, ref["x_test"].astype(np.float32))
  np.testing.assert_array_equal(s.train_y, ref["y"])
  np.testing.assert_array_equal(s.test_y, ref["y_test"])
  assert not s.train_x.flags.writeable


def test_mnist1d_generate_restores_global_rngs():
  np.random.seed(123)
  random.seed(123)
  np_before, py_before = np.random.get_state(), random.getstate()
  mnist1d_lib.generate(mnist1d_lib.make_config(num_samples=100, seed=7))
  np_after = np.random.get_state()
  assert np_before[0] == np_after[0]
  np.testing.assert_array_equal(np_before[1], np_after[1])
  assert np_before[2:] == np_after[2:]
  assert random.getstate() == py_before


def test_mnist1d_shuffled_is_a_fixed_permutation_of_standard(data_dir):
  import mnist1d.data  # pylint: disable=g-import-not-at-top

  std = data.load("mnist1d", data_dir=data_dir)
  shuf = data.load("mnist1d/shuffled", data_dir=data_dir)
  perm = np.asarray(
      mnist1d_lib.Mnist1d(data_dir=data_dir, config="shuffled").info.metadata["permutation"])
  assert sorted(perm) == list(range(40)) and (perm != np.arange(40)).any()
  np.testing.assert_array_equal(shuf.train_x, std.train_x[:, perm])
  np.testing.assert_array_equal(shuf.test_x, std.test_x[:, perm])
  np.testing.assert_array_equal(shuf.train_y, std.train_y)
  # Same permutation as mnist1d's own `shuffle_seq=True` (the paper's variant).
  args = mnist1d.data.get_dataset_args()
  args.shuffle_seq = True
  ref = mnist1d.data.make_dataset(args)
  np.testing.assert_array_equal(shuf.train_x, ref["x"].astype(np.float32))


def test_mnist1d_parametric_configs(data_dir):
  a = data.load("mnist1d/n200_seed3", data_dir=data_dir)
  b = data.load("mnist1d/n200_seed4_shuffled", data_dir=data_dir)
  assert a.train_x.shape == (160, 40) and a.test_x.shape == (40, 40)
  assert b.train_x.shape == (160, 40)
  assert not np.array_equal(a.train_x, b.train_x)
  _one_line_error(lambda: data.load("mnist1d/n205_seed3", data_dir=data_dir), "multiple of 10")
  _one_line_error(lambda: data.load("mnist1d/bogus", data_dir=data_dir), "shuffled")


# ------------------------------------------------------------------- digits


def test_digits_split_is_stratified_disjoint_and_exact(data_dir):
  from sklearn import datasets as skd  # pylint: disable=g-import-not-at-top

  s = data.load("digits", data_dir=data_dir)
  assert (s.kind, s.input_shape, s.num_classes) == ("image", (8, 8, 1), 10)
  assert s.train_x.shape == (1437, 8, 8, 1) and s.test_x.shape == (360, 8, 8, 1)
  assert s.train_x.dtype == np.uint8 and s.train_x.max() == 16
  builder = digits_lib.Digits(data_dir=data_dir)
  train_idx, test_idx = _index(builder, "train"), _index(builder, "test")
  assert len(np.unique(train_idx)) == 1437 and len(np.unique(test_idx)) == 360
  assert not set(train_idx) & set(test_idx)
  np.testing.assert_array_equal(np.sort(np.concatenate([train_idx, test_idx])), np.arange(1797))
  ref = skd.load_digits()
  np.testing.assert_array_equal(s.test_x[..., 0], ref.images[np.sort(test_idx)])
  np.testing.assert_array_equal(s.test_y, ref.target[np.sort(test_idx)])
  test_counts = np.bincount(s.test_y, minlength=10)
  expected = np.bincount(ref.target) * 0.2
  assert np.all(np.abs(test_counts - expected) <= 1)


def test_two_prepares_are_identical(tmp_path, data_dir):
  for name in ("mnist1d", "digits"):
    a = data.load(name, data_dir=data_dir)
    b = data.load(name, data_dir=str(tmp_path / name))
    for field in ("train_x", "train_y", "test_x", "test_y"):
      np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_warm_load_uses_cache_and_ignores_a_stale_one(tmp_path):
  first = data.load("digits", data_dir=str(tmp_path))
  builder = digits_lib.Digits(data_dir=str(tmp_path))
  cache = pathlib.Path(builder.data_path) / datasets._CACHE_NAME
  assert cache.is_file()
  np.savez(cache, format=np.int64(datasets._CACHE_FORMAT), train_x=first.train_x[:5],
           train_y=first.train_y[:5], test_x=first.test_x, test_y=first.test_y)
  again = data.load("digits", data_dir=str(tmp_path))  # Stale: re-read, re-cache.
  np.testing.assert_array_equal(again.train_x, first.train_x)
  cache.write_bytes(b"garbage")
  np.testing.assert_array_equal(data.load("digits", data_dir=str(tmp_path)).train_y, first.train_y)


def test_default_data_dir_follows_tfds_data_dir_at_call_time(tmp_path, monkeypatch):
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
  data.load("digits")
  assert (tmp_path / "digits" / "1.0.0" / datasets._CACHE_NAME).is_file()


def test_prepare_is_quiet_and_restores_tfds_state(tmp_path, capfd):
  from tensorflow_datasets.core.utils import tqdm_utils  # pylint: disable=g-import-not-at-top

  was_active = tqdm_utils._active
  data.load("mnist1d/n100_seed0", data_dir=str(tmp_path))
  out, err = capfd.readouterr()
  assert out == "" and err == "", (out, err)
  assert tqdm_utils._active == was_active


# ------------------------------------------------------------ fashion-mnist


def _read_idx(path):
  with gzip.open(path, "rb") as f:
    raw = f.read()
  ndim = raw[3]
  dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
  return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


@pytest.mark.skipif(not FASHION_DIR.is_dir(),
                    reason=f"{FASHION_DIR} absent: apt-get install dataset-fashion-mnist")
def test_fashion_mnist_from_debian_files(data_dir):
  s = data.load("fashion_mnist_local", data_dir=data_dir)
  assert (s.kind, s.input_shape, s.num_classes) == ("image", (28, 28, 1), 10)
  assert s.train_x.shape == (60000, 28, 28, 1) and s.test_x.shape == (10000, 28, 28, 1)
  assert s.train_x.dtype == np.uint8 and s.test_y.dtype == np.int32
  assert np.all(np.bincount(s.train_y) == 6000) and np.all(np.bincount(s.test_y) == 1000)
  np.testing.assert_array_equal(
      s.test_x[..., 0], _read_idx(FASHION_DIR / "t10k-images-idx3-ubyte.gz"))
  np.testing.assert_array_equal(
      s.train_y, _read_idx(FASHION_DIR / "train-labels-idx1-ubyte.gz"))
  names = fashion_lib.FashionMnistLocal(data_dir=data_dir).info.features["label"].names
  assert names[0] == "T-shirt/top" and names[9] == "Ankle boot"
  warm = data.load("fashion_mnist_local", data_dir=data_dir)
  np.testing.assert_array_equal(warm.train_x, s.train_x)


def test_fashion_missing_files_error(tmp_path, monkeypatch):
  empty = tmp_path / "nothing_here"
  monkeypatch.setenv(fashion_lib.ENV_VAR, str(empty))
  _one_line_error(lambda: data.load("fashion_mnist_local", data_dir=str(tmp_path / "d")),
                  str(empty), "apt-get install dataset-fashion-mnist", fashion_lib.ENV_VAR)
  monkeypatch.delenv(fashion_lib.ENV_VAR)
  builder = fashion_lib.FashionMnistLocal(data_dir=str(tmp_path / "d"), source_dir=empty)
  _one_line_error(lambda: builder.download_and_prepare(file_format="array_record"),
                  str(empty))


def test_fashion_corrupt_file_error(tmp_path, monkeypatch):
  for split in fashion_lib._FILES.values():
    for stem in split[:2]:
      with gzip.open(tmp_path / (stem + ".gz"), "wb") as f:
        f.write(b"not an idx file")
  monkeypatch.setenv(fashion_lib.ENV_VAR, str(tmp_path))
  _one_line_error(lambda: data.load("fashion_mnist_local", data_dir=str(tmp_path / "d")),
                  "not a uint8 IDX file", "--reinstall")


def test_fashion_source_dir_precedence(monkeypatch):
  assert fashion_lib.resolve_source_dir() == FASHION_DIR
  monkeypatch.setenv(fashion_lib.ENV_VAR, "/from/env")
  assert fashion_lib.resolve_source_dir() == pathlib.Path("/from/env")
  assert fashion_lib.resolve_source_dir("/from/kwarg") == pathlib.Path("/from/kwarg")


# ------------------------------------------------------------- by TFDS name


def test_unknown_name_error(data_dir):
  msg = _one_line_error(lambda: data.load("no_such_dataset", data_dir=data_dir),
                        "no_such_dataset", "genjax-generalize[tf]")
  for name in data.OFFLINE_DATASETS:
    assert name in msg
  _one_line_error(lambda: data.load("", data_dir=data_dir), "non-empty")
  _one_line_error(lambda: data.load("digits/foo", data_dir=data_dir), "no config")


def test_tfds_dataset_not_prepared_error(tmp_path):
  _one_line_error(lambda: data.load("mnist", data_dir=str(tmp_path)),
                  "not prepared", str(tmp_path), "genjax-generalize[tf]")


def test_by_name_with_mock_mnist(tmp_path):
  with tfds.testing.mock_data(num_examples=12):
    s = data.load("mnist", data_dir=str(tmp_path))
  assert (s.name, s.kind, s.input_shape, s.num_classes) == ("mnist", "image", (28, 28, 1), 10)
  assert s.train_x.shape == (12, 28, 28, 1) and s.test_x.shape == (12, 28, 28, 1)
  assert s.train_x.dtype == np.uint8 and s.train_y.dtype == np.int32
  assert s.train_y.min() >= 0 and s.train_y.max() < 10


# ---------------------------------------------------------------- utilities


def test_read_source_on_a_plain_sequence():
  records = [{"x": np.full((3,), i, np.float32), "label": i % 2} for i in range(5)]
  out = datasets.read_source(records, ("x", "label"))
  assert out["x"].shape == (5, 3) and list(out["label"]) == [0, 1, 0, 1, 0]


def test_array_splits_contract():
  x, y = np.zeros((4, 6), np.float32), np.zeros((4,), np.int32)
  s = datasets.ArraySplits("toy", x, y, x[:2], y[:2], num_classes=2)
  assert (s.kind, s.input_shape) == ("signal", (6,))
  with pytest.raises(ValueError):
    s.train_x[0, 0] = 1.0
  with pytest.raises(ConfigError):
    datasets.ArraySplits("bad", x, y[:3], x, y, num_classes=2)
  with pytest.raises(ConfigError):
    datasets.ArraySplits("bad", np.zeros((4, 2, 3)), y, x, y, num_classes=2)
  with pytest.raises(ConfigError):
    datasets.ArraySplits("bad", x, y, np.zeros((4, 7)), y, num_classes=2)



def test_loading_leaves_nothing_in_the_temporary_directory(tmp_path):
  # TFDS's DatasetInfo.initialize_from_bucket leaves an empty mkdtemp("tfds") directory behind
  # whenever a builder is made before its data exists; genjax contains it. A subprocess with
  # its own TMPDIR, so that other tests' files cannot interfere.
  scratch, tfds_dir = tmp_path / "tmp", str(tmp_path / "tfds")
  scratch.mkdir()
  code = ("from genjax.data import datasets\n"
          "from genjax.errors import ConfigError\n"
          f"datasets.load('digits', data_dir={tfds_dir!r})\n"      # an offline builder
          "try:\n"
          f"  datasets.load('mnist', data_dir={tfds_dir!r})\n"     # a TFDS one, not prepared
          "except ConfigError:\n"
          "  pass\n")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, TMPDIR=str(scratch)), timeout=300,
                       cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
  assert out.returncode == 0, out.stderr[-2000:]
  assert [p.name for p in scratch.iterdir() if p.name.endswith("tfds")] == []
