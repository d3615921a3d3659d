"""A sweep selects its point on validation only, and refits that point as `genjax train` would."""

import csv
import json

import numpy as np
import pytest

from genjax.config import defaults
from genjax.run import driver
from genjax.sweeps import driver as sweep


def _small(refit=True):
  config = defaults.get_config()
  config.model.widths = (16,)
  config.num_epochs = 4
  config.optimizer.learning_rate = 3e-3
  config.early_stopping.patience = 2
  config.checkpoint.enabled = False
  config.cv.method = "stratified_kfold"
  config.cv.folds = 3
  config.cv.refit = refit
  return config


def _members(workdir):
  with open(workdir / "sweep_members.csv") as f:
    return list(csv.DictReader(f))


@pytest.mark.slow
def test_selected_point_is_the_best_on_validation_and_its_refit_is_the_point_alone(tmp_path):
  config = _small()
  points = [{"model.dropout": 0.0}, {"model.dropout": 0.5}]
  workdir = tmp_path / "sweep"
  sweep.run(config, str(workdir), points, progress=False)
  members = _members(workdir)
  means = {name: np.mean([float(m["val_accuracy"]) for m in members if m["point"] == name])
           for name in ("dropout=0", "dropout=0.5")}
  want = max(means, key=means.get)            # highest validation mean: test plays no part
  selected = json.load(open(workdir / "selected.json"))
  assert selected["name"] == want
  assert selected["validation"]["accuracy_mean"] == pytest.approx(means[want], abs=1e-12)
  assert selected["validation"]["members"] == 3
  alone = sweep.apply_point(config, selected["point"])
  result = driver.run(alone, str(tmp_path / "alone"), progress=False)
  assert selected["test_refit"]["epochs"] == result["test_refit"]["epochs"]
  assert selected["test_refit"]["accuracy"] == pytest.approx(result["test_refit"]["accuracy"],
                                                             abs=3e-3)
  assert json.load(open(workdir / "sweep.json"))["selected"] == selected


@pytest.mark.slow
def test_no_refit_without_cv_refit_and_only_the_parent_selects(tmp_path):
  workdir = tmp_path / "structural"
  sweep.run(_small(refit=False), str(workdir), sweep.grid(["model.widths=(8,),(16,)"]),
            progress=False)
  selected = json.load(open(workdir / "selected.json"))
  assert "test_refit" not in selected
  assert selected["name"] in ("widths=(8,)", "widths=(16,)")
  assert not (workdir / "group00" / "selected.json").exists()
