"""A run's plots: its learning curves and, under cross-validation, the folds' accuracies.

    learning_curves.png  train vs validation loss and accuracy (one line per fold under CV)
    cv_folds.png         the folds' validation accuracies (cross-validation)

Written by process 0 only (`genjax.report.files.primary_only`).
"""

from __future__ import annotations

from genjax.report.files import primary_only


def new_figure(**kwargs):
  """A `matplotlib.figure.Figure(**kwargs)` on its own Agg canvas, made outside pyplot:
  drawing and saving it never selects or switches the process's backend (a notebook's inline
  plots keep working after `genjax.fit`), and no pyplot figure is left open. Imported when a
  plot is drawn (matplotlib is slow to import)."""
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure
  fig = Figure(**kwargs)
  FigureCanvasAgg(fig)   # this figure's own canvas (the Agg renderer), whatever the backend
  return fig


@primary_only
def plot_learning_curves(path: str, rows: list[dict], *, best_epoch: int | None = None,
                         title: str = "") -> None:
  """Two panels (loss, accuracy): train vs validation per epoch."""
  epochs = [r["epoch"] for r in rows]
  fig = new_figure(figsize=(10, 3.8))
  axes = fig.subplots(1, 2)
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


@primary_only
def plot_fold_curves(path: str, rows: list[dict], *, title: str = "") -> None:
  """Per-fold learning curves: validation (solid) and train (dashed), loss and accuracy."""
  fold_curves_figure(rows, title=title).savefig(path, dpi=110)


def fold_curves_figure(rows: list[dict], *, title: str = ""):
  """The Figure of `plot_fold_curves`."""
  import matplotlib
  folds = sorted({r["fold"] for r in rows})
  fig = new_figure(figsize=(11, 4), layout="constrained")   # room for labels and title
  axes = fig.subplots(1, 2)
  colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
  for ax, metric in zip(axes, ("loss", "accuracy")):
    for i, k in enumerate(folds):
      fr = [r for r in rows if r["fold"] == k]
      c = colors[i % len(colors)]
      ax.plot([r["epoch"] for r in fr], [r[f"val_{metric}"] for r in fr], color=c, label=f"fold {k}")
      ax.plot([r["epoch"] for r in fr], [r[f"train_{metric}_running"] for r in fr], color=c, ls="--", lw=0.8)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
  from matplotlib.lines import Line2D   # the line styles, in the legend (a y-label that
  styles = [Line2D([], [], color="0.3", label="validation"),   # said it outgrew the panel)
            Line2D([], [], color="0.3", ls="--", lw=0.8, label="train (running mean)")]
  axes[0].legend(handles=styles, fontsize="small")
  axes[1].legend(fontsize="small", ncol=2)
  if title:
    fig.suptitle(title)
  return fig


@primary_only
def plot_fold_accuracy(path: str, accuracies, *, title: str = "") -> None:
  """Box plot of per-fold validation accuracy with the folds as points."""
  fold_accuracy_figure(accuracies, title=title).savefig(path, dpi=110)


def fold_accuracy_figure(accuracies, *, title: str = ""):
  """The Figure of `plot_fold_accuracy`: the box without fliers, each fold one dot."""
  import numpy as np
  acc = 100 * np.asarray(accuracies)
  fig = new_figure(figsize=(4, 4))
  ax = fig.subplots()
  ax.boxplot([acc], widths=0.5, showfliers=False)   # every fold is drawn once, as a dot
  jitter = np.random.default_rng(0).uniform(-0.08, 0.08, len(acc))  # display only
  ax.scatter(1 + jitter, acc, zorder=3)
  ax.set_xticks([1], ["folds"])
  ax.set_ylabel("validation accuracy (%)")
  ax.grid(alpha=0.3, axis="y")
  if title:
    ax.set_title(title, fontsize="small")
  fig.tight_layout()
  return fig
