"""The run's own figures (`genjax.report.plots`): each fold drawn once in cv_folds.png (an
outlier is not drawn again as a flier), and no label of learning_curves.png (K-fold) overlaps
another or the title."""

import itertools

import numpy as np
import pytest

from genjax.report import plots


def test_each_fold_is_one_dot_even_an_outlier():
  fig = plots.fold_accuracy_figure([0.80, 0.81, 0.80, 0.82, 0.50], title="folds")
  fig.canvas.draw()
  points = [len(c.get_offsets()) for c in fig.axes[0].collections]
  lines = [ln for ln in fig.axes[0].lines if ln.get_marker() not in (None, "None", "")
           and len(ln.get_xdata())]
  assert sum(points) == 5 and not lines   # the 5 folds as dots; no flier markers


def test_fold_curves_labels_and_title_do_not_overlap():
  rows = [{"fold": k, "epoch": e, "val_loss": 1.0 / (e + 1), "val_accuracy": 0.5 + 0.01 * e,
           "train_loss_running": 0.9 / (e + 1), "train_accuracy_running": 0.55 + 0.01 * e}
          for k in range(5) for e in range(20)]
  fig = plots.fold_curves_figure(rows, title="stratified_kfold: 5 folds")
  fig.canvas.draw()
  renderer = fig.canvas.get_renderer()
  texts = [fig._suptitle] + [t for ax in fig.axes for t in (ax.yaxis.label, ax.xaxis.label)]
  boxes = [t.get_window_extent(renderer) for t in texts]
  for a, b in itertools.combinations(boxes, 2):
    assert not a.overlaps(b), (a, b)
  width, height = fig.get_size_inches() * fig.dpi
  for box in boxes:   # inside the image
    assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width + 1 and box.y1 <= height + 1
  assert np.isfinite([b.width for b in boxes]).all()


def _holdout_rows(nan_from=None):
  rows = [{"epoch": e, "val_loss": 1.0 / (e + 1), "val_accuracy": 0.5 + 0.01 * e,
           "train_loss_running": 0.9 / (e + 1), "train_accuracy_running": 0.55 + 0.01 * e}
          for e in range(8)]
  for r in rows[nan_from:] if nan_from is not None else []:
    r.update(val_loss=None, train_loss_running=float("nan"), val_accuracy=0.1)
  return rows


def _texts(fig):
  return [t.get_text() for leg in fig.legends + [ax.get_legend() for ax in fig.axes]
          if leg is not None for t in leg.get_texts()]


def test_learning_curves_draw_accuracy_in_percent():
  fig = plots.learning_curves_figure(_holdout_rows(), best_epoch=5, title="t")
  loss, acc = fig.axes
  assert acc.get_ylabel() == "accuracy (%)"
  assert list(acc.lines[1].get_ydata()) == pytest.approx([50.0 + e for e in range(8)])
  assert not fig.findobj(lambda a: a.get_gid() == "non_finite")


def test_learning_curves_mark_the_epochs_whose_loss_is_nan():
  fig = plots.learning_curves_figure(_holdout_rows(nan_from=3), best_epoch=2)
  for ax in fig.axes:   # the accuracy of a NaN model is no model's: marked on both panels
    (mark,) = [ln for ln in ax.lines if ln.get_gid() == "non_finite"]
    assert list(mark.get_xdata()) == [3, 4, 5, 6, 7] and mark.get_marker() == "x"
    assert mark.get_transform() != ax.transData            # on the low edge
  assert "NaN/inf (diverged)" in _texts(fig)
  rows = [{"fold": k, **r} for k in range(3) for r in _holdout_rows(nan_from=0 if k == 1 else None)]
  fig = plots.fold_curves_figure(rows)
  assert "NaN/inf (diverged): fold 1" in _texts(fig)
  assert fig.axes[1].get_ylabel() == "accuracy (%)"


def test_a_diverged_fold_is_a_cross_not_a_dot():
  fig = plots.fold_accuracy_figure([0.60, 0.0995, 0.62], diverged=[1])
  fig.canvas.draw()
  (dots,) = fig.axes[0].collections
  assert sorted(dots.get_offsets()[:, 1]) == [60.0, 62.0]   # 9.95% is not drawn
  (mark,) = fig.findobj(lambda a: a.get_gid() == "diverged")
  assert mark.get_marker() == "x" and fig.axes[0].get_ylim()[0] > 50
  assert "diverged (no accuracy shown): fold 1" in _texts(fig)
