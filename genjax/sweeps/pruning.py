"""Successive halving and Hyperband inside a sweep's one program (`--search=halving|hyperband`).

Every point × seed × fold trains in lockstep; at a rung (`genjax.sweeps.search.Rung`: after
`epochs` epochs) each point still in its bracket is scored, the best `keep` go on and the
members of the others are stopped ("pruned": `Program.stop_members`), leaving the epoch
program (`parallel.compaction`). `fit` calls the `Pruner` after each rung's epoch, before any
callback: the checkpoint of that epoch holds the decision.

A point's score at a rung is the mean over its members (seeds × folds) of the validation
accuracy of each member's selected weights at that moment — the weights early stopping would
restore (its best epoch, when `restore_best_weights` and a best exists) else the last
trained — read from the member's metric row of that epoch: the metric and direction
selection uses (`genjax.sweeps.select`), deterministic, the same on a rerun. A point with a
non-finite score ranks last; ties go to the point given first.

Each decision is one record in `sweep_rungs.jsonl` (bracket, rung, epochs, candidates, kept,
the points entering with their scores, the points kept), written when it is made. A resumed
run keeps the records of the rungs its checkpoint has passed after checking them against the
checkpoint's pruned members (a record that disagrees, or one missing, is refused in one line),
and drops any later ones.
"""

from __future__ import annotations

import json
import math
import os

import jax
import numpy as np

from genjax.errors import ConfigError
from genjax.platform import distributed
from genjax.report.files import write_metrics
from genjax.sweeps import search
from genjax.train import early_stopping

RUNGS = "sweep_rungs.jsonl"
OUTPUTS = (RUNGS, "sweep_rungs.md", "sweep_rungs.csv")


class Pruner:
  """`fit`'s pruner for `brackets` (lists of `search.Rung`) over `bracket_points` (the point
  names of each bracket, in order); `member_points[j]` is real member j's point name,
  `member_names[j]` the name its metric rows carry. `path`: where the records go."""

  def __init__(self, brackets: list[list[search.Rung]], bracket_points: list[list[str]],
               member_points: list[str], member_names: list[str], *, restore_best: bool,
               path: str | None):
    self.brackets, self.bracket_points = brackets, bracket_points
    self.member_points, self.member_names = member_points, member_names
    self.restore_best, self.path = restore_best, path
    self.records: list[dict] = []
    self.spec: dict = {}   # the search settings (`spec`), for the records
    self._at: dict[int, list[tuple[int, search.Rung]]] = {}
    for b, rungs in enumerate(brackets):
      for rung in rungs:
        if rung.keep < rung.candidates:
          self._at.setdefault(rung.epochs, []).append((b, rung))

  def is_rung(self, epochs: int) -> bool:
    """Whether a decision falls after `epochs` epochs."""
    return epochs in self._at

  def _members(self, point: str) -> list[int]:
    return [j for j, p in enumerate(self.member_points) if p == point]

  def start(self, info, state) -> None:
    """At the fit's start (`info.start_epoch` epochs done): the records of the rungs passed,
    checked against the state's pruned members; later records dropped."""
    done = info.start_epoch
    old = []
    if done and self.path and os.path.exists(self.path):
      with open(self.path) as f:
        old = [json.loads(line) for line in f if line.strip()]
    kept = [r for r in old if r["epochs"] <= done]
    mon = info.program.real(jax.device_get(state.monitor))
    pruned = (np.asarray(mon.stop_reason) == early_stopping.PRUNED) & np.asarray(mon.should_stop)
    expected = {(b, r.rung) for e, rungs in self._at.items() if e <= done for b, r in rungs}
    recorded = {(r["bracket"], r["rung"]) for r in kept}
    stopped_by_records = np.zeros(len(self.member_points), bool)
    for r in kept:
      for p in set(r["points"]) - set(r["kept_points"]):
        stopped_by_records[self._members(p)] = True
    if recorded != expected or (stopped_by_records != pruned).any():
      raise ConfigError(f"'{self.path}' does not match the checkpoint this sweep resumes from "
                        f"(rung decisions of the first {done} epochs missing or different; the "
                        "file was cut or edited): restore it, or pass --overwrite to rerun")
    self.records = kept
    if self.path and distributed.is_primary():
      write_metrics(self.path, kept)

  def _score(self, rows_by: dict, mon, j: int, epoch: int) -> float:
    """Member j's validation accuracy of its selected weights after epoch `epoch`."""
    last = int(mon.stopped_epoch[j]) if bool(mon.should_stop[j]) else epoch
    best = int(mon.best_epoch[j])
    at = best if self.restore_best and best >= 0 else min(last, epoch)
    value = rows_by.get((self.member_names[j], at))
    return math.nan if value is None else float(value)

  def prune(self, info, state, epoch: int):
    """The decisions after epoch `epoch` (0-based): the state with the pruned members stopped."""
    program = info.program
    mon = program.real(jax.device_get(state.monitor))
    names = set(self.member_names)
    rows_by = {(r["member"], r["epoch"]): r.get("val_accuracy") for r in info.rows
               if r.get("member") in names and r["epoch"] <= epoch}
    pruned_members = (np.asarray(mon.stop_reason) == early_stopping.PRUNED) & \
        np.asarray(mon.should_stop)
    stop: list[int] = []
    for b, rung in self._at[epoch + 1]:
      alive = [p for p in self.bracket_points[b]
               if not pruned_members[self._members(p)].any()]
      scores = {}
      for p in alive:
        values = [self._score(rows_by, mon, j, epoch) for j in self._members(p)]
        scores[p] = float(np.mean(values)) if all(math.isfinite(v) for v in values) else math.nan
      kept = search.keep_top(scores, rung.keep, alive)
      record = {"bracket": b, "rung": rung.rung, "epochs": rung.epochs,
                "candidates": len(alive), "kept": len(kept), "points": alive,
                "scores": [scores[p] for p in alive], "kept_points": kept}
      self.records.append(record)
      for p in alive:
        if p not in kept:
          stop += self._members(p)
    if self.path and distributed.is_primary():
      write_metrics(self.path, self.records)
    return program.stop_members(state, stop, epoch)

  def survivors(self) -> list[str]:
    """The points of every bracket's last rung (those that were never pruned), in order."""
    out = []
    for b, points in enumerate(self.bracket_points):
      pruned = {p for r in self.records if r["bracket"] == b
                for p in set(r["points"]) - set(r["kept_points"])}
      out += [p for p in points if p not in pruned]
    return out

  def table(self) -> list[dict]:
    """One row per rung of every bracket (scikit-learn's `iter` / `n_resources` /
    `n_candidates`): decisions as recorded; a bracket's last rung lists its survivors."""
    rows = []
    survivors = set(self.survivors())
    for b, rungs in enumerate(self.brackets):
      for rung in rungs:
        record = next((r for r in self.records if r["bracket"] == b and r["rung"] == rung.rung),
                      None)
        if record is None:   # the last rung: nobody is pruned after it
          points = [p for p in self.bracket_points[b] if p in survivors]
          record = {"bracket": b, "rung": rung.rung, "epochs": rung.epochs,
                    "candidates": len(points), "kept": len(points), "points": points,
                    "scores": None, "kept_points": points}
        rows.append(record)
    return rows


def spec(method: str = "grid", factor: int = 3, min_epochs="exhaust") -> dict | None:
  """The search settings as the run records them (None: a grid, every point to the end).
  `min_epochs` may be given as text (a flag): digits become an int."""
  if isinstance(min_epochs, str) and min_epochs.strip().isdigit():
    min_epochs = int(min_epochs)
  if method == "grid":
    if factor != 3 or min_epochs != "exhaust":
      raise ConfigError("search_factor and search_min_epochs apply to a search; give "
                        "search='halving' or 'hyperband' (or drop them)")
    return None
  return {"method": method, "factor": factor, "min_epochs": min_epochs}


def schedule(search_spec: dict, points: int, num_epochs: int) -> list[list[search.Rung]]:
  """The brackets for `points` points trained for at most `num_epochs` epochs."""
  if search_spec["method"] == "halving":
    return [search.halving_schedule(points, search_spec["factor"], search_spec["min_epochs"],
                                    num_epochs)]
  return search.hyperband_brackets(num_epochs, search_spec["min_epochs"], search_spec["factor"])


def check(search_spec: dict | None, config, groups: list, point_labels: list[str], *,
          nested: bool, cluster: bool, processes: int) -> None:
  """ConfigError (one line) for a search that cannot run on this sweep, before anything
  compiles: bad settings (`search.validate`), points split over structural groups (a rung
  ranks the points of one program), nested CV, a job launcher, several processes, or a
  Hyperband whose point count is not its brackets' total."""
  if search_spec is None:
    return
  method = search_spec["method"]
  search.validate(method, factor=search_spec["factor"], min_epochs=search_spec["min_epochs"],
                  max_epochs=config.num_epochs,
                  n_candidates=len(point_labels) if method == "halving" else None)
  flag = f"--search={method}"
  if len(groups) > 1:
    raise ConfigError(f"{flag} ranks the points of one program, but this sweep has "
                      f"{len(groups)} structural groups (a key that is not numeric, e.g. "
                      "model.widths); sweep only numeric keys, or run one search per "
                      "structural value")
  if nested:
    raise ConfigError(f"{flag} does not combine with nested CV (cv.outer_folds); drop one")
  if cluster:
    raise ConfigError(f"{flag} runs its one program here; use --launcher=local")
  if processes > 1:
    raise ConfigError(f"{flag} runs in one process; drop --distributed (or the multi-host "
                      "settings)")
  if method == "hyperband":
    need = search.total_points(schedule(search_spec, len(point_labels), config.num_epochs))
    if len(point_labels) != need:
      raise ConfigError(f"--search=hyperband with these settings runs {need} points "
                        f"(its brackets' total), the sweep has {len(point_labels)}; give "
                        f"--samples={need} with --sample axes (or omit --samples), or "
                        f"{need} points")


def for_group(search_spec: dict, point_labels: list[str], member_points: list[str],
              member_names: list[str], num_epochs: int, *, restore_best: bool,
              path: str) -> Pruner:
  """The `Pruner` of a checked search (`check`) over the group's points."""
  brackets = schedule(search_spec, len(point_labels), num_epochs)
  bracket_points, start = [], 0
  for rungs in brackets:
    bracket_points.append(point_labels[start:start + rungs[0].candidates])
    start += rungs[0].candidates
  pruner = Pruner(brackets, bracket_points, member_points, member_names,
                  restore_best=restore_best, path=path)
  pruner.spec = dict(search_spec)
  return pruner


def write_table(workdir: str, pruner: Pruner, num_epochs: int) -> list[dict]:
  """sweep_rungs.md and .csv: one row per rung (bracket, rung, epochs, candidates, kept,
  best score, the points kept); returns the rows."""
  import csv
  rows = pruner.table()
  header = ["bracket", "rung", "epochs", "candidates", "kept", "best val acc", "kept points"]
  cells = []
  for r in rows:
    best = max((s for s in (r["scores"] or []) if math.isfinite(s)), default=None)
    cells.append([str(r["bracket"]), str(r["rung"]), str(r["epochs"]), str(r["candidates"]),
                  str(r["kept"]), "" if best is None else f"{100 * best:.2f}%",
                  ", ".join(r["kept_points"])])
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
  lines += ["", f"A rung ranks its points by validation accuracy (mean over seeds × folds, the "
            "selected weights at that epoch) and keeps the best `kept`; the others stop "
            f"(pruned). Selection and comparisons use only the {len(pruner.survivors())} "
            f"point(s) of the last rungs, which train on to num_epochs = {num_epochs} (or "
            "until early stopping)."]
  with open(os.path.join(workdir, "sweep_rungs.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
  with open(os.path.join(workdir, "sweep_rungs.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(header)
    w.writerows(cells)
  return rows
