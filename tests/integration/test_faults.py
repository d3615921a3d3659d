"""Faults of the environment and of the run's inputs: one line, the right exit status, nothing
lost, and a rerun after the fix that resumes identical.

Real processes and real filesystems: a tiny tmpfs for the full disk and a read-only tmpfs
(both need root to mount; skipped with the reason otherwise), SIGINT for Ctrl-C.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = ["--config=experiments/mnist1d_mlp.py", "--progress=false", "--config.num_epochs=3",
         "--config.model.widths=(16,)"]


def _genjax(*args, timeout=300, **kwargs):
  return subprocess.run([sys.executable, "-m", "genjax.main", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=timeout, **kwargs)


def _one_line(out, status=2):
  lines = out.stderr.strip().splitlines()
  assert out.returncode == status, out.stderr[-3000:]
  assert len(lines) == 1, out.stderr[-3000:]
  return lines[0]


def _results(workdir):
  r = json.load(open(os.path.join(workdir, "results.json")))
  for key in ("wall_time_s", "provenance"):
    r.pop(key)
  return r


@contextlib.contextmanager
def _tmpfs(path, size, *, read_only=False):
  os.makedirs(path, exist_ok=True)
  opts = f"size={size}" + (",ro" if read_only else "")
  out = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)],
                       capture_output=True, text=True)
  if out.returncode != 0:
    pytest.skip(f"cannot mount a tmpfs here ({out.stderr.strip() or 'needs root'})")
  try:
    yield path
  finally:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _copy_tree(src, dst):
  subprocess.run(["cp", "-a", f"{src}/.", str(dst)], check=True)


def test_full_disk_is_one_line_and_the_rerun_resumes_identical(tmp_path):
  reference = tmp_path / "reference"
  out = _genjax("train", *SMALL, f"--workdir={reference}")
  assert out.returncode == 0, out.stderr[-3000:]
  with _tmpfs(tmp_path / "disk", "200k") as disk:
    workdir = disk / "run"
    out = _genjax("train", *SMALL, f"--workdir={workdir}")
    line = _one_line(out)
    assert "No space left on device" in line and "rerun the same command" in line, line
    for name in os.listdir(workdir):   # strict files only: nothing half-written
      if name.endswith(".json"):
        json.load(open(workdir / name))
    saved = tmp_path / "saved"
    saved.mkdir()
    _copy_tree(workdir, saved)
  # "Free space": the same workdir contents on a filesystem with room, the same command.
  out = _genjax("train", *SMALL, f"--workdir={saved}")
  assert out.returncode == 0, out.stderr[-3000:]
  assert _results(saved) == _results(reference)


def test_read_only_workdir_is_one_line(tmp_path):
  with _tmpfs(tmp_path / "ro", "1m", read_only=True) as ro:
    line = _one_line(_genjax("train", *SMALL, f"--workdir={ro / 'run'}"))
    assert "not writable" in line, line


def test_unwritable_workdir_is_one_line(tmp_path):
  parent = tmp_path / "locked"
  parent.mkdir()
  parent.chmod(0o555)
  if os.access(parent, os.W_OK):
    pytest.skip("running as root: a directory without write permission is still writable "
                "(the read-only filesystem case covers the refusal here)")
  line = _one_line(_genjax("train", *SMALL, f"--workdir={parent / 'run'}"))
  assert "not writable" in line, line
  assert not (parent / "run").exists()


@pytest.mark.parametrize("flag", ["--workdir={file}/run", "--compilation_cache_dir={file}",
                                  "--config.data.data_dir={file}"])
def test_a_file_where_a_directory_belongs_is_one_line(tmp_path, flag):
  file = tmp_path / "a_file"
  file.write_text("not a directory\n")
  args = [flag.format(file=file)]
  if not flag.startswith("--workdir"):
    args.append(f"--workdir={tmp_path / 'run'}")
  line = _one_line(_genjax("train", *SMALL, *args))
  assert "file" in line, line
  assert not (tmp_path / "run").exists()
  assert file.read_text() == "not a directory\n"


def test_sweep_flags_given_to_train_are_refused(tmp_path):
  line = _one_line(_genjax("train", *SMALL, f"--workdir={tmp_path / 'run'}",
                           "--sweep=model.dropout=0,0.2"))
  assert "genjax sweep" in line, line
  assert not (tmp_path / "run").exists()


# Long enough that a loaded machine cannot finish it before the test sees 5 epochs; a
# checkpoint at most every 60 s, so only the final checkpoint the signal writes holds the
# last epoch, and the rerun resumes from it.
LONG = [*SMALL, "--config.num_epochs=200", "--config.early_stopping.enabled=false",
        "--config.checkpoint.min_interval_s=60"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
  reference = tmp_path_factory.mktemp("reference") / "run"
  out = _genjax("train", *LONG, f"--workdir={reference}")
  assert out.returncode == 0, out.stderr[-3000:]
  return reference


@pytest.mark.parametrize("name,status,phrase", [
    ("SIGINT", 130, "interrupted at epoch"),
    ("SIGTERM", 143, "stopped by SIGTERM at epoch"),     # SLURM's time limit, a preemption
    ("SIGHUP", 129, "stopped by SIGHUP at epoch"),       # the terminal closed
])
def test_a_signal_saves_a_final_checkpoint_is_one_line_and_the_rerun_resumes_identical(
    tmp_path, uninterrupted, name, status, phrase):
  workdir = tmp_path / "run"
  proc = subprocess.Popen([sys.executable, "-m", "genjax.main", "train", *LONG,
                           f"--workdir={workdir}"], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  metrics = workdir / "metrics.jsonl"
  deadline = time.time() + 240
  while (not metrics.exists() or len(metrics.read_text().splitlines()) < 5) and (
      proc.poll() is None and time.time() < deadline):
    time.sleep(0.01)
  proc.send_signal(getattr(signal, name))
  _, err = proc.communicate(timeout=120)
  lines = err.strip().splitlines()
  assert proc.returncode == status, err[-3000:]
  assert len(lines) == 1 and phrase in lines[0], err[-3000:]
  assert "rerun the same command to resume" in lines[0]
  logged = len(metrics.read_text().splitlines())
  steps = [int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()]
  assert max(steps) == logged, (steps, logged)        # the final checkpoint: nothing lost
  out = _genjax("train", *LONG, f"--workdir={workdir}")
  assert out.returncode == 0, out.stderr[-3000:]
  assert _results(workdir) == _results(uninterrupted)
  rows = [json.loads(line) for line in metrics.read_text().splitlines()]
  assert [r["epoch"] for r in rows] == list(range(200))


def test_refit_follows_the_folds_schedule_and_logs_no_placeholders(tmp_path):
  # warmup_epochs=8 with a refit that trains fewer epochs: the refit keeps the folds' schedule.
  workdir = tmp_path / "cv"
  out = _genjax("train", *SMALL, f"--workdir={workdir}", "--config.cv.method=kfold",
                "--config.cv.folds=2", "--config.cv.refit=true", "--config.num_epochs=10",
                "--config.optimizer.schedule=warmup_cosine", "--config.optimizer.warmup_epochs=8",
                "--config.early_stopping.patience=1", "--config.early_stopping.min_delta=10.0")
  assert out.returncode == 0, out.stderr[-3000:]
  results = json.load(open(workdir / "results.json"))
  assert results["test_refit"]["epochs"] < 8
  assert "selected_epoch_median" in results and "selected_epoch" not in results
  rows = [json.loads(line) for line in open(workdir / "metrics_refit.jsonl")]
  assert rows and all(not any(k.startswith("val_") for k in r) for r in rows)
  assert all("train_loss_running" in r for r in rows)
