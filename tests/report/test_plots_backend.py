"""genjax draws its figures outside pyplot (`genjax.report.plots.new_figure`): a backend chosen
before `genjax.fit` or `genjax.sweep` is the backend after it, and no pyplot figure is left open
(in a notebook, inline plots keep working). In a subprocess: a backend is chosen once per
process."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = r"""
import json, os, sys
import matplotlib
matplotlib.use("svg")
import matplotlib.pyplot as plt
import genjax
config = genjax.load_config("experiments/mnist1d_mlp.py",
                            overrides=["num_epochs=2", "model.widths=(8,)",
                                       "cv.method=stratified_kfold", "cv.folds=2",
                                       "cv.refit=False"])
genjax.fit(config, os.path.join(sys.argv[1], "fit"))
genjax.sweep(config, [{"model.dropout": 0.0}, {"model.dropout": 0.2}],
             os.path.join(sys.argv[1], "sweep"))
print(json.dumps({"backend": matplotlib.get_backend(), "open": plt.get_fignums(),
                  "files": sorted(os.listdir(os.path.join(sys.argv[1], "fit")))
                           + sorted(os.listdir(os.path.join(sys.argv[1], "sweep")))}))
"""


@pytest.mark.slow
def test_a_backend_chosen_before_fit_and_sweep_is_the_backend_after(tmp_path):
  out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  result = json.loads(out.stdout.strip().splitlines()[-1])
  assert result["backend"] == "svg"
  assert result["open"] == []
  for name in ("learning_curves.png", "cv_folds.png", "sweep_metrics.png", "sweep_curves.png"):
    assert name in result["files"], name
    where = "fit" if name in ("learning_curves.png", "cv_folds.png") else "sweep"
    with open(tmp_path / where / name, "rb") as f:
      assert f.read(8) == b"\x89PNG\r\n\x1a\n", name
