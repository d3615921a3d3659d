"""Successive halving and Hyperband inside one sweep program (`genjax.sweeps.pruning`).

End to end with the CLI on MNIST-1D (9 points × 2 seeds × 2 folds, 9 epochs): the rungs equal
scikit-learn's `HalvingGridSearchCV` schedule for the same candidates; the survivors equal an
offline replay of the rule (coded here) on the metrics of the unpruned grid run; a survivor's
numbers equal the grid run's; pruned members stop at their rung; a kill after a rung resumes
identically, and a cut rung record is refused; bad settings are refused in one line before
anything is written; Hyperband's brackets equal a transcription of Li et al.'s Algorithm 1.
"""

import json
import math
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LRS, DROPOUTS = ("1e-3", "3e-3", "1e-2"), ("0", "0.2", "0.4")
BASE = ["sweep", "--config=experiments/mnist1d_mlp.py", "--progress=false",
        "--config.num_epochs=9", "--config.model.widths=(32,32)",
        "--config.cv.method=stratified_kfold", "--config.cv.folds=2",
        "--config.early_stopping.patience=3", "--config.checkpoint.min_interval_s=0",
        f"--sweep=optimizer.learning_rate={','.join(LRS)}",
        f"--sweep=model.dropout={','.join(DROPOUTS)}", "--sweep=seed=0,1"]


def _cmd(workdir, extra=()):
  return [sys.executable, "-m", "genjax.main", *BASE, *extra, f"--workdir={workdir}"]


def _run(workdir, extra=()):
  out = subprocess.run(_cmd(workdir, extra), cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  return out


def _json(path):
  return json.load(open(path))


def _rows(workdir):
  return [json.loads(x) for x in open(os.path.join(workdir, "metrics.jsonl"))]


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("grid"))
  _run(workdir)
  return workdir


@pytest.fixture(scope="module")
def halving(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("halving"))
  out = _run(workdir, ["--search=halving"])
  assert "members still train; the stopped ones left the epoch program" in out.stdout
  return workdir


def _point(member: str) -> str:
  """A member's point name, seed aside, from its metric rows' `member`
  ("learning_rate=0.001,dropout=0,seed=1/fold0")."""
  return re.sub(r",seed=\d+$", "", member.rsplit("/", 1)[0])


@pytest.mark.slow
def test_the_rungs_equal_scikit_learns_halving_schedule(halving):
  from sklearn.base import BaseEstimator, ClassifierMixin
  from sklearn.experimental import enable_halving_search_cv  # noqa: F401
  from sklearn.model_selection import HalvingGridSearchCV, PredefinedSplit

  class Model(ClassifierMixin, BaseEstimator):
    def __init__(self, epochs=1, c=0):
      self.epochs, self.c = epochs, c

    def fit(self, x, y):
      self.classes_ = np.unique(y)
      return self

    def predict(self, x):
      return np.zeros(len(x), int)

    def score(self, x, y):
      return float(self.c)

  x, y = np.zeros((20, 1)), np.arange(20) % 2
  search = HalvingGridSearchCV(Model(), {"c": list(range(9))}, factor=3, resource="epochs",
                               max_resources=9, min_resources="exhaust",
                               cv=PredefinedSplit([0] * 10 + [-1] * 10), refit=False).fit(x, y)
  rungs = _json(os.path.join(halving, "sweep.json"))["search"]["rungs"]
  assert [r["candidates"] for r in rungs] == list(search.n_candidates_)
  assert [r["epochs"] for r in rungs] == list(search.n_resources_)
  assert [r["rung"] for r in rungs] == sorted(set(search.cv_results_["iter"]))


def _replay_scores(rows, epochs: int) -> dict:
  """Each point's score after `epochs` epochs from the unpruned run's rows, coded from the
  rule's definition: per member, the validation accuracy at its best epoch so far (the first
  lowest finite val_loss: early stopping's strict improvement, min_delta 0, weights restored),
  averaged over the point's members (seeds × folds)."""
  by_member: dict = {}
  for r in rows:
    if r["epoch"] < epochs:
      by_member.setdefault(r["member"], []).append(r)
  per_point: dict = {}
  for member, rs in by_member.items():
    rs = sorted(rs, key=lambda r: r["epoch"])
    finite = [r for r in rs if r["val_loss"] is not None and math.isfinite(r["val_loss"])]
    best = min(finite, key=lambda r: (r["val_loss"], r["epoch"]))
    per_point.setdefault(_point(member), []).append(best["val_accuracy"])
  return {p: float(np.mean(v)) for p, v in per_point.items()}


@pytest.mark.slow
def test_the_survivors_equal_an_offline_replay_on_the_unpruned_run(grid, halving):
  rows = _rows(grid)
  rungs = _json(os.path.join(halving, "sweep.json"))["search"]["rungs"]
  alive = list(dict.fromkeys(_point(r["member"]) for r in rows))
  assert len(alive) == 9
  for rung in rungs[:-1]:
    assert rung["points"] == alive
    scores = _replay_scores(rows, rung["epochs"])
    k = math.ceil(len(alive) / 3)
    order = sorted(range(len(alive)), key=lambda i: (-scores[alive[i]], i))[:k]
    alive = [alive[i] for i in sorted(order)]
    assert rung["kept_points"] == alive, rung["epochs"]
  assert rungs[-1]["points"] == alive
  assert _json(os.path.join(halving, "sweep.json"))["search"]["survivors"] == alive
  assert _json(os.path.join(halving, "selected.json"))["name"] in alive


@pytest.mark.slow
def test_a_survivor_trains_as_in_the_unpruned_run_and_the_pruned_stop_at_their_rung(grid,
                                                                                    halving):
  g, h = _json(os.path.join(grid, "sweep.json")), _json(os.path.join(halving, "sweep.json"))
  survivors = set(h["search"]["survivors"])
  pruned_at = {}
  for r in h["search"]["rungs"]:
    for p in set(r["points"]) - set(r["kept_points"]):
      pruned_at[p] = r["epochs"]
  assert set(pruned_at) | survivors == {m["point"] for m in g["member_results"]}
  grid_members = {(m["point"], m["seed"], m["fold"]): m for m in g["member_results"]}
  for m in h["member_results"]:
    if m["point"] in survivors:
      assert m == grid_members[(m["point"], m["seed"], m["fold"])]
    else:
      assert m["stop_reason"] in ("pruned", "patience")
  grid_rows = [r for r in _rows(grid) if _point(r["member"]) in survivors]
  assert [r for r in _rows(halving) if _point(r["member"]) in survivors] == grid_rows
  for r in _rows(halving):   # a pruned member trains no epoch past its rung
    assert r["epoch"] < pruned_at.get(_point(r["member"]), 10**9)
  assert h["compaction"]["trained_member_epochs"] == len(_rows(halving))
  assert h["compaction"]["trained_member_epochs"] < g["compaction"]["trained_member_epochs"]
  compared = open(os.path.join(halving, "sweep_compare.md")).read()
  assert "Only the 1 point(s) that reached the last rung are compared" in compared
  first = g["member_results"][0]["point"]   # the default baseline: the first point
  if first not in survivors:   # its pruning is said, not hidden
    assert f"The baseline {first} was pruned at a rung" in compared
  table = open(os.path.join(halving, "sweep_rungs.md")).read()
  assert table.startswith("| bracket | rung | epochs | candidates | kept |")


@pytest.mark.slow
def test_a_kill_after_a_rung_resumes_identically(halving, tmp_path):
  workdir = tmp_path / "run"
  os.makedirs(workdir)
  proc = subprocess.Popen(_cmd(workdir, ["--search=halving"]), cwd=ROOT,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  rungs, deadline = workdir / "sweep_rungs.jsonl", time.time() + 300
  while not (rungs.exists() and len(rungs.read_text().splitlines()) >= 2) \
      and proc.poll() is None and time.time() < deadline:
    time.sleep(0.005)
  time.sleep(0.3)   # past the second rung's checkpoint
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  _run(workdir, ["--search=halving"])
  strip = lambda p: {k: v for k, v in _json(p).items() if k != "wall_time_s"}  # noqa: E731
  assert strip(workdir / "sweep.json") == strip(os.path.join(halving, "sweep.json"))
  for name in ("metrics.jsonl", "sweep_rungs.jsonl", "sweep.md", "sweep_rungs.md"):
    assert (workdir / name).read_text() == open(os.path.join(halving, name)).read(), name


def _pruner_after_one_rung(path):
  from genjax.sweeps import pruning, search
  rungs = search.halving_schedule(9, 3, 1, 9)   # 1, 3, 9 epochs: 9, 3, 1 points
  points = [f"p{i}" for i in range(9)]
  return pruning.Pruner([rungs], [points], points, [f"{p}/fold0" for p in points],
                        restore_best=True, path=str(path))


def _resumed_at(epoch, pruned):
  from types import SimpleNamespace
  from genjax.train import early_stopping
  reason = np.where(pruned, early_stopping.PRUNED, early_stopping.NONE)
  state = SimpleNamespace(monitor=SimpleNamespace(stop_reason=reason, should_stop=pruned))
  info = SimpleNamespace(start_epoch=epoch, program=SimpleNamespace(real=lambda t: t))
  return info, state


def test_resuming_checks_the_rung_records_against_the_checkpoint(tmp_path):
  from genjax.errors import ConfigError
  path = tmp_path / "sweep_rungs.jsonl"
  record = {"bracket": 0, "rung": 0, "epochs": 1, "candidates": 9, "kept": 3,
            "points": [f"p{i}" for i in range(9)], "scores": [0.1] * 9,
            "kept_points": ["p0", "p1", "p2"]}
  path.write_text(json.dumps(record) + "\n")
  pruned = np.arange(9) >= 3
  pruner = _pruner_after_one_rung(path)
  pruner.start(*_resumed_at(2, pruned))           # agrees: kept
  assert pruner.records == [record] and pruner.survivors() == ["p0", "p1", "p2"]
  pruner = _pruner_after_one_rung(path)
  pruner.start(*_resumed_at(0, np.zeros(9, bool)))  # from scratch: later records dropped
  assert pruner.records == [] and path.read_text() == ""
  for cut, state in [("", pruned), (json.dumps(record) + "\n", np.arange(9) >= 4)]:
    path.write_text(cut)   # the record missing, or other members pruned than it says
    with pytest.raises(ConfigError, match="sweep_rungs.jsonl' does not match the checkpoint"):
      _pruner_after_one_rung(path).start(*_resumed_at(2, state))


def test_the_curves_mark_the_rungs():
  from genjax.sweeps import plots
  rows = [{"point": {"model.dropout": d}, "name": f"dropout={d}",
           "curve": [[e, 1.0 / (e + 1 + d)] for e in range(9)]} for d in (0.0, 0.2)]
  fig = plots._sweep_curves_figure(rows, [1, 3])
  gids = {a.get_gid() for a in fig.findobj(lambda a: (a.get_gid() or "").startswith("rung:"))}
  assert gids == {"rung:1", "rung:3"}
  line = next(a for a in fig.findobj(lambda a: a.get_gid() == "rung:3"))
  assert list(line.get_xdata()) == [2, 2]   # after epoch index 2: 3 epochs trained


@pytest.mark.slow
def test_the_search_keys_of_sweep_json_are_documented(halving):
  from genjax.workdir import outputs
  documented = {k.path for k in outputs.SWEEP_JSON if k.path.startswith(".search")}
  search = _json(os.path.join(halving, "sweep.json"))["search"]
  found = {f".search.{k}" for k in search if k != "rungs"} | {".search.rungs[]"}
  assert found <= documented, found - documented
  fields = ", ".join(f"`{k}`" for k in search["rungs"][0])
  meaning = next(k.meaning for k in outputs.SWEEP_JSON if k.path == ".search.rungs[].<field>")
  assert all(f"`{k}`" in meaning for k in search["rungs"][0]), fields


def test_an_unknown_search_is_refused_from_python(tmp_path):
  import genjax
  from genjax.config import defaults
  from genjax.errors import ConfigError
  with pytest.raises(ConfigError, match="search"):
    genjax.sweep(defaults.get_config(), [{"model.dropout": 0.0}, {"model.dropout": 0.2}],
                 str(tmp_path / "w"), search="bayesian")
  assert not (tmp_path / "w").exists() or not any((tmp_path / "w").iterdir())
  with pytest.raises(ConfigError, match="apply to a search"):
    genjax.sweep(defaults.get_config(), [{"model.dropout": 0.0}, {"model.dropout": 0.2}],
                 str(tmp_path / "w"), search_factor=2)


def test_another_search_setting_is_not_resumed(tmp_path):
  from genjax.sweeps import group
  assert group.options(False, {"method": "halving", "factor": 3, "min_epochs": "exhaust"}) != \
      group.options(False, {"method": "halving", "factor": 2, "min_epochs": "exhaust"})
  assert group.options(False, None) is None


@pytest.mark.parametrize("extra,phrase", [
    (["--search=halving", "--search_factor=1"], "factor"),
    (["--search=halving", "--search_min_epochs=20"], "num_epochs"),
    (["--search=halving", "--search_min_epochs=0"], "min_epochs"),
    (["--search=halving", "--search_min_epochs=abc"], "min_epochs"),
    (["--search_factor=2"], "--search=halving"),
    (["--search=halving", "--sweep=model.widths=(16,),(32,)"], "structural"),
    (["--search=hyperband"], "exhaust"),
    (["--search=hyperband", "--search_min_epochs=1"], "--search=hyperband with these settings"),
    (["--search=halving", "--launcher=submitit_local"], "--launcher=local"),
])
def test_bad_search_settings_are_one_line_exit_2_before_anything_is_written(tmp_path, extra,
                                                                            phrase):
  workdir = tmp_path / "w"
  out = subprocess.run(_cmd(workdir, extra), cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
  assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
  lines = out.stderr.strip().splitlines()
  assert len(lines) == 1 and phrase in lines[0], lines
  assert not workdir.exists() or not any(workdir.iterdir())


def _li_brackets(R: float, eta: int):
  """Li et al. (2018), Algorithm 1, transcribed: [(n_i, r_i) per rung] per bracket."""
  s_max = int(math.floor(math.log(R, eta) + 1e-9))
  B = (s_max + 1) * R
  out = []
  for s in range(s_max, -1, -1):
    n = int(math.ceil(B / R * eta ** s / (s + 1)))
    r = R * eta ** (-s)
    out.append([(int(math.floor(n * eta ** (-i))), r * eta ** i) for i in range(s + 1)])
  return out


@pytest.mark.slow
def test_hyperband_runs_li_et_al_brackets_on_sampled_points(tmp_path):
  out = subprocess.run(
      [sys.executable, "-m", "genjax.main", "sweep", "--config=experiments/mnist1d_mlp.py",
       "--progress=false", "--config.num_epochs=9", "--config.model.widths=(16,16)",
       "--sample=optimizer.learning_rate=loguniform(1e-3,1e-1)", "--search=hyperband",
       "--search_min_epochs=1", f"--workdir={tmp_path}"],
      cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  record = _json(tmp_path / "sweep.json")
  want = _li_brackets(9, 3)
  got: dict = {}
  for r in record["search"]["rungs"]:
    got.setdefault(r["bracket"], []).append((r["candidates"], r["epochs"]))
  assert [got[b] for b in sorted(got)] == [[(n, round(r)) for n, r in b] for b in want]
  assert len(record["rows"]) == sum(b[0][0] for b in want) == 17
  assert len(record["search"]["survivors"]) == sum(b[-1][0] for b in want)
