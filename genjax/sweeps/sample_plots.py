"""A sampled sweep's figures (`genjax.sweeps.sampling`), as the Deep Learning Tuning Playbook
draws them, written by process 0 only next to the grid's plots:

* `plot_sampled` (sweep_sampled.png): validation accuracy against each sampled
  hyperparameter, one dot per point (mean over its seeds × folds), diverged points marked ×;
* `plot_best_so_far` (sweep_best_so_far.png): the best validation accuracy among the first
  k sampled points against k, the number of points drawn (in the order drawn).

With `--sweep` axes besides the sampled ones (seeds aside: a point's dot is its mean over
them), each combination of their values gets its own colour (and its own best-so-far line).
`_sampled_figure` / `_best_figure` build the Figures, for tests: artists carry gids
"point:<i>" (row i's dot), "diverged:<i>" (row i's × when it diverged), "best:<j>" (line j).
"""

from __future__ import annotations

import math

from genjax.report.files import primary_only
from genjax.report.plots import DIVERGED_COLOR, new_figure, save
from genjax.report.tables import DIVERGED_REASONS as DIVERGED, divergence  # noqa: F401
from genjax.sweeps.labels import formatter, is_number, short_keys
from genjax.sweeps.plots import diverged_handles, over_text
from genjax.sweeps.points import point_name

_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink",
           "tab:gray", "tab:olive", "tab:cyan")   # tab:red marks diverged points


def diverged(row: dict) -> bool:
  """Whether a point diverged (`genjax.report.tables.divergence`): a member stopped on a
  non-finite or diverging monitored value, or its mean validation loss or accuracy is not
  finite."""
  return divergence(row) is not None


def _same(a, b) -> bool:
  """Sweep values equal as members get them (3 == 3.0; tuples == lists)."""
  if is_number(a) and is_number(b):
    return float(a) == float(b)
  if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
    return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
  return a == b


def draw_order(rows: list[dict], sampling: dict) -> list[int | None]:
  """Per row, the number of the drawn point (`sampling["drawn"]`, 0-based) whose sampled
  values it has, or None (a row that is no sampled point)."""
  drawn = sampling["drawn"]
  keys = list(sampling["axes"])
  out = []
  for r in rows:
    point = r["point"]
    out.append(next((i for i, d in enumerate(drawn)
                     if all(k in point and _same(point[k], d[k]) for k in keys)), None))
  return out


def _others(rows: list[dict], sampling: dict) -> tuple[list[str], list[str]]:
  """(per row, the name of its values of the keys that are not sampled and vary: its
  colour's label, '' when none vary; the distinct labels, in order of appearance)."""
  keys = [k for k in dict.fromkeys(k for r in rows for k in r["point"])
          if k not in sampling["axes"] and len({repr(r["point"].get(k)) for r in rows}) > 1]
  names = [point_name({k: r["point"].get(k) for k in keys}) if keys else "" for r in rows]
  return names, list(dict.fromkeys(names))


def _accuracy(row: dict) -> float:
  """Validation accuracy in %, NaN when it is not a number."""
  try:
    return 100 * float(row["val_accuracy_mean"])
  except (TypeError, ValueError, KeyError):
    return float("nan")


def _axis_values(ax, key: str, dist: str, values: list):
  """Positions of `values` on panel `ax` for sampled key `key`: log scale for loguniform,
  one tick per value (in order of appearance) for a choice, else the values."""
  if all(is_number(v) for v in values) and not dist.startswith(("[", "choice")):
    if dist.startswith("loguniform"):
      ax.set_xscale("log")
    ax.set_xlabel(f"{key} ~ {dist}")
    return [float(v) for v in values]
  choices = list({repr(v): v for v in values}.values())
  show = formatter(choices)
  ax.set_xticks(range(len(choices)), [show(c) for c in choices])
  ax.set_xlim(-0.5, len(choices) - 0.5)
  ax.set_xlabel(f"{key} ~ choice")
  where = {repr(c): i for i, c in enumerate(choices)}
  return [where[repr(v)] for v in values]


def _mark(ax, i: int, x, y: float | None) -> None:
  """Row i's red ×: at its accuracy `y` when its selected models are finite (a member stopped
  on a NaN/inf loss), else on the panel's low edge (no accuracy shown)."""
  if y is None:
    ax.plot([x], [0.0], ls="none", marker="x", ms=9, mew=2, color=DIVERGED_COLOR,
            transform=ax.get_xaxis_transform(), clip_on=False, zorder=5, gid=f"diverged:{i}")
  else:
    ax.plot([x], [y], ls="none", marker="x", ms=9, mew=1.5, color=DIVERGED_COLOR, zorder=5,
            gid=f"diverged:{i}")


def _room(ax, rows: list[dict]) -> None:
  """Room below the data for the low edge's ×s (points with no finite model)."""
  if any(divergence(r) == "no_model" for r in rows):
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo - 0.08 * (hi - lo), hi)


def _mark_y(row: dict) -> float | None:
  return None if divergence(row) == "no_model" else _accuracy(row)


def _sampled_figure(rows: list[dict], sampling: dict):
  """The Figure of `plot_sampled` (see there)."""
  keys = list(sampling["axes"])
  fig = new_figure(figsize=(4.2 * len(keys), 3.6), layout="constrained")
  panels = fig.subplots(1, len(keys), squeeze=False)[0]
  colors, lines = _others(rows, sampling)
  short = short_keys(keys)
  for ax, key in zip(panels, keys):
    xs = _axis_values(ax, short[key] if len(short[key]) < len(key) else key,
                      sampling["axes"][key], [r["point"].get(key) for r in rows])
    for i, (r, x) in enumerate(zip(rows, xs)):
      if diverged(r):
        _mark(ax, i, x, _mark_y(r))
      else:
        ax.plot([x], [_accuracy(r)], ls="none", marker="o", ms=6, alpha=0.85, gid=f"point:{i}",
                color=_COLORS[lines.index(colors[i]) % len(_COLORS)])
    ax.set_ylabel("validation accuracy (%)")
    ax.grid(alpha=0.3)
    _room(ax, rows)
  _legend(fig, lines, rows)
  fig.suptitle(f"{len(sampling['drawn'])} points ({_how(sampling)}); one dot per point: "
               f"{_over(rows)}", fontsize="medium")
  return fig


def _over(rows: list[dict]) -> str:
  """'mean over 5 seeds × 5 folds' (seeds only where there are seeds), or 'one model each'."""
  text = over_text(rows)
  return text.replace("mean ± std over", "mean over") if text.startswith("mean") else text


def _how(sampling: dict) -> str:
  scrambled = "" if sampling["sampler"] == "random" or sampling.get("scramble", True) \
      else ", unscrambled"
  return f"{sampling['sampler']}{scrambled}, seed {sampling['seed']}"


def _legend(fig, lines: list[str], rows: list[dict]) -> None:
  """The colours' meaning (when grid axes vary) and the diverged marks, below the axes."""
  from matplotlib.lines import Line2D
  handles = [Line2D([], [], ls="none", marker="o", color=_COLORS[j % len(_COLORS)], label=n)
             for j, n in enumerate(lines) if n]
  handles += diverged_handles(rows)
  if handles:
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 2 if any(
        len(h.get_label()) > 30 for h in handles) else 4), fontsize="small", frameon=False)


def best_so_far(rows: list[dict], sampling: dict) -> dict[str, list[float]]:
  """{colour label: [best validation accuracy (%) among drawn points 0..k, for every k]}:
  a diverged point, or one not yet drawn under that label, counts as no point (NaN until
  the first finite one). Labels as `_others` (one '' line without grid axes)."""
  order = draw_order(rows, sampling)
  colors, lines = _others(rows, sampling)
  n = len(sampling["drawn"])
  out = {}
  for line in lines:
    own = [float("nan")] * n
    for r, k, c in zip(rows, order, colors):
      if c == line and k is not None and not diverged(r) and math.isfinite(_accuracy(r)):
        own[k] = max(_accuracy(r), own[k]) if math.isfinite(own[k]) else _accuracy(r)
    best, curve = float("nan"), []
    for a in own:
      best = a if not math.isfinite(best) else max(best, a) if math.isfinite(a) else best
      curve.append(best)
    out[line] = curve
  return out


def _best_figure(rows: list[dict], sampling: dict):
  """The Figure of `plot_best_so_far` (see there)."""
  fig = new_figure(figsize=(6.4, 4.0), layout="constrained")
  ax = fig.subplots()
  order = draw_order(rows, sampling)
  colors, lines = _others(rows, sampling)
  n = len(sampling["drawn"])
  for j, (line, curve) in enumerate(best_so_far(rows, sampling).items()):
    color = _COLORS[j % len(_COLORS)]
    ax.step(range(1, n + 1), curve, where="post", color=color, lw=1.8, gid=f"best:{j}")
    for i, (r, k, c) in enumerate(zip(rows, order, colors)):
      if c != line or k is None:
        continue
      if diverged(r):
        _mark(ax, i, k + 1, _mark_y(r))
      else:
        ax.plot([k + 1], [_accuracy(r)], ls="none", marker="o", ms=4, alpha=0.4, color=color,
                gid=f"point:{i}")
  from matplotlib.ticker import MaxNLocator
  ax.xaxis.set_major_locator(MaxNLocator(integer=True))
  ax.set_xlabel(f"number of points drawn ({_how(sampling)})")
  ax.set_ylabel("best validation accuracy so far (%)")
  ax.grid(alpha=0.3)
  _room(ax, rows)
  _legend(fig, lines, rows)
  ax.set_title(f"line: best so far; dots: each point ({_over(rows)})", fontsize="medium")
  return fig


@primary_only
def plot_sampled(path: str, rows: list[dict], sampling: dict) -> None:
  """Validation accuracy (the mean over each point's seeds × folds; seeds only where there
  are seeds) against each sampled key, one panel per key (log scale for loguniform, one tick
  per value for a choice), one dot per point, a red × for a diverged point (`diverged`; on
  the panel's low edge, no accuracy drawn, when it has no finite model).
  `sampling` is `Samples.record()` (sweep.json's "sampling"); rows need "point",
  "val_accuracy_mean", "val_loss_mean", "stop_reasons"."""
  fig = _sampled_figure(rows, sampling)
  save(fig, path, dpi=130, bbox_inches="tight")


@primary_only
def plot_best_so_far(path: str, rows: list[dict], sampling: dict) -> None:
  """The best validation accuracy among the first k points drawn against k (`best_so_far`),
  a step line per combination of the grid axes' values, each point's own accuracy a faint
  dot at its draw number, diverged points a red × (as in `plot_sampled`)."""
  fig = _best_figure(rows, sampling)
  save(fig, path, dpi=130, bbox_inches="tight")


def describe(sampling: dict) -> str:
  """One line: how a sweep's points were drawn, e.g. '16 points, sobol, seed 0: lr ~
  loguniform(1e-4,1e-1)'."""
  axes = ", ".join(f"{k} ~ {v}" for k, v in sampling["axes"].items())
  return f"{sampling['samples']} points, {_how(sampling)}: {axes}"

