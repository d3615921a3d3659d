"""What a run leaves in its workdir, and the table it prints.

    config.json          the resolved config
    metrics.jsonl        one JSON object per epoch
    results.json         final validation/test metrics and run facts
    learning_curves.png  train vs validation loss and accuracy
"""

from __future__ import annotations

import json
import os
from typing import Iterable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _jsonable(x):
  if hasattr(x, "item"):
    return x.item()
  if isinstance(x, dict):
    return {k: _jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_jsonable(v) for v in x]
  return x


def write_json(path: str, obj) -> None:
  """Writes atomically (temp file + rename), so a kill never leaves half a file."""
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(_jsonable(obj), f, indent=2, sort_keys=True)
    f.write("\n")
  os.replace(tmp, path)


def write_metrics(path: str, rows: Iterable[dict]) -> None:
  """Rewrites metrics.jsonl with `rows` (one JSON object per line), atomically."""
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    for row in rows:
      f.write(json.dumps(_jsonable(row), sort_keys=True) + "\n")
  os.replace(tmp, path)


def read_metrics(path: str) -> list[dict]:
  if not os.path.exists(path):
    return []
  rows = []
  with open(path) as f:
    for line in f:
      try:
        rows.append(json.loads(line))
      except json.JSONDecodeError:  # a line cut short by a kill: the epoch reruns on resume
        break
  return rows


def plot_learning_curves(path: str, rows: list[dict], *, best_epoch: int | None = None,
                         title: str = "") -> None:
  """Two panels (loss, accuracy): train vs validation per epoch."""
  epochs = [r["epoch"] for r in rows]
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
  for ax, metric in zip(axes, ("loss", "accuracy")):
    ax.plot(epochs, [r[f"train_{metric}"] for r in rows], label="train")
    ax.plot(epochs, [r[f"val_{metric}"] for r in rows], label="validation")
    if best_epoch is not None:
      ax.axvline(best_epoch, color="gray", ls="--", lw=1, label=f"selected (epoch {best_epoch})")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend()
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


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


def plot_fold_curves(path: str, rows: list[dict], *, title: str = "") -> None:
  """Per-fold learning curves: validation (solid) and train (dashed), loss and accuracy."""
  folds = sorted({r["fold"] for r in rows})
  fig, axes = plt.subplots(1, 2, figsize=(11, 4))
  colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  for ax, metric in zip(axes, ("loss", "accuracy")):
    for i, k in enumerate(folds):
      fr = [r for r in rows if r["fold"] == k]
      c = colors[i % len(colors)]
      ax.plot([r["epoch"] for r in fr], [r[f"val_{metric}"] for r in fr], color=c, label=f"fold {k}")
      ax.plot([r["epoch"] for r in fr], [r[f"train_{metric}"] for r in fr], color=c, ls="--", lw=0.8)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{metric} (solid: validation, dashed: train)")
    ax.grid(alpha=0.3)
  axes[1].legend(fontsize="small", ncol=2)
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def plot_fold_accuracy(path: str, accuracies, *, title: str = "") -> None:
  """Box plot of per-fold validation accuracy with the folds as points."""
  import numpy as np
  acc = 100 * np.asarray(accuracies)
  fig, ax = plt.subplots(figsize=(4, 4))
  ax.boxplot([acc], widths=0.5)
  jitter = np.random.default_rng(0).uniform(-0.08, 0.08, len(acc))  # display only
  ax.scatter(1 + jitter, acc, zorder=3)
  ax.set_xticks([1], ["folds"])
  ax.set_ylabel("validation accuracy (%)")
  ax.grid(alpha=0.3, axis="y")
  if title:
    ax.set_title(title, fontsize="small")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
