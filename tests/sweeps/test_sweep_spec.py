"""A sweep spec means one thing (issue #30, items 2 and 3): --sweep on a config with get_sweep()
multiplies its points; named points list only their own keys, through every path (one
program, structural groups by local processes and by submitit, resubmission, nested CV);
points that print alike get distinct names; a group's sweep.json is checked to be its own;
huge grids and malformed points are refused in one line."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from genjax import api
from genjax.config import defaults
from genjax.sweeps import driver as sweep_driver, points as sweep_grid
from genjax.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(api.__file__)))


def _small(config=None):
  config = config or defaults.get_config()
  config.model.widths = (8,)
  config.num_epochs = 1
  config.optimizer.learning_rate = 3e-3
  config.checkpoint.enabled = False
  return config


def _json(path):
  with open(path) as f:
    return json.load(f)


def _run(config, workdir, points, **kw):
  return sweep_driver.run(config, str(workdir), points, progress=False, **kw)


# --- defect 1: --sweep on a config with get_sweep() -------------------------------------------

def _config_file(tmp_path, points: str) -> str:
  path = tmp_path / "exp.py"
  path.write_text("from genjax.config import defaults\n"
                  "def get_config():\n"
                  "  return defaults.get_config()\n"
                  f"def get_sweep():\n  return {points}\n")
  return str(path)


@pytest.mark.slow
def test_sweep_flags_multiply_the_config_files_points(tmp_path):
  spec = _config_file(tmp_path, "[{'name': 'none', 'model.dropout': 0.0}, "
                                "{'name': 'drop', 'model.dropout': 0.2}]")
  rows = _run(_small(), tmp_path / "sw", sweep_grid.grid(["seed=0,1"]), config_file=spec)
  assert sorted((r["point"]["model.dropout"], r["point"]["seed"]) for r in rows) == [
      (0.0, 0), (0.0, 1), (0.2, 0), (0.2, 1)]
  assert sorted(r["label"] for r in rows) == ["drop", "drop", "none", "none"]


@pytest.mark.slow
def test_genjax_sweep_flags_multiply_get_sweep_points_on_the_command_line(tmp_path):
  path = tmp_path / "exp.py"
  path.write_text("from genjax.config import defaults\n"
                  "def get_config():\n"
                  "  c = defaults.get_config()\n"
                  "  c.model.widths, c.num_epochs, c.checkpoint.enabled = (8,), 1, False\n"
                  "  return c\n"
                  "def get_sweep():\n"
                  "  return [{'name': 'none'}, {'name': 'l2', 'penalties.l2.strength': 1e-3},\n"
                  "          {'name': 'drop', 'model.dropout': 0.2}]\n")
  out = subprocess.run([sys.executable, "-m", "genjax.main", "sweep", f"--config={path}",
                        f"--workdir={tmp_path / 'sw'}", "--progress=false",
                        "--sweep=seed=range(0,3)"], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  rows = _json(tmp_path / "sw" / "sweep.json")["rows"]
  assert sorted((r["label"], r["point"]["seed"]) for r in rows) == [
      (name, seed) for name in ("drop", "l2", "none") for seed in (0, 1, 2)]


def test_flag_axes_extend_a_named_points_name(tmp_path):
  points = sweep_grid.combine([{"name": "l2", "penalties.l2.strength": 1e-3}],
                              sweep_grid.grid(["optimizer.learning_rate=0.01,0.1", "seed=0,1"]))
  assert [p["name"] for p in points] == ["l2,learning_rate=0.01"] * 2 + ["l2,learning_rate=0.1"] * 2
  assert points[1] == {"name": "l2,learning_rate=0.01", "penalties.l2.strength": 1e-3,
                       "optimizer.learning_rate": 0.01, "seed": 1}


def test_a_flag_key_also_set_by_get_sweep_is_one_line(tmp_path):
  spec = _config_file(tmp_path, "[{'name': 'a', 'seed': 0}, {'name': 'b', 'seed': 1}]")
  with pytest.raises(ConfigError, match=r"--sweep/--zip/--sample seed is also set by get_sweep\(\) point "
                                        r"0 \(base\).*drop seed from the flag"):
    _run(_small(), tmp_path / "sw", sweep_grid.grid(["seed=0,1,2"]), config_file=spec)
  assert not (tmp_path / "sw").exists()


@pytest.mark.slow
def test_a_python_list_of_points_is_run_as_given(tmp_path):
  """genjax.sweep never reads a config file's get_sweep: its points are the list given."""
  spec = _config_file(tmp_path, "[{'model.dropout': 0.0}, {'model.dropout': 0.2}]")
  rows = _run(_small(), tmp_path / "sw", [{"seed": 0}, {"seed": 1}], config_file=spec)
  assert [r["point"] for r in rows] == [{"seed": 0}, {"seed": 1}]


# --- defect 2: named points that list only their own keys --------------------------------------

OWN_KEYS = [{"name": "none"}, {"name": "l2", "penalties.l2.strength": 1e-3},
            {"name": "drop", "model.dropout": 0.2}]


@pytest.mark.slow
def test_named_points_with_their_own_keys_in_one_program(tmp_path):
  config = _small()
  config.model.dropout = 0.1
  rows = _run(config, tmp_path / "sw", OWN_KEYS)
  assert [r["label"] for r in rows] == ["none", "l2", "drop"]
  assert [r["point"] for r in rows] == [   # the keys left out: the config's values
      {"penalties.l2.strength": 0.0, "model.dropout": 0.1},
      {"penalties.l2.strength": 1e-3, "model.dropout": 0.1},
      {"penalties.l2.strength": 0.0, "model.dropout": 0.2}]
  stored = _json(tmp_path / "sw" / "sweep.json")
  assert [m["point"] for m in stored["member_results"]] == ["none", "l2", "drop"]


STRUCTURAL = [{"name": "none", "seed": 0}, {"name": "none", "seed": 1},
              {"name": "drop", "model.dropout": 0.2, "seed": 0},
              {"name": "drop", "model.dropout": 0.2, "seed": 1},
              {"name": "wide", "model.widths": (16,), "seed": 0},
              {"name": "wide", "model.widths": (16,), "seed": 1}]
EXPECTED = [({"model.widths": [8]}, [{"seed": 0, "model.dropout": 0.0},
                                     {"seed": 1, "model.dropout": 0.0},
                                     {"seed": 0, "model.dropout": 0.2},
                                     {"seed": 1, "model.dropout": 0.2}]),
            ({"model.widths": [16]}, [{"seed": 0, "model.dropout": 0.0},
                                      {"seed": 1, "model.dropout": 0.0}])]


def _check_structural(workdir, rows):
  for i, (_, numeric) in enumerate(EXPECTED):   # each group trained exactly its points
    assert [r["point"] for r in _json(workdir / f"group{i:02d}" / "sweep.json")["rows"]] == numeric
  got = sorted((r["label"], r["point"]["seed"], r["point"]["model.dropout"],
                tuple(r["point"]["model.widths"])) for r in rows)
  assert got == [("drop", 0, 0.2, (8,)), ("drop", 1, 0.2, (8,)), ("none", 0, 0.0, (8,)),
                 ("none", 1, 0.0, (8,)), ("wide", 0, 0.0, (16,)), ("wide", 1, 0.0, (16,))]
  table = (workdir / "sweep.md").read_text()
  assert all(f"| {name} |" in table for name in ("none", "drop", "wide"))


@pytest.mark.slow
def test_named_points_with_a_structural_point_through_local_processes(tmp_path):
  rows = _run(_small(), tmp_path / "sw", STRUCTURAL, parallel_jobs=2)
  _check_structural(tmp_path / "sw", rows)


def _submitit(tmp_path, workdir, points):
  """`genjax sweep --launcher=submitit_local` of `points` (get_sweep) on the `_small` config:
  the CLI, as submitit's job controllers take over the sweep process's stdout and stderr."""
  path = tmp_path / "exp.py"
  path.write_text("from genjax.config import defaults\n"
                  "def get_config():\n"
                  "  c = defaults.get_config()\n"
                  "  c.model.widths, c.num_epochs, c.checkpoint.enabled = (8,), 1, False\n"
                  "  c.optimizer.learning_rate = 3e-3\n"
                  "  return c\n"
                  f"def get_sweep():\n  return {points!r}\n")
  out = subprocess.run([sys.executable, "-m", "genjax.main", "sweep", f"--config={path}",
                        f"--workdir={workdir}", "--progress=false", "--launcher=submitit_local"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
  if out.returncode == 0:
    return _json(workdir / "sweep.json")["rows"]
  line, = out.stderr.strip().splitlines()
  raise ConfigError(line.removeprefix("genjax: error: "))


def _submissions(workdir) -> dict:
  return {int(i): len(h) for i, h in _json(workdir / "launch.json")["groups"].items()}


@pytest.mark.slow
def test_named_points_through_submitit_and_resubmission(tmp_path):
  workdir = tmp_path / "sw"
  rows = _submitit(tmp_path, workdir, STRUCTURAL)
  _check_structural(workdir, rows)
  shutil.rmtree(workdir / "group01")   # as a job that ended without results
  os.remove(workdir / "sweep.json")
  rows = _submitit(tmp_path, workdir, STRUCTURAL)
  assert _submissions(workdir) == {0: 1, 1: 2}   # group 1 resubmitted, with its own points
  _check_structural(workdir, rows)


@pytest.mark.slow
def test_named_points_with_their_own_keys_in_nested_cv(tmp_path):
  config = _small()
  config.cv.method, config.cv.folds, config.cv.outer_folds = "stratified_kfold", 2, 2
  rows = _run(config, tmp_path / "sw", [{**p, "seed": s} for p in OWN_KEYS for s in (0, 1)])
  assert len(rows) == 2
  nested = _json(tmp_path / "sw" / "nested.json")
  assert sorted(nested["selection_frequency"]) == ["drop", "l2", "none"]
  assert nested["seeds"] == 2 and len(nested["member_results"]) == 2 * 3 * 2 * 2
  inner = [d for d in os.listdir(tmp_path / "sw" / "tensorboard") if d.startswith("outer")]
  folders = {os.path.relpath(root, tmp_path / "sw" / "tensorboard")
             for root, _, files in os.walk(tmp_path / "sw" / "tensorboard")
             if any(f.startswith("events.out") for f in files) and "refit" not in root}
  assert inner and len(folders) == 2 * 3 * 2 * 2, sorted(folders)   # one folder per member
  values = {m["point"]: m["values"] for m in nested["member_results"]}
  assert values == {"none": {"penalties.l2.strength": 0.0, "model.dropout": 0.0},
                    "l2": {"penalties.l2.strength": 1e-3, "model.dropout": 0.0},
                    "drop": {"penalties.l2.strength": 0.0, "model.dropout": 0.2}}


def test_a_group_whose_points_would_not_read_back_is_refused_before_it_starts(tmp_path):
  from genjax.sweeps import launch as sweep_launch
  points = [{"seed": 0, "model.dropout": 0.2}, {"model.dropout": 0.0, "seed": 1},
            {"model.dropout": 0.1 + 0.2, "seed": 2}]   # 0.30000000000000004 must survive
  path = str(tmp_path / "group00.config")
  sweep_launch.write_group(path, _small(), points)
  config, back = sweep_launch.read_group(path)
  assert back == points and [type(v) for p in back for v in p.values()] == \
      [type(v) for p in points for v in p.values()]
  assert config.to_dict() == _small().to_dict()
  for bad in ([{"model.dropout": float("nan")}], [{"model.dropout": float("inf")}]):
    with pytest.raises(ConfigError, match="cannot be passed to a group process"):
      sweep_launch.write_group(str(tmp_path / "bad.config"), _small(), bad)
    assert not (tmp_path / "bad.config").exists()


# --- item 3 ----------------------------------------------------------------------------------

def test_values_that_print_alike_get_distinct_names(tmp_path):
  workdir = tmp_path / "sw"
  rows = _run(_small(), workdir, sweep_grid.grid(["optimizer.learning_rate=0.001,0.0010000001"]))
  assert [r["label"] for r in rows] == ["learning_rate=0.001", "learning_rate=0.0010000001"]
  compare = (workdir / "sweep_compare.md").read_text()
  assert "learning_rate=0.0010000001" in compare
  runs = sorted(os.listdir(workdir / "tensorboard"))
  assert len(runs) == 2, runs


@pytest.mark.slow
def test_a_groups_sweep_json_copied_from_another_group_is_refused(tmp_path):
  """What the parent collects (a finished group job is never run again, so its sweep.json is
  all there is) must be this group's: the same points and this group's config."""
  from genjax.sweeps import launch as sweep_launch
  workdir = tmp_path / "sw"
  points = [{"model.widths": (8,)}, {"model.widths": (4,)}]   # both groups: one point, {}
  _run(_small(), workdir, points, parallel_jobs=2)
  groups = [({"model.widths": (8,)}, [{}]), ({"model.widths": (4,)}, [{}])]
  rows, _ = sweep_launch.collect(str(workdir), groups, _small())
  assert [r["point"] for r in rows] == [{"model.widths": (8,)}, {"model.widths": (4,)}]
  shutil.copy(workdir / "group00" / "sweep.json", workdir / "group01" / "sweep.json")
  with pytest.raises(ConfigError, match=r"sweep group 1 \(widths=\(4,\)\): .*sweep.json missing "
                                        "or not as the run wrote it"):   # its digest differs
    sweep_launch.collect(str(workdir), groups, _small())
  shutil.rmtree(workdir / "group01")   # the whole group copied: its own record verifies
  shutil.copytree(workdir / "group00", workdir / "group01")
  with pytest.raises(ConfigError, match=r"sweep group 1 \(widths=\(4,\)\) holds results written "
                                        "for another config than this group's"):
    sweep_launch.collect(str(workdir), groups, _small())


def test_a_grid_of_millions_of_points_is_refused_before_it_is_built():
  with pytest.raises(ConfigError, match=r"the grid of 1000 a × 1000 b × 1000 c has "
                                        r"1,000,000,000 points, over the 100,000"):
    sweep_grid.grid(["a=range(0,1000)", "b=range(0,1000)", "c=range(0,1000)"])
  with pytest.raises(ConfigError, match="10,000,000,000 points"):
    sweep_grid.grid(["seed=range(0,10000000000)"])


@pytest.mark.parametrize("points,needle", [
    ([("model.dropout", 0.2)], "sweep point 0 is a tuple"),
    (["model.dropout=0.2"], "sweep point 0 is a str"),
    ("model.dropout=0.2", "sweep points must be a list of {key: value} dicts, got a str"),
    ({"model.dropout": 0.2}, "sweep points must be a list of {key: value} dicts, got a dict"),
    ([{1: 0.2}], "sweep point 0 has key 1"),
])
def test_points_that_are_not_dicts_are_one_line(tmp_path, points, needle):
  with pytest.raises(ConfigError, match=re.escape(needle)):
    sweep_driver.run(_small(), str(tmp_path / "sw"), points)
  with pytest.raises(ConfigError) as e:   # the Python API: a ConfigError too, in one line
    api.sweep(_small(), points, str(tmp_path / "sw"))
  assert "\n" not in str(e.value)
  assert not (tmp_path / "sw").exists()


@pytest.mark.parametrize("points,override,needle", [
    # point b misses seed 1: refused only once every member had trained, leaving a workdir
    # whose rerun refused again (found trying genjax).
    ([{"model.dropout": 0.1, "seed": 0}, {"model.dropout": 0.1, "seed": 1},
      {"model.dropout": 0.2, "seed": 0}], None,
     "point 'dropout=0.2' has seeds [0] against [0, 1] of the baseline 'dropout=0.1'"),
    ([{"cv.folds": 3}, {"cv.folds": 5}], "kfold",
     "point 'folds=5' has [5] fold(s) against [3] of the baseline 'folds=3'"),
])
def test_points_that_cannot_be_paired_are_refused_before_anything_trains(
    tmp_path, points, override, needle):
  config = _small()
  if override:
    config.cv.method = override
  with pytest.raises(ConfigError, match=re.escape(needle)) as e:
    _run(config, tmp_path / "sw", points)
  assert "\n" not in str(e.value)
  assert not (tmp_path / "sw").exists()


def test_a_weight_decay_the_optimizer_never_reads_is_refused_before_anything_trains(tmp_path):
  """optimizer.weight_decay on adam (no decoupled decay) changed nothing: a sweep of it failed
  once the program was built, leaving a workdir; a set value trained as if absent."""
  config = _small()     # adam
  with pytest.raises(ConfigError, match=r"^sweep: optimizer 'adam' has no use for a swept "
                                        r"optimizer.weight_decay .* optimizer.name=adamw$"):
    _run(config, tmp_path / "sw", [{"optimizer.weight_decay": 0.0},
                                    {"optimizer.weight_decay": 0.1}])
  assert not (tmp_path / "sw").exists()
  config.optimizer.weight_decay = 0.1
  with pytest.raises(ConfigError, match=r"optimizer 'adam' has no use for "
                                        r"optimizer.weight_decay=0.1"):
    api.fit(config, str(tmp_path / "fit"))
  assert not (tmp_path / "fit").exists()
  config.optimizer.name = "adamw"    # read there: a sweep of it is one program
  assert len(sweep_grid.split([{"optimizer.weight_decay": 0.0},
                               {"optimizer.weight_decay": 0.1}])) == 1
  config.optimizer.weight_decay = 0.0
  config.optimizer.name = "adam"     # 0 (off) and the default are accepted anywhere
  defaults.validate(config)
