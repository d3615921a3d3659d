"""A sweep's figures: `plot_sweep` (accuracy against the swept keys) and `plot_sweep_curves`
(validation loss per epoch of every point), written by process 0 only.

`_sweep_figure` / `_sweep_curves_figure` build the matplotlib Figures that `plot_sweep` /
`plot_sweep_curves` save, so tests can inspect them.  Artists carry gids: "val:<i>" and
"test:<i>" for line (or named point) i's validation and test marks, "diverged:<i>" for row
i's red × (a diverged point), "curve:<i>" for point i's loss curve.
"""

from __future__ import annotations

import math

from genjax.report.files import primary_only
from genjax.report.plots import DIVERGED_COLOR, new_figure, save
from genjax.report.tables import DAGGER, divergence, mean_std, percent
from genjax.sweeps.labels import (LABEL_CHARS, fmt, formatter, is_number, row_labels, short_keys,
                                  wrap)
from genjax.sweeps.points import point_name, without_seed

_TEST_NOTE = "test shown for all points: not for selection"
_MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def _style(i: int) -> dict:
  """Colour and marker of line (or point) i: the tab10 colours but red (a diverged point's ×),
  then the next marker."""
  colors = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink",
            "tab:gray", "tab:olive", "tab:cyan")
  return {"color": colors[i % 9], "marker": _MARKERS[(i // 9) % len(_MARKERS)]}


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


def _varying(rows: list[dict], keys: list[str]) -> list[str]:
  return [k for k in keys if len({repr(r["point"].get(k)) for r in rows}) > 1]


def _grid_keys(rows: list[dict], keys: list[str]) -> list[str] | None:
  """The varying keys when the rows are their full grid (≤ 3 keys), else None."""
  keys = _varying(rows, keys) or keys[:1]
  sizes = [len({repr(r["point"].get(k)) for r in rows}) for k in keys]
  if not keys or len(rows) != math.prod(sizes) or len(keys) > 3:
    return None
  return keys


def _named(rows: list[dict]) -> bool:
  """Whether a row carries a given name (`get_sweep`'s "name"), not its automatic one (its
  values' `point_name`, in any key order, with any number of digits)."""
  for r in rows:
    name = str(r.get("name") or "")
    point = without_seed(r["point"])
    parts = sorted(name.split(","))
    if name and not any(parts == sorted(",".join(point_name({k: v}, d) for k, v in point.items())
                                        .split(",")) for d in range(6, 18)):
      return True
  return False


def _panel_keys(rows: list[dict], keys: list[str]) -> list[str] | None:
  """The keys that get a panel of accuracy against their value: every varying key of a full
  grid (≤ 3 keys), or of a --zip / sampled set of unnamed points with a numeric key (≤ 4
  keys); None for named points (a dot per point)."""
  if not rows or _named(rows):
    return None
  grid = _grid_keys(rows, keys)
  if grid is not None:
    return grid
  varying = _varying(rows, keys)
  if not varying or len(varying) > 4 or not any(
      all(is_number(r["point"].get(k)) for r in rows) for k in varying):
    return None
  return varying


def over_text(rows: list[dict]) -> str:
  """What a point's validation number is over: 'mean ± std over 5 seeds × 5 folds', 'mean ±
  std over 2 folds', or 'one model per point' (× seeds only where there are seeds)."""
  seeds = max((int(r.get("seeds") or 1) for r in rows), default=1)
  folds = max((int(r.get("folds") or 1) for r in rows), default=1)
  parts = ([f"{seeds} seeds"] if seeds > 1 else []) + ([f"{folds} folds"] if folds > 1 else [])
  if parts:
    return "mean ± std over " + " × ".join(parts)
  if not any("folds" in r for r in rows) and any(_number(r.get("val_accuracy_std")) > 0
                                                 for r in rows):   # counts not given
    return "mean ± std over each point's members"
  return "one model per point"


def _val_note(rows: list[dict]) -> str:
  return f"validation: {over_text(rows)}"


def diverged_handles(rows: list[dict]) -> list:
  """Legend entries for the red × of diverged points (none when nothing diverged)."""
  from matplotlib.lines import Line2D
  kinds = {divergence(r) for r in rows}
  out = []
  if "no_model" in kinds:
    out.append(Line2D([], [], ls="none", marker="x", color=DIVERGED_COLOR, ms=8, mew=2,
                      label="diverged: NaN/inf loss, no accuracy (at the axis edge)"))
  if "member" in kinds:
    out.append(Line2D([], [], ls="none", marker="x", color=DIVERGED_COLOR, ms=8, mew=1.2,
                      label="† a member diverged and stopped (value at its selected weights)"))
  return out


def _mark_diverged(ax, i: int, row: dict, where: float, value: float | None, *,
                   horizontal: bool = False) -> None:
  """Row i's red ×: on its value (a member diverged) or, with no finite model, on the axis'
  low edge at its position (`where`): no plausible accuracy is drawn for it."""
  if value is None:
    transform = ax.get_yaxis_transform() if horizontal else ax.get_xaxis_transform()
    xy = ([0.0], [where]) if horizontal else ([where], [0.0])
    ax.plot(*xy, ls="none", marker="x", ms=9, mew=2, color=DIVERGED_COLOR, transform=transform,
            clip_on=False, zorder=5, gid=f"diverged:{i}")
  else:
    xy = ([value], [where]) if horizontal else ([where], [value])
    ax.plot(*xy, ls="none", marker="x", ms=11, mew=1.2, color=DIVERGED_COLOR, zorder=5,
            gid=f"diverged:{i}")


def _sweep_figure(rows: list[dict], keys: list[str], show_test: bool = False):
  """The Figure of `plot_sweep` (see there)."""
  panels = _panel_keys(rows, keys)
  if panels is None:
    return _sweep_dots(rows, show_test)
  return _sweep_panels(rows, panels, show_test)


def _sweep_dots(rows, show_test):
  """One dot per point with its error bar (test hollow, below it), values at the right; the
  accuracy axis spans the data (never from 0)."""
  import numpy as np
  from matplotlib.lines import Line2D
  labels, key = row_labels(rows)
  tall = max((x.count("\n") for x in labels), default=0)   # extra lines of a label
  per = (0.42 if show_test else 0.34) + 0.13 * tall
  fig = new_figure(figsize=(8, per * len(rows) + 1.3), layout="constrained")
  ax = fig.subplots()
  y = np.arange(len(rows))
  off = 0.17 if show_test else 0.0
  values, legends, extent = [], [], []
  for i, r in enumerate(rows):
    c = _style(i)["color"]
    how = divergence(r)
    if how == "no_model":
      _mark_diverged(ax, i, r, y[i], None, horizontal=True)
      values.append("diverged")
      continue
    val, std = 100 * _number(r["val_accuracy_mean"]), 100 * _number(r.get("val_accuracy_std"))
    eb = ax.errorbar([val], [y[i] - off], xerr=[std], color=c, marker="o", ms=7, ls="none",
                     ecolor="0.15", elinewidth=1, capsize=3)
    eb.lines[0].set_gid(f"val:{i}")
    extent += [val - std, val + std]
    text = mean_std(r["val_accuracy_mean"], r.get("val_accuracy_std"))
    if how == "member":
      _mark_diverged(ax, i, r, y[i] - off, val, horizontal=True)
      text += DAGGER
    if show_test:
      t = 100 * _number(r["test_accuracy"])
      ax.plot([t], [y[i] + off], ls="none", marker="o", ms=7, mfc="none", mec=c, mew=1.5,
              gid=f"test:{i}")
      extent.append(t)
      text += f"   test {percent(r['test_accuracy'])}"
    values.append(text)
  ax.set_yticks(y, labels, fontsize="small")
  ax.set_ylim(len(rows) - 0.5, -0.5)
  if extent:
    lo, hi = min(extent), max(extent)
    pad = max(0.08 * (hi - lo), 0.5)
    ax.set_xlim(lo - pad, hi + pad)
  ax.grid(alpha=0.3, axis="x")
  side = ax.twinx()
  side.set_ylim(ax.get_ylim())
  side.set_yticks(y, values, fontsize="small")
  for t, v in zip(side.get_yticklabels(), values):
    if v == "diverged":
      t.set_color(DIVERGED_COLOR)
  side.tick_params(length=0)
  handles = []
  if show_test:
    ax.set_xlabel("accuracy (%)")
    ax.set_title(_TEST_NOTE, fontsize="medium")
    handles = [Line2D([], [], ls="none", marker="o", color="0.45", label=_val_note(rows)),
               Line2D([], [], ls="none", marker="o", mfc="none", mec="0.3", label="test")]
  else:
    ax.set_xlabel(f"validation accuracy (%): {over_text(rows)}")
  handles += diverged_handles(rows)
  if handles:
    legends.append(_fit_legend(fig, fig, handles, [x.get_label() for x in handles],
                               loc="outside upper center")[1:])
  if key:
    legends.append(_key_legend(fig, key))
  if legends:
    _grow(fig, legends)
  return fig


def _sort_key(v):
  return (0, float(v), "") if is_number(v) else (1, 0.0, repr(v))


def _monotone(pairs) -> bool:
  """Whether the second values never change direction as the first grow (numbers), or are
  all equal."""
  ys = [b for _, b in sorted(pairs, key=lambda p: float(p[0]))]
  if len({repr(b) for b in ys}) <= 1:
    return True
  if not all(is_number(b) for b in ys):
    return False
  d = [float(b) - float(a) for a, b in zip(ys, ys[1:])]
  return all(x >= 0 for x in d) or all(x <= 0 for x in d)


def _series(rows, key, others):
  """(series, shared, joined) of the panel of `key`: the rows grouped by the values of the
  other keys that repeat (a grid axis: each of its values on ≥ 2 rows), sorted; the other
  keys that vary within a series (a --zip partner, a sampled key); whether a series is drawn
  as a line (its x values distinct and every such key moves one way with x: a grid or a zip),
  else as dots."""
  repeat = [k for k in others if all(
      sum(repr(r["point"].get(k)) == repr(v["point"].get(k)) for r in rows) >= 2 for v in rows)]
  shared = [k for k in others if k not in repeat]
  groups: dict = {}
  for r in rows:
    groups.setdefault(tuple(repr(r["point"].get(k)) for k in repeat),
                      (tuple(r["point"].get(k) for k in repeat), []))[1].append(r)
  series = sorted(groups.values(), key=lambda kv: tuple(_sort_key(v) for v in kv[0]))
  numeric = all(is_number(r["point"].get(key)) for r in rows)
  joined = numeric and all(
      len({float(r["point"][key]) for r in sel}) == len(sel) and all(
          _monotone([(r["point"][key], r["point"].get(k)) for r in sel]) for k in shared)
      for _, sel in series)
  return [(dict(zip(repeat, vals)), sel) for vals, sel in series], shared, joined


def _format_x(ax, key, xs, where, numeric, formats, short, shared, joined):
  """A panel's x axis: log or symlog for log-spaced values, a tick per grid value (rotated when
  long) or plain ticks, and the key's label naming the keys that move with it."""
  from matplotlib.ticker import FuncFormatter, NullFormatter, NullLocator
  scale, linthresh = _x_scale(xs) if numeric else ("linear", None)
  if scale == "symlog":
    ax.set_xscale("symlog", linthresh=linthresh, linscale=1.0)
  elif scale == "log":
    ax.set_xscale("log")
  tick_labels = [formats[key](x) for x in xs]
  if not numeric or (len(xs) <= 10 and (joined or not shared)):   # a tick per grid value
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
  label = key + {"log": " (log scale)", "symlog": " (symlog: linear below "
                 f"{fmt(linthresh)})"}.get(scale, "")
  if shared:   # a --zip partner or sampled keys: they vary along this axis too
    label += "\n" + ("with " if joined else "and ") + ", ".join(short[k] for k in shared) + \
        (" moving with it" if joined else " varying (dots: one per point)")
  ax.set_xlabel(label)


def _sweep_panels(rows, keys, show_test):
  """One panel per key: accuracy against its values, a line (or dots) per value of the
  repeating other keys, its legend below the panel."""
  from matplotlib.transforms import ScaledTranslation
  short = short_keys(keys)
  formats = {k: formatter([r["point"].get(k) for r in rows]) for k in keys}
  fig = new_figure(figsize=(4.8 * len(keys), 3.6), layout="constrained")
  panels = fig.subplots(1, len(keys), squeeze=False)[0]
  title = _val_note(rows)
  if show_test:
    title = f"solid, error bars: {title};" + ("\n" if len(keys) == 1 else " ") + \
        f"dashed, hollow: {_TEST_NOTE}"
  fig.suptitle(title, fontsize="medium")
  legends, any_labels = [], False
  index = {id(r): i for i, r in enumerate(rows)}
  for ax, key in zip(panels, keys):
    others = [k for k in keys if k != key]
    xs = list({repr(r["point"].get(key)): r["point"].get(key) for r in rows}.values())
    numeric = all(is_number(x) for x in xs)
    if numeric:
      xs.sort(key=float)
      where = {repr(x): float(x) for x in xs}
    else:
      where = {repr(x): float(i) for i, x in enumerate(xs)}
    series, shared, joined = _series(rows, key, others)
    handles, labels = [], []
    for j, (vals, sel) in enumerate(series):
      sel = sorted(sel, key=lambda r: where[repr(r["point"].get(key))])
      st = _style(j)
      label = ", ".join(f"{short[k]}={formats[k](v)}" for k, v in vals.items()) or "validation"
      ok = [r for r in sel if divergence(r) != "no_model"]
      pos = [where[repr(r["point"].get(key))] for r in ok]
      val = [100 * _number(r["val_accuracy_mean"]) for r in ok]
      eb = ax.errorbar(pos, val, yerr=[100 * _number(r.get("val_accuracy_std")) for r in ok],
                       color=st["color"], marker=st["marker"], capsize=3, lw=1.5, ms=5,
                       ls="-" if joined else "none")
      eb.lines[0].set_gid(f"val:{j}")
      if show_test:
        ax.plot(pos, [100 * _number(r["test_accuracy"]) for r in ok], color=st["color"],
                ls="--" if joined else "none", marker=st["marker"], mfc="none", ms=6, lw=1.2,
                gid=f"test:{j}")
      for r in sel:
        how = divergence(r)
        if how:
          _mark_diverged(ax, index[id(r)], r, where[repr(r["point"].get(key))],
                         None if how == "no_model" else 100 * _number(r["val_accuracy_mean"]))
      handles.append(eb)
      labels.append(label if len(label) <= LABEL_CHARS else label.replace(", ", "\n"))
    _format_x(ax, key, xs, where, numeric, formats, short, shared, joined)
    ax.set_ylabel("accuracy (%)" if show_test else "validation accuracy (%)")
    ax.grid(alpha=0.3)
    if any(divergence(r) == "no_model" for r in rows):   # the edge's ×s below the data
      lo, hi = ax.get_ylim()
      ax.set_ylim(lo - 0.08 * (hi - lo), hi)
    if len(series) > 1:   # below the panel's tick labels and x label (their height is fixed)
      any_labels = True
      below = (ax.bbox.y0 - ax.get_tightbbox(fig.canvas.get_renderer()).y0) / fig.dpi + 0.05
      at = ax.transAxes + ScaledTranslation(0, -below, fig.dpi_scale_trans)
      legends.append(_fit_legend(fig, ax, handles, labels, width=fig.bbox.width / len(keys),
                                 loc="upper center", bbox_to_anchor=(0.5, 0),
                                 bbox_transform=at, borderaxespad=0)[1:])
  grown = [(0.0, max(h for _, h in legends))] if legends else []
  marks = diverged_handles(rows)
  if marks:   # the red ×'s meaning, below everything (the panels' legends included)
    if any_labels:
      fig.get_layout_engine().set(h_pad=0.04)
    grown.append(_fit_legend(fig, fig, marks, [h.get_label() for h in marks])[1:])
  if grown:   # side by side: the tallest counts, each within its panel's width
    _grow(fig, grown)
  return fig


@primary_only
def plot_sweep(path: str, rows: list[dict], keys: list[str], *, show_test: bool = False) -> None:
  """Accuracy against the swept keys; validation as the mean ± std over each point's seeds ×
  folds (error bars; the figure says over how many, seeds only where there are seeds), test
  (dashed, hollow, same colour as its validation) only with `show_test`, the figure then
  titled 'test shown for all points: not for selection'.

  Unnamed points with a numeric key — a full grid of ≤ 3 varying keys, or a --zip or sampled
  set of ≤ 4 — get one panel per key: the accuracy against the key's value, a line per value
  of the other keys that repeat (a grid axis; legend below the panel); keys that vary along
  with it (a --zip partner) are named in the x label, and points whose other keys vary
  otherwise (sampled points) are dots, not a line. Named points (`get_sweep`'s "name", e.g.
  one per technique) and other sets get one dot with its error bar per point, its value at the
  right; that axis spans the data, never from 0. Numeric axes of log-spaced positive values
  (1e-5, 1e-4, 1e-3) are log scale; with a 0 among them symlog, linear below the smallest
  positive value, so 0 sits one decade left of it. Accuracies print as percent with two
  decimals ('48.95 ± 1.77', `genjax.report.tables.mean_std`), as in sweep.md; swept values
  with 3 significant digits (more only where needed to tell two apart), automatic names too;
  names longer than two 40-character lines are shortened to labels that stay distinct
  (`unique_short`), numbered with a key of the full names below the axes where that cannot
  be done. A diverged point (`genjax.report.tables.divergence`) is a red ×: on the axis' low
  edge, its value 'diverged', when it has no finite model (its chance-level accuracy is not
  drawn); over its dot, its value marked †, when a member stopped on a NaN/inf loss; a legend
  says which. Legends lie outside the axes, inside the saved image (the figure grows for
  them). Rows need "name", "point", "val_accuracy_mean", "val_accuracy_std", and
  "test_accuracy" with `show_test`; "folds", "seeds", "val_loss_mean", "stop_reasons" when
  known.
  """
  fig = _sweep_figure(rows, keys, show_test)
  save(fig, path, dpi=130, bbox_inches="tight")


def _sweep_curves_figure(rows: list[dict], rungs: list[int] = ()):
  """The Figure of `plot_sweep_curves` (see there)."""
  labels, key = row_labels(rows)
  fig = new_figure(figsize=(8, 4.5), layout="constrained")
  ax = fig.subplots()
  handles = []
  for i, r in enumerate(rows):
    curve = r.get("curve") or []
    st = _style(i)
    ys = [_finite_or_nan(v) for _, v in curve]
    (line,) = ax.plot([e for e, _ in curve], ys, color=st["color"], lw=1.5,
                      marker=st["marker"] if i >= 9 else None,
                      markevery=max(1, len(curve) // 8), ms=4, gid=f"curve:{i}")
    handles.append(line)
    bad = [e for (e, _), y in zip(curve, ys) if not math.isfinite(y)]
    if bad or divergence(r):   # where its loss went NaN/inf: a red × on the low edge
      at = bad[0] if bad else (curve[-1][0] if curve else 0)
      ax.plot([at], [0.0], ls="none", marker="x", ms=9, mew=2, color=DIVERGED_COLOR,
              transform=ax.get_xaxis_transform(), clip_on=False, zorder=5, gid=f"diverged:{i}")
      labels[i] += " (diverged)"
  from matplotlib.ticker import MaxNLocator
  ax.xaxis.set_major_locator(MaxNLocator(integer=True))
  for epochs in sorted(set(rungs)):   # the decision falls after epoch `epochs` − 1 (0-based)
    ax.axvline(epochs - 1, color="0.4", ls="--", lw=0.9, gid=f"rung:{epochs}")
    ax.annotate(f"rung: {epochs} ep.", (epochs - 1, 1), xycoords=("data", "axes fraction"),
                xytext=(2, -2), textcoords="offset points", va="top", fontsize=7, color="0.3")
  ax.set_xlabel("epoch")
  over = over_text(rows).replace("mean ± std over", "mean over")
  values = [y for ln in handles for y in ln.get_ydata() if math.isfinite(y) and y > 0]
  log = bool(values) and max(values) > 50 * min(values)   # a blown-up point hides the rest
  if log:
    ax.set_yscale("log")
  ax.set_ylabel(f"validation loss{' (log scale)' if log else ''}\n({over})")
  ax.grid(alpha=0.3)
  if any(h.get_gid() for h in ax.lines if (h.get_gid() or "").startswith("diverged:")):
    from matplotlib.lines import Line2D
    handles.append(Line2D([], [], ls="none", marker="x", color=DIVERGED_COLOR, mew=2,
                          label="diverged: first NaN/inf epoch"))
    labels.append("diverged: first NaN/inf epoch (or where it stopped)")
  legends = [_fit_legend(fig, fig, handles, labels)[1:]] if rows else []
  if key:
    legends.append(_key_legend(fig, key))
  if legends:
    _grow(fig, legends)
  return fig


def _finite_or_nan(v) -> float:
  try:
    return float(v)
  except (TypeError, ValueError):
    return float("nan")


@primary_only
def plot_sweep_curves(path: str, rows: list[dict], rungs: list[int] = ()) -> None:
  """Validation loss per epoch (the mean over each point's seeds × folds, as the y label
  says) for every sweep point, one colour per point (the colour of its dot in `plot_sweep`),
  on a log axis when one point's loss is over 50× another's, the legend below the axes; long
  names are shortened as in `plot_sweep`. A diverged point (a NaN/inf loss, or
  `genjax.report.tables.divergence`) is labelled so, with a red × on the axis' low edge at
  its first non-finite epoch. `rungs`: a search's rung epochs, marked by
  dashed lines."""
  fig = _sweep_curves_figure(rows, rungs)
  save(fig, path, dpi=130, bbox_inches="tight")
