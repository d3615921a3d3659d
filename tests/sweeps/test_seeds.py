"""Seeds: the model's randomness (`seed`) apart from the data's (`data.split_seed`), and seeds
swept as members of one program, each equal to that seed trained alone."""

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold, train_test_split

from genjax.config import defaults
from genjax.run import driver, setup as experiment
from genjax.train import hparams
from genjax.sweeps import driver as sweep, group as sweep_run
from genjax.data import datasets
from genjax.errors import ConfigError


def _small(folds=3):
  config = defaults.get_config()
  config.model.widths = (32,)
  config.num_epochs = 5
  config.optimizer.learning_rate = 3e-3
  config.early_stopping.patience = 2
  config.checkpoint.enabled = False
  config.cv.method = "stratified_kfold"
  config.cv.folds = folds
  return config


def _labels():
  return np.asarray(datasets.load("mnist1d").train_y)


def test_split_seed_drives_the_folds_and_holdout_not_the_model_seed():
  y = _labels()
  config = _small()
  config.seed, config.data.split_seed = 7, 3
  folds = experiment.member_plans(config, y)
  want = StratifiedKFold(3, shuffle=True, random_state=3).split(np.zeros(len(y)), y)
  for plan, (tr, va) in zip(folds, want):   # scikit-learn's folds for random_state=3
    np.testing.assert_array_equal(np.sort(plan.val_idx), np.sort(va))
  config.cv.method = "none"
  (plan,) = experiment.member_plans(config, y)
  _, va = train_test_split(np.arange(len(y)), test_size=config.data.validation_fraction,
                           stratify=y, random_state=3)
  np.testing.assert_array_equal(np.sort(plan.val_idx), np.sort(va))


def test_without_split_seed_the_seed_drives_both_as_before():
  y = _labels()
  config = _small()
  config.seed = 3
  config.data.split_seed = None
  a = experiment.member_plans(config, y)
  config.seed, config.data.split_seed = 11, 3
  b = experiment.member_plans(config, y)
  for p, q in zip(a, b):
    np.testing.assert_array_equal(p.val_idx, q.val_idx)


def test_seed_is_a_member_route():
  assert hparams.is_numeric("seed") and hparams.route("seed") == ("seed", "seed")
  groups = sweep.split(sweep.grid(["seed=range(0,3)", "model.dropout=0,0.1"]))
  assert len(groups) == 1 and len(groups[0][1]) == 6    # one program: 3 seeds x 2 rates
  assert {p["seed"] for p in groups[0][1]} == {0, 1, 2}
  assert all(isinstance(p["seed"], int) for p in groups[0][1])


@pytest.mark.slow
def test_each_seed_in_the_program_equals_that_seed_alone(tmp_path):
  config = _small()
  points = [{"seed": 0}, {"seed": 1}]
  rows = sweep_run.run_group(config, str(tmp_path / "sweep"), points, structural={},
                             progress=False, test_for_all_points=True)
  assert [r["name"] for r in rows] == ["seed=0", "seed=1"]
  assert rows[0]["val_accuracy_mean"] != rows[1]["val_accuracy_mean"]   # seeds differ
  for point, row in zip(points, rows):
    alone = _small()
    alone.seed, alone.data.split_seed = point["seed"], config.seed   # folds held fixed
    result = driver.run(alone, str(tmp_path / f"alone{point['seed']}"), progress=False)
    val = [f["val"]["accuracy"] for f in result["cv"]["per_fold"]]
    # The same members bit for bit; only the mean's summation is recomputed here.
    assert row["val_accuracy_mean"] == pytest.approx(np.mean(val), abs=1e-12)
    assert row["test_accuracy"] == pytest.approx(result["test"]["accuracy"], abs=1e-12)


@pytest.mark.parametrize("seed, split_seed, match", [
    (-1, None, "seed must be an integer"), (2**32, None, "seed must be an integer"),
    (0, -5, "data.split_seed must be an integer")])
def test_bad_seeds_are_one_line_errors(seed, split_seed, match):
  config = _small()
  config.seed = seed
  config.data.split_seed = split_seed
  with pytest.raises(ConfigError, match=match):
    defaults.validate(config)


def test_a_fractional_seed_point_is_refused(tmp_path):
  with pytest.raises(ConfigError, match="seed"):
    sweep.run(_small(), str(tmp_path / "s"), [{"seed": 0.5}, {"seed": 1}], progress=False)
