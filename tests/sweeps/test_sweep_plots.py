"""The sweep figures (`genjax.sweeps.plots.plot_sweep`, `plot_sweep_curves`) are readable: test only
when asked (and then marked as not for selection), one colour per point for validation and
test, error bars on validation, log axes for log-spaced values, legends inside the image, and
distinct labels with 3 significant digits. Artists are found by their gids ("val:<i>",
"test:<i>", "curve:<i>")."""

import itertools

import numpy as np
import pytest

import matplotlib
from genjax.sweeps import labels, plots

matplotlib.use("Agg")   # this test process's own pyplot (genjax draws outside pyplot)
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402  (after the Agg backend is chosen)
from matplotlib.legend import Legend  # noqa: E402

NOTE = "test shown for all points: not for selection"


def row(name, point, i=0, test=True, epochs=10):
  r = {"name": name, "point": point, "val_accuracy_mean": 0.9 + 0.003 * (i % 7),
       "val_accuracy_std": 0.004 + 0.001 * (i % 3),
       "curve": [[e, 1.0 / e + 0.01 * i] for e in range(1, epochs + 1)]}
  if test:
    r["test_accuracy"] = 0.88 + 0.002 * (i % 5)
  return r


def grid_rows(l2s=(1e-5, 1e-4, 1e-3), dropouts=(0.0, 0.2), test=True):
  return [row(f"l2={a:g},dropout={b:g}", {"optim.l2": a, "model.dropout": b}, i, test)
          for i, (a, b) in enumerate(itertools.product(l2s, dropouts))]


def bar_rows(names, test=True):
  return [row(n, {"technique.strength": i, f"k{i}": i}, i, test) for i, n in enumerate(names)]


def by_gid(fig, prefix):
  return {a.get_gid(): a for a in fig.findobj(lambda a: (a.get_gid() or "").startswith(prefix))}


def all_text(fig):
  return " ".join(t.get_text() for t in fig.findobj(plt.Text))


def data_axes(fig):
  """The panels of a grid figure (in subfigures, with a y label)."""
  return [ax for ax in fig.findobj(plt.Axes) if ax.get_ylabel()]


def bar_axes(fig):
  """(the bars, the values printed at their right) of a bar figure."""
  main, side = fig.axes
  return main, side


@pytest.fixture(autouse=True)
def close_figures():
  yield
  plt.close("all")


def test_grid_layout_one_panel_per_key_and_log_axis():
  fig = plots._sweep_figure(grid_rows(), ["model.dropout", "optim.l2", "seed"], True)
  axes = {ax.get_xlabel().split(" ")[0]: ax for ax in data_axes(fig)}
  assert set(axes) == {"model.dropout", "optim.l2"}
  assert axes["optim.l2"].get_xscale() == "log"
  assert axes["model.dropout"].get_xscale() == "linear"
  assert len(by_gid(fig, "val:")) == 3 and len(by_gid(fig, "test:")) == 3  # per panel: 3 and 2
  fig.canvas.draw()
  assert [t.get_text() for t in axes["optim.l2"].get_xticklabels()] == ["1e-05", "0.0001", "0.001"]


def test_three_keys_with_categorical_values():
  rows = [row("", {"opt": o, "aug": a, "l2": l}, i) for i, (o, a, l) in
          enumerate(itertools.product(["adam", "sgd"], [True, False], [None, 0.5]))]
  fig = plots._sweep_figure(rows, ["opt", "aug", "l2"])
  _assert_legends_inside(fig, 3)
  axes = {ax.get_xlabel(): ax for ax in data_axes(fig)}
  assert [t.get_text() for t in axes["opt"].get_xticklabels()] == ["adam", "sgd"]
  assert [t.get_text() for t in axes["aug"].get_xticklabels()] == ["True", "False"]
  assert [t.get_text() for t in axes["l2"].get_xticklabels()] == ["None", "0.5"]
  assert len(by_gid(fig, "val:")) == 4           # per panel: the 2 × 2 other values


def test_a_zero_among_log_spaced_values_is_symlog():
  fig = plots._sweep_figure(grid_rows(l2s=(0.0, 1e-5, 1e-4, 1e-3)), ["optim.l2", "model.dropout"])
  ax = next(ax for ax in data_axes(fig) if ax.get_xlabel().startswith("optim.l2"))
  assert ax.get_xscale() == "symlog"
  fig.canvas.draw()
  assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1e-05", "0.0001", "0.001"]
  assert plots._x_scale([1, 10, 20, 30]) == ("linear", None)
  assert plots._x_scale([0.1, 0.2, 0.3]) == ("linear", None)
  assert plots._x_scale(list(np.logspace(-4, -1, 7)))[0] == "log"
  assert plots._x_scale([-1e-3, 1e-3, 1e-1]) == ("linear", None)


def test_no_test_when_not_shown():
  for rows, keys in ((grid_rows(test=False), ["optim.l2", "model.dropout"]),
                     (bar_rows(["a", "b", "c"], test=False), ["technique.strength", "k0"])):
    fig = plots._sweep_figure(rows, keys)
    assert by_gid(fig, "val:") and not by_gid(fig, "test:")
    fig.canvas.draw()
    assert "test" not in all_text(fig)


def test_grid_test_in_its_validation_colour_dashed_and_marked():
  fig = plots._sweep_figure(grid_rows(), ["optim.l2", "model.dropout"], show_test=True)
  assert NOTE in fig.get_suptitle()
  for ax in data_axes(fig):
    vals = [ln for ln in ax.lines if (ln.get_gid() or "").startswith("val:")]
    tests = {ln.get_gid(): ln for ln in ax.lines if (ln.get_gid() or "").startswith("test:")}
    assert len(vals) == len(tests) > 1
    colours = set()
    for v in vals:
      t = tests["test:" + v.get_gid().split(":")[1]]
      assert to_rgba(v.get_color()) == to_rgba(t.get_color())
      assert t.get_linestyle() == "--" and v.get_linestyle() == "-"
      assert t.get_markerfacecolor() == "none"
      colours.add(to_rgba(v.get_color()))
    assert len(colours) == len(vals)              # the lines themselves differ


def test_error_bars_on_validation_everywhere():
  rows = grid_rows()
  fig = plots._sweep_figure(rows, ["optim.l2", "model.dropout"])
  ax = next(ax for ax in data_axes(fig) if ax.get_xlabel().startswith("optim.l2"))
  bars = [c for c in ax.containers if getattr(c, "has_yerr", False)]
  assert len(bars) == 2
  half = sorted(float(np.ptp(seg[:, 1])) / 2 for c in bars for seg in c.lines[2][0].get_segments())
  assert half == pytest.approx(sorted(100 * r["val_accuracy_std"] for r in rows))
  rows = bar_rows(["a", "b", "c"])
  fig = plots._sweep_figure(rows, ["technique.strength", "k0"], show_test=True)
  ax = bar_axes(fig)[0]
  errs = [c.errorbar for c in ax.containers if getattr(c, "errorbar", None) is not None]
  assert len(errs) == 3                         # validation bars only
  half = [float(np.ptp(e.lines[2][0].get_segments()[0][:, 0])) / 2 for e in errs]
  assert half == pytest.approx([100 * r["val_accuracy_std"] for r in rows])


def test_bars_test_hollow_in_its_validation_colour():
  fig = plots._sweep_figure(bar_rows(["a", "b", "c", "d"]), ["technique.strength", "k0"], True)
  vals, tests = by_gid(fig, "val:"), by_gid(fig, "test:")
  assert len(vals) == len(tests) == 4
  for gid, v in vals.items():
    t = tests["test" + gid[3:]]
    assert to_rgba(v.get_facecolor()) == to_rgba(t.get_edgecolor())
    assert to_rgba(t.get_facecolor())[3] == 0    # hollow
    assert t.get_linestyle() == "--"
  assert len({to_rgba(v.get_facecolor()) for v in vals.values()}) == 4
  _assert_legends_inside(fig)                   # the validation / test legend
  assert NOTE in all_text(fig)


def _assert_legends_inside(fig, min_legends=1):
  fig.canvas.draw()
  renderer = fig.canvas.get_renderer()
  legends = fig.findobj(Legend)
  assert len(legends) >= min_legends
  box = fig.bbox
  axes = [ax.get_window_extent(renderer) for ax in fig.findobj(plt.Axes)]
  for leg in legends:
    e = leg.get_window_extent(renderer)
    assert e.x0 >= box.x0 - 1 and e.y0 >= box.y0 - 1 and e.x1 <= box.x1 + 1 and e.y1 <= box.y1 + 1
    assert not any(e.overlaps(a) for a in axes)  # outside the axes: never over the data
  return legends


def test_many_lines_legends_inside_the_figure_in_columns():
  rows = grid_rows(l2s=(1e-5, 1e-3), dropouts=tuple(0.05 * i for i in range(12)))
  fig = plots._sweep_figure(rows, ["optim.l2", "model.dropout"], True)
  legends = _assert_legends_inside(fig, 2)
  twelve = next(leg for leg in legends if len(leg.get_texts()) == 12)
  assert twelve.get_window_extent().height < 0.4 * fig.bbox.height   # columns, not one tall list
  assert len({round(t.get_window_extent().x0) for t in twelve.get_texts()}) > 1
  heights = {round(ax.get_window_extent().height) for ax in data_axes(fig)}
  assert len(heights) == 1 and heights.pop() / fig.dpi > 2.5   # aligned; the figure grew
  panel = next(ax for ax in data_axes(fig) if ax.get_xlabel().startswith("optim.l2"))
  styles = {(to_rgba(ln.get_color()), ln.get_marker()) for ln in panel.lines
            if (ln.get_gid() or "").startswith("val:")}
  assert len(styles) == 12                      # 12 lines tell apart (colour, then marker)
  names = [f"regularisation technique number {i} with a rather long descriptive name"
           for i in range(12)]
  fig = plots._sweep_curves_figure(bar_rows(names))
  (leg,) = _assert_legends_inside(fig)
  assert len(leg.get_texts()) == 12
  assert leg.get_window_extent().height < 0.5 * fig.bbox.height
  assert len({round(t.get_window_extent().x0) for t in leg.get_texts()}) > 1   # columns
  assert fig.axes[0].get_window_extent().height / fig.dpi > 3   # the figure grew for it
  assert len(by_gid(fig, "curve:")) == 12
  colours = {(to_rgba(ln.get_color()), ln.get_marker()) for ln in by_gid(fig, "curve:").values()}
  assert len(colours) == 12                     # 12 lines tell apart (colour, then marker)


def test_long_names_stay_distinct():
  common = "a name that shares a long beginning with all the other names of this sweep: "
  names = [common + f"variant {i}" for i in range(9)]
  fig = plots._sweep_figure(bar_rows(names), ["technique.strength", "k1"])
  fig.canvas.draw()
  ticks = [t.get_text() for t in bar_axes(fig)[0].get_yticklabels()]
  assert len(set(ticks)) == 9
  assert all(max(len(line) for line in t.split("\n")) <= 40 for t in ticks)
  assert all(f"variant {i}" in t for i, t in enumerate(ticks))   # the distinguishing part
  assert not any(t.startswith("[") for t in ticks) and not fig.findobj(Legend)  # no key needed


def test_names_cut_to_equal_strings_are_numbered_with_a_key():
  names = [f"{h}{'x' * 60} {m} {'y' * 60}{t}" for h, m, t in (("a", 0, "p"), ("a", 1, "p"),
                                                             ("b", 0, "q"))] + ["short"]
  fig = plots._sweep_figure(bar_rows(names), ["technique.strength", "k1"])
  _assert_legends_inside(fig)
  ticks = [t.get_text() for t in bar_axes(fig)[0].get_yticklabels()]
  assert len(set(ticks)) == 4 and all(t.startswith(f"[{i + 1}]") for i, t in enumerate(ticks))
  key = "".join(t.get_text() for leg in fig.findobj(Legend) for t in leg.get_texts()).split()
  assert all("".join(f"[{i + 1}] {n}".split()) in "".join(key) for i, n in enumerate(names))
  # a distinguishing middle is kept when the labels around it are common
  short, numbered = labels.unique_short(["x" * 90 + f" {i} " + "y" * 90 for i in range(3)]
                                        + ["short"], 76)
  assert not numbered and all(f" {i} " in short[i] for i in range(3)) and short[3] == "short"
  short, numbered = labels.unique_short(["l2=0.1,dropout=0.2,lr=" + "9" * 80,
                                         "l2=0.1,dropout=0.3,lr=" + "9" * 80], 40)
  assert not numbered and len(set(short)) == 2 and all(len(s) <= 40 for s in short)


def test_values_with_three_significant_digits():
  l2s = tuple(np.logspace(-3, -2, 3))           # 0.001, 0.00316227766, 0.01
  rows = grid_rows(l2s=l2s, dropouts=(0.1, 1 / 3))
  fig = plots._sweep_figure(rows, ["optim.l2", "model.dropout"])
  fig.canvas.draw()
  axes = {ax.get_xlabel().split(" ")[0]: ax for ax in data_axes(fig)}
  assert [t.get_text() for t in axes["optim.l2"].get_xticklabels()] == ["0.001", "0.00316", "0.01"]
  assert [t.get_text() for t in axes["model.dropout"].get_xticklabels()] == ["0.1", "0.333"]
  legend_texts = {t.get_text() for leg in fig.findobj(Legend) for t in leg.get_texts()}
  assert legend_texts == {"dropout=0.1", "dropout=0.333", "l2=0.001", "l2=0.00316", "l2=0.01"}
  # automatic names carry `:g` floats; bars print them (and the values) at 3 digits
  rows = [row(f"l2={a:g},dropout={b:g}", {"l2": a, "dropout": b}, i) for i, (a, b) in
          enumerate([(l2s[1], 0.2), (l2s[2], 0.2), (l2s[1], 1 / 3)])]
  fig = plots._sweep_figure(rows, ["l2", "dropout"], True)
  fig.canvas.draw()
  main, side = bar_axes(fig)
  assert [t.get_text() for t in main.get_yticklabels()] == [
      "l2=0.00316,dropout=0.2", "l2=0.01,dropout=0.2", "l2=0.00316,dropout=0.333"]
  assert side.get_yticklabels()[0].get_text() == "90 ± 0.4   test 88"
  assert labels.fmt(93.71234) == "93.7" and labels.fmt(0.0003123) == "0.000312"
  fmt = labels.formatter([0.001, 0.0010001, 0.5])   # 3 digits would merge two values
  assert len({fmt(v) for v in (0.001, 0.0010001, 0.5)}) == 3


def test_plot_functions_write_images(tmp_path):
  """The saved images hold the whole figure (bbox_inches="tight"); the figures are closed."""
  grid, curves = str(tmp_path / "grid.png"), str(tmp_path / "curves.png")
  plots.plot_sweep(grid, grid_rows(test=False), ["optim.l2", "model.dropout"], show_test=False)
  plots.plot_sweep_curves(curves, bar_rows(["a", "b"]))
  for path in (grid, curves):
    image = plt.imread(path)
    assert image.shape[0] > 300 and image.shape[1] > 500
  assert not plt.get_fignums()
