"""What a run leaves in its workdir, and the table it prints.

    config.json          the resolved config
    metrics.jsonl        one JSON object per epoch
    results.json         final validation/test metrics and run facts
    learning_curves.png  train vs validation loss and accuracy

In a multi-host run only process 0 writes (`genjax.distributed.is_primary`);
the writers here are no-ops on the other processes.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
from typing import Iterable

from genjax import distributed


def primary_only(write):
  """`write` runs on process 0 only (it is every process in a single-process run)."""
  @functools.wraps(write)
  def wrapper(*args, **kwargs):
    if distributed.is_primary():
      return write(*args, **kwargs)
    return None
  return wrapper


def _pyplot():
  """matplotlib.pyplot on the Agg backend, imported when a plot is drawn (it is slow to import)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def _jsonable(x):
  """Plain Python for json; a non-finite float becomes None (strict JSON has no NaN)."""
  if hasattr(x, "item"):
    x = x.item()
  if isinstance(x, float) and not math.isfinite(x):
    return None
  if isinstance(x, dict):
    return {k: _jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_jsonable(v) for v in x]
  return x


@contextlib.contextmanager
def _atomic(path: str):
  """A file written to `path.tmp` and renamed onto `path` when complete; on any error (a full
  disk) the temporary file is removed and `path` keeps its old content."""
  tmp = path + ".tmp"
  try:
    with open(tmp, "w") as f:
      yield f
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


@primary_only
def write_json(path: str, obj) -> None:
  """Writes atomically (temp file + rename), so a kill never leaves half a file."""
  with _atomic(path) as f:
    json.dump(_jsonable(obj), f, indent=2, sort_keys=True, allow_nan=False)
    f.write("\n")


@primary_only
def write_metrics(path: str, rows: Iterable[dict]) -> None:
  """Rewrites metrics.jsonl with `rows` (one JSON object per line), atomically."""
  with _atomic(path) as f:
    for row in rows:
      f.write(json_line(row))


def json_line(row: dict) -> str:
  """One metrics.jsonl line: strict JSON (null for a non-finite value), keys sorted."""
  return json.dumps(_jsonable(row), sort_keys=True, allow_nan=False) + "\n"


def read_metrics(path: str) -> list[dict]:
  """metrics.jsonl's rows; null (a non-finite value when written) reads back as NaN."""
  if not os.path.exists(path):
    return []
  rows = []
  with open(path) as f:
    for line in f:
      try:
        rows.append({k: float("nan") if v is None else v for k, v in json.loads(line).items()})
      except json.JSONDecodeError:  # a line cut short by a kill: the epoch reruns on resume
        break
  return rows


@primary_only
def plot_learning_curves(path: str, rows: list[dict], *, best_epoch: int | None = None,
                         title: str = "") -> None:
  """Two panels (loss, accuracy): train vs validation per epoch."""
  plt = _pyplot()
  epochs = [r["epoch"] for r in rows]
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
  for ax, metric in zip(axes, ("loss", "accuracy")):
    ax.plot(epochs, [r[f"train_{metric}_running"] for r in rows], label="train (running mean)")
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


@primary_only
def plot_fold_curves(path: str, rows: list[dict], *, title: str = "") -> None:
  """Per-fold learning curves: validation (solid) and train (dashed), loss and accuracy."""
  plt = _pyplot()
  folds = sorted({r["fold"] for r in rows})
  fig, axes = plt.subplots(1, 2, figsize=(11, 4))
  colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  for ax, metric in zip(axes, ("loss", "accuracy")):
    for i, k in enumerate(folds):
      fr = [r for r in rows if r["fold"] == k]
      c = colors[i % len(colors)]
      ax.plot([r["epoch"] for r in fr], [r[f"val_{metric}"] for r in fr], color=c, label=f"fold {k}")
      ax.plot([r["epoch"] for r in fr], [r[f"train_{metric}_running"] for r in fr], color=c, ls="--", lw=0.8)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{metric} (solid: validation, dashed: train running mean)")
    ax.grid(alpha=0.3)
  axes[1].legend(fontsize="small", ncol=2)
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


@primary_only
def plot_fold_accuracy(path: str, accuracies, *, title: str = "") -> None:
  """Box plot of per-fold validation accuracy with the folds as points."""
  plt = _pyplot()
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


class TensorBoard:
  """TensorBoard event files (tensorboardX, no TensorFlow): one directory per member."""

  def __init__(self, root: str, names: list[str], prefix: str = ""):
    self._writers = []
    if distributed.is_primary():
      from tensorboardX import SummaryWriter
      self._writers = [SummaryWriter(os.path.join(root, n + prefix), flush_secs=30)
                       for n in names]

  def write(self, member: int, epoch: int, row: dict) -> None:
    if not self._writers:
      return
    w = self._writers[member]
    for key, value in row.items():
      if isinstance(value, float):
        w.add_scalar(key.replace("_", "/", 1), value, epoch)

  def close(self) -> None:
    for w in self._writers:
      w.close()


@primary_only
def plot_sweep(path: str, rows: list[dict], keys: list[str]) -> None:
  """Accuracy against the swept keys: val mean ± std over folds (solid) and test (dashed).

  A full grid gets one panel per varying key (a line per value of the others);
  any other set of points (e.g. one point per technique) gets one bar per point.
  """
  import math
  import numpy as np
  plt = _pyplot()
  keys = [k for k in keys if len({repr(r["point"].get(k)) for r in rows}) > 1] or keys[:1]
  sizes = [len({repr(r["point"].get(k)) for r in rows}) for k in keys]
  if not keys or len(rows) != math.prod(sizes) or len(keys) > 3:
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.2))
    y = np.arange(len(rows))
    ax.barh(y - 0.2, [100 * r["val_accuracy_mean"] for r in rows], 0.4,
            xerr=[100 * r["val_accuracy_std"] for r in rows], capsize=3, label="val (± std)")
    ax.barh(y + 0.2, [100 * r["test_accuracy"] for r in rows], 0.4, label="test")
    ax.set_yticks(y, [r["name"][:60] for r in rows], fontsize="small")
    ax.invert_yaxis()
    ax.set_xlabel("accuracy (%)")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return
  fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.8), squeeze=False)
  for ax, key in zip(axes[0], keys):
    others = sorted({repr({k: v for k, v in r["point"].items() if k != key}) for r in rows})
    for other in others:
      sel = [r for r in rows if repr({k: v for k, v in r["point"].items() if k != key}) == other]
      xs = [r["point"][key] for r in sel]
      numeric = all(isinstance(x, (int, float)) for x in xs)
      pos = xs if numeric else list(range(len(xs)))
      label = other.strip("{}").replace("'", "")[:40] or "val"
      ax.errorbar(pos, [100 * r["val_accuracy_mean"] for r in sel],
                  yerr=[100 * r["val_accuracy_std"] for r in sel], marker="o", capsize=3,
                  label=label)
      ax.plot(pos, [100 * r["test_accuracy"] for r in sel], ls="--", marker="x", alpha=0.7)
      if not numeric:
        ax.set_xticks(pos, [str(x) for x in xs])
      elif len(xs) > 2 and min(xs) > 0 and max(xs) / min(xs) > 50:
        ax.set_xscale("log")
    ax.set_xlabel(key)
    ax.set_ylabel("accuracy (%): val ± std, test dashed")
    ax.grid(alpha=0.3)
    if len(others) > 1:
      ax.legend(fontsize="x-small")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


@primary_only
def plot_sweep_curves(path: str, rows: list[dict]) -> None:
  """Validation loss per epoch (mean over folds) for every sweep point."""
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(7, 4.5))
  for r in rows:
    curve = r.get("curve") or []
    ax.plot([e for e, _ in curve], [v for _, v in curve], label=r["name"])
  ax.set_xlabel("epoch")
  ax.set_ylabel("validation loss (mean over folds)")
  ax.grid(alpha=0.3)
  ax.legend(fontsize="x-small", ncol=2)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
