"""Continuing a run to a larger `num_epochs` as the same run.

A rerun on a workdir whose stored identity differs from the new one only in a larger
`num_epochs` continues the stored run from its last checkpoint instead of being refused:
its first epochs are the stored ones, the rest train from the checkpointed state, and the
result equals a run trained that long from the start — provided nothing the run computed
depended on `num_epochs`. What does, and is refused in one line:

* a learning-rate shape that spans the run (`cosine`, `warmup_cosine`, any registered shape
  whose value at a step changes with the total: checked numerically, `lr_changes`);
* a search (`--search`: its rungs are fractions of `num_epochs`);
* a run without checkpoints (`checkpoint.enabled=False`): there is nothing to continue from.

A smaller `num_epochs` is another run (refused as any other difference).
"""

from __future__ import annotations

import copy

from genjax.errors import ConfigError

STEPS_PER_EPOCH = 10   # any positive count: a shape that spans the run changes with it


def grown_epochs(stored: dict, run: dict) -> tuple[int, int] | None:
  """(stored num_epochs, new num_epochs) when the two identities differ in nothing but a
  larger `config.num_epochs`; else None."""
  try:
    old, new = int(stored["config"]["num_epochs"]), int(run["config"]["num_epochs"])
  except (KeyError, TypeError, ValueError):
    return None
  if new <= old:
    return None
  a, b = copy.deepcopy(stored), copy.deepcopy(run)
  a["config"]["num_epochs"] = b["config"]["num_epochs"] = None
  return (old, new) if a == b else None


def lr_changes(optimizer: dict, old: int, new: int) -> bool:
  """Whether the learning-rate shape's values over the first `old` epochs differ when the
  run spans `new` epochs (evaluated at every step, STEPS_PER_EPOCH steps an epoch)."""
  import numpy as np
  from genjax import registry
  schedules = registry.by_config_key("optimizer.schedule")   # genjax.optim's LR_SCHEDULES
  if schedules is None:   # not imported (no config was checked here): cannot tell, so it may
    return True
  shape = schedules.get(optimizer.get("schedule", "constant"))
  warmup = int(optimizer.get("warmup_epochs", 0) or 0) * STEPS_PER_EPOCH
  end = float(optimizer.get("final_lr_fraction", 0.0) or 0.0)
  steps = np.arange(old * STEPS_PER_EPOCH)
  before = shape(total=old * STEPS_PER_EPOCH, warmup=warmup, end=end)
  after = shape(total=new * STEPS_PER_EPOCH, warmup=warmup, end=end)
  return not np.array_equal(np.asarray([before(int(t)) for t in steps]),
                            np.asarray([after(int(t)) for t in steps]))


def check(run: dict, old: int, new: int) -> None:
  """ConfigError (one line) when the run cannot continue from `old` to `new` epochs and give
  what a run of `new` epochs from the start gives (see the module docstring)."""
  config, fix = run["config"], "pass --overwrite to train it from scratch, or choose another --workdir"
  grew = f"num_epochs grew ({old} -> {new})"
  if not config.get("checkpoint", {}).get("enabled", True):
    raise ConfigError(f"{grew}, but the run kept no checkpoint (checkpoint.enabled=False), so "
                      f"there is nothing to continue from; {fix}")
  if (run.get("options") or {}).get("search"):
    raise ConfigError(f"{grew}, but a search's rungs are fractions of num_epochs: a longer "
                      f"search is another search; {fix}")
  optimizer = config.get("optimizer", {})
  if lr_changes(optimizer, old, new):
    raise ConfigError(f"{grew}, but optimizer.schedule={optimizer.get('schedule')!r} spans "
                      "num_epochs: its learning rates would differ from the first epoch on, "
                      f"so a longer run is another run (a constant or warmup_constant schedule "
                      f"continues); {fix}")
