"""The one error type for bad user input.

Anything a user can get wrong (flags, config values, data, files) raises
`ConfigError` with one line naming the problem and the fix. `genjax.main`
turns it into that line on stderr and exit status 2, before anything compiles.
"""


class ConfigError(ValueError):
  """Bad user input: the message is one line saying what is wrong and how to fix it."""


import signal as _signal

STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")   # what ends a run like Ctrl-C


class Interrupted(Exception):
  """Training stopped by Ctrl-C, SIGTERM (SLURM's time limit or preemption) or SIGHUP;
  `epoch` is the epoch under way, `signum` the signal. The checkpoints written so far are
  complete (the last one at that epoch's end), so rerunning the same command resumes."""

  def __init__(self, epoch: int, signum: int = _signal.SIGINT):
    super().__init__(f"interrupted by {_signal.Signals(signum).name} at epoch {epoch}")
    self.epoch, self.signum = epoch, int(signum)


class Terminated(KeyboardInterrupt):
  """SIGTERM or SIGHUP outside training, raised by the command line's handler (as Python
  raises KeyboardInterrupt for SIGINT), so that `finally` blocks run and the exit is one line."""

  def __init__(self, signum: int):
    super().__init__(_signal.Signals(signum).name)
    self.signum = int(signum)
