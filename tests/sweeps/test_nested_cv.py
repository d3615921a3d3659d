"""Nested cross-validation (cv.outer_folds in `genjax sweep`): splits equal scikit-learn's, an
inner member equals that member trained alone, selection and the estimate recomputed
independently, refits frozen at their own epoch counts, chunked programs equal one program."""

import csv
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats as scipy_stats
from sklearn import model_selection

from genjax.config import defaults
from genjax.run import results as results_lib, setup as experiment
from genjax.sweeps import nested as nested_cv
from genjax.sweeps import driver as sweep, memory as member_memory
from genjax.data import datasets
from genjax.errors import ConfigError
from genjax.train.fit import fit
from genjax.train.members import MemberPlan
from genjax.train.program import build_program

POINTS = [{"model.dropout": 0.0}, {"model.dropout": 0.5}]


def _small(outer=3, inner=3):
  config = defaults.get_config()
  config.model.widths = (16,)
  config.num_epochs = 5
  config.optimizer.learning_rate = 3e-3
  config.early_stopping.patience = 1
  config.checkpoint.enabled = False
  config.cv.method = "stratified_kfold"
  config.cv.folds = inner
  config.cv.outer_folds = outer
  return config


def _csv(path):
  with open(path) as f:
    return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def nested_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("nested") / "sweep"
  sweep.run(_small(), str(workdir), POINTS, progress=False)
  return workdir, json.load(open(workdir / "nested.json"))


def test_outer_and_inner_splits_equal_scikit_learns():
  labels = np.asarray(datasets.load("mnist1d").train_y)
  config = _small(outer=4, inner=3)
  config.data.split_seed = 7
  outer = nested_cv.outer_splits(config, labels)
  want = model_selection.StratifiedKFold(4, shuffle=True, random_state=7)
  x = np.zeros((len(labels), 1))
  for (tr, te), (w_tr, w_te) in zip(outer, want.split(x, labels), strict=True):
    np.testing.assert_array_equal(tr, np.sort(w_tr))
    np.testing.assert_array_equal(te, np.sort(w_te))
  inner = nested_cv.inner_plans(config, labels, outer)
  for o, (tr, _) in enumerate(outer):
    splitter = model_selection.StratifiedKFold(3, shuffle=True, random_state=7)
    for k, (plan, (a, b)) in enumerate(zip(inner[o], splitter.split(tr[:, None], labels[tr]),
                                           strict=True)):
      np.testing.assert_array_equal(plan.train_idx, np.sort(tr[a]))
      np.testing.assert_array_equal(plan.val_idx, np.sort(tr[b]))
      assert plan.member_id == o * 4 + k          # o·(K+1) + k: distinct keys per member
      assert not set(plan.val_idx) & set(outer[o][1])   # the outer held-out part stays out


@pytest.mark.slow
def test_selection_and_estimate_recomputed_from_the_members(nested_run):
  workdir, record = nested_run
  members = _csv(workdir / "nested_members.csv")
  assert len(members) == 3 * 2 * 3                  # outer x points x inner
  counts = {"dropout=0": 0, "dropout=0.5": 0}
  for row in record["outer"]:
    o = row["outer_fold"]
    means = {p: np.mean([float(m["val_accuracy"]) for m in members
                         if int(m["outer_fold"]) == o and m["point"] == p]) for p in counts}
    want = max(counts, key=lambda p: means[p])
    assert row["selected"] == want
    assert row["inner_val_accuracy_mean"] == pytest.approx(means[want], abs=1e-12)
    epochs = [int(m["selected_epoch"]) for m in members
              if int(m["outer_fold"]) == o and m["point"] == want]
    assert row["epochs"] == int(np.median(epochs)) + 1
    counts[want] += 1
  assert record["selection_frequency"] == counts
  acc = np.array([r["accuracy"] for r in record["outer"]])
  n_in = np.mean([r["train_size"] for r in record["outer"]])
  n_out = np.mean([r["held_out_size"] for r in record["outer"]])
  half = scipy_stats.t.ppf(0.975, 2) * math.sqrt((1 / 3 + n_out / n_in) * acc.var(ddof=1))
  est = record["estimate"]["accuracy"]
  assert est["mean"] == pytest.approx(acc.mean(), abs=1e-12)
  assert est["ci95"] == pytest.approx([acc.mean() - half, acc.mean() + half], abs=1e-12)
  assert record["naive_best_of_sweep"]["accuracy_mean"] == pytest.approx(
      np.mean([r["inner_val_accuracy_mean"] for r in record["outer"]]), abs=1e-12)
  md = (workdir / "nested.md").read_text()
  assert f"Nested estimate: {100 * acc.mean():.2f}%" in md and "test split is not used" in md


@pytest.mark.slow
def test_an_inner_member_and_a_refit_equal_themselves_trained_alone(nested_run):
  workdir, record = nested_run
  config = _small()
  s = experiment.prepare(config, None)
  outer = nested_cv.outer_splits(config, s.splits.train_y)
  inner = nested_cv.inner_plans(config, s.splits.train_y, outer)
  row = next(m for m in record["member_results"] if str(m["outer_fold"]) == "1"
             and m["point"] == "dropout=0.5" and str(m["fold"]) == "2")
  f = inner[1][2]
  plan = MemberPlan(f.member_id, f.train_idx, f.val_idx, hparams={"model.dropout": 0.5})
  program, fitted = experiment.train(s, [plan], None)
  val = results_lib.evaluate_members(program, fitted, "val")
  assert float(row["val_accuracy"]) == float(val["accuracy"][0])   # bit for bit (member blocks)
  assert int(row["selected_epoch"]) == int(fitted.selected_epoch[0])
  # The refit of outer fold 0: its point on the whole outer training part, alone.
  refit = record["outer"][0]
  point = refit["selected_point"]
  alone = MemberPlan(len(inner[0]), outer[0][0], np.zeros(0, np.int32),
                     hparams={"model.dropout": float(point["model.dropout"])})
  program = build_program(s, [alone], use_early_stopping=False)
  fitted = fit(program, [], num_epochs=refit["epochs"])
  import jax.numpy as jnp
  held_out = outer[0][1]
  out = program.evaluate(results_lib.member_slice(fitted.selected_params, 0),
                         results_lib.member_slice(program.plan, 0), program.x_train,
                         program.y_train, jnp.asarray(held_out), jnp.ones(len(held_out)))
  assert refit["accuracy"] == float(out["accuracy"])


@pytest.mark.slow
def test_epoch_limits_freeze_each_member_after_its_own_epochs():
  config = _small()
  config.early_stopping.enabled = False
  s = experiment.prepare(config, None)
  f = experiment.fold_plans(config, s.splits.train_y)[0]
  plans = [MemberPlan(0, f.train_idx, f.val_idx), MemberPlan(0, f.train_idx, f.val_idx)]
  program = build_program(s, plans, use_early_stopping=False, epoch_limits=[2, 4])
  fitted = fit(program, [], num_epochs=4)
  assert list(fitted.selected_epoch) == [1, 3]
  short = fit(build_program(s, plans[:1], use_early_stopping=False), [], num_epochs=2)
  for a, b in zip(_leaves(results_lib.member_slice(fitted.selected_params, 0)),
                  _leaves(results_lib.member_slice(short.selected_params, 0))):
    np.testing.assert_array_equal(a, b)
  longer = _leaves(results_lib.member_slice(fitted.selected_params, 1))
  assert any(not np.allclose(a, b) for a, b in zip(longer, _leaves(
      results_lib.member_slice(short.selected_params, 0))))


def _leaves(tree):
  import jax
  return [np.asarray(x) for x in jax.tree.leaves(tree)]


@pytest.mark.slow
def test_chunked_programs_equal_one_program(nested_run, tmp_path, monkeypatch):
  _, record = nested_run
  members_per_outer = 2 * 3
  monkeypatch.setattr(member_memory, "member_capacity",
                      lambda s, needed=None: (members_per_outer,
                                              "test: one outer fold per program"))
  workdir = tmp_path / "chunked"
  sweep.run(_small(), str(workdir), POINTS, progress=False)
  chunked = json.load(open(workdir / "nested.json"))
  assert chunked["programs"] == 3 and record["programs"] == 1
  assert (workdir / "metrics_outer2.jsonl").exists()
  for a, b in zip(chunked["member_results"], record["member_results"], strict=True):
    assert a["val_accuracy"] == b["val_accuracy"]   # bit for bit: a member is its block's
  assert [r["selected"] for r in chunked["outer"]] == [r["selected"] for r in record["outer"]]


def _refused(config, points, match, tmp_path, **kwargs):
  with pytest.raises(ConfigError, match=match):
    sweep.run(config, str(tmp_path / "x"), points, progress=False, **kwargs)
  assert not (tmp_path / "x").exists()


def test_bad_nested_settings_are_refused_before_anything_runs(tmp_path):
  holdout = _small()
  holdout.cv.method = "none"
  _refused(holdout, POINTS, "cv.method=none is a hold-out split", tmp_path)
  _refused(_small(outer=1000), POINTS, "cv.outer_folds=1000: 1000 folds exceed", tmp_path)
  _refused(_small(outer=2, inner=300), POINTS, "cv.folds=300 inside outer fold 0", tmp_path)
  refit = _small()
  refit.cv.refit = True
  _refused(refit, POINTS, "cv.refit does not apply to nested CV", tmp_path)
  _refused(_small(), [{"model.widths": (8,)}, {"model.widths": (16,)}],
           "2 structural groups", tmp_path)
  _refused(_small(), [{"data.label_noise": 0.0}, {"data.label_noise": 0.2}],
           "cannot sweep data.label_noise", tmp_path)
  _refused(_small(), POINTS, "--baseline does not apply", tmp_path, baseline="dropout=0")
  with pytest.raises(ConfigError, match="cv.outer_folds must be 0"):
    defaults.validate(_small(outer=1))


def test_nested_cv_in_genjax_train_is_one_line_exit_2(tmp_path):
  out = subprocess.run([sys.executable, "-m", "genjax.main", "train",
                        f"--workdir={tmp_path / 'w'}", "--config.cv.method=stratified_kfold",
                        "--config.cv.outer_folds=3"], capture_output=True, text=True)
  assert out.returncode == 2, out.stderr
  assert len(out.stderr.strip().splitlines()) == 1
  assert "run it with `genjax sweep" in out.stderr
  assert not (tmp_path / "w").exists()
