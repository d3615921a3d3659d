"""Markdown tables from finished runs: `python -m genjax.report.tables TITLE RUNS_DIR NAME...`.

Each NAME is a workdir under RUNS_DIR holding results.json and metrics.jsonl,
optionally `NAME=REF` with a reference test accuracy (e.g. a paper's) to print beside it;
one row per run: validation and test accuracy of the selected weights, the
generalization gap (train − validation accuracy, validation − train loss), the
selected epoch (the folds' median, labelled, under cross-validation) and the kernels' L2
norm and sparsity of the selected weights (not the last epoch's).

`results_table` is the small table `genjax train` prints of the run it finished.

The one number format of genjax's figures and sweep tables (sweep.md/.csv/.tex, the sweep
figures): an accuracy in percent with two decimals, its std in points with two decimals
(`percent`, `mean_std`: '48.95 ± 1.77'). A sweep point that diverged (`divergence`: a member's
loss went NaN/inf, or past `early_stopping.divergence_threshold`) is marked, never shown as a
plausible accuracy: `accuracy_cell` writes 'diverged' where no finite model is left and a '†'
(`DIVERGED_NOTE`) where a member stopped on it but the point's selected models are finite.
"""

from __future__ import annotations

import json
import math
import os
import sys

DIVERGED_REASONS = ("non_finite", "divergence_threshold")   # stop reasons of a diverged member
DAGGER = "†"
DIVERGED_NOTE = (f"{DAGGER} a member diverged (its loss went NaN/inf or past the divergence "
                 "threshold) and stopped; the point's numbers are its selected weights'")
NO_MODEL_NOTE = ("diverged: a member's selected model has a NaN/inf loss, so the point has no "
                 "accuracy to show")


def _finite(x) -> bool:
  try:
    return x is not None and math.isfinite(float(x))
  except (TypeError, ValueError):
    return False


def percent(x, digits: int = 2) -> str:
  """A fraction as a percentage with `digits` decimals, no sign ('48.95'); '–' for a missing or
  non-finite value."""
  return f"{100 * float(x):.{digits}f}" if _finite(x) else "–"


def mean_std(mean, std=None) -> str:
  """'48.95 ± 1.77' (fractions as percent, two decimals); the mean alone without a std."""
  return percent(mean) + (f" ± {percent(std)}" if _finite(std) else "")


def divergence(row: dict) -> str | None:
  """How a sweep row (one point, over its seeds × folds) diverged: "no_model" when its mean
  validation loss or accuracy is not finite (a member's selected model is NaN: the point has
  no accuracy), "member" when a member stopped on a non-finite or diverging monitored value
  (`stop_reasons`) but the selected models are finite, else None."""
  if not (_finite(row.get("val_loss_mean", 0.0)) and _finite(row.get("val_accuracy_mean"))):
    return "no_model"
  reasons = set(str(row.get("stop_reasons") or "").split(","))
  return "member" if reasons & set(DIVERGED_REASONS) else None


def accuracy_cell(row: dict, key: str = "val_accuracy_mean") -> str:
  """A sweep table's accuracy cell: '48.95%', '48.95%†' (a member diverged), 'diverged' (no
  finite model: its accuracy would be chance-level noise)."""
  how = divergence(row)
  if how == "no_model":
    return "diverged"
  return f"{percent(row.get(key))}%" + (DAGGER if how == "member" else "")


def std_cell(row: dict) -> str:
  """The '± std' cell (points, two decimals); '–' for a point with no finite model."""
  return "–" if divergence(row) == "no_model" else percent(row.get("val_accuracy_std"))


def diverged_notes(rows: list[dict]) -> str:
  """The footnote sentences a sweep table needs for its diverged rows ('' when none)."""
  kinds = {divergence(r) for r in rows}
  return " ".join(f"{note}." for kind, note in (("no_model", NO_MODEL_NOTE),
                                                ("member", DIVERGED_NOTE)) if kind in kinds)


def run_row(workdir: str) -> dict:
  """One table row from a finished run's results.json (every number at the selected weights)."""
  with open(os.path.join(workdir, "results.json")) as f:
    results = json.load(f)
  weights = results["selected_weights"]
  median = "selected_epoch_median" in results   # cross-validation: the folds' median
  epoch = results["selected_epoch_median" if median else "selected_epoch"]
  return {
      "train_accuracy": results["train"]["accuracy"],
      "val_accuracy": results["val"]["accuracy"],
      "test_accuracy": results["test"]["accuracy"],
      "gap_accuracy": results["generalization_gap"]["accuracy"],
      "gap_loss": results["generalization_gap"]["loss"],
      "selected_epoch": f"{epoch:g} (median)" if median else str(epoch),
      "weight_l2_norm": weights["l2_norm"],
      "weight_sparsity": weights["sparsity"],
  }


def markdown(title: str, runs_dir: str, names: list[str]) -> str:
  """The runs' table: accuracies, sparsity and gaps with two decimals (as the sweep tables)."""
  refs = dict(n.split("=", 1) if "=" in n else (n, None) for n in names)
  has_ref = any(v is not None for v in refs.values())
  lines = [f"# {title}", "",
           "| run |" + (" reference test acc |" if has_ref else "") +
           " train acc | val acc | test acc | gap (acc) | gap (loss) | selected epoch | ‖W‖₂ | zeros |",
           "|---|" + ("---|" if has_ref else "") + "---|---|---|---|---|---|---|---|"]
  for name, ref in refs.items():
    r = run_row(os.path.join(runs_dir, name))
    ref_cell = (f" {100 * float(ref):.0f}% |" if ref is not None else " – |") if has_ref else ""
    accs = " | ".join(f"{percent(r[k])}%" for k in ("train_accuracy", "val_accuracy",
                                                    "test_accuracy"))
    lines.append(f"| {name} |{ref_cell} {accs} | {100 * r['gap_accuracy']:+.2f} pt | "
                 f"{r['gap_loss']:+.3f} | {r['selected_epoch']} | {r['weight_l2_norm']:.1f} | "
                 f"{percent(r['weight_sparsity'])}% |")
  return "\n".join(lines) + "\n"


def results_table(results: dict) -> str:
  """A small markdown table of the selected model's metrics."""
  lines = ["| split | loss | accuracy |", "|---|---|---|"]
  for split in ("train", "val", "test"):
    if split in results:
      m = results[split]
      lines.append(f"| {split} | {m['loss']:.4f} | {100 * m['accuracy']:.2f}% |")
  if "test_refit" in results:
    m = results["test_refit"]
    lines.append(f"| test (refit, {m['epochs']} epochs) | {m['loss']:.4f} | {100 * m['accuracy']:.2f}% |")
  if "cv" in results:
    cv = results["cv"]
    acc = cv["val_accuracy"]
    lines += ["", f"{cv['method']}, {cv['members']} folds: validation accuracy "
              f"{100 * acc['mean']:.2f}% ± {100 * acc['std']:.2f} (95% CI "
              f"{100 * acc['ci95'][0]:.2f}–{100 * acc['ci95'][1]:.2f}%); "
              "train/val rows are fold means, test is the fold ensemble"]
  return "\n".join(lines)


def main(argv: list[str]) -> int:
  if len(argv) < 4:
    print("usage: python -m genjax.report.tables TITLE RUNS_DIR NAME...", file=sys.stderr)
    return 2
  title, runs_dir, names = argv[1], argv[2], argv[3:]
  missing = [n for n in (m.split("=")[0] for m in names)
             if not os.path.exists(os.path.join(runs_dir, n, "results.json"))]
  if missing:
    print(f"genjax: error: no results.json for {', '.join(missing)} under {runs_dir}; "
          "run them first", file=sys.stderr)
    return 2
  sys.stdout.write(markdown(title, runs_dir, names))
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
