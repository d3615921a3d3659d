"""`genjax.load_run` of a finished sweep: the selected point's members (or any point's, by the
name its tables show), each restored from the `selected/` its group wrote, checked against
the numbers the sweep itself recorded (sweep.json, sweep_members.csv)."""

import csv
import json
import os
import shutil

import numpy as np
import pytest

import genjax
from genjax.errors import ConfigError

pytestmark = pytest.mark.slow   # each fixture trains a sweep (~10-40 s on 2 CPU cores)

POINTS = [{"name": "none", "penalties.l2.strength": 0.0},
          {"name": "l2", "penalties.l2.strength": 1e-3},
          {"name": "dropout", "model.dropout": 0.3}]


def _config(*more):
  return genjax.load_config(None, overrides=[
      "num_epochs=3", "model.widths=(16,)", "optimizer.learning_rate=3e-3", "cv.method=kfold",
      "cv.folds=2", "cv.refit=False", "checkpoint.enabled=False", *more])


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
  """(workdir, returned rows) of one structural group: 3 named points × 2 folds."""
  workdir = str(tmp_path_factory.mktemp("load_sweep") / "grid")
  rows = genjax.sweep(_config(), POINTS, workdir, test_for_all_points=True)
  return workdir, rows


@pytest.fixture(scope="module")
def structural(tmp_path_factory):
  """A sweep of two structural groups (widths), one with two numeric points."""
  workdir = str(tmp_path_factory.mktemp("load_sweep") / "structural")
  points = [{"name": "narrow", "model.widths": (8,)},
            {"name": "wide", "model.widths": (16,), "model.dropout": 0.0},
            {"name": "wide+dropout", "model.widths": (16,), "model.dropout": 0.3}]
  genjax.sweep(_config(), points, workdir)
  return workdir


def _json(path):
  with open(path) as f:
    return json.load(f)


def _members_csv(workdir):
  with open(os.path.join(workdir, "sweep_members.csv"), newline="") as f:
    return list(csv.DictReader(f))


def _check_members(run, name, members, *, test: bool):
  """`run`'s members are `name`'s members of `members` (sweep.json's member_results), fold
  by fold: the validation numbers equal, and each member's own test accuracy where shown."""
  mine = [m for m in members if m["point"] == name]
  assert [f"{name}/fold{m['fold']}" for m in mine] == run.member_names
  val = run.evaluate("val")
  assert val["accuracy"].tolist() == [np.float32(m["val_accuracy"]) for m in mine]
  assert val["loss"].tolist() == [np.float32(m["val_loss"]) for m in mine]
  if test:
    assert run.evaluate("test")["accuracy"].tolist() == [np.float32(m["test_accuracy"])
                                                         for m in mine]


def test_the_rows_carry_the_points_names(grid):
  workdir, rows = grid
  assert [r["name"] for r in rows] == ["none", "l2", "dropout"]
  assert [r["label"] for r in rows] == ["none", "l2", "dropout"]
  assert [r["auto_name"] for r in rows] == ["l2=0,dropout=0", "l2=0.001,dropout=0",
                                            "l2=0,dropout=0.3"]
  stored = _json(os.path.join(workdir, "sweep.json"))["rows"]   # as before: name automatic
  assert [r["name"] for r in stored] == [r["auto_name"] for r in rows]
  assert [r["label"] for r in stored] == [r["name"] for r in rows]


def test_load_run_gives_the_selected_points_members(grid):
  workdir, _ = grid
  stored = _json(os.path.join(workdir, "sweep.json"))
  selected = stored["selected"]["name"]
  run = genjax.load_run(workdir)
  assert run.results["point"] == selected and run.results["selected"] == stored["selected"]
  assert run.results["rows"] == [r for r in stored["rows"] if r["label"] == selected]
  assert len(run.plans) == 2 and run.mean.shape[0] == 2
  _check_members(run, selected, stored["member_results"], test=True)
  # The same, read from the members' table a reader opens (sweep_members.csv).
  table = [r for r in _members_csv(workdir) if r["point"] == selected]
  val = run.evaluate("val")["accuracy"]
  assert np.allclose(val, [float(r["val_accuracy"]) for r in table], atol=1e-6)
  # The selected point's test accuracy is its fold ensemble's (selected.json).
  x, y = run._setup.x_test()
  ensemble = run.predict(np.asarray(x), ensemble=True)
  assert float(np.mean(ensemble.argmax(-1) == np.asarray(y))) == stored["selected"]["test"][
      "accuracy"]
  # Its history: each member's logged validation accuracy at its selected epoch.
  assert run.history["val_accuracy"].shape == (2, 3)
  epochs = [m["selected_epoch"] for m in stored["member_results"] if m["point"] == selected]
  assert np.allclose(run.history["val_accuracy"][[0, 1], epochs], val, atol=1e-6)


def test_point_selects_any_point_and_an_unknown_one_is_refused(grid):
  workdir, _ = grid
  stored = _json(os.path.join(workdir, "sweep.json"))
  runs = {name: genjax.load_run(workdir, point=name) for name in ("none", "l2", "dropout")}
  for name, run in runs.items():
    _check_members(run, name, stored["member_results"], test=True)
  assert runs["dropout"].config.model.dropout == 0.3
  assert runs["l2"].config.penalties.l2.strength == 1e-3
  assert not np.array_equal(runs["none"].predict(np.zeros((1, 40))),
                            runs["dropout"].predict(np.zeros((1, 40))))
  with pytest.raises(ConfigError) as e:
    genjax.load_run(workdir, point="l3")
  assert "\n" not in str(e.value)
  assert "'l3'" in str(e.value) and "'none', 'l2', 'dropout'" in str(e.value)
  with pytest.raises(ConfigError, match="a point's name"):
    genjax.load_run(workdir, point=1)


def test_a_lost_or_edited_selected_folder_is_refused(grid, tmp_path):
  workdir, _ = grid
  copy = str(tmp_path / "copy")
  shutil.copytree(workdir, copy)
  shutil.rmtree(os.path.join(copy, "selected"))
  with pytest.raises(ConfigError, match="selected missing or not as the run wrote it"):
    genjax.load_run(copy)


def test_a_structural_sweep_loads_from_its_groups(structural):
  stored = _json(os.path.join(structural, "sweep.json"))
  assert stored["groups"] == 2
  # A group's sweep.json shows every member's own test metrics (the parent selects).
  group_members = []
  for group in ("group00", "group01"):   # named here as the parent's tables name them
    for m in _json(os.path.join(structural, group, "sweep.json"))["member_results"]:
      m["point"] = ("narrow" if group == "group00" else
                    {0.0: "wide", 0.3: "wide+dropout"}[m["values"]["model.dropout"]])
      group_members.append(m)
  run = genjax.load_run(structural)
  assert run.results["point"] == stored["selected"]["name"]
  for name in ("narrow", "wide", "wide+dropout"):
    run = genjax.load_run(structural, point=name)
    _check_members(run, name, stored["member_results"], test=False)
    _check_members(run, name, group_members, test=True)
    assert run.config.model.widths == ((8,) if name == "narrow" else (16,))
  # A group alone selects nothing: a point must be named.
  with pytest.raises(ConfigError, match="one group of a structural sweep"):
    genjax.load_run(os.path.join(structural, "group01"))
