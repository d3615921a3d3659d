"""The two epoch formulations (`epoch_loop`): a scanned epoch and a host loop of compiled steps
give the same numbers; the stepped one keeps fold ≡ alone, kill/resume, members on 4 devices ≡
one device (data parallel keeps the scan on CPU: `epoch_loop`); the choice is visible (printed
once, in results.json)."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from genjax.config import defaults
from genjax.run import setup as experiment
from genjax.errors import ConfigError
from genjax.train.fit import fit
from genjax.train.epoch_loop import resolve as epoch_loop
from genjax.train.program import build_program
from run_outputs import lines as _lines, results as _results

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))
TEST_PATH = [HERE, os.path.join(ROOT, "tests")]   # this module, and the shared test helpers


def _cnn(loop, folds=3, epochs=3, conv="xla"):
  config = defaults.get_config()
  config.model.name = "cnn1d"
  config.model.conv = conv
  config.model.channels = 8
  config.model.dropout = 0.2
  config.data.augment = "shift(max_shift=2)"
  config.num_epochs = epochs
  config.early_stopping.patience = 1
  config.checkpoint.enabled = False
  config.cv.method = "stratified_kfold"
  config.cv.folds = folds
  config.epoch_loop = loop
  return config


def _train(config, plans=None):
  s = experiment.prepare(config, None)
  plans = plans or experiment.fold_plans(config, s.splits.train_y)
  program = build_program(s, plans)
  return program, fit(program, [], num_epochs=config.num_epochs), plans


def _close_rows(a, b, rtol=2e-4, atol=1e-5):
  assert [(r["epoch"], r.get("fold")) for r in a] == [(r["epoch"], r.get("fold")) for r in b]
  for x, y in zip(a, b):
    for key in ("train_loss_running", "train_accuracy_running", "val_loss", "val_accuracy"):
      np.testing.assert_allclose(x[key], y[key], rtol=rtol, atol=atol, err_msg=key)


def test_auto_takes_steps_for_xla_convolutions_on_cpu_and_scan_otherwise():
  conv = {"conv": {"kernel": jax.ShapeDtypeStruct((5, 1, 4), np.float32)}}
  dense = {"dense": {"kernel": jax.ShapeDtypeStruct((40, 10), np.float32)}}
  assert jax.default_backend() == "cpu"
  assert epoch_loop("auto", conv, conv="xla") == "steps"
  assert epoch_loop("auto", conv, conv="patches") == "scan"   # patches run fast in a scan
  assert epoch_loop("auto", dense, conv="xla") == "scan"
  assert epoch_loop("scan", conv, conv="xla") == "scan"
  assert epoch_loop("steps", dense, conv="patches") == "steps"
  assert epoch_loop("auto", conv, "members", conv="xla") == "steps"
  assert epoch_loop("auto", conv, "data", conv="xla") == "scan"   # XLA:CPU collectives
  with pytest.raises(ConfigError, match="can deadlock XLA's collectives"):
    epoch_loop("steps", conv, "data")
  config = _cnn("auto")
  config.epoch_loop = "loop"
  with pytest.raises(ConfigError, match="unknown epoch_loop 'loop'"):
    defaults.validate(config)


@pytest.mark.slow
@pytest.mark.parametrize("loop,conv", [("steps", "xla"), ("scan", "patches")])
def test_each_epoch_formulation_equals_the_scanned_epoch_of_xla_convolutions(loop, conv):
  scan_program, scanned, _ = _train(_cnn("scan"))
  other_program, other, _ = _train(_cnn(loop, conv=conv))
  assert (scan_program.epoch_loop, other_program.epoch_loop) == ("scan", loop)
  assert (scan_program.convolutions, other_program.convolutions) == ("xla", conv)
  assert other_program.member_layout == ("side_by_side" if loop == "steps" else "vmap")
  _close_rows(scanned.rows, other.rows)
  np.testing.assert_array_equal(scanned.selected_epoch, other.selected_epoch)
  for a, b in zip(jax.tree.leaves(scanned.selected_params), jax.tree.leaves(other.selected_params)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-3, atol=1e-5)


@pytest.mark.slow
def test_a_fold_in_the_stepped_program_equals_the_fold_alone():
  config = _cnn("steps")
  _, together, plans = _train(config)
  _, alone, _ = _train(config, [plans[1]])
  mine = [{k: v for k, v in r.items() if k != "fold"} for r in together.rows if r["fold"] == 1]
  _close_rows(mine, alone.rows)
  assert int(alone.selected_epoch[0]) == int(together.selected_epoch[1])


@pytest.mark.parametrize("conv,line", [
    ("xla", "epoch loop: steps, members side by side, convolutions: xla"),
    ("auto", "epoch loop: scan, convolutions: patches")])
@pytest.mark.slow
def test_the_choice_is_printed_once_and_recorded(tmp_path, conv, line):
  config = _cnn("auto", epochs=2, conv=conv)
  out = subprocess.run(
      [sys.executable, "-c",
       "import sys, json; from genjax.run import driver; from test_epoch_loop import _cnn; "
       f"driver.run(_cnn('auto', epochs=2, conv={conv!r}), {str(tmp_path / 'w')!r}, "
       "progress=False)"],
      cwd=HERE, capture_output=True, text=True, timeout=300,
      env={**os.environ, "PYTHONPATH": os.pathsep.join(TEST_PATH)})
  assert out.returncode == 0, out.stderr[-2000:]
  lines = [line for line in out.stdout.splitlines() if "epoch loop" in line]
  assert lines == [f"genjax: 3 member(s), {line}"]
  results = json.load(open(tmp_path / "w" / "results.json"))
  expected = {"xla": ("steps", "side_by_side", "xla"), "auto": ("scan", "vmap", "patches")}
  assert (results["epoch_loop"], results["member_layout"], results["convolutions"]) == \
      expected[conv]
  assert config.epoch_loop == "auto"


ARGS = ["train", "--config=experiments/mnist1d_mlp.py", "--progress=false",
        "--config.model.name=cnn1d", "--config.model.channels=8",
        "--config.model.dropout=0.1", "--config.num_epochs=5", "--config.epoch_loop=steps",
        "--config.model.conv=xla",
        "--config.early_stopping.patience=3", "--config.checkpoint.min_interval_s=0"]


def _cmd(workdir):
  return [sys.executable, "-m", "genjax.main", *ARGS, f"--workdir={workdir}"]


@pytest.mark.slow
def test_a_killed_stepped_run_resumes_to_identical_results(tmp_path):
  reference, workdir = str(tmp_path / "reference"), str(tmp_path / "killed")
  out = subprocess.run(_cmd(reference), cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  os.makedirs(workdir)
  proc = subprocess.Popen(_cmd(workdir), cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  metrics, deadline = os.path.join(workdir, "metrics.jsonl"), time.time() + 240
  while len(_lines(metrics)) < 2 and proc.poll() is None and time.time() < deadline:
    time.sleep(0.005)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert 0 < len(_lines(metrics)) < 5             # killed mid-run
  out = subprocess.run(_cmd(workdir), cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  assert _lines(metrics) == _lines(os.path.join(reference, "metrics.jsonl"))
  assert _results(workdir) == _results(reference)


DEVICES = """
import os, json, sys
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
sys.path[:0] = {tests!r}
import numpy as np
from test_epoch_loop import _cnn, _train
out = {{}}
for name, over in {{"one": {{"parallel.devices": 1}}, "members": {{"parallel.axis": "members"}},
                   "members_pmap": {{"parallel.axis": "members", "parallel.backend": "pmap"}},
                   "data_patches": {{"parallel.axis": "data", "model.conv": "patches",
                                    "epoch_loop": "scan"}}}}.items():
  config = _cnn("steps", folds=4, epochs=2)
  config.batch_size = 64
  for k, v in over.items():
    *section, key = k.split(".")
    (config[section[0]] if section else config)[key] = v
  _, fitted, _ = _train(config)
  out[name] = [[r["val_loss"], r["train_loss_running"]] for r in fitted.rows]
print(json.dumps(out))
"""


@pytest.mark.slow
def test_stepped_epoch_on_four_devices_equals_one_device():
  out = subprocess.run([sys.executable, "-c", DEVICES.format(tests=TEST_PATH)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  rows = json.loads(out.stdout.strip().splitlines()[-1])
  for name in ("members", "members_pmap", "data_patches"):
    np.testing.assert_allclose(rows[name], rows["one"], rtol=2e-4, atol=1e-5, err_msg=name)
