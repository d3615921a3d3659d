"""A sweep's figures: `plot_sweep` (accuracy against the swept keys) and `plot_sweep_curves`
(validation loss per epoch of every point), written by process 0 only.

`_sweep_figure` / `_sweep_curves_figure` build the matplotlib Figures that `plot_sweep` /
`plot_sweep_curves` save, so tests can inspect them.  Artists carry gids: "val:<i>" and
"test:<i>" for line (or bar) i's validation and test marks, "curve:<i>" for point i's loss
curve.
"""

from __future__ import annotations

import math

from genjax.report.files import primary_only
from genjax.report.plots import new_figure
from genjax.sweeps.labels import (LABEL_CHARS, fmt, formatter, is_number, row_labels, short_keys,
                                  wrap)

_TEST_NOTE = "test shown for all points: not for selection"
_VAL_NOTE = "validation: mean ± std over folds × seeds"
_MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def _style(i: int) -> dict:
  """Colour and marker of line (or point) i: the ten tab10 colours, then the next marker."""
  colors = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
            "tab:pink", "tab:gray", "tab:olive", "tab:cyan")
  return {"color": colors[i % 10], "marker": _MARKERS[(i // 10) % len(_MARKERS)]}


def _number(x) -> float:
  """A finite float (0 for None / NaN: a single fold and seed has no spread)."""
  try:
    x = float(x)
  except (TypeError, ValueError):
    return 0.0
  return x if math.isfinite(x) else 0.0


def _x_scale(values) -> tuple[str, float | None]:
  """("linear" | "log" | "symlog", linthresh) for a numeric axis.

  Log when the positive values span ≥ 20× (≥ 100× for two values) and are more evenly spaced
  in log than in linear terms (1e-5, 1e-4, 1e-3; a logspace; 1, 2, 4, 8); with a 0 among such
  values, symlog linear below the smallest positive value, which then sits one decade right
  of 0. Negative values keep a linear axis.
  """
  import numpy as np
  vals = sorted({float(v) for v in values})
  pos = [v for v in vals if v > 0]
  if len(pos) < 2 or any(v < 0 for v in vals) or len(vals) - len(pos) > 1:
    return "linear", None
  ratio = pos[-1] / pos[0]
  if len(pos) == 2:
    log = ratio >= 100
  else:
    def unevenness(xs):
      d = np.diff(xs)
      return float(np.std(d) / np.mean(d))
    log = ratio >= 20 and unevenness(np.log(pos)) < unevenness(np.asarray(pos))
  if not log:
    return "linear", None
  return ("symlog", pos[0]) if len(pos) < len(vals) else ("log", None)


def _fit_legend(fig, container, handles, labels, *, width=None, loc="outside lower center",
                **kw):
  """(a legend in `container` (the figure or an axes) with as many columns (≤ 4) as fit in
  `width` pixels (the figure's), its (width, height) in inches): the caller grows the figure
  by them so that the axes keep their size and the legend lies inside the figure."""
  renderer = fig.canvas.get_renderer()
  width = width or fig.bbox.width
  n = len(labels)
  for ncol in range(min(n, 4), 0, -1):
    leg = container.legend(handles, labels, loc=loc, ncol=ncol, fontsize="small",
                           frameon=False, **kw)
    box = leg.get_window_extent(renderer)
    if box.width <= 0.97 * width or ncol == 1:
      break
    leg.remove()
  return leg, box.width / fig.dpi, box.height / fig.dpi


def _grow(fig, legends) -> None:
  """The figure taller by the legends' heights (stacked), and as wide as the widest + margin."""
  w, h = fig.get_size_inches()
  fig.set_size_inches(max(w, max(lw for lw, _ in legends) + 0.3),
                      h + sum(lh + 0.15 for _, lh in legends))


def _key_legend(fig, names: list[str]):
  """The full names behind numbered labels, as a legend without handles at the bottom."""
  from matplotlib.lines import Line2D
  blank = [Line2D([], [], linestyle="none") for _ in names]
  _, w, h = _fit_legend(fig, fig, blank, [f"[{i + 1}] " + wrap(n, 90)
                                          for i, n in enumerate(names)],
                        handlelength=0, handletextpad=0, title="key", alignment="left")
  return w, h


def _grid_keys(rows: list[dict], keys: list[str]) -> list[str] | None:
  """The varying keys when the rows are their full grid (≤ 3 keys), else None (bars)."""
  keys = [k for k in keys if len({repr(r["point"].get(k)) for r in rows}) > 1] or keys[:1]
  sizes = [len({repr(r["point"].get(k)) for r in rows}) for k in keys]
  if not keys or len(rows) != math.prod(sizes) or len(keys) > 3:
    return None
  return keys


def _sweep_figure(rows: list[dict], keys: list[str], show_test: bool = False):
  """The Figure of `plot_sweep` (see there)."""
  grid = _grid_keys(rows, keys)
  if grid is None:
    return _sweep_bars(rows, show_test)
  return _sweep_grid(rows, grid, show_test)


def _sweep_bars(rows, show_test):
  """One horizontal bar per point (test hollow, dashed, below it), values at the right."""
  import numpy as np
  from matplotlib.patches import Patch
  labels, key = row_labels(rows)
  tall = max((x.count("\n") for x in labels), default=0)   # extra lines of a label
  per = (0.5 if show_test else 0.34) + 0.13 * tall
  fig = new_figure(figsize=(8, per * len(rows) + 1.3), layout="constrained")
  ax = fig.subplots()
  y = np.arange(len(rows))
  val = [100 * _number(r["val_accuracy_mean"]) for r in rows]
  std = [100 * _number(r.get("val_accuracy_std")) for r in rows]
  h = 0.4 if show_test else 0.7
  off = h / 2 if show_test else 0.0
  values, legends = [], []
  for i, r in enumerate(rows):
    c = _style(i)["color"]
    bars = ax.barh(y[i] - off, val[i], h, xerr=std[i], color=c, edgecolor=c,
                   error_kw={"ecolor": "0.15", "capsize": 3, "elinewidth": 1})
    bars.patches[0].set_gid(f"val:{i}")
    text = f"{fmt(val[i])} ± {fmt(std[i])}"
    if show_test:
      t = 100 * _number(r["test_accuracy"])
      tb = ax.barh(y[i] + off, t, h, facecolor="none", edgecolor=c, linestyle="--", lw=1.5)
      tb.patches[0].set_gid(f"test:{i}")
      text += f"   test {fmt(t)}"
    values.append(text)
  ax.set_yticks(y, labels, fontsize="small")
  ax.set_ylim(len(rows) - 0.5, -0.5)
  ax.set_xlim(0, max(100.0, max((v + s for v, s in zip(val, std)), default=0.0) * 1.02))
  ax.grid(alpha=0.3, axis="x")
  side = ax.twinx()
  side.set_ylim(ax.get_ylim())
  side.set_yticks(y, values, fontsize="small")
  side.tick_params(length=0)
  if show_test:
    ax.set_xlabel("accuracy (%)")
    ax.set_title(_TEST_NOTE, fontsize="medium")
    handles = [Patch(facecolor="0.55", edgecolor="0.55", label=_VAL_NOTE),
               Patch(facecolor="none", edgecolor="0.3", linestyle="--", label="test")]
    legends.append(_fit_legend(fig, fig, handles, [x.get_label() for x in handles],
                               loc="outside upper center")[1:])
  else:
    ax.set_xlabel("validation accuracy (%): mean ± std over folds × seeds")
  if key:
    legends.append(_key_legend(fig, key))
  if legends:
    _grow(fig, legends)
  return fig


def _sort_key(v):
  return (0, float(v), "") if is_number(v) else (1, 0.0, repr(v))


def _sweep_grid(rows, keys, show_test):
  """One panel per key, a line per value of the other keys, its legend below the panel."""
  from matplotlib.ticker import FuncFormatter, NullFormatter, NullLocator
  from matplotlib.transforms import ScaledTranslation
  short = short_keys(keys)
  formats = {k: formatter([r["point"].get(k) for r in rows]) for k in keys}
  fig = new_figure(figsize=(4.8 * len(keys), 3.6), layout="constrained")
  panels = fig.subplots(1, len(keys), squeeze=False)[0]
  title = _VAL_NOTE
  if show_test:
    title = f"solid, error bars: {_VAL_NOTE};" + ("\n" if len(keys) == 1 else " ") + \
        f"dashed, hollow: {_TEST_NOTE}"
  fig.suptitle(title, fontsize="medium")
  legends = []
  for ax, key in zip(panels, keys):
    others = [k for k in keys if k != key]
    xs = list({repr(r["point"].get(key)): r["point"].get(key) for r in rows}.values())
    numeric = all(is_number(x) for x in xs)
    if numeric:
      xs.sort(key=float)
      where = {repr(x): float(x) for x in xs}
    else:
      where = {repr(x): float(i) for i, x in enumerate(xs)}
    lines = sorted({tuple(repr(r["point"].get(k)) for k in others): tuple(
        r["point"].get(k) for k in others) for r in rows}.items(),
        key=lambda kv: tuple(_sort_key(v) for v in kv[1]))
    handles, labels = [], []
    for j, (line, vals) in enumerate(lines):
      sel = [r for r in rows if tuple(repr(r["point"].get(k)) for k in others) == line]
      sel.sort(key=lambda r: where[repr(r["point"].get(key))])
      pos = [where[repr(r["point"].get(key))] for r in sel]
      st = _style(j)
      label = ", ".join(f"{short[k]}={formats[k](v)}" for k, v in zip(others, vals)) or "validation"
      eb = ax.errorbar(pos, [100 * _number(r["val_accuracy_mean"]) for r in sel],
                       yerr=[100 * _number(r.get("val_accuracy_std")) for r in sel],
                       color=st["color"], marker=st["marker"], capsize=3, lw=1.5, ms=5)
      eb.lines[0].set_gid(f"val:{j}")
      if show_test:
        ax.plot(pos, [100 * _number(r["test_accuracy"]) for r in sel], color=st["color"],
                ls="--", marker=st["marker"], mfc="none", ms=6, lw=1.2, gid=f"test:{j}")
      handles.append(eb)
      labels.append(label if len(label) <= LABEL_CHARS else label.replace(", ", "\n"))
    scale, linthresh = _x_scale(xs) if numeric else ("linear", None)
    if scale == "symlog":
      ax.set_xscale("symlog", linthresh=linthresh, linscale=1.0)
    elif scale == "log":
      ax.set_xscale("log")
    tick_labels = [formats[key](x) for x in xs]
    if not numeric or len(xs) <= 10:
      ax.set_xticks(list(where.values()), tick_labels)
      ax.xaxis.set_minor_formatter(NullFormatter())
      if scale != "log":
        ax.xaxis.set_minor_locator(NullLocator())
      if sum(len(t) + 2 for t in tick_labels) > 36:
        ax.tick_params(axis="x", labelrotation=30)
        for t in ax.get_xticklabels():
          t.set_horizontalalignment("right")
    else:
      ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt(v)))
      ax.xaxis.set_minor_formatter(NullFormatter())
    if not numeric:
      ax.set_xlim(-0.5, len(xs) - 0.5)
    ax.set_xlabel(key + {"log": " (log scale)", "symlog": " (symlog: linear below "
                         f"{fmt(linthresh)})"}.get(scale, ""))
    ax.set_ylabel("accuracy (%)" if show_test else "validation accuracy (%)")
    ax.grid(alpha=0.3)
    if others:   # below the panel's tick labels and x label (their height is fixed)
      below = (ax.bbox.y0 - ax.get_tightbbox(fig.canvas.get_renderer()).y0) / fig.dpi + 0.05
      at = ax.transAxes + ScaledTranslation(0, -below, fig.dpi_scale_trans)
      legends.append(_fit_legend(fig, ax, handles, labels, width=fig.bbox.width / len(keys),
                                 loc="upper center", bbox_to_anchor=(0.5, 0),
                                 bbox_transform=at, borderaxespad=0)[1:])
  if legends:   # side by side: the tallest counts, each within its panel's width
    _grow(fig, [(0.0, max(h for _, h in legends))])
  return fig


@primary_only
def plot_sweep(path: str, rows: list[dict], keys: list[str], *, show_test: bool = False) -> None:
  """Accuracy against the swept keys; validation as mean ± std over folds × seeds (solid,
  error bars), test (dashed, hollow, same colour as its validation) only with `show_test`,
  the figure then titled 'test shown for all points: not for selection'.

  A full grid of ≤ 3 varying keys gets one panel per key, a line per value of the other keys
  (legend below the panel); any other set of points (e.g. one per technique) one horizontal
  bar per point, its value printed at the right. Numeric axes of log-spaced positive values
  (1e-5, 1e-4, 1e-3) are log scale; with a 0 among them symlog, linear below the smallest
  positive value, so 0 sits one decade left of it. Values print with 3 significant digits (more
  only where needed to tell two apart), automatic names too; names longer than two
  40-character lines are shortened to labels that stay distinct (`unique_short`), numbered
  with a key of the full names below the axes where that cannot be done. Legends lie outside
  the axes, inside the saved image (the figure grows for them). Rows need "name", "point",
  "val_accuracy_mean", "val_accuracy_std", and "test_accuracy" with `show_test`.
  """
  fig = _sweep_figure(rows, keys, show_test)
  fig.savefig(path, dpi=130, bbox_inches="tight")


def _sweep_curves_figure(rows: list[dict], rungs: list[int] = ()):
  """The Figure of `plot_sweep_curves` (see there)."""
  labels, key = row_labels(rows)
  fig = new_figure(figsize=(8, 4.5), layout="constrained")
  ax = fig.subplots()
  handles = []
  for i, r in enumerate(rows):
    curve = r.get("curve") or []
    st = _style(i)
    (line,) = ax.plot([e for e, _ in curve], [v for _, v in curve], color=st["color"], lw=1.5,
                      marker=st["marker"] if i >= 10 else None,
                      markevery=max(1, len(curve) // 8), ms=4, gid=f"curve:{i}")
    handles.append(line)
  from matplotlib.ticker import MaxNLocator
  ax.xaxis.set_major_locator(MaxNLocator(integer=True))
  for epochs in sorted(set(rungs)):   # the decision falls after epoch `epochs` − 1 (0-based)
    ax.axvline(epochs - 1, color="0.4", ls="--", lw=0.9, gid=f"rung:{epochs}")
    ax.annotate(f"rung: {epochs} ep.", (epochs - 1, 1), xycoords=("data", "axes fraction"),
                xytext=(2, -2), textcoords="offset points", va="top", fontsize=7, color="0.3")
  ax.set_xlabel("epoch")
  ax.set_ylabel("validation loss (mean over folds × seeds)")
  ax.grid(alpha=0.3)
  legends = [_fit_legend(fig, fig, handles, labels)[1:]] if rows else []
  if key:
    legends.append(_key_legend(fig, key))
  if legends:
    _grow(fig, legends)
  return fig


@primary_only
def plot_sweep_curves(path: str, rows: list[dict], rungs: list[int] = ()) -> None:
  """Validation loss per epoch (mean over folds × seeds) for every sweep point, one colour
  per point (the colour of its bar in `plot_sweep`), the legend below the axes; long names are
  shortened as in `plot_sweep`. `rungs`: a search's rung epochs, marked by dashed lines."""
  fig = _sweep_curves_figure(rows, rungs)
  fig.savefig(path, dpi=130, bbox_inches="tight")
