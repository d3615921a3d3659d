"""A run's plots: its learning curves and, under cross-validation, the folds' accuracies.

    learning_curves.png  train vs validation loss and accuracy (one line per fold under CV)
    cv_folds.png         the folds' validation accuracies (cross-validation)

Accuracy is drawn in percent, as in every genjax figure and table; an epoch whose value is
NaN or infinite (a diverged run or fold) is a red × on the panel's low edge, with a legend entry.
Written by process 0 only (`genjax.report.files.primary_only`).
"""

from __future__ import annotations

import math

from genjax.report.files import primary_only

DIVERGED_COLOR = "tab:red"   # the mark of a diverged run, fold or sweep point, in every figure


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
  """Two panels (loss, accuracy in %): train vs validation per epoch."""
  save(learning_curves_figure(rows, best_epoch=best_epoch, title=title), path)


def _value(v, scale: float = 1.0) -> float:
  """`v` × `scale` as a float; NaN for a missing (null: NaN/inf in metrics.jsonl) value."""
  try:
    return scale * float(v)
  except (TypeError, ValueError):
    return float("nan")


def _scale(metric: str) -> float:
  return 100.0 if metric == "accuracy" else 1.0


def _ylabel(metric: str) -> str:
  return "accuracy (%)" if metric == "accuracy" else metric


def _non_finite(row: dict) -> bool:
  """Whether an epoch's row has a NaN/inf (null) loss or accuracy: its accuracy is no model's."""
  return not all(math.isfinite(_value(row.get(k))) for k in (
      "val_loss", "train_loss_running", "val_accuracy", "train_accuracy_running") if k in row)


def _mark_non_finite(ax, rows: list[dict]) -> bool:
  """Red ×s on `ax`'s low edge at the epochs of `rows` with a non-finite value; whether any."""
  bad = [r["epoch"] for r in rows if _non_finite(r)]
  if bad:
    ax.plot(bad, [0.0] * len(bad), ls="none", marker="x", ms=7, mew=1.5, color=DIVERGED_COLOR,
            transform=ax.get_xaxis_transform(), clip_on=False, zorder=5, gid="non_finite")
  return bool(bad)


def _non_finite_handle(label: str = "NaN/inf (diverged)"):
  from matplotlib.lines import Line2D
  return Line2D([], [], ls="none", marker="x", mew=1.5, color=DIVERGED_COLOR, label=label)


def _room_below(ax) -> None:
  """Room below the data for the low edge's ×s (no finite data: the axis as matplotlib set it)."""
  lo, hi = ax.get_ylim()
  if math.isfinite(lo) and math.isfinite(hi) and hi > lo:
    ax.set_ylim(lo - 0.06 * (hi - lo), hi)


def save(fig, path: str, **kwargs) -> None:
  """`fig.savefig(path, dpi=110, ...)` without matplotlib's layout warnings (a panel whose data
  are all NaN, a diverged run's, collapses constrained layout): the run's one-line report
  stays one line, and the figure is still written."""
  import warnings
  with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*constrained_layout not applied.*")
    warnings.filterwarnings("ignore", message=".*tight_layout.*")
    fig.savefig(path, **{"dpi": 110, **kwargs})


def learning_curves_figure(rows: list[dict], *, best_epoch: int | None = None,
                           title: str = ""):
  """The Figure of `plot_learning_curves`."""
  epochs = [r["epoch"] for r in rows]
  fig = new_figure(figsize=(10, 3.8), layout="constrained")
  axes = fig.subplots(1, 2)
  for ax, metric in zip(axes, ("loss", "accuracy")):
    scale = _scale(metric)
    ax.plot(epochs, [_value(r.get(f"train_{metric}_running"), scale) for r in rows],
            label="train (running mean)")
    ax.plot(epochs, [_value(r.get(f"val_{metric}"), scale) for r in rows], label="validation")
    if best_epoch is not None:
      ax.axvline(best_epoch, color="gray", ls="--", lw=1, label=f"selected (epoch {best_epoch})")
    bad = _mark_non_finite(ax, rows)
    ax.set_xlabel("epoch")
    ax.set_ylabel(_ylabel(metric))
    ax.grid(alpha=0.3)
    if bad:
      _room_below(ax)
    handles, _ = ax.get_legend_handles_labels()
    ax.legend(handles=handles + ([_non_finite_handle()] if bad else []), fontsize="small")
  if title:
    fig.suptitle(title)
  return fig


@primary_only
def plot_fold_curves(path: str, rows: list[dict], *, title: str = "") -> None:
  """Per-fold learning curves: validation (solid) and train (dashed), loss and accuracy (%)."""
  save(fold_curves_figure(rows, title=title), path)


def fold_curves_figure(rows: list[dict], *, title: str = ""):
  """The Figure of `plot_fold_curves`."""
  import matplotlib
  folds = sorted({r["fold"] for r in rows})
  fig = new_figure(figsize=(11, 4), layout="constrained")   # room for labels and title
  axes = fig.subplots(1, 2)
  colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
  bad = sorted({r["fold"] for r in rows if _non_finite(r)})
  for ax, metric in zip(axes, ("loss", "accuracy")):
    scale = _scale(metric)
    for i, k in enumerate(folds):
      fr = [r for r in rows if r["fold"] == k]
      c = colors[i % len(colors)]
      ep = [r["epoch"] for r in fr]
      ax.plot(ep, [_value(r.get(f"val_{metric}"), scale) for r in fr], color=c, label=f"fold {k}")
      ax.plot(ep, [_value(r.get(f"train_{metric}_running"), scale) for r in fr], color=c, ls="--",
              lw=0.8)
      _mark_non_finite(ax, fr)
    ax.set_xlabel("epoch")
    ax.set_ylabel(_ylabel(metric))
    ax.grid(alpha=0.3)
    if bad:
      _room_below(ax)
  from matplotlib.lines import Line2D   # the line styles, in the legend (a y-label that
  styles = [Line2D([], [], color="0.3", label="validation"),   # said it outgrew the panel)
            Line2D([], [], color="0.3", ls="--", lw=0.8, label="train (running mean)")]
  if bad:
    styles.append(_non_finite_handle("NaN/inf (diverged): fold " + ", ".join(map(str, bad))))
  axes[0].legend(handles=styles, fontsize="small")
  axes[1].legend(fontsize="small", ncol=2)
  if title:
    fig.suptitle(title)
  return fig


@primary_only
def plot_fold_accuracy(path: str, accuracies, *, title: str = "", diverged=()) -> None:
  """Box plot of per-fold validation accuracy with the folds as points; the folds listed in
  `diverged` (results.json's `diverged_folds`) as red ×s, outside the box."""
  save(fold_accuracy_figure(accuracies, title=title, diverged=diverged), path)


def fold_accuracy_figure(accuracies, *, title: str = "", diverged=()):
  """The Figure of `plot_fold_accuracy`: the box (of the folds that did not diverge) without
  fliers, each fold one dot, a diverged fold a red × on the low edge (no accuracy shown)."""
  import numpy as np
  acc = 100 * np.asarray(accuracies, dtype=float)
  bad = np.zeros(len(acc), bool)
  bad[[k for k in diverged if 0 <= k < len(acc)]] = True
  bad |= ~np.isfinite(acc)
  fig = new_figure(figsize=(4, 4), layout="constrained")
  ax = fig.subplots()
  ax.boxplot([acc[~bad]], widths=0.5, showfliers=False)   # every fold is drawn once, as a dot
  jitter = np.random.default_rng(0).uniform(-0.08, 0.08, len(acc))  # display only
  ax.scatter(1 + jitter[~bad], acc[~bad], zorder=3)
  if bad.any():   # below the data, explained under the axes
    _room_below(ax)
    ax.plot(1 + jitter[bad], [0.0] * int(bad.sum()), ls="none", marker="x", ms=9, mew=2,
            color=DIVERGED_COLOR, transform=ax.get_xaxis_transform(), clip_on=False, zorder=5,
            gid="diverged")
    fig.legend(handles=[_non_finite_handle(
        "diverged (no accuracy shown): fold " + ", ".join(map(str, np.flatnonzero(bad))))],
        loc="outside lower center", fontsize="small", frameon=False)
  ax.set_xticks([1], ["folds"])
  ax.set_ylabel("validation accuracy (%)")
  ax.grid(alpha=0.3, axis="y")
  if title:
    ax.set_title(title, fontsize="small")
  return fig
