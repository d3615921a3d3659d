"""Your own arrays (`genjax.register_arrays`): checked in one line, looked up like any dataset,
split as scikit-learn splits them, part of a run's identity, and trained to the same numbers
as the same data loaded the TFDS way."""

import hashlib
import json
import math
import os

import numpy as np
import pytest
from sklearn import model_selection

import genjax
from genjax import api
from genjax.data import arrays, builders, datasets
from genjax.errors import ConfigError
from genjax.run import setup
from genjax.workdir import identity

VOLATILE = ("wall_time_s", "provenance")


@pytest.fixture(autouse=True)
def clean_registry():
  """Every test starts and ends with no arrays registered."""
  for name in arrays.registered():
    arrays.unregister_arrays(name)
  yield
  for name in arrays.registered():
    arrays.unregister_arrays(name)


def _toy(n=300, classes=3, features=8, seed=0):
  rng = np.random.default_rng(seed)
  y = np.arange(n) % classes
  rng.shuffle(y)
  x = rng.normal(size=(n, features)) + 2.0 * y[:, None]
  return x, y


def _one_line(call, *needles) -> str:
  with pytest.raises(ConfigError) as e:
    call()
  message = str(e.value)
  assert "\n" not in message.strip(), message
  for needle in needles:
    assert needle in message, message
  return message


def _config(name, *overrides):
  config = genjax.load_config(overrides=[f"data.name={name}", "num_epochs=2",
                                         "model.widths=(16,)", "batch_size=32",
                                         *overrides])
  return config


# --- registering and loading ----------------------------------------------------------------

def test_registered_arrays_load_as_a_dataset_from_the_one_registry():
  x, y = _toy()
  assert genjax.register_arrays("toy", x[:240], y[:240], x[240:], y[240:]) == "toy"
  s = datasets.load("toy")
  assert s.name == "toy" and s.num_classes == 3 and s.input_shape == (8,)
  assert s.train_x.dtype == np.float32 and s.kind == "signal"
  np.testing.assert_array_equal(s.train_x, x[:240].astype(np.float32))
  np.testing.assert_array_equal(s.test_y, y[240:])
  assert isinstance(builders.DATASETS.get("toy"), arrays.RegisteredArrays)
  assert datasets.offline_datasets() == ("mnist1d", "digits", "fashion_mnist_local")
  assert arrays.registered() == ("toy",)
  x[:] = 0   # the registration holds its own copy
  assert datasets.load("toy").train_x.any()
  # Images: (N, H, W) gets a channel axis; uint8 is kept, other dtypes become float32.
  img = np.random.default_rng(0).integers(0, 255, (40, 5, 5), dtype=np.uint8)
  genjax.register_arrays("imgs", img, np.arange(40) % 2, img[:10], np.arange(10) % 2)
  s = datasets.load("imgs")
  assert s.input_shape == (5, 5, 1) and s.train_x.dtype == np.uint8 and s.kind == "image"
  genjax.register_arrays("ints", img.astype(np.int64), np.arange(40) % 2, num_classes=4)
  assert datasets.load("ints").train_x.dtype == np.float32
  assert datasets.load("ints").num_classes == 4
  _one_line(lambda: datasets.load("toy/other"), "no config", "data.name='toy'")


def test_registering_again_replaces_and_changes_the_digest():
  x, y = _toy()
  genjax.register_arrays("toy", x, y)
  first = arrays.sha256_of("toy")
  genjax.register_arrays("toy", x, y)                       # a cell run twice: same digest
  assert arrays.sha256_of("toy") == first
  genjax.register_arrays("toy", x + 1, y)                   # other arrays: replaced
  assert arrays.sha256_of("toy") != first
  genjax.unregister_arrays("toy")
  assert arrays.lookup("toy") is None and arrays.sha256_of("mnist1d") is None
  _one_line(lambda: datasets.load("toy"), "unknown dataset 'toy'",
            "genjax.register_arrays('toy', x_train, y_train")


def test_genjax_dataset_names_and_bad_names_are_refused():
  x, y = _toy()
  _one_line(lambda: genjax.register_arrays("mnist1d", x, y), "'mnist1d'", "another name")
  for bad in ("", "a/b", "a:1", "../x", 3):
    _one_line(lambda: genjax.register_arrays(bad, x, y), "plain name")
  assert datasets.offline_datasets() == ("mnist1d", "digits", "fashion_mnist_local")


def test_without_a_test_split_a_stratified_seeded_fraction_is_cut():
  x, y = _toy(n=200)
  genjax.register_arrays("toy", x, y)
  s = datasets.load("toy")
  train, test = model_selection.train_test_split(np.arange(200), test_size=0.2, stratify=y,
                                                 random_state=0)
  np.testing.assert_array_equal(s.test_x, x[np.sort(test)].astype(np.float32))
  np.testing.assert_array_equal(s.train_y, y[np.sort(train)])
  assert len(s.test_y) == 40 and np.bincount(s.test_y).min() >= 13   # stratified
  genjax.register_arrays("toy", x, y, test_fraction=0.5, test_seed=7)
  train, test = model_selection.train_test_split(np.arange(200), test_size=0.5, stratify=y,
                                                 random_state=7)
  np.testing.assert_array_equal(datasets.load("toy").test_y, y[np.sort(test)])
  _one_line(lambda: genjax.register_arrays("toy", x, y, x, y, test_fraction=0.3),
            "test_fraction", "only used without x_test")
  _one_line(lambda: genjax.register_arrays("toy", x, y, test_fraction=1.5), "(0, 1)")


# --- bad arrays: one line each, at registration -----------------------------------------------

X, Y = _toy(n=60)
_NAN = X.copy()
_NAN[3, 2] = np.nan
_INF = X.copy()
_INF[5, 0] = np.inf


@pytest.mark.parametrize("args,kwargs,needles", [
    ((X[:, 0], Y), {}, ["x_train", "(60,)", "x[:, None]"]),                 # x not (N, ...)
    ((X[:, :, None, None, None], Y), {}, ["x_train", "shape"]),               # rank 5
    ((X, Y[:, None]), {}, ["y_train", "(60, 1)", "shape (N,)"]),               # y not (N,)
    ((X, np.eye(3)[Y]), {}, ["y_train", "one-hot"]),                            # one-hot, float
    ((X, Y.astype(np.int64)[:50]), {}, ["60 examples", "50 labels"]),          # lengths differ
    ((X, Y, X[:10, :5], Y[:10]), {}, ["test examples", "(5,)", "(8,)"]),      # test shape
    ((X, Y, X[:10]), {}, ["x_test is given without y_test"]),
    ((X, Y, None, Y[:10]), {}, ["y_test is given without x_test"]),
    ((X, Y, X[:10], Y[:9]), {}, ["x_test has 10 examples"]),
    ((X.astype(str), Y), {}, ["x_train", "dtype", "real numbers"]),           # non-numeric x
    ((X.astype(complex), Y), {}, ["x_train", "complex"]),
    ((X, Y.astype(np.float64)), {}, ["y_train", "float64", "integers"]),     # non-integer y
    ((X, Y.astype(bool)), {}, ["y_train", "bool"]),
    ((X, np.array(["a", "b", "c"] * 20)), {}, ["y_train", "integers"]),
    ((_NAN, Y), {}, ["x_train", "1 NaN or infinite", "example 3"]),          # NaN
    ((_INF, Y), {}, ["x_train", "NaN or infinite", "example 5"]),            # inf
    ((X * 1e300, Y), {}, ["x_train", "NaN or infinite", "float32"]),         # inf as float32
    ((X, Y - 1), {}, ["y_train", "negative"]),                                 # negative
    ((X, Y), {"num_classes": 2}, ["y_train", "label 2", "num_classes=2"]),    # out of range
    ((X, Y, X[:10], Y[:10] + 3), {"num_classes": 4}, ["y_test", "label"]),
    ((X, Y), {"num_classes": 1}, ["num_classes", ">= 2"]),
    ((X, Y * 0), {}, ["one class"]),
    ((X[:0], Y[:0]), {}, ["empty"]),
    ((X, np.where(np.arange(60) == 0, 3, Y)), {}, ["class 3", "1 example", "x_test"]),  # cut
    (([[1.0, 2.0], [3.0]], [0, 1]), {}, ["x_train", "not an array"]),        # ragged
])
def test_bad_arrays_are_one_line_config_errors(args, kwargs, needles):
  _one_line(lambda: genjax.register_arrays("bad", *args, **kwargs), *needles)
  assert arrays.lookup("bad") is None


def test_too_few_examples_per_class_for_the_splits_is_one_line_before_anything_compiles():
  x, y = _toy(n=60)
  y = np.where(np.arange(60) < 2, 3, y)   # class 3: 2 training examples
  genjax.register_arrays("rare", x, y, x[:6], y[:6] % 3)
  config = _config("rare", "cv.method=stratified_kfold", "cv.folds=3")
  _one_line(lambda: genjax.fit(config), "cv.folds=3", "2 examples of class 3")
  genjax.register_arrays("rare", x, np.where(np.arange(60) == 0, 3, y % 3), x[:6], y[:6] % 3)
  _one_line(lambda: genjax.fit(_config("rare")), "class 3 has 1 example", "hold-out")


# --- the splitters are scikit-learn's, on the registered arrays ---------------------------------

def test_folds_and_hold_out_equal_scikit_learn_on_the_arrays():
  x, y = _toy(n=250)
  genjax.register_arrays("toy", x[:200], y[:200], x[200:], y[200:])
  config = _config("toy", "cv.method=stratified_kfold", "cv.folds=4", "data.split_seed=3")
  s = setup.prepare(config, None)
  plans = setup.member_plans(config, s.splits.train_y)
  folds = model_selection.StratifiedKFold(n_splits=4, shuffle=True, random_state=3)
  for plan, (train, val) in zip(plans, folds.split(x[:200], y[:200]), strict=True):
    np.testing.assert_array_equal(plan.train_idx, np.sort(train))
    np.testing.assert_array_equal(plan.val_idx, np.sort(val))
  config = _config("toy", "data.split_seed=5")
  (plan,) = setup.member_plans(config, setup.prepare(config, None).splits.train_y)
  train, val = model_selection.train_test_split(np.arange(200), test_size=0.1, stratify=y[:200],
                                                random_state=5)
  np.testing.assert_array_equal(plan.val_idx, np.sort(val))


# --- identity -------------------------------------------------------------------------------

def test_the_arrays_digest_is_in_the_run_identity_and_tfds_identities_are_unchanged():
  x, y = _toy()
  genjax.register_arrays("toy", x, y)
  config = _config("toy")
  run = identity.identity("train", config)
  digest = arrays.sha256_of("toy")
  assert run["inputs"] == {"arrays:toy": digest}
  h = hashlib.sha256()   # the digest: each split's dtype, shape and bytes, and the class count
  s = datasets.load("toy")
  for key in ("train_x", "train_y", "test_x", "test_y"):
    a = getattr(s, key)
    h.update(f"{key}:{a.dtype.str}:{a.shape};".encode() + a.tobytes())
  h.update(b"num_classes:3")
  assert h.hexdigest() == digest
  assert identity.identity("train", _config("mnist1d"))["inputs"] == {}
  genjax.register_arrays("toy", x, y + (y == 0))
  why = identity.difference(run, identity.identity("train", config))
  assert why.startswith("the arrays registered as 'toy' differ from those it trained on"), why
  sweep = identity.identity("sweep", _config("mnist1d"), [{"data.name": "toy"}])
  assert set(sweep["inputs"]) == {"arrays:toy"}


# --- training (slow) --------------------------------------------------------------------------

def _strip(results):
  out = {k: v for k, v in results.items() if k not in VOLATILE}
  out["dataset"] = {k: v for k, v in out["dataset"].items() if k != "name"}
  return out


def _assert_same(a, b, path="results"):
  if isinstance(a, dict):
    assert isinstance(b, dict) and sorted(a) == sorted(b), (path, sorted(a), sorted(b))
    for k in a:
      _assert_same(a[k], b[k], f"{path}.{k}")
  elif isinstance(a, list):
    assert isinstance(b, list) and len(a) == len(b), path
    for i, (u, v) in enumerate(zip(a, b)):
      _assert_same(u, v, f"{path}[{i}]")
  elif isinstance(a, float):
    assert (math.isnan(a) and math.isnan(b)) or a == b, (path, a, b)
  else:
    assert a == b, (path, a, b)


def _snapshot(root):
  out = {}
  for d, _, files in os.walk(root):
    for f in files:
      path = os.path.join(d, f)
      if f != ".genjax.lock":
        with open(path, "rb") as fh:
          out[os.path.relpath(path, root)] = hashlib.sha256(fh.read()).hexdigest()
  return out


@pytest.mark.slow
def test_registered_mnist1d_trains_to_the_tfds_runs_numbers_and_guards_its_workdir(tmp_path):
  tfds_splits = datasets.load("mnist1d")
  own = lambda: genjax.register_arrays(   # noqa: E731  (fresh copies each time)
      "mnist1d_arrays", np.array(tfds_splits.train_x), np.array(tfds_splits.train_y),
      np.array(tfds_splits.test_x), np.array(tfds_splits.test_y), num_classes=10)
  own()
  ours = genjax.fit(_config("mnist1d_arrays"), str(tmp_path / "ours"))
  theirs = genjax.fit(_config("mnist1d"), str(tmp_path / "tfds"))
  assert ours.results["dataset"]["name"] == "mnist1d_arrays"
  _assert_same(_strip(ours.results), _strip(theirs.results))
  for name in ("metrics.jsonl",):
    assert (tmp_path / "ours" / name).read_bytes() == (tmp_path / "tfds" / name).read_bytes()

  # A rerun with other arrays under the name is refused in one line; nothing is lost.
  workdir = str(tmp_path / "ours")
  before = _snapshot(workdir)
  x = np.array(tfds_splits.train_x)
  x[0, 0] += 1.0
  genjax.register_arrays("mnist1d_arrays", x, tfds_splits.train_y, tfds_splits.test_x,
                         tfds_splits.test_y, num_classes=10)
  _one_line(lambda: api.train(_config("mnist1d_arrays"), workdir, progress=False),
            "holds another run", "the arrays registered as 'mnist1d_arrays' differ")
  assert _snapshot(workdir) == before

  # load_run: refused in one line without the arrays, or with other ones.
  _one_line(lambda: genjax.load_run(workdir), "other arrays", "'mnist1d_arrays'",
            "genjax.register_arrays('mnist1d_arrays'")
  genjax.unregister_arrays("mnist1d_arrays")
  _one_line(lambda: genjax.load_run(workdir), "not registered in this process",
            "genjax.register_arrays('mnist1d_arrays'")
  _one_line(lambda: api.train(_config("mnist1d_arrays"), workdir, progress=False),
            "unknown dataset 'mnist1d_arrays'", "genjax.register_arrays")
  assert _snapshot(workdir) == before

  # The same arrays again (fresh copies): the rerun is the finished run, load_run predicts
  # what the run predicted.
  own()
  assert api.train(_config("mnist1d_arrays"), workdir, progress=False) == json.loads(
      (tmp_path / "ours" / "results.json").read_text())
  loaded = genjax.load_run(workdir)
  x_test = tfds_splits.test_x[:50]
  np.testing.assert_array_equal(loaded.predict(x_test), ours.predict(x_test))
  assert loaded.evaluate("test")["accuracy"][0] == ours.results["test"]["accuracy"]
  assert _snapshot(workdir) == before


@pytest.mark.slow
def test_kfold_on_train_only_arrays_in_memory():
  x, y = _toy(n=400, features=6)
  genjax.register_arrays("toy", x, y)        # no test split: 20% cut, stratified
  run = genjax.fit(_config("toy", "cv.method=stratified_kfold", "cv.folds=3"))
  assert run.results["dataset"]["test"] == 80 and run.results["dataset"]["num_classes"] == 3
  assert len(run.plans) == 3 and run.member_names == ["fold0", "fold1", "fold2"]
  assert run.results["cv"]["members"] == 3 and "accuracy" in run.results["test_ensemble"]


@pytest.mark.slow
def test_a_sweep_of_structural_groups_reads_the_arrays_in_its_group_processes(tmp_path):
  x, y = _toy(n=300)
  genjax.register_arrays("toy", x, y)
  rows = genjax.sweep(_config("toy", "checkpoint.enabled=False"),
                      [{"model.widths": (8,)}, {"model.widths": (16,)}],
                      str(tmp_path / "sweep"))
  assert len(rows) == 2
  digest = arrays.sha256_of("toy")
  for group in ("group00", "group01"):
    run = json.loads((tmp_path / "sweep" / group / "run.json").read_text())
    assert run["inputs"] == {"arrays:toy": digest}
