"""Kill a real training process at several moments; the rerun finishes identical.

Same seed, same device count: the resumed run's metrics.jsonl and results.json
(all but wall time) equal an uninterrupted run's bit for bit on CPU.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARGS = ["train", "--config=experiments/mnist1d_mlp.py", "--progress=false",
        "--config.num_epochs=14", "--config.model.widths=(64,64)", "--config.model.dropout=0.1",
        "--config.optimizer.learning_rate=0.01", "--config.early_stopping.patience=4",
        "--config.data.augment=shift(max_shift=3)|noise(std=0.02)",
        "--config.checkpoint.min_interval_s=0"]   # a checkpoint every epoch: kills fall between


KFOLD = ["--config.cv.method=stratified_kfold", "--config.cv.folds=3", "--config.cv.refit=true",
         "--config.early_stopping.patience=2"]


def _cmd(workdir, extra=()):
  return [sys.executable, "-m", "genjax.main", *ARGS, *extra, f"--workdir={workdir}"]


def _run(workdir, extra=()):
  out = subprocess.run(_cmd(workdir, extra), cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]


def _lines(path):
  return open(path).read().splitlines() if os.path.exists(path) else []


def _kill_after(workdir, epochs_done: int, extra_delay: float, extra=()):
  """Starts a run and SIGKILLs it once `epochs_done` metric rows exist (+ a delay)."""
  proc = subprocess.Popen(_cmd(workdir, extra), cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  metrics = os.path.join(workdir, "metrics.jsonl")
  deadline = time.time() + 240
  while len(_lines(metrics)) < epochs_done and proc.poll() is None and time.time() < deadline:
    time.sleep(0.005)
  time.sleep(extra_delay)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  return len(_lines(metrics))


def _results(workdir):
  r = json.load(open(os.path.join(workdir, "results.json")))
  r.pop("wall_time_s")
  return r


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("reference"))
  _run(workdir)
  return workdir


@pytest.mark.parametrize("kills", [[(1, 0.0)], [(3, 0.01), (6, 0.0)], [(2, 0.003), (5, 0.02), (8, 0.0)]],
                         ids=["once", "twice", "thrice"])
def test_killed_run_resumes_to_identical_results(reference, tmp_path, kills):
  workdir = str(tmp_path / "run")
  os.makedirs(workdir)
  for epochs_done, delay in kills:
    _kill_after(workdir, epochs_done, delay)
  _run(workdir)
  assert _lines(os.path.join(workdir, "metrics.jsonl")) == _lines(os.path.join(reference, "metrics.jsonl"))
  assert _results(workdir) == _results(reference)


def test_killed_run_with_time_throttled_checkpoints_resumes_to_identical_results(reference,
                                                                                 tmp_path):
  """The default checkpoint.min_interval_s (10 s) saves the first epoch, then skips the rest of
  this short run until the forced final save: a kill loses everything after that first save."""
  workdir = str(tmp_path / "run")
  os.makedirs(workdir)
  throttled = ["--config.checkpoint.min_interval_s=10"]
  _kill_after(workdir, 8, 0.0, throttled)
  steps = [d for d in os.listdir(os.path.join(workdir, "checkpoints")) if d.isdigit()]
  assert steps in (["1"], []), steps          # [] only if killed before that save committed
  _run(workdir, throttled)
  assert _lines(os.path.join(workdir, "metrics.jsonl")) == _lines(os.path.join(reference, "metrics.jsonl"))
  assert _results(workdir) == _results(reference)


def test_finished_run_reruns_to_the_same_results(reference):
  before = _results(reference)
  _run(reference)
  assert _results(reference) == before


def test_killed_kfold_run_resumes_to_identical_results(tmp_path):
  reference = str(tmp_path / "reference")
  _run(reference, KFOLD)
  workdir = str(tmp_path / "run")
  os.makedirs(workdir)
  _kill_after(workdir, 4, 0.0, KFOLD)       # 3 folds: rows 4.. are in epoch 1
  _kill_after(workdir, 16, 0.005, KFOLD)
  _run(workdir, KFOLD)
  for name in ("metrics.jsonl", "metrics_refit.jsonl"):
    assert _lines(os.path.join(workdir, name)) == _lines(os.path.join(reference, name))
  assert _results(workdir) == _results(reference)


SWEEP = ["sweep", "--config=experiments/mnist1d_mlp.py", "--progress=false",
         "--config.num_epochs=10", "--config.model.widths=(32,32)",
         "--config.optimizer.learning_rate=0.01", "--config.early_stopping.patience=3",
         "--sweep=model.dropout=0,0.2", "--sweep=penalties.l2.strength=0,1e-3"]


def test_killed_sweep_resumes_to_identical_results(tmp_path):
  def cmd(workdir):
    return [sys.executable, "-m", "genjax.main", *SWEEP, f"--workdir={workdir}"]

  reference, workdir = tmp_path / "reference", tmp_path / "run"
  out = subprocess.run(cmd(reference), cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  os.makedirs(workdir)
  proc = subprocess.Popen(cmd(workdir), cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  metrics = os.path.join(workdir, "metrics.jsonl")
  deadline = time.time() + 240
  while len(_lines(metrics)) < 12 and proc.poll() is None and time.time() < deadline:
    time.sleep(0.005)                     # 4 members: 12 rows = 3 epochs done
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  out = subprocess.run(cmd(workdir), cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  assert _lines(metrics) == _lines(os.path.join(reference, "metrics.jsonl"))
  strip = lambda p: {k: v for k, v in json.load(open(p)).items() if k != "wall_time_s"}  # noqa: E731
  assert strip(workdir / "sweep.json") == strip(reference / "sweep.json")
  assert (workdir / "sweep.csv").read_text() == (reference / "sweep.csv").read_text()
