"""A finished run (or sweep) continued to a larger num_epochs is the same run: it resumes from
its last checkpoint and ends where a run of that many epochs from the start ends, bit for bit.
What would differ (a schedule spanning num_epochs, a search, no checkpoints) is refused in
one line, nothing in the workdir touched. Real CLI subprocesses."""

import json
import os
import subprocess
import sys

import pytest

from genjax.workdir import extend

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE = ["--config=experiments/mnist1d_mlp.py", "--progress=false",
        "--config.model.widths=(32,)", "--config.early_stopping.patience=3",
        "--config.checkpoint.min_interval_s=600"]


def _genjax(*args):
  return subprocess.run([sys.executable, "-m", "genjax.main", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=600)


def _results(workdir, name="results.json"):
  r = json.load(open(os.path.join(workdir, name)))
  for key in ("wall_time_s", "provenance"):
    r.pop(key, None)
  return r


def _files(workdir):
  return {n: open(os.path.join(workdir, n), "rb").read() for n in sorted(os.listdir(workdir))
          if os.path.isfile(os.path.join(workdir, n))}


@pytest.mark.slow
@pytest.mark.parametrize("cv", ["none", "stratified_kfold"])
def test_a_finished_run_continued_equals_the_longer_run_from_the_start(tmp_path, cv):
  extra = [f"--config.cv.method={cv}", "--config.cv.folds=2"]
  longer = tmp_path / "longer"
  out = _genjax("train", *BASE, *extra, "--config.num_epochs=12", f"--workdir={longer}")
  assert out.returncode == 0, out.stderr[-3000:]
  workdir = tmp_path / "run"
  out = _genjax("train", *BASE, *extra, "--config.num_epochs=5", f"--workdir={workdir}")
  assert out.returncode == 0, out.stderr[-3000:]
  out = _genjax("train", *BASE, *extra, "--config.num_epochs=12", f"--workdir={workdir}")
  assert out.returncode == 0, out.stderr[-3000:]
  assert "continuing the run" in out.stdout + out.stderr
  assert (workdir / "metrics.jsonl").read_text() == (longer / "metrics.jsonl").read_text()
  assert _results(workdir) == _results(longer)
  assert json.load(open(workdir / "config.json"))["num_epochs"] == 12
  again = _genjax("train", *BASE, *extra, "--config.num_epochs=12", f"--workdir={workdir}")
  assert again.returncode == 0 and "continuing" not in again.stdout   # finished: as stored


@pytest.mark.slow
def test_a_finished_sweep_continued_equals_the_longer_sweep(tmp_path):
  sweep = ["sweep", *BASE, "--config.cv.method=stratified_kfold", "--config.cv.folds=2",
           "--sweep=model.dropout=0,0.2"]
  longer = tmp_path / "longer"
  assert _genjax(*sweep, "--config.num_epochs=9", f"--workdir={longer}").returncode == 0
  workdir = tmp_path / "sweep"
  assert _genjax(*sweep, "--config.num_epochs=4", f"--workdir={workdir}").returncode == 0
  out = _genjax(*sweep, "--config.num_epochs=9", f"--workdir={workdir}")
  assert out.returncode == 0, out.stderr[-3000:]
  assert (workdir / "metrics.jsonl").read_text() == (longer / "metrics.jsonl").read_text()
  ours, theirs = (_results(w, "sweep.json") for w in (workdir, longer))
  for key in ("rows", "member_results", "comparisons", "selected"):
    assert ours[key] == theirs[key], key


@pytest.mark.slow
@pytest.mark.parametrize("extra,phrase", [
    (["--config.optimizer.schedule=cosine"], "spans num_epochs"),
    (["--config.checkpoint.enabled=false"], "kept no checkpoint"),
])
def test_what_a_longer_run_would_change_is_refused_in_one_line(tmp_path, extra, phrase):
  workdir = tmp_path / "run"
  out = _genjax("train", *BASE, *extra, "--config.num_epochs=2", f"--workdir={workdir}")
  assert out.returncode == 0, out.stderr[-3000:]
  before = _files(workdir)
  out = _genjax("train", *BASE, *extra, "--config.num_epochs=4", f"--workdir={workdir}")
  assert out.returncode == 2, out.stderr[-3000:]
  lines = out.stderr.strip().splitlines()
  assert len(lines) == 1 and phrase in lines[0] and "--overwrite" in lines[0], lines
  assert _files(workdir) == before


def test_fewer_epochs_or_another_change_is_still_another_run():
  stored = {"kind": "train", "config": {"num_epochs": 10, "seed": 0}}
  assert extend.grown_epochs(stored, {"kind": "train", "config": {"num_epochs": 5, "seed": 0}}) is None
  assert extend.grown_epochs(stored, {"kind": "train", "config": {"num_epochs": 20, "seed": 1}}) is None
  assert extend.grown_epochs(stored, {"kind": "train", "config": {"num_epochs": 20, "seed": 0}}) == (10, 20)


@pytest.mark.parametrize("schedule,spans", [("constant", False), ("warmup_constant", False),
                                            ("cosine", True), ("warmup_cosine", True)])
def test_which_learning_rate_shapes_span_the_run(schedule, spans):
  optimizer = {"schedule": schedule, "warmup_epochs": 2, "final_lr_fraction": 0.1}
  assert extend.lr_changes(optimizer, 5, 9) == spans
