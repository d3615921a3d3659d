"""Random and quasi-random sweep points (`genjax.sweeps.sampling`): the points equal scipy's
(computed here independently, from scipy.stats.qmc and scipy.stats' inverse CDFs), ranges,
determinism, products with grid and seed axes, bad input in one line, the sampled plots, and
a tiny sweep end to end (Python API and CLI)."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats
from scipy.stats import qmc

from genjax.config import defaults
from genjax.errors import ConfigError
from genjax.sweeps import sample_plots, sampling

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AXES = {"optimizer.learning_rate": "loguniform(1e-4,1e-1)", "model.dropout": "uniform(0,0.5)",
        "data.batch_size": "randint(16,65)", "optimizer.name": "[adam,sgd,adamw]"}


def _expected(cube: np.ndarray) -> list[dict]:
  """AXES at unit-cube points, by scipy.stats' inverse CDFs (randint: the floor, as scipy's
  ppf(u) is the least k with cdf(k) >= u, one below at u = 0 exactly)."""
  lr = stats.loguniform(1e-4, 1e-1).ppf(cube[:, 0])
  dropout = stats.uniform(0, 0.5).ppf(cube[:, 1])
  batch = np.floor(16 + (65 - 16) * cube[:, 2]).astype(int)
  names = np.array(["adam", "sgd", "adamw"])[np.floor(3 * cube[:, 3]).astype(int)]
  return [{"optimizer.learning_rate": a, "model.dropout": b, "data.batch_size": int(c),
           "optimizer.name": str(d)} for a, b, c, d in zip(lr, dropout, batch, names)]


def _assert_points(got, want):
  assert len(got) == len(want)
  for g, w in zip(got, want):
    assert list(g) == list(w)
    for key in w:
      if isinstance(w[key], float):
        assert g[key] == pytest.approx(w[key], rel=1e-12), key
      else:
        assert g[key] == w[key], key


@pytest.mark.parametrize("sampler,engine", [("sobol", qmc.Sobol), ("halton", qmc.Halton)])
@pytest.mark.parametrize("seed,scramble", [(0, True), (7, True), (0, False)])
def test_quasi_random_points_equal_scipy_qmc(sampler, engine, seed, scramble):
  got = sampling.sample(AXES, 16, sampler, seed, scramble)
  want = _expected(engine(4, scramble=scramble, rng=seed).random(16))
  _assert_points(got, want)


def test_random_points_equal_numpy_default_rng():
  got = sampling.sample(AXES, 10, "random", 3)
  _assert_points(got, _expected(np.random.default_rng(3).random((10, 4))))


def test_ranges_of_each_distribution():
  points = sampling.sample(AXES, 1024, "sobol", 1)
  lr = np.array([p["optimizer.learning_rate"] for p in points])
  dropout = np.array([p["model.dropout"] for p in points])
  batch = {p["data.batch_size"] for p in points}
  assert 1e-4 <= lr.min() and lr.max() < 1e-1
  # uniform in log: a quarter of the points in each quarter of the decades
  assert np.mean(lr < 10 ** -3.25) == pytest.approx(0.25, abs=0.01)
  assert 0 <= dropout.min() and dropout.max() < 0.5
  assert batch == set(range(16, 65))    # randint(a, b): every integer in [a, b), b excluded
  assert all(isinstance(p["data.batch_size"], int) for p in points)
  assert {p["optimizer.name"] for p in points} == {"adam", "sgd", "adamw"}


def test_transform_at_the_cube_edges():
  u = np.array([0.0, 0.5, np.nextafter(1.0, 0.0)])
  assert sampling.transform("randint", [1, 4], u) == [1, 2, 3]
  assert sampling.transform("choice", ["a", "b"], u) == ["a", "b", "b"]
  assert sampling.transform("loguniform", [1e-4, 1e-2], u)[:2] == pytest.approx([1e-4, 1e-3])
  assert sampling.transform("uniform", [2.0, 4.0], u)[:2] == [2.0, 3.0]


def test_same_spec_same_points_other_seed_or_sampler_other_points():
  a = sampling.sample(AXES, 8, "sobol", 0)
  assert a == sampling.sample(AXES, 8, "sobol", 0)
  assert a != sampling.sample(AXES, 8, "sobol", 1)
  assert a != sampling.sample(AXES, 8, "halton", 0)
  assert a.record() == {"axes": AXES, "samples": 8, "sampler": "sobol", "scramble": True,
                        "seed": 0, "drawn": list(a)}
  as_list = sampling.sample({"model.dropout": [0.0, 0.1, 0.2, 0.3]}, 2, "random", 0)
  assert as_list.spec["axes"] == {"model.dropout": "[0.0, 0.1, 0.2, 0.3]"}


def test_product_with_a_grid_axis_and_seeds():
  from genjax.sweeps import points as sweep_grid
  drawn = sampling.sample({"optimizer.learning_rate": "loguniform(1e-4,1e-1)"}, 4, "sobol", 0)
  grid = sweep_grid.grid(["model.dropout=0,0.2", "seed=0,1"])
  points = sampling.product(drawn, grid)
  assert isinstance(points, sampling.Samples) and len(points) == 16
  assert points.drawn == list(drawn)
  assert points[:4] == [{**drawn[0], **g} for g in grid]        # sample-major
  assert [p["seed"] for p in points[:4]] == [0, 1, 0, 1]
  with pytest.raises(ConfigError, match="optimizer.learning_rate is both sampled"):
    sampling.product(drawn, sweep_grid.grid(["optimizer.learning_rate=1e-3,1e-2"]))


def test_sampled_points_are_members_of_one_program():
  from genjax.sweeps import driver
  drawn = sampling.sample({"optimizer.learning_rate": "loguniform(1e-4,1e-1)",
                           "model.dropout": "uniform(0,0.5)"}, 4, "sobol", 0)
  points = sampling.product(drawn, [{"seed": 0}, {"seed": 1}])
  _, _, groups = driver._resolve(defaults.get_config(), points, None, None)
  assert len(groups) == 1 and groups[0][0] == {}        # one structural group: one program
  assert len(groups[0][1]) == 8


@pytest.mark.parametrize("axes,samples,sampler,match", [
    ({"model.dropout": "uniform(0.5,0.5)"}, 4, "sobol", r"uniform\(0.5,0.5\) needs a < b"),
    ({"model.dropout": "uniform(1,0)"}, 4, "sobol", "needs a < b"),
    ({"optimizer.learning_rate": "loguniform(0,1)"}, 4, "sobol", "needs 0 < a"),
    ({"optimizer.learning_rate": "loguniform(-1,1)"}, 4, "sobol", "needs 0 < a"),
    ({"data.batch_size": "randint(1.5,4)"}, 4, "sobol", "takes integers"),
    ({"model.dropout": "normal(0,1)"}, 4, "sobol", "unknown distribution 'normal'"),
    ({"model.dropout": "uniform(0)"}, 4, "sobol", "takes two finite numbers"),
    ({"model.dropout": "uniform(0,x)"}, 4, "sobol", "takes two numbers"),
    ({"model.dropout": "0,0.5"}, 4, "sobol", "cannot read '0,0.5' as a distribution"),
    ({"model.dropout": "[]"}, 4, "sobol", "at least one value"),
    ({"model.dropout": "uniform(0,0.5)"}, 0, "sobol", "--samples=0 must be a whole number"),
    ({"model.dropout": "uniform(0,0.5)"}, 4, "latin", "unknown --sampler='latin'"),
    ({"model.dropout": "uniform(0,0.5)"}, 10, "sobol", "power of 2.*--samples=8 or 16"),
    ({"model.dropout": "[0.0,0.1]"}, 3, "halton", "draws .* twice"),
    ({}, 4, "sobol", "at least one --sample axis"),
])
def test_bad_input_is_one_line(axes, samples, sampler, match):
  with pytest.raises(ConfigError, match=match) as e:
    sampling.sample(axes, samples, sampler, 0)
  assert "\n" not in str(e.value)


def test_bad_flags_are_one_line():
  with pytest.raises(ConfigError, match="needs KEY=DISTRIBUTION"):
    sampling.from_flags(["model.dropout"], 4, "sobol", 0)
  with pytest.raises(ConfigError, match="given twice"):
    sampling.from_flags(["model.dropout=uniform(0,1)", "model.dropout=uniform(0,1)"], 4,
                        "sobol", 0)
  with pytest.raises(ConfigError, match="needs --samples=N"):
    sampling.from_flags(["model.dropout=uniform(0,1)"], None, "sobol", 0)


def _rows():
  """Four sampled points (one diverged) × two dropout grid values, as sweep rows."""
  spec = {"axes": {"optimizer.learning_rate": "loguniform(1e-4,1e-1)"}, "samples": 4,
          "sampler": "sobol", "scramble": True, "seed": 0,
          "drawn": [{"optimizer.learning_rate": v} for v in (1e-3, 1e-2, 5e-2, 1e-4)]}
  acc = {(1e-3, 0.0): 0.5, (1e-2, 0.0): 0.7, (5e-2, 0.0): 0.2, (1e-4, 0.0): 0.6,
         (1e-3, 0.2): 0.4, (1e-2, 0.2): 0.3, (5e-2, 0.2): 0.9, (1e-4, 0.2): 0.35}
  rows = [{"point": {"optimizer.learning_rate": lr, "model.dropout": d},
           "val_accuracy_mean": a, "val_loss_mean": float("nan") if lr == 5e-2 and d == 0.0
           else 1.0, "stop_reasons": "non_finite" if lr == 5e-2 and d == 0.0 else "max_epochs"}
          for (lr, d), a in acc.items()]
  return rows, spec


def test_best_so_far_skips_diverged_points_per_grid_line():
  rows, spec = _rows()
  assert sample_plots.draw_order(rows, spec) == [0, 1, 2, 3, 0, 1, 2, 3]
  assert [sample_plots.diverged(r) for r in rows] == [False, False, True] + [False] * 5
  best = sample_plots.best_so_far(rows, spec)
  assert best == {"dropout=0": [50.0, 70.0, 70.0, 70.0], "dropout=0.2": [40.0, 40.0, 90.0, 90.0]}


def test_sampled_figures_mark_diverged_points():
  rows, spec = _rows()
  fig = sample_plots._sampled_figure(rows, spec)
  gids = {a.get_gid() for ax in fig.axes for a in ax.get_children()}
  assert "diverged:2" in gids and "point:2" not in gids and "point:6" in gids
  assert fig.axes[0].get_xscale() == "log"
  fig = sample_plots._best_figure(rows, spec)
  gids = {a.get_gid() for ax in fig.axes for a in ax.get_children()}
  assert {"best:0", "best:1", "diverged:2"} <= gids


def _tiny(config):
  config.model.widths = (8,)
  config.num_epochs = 1
  config.checkpoint.enabled = False
  return config


def test_sampled_sweep_end_to_end_and_its_identity(tmp_path):
  import genjax
  config = _tiny(defaults.get_config())
  axes = {"optimizer.learning_rate": "loguniform(1e-3,1e-1)", "model.dropout": "uniform(0,0.5)"}
  points = genjax.sample_points(axes, 4, sampler="sobol", seed=0)
  workdir = tmp_path / "sampled"
  rows = genjax.sweep(config, sampling.product(points, [{"seed": 0}, {"seed": 1}]),
                      str(workdir))
  assert len(rows) == 8
  for name in ("sweep_sampled.png", "sweep_best_so_far.png", "sweep_metrics.png"):
    assert (workdir / name).stat().st_size > 0, name
  stored = json.loads((workdir / "sweep.json").read_text())
  assert stored["sampling"]["sampler"] == "sobol" and stored["sampling"]["seed"] == 0
  assert stored["sampling"]["drawn"] == list(points)
  assert "Points drawn: 4 points, sobol, seed 0" in (workdir / "sweep.md").read_text()
  from genjax.workdir import outputs   # every key of sweep.json's "sampling" is documented
  documented = {k.path for k in outputs.SWEEP_JSON if k.path.startswith(".sampling")}
  found = {f".sampling.{k}" + ("[]" if isinstance(v, list) else "")
           for k, v in stored["sampling"].items()}
  assert found <= documented, found - documented
  # The same points again: the finished sweep, resumed; another seed or sampler: refused.
  assert genjax.sweep(config, sampling.product(points, [{"seed": 0}, {"seed": 1}]),
                      str(workdir)) == rows
  for other in (genjax.sample_points(axes, 4, sampler="sobol", seed=1),
                genjax.sample_points(axes, 4, sampler="halton", seed=0)):
    with pytest.raises(ConfigError, match="overwrite"):
      genjax.sweep(config, sampling.product(other, [{"seed": 0}, {"seed": 1}]), str(workdir))


def _cli(*args, timeout=300):
  return subprocess.run([sys.executable, "-m", "genjax.main", "sweep", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=timeout,
                        env=dict(os.environ, PYTHONUNBUFFERED="1"))


@pytest.mark.parametrize("flags,needle", [
    (["--sample=model.dropout=beta(1,2)", "--samples=4"], "unknown distribution 'beta'"),
    (["--sample=model.dropout=uniform(0,0.5)", "--samples=10", "--sampler=sobol"],
     "power of 2"),
    (["--samples=4"], "--samples given without --sample"),
    (["--sample=model.dropout=uniform(0,0.5)", "--samples=4", "--sweep=model.dropout=0,0.1"],
     "both sampled"),
])
@pytest.mark.slow
def test_bad_sample_flags_exit_2(tmp_path, flags, needle):
  out = _cli("--config=experiments/mnist1d_mlp.py", f"--workdir={tmp_path / 'sw'}", *flags,
             timeout=120)
  assert out.returncode == 2, out.stderr[-2000:]
  line, = out.stderr.strip().splitlines()
  assert needle in line
  assert not (tmp_path / "sw").exists()


@pytest.mark.slow
def test_sampled_sweep_cli_seeds_from_config_seed(tmp_path):
  workdir = tmp_path / "sw"
  out = _cli("--config=experiments/mnist1d_mlp.py", f"--workdir={workdir}",
             "--config.num_epochs=1", "--config.model.widths=(8,)", "--config.seed=3",
             "--config.checkpoint.enabled=false", "--progress=false",
             "--sample=optimizer.learning_rate=loguniform(1e-3,1e-1)", "--samples=4",
             "--sampler=sobol", "--sweep=seed=0,1")
  assert out.returncode == 0, out.stderr[-3000:]
  stored = json.loads((workdir / "sweep.json").read_text())
  assert stored["sampling"]["seed"] == 3            # --sample_seed defaults to config.seed
  want = stats.loguniform(1e-3, 1e-1).ppf(qmc.Sobol(1, rng=3).random(4)[:, 0])
  got = [d["optimizer.learning_rate"] for d in stored["sampling"]["drawn"]]
  assert got == pytest.approx(list(want), rel=1e-12)
  assert (workdir / "sweep_sampled.png").stat().st_size > 0
  assert (workdir / "sweep_best_so_far.png").stat().st_size > 0
  assert math.isfinite(stored["rows"][0]["val_accuracy_mean"])
