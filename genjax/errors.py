"""The one error type for bad user input.

Anything a user can get wrong (flags, config values, data, files) raises
`ConfigError` with one line naming the problem and the fix. `genjax.main`
turns it into that line on stderr and exit status 2, before anything compiles.
"""


class ConfigError(ValueError):
  """Bad user input: the message is one line saying what is wrong and how to fix it."""


class Interrupted(Exception):
  """Training stopped by Ctrl-C; `epoch` is the epoch under way. The checkpoints written so
  far are complete, so rerunning the same command resumes."""

  def __init__(self, epoch: int):
    super().__init__(f"interrupted at epoch {epoch}")
    self.epoch = epoch
