"""The Python API (genjax.load_config, fit, sweep, load_run and Run): what the CLI does, from
Python, checked against what the drivers write and against numpy computations of our own."""

import json
import math
import os
import tempfile

import jax
import numpy as np
import pytest
from sklearn import model_selection

import genjax
from genjax.run import driver
from genjax.data import datasets
from genjax.errors import ConfigError

_NAMES = ("load_config", "fit", "sweep", "load_run")
if all(callable(getattr(genjax, n, None)) for n in _NAMES):
  from genjax import fit, load_config, load_run, sweep
else:   # not exported from genjax/__init__.py (yet)
  from genjax.api import fit, load_config, load_run, sweep

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENT = os.path.join(ROOT, "experiments", "mnist1d_mlp.py")
OVERRIDES = ["num_epochs=2", "model.widths=(32,)", "cv.refit=False"]
VOLATILE = ("wall_time_s", "provenance")   # differ between two runs of one config


def _small(config):
  config.checkpoint.enabled = False
  config.data.augment = ""   # MNIST-1D's four augmentations double the compile time
  return config


def _set(config, **settings):
  """`config` with dotted keys set directly (independent of load_config's overrides)."""
  for key, value in settings.items():
    *path, last = key.split(".")
    node = config
    for p in path:
      node = node[p]
    node[last] = value
  return config


def _direct_config(**settings):
  """OVERRIDES, set by assignment on the experiment file's config."""
  config = _set(load_config(EXPERIMENT), num_epochs=2, **{"model.widths": (32,),
                                                            "cv.refit": False})
  return _set(config, **settings)


def _holdout_config():
  return _small(_direct_config())


def _kfold_config():
  return _small(_direct_config(num_epochs=3, **{"cv.method": "stratified_kfold",
                                                "cv.folds": 3}))


def _files(root):
  return sorted(os.path.relpath(os.path.join(d, f), root)
                for d, _, fs in os.walk(root) for f in fs)


def _assert_same_numbers(a, b, path="results"):
  """Equal nested results: same keys and values, floats bit for bit (NaN equals NaN)."""
  if isinstance(a, dict):
    assert isinstance(b, dict) and sorted(a) == sorted(b), (path, sorted(a), sorted(b))
    for k in a:
      _assert_same_numbers(a[k], b[k], f"{path}.{k}")
  elif isinstance(a, (list, tuple)):
    assert isinstance(b, (list, tuple)) and len(a) == len(b), (path, a, b)
    for i, (x, y) in enumerate(zip(a, b)):
      _assert_same_numbers(x, y, f"{path}[{i}]")
  elif isinstance(a, float) or isinstance(b, float):
    assert (math.isnan(a) and math.isnan(b)) or a == b, (path, a, b)
  else:
    assert a == b, (path, a, b)


def _strip(results):
  return {k: v for k, v in results.items() if k not in VOLATILE}


def _metric_rows(path):
  """metrics.jsonl read with json alone (null: NaN)."""
  with open(path) as f:
    return [{k: float("nan") if v is None else v for k, v in json.loads(line).items()}
            for line in f if line.strip()]


@pytest.fixture(scope="module")
def mnist1d():
  return datasets.load("mnist1d")


# --- load_config --------------------------------------------------------------------------

def test_load_config_applies_overrides_with_their_types():
  config = load_config(EXPERIMENT, overrides=OVERRIDES)
  assert config.num_epochs == 2 and type(config.num_epochs) is int
  assert config.model.widths == (32,) and isinstance(config.model.widths, tuple)
  assert config.cv.refit is False
  # The file's other values are kept.
  assert config.optimizer.learning_rate == pytest.approx(3e-3)
  assert config.model.residual is True and config.data.name == "mnist1d"
  # The "config." prefix of the flags is accepted too.
  assert load_config(EXPERIMENT, overrides=["config.num_epochs=7"]).num_epochs == 7
  assert load_config(None).num_epochs == genjax.config.defaults.get_config().num_epochs
  # Everything else equals the file's config with the same values assigned.
  assert config.to_dict() == _direct_config().to_dict()
  kfold = load_config(EXPERIMENT, overrides=OVERRIDES + [
      "num_epochs=3", "cv.method=stratified_kfold", "cv.folds=3"])
  assert kfold.to_dict() == _direct_config(
      num_epochs=3, **{"cv.method": "stratified_kfold", "cv.folds": 3}).to_dict()
  assert kfold.cv.folds == 3 and kfold.cv.method == "stratified_kfold"
  assert load_config(EXPERIMENT).num_epochs == 300   # the file's own value


def test_load_config_ignores_the_process_command_line(monkeypatch):
  """Overrides come from `overrides` only, whatever sys.argv holds (a notebook's kernel
  flags, pytest's, a script's own)."""
  monkeypatch.setattr("sys.argv", ["my_script.py", "--config.num_epochs=5", "-q"])
  config = load_config(EXPERIMENT, overrides=["model.widths=(16,)"])
  assert config.model.widths == (16,) and config.num_epochs == 300


@pytest.mark.parametrize("override,key", [
    ("num_epoch=2", "num_epoch"),
    ("model.widht=(32,)", "widht"),
    ("num_epochs=abc", "num_epochs"),
    ("cv.refit=maybe", "cv.refit"),
    ("model.widths=abc", "model.widths"),
])
def test_load_config_bad_key_or_value_is_a_one_line_config_error(override, key):
  with pytest.raises(ConfigError) as e:
    load_config(EXPERIMENT, overrides=["num_epochs=2", override])
  message = str(e.value)
  assert "\n" not in message.strip(), message
  assert key in message, message


# Each test below trains its own runs: a fixture shared by several tests would be trained
# again on every pytest-xdist worker that runs one of them.

# --- hold-out: fit in memory, predict, evaluate ---------------------------------------------

def _check_predict_holdout(run, splits):
  x, y = splits.test_x, np.asarray(splits.test_y)
  logits = run.predict(x)
  assert logits.shape == (1, len(y), splits.num_classes)
  accuracy = np.mean(logits[0].argmax(-1) == y)
  assert accuracy == pytest.approx(run.results["test"]["accuracy"], abs=1e-6)
  np.testing.assert_array_equal(run.predict(x, member=0), logits[0])
  # The loss too: the mean cross-entropy of the logits, in numpy.
  z = logits[0].astype(np.float64)
  logp = z - z.max(-1, keepdims=True)
  logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
  assert -logp[np.arange(len(y)), y].mean() == pytest.approx(run.results["test"]["loss"],
                                                             rel=1e-5)
  test = run.evaluate("test")
  assert test["accuracy"][0] == pytest.approx(run.results["test"]["accuracy"], rel=1e-6)
  assert test["loss"][0] == pytest.approx(run.results["test"]["loss"], rel=1e-6)
  with pytest.raises(ConfigError, match="shape"):
    run.predict(x[:, :10])


@pytest.mark.slow
def test_holdout_fit_in_memory_writes_nothing_equals_the_run_on_disk_and_predicts(
    tmp_path, monkeypatch, mnist1d):
  cwd, tmp = tmp_path / "cwd", tmp_path / "tmpdir"
  cwd.mkdir()
  tmp.mkdir()
  with monkeypatch.context() as mp:
    mp.chdir(cwd)
    mp.setenv("TMPDIR", str(tmp))
    mp.setattr(tempfile, "tempdir", str(tmp))
    run = fit(_holdout_config())
  for d in (cwd, tmp):
    assert _files(d) == [], f"an in-memory fit wrote {_files(d)} into {d}"
  assert run.workdir is None and run.member_names == ["run"]

  # In memory equals on disk: driver.run's results.json for the same config.
  workdir = tmp_path / "run"
  driver.run(_holdout_config(), str(workdir), progress=False)
  with open(workdir / "results.json") as f:
    on_disk = json.load(f)
  _assert_same_numbers(_strip(json.loads(json.dumps(run.results))), _strip(on_disk))

  _check_predict_holdout(run, mnist1d)
  epochs = run.results["epochs_run"]
  assert epochs == 2
  rows = _metric_rows(workdir / "metrics.jsonl")   # the same config's rows, on disk
  for name in ("val_loss", "val_accuracy", "train_loss_running"):
    assert run.history[name].shape == (1, epochs)
    np.testing.assert_array_equal(run.history[name][0], [r[name] for r in rows])


# --- K-fold: predict, standardization, evaluate, history, load_run ---------------------------

def _check_ensemble(run, splits):
  x, y = splits.test_x, np.asarray(splits.test_y)
  logits = run.predict(x)
  assert logits.shape == (3, len(y), splits.num_classes)
  ensemble = run.predict(x, ensemble=True)
  assert ensemble.shape == (len(y), splits.num_classes)
  assert np.mean(ensemble.argmax(-1) == y) == run.results["test_ensemble"]["accuracy"]
  # The ensemble is the log of the members' mean softmax, computed here in numpy.
  z = logits.astype(np.float64)
  p = np.exp(z - z.max(-1, keepdims=True))
  p /= p.sum(-1, keepdims=True)
  np.testing.assert_allclose(np.exp(ensemble), p.mean(0), rtol=1e-5, atol=1e-6)
  assert -np.mean(np.log(p.mean(0)[np.arange(len(y)), y] + 1e-12)) == pytest.approx(
      run.results["test_ensemble"]["loss"], rel=1e-5)
  for k in range(3):
    np.testing.assert_array_equal(run.predict(x, member=k), logits[k])


def _check_standardization(run, splits):
  """genjax.data.standardize ("feature"): per-feature mean and (ddof 0) std of the member's
  training rows, std < 1e-6 replaced by 1; folds as scikit-learn's StratifiedKFold."""
  x, y = np.asarray(splits.train_x), np.asarray(splits.train_y)
  folds = model_selection.StratifiedKFold(n_splits=3, shuffle=True, random_state=run.config.seed)
  assert run.mean.shape == run.std.shape == (3,) + x.shape[1:]
  for k, (train, val) in enumerate(folds.split(np.zeros((len(y), 1)), y)):
    np.testing.assert_array_equal(run.plans[k].train_idx, np.sort(train))
    np.testing.assert_array_equal(run.plans[k].val_idx, np.sort(val))
    part = x[train].astype(np.float64)
    std = part.std(0)
    std = np.where(std < 1e-6, 1.0, std)
    np.testing.assert_allclose(run.mean[k], part.mean(0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(run.std[k], std, rtol=1e-6)
  assert not np.array_equal(run.mean[0], run.mean[1])   # one per member


def _check_evaluate_val(run, splits):
  val = run.evaluate("val")
  per_fold = run.results["cv"]["per_fold"]
  assert len(per_fold) == 3
  for k, fold in enumerate(per_fold):
    assert set(fold["val"]) <= set(val)
    for name, value in fold["val"].items():
      np.testing.assert_allclose(val[name][k], value, rtol=1e-6)
  # Independently: each fold's validation accuracy from predict on its raw validation rows.
  x, y = np.asarray(splits.train_x), np.asarray(splits.train_y)
  for k, plan in enumerate(run.plans):
    logits = run.predict(x[plan.val_idx], member=k)
    assert np.mean(logits.argmax(-1) == y[plan.val_idx]) == pytest.approx(
        per_fold[k]["val"]["accuracy"], abs=1e-6)
  with pytest.raises(ConfigError, match="unknown"):
    run.evaluate("validation")


@pytest.mark.slow
def test_kfold_fit_in_memory_predicts_the_ensemble_standardizes_and_evaluates(mnist1d):
  run = fit(_kfold_config())
  assert run.member_names == ["fold0", "fold1", "fold2"]
  _check_ensemble(run, mnist1d)
  _check_standardization(run, mnist1d)
  _check_evaluate_val(run, mnist1d)


def _check_history(run, workdir):
  rows = _metric_rows(workdir / "metrics.jsonl")
  epochs = run.results["epochs_run"]
  assert epochs == max(r["epoch"] for r in rows) + 1
  seen = np.zeros((3, epochs), bool)
  for name in ("val_loss", "val_accuracy", "train_loss_running"):
    history = run.history[name]
    assert history.shape == (3, epochs)
    for r in rows:
      assert history[r["fold"], r["epoch"]] == r[name], (name, r)
      seen[r["fold"], r["epoch"]] = True
    assert np.isnan(history[~seen]).all()
  assert len(rows) == seen.sum()


def _check_load_run(run, workdir, splits):
  loaded = load_run(str(workdir))
  assert loaded.member_names == run.member_names
  assert jax.tree.structure(loaded.params) == jax.tree.structure(run.params)
  for a, b in zip(jax.tree.leaves(loaded.params), jax.tree.leaves(run.params)):
    assert np.asarray(a).dtype == np.asarray(b).dtype
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  np.testing.assert_array_equal(loaded.mean, run.mean)
  np.testing.assert_array_equal(loaded.std, run.std)
  np.testing.assert_array_equal(loaded.predict(splits.test_x), run.predict(splits.test_x))
  np.testing.assert_array_equal(loaded.predict(splits.test_x, ensemble=True),
                                run.predict(splits.test_x, ensemble=True))
  _assert_same_numbers(loaded.results, json.loads(json.dumps(run.results)))
  for name in ("val_loss", "val_accuracy"):
    np.testing.assert_array_equal(loaded.history[name], run.history[name])
  val, val_loaded = run.evaluate("val"), loaded.evaluate("val")
  for name in val:
    np.testing.assert_array_equal(val_loaded[name], val[name])


def _check_fit_again_loads(run, workdir, monkeypatch):
  stamps = {n: os.stat(workdir / n).st_mtime_ns for n in ("metrics.jsonl", "results.json")}
  files = _files(workdir)

  def no_training(*args, **kwargs):
    raise AssertionError("a finished run was trained again")

  with monkeypatch.context() as mp:
    mp.setattr(genjax.run.setup, "train", no_training)
    again = fit(_kfold_config(), str(workdir))
  assert {n: os.stat(workdir / n).st_mtime_ns for n in stamps} == stamps
  assert _files(workdir) == files
  _assert_same_numbers(_strip(again.results), _strip(json.loads(json.dumps(run.results))))
  for a, b in zip(jax.tree.leaves(again.params), jax.tree.leaves(run.params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_kfold_fit_with_workdir_history_load_run_and_rerun(tmp_path, monkeypatch, mnist1d):
  workdir = tmp_path / "cv"
  run = fit(_kfold_config(), str(workdir))
  assert run.workdir == str(workdir)
  _check_history(run, workdir)
  _check_load_run(run, workdir, mnist1d)
  _check_fit_again_loads(run, workdir, monkeypatch)


def test_load_run_of_a_directory_without_a_run_is_a_config_error(tmp_path):
  (tmp_path / "notes.txt").write_text("not a run\n")
  for where in (tmp_path, tmp_path / "missing"):
    with pytest.raises(ConfigError) as e:
      load_run(str(where))
    assert "\n" not in str(e.value).strip()


# --- sweep ----------------------------------------------------------------------------------

@pytest.mark.slow
def test_sweep_returns_one_row_per_point(tmp_path):
  points = [{"model.dropout": 0.0}, {"model.dropout": 0.2}]
  with pytest.raises(ConfigError, match="workdir"):
    sweep(_holdout_config(), points, workdir=None)
  rows = sweep(_holdout_config(), points, workdir=str(tmp_path / "grid"),
               test_for_all_points=True)
  assert len(rows) == 2
  assert [r["point"] for r in rows] == points
  assert [r["name"] for r in rows] == ["dropout=0", "dropout=0.2"]
  with open(tmp_path / "grid" / "sweep.json") as f:
    assert json.load(f)["rows"] == json.loads(json.dumps(rows))
  for r in rows:
    assert 0.0 <= r["test_accuracy"] <= 1.0 and r["folds"] == 1
