"""Markdown tables from finished runs: `python -m genjax.report.tables TITLE RUNS_DIR NAME...`.

Each NAME is a workdir under RUNS_DIR holding results.json and metrics.jsonl,
optionally `NAME=REF` with a reference test accuracy (e.g. a paper's) to print beside it;
one row per run: validation and test accuracy of the selected weights, the
generalization gap (train − validation accuracy, validation − train loss), the
selected epoch (the folds' median, labelled, under cross-validation) and the kernels' L2
norm and sparsity of the selected weights (not the last epoch's).

`results_table` is the small table `genjax train` prints of the run it finished.
"""

from __future__ import annotations

import json
import os
import sys


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
  refs = dict(n.split("=", 1) if "=" in n else (n, None) for n in names)
  has_ref = any(v is not None for v in refs.values())
  lines = [f"# {title}", "",
           "| run |" + (" reference test acc |" if has_ref else "") +
           " train acc | val acc | test acc | gap (acc) | gap (loss) | selected epoch | ‖W‖₂ | zeros |",
           "|---|" + ("---|" if has_ref else "") + "---|---|---|---|---|---|---|---|"]
  for name, ref in refs.items():
    r = run_row(os.path.join(runs_dir, name))
    ref_cell = (f" {100 * float(ref):.0f}% |" if ref is not None else " – |") if has_ref else ""
    lines.append(f"| {name} |{ref_cell} {100 * r['train_accuracy']:.1f}% | {100 * r['val_accuracy']:.1f}% | {100 * r['test_accuracy']:.1f}% | "
                 f"{100 * r['gap_accuracy']:+.1f} pt | {r['gap_loss']:+.3f} | {r['selected_epoch']} | "
                 f"{r['weight_l2_norm']:.1f} | {100 * r['weight_sparsity']:.1f}% |")
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
