"""Per-member sweep outputs and the comparison against a baseline (corrected resampled t)."""

import csv
import json
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from genjax.config import defaults
from genjax.sweeps import driver as sweep
from genjax.errors import ConfigError


def _small(folds=3):
  config = defaults.get_config()
  config.model.widths = (16,)
  config.num_epochs = 4
  config.optimizer.learning_rate = 3e-3
  config.early_stopping.patience = 2
  config.checkpoint.enabled = False
  config.cv.method = "stratified_kfold" if folds > 1 else "none"
  config.cv.folds = max(folds, 2)
  return config


def _csv(path):
  with open(path) as f:
    return list(csv.DictReader(f))


def _corrected(a, b, n_train, n_val):
  """The corrected resampled t-test, coded from Nadeau & Bengio's formula."""
  d = np.asarray(a, float).ravel() - np.asarray(b, float).ravel()
  j = d.size
  var = d.var(ddof=1) * (1 / j + n_val / n_train)
  t = d.mean() / math.sqrt(var)
  return t, 2 * scipy_stats.t.sf(abs(t), j - 1)


@pytest.mark.slow
def test_members_and_comparisons_of_a_seeded_grid(tmp_path):
  points = sweep.grid(["model.dropout=0,0.3", "seed=0,1"])
  workdir = tmp_path / "grid"
  rows = sweep.run(_small(), str(workdir), points, progress=False, baseline="dropout=0",
                   test_for_all_points=True)
  members = _csv(workdir / "sweep_members.csv")
  assert len(members) == 2 * 2 * 3                      # points x seeds x folds
  assert {m["point"] for m in members} == {"dropout=0", "dropout=0.3"}
  assert {(m["seed"], m["fold"]) for m in members} == {(s, f) for s in "01" for f in "012"}
  for row in rows:       # each (point, seed) row is the mean of its members
    mine = [float(m["val_accuracy"]) for m in members
            if m["point"] == f"dropout={row['point']['model.dropout']:g}"
            and int(m["seed"]) == row["point"]["seed"]]
    assert row["val_accuracy_mean"] == pytest.approx(np.mean(mine), abs=1e-12)
  by = lambda p, k: np.array([[float(m[k]) for m in members  # noqa: E731
                               if m["point"] == p and int(m["seed"]) == s] for s in (0, 1)])
  a, b = by("dropout=0.3", "val_accuracy"), by("dropout=0", "val_accuracy")
  n_train = np.mean([int(m["train_size"]) for m in members])
  n_val = np.mean([int(m["val_size"]) for m in members])
  # Fixed folds: the seeds are averaged within each fold; the 3 folds are the repetitions.
  t, p = _corrected(a.mean(axis=0), b.mean(axis=0), n_train, n_val)
  record = json.load(open(workdir / "sweep.json"))
  other = next(c for c in record["comparisons"] if c["point"] == "dropout=0.3")
  assert other["val_accuracy_difference"]["t"] == pytest.approx(t, rel=1e-9)
  assert other["val_accuracy_difference"]["p_value"] == pytest.approx(p, rel=1e-9)
  assert other["val_accuracy_difference"]["df"] == 2
  assert other["val_accuracy_difference"]["p_adjusted"] == pytest.approx(p, rel=1e-12)  # m = 1
  assert "test_accuracy_difference" in other        # 2 seeds: bootstrap over seeds
  table_rows = _csv(workdir / "sweep.csv")   # seeds are repetitions in the tables
  assert [r["model.dropout"] for r in table_rows] == ["0.0", "0.3"] and "seed" not in table_rows[0]
  for r in table_rows:
    mine = [float(m["val_accuracy"]) for m in members
            if m["point"] == f"dropout={float(r['model.dropout']):g}"]
    assert float(r["val_accuracy_mean"]) == pytest.approx(np.mean(mine), abs=1e-12)
    assert float(r["val_accuracy_std"]) == pytest.approx(np.std(mine, ddof=1), abs=1e-12)
  assert "| seed |" not in (workdir / "sweep.md").read_text()
  table = (workdir / "sweep_compare.md").read_text()
  assert "| dropout=0 |" in table and "baseline" in table
  assert "corrected resampled t (Nadeau & Bengio 2003)" in table
  assert f"{p:.3g}" in table


@pytest.mark.slow
def test_one_member_per_point_test_is_the_points_test(tmp_path):
  points = [{"model.dropout": 0.0}, {"model.dropout": 0.2}]
  workdir = tmp_path / "holdout"
  rows = sweep.run(_small(folds=1), str(workdir), points, progress=False,
                   test_for_all_points=True)
  members = _csv(workdir / "sweep_members.csv")
  assert [m["point"] for m in members] == ["dropout=0", "dropout=0.2"]
  for row, m in zip(rows, members):   # a hold-out point's ensemble is its one member
    assert float(m["test_accuracy"]) == pytest.approx(row["test_accuracy"], abs=1e-12)
    assert float(m["val_accuracy"]) == pytest.approx(row["val_accuracy_mean"], abs=1e-12)
  compare = (workdir / "sweep_compare.md").read_text()
  assert "| dropout=0.2 |" in compare


@pytest.mark.slow
def test_structural_groups_are_compared_together(tmp_path):
  points = sweep.grid(["model.widths=(8,),(16,)"])
  workdir = tmp_path / "structural"
  sweep.run(_small(folds=2), str(workdir), points, progress=False, baseline="widths=(16,)")
  members = _csv(workdir / "sweep_members.csv")
  assert sorted({m["point"] for m in members}) == ["widths=(16,)", "widths=(8,)"]
  record = json.load(open(workdir / "sweep.json"))
  assert [c["baseline"] for c in record["comparisons"]] == ["widths=(16,)"] * 2


def test_an_unknown_baseline_is_refused_before_anything_runs(tmp_path):
  with pytest.raises(ConfigError, match="--baseline='dropout=0.5' is not a point"):
    sweep.run(_small(), str(tmp_path / "x"), [{"model.dropout": 0.0}, {"model.dropout": 0.2}],
              baseline="dropout=0.5")
  assert not (tmp_path / "x").exists()
