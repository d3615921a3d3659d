"""Per-member sweep results and paired comparisons against a baseline point.

`member_rows` (from `sweep_run`) holds one row per member of a sweep: its point (the seed
aside), seed, fold, train/validation sizes, validation metrics at its selected epoch, selected
epoch, stop reason, and that member's own test metrics. They are written as
`sweep_members.csv`; everything an analysis needs, without reading metrics.jsonl.

`comparisons(members, baseline)` groups members by point (seeds and folds are the
repetitions), pairs each point's members with the baseline's over the same (seed, fold), and
tests the difference of validation accuracy with the corrected resampled t-test
(`genjax.sweeps.stats.corrected_resampled_t`, n_val/n_train of the folds); with ≥ 2 seeds it adds a
bootstrap CI over seeds of the test-accuracy difference. Written as `sweep_compare.md` /
`.csv`, the test named in a footnote. `over_seeds` turns sweep rows into table rows with
seeds as repetitions (sweep.md, .csv, .tex and the plots), not a plotted hyperparameter.
"""

from __future__ import annotations

import csv
import os

import numpy as np

from genjax.train import hparams
from genjax.report.files import primary_only
from genjax.sweeps import stats
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
                show_test: bool = True) -> list[dict]:
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
             "val_accuracy_std": float(np.std(val, ddof=1)) if val.size > 1 else 0.0}
    if show_test:
      test, _ = _grid(members, name, "test_accuracy")
      entry["test_accuracy_mean"] = float(np.mean(test))
    if name != base:
      if keys != b_keys:
        raise ConfigError(f"point {name!r} has other (seed, fold) members than the baseline "
                          f"{base!r}; compared points need the same seeds and folds")
      n_train = float(np.mean([m["train_size"] for m in mine]))
      n_val = float(np.mean([m["val_size"] for m in mine]))
      entry["val_accuracy_difference"] = stats.corrected_resampled_t(val, b_val, n_train, n_val)
      if show_test and len(keys[0]) >= 2:
        entry["test_accuracy_difference"] = stats.bootstrap_ci_over_seeds(test, b_test)
    out.append(entry)
  return out


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
          .replace("×", r"$\times$").replace("Δ", r"$\Delta$"))


def _cell(x, fmt: str) -> str:
  return "–" if x is None else format(x, fmt)


@primary_only
def write(workdir: str, members: list[dict], baseline: str | None = None, *,
          show_test: bool = True, note: str | None = None,
          only: set | None = None) -> None:
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
                     show_test=False)
  header = ["point", "val acc (mean ± std)", "Δ val acc vs baseline", "95% CI", "p"]
  cells, records = [], []
  for r in rows:
    d = r.get("val_accuracy_difference")
    if d is None:
      diff, ci, p = "baseline", "", ""
    else:
      diff = f"{100 * d['mean_difference']:+.2f} pt"
      ci = ("–" if d["ci95"] is None else
            f"[{100 * d['ci95'][0]:+.2f}, {100 * d['ci95'][1]:+.2f}]")
      p = _cell(d["p_value"], ".3g") + (" *" if (d["p_value"] or 1) < 0.05 else "")
    cells.append([r["point"], f"{100 * r['val_accuracy_mean']:.2f}% ± "
                  f"{100 * r['val_accuracy_std']:.2f}", diff, ci, p])
    records.append([r["point"], r["seeds"], r["folds"], r["val_accuracy_mean"],
                    r["val_accuracy_std"], None if d is None else d["mean_difference"],
                    None if d is None or d["ci95"] is None else d["ci95"][0],
                    None if d is None or d["ci95"] is None else d["ci95"][1],
                    None if d is None else d["p_value"]])
  seeds, folds = rows[0]["seeds"], rows[0]["folds"]
  footnote = (f"Validation accuracy over {seeds} seed(s) × {folds} fold(s) per point, paired "
              f"with the baseline ({rows[0]['baseline']}) over the same (seed, fold) members. "
              f"p: two-sided {stats.CORRECTED_TEST}, variance factor 1/J + n_val/n_train, "
              f"df = J − 1 (J = {seeds * folds}); * p < 0.05. Validation only"
              + (": each member's test metrics are in sweep_members.csv (" + TEST_CAPTION + ")."
                 if show_test else "; the test split is reported for the selected point only "
                 "(selected.json).")) + (" " + note if note else "")
  md_cell = lambda c: c.replace("|", "\\|")  # noqa: E731
  table = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  table += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in cells]
  table += ["", footnote]
  tex = [r"\begin{tabular}{lrrrr}", r"\hline", " & ".join(tex_escape(h) for h in header) + r" \\",
         r"\hline"] + [" & ".join(tex_escape(c) for c in row) + r" \\" for row in cells]
  tex += [r"\hline", r"\end{tabular}", "% " + tex_escape(footnote)]
  with open(os.path.join(workdir, "sweep_compare.tex"), "w") as f:
    f.write("\n".join(tex) + "\n")
  with open(os.path.join(workdir, "sweep_compare.md"), "w") as f:
    f.write("\n".join(table) + "\n")
  with open(os.path.join(workdir, "sweep_compare.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["point", "seeds", "folds", "val_accuracy_mean", "val_accuracy_std",
                "difference", "ci95_low", "ci95_high", "p_value"])
    w.writerows(records)
