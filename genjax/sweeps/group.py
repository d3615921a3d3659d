"""The training side of `genjax.sweep`: one program for every numeric point × fold.

Members are laid out point-major: member (p, k) is fold k of point p, with
member id k (so every point sees the keys `genjax train` would give fold k)
and `hparams` holding the point's numeric values.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import time
from typing import Any

import numpy as np

from genjax.config import defaults
from genjax.run import results as results_lib, setup as experiment
from genjax.train import hparams
from genjax.optim import penalties
from genjax.report.files import primary_only, write_json
from genjax.report import tables as number_format
from genjax.workdir import claims as wd, identity as run_identity
from genjax.data import augment, label_noise
from genjax.errors import ConfigError
from genjax.sweeps import compare as sweep_compare, memory as member_memory, select as sweep_select
from genjax.sweeps import pruning, sample_plots
from genjax.sweeps.plots import plot_sweep, plot_sweep_curves
from genjax.sweeps.points import (apply_point, distinct_names, label, point_name, value_texts,
                               without_seed)
from genjax.train.members import MemberPlan

OUTPUTS = ("metrics.jsonl", "sweep.json", "sweep.csv", "sweep.md", "sweep.tex", "sweep_metrics.png",
           "sweep_curves.png", "tensorboard", "sweep_members.csv", "sweep_compare.md",
           "sweep_compare.csv", "sweep_compare.tex", "sweep_sampled.png",
           "sweep_best_so_far.png")
def _check_memory(s, members: int) -> None:
  """Refuses a program of `members` members that `member_capacity` says will not fit."""
  fit, how = member_memory.member_capacity(s, needed=members)
  if fit is not None and members > fit:
    raise ConfigError(f"the sweep's {members} members do not fit in memory ({how}); "
                      f"use at most ~{fit} members (points × folds) per program: fewer values "
                      "per --sweep axis, or fewer cv.folds")


@dataclasses.dataclass
class GroupPlan:
  """A structural group, checked: its base config, data, member plans and names."""
  base: Any
  setup: experiment.Setup
  plans: list[MemberPlan]
  folds: list[MemberPlan]
  names: list[str]


def plan_group(config, workdir: str, numeric: list[dict], *, here: bool = True) -> GroupPlan:
  """Every check of one structural group — each point's values, data, masks, memory —
  before anything compiles or is written. Raises ConfigError (one line). `here=False`: the
  group will run on other machines (a cluster job), so what depends on this machine's devices
  (memory, device counts, bfloat16 support) is left to the job's own checks."""
  # A value shared by every point is plain config; only varying values become member arrays.
  fixed = {k: v for k, v in numeric[0].items() if all(p[k] == v for p in numeric)}
  config = apply_point(config, fixed)
  points = [{k: v for k, v in p.items() if k not in fixed} for p in numeric]
  base = config.copy_and_resolve_references()
  hparams.prepare_base(base, points)   # each swept key's adjustment of the shared config
  noise_key = next((k for k in (points[0] if points else {}) if hparams.route(k)[0] == "labels"),
                   None)
  swept_noise = noise_key is not None
  s = experiment.prepare(base, workdir, here=here)
  folds = experiment.member_plans(base, s.splits.train_y)
  if here:   # the member count first: a grid too large is refused before its points' checks
    _check_memory(s, len(points) * len(folds))
  for point in numeric:   # every point's values, as `genjax train` would check them alone
    defaults.validate(apply_point(config, point))
  for point in points:
    checked = apply_point(base, point)
    augment.validate(checked.data.augment, s.splits.input_shape)
    if swept_noise:
      label_noise.check_fraction(checked.data.label_noise)
  if swept_noise:
    # Per point: its noisy labels, and folds drawn from them as `genjax train` would.
    plans = []
    for point in points:
      noisy = label_noise.corrupt(s.splits.train_y, s.splits.num_classes, point[noise_key],
                                  experiment.data_seed(base))
      plans += [MemberPlan(f.member_id, f.train_idx, f.val_idx,
                           hparams=hparams.member_values(point), labels=noisy,
                           seed=hparams.member_seed(point))
                for f in experiment.member_plans(base, noisy)]
    folds = plans[:len(plans) // len(points)]
  else:
    plans = [MemberPlan(f.member_id, f.train_idx, f.val_idx,
                        hparams=hparams.member_values(point), seed=hparams.member_seed(point))
             for point in points for f in folds]
  experiment.validate_plans(s, plans, here=here)
  for point in numeric:   # masks of every point's penalties (strength 0 included)
    penalties.validate_config(apply_point(config, point).penalties, s.model.param_shapes)
  names = [f"{name}/fold{f.member_id}" for name in distinct_names(numeric) for f in folds]
  return GroupPlan(base, s, plans, folds, names)


def run_group(config, workdir: str, numeric: list[dict], *, structural: dict,
              overwrite: bool = False, progress: bool = True,
              points: list[dict] | None = None, baseline: str | None = None,
              select: bool = True, labels: dict | None = None,
              test_for_all_points: bool = False, sampling: dict | None = None,
              search: dict | None = None, p_adjust: str = "holm",
              run_names: list[str] | None = None) -> list[dict]:
  """Trains every numeric point × fold of one structural group as one program.

  `points` (default: the group's own) is what the workdir's identity records; `baseline`
  the point the comparison tables test against (default: the first); `labels` the points'
  given names (`sweep_grid.named`); `select` writes selected.json (`sweep_select`; off in a
  structural sweep's group processes, whose parent selects); `sampling` how sampled points
  were drawn (`Samples.record()`: sweep.json's "sampling", and the sampled plots); `search`
  a checked successive halving or Hyperband (`pruning.spec`, `pruning.check`); `p_adjust`
  the comparison table's multiplicity adjustment (`stats.adjust_p`); `run_names` the points'
  display names when this is a structural group's process (default: from `labels`). A rerun of
  a finished group returns its stored rows and writes nothing.
  """
  t_start = time.time()
  g = plan_group(config, workdir, numeric)
  outputs = OUTPUTS + pruning.OUTPUTS + sweep_select.OUTPUTS + (g.base.checkpoint.subdir,
                                              g.base.checkpoint.subdir + "_refit")
  identity_points = points if points is not None else [{**structural, **p} for p in numeric]
  with wd.claim_workdir(workdir, g.base, kind="sweep", points=identity_points,
                        outputs=outputs, overwrite=overwrite,
                        options=options(test_for_all_points, search, baseline,
                                        p_adjust)) as claim:
    done = wd.completed(claim, "sweep.json")
    if done is not None:
      return done["rows"]
    pruner = _pruner(g, workdir, numeric, structural, labels, search)
    program, fitted = experiment.train(
        g.setup, g.plans, workdir, resume=claim.resume, progress=progress,
        label=f"sweep {len(numeric)} points x {len(g.folds)} folds", member_names=g.names,
        pruner=pruner, tensorboard_runs=tensorboard_runs(g, numeric, structural, labels,
                                                         run_names))
    rows, members = _rows(g, program, fitted, numeric, structural)
    return finish(config, workdir, rows, members, baseline=baseline, select=select,
                  labels=labels, test_for_all_points=test_for_all_points,
                  resume=claim.resume, progress=progress, sampling=sampling, pruner=pruner,
                  p_adjust=p_adjust,
                  weights=experiment.selected_tree(program, fitted.selected_params),
                  record={"wall_time_s": time.time() - t_start, "members": len(g.plans),
                          "epochs_run": fitted.epochs_run, "epoch_loop": program.epoch_loop,
                          "member_layout": program.member_layout,
                          "convolutions": program.convolutions,
                          "parallel": program.placement,
                          "compaction": program.member_epochs(fitted.monitor,
                                                              fitted.epochs_run),
                          "precision": g.base.get("precision", "float32"),
                          "provenance": run_identity.provenance(g.base),
                          "group_config": config_fingerprint(config)})


def config_fingerprint(config) -> str:
  """sha256 of a group's config as its sweep was given it (before any point is applied):
  what a structural sweep's parent checks a group's sweep.json against."""
  import hashlib
  text = json.dumps(run_identity.config_dict(config.copy_and_resolve_references()),
                    sort_keys=True)
  return hashlib.sha256(text.encode()).hexdigest()


def _pruner(g: GroupPlan, workdir: str, numeric: list[dict], structural: dict,
            labels: dict | None, search: dict | None):
  """The group's `pruning.Pruner` for `search`, or None (a grid)."""
  if search is None:
    return None
  k = len(g.folds)
  member_points = [label(without_seed({**structural, **numeric[j // k]}), labels)
                   for j in range(len(g.plans))]
  es = g.setup.es
  return pruning.for_group(search, list(dict.fromkeys(member_points)), member_points, g.names,
                           g.base.num_epochs,
                           restore_best=es is not None and es.restore_best_weights,
                           path=os.path.join(workdir, pruning.RUNGS))


def tensorboard_runs(g: GroupPlan, numeric: list[dict], structural: dict,
                     labels: dict | None, run_names: list[str] | None = None) -> list[tuple]:
  """Each member's TensorBoard run folder parts: its point's display name (the user's name,
  structural values included), its seed when seeds are swept, its fold."""
  per_point = len(g.plans) // len(numeric)
  out = []
  for j, plan in enumerate(g.plans):
    point = {**structural, **numeric[j // per_point]}
    name = run_names[j // per_point] if run_names else label(point, labels)
    seed = (f"seed{point[hparams.SEED_KEY]}",) if hparams.SEED_KEY in point else ()
    out.append((name, *seed, f"fold{plan.member_id}"))
  return out


def options(test_for_all_points: bool, search: dict | None = None, baseline: str | None = None,
            p_adjust: str = "holm") -> dict | None:
  """The sweep flags a rerun must repeat to resume (they change its outputs); defaults are
  left out, so that runs from before a flag existed resume."""
  out = {**({"test_for_all_points": True} if test_for_all_points else {}),
         **({"search": search} if search else {}),
         **({"baseline": baseline} if baseline is not None else {}),
         **({"p_adjust": p_adjust} if p_adjust != "holm" else {})}
  return out or None


TEST_CAPTION = sweep_compare.TEST_CAPTION


def finish(config, workdir: str, rows: list[dict], members: list[dict], *, baseline, select: bool,
           labels: dict | None, test_for_all_points: bool, resume: bool, progress: bool,
           record: dict, sampling: dict | None = None, pruner=None,
           p_adjust: str = "holm", weights=None) -> list[dict]:
  """Names the points, selects on validation (selected.json), writes the tables, plots,
  every member's selected weights (`weights`, `setup.selected_tree` of a group that trained
  here, as `selected/`) and sweep.json; returns the rows as stored.

  The test split is reported for the selected point only (selected.json), unless
  `test_for_all_points`: then every point's test metrics appear too, captioned
  TEST_CAPTION. A structural group's process (`select=False`) stores every point's test
  metrics in its sweep.json for its parent, which selects and reports. Sampled points
  (`sampling`, `Samples.record()`) get the sampled plots and sweep.json's "sampling". A
  search (`pruner`) selects and compares among the points of its last rungs only, and writes
  sweep_rungs.md/.csv and sweep.json's "search".
  """
  relabel(rows, members, labels)
  for r in rows:   # `name` and `auto_name`: automatic (seed included); `label`: as tables show
    r["auto_name"] = r["name"]
  table = sweep_compare.over_seeds(rows, members)
  compared, note, searched = members, None, {}
  if pruner is not None:
    survivors = set(pruner.survivors())
    table = [r for r in table if r["name"] in survivors]
    compared = [m for m in members if m["point"] in survivors]
    note = (f"Only the {len(survivors)} point(s) that reached the last rung are compared "
            f"(--search={pruner.spec['method']}; sweep_rungs.md).")
    asked = baseline if baseline is not None else members[0]["point"]
    if asked not in survivors:   # said, never silently replaced
      first = next(m["point"] for m in members if m["point"] in survivors)
      note += (f" The baseline {asked} was pruned at a rung: the points are compared with "
               f"{first}, the first point of the last rung.")
      baseline = None
    searched = {"search": {**pruner.spec,
                           "rungs": pruning.write_table(workdir, pruner, config.num_epochs),
                           "survivors": pruner.survivors()}}
  selected = None
  if select:
    selected = sweep_select.select(config, workdir, table, compared, resume=resume,
                                   progress=progress)
  show = test_for_all_points or not select
  if not show:
    rows, members = _without_test(rows), _without_test(members)
  write_outputs(workdir, rows, members, show_test=test_for_all_points,
                named=bool(labels), selected=selected, sampling=sampling,
                rungs=[r["epochs"] for r in searched["search"]["rungs"]
                       if r["kept"] < r["candidates"]] if searched else ())
  sweep_compare.write(workdir, members, baseline, show_test=show, note=note,
                      only=None if pruner is None else set(pruner.survivors()),
                      p_adjust=p_adjust)
  if weights is not None:   # every member's selected weights: `genjax.load_run(workdir)`
    experiment.write_selected(workdir, weights)
  write_json(os.path.join(workdir, "sweep.json"),
             {"rows": rows, "member_results": members,
              "test_for_all_points": bool(test_for_all_points),
              "comparisons": sweep_compare.comparisons(compared, baseline, show_test=show,
                                                       p_adjust=p_adjust),
              "selected": selected, **({"sampling": sampling} if sampling else {}), **searched,
              **record})
  return rows


def relabel(rows: list[dict], members: list[dict], labels: dict | None) -> None:
  """Sets each row's `label` and each member's `point` to the point's name (seed aside)."""
  for r in rows:
    r["label"] = label(r["point"], labels)
  for m in members:
    m["point"] = label(m["values"], labels)


def _without_test(records: list[dict]) -> list[dict]:
  return [{k: v for k, v in r.items() if not k.startswith("test_")} for r in records]


def _rows(g: GroupPlan, program, fitted, numeric: list[dict], structural: dict):
  """(rows, members). Rows, per point: validation mean ± std over folds, its fold ensemble's
  test, gap, epochs. Members: one row each (`sweep_compare`), its own test metrics."""
  s = g.setup
  # Each member is scored on its own labels (noisy ones under swept label noise).
  val = results_lib.evaluate_members(program, fitted, "val")
  train = results_lib.evaluate_members(program, fitted, "train")
  probs = results_lib.test_probabilities(program, fitted, s)
  y_test = s.x_test()[1]
  rows, k = [], len(g.folds)
  for i, point in enumerate(numeric):
    members = list(range(i * k, (i + 1) * k))
    # The test split, once per point: its fold ensemble (or its one hold-out model).
    test = results_lib.ensemble_test(probs[i * k:(i + 1) * k], y_test)
    val_acc = [float(val["accuracy"][j]) for j in members]
    info = [results_lib.stop_info(s.es, fitted.monitor, j) for j in members]
    rows.append({
        "point": {**structural, **point},
        "name": point_name({**structural, **point}),
        "folds": k,
        "val_accuracy_mean": float(np.mean(val_acc)),
        "val_accuracy_std": float(np.std(val_acc, ddof=1)) if k > 1 else 0.0,
        "val_loss_mean": float(np.mean([val["loss"][j] for j in members])),
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "gap_accuracy": float(np.mean([train["accuracy"][j] - val["accuracy"][j]
                                       for j in members])),
        "best_epoch_median": float(np.median(fitted.selected_epoch[members])),
        "stop_reasons": ",".join(sorted({x["stop_reason"] for x in info})),
        "curve": _mean_curve(fitted.rows, g.names[i * k:(i + 1) * k]),
    })
  members = []
  for j, plan in enumerate(program.plans):
    point = {**structural, **numeric[j // k]}
    test = results_lib.ensemble_test(probs[j:j + 1], y_test)
    members.append({
        "point": point_name(without_seed(point)), "values": without_seed(point),
        "seed": int(plan.seed if plan.seed is not None else g.base.seed),
        "fold": int(plan.member_id), "train_size": len(plan.train_idx),
        "val_size": len(plan.val_idx),
        **{f"val_{name}": float(v[j]) for name, v in val.items()},
        "selected_epoch": int(fitted.selected_epoch[j]),
        "stop_reason": results_lib.stop_info(s.es, fitted.monitor, j)["stop_reason"],
        **{f"test_{name}": v for name, v in test.items()}})
  return rows, members


def _mean_curve(rows, member_names):
  """Per epoch, the mean validation loss over the point's folds still training."""
  by_epoch: dict = {}
  for r in rows:
    if r.get("member") in member_names:
      by_epoch.setdefault(r["epoch"], []).append(r["val_loss"])
  return [[e, float(np.mean(v))] for e, v in sorted(by_epoch.items())]


def read_rows(workdir: str) -> list[dict]:
  with open(os.path.join(workdir, "sweep.json")) as f:
    return json.load(f)["rows"]


def read_members(workdir: str) -> list[dict]:
  """The per-member results of a finished group (`sweep_compare`)."""
  with open(os.path.join(workdir, "sweep.json")) as f:
    return json.load(f)["member_results"]


COLUMNS = [("val_accuracy_mean", "val acc"), ("val_accuracy_std", "± std"),
           ("test_accuracy", "test acc"), ("gap_accuracy", "gap (acc)"),
           ("best_epoch_median", "best epoch (median)"), ("stop_reasons", "stop")]


def _columns(show_test: bool):
  return [(c, h) for c, h in COLUMNS if show_test or c != "test_accuracy"]


def _caption(rows: list[dict], show_test: bool, selected: dict | None) -> str:
  """The table's footnote: what the numbers are, and where the test split was used."""
  seeds, folds = rows[0].get("seeds", 1), rows[0]["folds"]
  over = (f"{seeds} seed(s) × {folds} fold(s)" if seeds > 1 else
          f"{folds} fold(s)" if folds > 1 else "the one hold-out model (std 0)")
  text = (f"val acc: mean ± std over {over} per point, at each member's selected epoch; "
          "gap: train − validation accuracy.")
  if selected is not None:
    test = selected["test"]["accuracy"]
    text += (f" Selected on validation: {selected['name']} (test accuracy "
             f"{100 * test:.2f}%" + (f"; refit on the whole training split "
                                     f"{100 * selected['test_refit']['accuracy']:.2f}%"
                                     if "test_refit" in selected else "") + ", selected.json).")
  if show_test:
    text += (" Test shown for all points: not for selection (each point's fold ensemble, or "
             "its one hold-out model; the mean over seeds).")
  elif selected is not None:
    text += " The test split is reported for the selected point only."
  return text


@primary_only
def write_outputs(workdir: str, rows: list[dict], members: list[dict] | None = None, *,
                  show_test: bool = False, named: bool = False,
                  selected: dict | None = None, sampling: dict | None = None,
                  rungs: list[int] = ()) -> None:
  """sweep.csv, sweep.md, sweep.tex and the plots: one row per point, over its seeds × folds
  (`sweep_compare.over_seeds`). Test accuracy only with `show_test` (captioned so);
  `named` points are one 'point' column instead of a column per swept key (sweep.csv
  has both). Sampled points (`sampling`) add sweep_sampled.png and sweep_best_so_far.png
  (`sample_plots`), and the caption says how they were drawn."""
  os.makedirs(workdir, exist_ok=True)
  rows = sweep_compare.over_seeds(rows, members or [])
  keys = sorted({k for r in rows for k in r["point"]})
  columns = _columns(show_test)
  with open(os.path.join(workdir, "sweep.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["point"] + keys + [c for c, _ in columns])
    for r in rows:
      w.writerow([r["name"]] + [r["point"].get(k, "") for k in keys] + [r[c] for c, _ in columns])
  shown = ["point"] if named else keys
  texts = ({"point": [r["name"] for r in rows]} if named else
           {k: value_texts([r["point"].get(k, "") for r in rows]) for k in keys})

  def cells(i, r):
    out = [texts[k][i] for k in shown]
    for c, _ in columns:
      out.append({"val_accuracy_mean": number_format.accuracy_cell(r),
                  "val_accuracy_std": number_format.std_cell(r),
                  "test_accuracy": number_format.accuracy_cell(r, "test_accuracy"),
                  "gap_accuracy": ("–" if number_format.divergence(r) == "no_model" else
                                   f"{100 * r['gap_accuracy']:+.2f} pt"),
                  "best_epoch_median": f"{r['best_epoch_median']:g}",
                  "stop_reasons": r["stop_reasons"]}[c])
    return out

  header = shown + [h for _, h in columns]
  caption = _caption(rows, show_test, selected)
  notes = number_format.diverged_notes(rows)
  if notes:
    caption += " " + notes
  if sampling:
    caption += f" Points drawn: {sample_plots.describe(sampling)}."
  md_cell = lambda c: c.replace("|", "\\|") if c else "–"  # noqa: E731
  md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  md += ["| " + " | ".join(md_cell(c) for c in cells(i, r)) + " |" for i, r in enumerate(rows)]
  with open(os.path.join(workdir, "sweep.md"), "w") as f:
    f.write("\n".join(md + ["", caption]) + "\n")
  esc = sweep_compare.tex_escape
  tex = [r"\begin{tabular}{" + "l" * len(shown) + "r" * len(columns) + "}", r"\hline",
         " & ".join(esc(h) for h in header) + r" \\", r"\hline"]
  tex += [" & ".join(esc(c) for c in cells(i, r)) + r" \\" for i, r in enumerate(rows)]
  tex += [r"\hline", r"\end{tabular}", "% " + esc(caption)]
  with open(os.path.join(workdir, "sweep.tex"), "w") as f:
    f.write("\n".join(tex) + "\n")
  plot_sweep(os.path.join(workdir, "sweep_metrics.png"), rows, keys, show_test=show_test)
  plot_sweep_curves(os.path.join(workdir, "sweep_curves.png"), rows, rungs)
  if sampling:
    sample_plots.plot_sampled(os.path.join(workdir, "sweep_sampled.png"), rows, sampling)
    sample_plots.plot_best_so_far(os.path.join(workdir, "sweep_best_so_far.png"), rows,
                                  sampling)
