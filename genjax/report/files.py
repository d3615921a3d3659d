"""What a run leaves in its workdir, and the table it prints.

    config.json          the resolved config
    metrics.jsonl        one JSON object per epoch
    results.json         final validation/test metrics and run facts
    learning_curves.png  train vs validation loss and accuracy

In a multi-host run only process 0 writes (`genjax.platform.distributed.is_primary`);
the writers here are no-ops on the other processes.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
from typing import Iterable

from genjax.platform import distributed


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
  """TensorBoard event files (tensorboardX, no TensorFlow): one directory per member, one event
  per member and epoch holding all of its scalars (tag `train/loss` for the row's `train_loss`)."""

  def __init__(self, root: str, names: list[str], prefix: str = ""):
    self._writers = []
    if distributed.is_primary():
      from tensorboardX import FileWriter
      self._writers = [FileWriter(os.path.join(root, n + prefix), flush_secs=30)
                       for n in names]

  def write(self, member: int, epoch: int, row: dict) -> None:
    if not self._writers:
      return
    from tensorboardX.proto.summary_pb2 import Summary
    values = [Summary.Value(tag=key.replace("_", "/", 1), simple_value=value)
              for key, value in row.items() if isinstance(value, float)]
    if values:
      self._writers[member].add_summary(Summary(value=values), epoch)

  def close(self) -> None:
    for w in self._writers:
      w.close()


# --- sweep figures -------------------------------------------------------------------------
#
# `_sweep_figure` / `_sweep_curves_figure` build the matplotlib Figures that `plot_sweep` /
# `plot_sweep_curves` save, so tests can inspect them.  Artists carry gids: "val:<i>" and
# "test:<i>" for line (or bar) i's validation and test marks, "curve:<i>" for point i's loss
# curve.

_TEST_NOTE = "test shown for all points: not for selection"
_VAL_NOTE = "validation: mean ± std over folds × seeds"
_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
_LABEL_CHARS = 40     # one line of a tick or legend label


def _is_number(v) -> bool:
  import numbers
  return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _fmt(v, digits: int = 3) -> str:
  """A value as a label: floats with `digits` significant digits, ints exactly."""
  import numbers
  if isinstance(v, bool) or v is None or isinstance(v, str):
    return str(v)
  if isinstance(v, numbers.Integral):
    return str(int(v))
  if isinstance(v, numbers.Real):
    return format(float(v), f".{digits}g")
  if isinstance(v, list):
    return "[" + ", ".join(_fmt(x, digits) for x in v) + "]"
  if isinstance(v, tuple):
    return "(" + ", ".join(_fmt(x, digits) for x in v) + ("," if len(v) == 1 else "") + ")"
  return str(v)


def _formatter(values):
  """`_fmt` with 3 significant digits, or the fewest more that keep distinct values apart."""
  distinct = list({repr(v): v for v in values}.values())
  for digits in range(3, 18):
    if len({_fmt(v, digits) for v in distinct}) == len(distinct):
      break
  return lambda v: _fmt(v, digits)


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


def _short_keys(keys) -> dict:
  """Config key -> its last dotted part, or the whole key where two keys share that part."""
  last = [k.split(".")[-1] for k in keys]
  return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last)}


def _name_label(row: dict) -> str:
  """A point's name, with the floats of an automatic name ('l2=0.00316228') at 3 digits."""
  import re
  name = str(row.get("name") or "")
  for v in (row.get("point") or {}).values():
    if _is_number(v) and not float(v).is_integer():
      g, short = format(float(v), "g"), _fmt(v)
      if g != short:
        name = re.sub(r"(?<==)" + re.escape(g) + r"(?=,|$)", short, name)
  return name


def _cut(s: str, limit: int) -> str:
  """`s` in at most `limit` characters, its middle elided."""
  if len(s) <= limit:
    return s
  keep = max(limit - 1, 2)
  head = (keep + 1) // 2
  return s[:head] + "…" + s[len(s) - (keep - head):]


def _unique_short(labels: list[str], limit: int) -> tuple[list[str], bool]:
  """(labels of at most `limit` characters that stay distinct, whether they are numbered).

  A label that is too long loses the ','-separated parts common to all labels
  ('l2=0.001,dropout=0.2' style names), then what it must from the prefix (or suffix) common
  to the too-long labels, else those and its middle; if that makes two labels equal, every
  label is numbered ('[3] …') and the caller shows the full names as a key.
  """
  if len(set(labels)) == len(labels) and all(len(s) <= limit for s in labels):
    return list(labels), False
  common = set.intersection(*[set(x.split(",")) for x in labels]) if len(labels) > 1 else set()
  if common:
    def drop(x):
      kept = [part for part in x.split(",") if part not in common]
      return "…," + ",".join(kept) if kept and len(x) > limit else x
    dropped = [drop(x) for x in labels]
    if len(set(dropped)) == len(dropped):
      labels = dropped
  p = s = 0                              # common to the labels that are too long
  long = [x for x in labels if len(x) > limit]
  if len(long) > 1:
    shortest = min(len(x) for x in long)
    while p < shortest and len({x[p] for x in long}) == 1:
      p += 1
    while s < shortest - p and len({x[len(x) - 1 - s] for x in long}) == 1:
      s += 1
  out = []
  for x in labels:
    excess = len(x) - limit + 1          # characters to give up for one '…'
    if excess <= 1:
      pass
    elif p >= excess:                    # from the common prefix, 8 characters before the rest
      end = p - min(8, p - excess)
      x = x[:end - excess] + "…" + x[end:]
    elif s >= excess:                    # from the common suffix, 8 characters after the rest
      start = len(x) - s + min(8, s - excess)
      x = x[:start] + "…" + x[start + excess:]
    else:                                # from both, as much context left of the rest as right
      room = limit - (len(x) - p - s) - (p > 0) - (s > 0)
      left, right = (min(p, room // 2), min(s, room - room // 2)) if room > 0 else (0, 0)
      x = (("…" if p else "") + x[p - left:len(x) - s + right] + ("…" if s else "")
           if p < len(x) - s else x)
      x = _cut(x, limit)
    out.append(x)
  if len(set(out)) == len(out):
    return out, False
  return [f"[{i + 1}] " + _cut(x, limit - 5) for i, x in enumerate(labels)], True


def _wrap(s: str, width: int = _LABEL_CHARS) -> str:
  """`s` on lines of at most `width` characters, broken after ',' or spaces where it can be
  (a longer run fills the line it starts on)."""
  import re
  lines, line = [], ""
  for tok in re.split(r"(?<=[,\s])", s):
    while tok:
      if len(line) + len(tok.rstrip()) <= width:
        line, tok = line + tok, ""
      elif len(tok.rstrip()) <= width:
        lines.append(line)
        line = ""
      else:
        take = width - len(line)
        lines.append(line + tok[:take])
        line, tok = "", tok[take:]
  lines.append(line)
  return "\n".join(x.rstrip() for x in lines if x.strip()) or s


def _row_labels(rows: list[dict], lines: int = 2) -> tuple[list[str], list[str] | None]:
  """(distinct labels of the rows' names, on ≤ `lines` lines of ≤ 40 characters; the
  full names as a key where the labels had to be numbered, else None)."""
  names = [str(r.get("name") or "") for r in rows]
  labels = [_name_label(r) for r in rows]
  if len(set(labels)) < len(set(names)):
    labels = names
  short, numbered = _unique_short(labels, _LABEL_CHARS * lines - 4 * (lines - 1))
  return [_wrap(x) for x in short], (names if numbered else None)


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
  _, w, h = _fit_legend(fig, fig, blank, [f"[{i + 1}] " + _wrap(n, 90)
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
  plt = _pyplot()
  grid = _grid_keys(rows, keys)
  if grid is None:
    return _sweep_bars(plt, rows, show_test)
  return _sweep_grid(plt, rows, grid, show_test)


def _sweep_bars(plt, rows, show_test):
  """One horizontal bar per point (test hollow, dashed, below it), values at the right."""
  import numpy as np
  from matplotlib.patches import Patch
  labels, key = _row_labels(rows)
  tall = max((x.count("\n") for x in labels), default=0)   # extra lines of a label
  per = (0.5 if show_test else 0.34) + 0.13 * tall
  fig = plt.figure(figsize=(8, per * len(rows) + 1.3), layout="constrained")
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
    text = f"{_fmt(val[i])} ± {_fmt(std[i])}"
    if show_test:
      t = 100 * _number(r["test_accuracy"])
      tb = ax.barh(y[i] + off, t, h, facecolor="none", edgecolor=c, linestyle="--", lw=1.5)
      tb.patches[0].set_gid(f"test:{i}")
      text += f"   test {_fmt(t)}"
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
  return (0, float(v), "") if _is_number(v) else (1, 0.0, repr(v))


def _sweep_grid(plt, rows, keys, show_test):
  """One panel per key, a line per value of the other keys, its legend below the panel."""
  from matplotlib.ticker import FuncFormatter, NullFormatter, NullLocator
  from matplotlib.transforms import ScaledTranslation
  short = _short_keys(keys)
  fmt = {k: _formatter([r["point"].get(k) for r in rows]) for k in keys}
  fig = plt.figure(figsize=(4.8 * len(keys), 3.6), layout="constrained")
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
    numeric = all(_is_number(x) for x in xs)
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
      label = ", ".join(f"{short[k]}={fmt[k](v)}" for k, v in zip(others, vals)) or "validation"
      eb = ax.errorbar(pos, [100 * _number(r["val_accuracy_mean"]) for r in sel],
                       yerr=[100 * _number(r.get("val_accuracy_std")) for r in sel],
                       color=st["color"], marker=st["marker"], capsize=3, lw=1.5, ms=5)
      eb.lines[0].set_gid(f"val:{j}")
      if show_test:
        ax.plot(pos, [100 * _number(r["test_accuracy"]) for r in sel], color=st["color"],
                ls="--", marker=st["marker"], mfc="none", ms=6, lw=1.2, gid=f"test:{j}")
      handles.append(eb)
      labels.append(label if len(label) <= _LABEL_CHARS else label.replace(", ", "\n"))
    scale, linthresh = _x_scale(xs) if numeric else ("linear", None)
    if scale == "symlog":
      ax.set_xscale("symlog", linthresh=linthresh, linscale=1.0)
    elif scale == "log":
      ax.set_xscale("log")
    tick_labels = [fmt[key](x) for x in xs]
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
      ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _fmt(v)))
      ax.xaxis.set_minor_formatter(NullFormatter())
    if not numeric:
      ax.set_xlim(-0.5, len(xs) - 0.5)
    ax.set_xlabel(key + {"log": " (log scale)", "symlog": " (symlog: linear below "
                         f"{_fmt(linthresh)})"}.get(scale, ""))
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
  40-character lines are shortened to labels that stay distinct (`_unique_short`), numbered
  with a key of the full names below the axes where that cannot be done. Legends lie outside
  the axes, inside the saved image (the figure grows for them). Rows need "name", "point",
  "val_accuracy_mean", "val_accuracy_std", and "test_accuracy" with `show_test`.
  """
  plt = _pyplot()
  fig = _sweep_figure(rows, keys, show_test)
  fig.savefig(path, dpi=130, bbox_inches="tight")
  plt.close(fig)


def _sweep_curves_figure(rows: list[dict]):
  """The Figure of `plot_sweep_curves` (see there)."""
  plt = _pyplot()
  labels, key = _row_labels(rows)
  fig = plt.figure(figsize=(8, 4.5), layout="constrained")
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
def plot_sweep_curves(path: str, rows: list[dict]) -> None:
  """Validation loss per epoch (mean over folds × seeds) for every sweep point, one colour
  per point (the colour of its bar in `plot_sweep`), the legend below the axes; long names are
  shortened as in `plot_sweep`."""
  plt = _pyplot()
  fig = _sweep_curves_figure(rows)
  fig.savefig(path, dpi=130, bbox_inches="tight")
  plt.close(fig)
