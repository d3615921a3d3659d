"""Members leave the program: an epoch computes only the member blocks still training.

`parallel.blocked` with `live` runs its loop over the living blocks only; the stopped members'
outputs are `idle`'s. Checked here: the loop body runs once per living block (counted from
inside the compiled program), and a run with compaction equals the run without it leaf for
leaf — every member's rows, selected epoch, selected weights and the whole final state — on
one device, with padding members, and on 4 devices side by side (subprocess); a kill after
members left the program resumes identically (subprocess); the member-epochs recorded equal
those counted from the metric rows.
"""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from genjax.config import defaults
from genjax.errors import ConfigError
from genjax.run import setup as experiment
from genjax.train import parallel

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _config(**overrides):
  config = defaults.get_config()
  config.model.widths = (32, 32)
  config.model.dropout = 0.1
  config.optimizer.learning_rate = 1e-2
  config.num_epochs = 24
  config.early_stopping.patience = 2
  config.cv.method = "stratified_kfold"
  config.cv.folds = 5
  config.checkpoint.enabled = False
  for key, value in overrides.items():
    target = config
    *path, last = key.split(".")
    for p in path:
      target = target[p]
    target[last] = value
  return config


def _fit(config, path):
  os.makedirs(path)
  setup = experiment.prepare(config, str(path))
  plans = experiment.fold_plans(config, setup.splits.train_y)
  return experiment.train(setup, plans, str(path), resume=False, progress=False)


def _assert_equal_trees(a, b):
  la, lb = jax.tree.leaves(jax.device_get(a)), jax.tree.leaves(jax.device_get(b))
  assert len(la) == len(lb)
  for x, y in zip(la, lb):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_the_loop_body_runs_once_per_living_block():
  calls = []

  def member_fn(x):
    jax.debug.callback(lambda: calls.append(1))
    return x * 2.0

  for block, alive, runs in [(1, [True, False, False, True], 2), (2, [True, False, False, False], 1),
                             (2, [False, False, False, False], 0), (1, [True], 1),
                             (4, [False, True, False, False], 1)]:
    m = max(len(alive), block)
    live = jnp.asarray(alive + [alive[-1]] * (m - len(alive)))
    fn = jax.jit(parallel.blocked(member_fn, (0,), block, live=lambda x: live,
                                  idle=lambda x: x))
    calls.clear()
    x = jnp.arange(1.0, m + 1)
    out = jax.block_until_ready(fn(x))
    jax.effects_barrier()
    assert len(calls) == runs, (block, alive)
    blocks_alive = np.asarray(live).reshape(-1, block).any(axis=1).repeat(block)
    np.testing.assert_array_equal(np.asarray(out), np.where(blocks_alive, 2 * np.asarray(x), x))


@pytest.mark.slow
def test_compaction_changes_no_bit(tmp_path):
  on_program, on = _fit(_config(), tmp_path / "on")
  off_program, off = _fit(_config(**{"parallel.compaction": False}), tmp_path / "off")
  assert on_program.compaction and not off_program.compaction
  stops = np.asarray(on.monitor.stopped_epoch)
  assert len(set(stops.tolist())) > 1 and (stops >= 0).any(), stops   # members leave early
  assert on.rows == off.rows
  np.testing.assert_array_equal(on.selected_epoch, off.selected_epoch)
  _assert_equal_trees(on.selected_params, off.selected_params)
  _assert_equal_trees(on.state, off.state)
  record = on_program.member_epochs(on.monitor, on.epochs_run)
  # Counted independently: one metric row per member per epoch it trained.
  assert record["trained_member_epochs"] == len(on.rows)
  assert record["member_epochs"] == 5 * on.epochs_run
  assert record["frozen_fraction"] == pytest.approx(1 - len(on.rows) / (5 * on.epochs_run))
  assert record["computed_member_epochs"] == len(on.rows)   # blocks of 1, no padding
  assert off_program.member_epochs(off.monitor, off.epochs_run)["computed_member_epochs"] == \
      5 * off.epochs_run


@pytest.mark.slow
def test_compaction_changes_no_bit_in_blocks_with_padding(tmp_path):
  # 5 members in blocks of 2: one padding member; a block runs while one of its members lives.
  cfg = {"parallel.member_block": 2}
  on_program, on = _fit(_config(**cfg), tmp_path / "on")
  _, off = _fit(_config(**cfg, **{"parallel.compaction": False}), tmp_path / "off")
  assert on_program.padding == 1
  assert on.rows == off.rows
  _assert_equal_trees(on.state, off.state)
  trained = np.where(np.asarray(on.monitor.should_stop), np.asarray(on.monitor.stopped_epoch) + 1,
                     on.epochs_run)
  blocks = np.concatenate([trained, trained[-1:]]).reshape(3, 2).max(axis=1)
  assert on_program.member_epochs(on.monitor, on.epochs_run)["computed_member_epochs"] == \
      2 * blocks.sum()


def test_compaction_must_be_a_bool():
  cfg = ml_collections.ConfigDict({**parallel.default_config().to_dict(), "compaction": "yes"})
  with pytest.raises(ConfigError, match="parallel.compaction must be True or False"):
    parallel.validate_config(cfg)


CHECK = r"""
import os, sys, json
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
sys.path.insert(0, sys.argv[1])
import jax, numpy as np
from test_compaction import _config, _fit
out = {}
for c in (True, False):
  program, fitted = _fit(_config(**{"parallel.axis": "members", "cv.folds": 4,
                                    "parallel.compaction": c}), os.path.join(sys.argv[2], str(c)))
  out[str(c)] = {"devices": program.placement["devices"], "rows": fitted.rows,
                 "state": [np.asarray(x).tolist() for x in jax.tree.leaves(jax.device_get(fitted.state))]}
print(json.dumps(out))
"""


@pytest.mark.slow
def test_compaction_changes_no_bit_on_four_devices(tmp_path):
  out = subprocess.run([sys.executable, "-c", CHECK, os.path.dirname(__file__), str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  result = json.loads(out.stdout.strip().splitlines()[-1])
  assert result["True"]["devices"] == 4
  assert result["True"]["rows"] == result["False"]["rows"]
  assert result["True"]["state"] == result["False"]["state"]


ARGS = ["train", "--config=experiments/mnist1d_mlp.py", "--progress=false",
        "--config.num_epochs=24", "--config.model.widths=(32,32)",
        "--config.optimizer.learning_rate=0.01", "--config.cv.method=stratified_kfold",
        "--config.cv.folds=4", "--config.early_stopping.patience=1",
        "--config.checkpoint.min_interval_s=0"]


def _lines(path):
  return open(path).read().splitlines() if os.path.exists(path) else []


@pytest.mark.slow
def test_a_kill_after_members_left_resumes_identically(tmp_path):
  def cmd(workdir):
    return [sys.executable, "-m", "genjax.main", *ARGS, f"--workdir={workdir}"]

  reference, workdir = tmp_path / "reference", tmp_path / "run"
  out = subprocess.run(cmd(reference), cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "members still train; the stopped ones left the epoch program" in out.stdout
  rows = [json.loads(x) for x in _lines(reference / "metrics.jsonl")]
  per_epoch = np.bincount([r["epoch"] for r in rows])
  first = int(np.flatnonzero(per_epoch < 4)[0])   # the first epoch some member sat out
  assert first < len(per_epoch) - 1, per_epoch
  os.makedirs(workdir)
  proc = subprocess.Popen(cmd(workdir), cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  metrics, deadline = workdir / "metrics.jsonl", time.time() + 240
  while (len(_lines(metrics)) < int(per_epoch[:first + 1].sum()) and proc.poll() is None
         and time.time() < deadline):
    time.sleep(0.005)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  out = subprocess.run(cmd(workdir), cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  assert _lines(metrics) == _lines(reference / "metrics.jsonl")
  strip = lambda p: {k: v for k, v in json.load(open(p)).items() if k != "wall_time_s"}  # noqa: E731
  assert strip(workdir / "results.json") == strip(reference / "results.json")
  assert strip(reference / "results.json")["compaction"]["frozen_fraction"] > 0
