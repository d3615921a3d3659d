"""The sweep figures (`genjax.sweeps.plots.plot_sweep`, `plot_sweep_curves`) are readable: test only
when asked (and then marked as not for selection), one colour per point for validation and
test, error bars on validation, log axes for log-spaced values, legends inside the image, and
distinct labels with 3 significant digits. Named points are dots with error bars on an axis
near the data; numeric axes (grid, --zip, sampled) the accuracy against the value; accuracies
print with two decimals; seeds are named only where there are seeds; diverged points are red
×s, never a plausible accuracy. Artists are found by their gids ("val:<i>", "test:<i>",
"curve:<i>", "diverged:<i>")."""

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
  """(the dots, the values printed at their right) of a named points' figure."""
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
  errs = [c for c in ax.containers if getattr(c, "has_xerr", False)]
  assert len(errs) == 3                         # validation dots only
  half = [float(np.ptp(e.lines[2][0].get_segments()[0][:, 0])) / 2 for e in errs]
  assert half == pytest.approx([100 * r["val_accuracy_std"] for r in rows])


def test_named_points_test_hollow_in_its_validation_colour():
  fig = plots._sweep_figure(bar_rows(["a", "b", "c", "d"]), ["technique.strength", "k0"], True)
  vals, tests = by_gid(fig, "val:"), by_gid(fig, "test:")
  assert len(vals) == len(tests) == 4
  for gid, v in vals.items():
    t = tests["test" + gid[3:]]
    assert v.get_marker() == t.get_marker() == "o"
    assert to_rgba(v.get_color()) == to_rgba(t.get_markeredgecolor())
    assert t.get_markerfacecolor() == "none"     # hollow
  assert len({to_rgba(v.get_color()) for v in vals.values()}) == 4
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
  # automatic names carry `:g` floats; the dots print them at 3 digits, the accuracies as
  # percent with two decimals (sweep.md's format)
  rows = [row(f"l2={a:g},dropout={b:g}", {"l2": a, "dropout": b}, i) for i, (a, b) in
          enumerate([(l2s[1], 0.2), (l2s[2], 0.2), (l2s[1], 1 / 3)])]
  fig = plots._sweep_dots(rows, True)
  fig.canvas.draw()
  main, side = bar_axes(fig)
  assert [t.get_text() for t in main.get_yticklabels()] == [
      "l2=0.00316,dropout=0.2", "l2=0.01,dropout=0.2", "l2=0.00316,dropout=0.333"]
  assert side.get_yticklabels()[0].get_text() == "90.00 ± 0.40   test 88.00"
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


# The researcher's defects (issue #34, part 5): a --zip search drawn as bars from 0 to 100%,
# "× seeds" without seeds, mixed number formats, a diverged point shown as 10.00%.

LRS = (1e-4, 1e-3, 1e-2, 1e-1)
RED = to_rgba("tab:red")


def zip_rows(accs=(0.62, 0.64, 0.655, 0.60), diverge=None, folds=5, seeds=None):
  """A learning-rate × weight-decay --zip: the keys move together, one point per value."""
  out = []
  for i, (lr, wd, a) in enumerate(zip(LRS, (0.0, 1e-5, 1e-4, 1e-3), accs)):
    r = {"name": f"learning_rate={lr:g},weight_decay={wd:g}",
         "point": {"optimizer.learning_rate": lr, "optimizer.weight_decay": wd},
         "folds": folds, "val_accuracy_mean": a, "val_accuracy_std": 0.01 + 0.002 * i,
         "val_loss_mean": 1.0, "stop_reasons": "patience",
         "curve": [[e, 1.0 / (e + 1) + 0.01 * i] for e in range(6)]}
    if seeds:
      r["seeds"] = seeds
    out.append(r)
  if diverge is not None:   # no finite model: NaN loss, a chance-level accuracy
    out[diverge].update(val_accuracy_mean=0.0995, val_accuracy_std=0.0, val_loss_mean=None,
                        stop_reasons="non_finite", curve=[[0, None]])
  return out


def hold_out(rows):
  return [{**r, "val_accuracy_std": 0.0} for r in rows]


def named_rows(means=(0.64, 0.631, 0.6455), stds=(0.0203, 0.0151, 0.012)):
  return [{"name": n, "point": {"penalties.l2.strength": s, "model.dropout": d}, "folds": 5,
           "seeds": 3, "val_accuracy_mean": m, "val_accuracy_std": sd, "val_loss_mean": 1.0,
           "stop_reasons": "max_epochs", "test_accuracy": m - 0.01, "curve": [[0, 1.0]]}
          for n, s, d, m, sd in zip(("none", "l2", "dropout"), (0.0, 1e-3, 0.0),
                                    (0.0, 0.0, 0.2), means, stds)]


def panel(fig, key):
  return next(ax for ax in data_axes(fig) if ax.get_xlabel().startswith(key))


def test_a_zip_search_is_accuracy_against_the_learning_rate_on_a_log_axis():
  rows = zip_rows()
  fig = plots._sweep_figure(rows, ["optimizer.learning_rate", "optimizer.weight_decay"])
  ax = panel(fig, "optimizer.learning_rate")
  assert ax.get_xscale() == "log" and not ax.patches          # no bars
  (line,) = by_gid(ax, "val:").values()
  assert list(line.get_xdata()) == list(LRS)
  assert list(line.get_ydata()) == pytest.approx([100 * r["val_accuracy_mean"] for r in rows])
  assert line.get_linestyle() == "-"                           # its partner moves with it
  assert "weight_decay" in ax.get_xlabel()                     # ... and the x label says so
  low, high = ax.get_ylim()
  assert 55 < low < 60 and 66 < high < 70                      # near the data, not 0..100
  assert panel(fig, "optimizer.weight_decay").get_xscale() == "symlog"


def test_a_grid_draws_one_line_per_value_of_the_second_axis():
  rows = grid_rows(l2s=LRS, dropouts=(0.0, 0.2, 0.5), test=False)
  fig = plots._sweep_figure(rows, ["optim.l2", "model.dropout"])
  ax = panel(fig, "optim.l2")
  lines = [ln for ln in ax.lines if (ln.get_gid() or "").startswith("val:")]
  assert len(lines) == 3 and all(list(ln.get_xdata()) == list(LRS) for ln in lines)
  assert {t.get_text() for t in ax.get_legend().get_texts()} == {
      "dropout=0", "dropout=0.2", "dropout=0.5"}
  # sweep.json lists a point's keys sorted, its automatic name in the --sweep order: still a grid
  for r in rows:
    r["point"] = dict(reversed(list(r["point"].items())))
  assert panel(plots._sweep_figure(rows, ["model.dropout", "optim.l2"]), "optim.l2")


def test_sampled_points_are_dots_against_each_numeric_key():
  rng = np.random.default_rng(0)
  rows = [{"name": f"learning_rate={lr:g},dropout={d:g}",
           "point": {"optimizer.learning_rate": lr, "model.dropout": d}, "folds": 2,
           "val_accuracy_mean": a, "val_accuracy_std": 0.01, "val_loss_mean": 1.0,
           "stop_reasons": "max_epochs", "curve": []}
          for lr, d, a in zip(10 ** rng.uniform(-4, -1, 8), rng.uniform(0, 0.5, 8),
                              rng.uniform(0.5, 0.6, 8))]
  fig = plots._sweep_figure(rows, ["model.dropout", "optimizer.learning_rate"])
  ax = panel(fig, "optimizer.learning_rate")
  (dots,) = by_gid(ax, "val:").values()
  assert ax.get_xscale() == "log" and len(dots.get_xdata()) == 8
  assert dots.get_linestyle() == "None"                        # dropout varies: no line


def test_named_points_are_dots_on_an_axis_near_the_data():
  fig = plots._sweep_figure(named_rows(), ["model.dropout", "penalties.l2.strength"], True)
  main, side = bar_axes(fig)
  assert not main.patches                                       # no bars from 0
  assert {ln.get_marker() for ln in by_gid(fig, "val:").values()} == {"o"}
  low, high = main.get_xlim()
  assert 55 < low < 62 and 66 < high < 70
  texts = [t.get_text() for t in side.get_yticklabels()]
  assert texts == ["64.00 ± 2.03   test 63.00", "63.10 ± 1.51   test 62.10",
                   "64.55 ± 1.20   test 63.55"]


def test_seeds_are_named_only_where_there_are_seeds():
  for rows, over in ((zip_rows(), "over 5 folds"), (zip_rows(seeds=3), "over 3 seeds × 5 folds"),
                     (hold_out(zip_rows(folds=1)), "one model per point")):
    for fig in (plots._sweep_figure(rows, ["optimizer.learning_rate", "optimizer.weight_decay"]),
                plots._sweep_dots(rows, False), plots._sweep_curves_figure(rows)):
      fig.canvas.draw()
      text = all_text(fig)
      assert ("seed" in text) == ("seeds" in over), text
      assert over.replace("over", "") in text.replace("\n", " "), text


def red_marks(fig):
  return {a.get_gid(): a for a in fig.findobj(lambda a: (a.get_gid() or "").startswith(
      "diverged:"))}


def test_a_diverged_point_is_a_red_cross_on_the_edge_not_a_plausible_accuracy():
  rows = zip_rows(diverge=3)
  fig = plots._sweep_figure(rows, ["optimizer.learning_rate", "optimizer.weight_decay"])
  ax = panel(fig, "optimizer.learning_rate")
  (line,) = by_gid(ax, "val:").values()
  assert list(line.get_xdata()) == list(LRS[:3])               # not drawn as 9.95%
  (mark,) = red_marks(ax).values()
  assert mark.get_marker() == "x" and to_rgba(mark.get_color()) == RED
  assert list(mark.get_xdata()) == [LRS[3]]
  assert mark.get_transform() != ax.transData                  # y in axes units: the low edge
  assert list(mark.get_ydata()) == [0.0]
  assert ax.get_ylim()[0] > 55                                 # 9.95 is not in the axis range
  legend = " ".join(t.get_text() for leg in fig.findobj(Legend) for t in leg.get_texts())
  assert "diverged" in legend
  # named points: the value reads 'diverged' (red), the axis ignores its accuracy
  rows = named_rows()
  rows[1].update(val_loss_mean=float("nan"), val_accuracy_mean=0.1, stop_reasons="non_finite")
  fig = plots._sweep_figure(rows, ["model.dropout", "penalties.l2.strength"])
  main, side = bar_axes(fig)
  texts = side.get_yticklabels()
  assert texts[1].get_text() == "diverged" and to_rgba(texts[1].get_color()) == RED
  assert "val:1" not in by_gid(fig, "val:") and "diverged:1" in red_marks(fig)
  assert main.get_xlim()[0] > 55


def test_a_member_that_diverged_marks_its_point_with_a_dagger():
  rows = named_rows()
  rows[2]["stop_reasons"] = "max_epochs,non_finite"          # finite selected models
  fig = plots._sweep_figure(rows, ["model.dropout", "penalties.l2.strength"])
  _, side = bar_axes(fig)
  assert side.get_yticklabels()[2].get_text() == "64.55 ± 1.20†"
  mark = red_marks(fig)["diverged:2"]
  assert list(mark.get_xdata()) == pytest.approx([64.55])     # over its dot
  rows = zip_rows()
  rows[1]["stop_reasons"] = "non_finite"
  fig = plots._sweep_figure(rows, ["optimizer.learning_rate", "optimizer.weight_decay"])
  ax = panel(fig, "optimizer.learning_rate")
  assert list(by_gid(ax, "val:")["val:0"].get_xdata()) == list(LRS)
  assert list(red_marks(ax)["diverged:1"].get_ydata()) == pytest.approx([64.0])


def test_the_curves_mark_a_diverged_point():
  fig = plots._sweep_curves_figure(zip_rows(diverge=3))
  (mark,) = red_marks(fig).values()
  assert mark.get_gid() == "diverged:3" and list(mark.get_xdata()) == [0]
  (leg,) = fig.findobj(Legend)
  assert any(t.get_text().endswith("(diverged)") for t in leg.get_texts())


def test_the_sampled_figures_draw_a_diverged_point_on_the_edge():
  from genjax.sweeps import sample_plots
  rows = zip_rows(diverge=2, seeds=2)
  spec = {"axes": {"optimizer.learning_rate": "loguniform(1e-4,1e-1)"}, "samples": 4,
          "sampler": "sobol", "scramble": True, "seed": 0,
          "drawn": [{"optimizer.learning_rate": lr} for lr in LRS]}
  for fig in (sample_plots._sampled_figure(rows, spec), sample_plots._best_figure(rows, spec)):
    ax = fig.axes[0]
    (mark,) = red_marks(ax).values()
    assert mark.get_transform() != ax.transData and list(mark.get_ydata()) == [0.0]
    assert ax.get_ylim()[0] > 50
    fig.canvas.draw()
    assert "2 seeds × 5 folds" in all_text(fig)
  fig = sample_plots._sampled_figure(zip_rows(), spec)
  fig.canvas.draw()
  assert "seed" not in all_text(fig).replace("seed 0", "")    # the sampler's seed aside
