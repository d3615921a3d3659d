"""A structural group's process as a submitit job that a cluster may preempt or time out.

submitit sends a job its checkpoint signal (SIGUSR2, `timeout_min` minus a margin before the
limit, or when SLURM preempts it) and calls the job function's `checkpoint` method; a
`Checkpointable` job is then requeued with what `checkpoint` returns. `GroupCommand` runs
`genjax group FILE ...` as a child process: on the checkpoint signal it sends the child
SIGTERM, which ends a genjax run as Ctrl-C does (the last finished epoch saved, exit 143),
and requeues the same command, which resumes the group identically. At most MAX_REQUEUES
requeues: a group that never finishes within its limit is not requeued forever.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import submitit

MAX_REQUEUES = 5
STOP_TIMEOUT_S = 120.0   # how long the child may take to save and exit after SIGTERM


class GroupCommand(submitit.helpers.Checkpointable):
  """`command` (a list) run in `cwd`; `requeues`: how many times this job was requeued."""

  def __init__(self, command: list[str], cwd: str, requeues: int = 0):
    self.command, self.cwd, self.requeues = list(command), cwd, int(requeues)
    self._proc = None

  def __call__(self) -> int:
    """Runs the group process to its end; its output goes to the job's log. When it fails,
    submitit's FailedJobError from the CalledProcessError naming its status or signal (the
    sweep's one-line report reads them from the log, `cluster._failure`)."""
    from submitit.core.utils import FailedJobError
    self._proc = subprocess.Popen(self.command, cwd=self.cwd)
    status = self._proc.wait()
    if status != 0:   # as submitit's CommandFunction reports it: the sweep reads the log
      try:
        raise subprocess.CalledProcessError(status, self.command)
      except subprocess.CalledProcessError as e:
        raise FailedJobError(f"the group process failed: {e}") from e
    return status

  def checkpoint(self, *args, **kwargs):
    """submitit's checkpoint signal: the child saves and exits (SIGTERM), and the same
    command is requeued (None after MAX_REQUEUES: the job ends, reported as not requeued).
    Runs inside the signal handler, while `__call__` waits on the child: the child is reaped
    with `os.waitpid` here, not with Popen's methods (their lock is held by that wait)."""
    proc = self._proc
    if proc is not None and proc.returncode is None:
      _stop(proc.pid)
    if self.requeues >= MAX_REQUEUES:
      return None
    return submitit.helpers.DelayedSubmission(
        GroupCommand(self.command, self.cwd, self.requeues + 1))


def _stop(pid: int) -> None:
  """SIGTERM to process `pid`, then wait up to STOP_TIMEOUT_S for it to end (SIGKILL after)."""
  try:
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
      if os.waitpid(pid, os.WNOHANG)[0] == pid:
        return
      time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
  except (ProcessLookupError, ChildProcessError):   # already ended and reaped
    return
