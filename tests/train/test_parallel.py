"""Multi-device layouts on 4 forced CPU devices (in a subprocess, so XLA_FLAGS comes first).

4-device data parallel equals 1 device (float tolerance); members split over devices side by
side are the bits of one device; the pmap backend equals one device up to rounding; K-fold early stopping stops at the
same epochs on 4 devices as on 1.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from genjax.config import defaults
from genjax.errors import ConfigError
from genjax.train import parallel

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
ROOT = os.path.dirname(TESTS)


@pytest.fixture(scope="module")
def layouts():
  out = subprocess.run([sys.executable, os.path.join(TESTS, "parallel_check.py")],
                       capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  return json.loads(out.stdout.strip().splitlines()[-1])


def _same_rows(a, b, tol):
  assert [(r["epoch"], r["fold"]) for r in a] == [(r["epoch"], r["fold"]) for r in b]
  for x, y in zip(a, b):
    for key in ("train_loss_running", "val_loss"):
      np.testing.assert_allclose(x[key], y[key], rtol=tol, atol=tol)
    for key in ("train_accuracy_running", "val_accuracy"):  # a float-order tie may flip one argmax
      np.testing.assert_allclose(x[key], y[key], atol=2e-3 if tol else 0.0)


@pytest.mark.parametrize("name,ref,tol", [
    ("data_shard_map", "one_device", 1e-4),     # psum order differs: float tolerance
    ("data_pmap", "data_shard_map", 0.0),        # same per-device program
    ("members_shard_map", "one_device_4", 0.0),   # each device runs whole member blocks
    # pmap is one program partitioned over the devices: it rounds otherwise than one device
    # (parallel.member_bits records it), while shard_map's members run side by side.
    ("members_pmap", "one_device_4", 1e-4),
])
@pytest.mark.slow
def test_layouts_match(layouts, name, ref, tol):
  _same_rows(layouts[name]["rows"], layouts[ref]["rows"], tol)
  assert layouts[name]["stopped_epoch"] == layouts[ref]["stopped_epoch"]
  assert layouts[name]["selected_epoch"] == layouts[ref]["selected_epoch"]
  assert layouts[name]["max_param_diff"] <= max(tol, 1e-7) * 100


@pytest.mark.slow
def test_early_stopping_fires_in_the_checked_runs(layouts):
  assert any(e >= 0 for e in layouts["one_device"]["stopped_epoch"])


def test_resolve_rules():
  cfg = defaults.get_config().parallel
  assert parallel.resolve(cfg, num_members=5, batch_size=100).axis == "single"  # 1 CPU device here
  cfg.backend = "mpi"
  with pytest.raises(ConfigError, match="backend"):
    parallel.resolve(cfg, num_members=1, batch_size=100)


@pytest.mark.slow
def test_batch_not_divisible_by_devices_is_one_line_exit_2(tmp_path):
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=3")
  out = subprocess.run(
      [sys.executable, "-m", "genjax.main", "train", "--config=experiments/mnist1d_mlp.py",
       f"--workdir={tmp_path / 'run'}", "--config.parallel.axis=data", "--progress=false"],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
  assert out.returncode == 2
  line, = out.stderr.strip().splitlines()
  assert "not divisible by the 3 devices" in line and "--config.batch_size=99" in line
  assert not (tmp_path / "run").exists()
