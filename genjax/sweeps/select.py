"""Selection on validation: a sweep's selected point, and its refit on the whole training split.

The selected point is the one with the highest validation accuracy, the mean over its seeds ×
folds (the first of equal ones, in the order the points were given); the test split plays no
part in choosing it. `selected.json` records the point, its validation summary, its test
metrics (its fold ensemble's, the mean over seeds) and, with `cv.refit` under
cross-validation, `test_refit`: the selected point retrained on the whole training split for the
median of its members' selected epochs (+1), exactly as `genjax train` with `cv.refit` refits
that point alone (`genjax.run.refit`; tested).
"""

from __future__ import annotations

import os

import numpy as np

from genjax.run import refit as refit_lib, setup as experiment
from genjax.report import files as report
from genjax.sweeps.points import apply_point, without_seed

SELECTED = "selected.json"
# selected/: every member's selected weights, written by each group that trains
# (`group.finish`), read by `genjax.load_run`.
OUTPUTS = (SELECTED, "metrics_refit.jsonl", experiment.SELECTED)


def best(table: list[dict]) -> dict:
  """The table row (seeds aggregated) with the highest validation accuracy mean."""
  return max(table, key=lambda r: r["val_accuracy_mean"])   # max keeps the first of ties


def select(config, workdir: str, table: list[dict], members: list[dict], *, resume: bool,
           progress: bool) -> dict:
  """Writes and returns `selected.json` (module docstring); `config` is the sweep's config
  before any point is applied (a group's, structural values applied, for one group)."""
  row = best(table)
  mine = [m for m in members if m["point"] == row["name"]]
  val = np.array([m["val_accuracy"] for m in mine])
  record = {
      "point": row["point"], "name": row["name"],
      "selected_by": "highest validation accuracy, mean over seeds x folds",
      "validation": {"accuracy_mean": float(val.mean()),
                     "accuracy_std": float(val.std(ddof=1)) if val.size > 1 else 0.0,
                     "loss_mean": float(np.mean([m["val_loss"] for m in mine])),
                     "members": len(mine)},
      "test": {"accuracy": row["test_accuracy"], "loss": row["test_loss"]},
  }
  point_config = apply_point(config, without_seed(row["point"]))
  if point_config.cv.refit and point_config.cv.method != "none":
    s = experiment.prepare(point_config, workdir)
    member = refit_lib.on_training_split(s, [m["selected_epoch"] for m in mine],
                                         member_id=len({m["fold"] for m in mine}))
    record["test_refit"] = refit_lib.refit(s, [member], workdir, resume=resume,
                                           progress=progress)[0].record()
  report.write_json(os.path.join(workdir, SELECTED), record)
  return record
