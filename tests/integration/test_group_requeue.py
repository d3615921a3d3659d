"""A sweep group's submitit job is checkpointable: preempted (submitit's signal, SIGUSR2, sent to
the job's task as SLURM sends it), it stops its group process with SIGTERM (which saves the last
epoch), is requeued by submitit's local executor, and the group resumes to the numbers of an
uninterrupted run. Real processes throughout."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from genjax.config import defaults
from genjax.sweeps import launch as sweep_launch
from genjax.sweeps.group_job import MAX_REQUEUES, GroupCommand

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _config():
  config = defaults.get_config()
  config.model.widths = (64, 64)
  config.num_epochs = 80
  config.early_stopping.enabled = False
  config.checkpoint.min_interval_s = 600     # only the final checkpoint the signal writes
  return config


GROUP = ({}, [{"model.dropout": 0.0}, {"model.dropout": 0.2}])


def _rows(group_dir):
  path = os.path.join(group_dir, "metrics.jsonl")
  return [json.loads(x) for x in open(path)] if os.path.exists(path) else []


def _task_pid(folder) -> int | None:
  """The job's task process (`python -m submitit.core._submit FOLDER`), as SLURM signals it."""
  for pid in os.listdir("/proc"):
    if not pid.isdigit():
      continue
    try:
      with open(f"/proc/{pid}/cmdline", "rb") as f:
        cmdline = f.read()
    except OSError:
      continue
    if b"submitit.core._submit" in cmdline and str(folder).encode() in cmdline:
      return int(pid)
  return None


def test_a_job_past_its_requeues_is_not_requeued():
  job = GroupCommand(["true"], cwd=ROOT, requeues=MAX_REQUEUES - 1)
  again = job.checkpoint()
  assert again is not None and again.function.requeues == MAX_REQUEUES
  assert again.function.command == ["true"]
  assert again.function.checkpoint() is None      # the bound: no requeue after MAX_REQUEUES


@pytest.mark.slow
def test_a_preempted_group_job_saves_is_requeued_and_resumes_identically(tmp_path):
  import submitit
  reference = tmp_path / "reference"
  reference.mkdir()
  args = sweep_launch.command(_config(), GROUP, str(reference), 0, None)
  out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]

  workdir = tmp_path / "sweep"
  workdir.mkdir()
  args = sweep_launch.command(_config(), GROUP, str(workdir), 0, None)
  folder = tmp_path / "submitit"
  ex = submitit.AutoExecutor(folder=str(folder), cluster="local")
  ex.update_parameters(timeout_min=30)
  job = ex.submit(GroupCommand(args, cwd=ROOT))
  group = sweep_launch.group_dir(str(workdir), 0)
  deadline = time.time() + 300
  while len(_rows(group)) < 2 * 5 and time.time() < deadline and not job.done():
    time.sleep(0.05)
  assert not job.done(), job.stdout()
  pid = _task_pid(folder)
  assert pid is not None
  os.kill(pid, signal.SIGUSR2)               # what SLURM sends on preemption (--signal=USR2)
  assert job.result() == 0                   # requeued, then finished
  log = job.stdout() + (job.stderr() or "")
  assert "preempted" in log and "stopped by SIGTERM at epoch" in log, log[-3000:]
  assert _rows(group) != [] and [r["epoch"] for r in _rows(group)][-1] == 79
  for name in ("sweep.json",):
    ours = json.load(open(os.path.join(group, name)))
    theirs = json.load(open(os.path.join(sweep_launch.group_dir(str(reference), 0), name)))
    assert ours["rows"] == theirs["rows"] and ours["member_results"] == theirs["member_results"]
  assert _rows(group) == _rows(sweep_launch.group_dir(str(reference), 0))
