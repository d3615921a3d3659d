"""Per-member sweep results and paired comparisons against a baseline point.

`member_rows` (from `sweep_run`) holds one row per member of a sweep: its point (the seed
aside), seed, fold, train/validation sizes, validation metrics at its selected epoch, selected
epoch, stop reason, and that member's own test metrics. They are written as
`sweep_members.csv`; everything an analysis needs, without reading metrics.jsonl.

`comparisons(members, baseline, p_adjust)` groups members by point, a (seeds, folds) array of
validation accuracy each, and pairs every point with the baseline fold by fold:

* the design: the folds are fixed (one `data.split_seed` for every seed), so a point's seeds
  are averaged within each fold and the J folds (× cv repeats) are the repetitions of the
  corrected resampled t-test (`stats.fixed_folds_t`; one fold, a hold-out: no p-value);
* the family: the p-values of all points against the baseline are adjusted together
  (`stats.adjust_p`: Holm by default, Benjamini–Hochberg, or none);
* robust summaries (`genjax.sweeps.robust`, rliable's definitions): each point's
  interquartile mean with a stratified bootstrap interval, and its probability of
  improvement over the baseline;
* members that diverged (`genjax.report.tables.DIVERGED_REASONS`) are counted and marked.

With ≥ 2 seeds it adds a bootstrap CI over seeds of the test-accuracy difference. Written as
`sweep_compare.md` / `.tex` / `.csv`, the design, test and adjustment named in a footnote.
`over_seeds` turns sweep rows into table rows with seeds as repetitions (sweep.md, .csv, .tex
and the plots), not a plotted hyperparameter.
"""

from __future__ import annotations

import csv
import os

import numpy as np

from genjax.train import hparams
from genjax.report.tables import DIVERGED_REASONS
from genjax.report.files import primary_only
from genjax.sweeps import robust, stats
from genjax.errors import ConfigError
from genjax.sweeps.points import point_name, without_seed

TEST_CAPTION = "test shown for all points: not for selection"
MEMBER_COLUMNS = ("point", "seed", "fold", "train_size", "val_size", "val_loss", "val_accuracy",
                  "selected_epoch", "stop_reason", "test_loss", "test_accuracy")


def _grid(members: list[dict], name: str, key: str):
  """(seeds, folds) array of `key` for point `name`, and its (seed, fold) labels."""
  mine = [m for m in members if m["point"] == name]
  seeds = sorted({m["seed"] for m in mine})
  folds = sorted({m["fold"] for m in mine})
  out = np.full((len(seeds), len(folds)), np.nan)
  for m in mine:
    out[seeds.index(m["seed"]), folds.index(m["fold"])] = m[key]
  return out, (seeds, folds)


def point_names(members: list[dict]) -> list[str]:
  """The compared points, in the order they first appear."""
  return list(dict.fromkeys(m["point"] for m in members))


def check_baseline(baseline: str | None, names: list[str]) -> str:
  """The baseline's name (default: the first point); ConfigError listing the names."""
  if baseline is None:
    return names[0]
  if baseline not in names:
    raise ConfigError(f"--baseline={baseline!r} is not a point of this sweep; its points are: "
                      f"{', '.join(names)}")
  return baseline


def fold_count(config) -> int:
  """The members one seed of a point trains: 1 (hold-out) or its folds (× repeats)."""
  if config.cv.method == "none":
    return 1
  return config.cv.folds * (config.cv.repeats if config.cv.method.startswith("repeated") else 1)


def check_paired(names: list[str], configs: list, baseline: str | None) -> None:
  """Before anything trains: every point has the baseline's seeds and folds, which the
  paired comparison (`comparisons`) needs; ConfigError naming the first point that differs.
  `names[i]` is the point (seed aside) whose config with one seed is `configs[i]`."""
  keys: dict = {}
  for name, cfg in zip(names, configs):
    seeds, folds = keys.setdefault(name, (set(), set()))
    seeds.add(int(cfg.seed))
    folds.add(fold_count(cfg))
  base = check_baseline(baseline, list(keys))
  b_seeds, b_folds = keys[base]
  for name, (seeds, folds) in keys.items():
    if seeds != b_seeds or folds != b_folds:
      what = (f"seeds {sorted(seeds)} against {sorted(b_seeds)}" if seeds != b_seeds else
              f"{sorted(folds)} fold(s) against {sorted(b_folds)}")
      raise ConfigError(f"point {name!r} has {what} of the baseline {base!r}: points are "
                        "compared seed by seed and fold by fold; give every point the same "
                        "seeds and cv settings, or sweep them separately")


def comparisons(members: list[dict], baseline: str | None = None, *,
                show_test: bool = True, p_adjust: str = "holm") -> list[dict]:
  """One entry per point (see the module docstring); the baseline's has no difference.
  Test metrics (mean, bootstrap CI) only with `show_test`."""
  names = point_names(members)
  base = check_baseline(baseline, names)
  b_val, b_keys = _grid(members, base, "val_accuracy")
  if show_test:
    b_test, _ = _grid(members, base, "test_accuracy")
  out = []
  for name in names:
    val, keys = _grid(members, name, "val_accuracy")
    mine = [m for m in members if m["point"] == name]
    entry = {"point": name, "baseline": base, "seeds": len(keys[0]), "folds": len(keys[1]),
             "val_accuracy_mean": float(np.mean(val)),
             "val_accuracy_std": float(np.std(val, ddof=1)) if val.size > 1 else 0.0,
             "val_accuracy_iqm": _robust(robust.iqm_interval, val),
             "diverged_members": sum(m.get("stop_reason") in DIVERGED_REASONS for m in mine)}
    if show_test:
      test, _ = _grid(members, name, "test_accuracy")
      entry["test_accuracy_mean"] = float(np.mean(test))
    if name != base:
      if keys != b_keys:
        raise ConfigError(f"point {name!r} has other (seed, fold) members than the baseline "
                          f"{base!r}; compared points need the same seeds and folds")
      n_train = float(np.mean([m["train_size"] for m in mine]))
      n_val = float(np.mean([m["val_size"] for m in mine]))
      entry["val_accuracy_difference"] = stats.fixed_folds_t(val, b_val, n_train, n_val)
      entry["probability_of_improvement"] = _robust(robust.probability_of_improvement, val,
                                                    b_val)
      if show_test and len(keys[0]) >= 2:
        entry["test_accuracy_difference"] = stats.bootstrap_ci_over_seeds(test, b_test)
    out.append(entry)
  _adjust(out, p_adjust)
  return out


def _robust(fn, *grids):
  """`fn(*grids)`, or None where a member's result is not finite (a diverged member)."""
  if not all(np.isfinite(g).all() for g in grids):
    return None
  return fn(*grids)


def _adjust(entries: list[dict], method: str) -> None:
  """Adds "p_adjusted", "p_adjust" and "family" (the tests adjusted together) to each
  difference: one family, every point against the baseline that has a p-value."""
  diffs = [e["val_accuracy_difference"] for e in entries if "val_accuracy_difference" in e]
  adjusted = stats.adjust_p([d["p_value"] for d in diffs], method)
  family = sum(p is not None for p in adjusted)
  for d, p in zip(diffs, adjusted):
    d.update(p_adjusted=p, p_adjust=method, family=family)


def over_seeds(rows: list[dict], members: list[dict]) -> list[dict]:
  """Table rows with seeds as repetitions, not a hyperparameter: one row per point (seed
  aside) whose validation mean ± std are over all its seeds × folds, test and gap the means
  over its seeds' rows, best epoch the median over its members. Rows without a seed: as given."""
  if not any(hparams.SEED_KEY in r["point"] for r in rows):
    return [{**r, "name": r.get("label", r["name"])} for r in rows]
  out: dict[str, dict] = {}
  for r in rows:
    point = without_seed(r["point"])
    name = r.get("label") or point_name(point)
    out.setdefault(name, {"point": point, "rows": []})["rows"].append(r)
  table = []
  for name, entry in out.items():
    mine, own = [m for m in members if m["point"] == name], entry["rows"]
    val = np.array([m["val_accuracy"] for m in mine])
    curves: dict = {}
    for r in own:
      for epoch, value in r["curve"]:
        curves.setdefault(epoch, []).append(value)
    table.append({
        "point": entry["point"], "name": name, "folds": own[0]["folds"], "seeds": len(own),
        "val_accuracy_mean": float(val.mean()),
        "val_accuracy_std": float(val.std(ddof=1)) if val.size > 1 else 0.0,
        "val_loss_mean": float(np.mean([m["val_loss"] for m in mine])),
        **({"test_accuracy": float(np.mean([r["test_accuracy"] for r in own])),
            "test_loss": float(np.mean([r["test_loss"] for r in own]))}
           if "test_accuracy" in own[0] else {}),
        "gap_accuracy": float(np.mean([r["gap_accuracy"] for r in own])),
        "best_epoch_median": float(np.median([m["selected_epoch"] for m in mine])),
        "stop_reasons": ",".join(sorted({x for r in own for x in r["stop_reasons"].split(",")})),
        "curve": [[e, float(np.mean(v))] for e, v in sorted(curves.items())]})
  return table


def tex_escape(text: str) -> str:
  """A table cell as LaTeX text (%, _, &, #, \\ and the unicode signs genjax's tables use)."""
  return (text.replace("\\", r"\textbackslash{}").replace("%", r"\%").replace("_", r"\_")
          .replace("&", r"\&").replace("#", r"\#").replace("±", r"$\pm$").replace("−", "$-$")
          .replace("×", r"$\times$").replace("Δ", r"$\Delta$").replace("†", r"\dag{}")
          .replace(">", "$>$").replace("<", "$<$"))


def _cell(x, fmt: str) -> str:
  return "–" if x is None else format(x, fmt)


ADJUST_LABEL = {"holm": "p (Holm)", "bh": "p (BH)", "none": None}
CSV_COLUMNS = ("point", "seeds", "folds", "val_accuracy_mean", "val_accuracy_std",
               "difference", "ci95_low", "ci95_high", "p_value", "p_adjusted", "p_adjust",
               "iqm", "iqm_ci95_low", "iqm_ci95_high", "probability_of_improvement",
               "diverged_members")


def _pct(x) -> str:
  return f"{100 * x:.2f}"


def _cells(r: dict, method: str) -> list[str]:
  """One table row: point (†: a member diverged), mean ± std, IQM [CI], Δ, CI, p, p̃, P(>)."""
  d, q = r.get("val_accuracy_difference"), r["val_accuracy_iqm"]
  iqm = "–" if q is None else _pct(q["iqm"]) + "%" + (
      "" if q["ci"] is None else f" [{_pct(q['ci'][0])}, {_pct(q['ci'][1])}]")
  cells = [r["point"] + (" †" if r["diverged_members"] else ""),
           f"{_pct(r['val_accuracy_mean'])}% ± {_pct(r['val_accuracy_std'])}", iqm]
  if d is None:
    cells += ["baseline", "", ""] + ([""] if ADJUST_LABEL[method] else []) + [""]
    return cells
  ci = "–" if d["ci95"] is None else f"[{100 * d['ci95'][0]:+.2f}, {100 * d['ci95'][1]:+.2f}]"
  cells += [f"{100 * d['mean_difference']:+.2f} pt", ci, _cell(d["p_value"], ".3g")]
  star = " *" if (d["p_adjusted"] if d["p_adjusted"] is not None else 1) < 0.05 else ""
  if ADJUST_LABEL[method]:
    cells.append(_cell(d["p_adjusted"], ".3g") + star)
  else:
    cells[-1] += star
  poi = r.get("probability_of_improvement")
  return cells + ["–" if poi is None else f"{poi:.2f}"]


def _record(r: dict) -> list:
  d, q = r.get("val_accuracy_difference") or {}, r["val_accuracy_iqm"] or {}
  ci, qci = d.get("ci95") or (None, None), q.get("ci") or (None, None)
  return [r["point"], r["seeds"], r["folds"], r["val_accuracy_mean"], r["val_accuracy_std"],
          d.get("mean_difference"), ci[0], ci[1], d.get("p_value"), d.get("p_adjusted"),
          d.get("p_adjust"), q.get("iqm"), qci[0], qci[1], r.get("probability_of_improvement"),
          r["diverged_members"]]


def footnote(rows: list[dict], method: str, *, show_test: bool) -> str:
  """What the comparison table shows: the design, the test, the family and its adjustment,
  the robust summaries, diverged members, and where the test split is."""
  seeds, folds = rows[0]["seeds"], rows[0]["folds"]
  family = next((r["val_accuracy_difference"]["family"] for r in rows
                 if "val_accuracy_difference" in r), 0)
  star = "adjusted p" if ADJUST_LABEL[method] else "p"
  text = (f"Validation accuracy over {seeds} seed(s) × {folds} fold(s) per point. Design: "
          f"{stats.FIXED_FOLDS} (J = {folds} fold means), paired with the baseline "
          f"({rows[0]['baseline']}) fold by fold. p: two-sided {stats.CORRECTED_TEST}, "
          f"variance factor 1/J + n_val/n_train, df = J − 1"
          + ("" if folds > 1 else " (none with one fixed split: use cross-validation)")
          + f"; adjusted for the {family} comparison(s) with the baseline: "
          f"{stats.P_ADJUST[method]}; * {star} < 0.05. IQM: interquartile mean over the "
          f"members, 95% stratified bootstrap interval ({robust.REPS} resamples of seeds within "
          "each fold, rliable). P(> baseline): probability of improvement, the Mann–Whitney "
          "U / (n·m) of the point's seeds against the baseline's, averaged over folds.")
  diverged = [r for r in rows if r["diverged_members"]]
  if diverged:
    text += (" † " + "; ".join(f"{r['point']}: {r['diverged_members']} member(s) diverged"
                               for r in diverged)
             + " (loss NaN/inf or past the divergence threshold); their accuracy is counted.")
  return text + (" Validation only" + (": each member's test metrics are in sweep_members.csv ("
                                       + TEST_CAPTION + ")." if show_test else
                                       "; the test split is reported for the selected point "
                                       "only (selected.json)."))


@primary_only
def write(workdir: str, members: list[dict], baseline: str | None = None, *,
          show_test: bool = True, note: str | None = None, only: set | None = None,
          p_adjust: str = "holm") -> None:
  """sweep_members.csv (each member's test metrics only with `show_test`), sweep_compare.md,
  .tex and .csv; those compare the points in `only` (default all; a search's last rungs),
  and `note` ends their footnote."""
  columns = [c for c in MEMBER_COLUMNS if show_test or not c.startswith("test_")]
  with open(os.path.join(workdir, "sweep_members.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(columns)
    for m in members:
      w.writerow([m[c] for c in columns])
  rows = comparisons([m for m in members if only is None or m["point"] in only], baseline,
                     show_test=False, p_adjust=p_adjust)
  header = ["point", "val acc (mean ± std)", "IQM [95% CI]", "Δ val acc vs baseline", "95% CI",
            "p"] + [h for h in (ADJUST_LABEL[p_adjust],) if h] + ["P(> baseline)"]
  cells = [_cells(r, p_adjust) for r in rows]
  text = footnote(rows, p_adjust, show_test=show_test) + (" " + note if note else "")
  md_cell = lambda c: c.replace("|", "\\|")  # noqa: E731
  table = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  table += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in cells]
  table += ["", text]
  tex = [r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}", r"\hline",
         " & ".join(tex_escape(h) for h in header) + r" \\", r"\hline"]
  tex += [" & ".join(tex_escape(c) for c in row) + r" \\" for row in cells]
  tex += [r"\hline", r"\end{tabular}", "% " + tex_escape(text)]
  with open(os.path.join(workdir, "sweep_compare.tex"), "w") as f:
    f.write("\n".join(tex) + "\n")
  with open(os.path.join(workdir, "sweep_compare.md"), "w") as f:
    f.write("\n".join(table) + "\n")
  with open(os.path.join(workdir, "sweep_compare.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(CSV_COLUMNS)
    w.writerows(_record(r) for r in rows)
