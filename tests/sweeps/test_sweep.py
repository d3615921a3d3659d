"""Sweeps: grid parsing, bad input, a point inside the vmapped grid equals the point alone."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from genjax.config import defaults
from genjax.run import driver
from genjax.sweeps import driver as sweep, group as sweep_run, memory as member_memory
from genjax.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_grid_product_zip_and_ranges():
  points = sweep.grid(["model.dropout=0,0.5", "penalties.l2.strength=logspace(-4,-2,3)"])
  assert len(points) == 6
  np.testing.assert_allclose(sorted({p["penalties.l2.strength"] for p in points}),
                             [1e-4, 1e-3, 1e-2])
  zipped = sweep.grid(["seed=range(0,2)"], ["optimizer.learning_rate=1e-3,1e-2",
                                            "optimizer.weight_decay=0,1e-4"])
  assert zipped == [
      {"seed": 0, "optimizer.learning_rate": 1e-3, "optimizer.weight_decay": 0},
      {"seed": 0, "optimizer.learning_rate": 1e-2, "optimizer.weight_decay": 1e-4},
      {"seed": 1, "optimizer.learning_rate": 1e-3, "optimizer.weight_decay": 0},
      {"seed": 1, "optimizer.learning_rate": 1e-2, "optimizer.weight_decay": 1e-4}]
  assert sweep.parse_values("(32,),(64,64)", "model.widths") == [(32,), (64, 64)]
  assert sweep.parse_values("adam,sgd", "optimizer.name") == ["adam", "sgd"]
  np.testing.assert_allclose(sweep.parse_values("linspace(0,0.5,3)", "k"), [0, 0.25, 0.5])


def test_numeric_and_structural_split():
  groups = sweep.split(sweep.grid(["model.widths=(32,),(64,)", "model.dropout=0,0.2"]))
  assert [g[0] for g in groups] == [{"model.widths": (32,)}, {"model.widths": (64,)}]
  assert all(g[1] == [{"model.dropout": 0.0}, {"model.dropout": 0.2}] for g in groups)


@pytest.mark.parametrize("flags,match", [
    (["model.dropot=0,0.1"], "not in the config"),
    (["model.dropout=0,abc"], "wrong type"),
    (["model.dropout="], "empty value list"),
    (["model.dropout"], "KEY=VALUES"),
])
def test_bad_sweeps(flags, match):
  config = defaults.get_config()
  with pytest.raises(ConfigError, match=match):
    for p in sweep.grid(flags):
      sweep.apply_point(config, p)


def test_zip_lengths_must_match():
  with pytest.raises(ConfigError, match="equal lengths"):
    sweep.grid([], ["model.dropout=0,0.1", "optimizer.learning_rate=1e-3"])


def _small(config):
  config.model.widths = (48, 48)
  config.num_epochs = 6
  # 1e-2: where the vmapped program's rounding used to flip an early-stopping decision
  # before members ran in fixed blocks (`parallel.member_block`).
  config.optimizer.learning_rate = 1e-2
  config.early_stopping.patience = 2
  config.checkpoint.enabled = False
  return config


@pytest.mark.slow
def test_point_inside_the_grid_equals_the_point_alone(tmp_path):
  config = _small(defaults.get_config())
  points = [{"model.dropout": 0.0, "penalties.l2.strength": 0.0,
             "penalties.weight_decay.strength": 0.0},
            {"model.dropout": 0.3, "penalties.l2.strength": 1e-3,
             "penalties.weight_decay.strength": 0.05}]
  rows = sweep_run.run_group(config, str(tmp_path / "sweep"), points, structural={},
                             progress=False, test_for_all_points=True)
  for point, row in zip(points, rows):
    alone = driver.run(sweep.apply_point(config, point), str(tmp_path / row["name"]),
                        progress=False)
    assert row["val_accuracy_mean"] == alone["val"]["accuracy"]
    assert row["val_loss_mean"] == alone["val"]["loss"]
    # The same count of correct test examples (the row's fraction is float64, the run's float32).
    assert np.float32(row["test_accuracy"]) == np.float32(alone["test"]["accuracy"])
    assert row["best_epoch_median"] == alone["selected_epoch"]


@pytest.mark.slow
def test_label_noise_and_augment_strengths_are_vmapped_like_the_point_alone(tmp_path):
  config = _small(defaults.get_config())
  config.data.augment = "shift(max_shift=3)|noise(std=0.02)"
  points = [{"data.label_noise": 0.0, "data.augment.noise.std": 0.0,
             "data.augment.shift.max_shift": 0},
            {"data.label_noise": 0.3, "data.augment.noise.std": 0.1,
             "data.augment.shift.max_shift": 5}]
  assert len(sweep.split(points)) == 1      # one program for both points
  rows = sweep_run.run_group(config, str(tmp_path / "sweep"), points, structural={},
                             progress=False, test_for_all_points=True)
  assert rows[0]["name"] == "label_noise=0,noise.std=0,shift.max_shift=0"
  for point, row in zip(points, rows):
    alone_config = sweep.apply_point(config, point)
    assert alone_config.data.augment == (
        f"shift(max_shift={point['data.augment.shift.max_shift']})|"
        f"noise(std={point['data.augment.noise.std']})")
    alone = driver.run(alone_config, str(tmp_path / row["name"]), progress=False)
    assert row["val_accuracy_mean"] == alone["val"]["accuracy"]
    assert row["val_loss_mean"] == alone["val"]["loss"]
    assert np.float32(row["test_accuracy"]) == np.float32(alone["test"]["accuracy"])
    assert row["gap_accuracy"] == pytest.approx(
        alone["train"]["accuracy"] - alone["val"]["accuracy"], abs=1e-7)
  # 30% noisy labels: the point fits its own (noisy) labels worse than the clean one does.
  assert rows[1]["val_accuracy_mean"] < rows[0]["val_accuracy_mean"]


def test_augment_sweep_keys():
  config = defaults.get_config()
  config.data.augment = "shift|crop(pad=2)|noise"
  assert sweep.is_numeric("data.augment.noise.std") and sweep.is_numeric("data.label_noise")
  assert sweep.is_numeric("data.augment.shift.max_shift")
  assert not sweep.is_numeric("data.augment.crop.pad")        # sets a shape: structural
  assert not sweep.is_numeric("data.augment.shift.mode")
  assert sweep.apply_point(config, {"data.augment.noise.std": 0.3}).data.augment == (
      "shift|crop(pad=2)|noise(std=0.3)")
  for key, match in [("data.augment.cutout.size", "has 0 'cutout' ops"),
                     ("data.augment.noise.sd", "no parameter 'sd'"),
                     ("data.augment.noise", "data.augment.OP.PARAM"),
                     ("data.augment.warp.k", "unknown augment op")]:
    with pytest.raises(ConfigError, match=match):
      sweep.apply_point(config, {key: 0.1})


def test_grid_too_large_for_memory_is_refused(tmp_path, monkeypatch):
  monkeypatch.setattr(member_memory, "MEMORY_FRACTION", 1e-9)
  config = _small(defaults.get_config())
  with pytest.raises(ConfigError, match=r"GiB .* use at most"):
    sweep_run.run_group(config, str(tmp_path), [{"model.dropout": 0.1}], structural={},
                        progress=False)
  assert not os.path.exists(tmp_path / "config.json")


@pytest.mark.slow
def test_sweep_cli_with_structural_axis_writes_tables(tmp_path):
  workdir = tmp_path / "sw"
  out = subprocess.run(
      [sys.executable, "-m", "genjax.main", "sweep", "--config=experiments/mnist1d_mlp.py",
       f"--workdir={workdir}", "--config.num_epochs=3", "--progress=false",
       "--sweep=model.widths=(16,),(32,)", "--sweep=model.dropout=0,0.2", "--parallel_jobs=2"],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  lines = (workdir / "sweep.csv").read_text().splitlines()
  assert lines[0].startswith("point,model.dropout,model.widths,val_accuracy_mean")
  assert len(lines) == 5
  for name in ("sweep.md", "sweep.tex", "sweep_metrics.png", "sweep_curves.png"):
    assert (workdir / name).stat().st_size > 0
  events = [f for _, _, fs in os.walk(workdir) for f in fs if f.startswith("events.out.tfevents")]
  assert len(events) == 4
  assert "\\begin{tabular}" in (workdir / "sweep.tex").read_text()


@pytest.mark.parametrize("flags,needle", [
    (["--sweep=model.nodrop=0,1"], "not in the config"),
    (["--sweep=model.dropout="], "empty value list"),
    (["--sweep=model.dropout=0,x"], "wrong type"),
])
@pytest.mark.slow
def test_bad_sweep_flags_exit_2(tmp_path, flags, needle):
  out = subprocess.run(
      [sys.executable, "-m", "genjax.main", "sweep", "--config=experiments/mnist1d_mlp.py",
       f"--workdir={tmp_path / 'sw'}", *flags], cwd=ROOT, capture_output=True, text=True,
      timeout=120)
  assert out.returncode == 2
  line, = out.stderr.strip().splitlines()
  assert needle in line
  assert not (tmp_path / "sw").exists()


@pytest.mark.slow
def test_get_sweep_with_structural_points_runs_one_process_per_point(tmp_path):
  config_file = tmp_path / "exp.py"
  config_file.write_text(
      "from genjax.config import defaults\n"
      "def get_config():\n"
      "  c = defaults.get_config()\n"
      "  c.num_epochs = 2\n"
      "  c.data.label_noise = 0.1\n"
      "  return c\n"
      "def get_sweep():\n"
      "  return [{'model.widths': (8,)}, {'model.widths': (16,)}]\n")
  workdir = tmp_path / "sw"
  out = subprocess.run(
      [sys.executable, "-m", "genjax.main", "sweep", f"--config={config_file}",
       f"--workdir={workdir}", "--progress=false", "--parallel_jobs=2"],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  assert sorted(os.listdir(workdir / "group00")) == sorted(os.listdir(workdir / "group01"))
  assert not (workdir / "group00" / "group00").exists()      # a group never re-expands the sweep
  rows = (workdir / "sweep.csv").read_text().splitlines()
  rows = list(csv.reader(rows))
  assert len(rows) == 3 and rows[1][:2] == ["widths=(8,)", "(8,)"]
  assert rows[2][:2] == ["widths=(16,)", "(16,)"]


@pytest.mark.parametrize("name,input_shape,precision", [
    ("logreg", (40,), "float32"), ("mlp", (40,), "float32"), ("mlp", (40,), "bfloat16"),
    ("cnn1d", (40, 1), "float32"), ("cnn2d", (12, 12, 1), "float32"),
    ("resnet", (12, 12, 3), "float32"), ("wide_resnet", (12, 12, 3), "float32")])
@pytest.mark.slow
def test_traced_memory_bound_is_above_xla_compiled_analysis(name, input_shape, precision):
  """The sweep admits a grid on the traced bound without compiling: it must never be below
  XLA's own memory analysis of the compiled programs (the estimate a refusal uses)."""
  import types
  from genjax import models
  config = defaults.get_config()
  config.model.name, config.batch_size, config.eval_batch_size = name, 16, 32
  config.model.resnet_depth, config.model.wrn_depth = 18, 10
  model = models.create(config.model, input_shape, 10, precision=precision)
  s = types.SimpleNamespace(model=model, config=config,
                            splits=types.SimpleNamespace(input_shape=input_shape))
  compiled, bound = member_memory._activation_bytes(s), member_memory._activation_bound(s)
  assert compiled > 0 and bound >= compiled, (compiled, bound)


def test_a_grid_the_traced_bound_admits_is_not_compiled_and_a_refusal_is_compiled(monkeypatch):
  import types
  from genjax import models
  config = defaults.get_config()
  model = models.create(config.model, (40,), 10)
  s = types.SimpleNamespace(model=model, config=config, splits=types.SimpleNamespace(
      input_shape=(40,), train_x=np.zeros((100, 40)), train_y=np.zeros(100)))
  compiled = []
  real = member_memory._activation_bytes
  monkeypatch.setattr(member_memory, "_activation_bytes", lambda s: compiled.append(1) or real(s))
  sweep_run._check_memory(s, 80)
  assert not compiled
  monkeypatch.setattr(member_memory, "MEMORY_FRACTION", 1e-9)   # no room: refused
  with pytest.raises(ConfigError, match="MiB per member, ") as refused:
    sweep_run._check_memory(s, 80)
  assert compiled and "traced bound" not in str(refused.value)
