"""The vmapped K-fold driver: folds equal scikit-learn's, a fold inside the vmapped
program equals the fold trained alone, results and outputs are complete."""

import gc
import json
import os

import jax
import numpy as np
import pytest
from sklearn import model_selection

from genjax.config import defaults
from genjax.run import driver
from genjax.data import splits as validation
from genjax.errors import ConfigError
from genjax.run import results as results_lib, setup as experiment
from genjax.train import fit as fit_lib


@pytest.mark.parametrize("method,cls,kw", [
    ("kfold", model_selection.KFold, {"shuffle": True, "random_state": 3}),
    ("stratified_kfold", model_selection.StratifiedKFold, {"shuffle": True, "random_state": 3}),
    ("group_kfold", model_selection.GroupKFold, {"shuffle": True, "random_state": 3}),
    ("repeated_stratified_kfold", model_selection.RepeatedStratifiedKFold,
     {"n_repeats": 2, "random_state": 3}),
])
def test_splits_equal_scikit_learns(method, cls, kw):
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 4, 203)
  groups = rng.integers(0, 30, 203)
  ours = validation.kfold_splits(labels, method=method, folds=5, seed=3, repeats=2, groups=groups)
  theirs = list(cls(n_splits=5, **kw).split(np.zeros((203, 1)), labels,
                                          groups if method == "group_kfold" else None))
  assert len(ours) == len(theirs)
  for (tr, va), (tr2, va2) in zip(ours, theirs):  # noqa: B007
    np.testing.assert_array_equal(tr, np.sort(tr2))
    np.testing.assert_array_equal(va, np.sort(va2))
    assert not set(tr) & set(va)


@pytest.mark.parametrize("kw,match", [
    ({"method": "kfold", "folds": 1}, "folds must be an integer >= 2"),
    ({"method": "stratified_kfold", "folds": 7}, "smallest class"),
    ({"method": "group_kfold", "folds": 3}, "needs groups"),
    ({"method": "group_kfold", "folds": 5, "groups": np.arange(10) % 4}, "exceeds the 4 groups"),
    ({"method": "loo", "folds": 3}, "unknown cv.method"),
])
def test_bad_cv_settings(kw, match):
  labels = np.array([0] * 6 + [1] * 4)
  with pytest.raises(ConfigError, match=match):
    validation.kfold_splits(labels, **kw)


def _config(**overrides):
  config = defaults.get_config()
  config.model.widths = (64, 64)
  config.model.dropout = 0.1
  config.optimizer.learning_rate = 3e-2
  config.num_epochs = 12
  config.early_stopping.patience = 1
  config.cv.method = "stratified_kfold"
  config.cv.folds = 3
  config.data.augment = "shift(max_shift=2)"
  for k, v in overrides.items():
    node = config
    *path, last = k.split(".")
    for p in path:
      node = node[p]
    node[last] = v
  return config


@pytest.mark.slow
def test_fold_inside_vmapped_program_equals_fold_alone(tmp_path):
  config = _config()
  config.checkpoint.enabled = False
  s = experiment.prepare(config, str(tmp_path))
  plans = experiment.fold_plans(config, s.splits.train_y)
  os.makedirs(tmp_path / "all")
  together = experiment.train(s, plans, str(tmp_path / "all"), resume=False, progress=False)[1]
  stops = np.asarray(together.monitor.stopped_epoch)
  assert len(set(stops.tolist())) > 1, f"folds should stop at different epochs: {stops}"
  for k in (0, 2):
    os.makedirs(tmp_path / f"alone{k}")
    alone = experiment.train(s, [plans[k]], str(tmp_path / f"alone{k}"), resume=False,
                               progress=False)[1]
    rows_t = [r for r in together.rows if r["fold"] == k]
    assert [r["epoch"] for r in rows_t] == [r["epoch"] for r in alone.rows]
    for a, b in zip(rows_t, alone.rows):   # bit for bit: members train in blocks (parallel.py)
      for key in ("train_loss_running", "val_loss", "val_accuracy"):
        assert a[key] == b[key], (k, a["epoch"], key, a[key], b[key])
    assert int(alone.selected_epoch[0]) == int(together.selected_epoch[k])
    for x, y in zip(jax.tree.leaves(results_lib.member_slice(together.selected_params, k)),
                    jax.tree.leaves(results_lib.member_slice(alone.selected_params, 0))):
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_epoch_dispatched_ahead_is_dropped_when_every_fold_has_stopped(tmp_path):
  """Epoch e + 1 is dispatched before the host reads epoch e; when e stops every fold, the run
  ends exactly as a run whose last epoch is e (same state, rows and selected weights)."""
  config = _config(num_epochs=40)
  config.checkpoint.enabled = False
  s = experiment.prepare(config, str(tmp_path))
  plans = experiment.fold_plans(config, s.splits.train_y)
  os.makedirs(tmp_path / "early")
  early = experiment.train(s, plans, str(tmp_path / "early"), resume=False, progress=False)[1]
  stops = np.asarray(early.monitor.stopped_epoch)
  assert (stops >= 0).all() and early.epochs_run == stops.max() + 1 < 40, stops
  os.makedirs(tmp_path / "exact")
  exact = experiment.train(s, plans, str(tmp_path / "exact"), resume=False, progress=False,
                             num_epochs=early.epochs_run)[1]
  assert exact.epochs_run == early.epochs_run
  assert early.rows == exact.rows
  for k in range(len(plans)):
    assert max(r["epoch"] for r in early.rows if r["fold"] == k) == stops[k]
  for x, y in zip(jax.tree.leaves((early.state, early.selected_params)),
                  jax.tree.leaves((exact.state, exact.selected_params))):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_training_hands_frozen_objects_back_to_the_collector():
  """train_members freezes the objects alive at its start out of the GC while it traces and
  trains, with the GC on, and restores both after, also when it raises."""
  seen = []

  @fit_lib._gc_frozen
  def body(fail):
    seen.append((gc.get_freeze_count(), gc.isenabled()))
    if fail:
      raise ValueError("boom")

  body(False)
  with pytest.raises(ValueError):
    body(True)
  gc.disable()  # as the CLI's start-up leaves it: training turns the GC on, then restores
  try:
    body(False)
    assert not gc.isenabled()
  finally:
    gc.enable()
  assert all(frozen > 0 and enabled for frozen, enabled in seen), seen
  assert gc.get_freeze_count() == 0


@pytest.mark.slow
def test_kfold_run_writes_results_oof_and_plots(tmp_path):
  config = _config(**{"cv.refit": True, "num_epochs": 6})
  results = driver.run(config, str(tmp_path), progress=False)
  cv = results["cv"]
  assert cv["members"] == 3 and len(cv["per_fold"]) == 3
  accs = [f["val"]["accuracy"] for f in cv["per_fold"]]
  assert cv["val_accuracy"]["mean"] == pytest.approx(np.mean(accs))
  lo, hi = cv["val_accuracy"]["ci95"]
  assert lo <= cv["val_accuracy"]["mean"] <= hi
  for f in cv["per_fold"]:
    assert {"best_epoch", "stopped_epoch", "stop_reason", "generalization_gap"} <= set(f)
  assert 0.2 < results["test"]["accuracy"] <= 1.0          # ensemble far above chance (0.1)
  assert results["test_refit"]["epochs"] >= 1
  # Each fold's own test accuracy: its selected model's logits, argmax counted in numpy.
  import genjax
  from genjax.data import datasets
  run = genjax.load_run(str(tmp_path))
  data = datasets.load("mnist1d")
  logits = run.predict(data.test_x)
  for k, f in enumerate(cv["per_fold"]):
    own = float(np.mean(logits[k].argmax(-1) == np.asarray(data.test_y)))
    assert f["test"]["accuracy"] == pytest.approx(own, abs=1e-12)
    assert f["seed"] == config.seed
  oof = np.load(tmp_path / "oof_predictions.npz")
  assert sorted(oof["indices"].tolist()) == list(range(4000))   # every example once
  assert oof["logits"].shape == (4000, 10)
  own = [np.mean(oof["logits"][oof["fold"] == k].argmax(-1) == oof["labels"][oof["fold"] == k])
         for k in range(3)]
  np.testing.assert_allclose(own, accs, atol=1e-6)        # OOF logits are the selected models'
  for name in ("learning_curves.png", "cv_folds.png", "results.json", "metrics.jsonl"):
    assert (tmp_path / name).stat().st_size > 0
  rows = [json.loads(x) for x in open(tmp_path / "metrics.jsonl")]
  assert {r["fold"] for r in rows} == {0, 1, 2}


def test_each_fold_keeps_its_best_weights_in_its_own_orbax_checkpoint(tmp_path):
  from genjax.workdir import checkpoint
  config = _config(**{"num_epochs": 6})
  s = experiment.prepare(config, str(tmp_path))
  plans = experiment.fold_plans(config, s.splits.train_y)
  t = experiment.train(s, plans, str(tmp_path), resume=False, progress=False)[1]
  for k in range(len(plans)):
    ckpt = checkpoint.Checkpointer(tmp_path / "checkpoints" / "best" / f"fold{k}")
    assert ckpt.best_epoch() == int(t.selected_epoch[k])
    target = results_lib.member_slice(t.selected_params, k)
    restored = ckpt.restore(ckpt.best_epoch(), target)
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(target)):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    ckpt.close()
