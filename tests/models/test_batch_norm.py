"""Batch normalization under the member axis (`model.norm=batch`).

The layer's weighted statistics, output and running averages against numpy; padded examples
never move them; in training, a fold in the program ≡ the fold alone (the folds are padded to
one length), 4 data-parallel devices ≡ 1 device, a killed run resumes to identical results,
and evaluation uses the running statistics; unsupported norms are refused."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax import models
from genjax.config import defaults
from genjax.run import setup as experiment
from genjax.errors import ConfigError
from genjax.models.batch_norm import BatchNorm
from genjax.train.fit import fit
from genjax.train.program import build_program
from run_outputs import lines as _lines, results as _results

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_weighted_statistics_output_and_running_averages_match_numpy():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(6, 3, 4, 5)).astype(np.float32) * 2 + 1
  w = np.array([1, 1, 0, 1, 0, 1], np.float32)
  layer = BatchNorm(5, momentum=0.8)
  layer.scale[...] = jnp.asarray(rng.normal(size=5), jnp.float32)
  layer.bias[...] = jnp.asarray(rng.normal(size=5), jnp.float32)
  y = np.asarray(layer(jnp.asarray(x), train=True, weight=jnp.asarray(w)))
  real = x[w > 0].reshape(-1, 5).astype(np.float64)
  mean, var = real.mean(0), real.var(0)          # biased, over the real examples only
  want = (x - mean) / np.sqrt(var + 1e-5) * np.asarray(layer.scale[...]) + np.asarray(layer.bias[...])
  np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(layer.mean[...], 0.2 * mean, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(layer.var[...], 0.8 + 0.2 * var, rtol=1e-5)
  # Evaluation uses the running statistics, and changes nothing.
  before = np.asarray(layer.mean[...])
  y_eval = np.asarray(layer(jnp.asarray(x), train=False))
  run_mean, run_var = np.asarray(layer.mean[...]), np.asarray(layer.var[...])
  np.testing.assert_allclose(y_eval, (x - run_mean) / np.sqrt(run_var + 1e-5)
                             * np.asarray(layer.scale[...]) + np.asarray(layer.bias[...]),
                             rtol=1e-4, atol=1e-4)
  np.testing.assert_array_equal(before, run_mean)


def test_padded_examples_never_move_the_statistics():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(4, 7)).astype(np.float32)
  padded = np.concatenate([x, 1e3 * rng.normal(size=(3, 7)).astype(np.float32)])
  w = np.array([1, 1, 1, 1, 0, 0, 0], np.float32)
  a, b = BatchNorm(7), BatchNorm(7)
  ya = a(jnp.asarray(x), train=True)
  yb = b(jnp.asarray(padded), train=True, weight=jnp.asarray(w))
  np.testing.assert_allclose(yb[:4], ya, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(b.mean[...], a.mean[...], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(b.var[...], a.var[...], rtol=1e-5, atol=1e-6)


def _config(norm="batch", folds=3, epochs=3):
  config = defaults.get_config()
  config.model.widths = (32, 32)
  config.model.norm = norm
  config.model.dropout = 0.1
  config.num_epochs = epochs
  config.checkpoint.enabled = False
  config.cv.method, config.cv.folds = "stratified_kfold", folds
  return config


def _train(config, plans=None):
  s = experiment.prepare(config, None)
  plans = plans or experiment.fold_plans(config, s.splits.train_y)
  program = build_program(s, plans)
  return program, fit(program, [], num_epochs=config.num_epochs), plans


@pytest.mark.slow
def test_a_fold_in_the_program_equals_the_fold_alone_and_stats_are_selected():
  config = _config(folds=3)   # 4000 examples in 3 folds: unequal sizes, padded to one length
  program, together, plans = _train(config)
  assert len({len(p.train_idx) for p in plans}) > 1
  _, alone, _ = _train(config, [plans[2]])
  mine = [r for r in together.rows if r["fold"] == 2]
  for key in ("train_loss_running", "val_loss", "val_accuracy"):   # bit for bit (member blocks)
    assert [r[key] for r in mine] == [r[key] for r in alone.rows], key
  mean = together.selected_params["norm0"]["layer"]["mean"]
  assert mean.shape == (3, 32) and np.abs(mean).max() > 0   # per member, trained
  np.testing.assert_array_equal(mean[2], alone.selected_params["norm0"]["layer"]["mean"][0])


DEVICES = """
import os, json, sys
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
sys.path[:0] = {tests!r}
from test_batch_norm import _config, _train
out = {{}}
for name, over in {{"one": {{"devices": 1}}, "data": {{"axis": "data"}},
                   "members": {{"axis": "members"}}}}.items():
  config = _config(folds=4, epochs=2)
  config.batch_size = 64
  for k, v in over.items():
    config.parallel[k] = v
  _, fitted, _ = _train(config)
  out[name] = [[r["val_loss"], r["train_loss_running"]] for r in fitted.rows]
print(json.dumps(out))
"""


@pytest.mark.slow
def test_four_devices_equal_one_device():
  here = os.path.dirname(os.path.abspath(__file__))
  code = DEVICES.format(tests=[here, os.path.join(ROOT, "tests")])   # this module, helpers
  out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  rows = json.loads(out.stdout.strip().splitlines()[-1])
  # data parallel sums gradients across devices (float summation order); members side by
  # side run each device's members as one device would: the same bits.
  np.testing.assert_allclose(rows["data"], rows["one"], rtol=2e-4, atol=1e-5)
  assert rows["members"] == rows["one"]


ARGS = ["train", "--config=experiments/mnist1d_mlp.py", "--progress=false",
        "--config.model.norm=batch", "--config.num_epochs=6",
        "--config.early_stopping.patience=3", "--config.checkpoint.min_interval_s=0"]


@pytest.mark.slow
def test_a_killed_run_resumes_to_identical_results(tmp_path):
  cmd = lambda w: [sys.executable, "-m", "genjax.main", *ARGS, f"--workdir={w}"]  # noqa: E731
  reference, workdir = str(tmp_path / "reference"), str(tmp_path / "killed")
  out = subprocess.run(cmd(reference), cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  os.makedirs(workdir)
  proc = subprocess.Popen(cmd(workdir), cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  metrics, deadline = os.path.join(workdir, "metrics.jsonl"), time.time() + 240
  while len(_lines(metrics)) < 2 and proc.poll() is None and time.time() < deadline:
    time.sleep(0.005)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert 0 < len(_lines(metrics)) < 6
  out = subprocess.run(cmd(workdir), cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  assert _lines(metrics) == _lines(os.path.join(reference, "metrics.jsonl"))
  assert _results(workdir) == _results(reference)


@pytest.mark.slow
@pytest.mark.parametrize("norm", ["layer", "group"])
def test_stateless_norms_train_and_have_no_statistics(norm):
  cfg = models.default_config()
  cfg.name, cfg.norm = "cnn2d", norm
  model = models.create(cfg, (8, 8, 1), 3)
  assert not model.has_batch_stats
  params = model.init(jax.random.key(0))
  logits = model.apply(params, jnp.ones((2, 8, 8, 1)), train=False)
  assert logits.shape == (2, 3) and np.all(np.isfinite(logits))
  assert not nnx.state(nnx.merge(model.graphdef, params), nnx.BatchStat)


@pytest.mark.parametrize("name,norm,match", [("logreg", "batch", "has no norm layers"),
                                             ("cnn1d", "layer", "has no norm layers"),
                                             ("mlp", "instance", "unknown model.norm")])
def test_unsupported_norms_are_refused(name, norm, match):
  cfg = models.default_config()
  cfg.name, cfg.norm = name, norm
  with pytest.raises(ConfigError, match=match):
    models.validate_config(cfg)
