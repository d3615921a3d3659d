"""The run's own figures (`genjax.report.plots`): each fold drawn once in cv_folds.png (an
outlier is not drawn again as a flier), and no label of learning_curves.png (K-fold) overlaps
another or the title."""

import itertools

import numpy as np

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
