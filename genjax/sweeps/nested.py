"""Nested cross-validation: the accuracy of a tuned model, without best-of-sweep optimism.

    genjax sweep --config=experiments/mnist1d_kfold.py --workdir=runs/nested \\
        --config.cv.refit=false --config.cv.outer_folds=5 --sweep='penalties.l2.strength=0,1e-4,1e-3'

* Outer folds: `cv.outer_folds` folds of the training split by cv.method's splitter (the
  non-repeated one for repeated_*), scikit-learn's, seeded by the data seed.
* Inner folds: inside each outer training part, cv.method's `cv.folds` folds (same splitter
  and seed, over that part's labels and groups).
* Every outer fold × point (× seed) × inner fold is a member of one program: one compile,
  or several programs of whole outer folds when the memory estimate says one would not fit.
  Member (o, p, k) has member id o·(K+1) + k (K inner folds), so it trains exactly as that
  member alone.
* Per outer fold o, the point with the highest inner validation accuracy (mean over its
  seeds × inner folds; the first of equal ones) is selected, refit on the whole outer
  training part for the median of its inner members' selected epochs + 1 (one refit per
  seed, member id o·(K+1) + K), and evaluated once on outer fold o's held-out part. All
  refits are one program, each member frozen after its own epoch count.

Reported (nested.json, nested.md):

    nested estimate = mean over outer folds of the refits' held-out accuracy (seeds averaged)
    95% CI = mean ± t_{0.975, O−1} · sqrt((1/O + n_out/n_in) · s²)   (`stats.corrected_mean_ci`:
             the outer training parts overlap)

with how often each point was selected, and the naive best-of-sweep score: the mean over
outer folds of the selected point's inner CV accuracy — biased upwards because it is a
maximum over points, downwards because inner models train on (K−1)/K of an outer training
part (which dominates depends on the task; the nested estimate has neither bias for a model
trained on an outer training part). The test split is not used. nested_members.csv has one row per inner
member; metrics.jsonl (inner members) and metrics_nested_refit.jsonl the epochs.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import time
from typing import Any

import numpy as np

from genjax.config import defaults
from genjax.run import refit as refit_lib, results as results_lib, setup as experiment
from genjax.train import hparams
from genjax.optim import penalties
from genjax.report import files as report
from genjax.sweeps import memory as member_memory, stats
from genjax.workdir import claims as wd, identity as run_identity
from genjax.data import augment
from genjax.data import splits as validation
from genjax.errors import ConfigError
from genjax.sweeps.points import apply_point, label, without_seed
from genjax.train import parallel
from genjax.train.fit import fit
from genjax.train.members import MemberPlan
from genjax.train.program import build_program

OUTPUTS = ("metrics.jsonl", "metrics_nested_refit.jsonl", "nested.json", "nested.md",
           "nested_members.csv", "tensorboard")
OUTER_METHOD = {"repeated_kfold": "kfold", "repeated_stratified_kfold": "stratified_kfold"}
MEMBER_COLUMNS = ("outer_fold", "point", "seed", "fold", "train_size", "val_size", "val_loss",
                  "val_accuracy", "selected_epoch", "stop_reason")


def _check_classes(labels: np.ndarray, folds: int, what: str, fix: str) -> None:
  classes, counts = np.unique(labels, return_counts=True)
  if folds > counts.min():
    raise ConfigError(f"{what}: {folds} folds exceed the {counts.min()} examples of class "
                      f"{classes[counts.argmin()]}; stratified folds need at most the smallest "
                      f"class count: {fix}")


def outer_splits(config, labels: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
  """The outer folds (module docstring): [(outer training part, outer held-out part)]."""
  method = OUTER_METHOD.get(config.cv.method, config.cv.method)
  outer = config.cv.outer_folds
  if "stratified" in method:
    _check_classes(labels, outer, f"cv.outer_folds={outer}",
                   "lower --config.cv.outer_folds")
  return validation.kfold_splits(labels, method=method, folds=outer, shuffle=config.cv.shuffle,
                                 seed=experiment.data_seed(config),
                                 groups=experiment.cv_groups(config, len(labels)))


def inner_plans(config, labels: np.ndarray, outer) -> list[list[MemberPlan]]:
  """Per outer fold, its inner folds as member plans (indices into the training split)."""
  groups = experiment.cv_groups(config, len(labels))
  out = []
  for o, (part, _) in enumerate(outer):
    if "stratified" in config.cv.method:
      _check_classes(labels[part], config.cv.folds,
                     f"cv.folds={config.cv.folds} inside outer fold {o} ({len(part)} examples)",
                     "lower --config.cv.folds or --config.cv.outer_folds")
    splits = validation.kfold_splits(
        labels[part], method=config.cv.method, folds=config.cv.folds, shuffle=config.cv.shuffle,
        seed=experiment.data_seed(config), repeats=config.cv.repeats,
        groups=None if groups is None else groups[part])
    stride = len(splits) + 1
    out.append([MemberPlan(o * stride + k, part[tr], part[va])
                for k, (tr, va) in enumerate(splits)])
  return out


@dataclasses.dataclass
class NestedPlan:
  """A nested sweep, checked: its base config, data, splits and programs' members."""
  base: Any
  setup: experiment.Setup
  outer: list                  # [(outer training part, outer held-out part)]
  inner: list                  # per outer fold: its inner fold plans
  points: list[dict]           # each point's varying values (its seed included)
  labels: list[str]            # each point's name, seed aside
  chunks: list[list[int]]      # outer folds per program
  capacity: str                # how the memory estimate was made

  def members(self, o: int) -> list[tuple[int, MemberPlan]]:
    """(point index, plan) of every inner member of outer fold o, point-major."""
    return [(i, MemberPlan(f.member_id, f.train_idx, f.val_idx,
                           hparams=hparams.member_values(p), seed=hparams.member_seed(p)))
            for i, p in enumerate(self.points) for f in self.inner[o]]


def plan(config, workdir: str, numeric: list[dict], names: dict | None = None) -> NestedPlan:
  """Every check — each point, the splits, masks, memory — before anything compiles."""
  if config.cv.refit:
    raise ConfigError("cv.refit does not apply to nested CV, which refits each outer fold's "
                      "selected point itself; set --config.cv.refit=false (for a final model, "
                      "run the plain sweep with cv.refit)")
  if any(hparams.route(k)[0] == "labels" for p in numeric for k in p):
    raise ConfigError("nested CV cannot sweep data.label_noise (each point would need its own "
                      "outer folds); fix the noise fraction, or use cv.outer_folds=0")
  fixed = {k: v for k, v in numeric[0].items() if all(p[k] == v for p in numeric)}
  config = apply_point(config, fixed)
  points = [{k: v for k, v in p.items() if k not in fixed} for p in numeric]
  base = config.copy_and_resolve_references()
  hparams.prepare_base(base, points)
  for point in numeric:
    defaults.validate(apply_point(config, point))
  s = experiment.prepare(base, workdir)
  for point in points:
    augment.validate(apply_point(base, point).data.augment, s.splits.input_shape)
  labels = s.splits.train_y
  outer = outer_splits(base, labels)
  inner = inner_plans(base, labels, outer)
  n = NestedPlan(base, s, outer, inner, points, [label(p, names) for p in numeric], [], "")
  every = [p for o in range(len(outer)) for _, p in n.members(o)]
  experiment.validate_plans(s, every)
  for point in numeric:
    penalties.validate_config(apply_point(config, point).penalties, s.model.param_shapes)
  seeds = len({hparams.member_seed(p) for p in points})
  parallel.resolve(base.parallel, num_members=len(outer) * seeds, batch_size=base.batch_size)
  per_outer = len(every) // len(outer)
  fit_members, n.capacity = member_memory.member_capacity(s, needed=len(every))
  if fit_members is not None and per_outer > fit_members:
    raise ConfigError(f"one outer fold's {per_outer} members (points × seeds × inner folds) do "
                      f"not fit in memory ({n.capacity}); use at most ~{fit_members}: fewer "
                      "points or cv.folds")
  step = len(outer) if fit_members is None else max(1, fit_members // per_outer)
  n.chunks = [list(range(i, min(i + step, len(outer)))) for i in range(0, len(outer), step)]
  return n


def _names(n: NestedPlan, subdir: str, c: int) -> tuple[str, str]:
  """(checkpoint subdir, metrics file) of program `c` (the plain names when there is one)."""
  if len(n.chunks) == 1:
    return subdir, "metrics.jsonl"
  return f"{subdir}_outer{c}", f"metrics_outer{c}.jsonl"


def outputs(n: NestedPlan) -> tuple[str, ...]:
  subdir = n.base.checkpoint.subdir
  chunks = [name for c in range(len(n.chunks)) for name in _names(n, subdir, c)]
  return OUTPUTS + tuple(chunks) + (subdir + "_nested_refit",)


def run(config, workdir: str, numeric: list[dict], *, recorded: list[dict],
        names: dict | None = None, overwrite: bool = False, progress: bool = True) -> list[dict]:
  """Nested CV of `numeric` points (one structural group); returns nested.json's outer rows.
  `recorded` (the sweep's points as given) is what the workdir's identity records."""
  t_start = time.time()
  n = plan(config, workdir, numeric, names)
  with wd.claim_workdir(workdir, n.base, kind="sweep", points=recorded, outputs=outputs(n),
                        overwrite=overwrite) as claim:
    done = wd.completed(claim, "nested.json")
    if done is not None:
      return done["outer"]
    members = _train_inner(n, workdir, resume=claim.resume, progress=progress)
    outer_rows = _refit(n, members, workdir, resume=claim.resume, progress=progress)
    record = _summary(n, members, outer_rows)
    record.update(wall_time_s=time.time() - t_start, provenance=run_identity.provenance(n.base))
    _write(workdir, record)
  return outer_rows


def _train_inner(n: NestedPlan, workdir: str, *, resume: bool, progress: bool) -> list[dict]:
  """Trains every inner member (by chunks of outer folds); one row per member."""
  s, rows = n.setup, []
  for c, chunk in enumerate(n.chunks):
    owners = [(o, i) for o in chunk for i, _ in n.members(o)]
    plans = [p for o in chunk for _, p in n.members(o)]
    member_names = [f"outer{o}/{n.labels[i]}"   # a point's seeds apart: one folder each
                    + (f"/seed{p.seed}" if p.seed is not None else "") + f"/fold{p.member_id}"
                    for (o, i), p in zip(owners, plans)]
    program = build_program(s, plans, member_names=member_names)
    subdir, metrics_name = _names(n, n.base.checkpoint.subdir, c)
    callbacks = experiment.callbacks_for(
        s, program, workdir, progress=progress, ckpt_subdir=subdir, metrics_name=metrics_name,
        label=f"nested: outer folds {chunk[0]}-{chunk[-1]}, {len(plans)} members")
    fitted = fit(program, callbacks, num_epochs=n.base.num_epochs, resume=resume)
    val = results_lib.evaluate_members(program, fitted, "val")
    for j, ((o, i), p) in enumerate(zip(owners, plans)):
      stride = len(n.inner[o]) + 1
      rows.append({
          "outer_fold": o, "point": n.labels[i], "point_index": i,
          "values": without_seed(n.points[i]),
          "seed": int(p.seed if p.seed is not None else n.base.seed),
          "fold": p.member_id - o * stride, "member_id": p.member_id,
          "train_size": len(p.train_idx), "val_size": len(p.val_idx),
          **{f"val_{k}": float(v[j]) for k, v in val.items()},
          "selected_epoch": int(fitted.selected_epoch[j]),
          "stop_reason": results_lib.stop_info(s.es, fitted.monitor, j)["stop_reason"]})
  return rows


def select(members: list[dict], o: int) -> str:
  """Outer fold o's point: the highest inner validation mean (the first of equal ones)."""
  mine = [m for m in members if m["outer_fold"] == o]
  means = {}
  for m in mine:
    means.setdefault(m["point"], []).append(m["val_accuracy"])
  return max(means, key=lambda name: float(np.mean(means[name])))


def _refit(n: NestedPlan, members: list[dict], workdir: str, *, resume: bool,
           progress: bool) -> list[dict]:
  """Each outer fold's selected point (one member per seed) refit on its outer training part,
  as one program (`genjax.run.refit`); each evaluated once on its outer held-out part. The
  outer rows."""
  refits, owners = [], []
  for o, (part, held_out) in enumerate(n.outer):
    name = select(members, o)
    mine = [m for m in members if m["outer_fold"] == o and m["point"] == name]
    member_id = o * (len(n.inner[o]) + 1) + len(n.inner[o])
    for i in sorted({m["point_index"] for m in mine}):
      plan = MemberPlan(member_id, part, np.zeros(0, np.int32),
                        hparams=hparams.member_values(n.points[i]),
                        seed=hparams.member_seed(n.points[i]))
      refits.append(refit_lib.Member(
          plan, [m["selected_epoch"] for m in mine], held_out=held_out,
          name=f"outer{o}/refit/{name}" + (f"/seed{plan.seed}" if plan.seed is not None else "")))
      owners.append((o, name, i, mine))
  refitted = refit_lib.refit(n.setup, refits, workdir, resume=resume, progress=progress,
                             name="nested_refit", label="nested: refits")
  scores = [{"seed": int(r.plan.seed if r.plan.seed is not None else n.base.seed),
             "epochs": done.epochs, **done.metrics} for r, done in zip(refits, refitted)]
  rows = []
  for o, (part, held_out) in enumerate(n.outer):
    mine = [sc for (oo, *_), sc in zip(owners, scores) if oo == o]
    owner = next(w for w in owners if w[0] == o)
    inner = [m["val_accuracy"] for m in owner[3]]
    rows.append({
        "outer_fold": o, "train_size": len(part), "held_out_size": len(held_out),
        "selected": owner[1], "selected_point": without_seed(n.points[owner[2]]),
        "inner_val_accuracy_mean": float(np.mean(inner)),
        "inner_val_accuracy_std": float(np.std(inner, ddof=1)) if len(inner) > 1 else 0.0,
        "epochs": mine[0]["epochs"],
        "accuracy": float(np.mean([sc["accuracy"] for sc in mine])),
        "loss": float(np.mean([sc["loss"] for sc in mine])), "per_seed": mine})
  return rows


def _summary(n: NestedPlan, members: list[dict], outer_rows: list[dict]) -> dict:
  """nested.json: the estimate and its CI, selection frequency, the naive score, members."""
  acc = [r["accuracy"] for r in outer_rows]
  n_in = float(np.mean([r["train_size"] for r in outer_rows]))
  n_out = float(np.mean([r["held_out_size"] for r in outer_rows]))
  names = list(dict.fromkeys(n.labels))
  inner_means = {name: float(np.mean([m["val_accuracy"] for m in members if m["point"] == name]))
                 for name in names}
  return {
      "outer": outer_rows,
      "estimate": {"accuracy": stats.corrected_mean_ci(acc, n_in, n_out),
                   "loss_mean": float(np.mean([r["loss"] for r in outer_rows]))},
      "naive_best_of_sweep": {
          "accuracy_mean": float(np.mean([r["inner_val_accuracy_mean"] for r in outer_rows])),
          "what": "the selected point's inner CV accuracy, mean over outer folds: biased up "
                  "as a maximum over points, down as its models train on (K−1)/K of each outer "
                  "training part"},
      "selection_frequency": {name: sum(r["selected"] == name for r in outer_rows)
                              for name in names},
      "inner_val_accuracy_mean": inner_means,
      "outer_folds": len(n.outer), "inner_folds": len(n.inner[0]),
      "points": len(names), "seeds": len({m["seed"] for m in members}),
      "method": {"outer": OUTER_METHOD.get(n.base.cv.method, n.base.cv.method),
                 "inner": n.base.cv.method, "data_seed": experiment.data_seed(n.base)},
      "programs": len(n.chunks), "memory_estimate": n.capacity,
      "member_results": [{k: v for k, v in m.items() if k != "point_index"} for m in members],
  }


@report.primary_only
def _write(workdir: str, record: dict) -> None:
  with open(os.path.join(workdir, "nested_members.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(MEMBER_COLUMNS)
    for m in record["member_results"]:
      w.writerow([m[c] for c in MEMBER_COLUMNS])
  with open(os.path.join(workdir, "nested.md"), "w") as f:
    f.write(markdown(record))
  report.write_json(os.path.join(workdir, "nested.json"), record)


def markdown(record: dict) -> str:
  """nested.md: per outer fold, the selection frequency, the estimate and the naive score."""
  est = record["estimate"]["accuracy"]
  o, k = record["outer_folds"], record["inner_folds"]
  lines = ["| outer fold | selected point | inner val acc (mean ± std) | refit epochs | "
           "held-out acc |", "|---|---|---|---|---|"]
  for r in record["outer"]:
    lines.append(f"| {r['outer_fold']} | {r['selected']} | "
                 f"{100 * r['inner_val_accuracy_mean']:.2f}% ± "
                 f"{100 * r['inner_val_accuracy_std']:.2f} | {r['epochs']} | "
                 f"{100 * r['accuracy']:.2f}% |")
  lines += ["", "| point | times selected | inner val acc (mean over outer folds) |",
            "|---|---|---|"]
  for name, count in record["selection_frequency"].items():
    lines.append(f"| {name} | {count} / {o} | {100 * record['inner_val_accuracy_mean'][name]:.2f}% |")
  ci = est["ci95"]
  ci_text = "–" if ci is None else f"[{100 * ci[0]:.2f}, {100 * ci[1]:.2f}]%"
  lines += ["", f"**Nested estimate: {100 * est['mean']:.2f}% ± {100 * (est['std'] or 0):.2f}** "
            f"(mean ± std over {o} outer folds; 95% CI {ci_text}, {est['test']}: factor "
            f"1/O + n_out/n_in = {est['factor']:.3f}, df = {o - 1}, as the outer training parts "
            "overlap).",
            f"Naive best-of-sweep: {100 * record['naive_best_of_sweep']['accuracy_mean']:.2f}% "
            f"({record['naive_best_of_sweep']['what']}).",
            f"{o} outer × {k} inner folds ({record['method']['outer']} / "
            f"{record['method']['inner']}, scikit-learn, data seed "
            f"{record['method']['data_seed']}), {record['points']} point(s) × "
            f"{record['seeds']} seed(s); {record['programs']} program(s) for the inner members "
            "and one for the refits. The test split is not used."]
  return "\n".join(lines) + "\n"
