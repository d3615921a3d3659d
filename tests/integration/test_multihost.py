"""Multi-host runs: 2 real `jax.distributed` processes on localhost (CPU, gloo collectives).

Two processes with one CPU device each give the same results as one process
with two devices: a K-fold run (members split across the processes) with a
refit (data-parallel across the processes), killed and resumed too. Bad
multi-host input is one line and exit status 2, never a hang.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from genjax.platform import distributed
from genjax.sweeps import driver as sweep
from genjax.errors import ConfigError
from genjax.train import parallel

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARGS = ["train", "--config=experiments/mnist1d_kfold.py", "--progress=false",
        "--config.cv.folds=4", "--config.cv.refit=true", "--config.num_epochs=10",
        "--config.early_stopping.patience=2", "--config.optimizer.learning_rate=0.02",
        # min_delta: folds stop by patience at different epochs on any CPU's float rounding
        "--config.early_stopping.min_delta=0.05",
        "--distributed_timeout=120"]


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _env(devices: int) -> dict:
  return {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}


def _start(workdir, *, processes: int, extra=(), port=None):
  port = port or _free_port()
  return [subprocess.Popen(
      [sys.executable, "-m", "genjax.main", *ARGS, *extra, f"--workdir={workdir}",
       f"--coordinator_address=localhost:{port}", f"--num_processes={processes}",
       f"--process_id={i}"], cwd=ROOT, env=_env(1), stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, text=True) for i in range(processes)]


def _finish(procs, timeout=300):
  outs = [p.communicate(timeout=timeout) for p in procs]
  return [(p.returncode, out, err) for p, (out, err) in zip(procs, outs)]


def _results(workdir):
  r = json.load(open(os.path.join(workdir, "results.json")))
  r.pop("wall_time_s")
  provenance = r.pop("provenance")   # process_count differs by design; the code must not
  assert provenance["code"]["genjax_source"]
  return r


def _close(a, b, path=""):
  if isinstance(a, dict):
    assert set(a) == set(b), path
    for k in a:
      _close(a[k], b[k], f"{path}.{k}")
  elif isinstance(a, list):
    assert len(a) == len(b), path
    for i, (x, y) in enumerate(zip(a, b)):
      _close(x, y, f"{path}[{i}]")
  elif isinstance(a, float):
    assert a == pytest.approx(b, rel=1e-5, abs=1e-6), path
  else:
    assert a == b, path


@pytest.fixture(scope="module")
def single(tmp_path_factory):
  """The reference: one process with two CPU devices."""
  workdir = str(tmp_path_factory.mktemp("single"))
  out = subprocess.run([sys.executable, "-m", "genjax.main", *ARGS, f"--workdir={workdir}"],
                       cwd=ROOT, env=_env(2), capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  return workdir


def test_two_processes_equal_one_process(single, tmp_path):
  workdir = str(tmp_path / "mp")
  done = _finish(_start(workdir, processes=2))
  for rc, _, err in done:
    assert rc == 0, err[-3000:]
  assert "validation accuracy" in done[0][1]          # process 0 reports ...
  assert "validation accuracy" not in done[1][1]      # ... the others stay quiet
  mp, sp = _results(workdir), _results(single)
  assert mp["devices"] == sp["devices"] == 2
  _close(mp, sp)
  stops = {f["stop_reason"] for f in mp["cv"]["per_fold"]}
  assert "patience" in stops   # early stopping fired, folds froze while others went on
  # Only process 0 writes: one row per fold and epoch, no duplicates.
  for name in ("metrics.jsonl", "metrics_refit.jsonl"):
    mp_rows = open(os.path.join(workdir, name)).read().splitlines()
    assert len(mp_rows) == len(open(os.path.join(single, name)).read().splitlines())
  oof, ref = np.load(os.path.join(workdir, "oof_predictions.npz")), np.load(
      os.path.join(single, "oof_predictions.npz"))
  np.testing.assert_allclose(oof["logits"], ref["logits"], rtol=1e-5, atol=1e-5)


def test_two_processes_killed_and_resumed(single, tmp_path):
  workdir = str(tmp_path / "killed")
  procs = _start(workdir, processes=2)
  metrics = os.path.join(workdir, "metrics.jsonl")
  deadline = time.time() + 240
  while time.time() < deadline and all(p.poll() is None for p in procs):
    if os.path.exists(metrics) and len(open(metrics).read().splitlines()) >= 12:  # 3 epochs
      break
    time.sleep(0.01)
  for p in procs:
    p.send_signal(signal.SIGKILL)
  _finish(procs)
  assert not os.path.exists(os.path.join(workdir, "results.json"))
  for rc, _, err in _finish(_start(workdir, processes=2)):
    assert rc == 0, err[-3000:]
  _close(_results(workdir), _results(single))


# ------------------------------------------------------------------ bad input


def _one_line_exit_2(out, expected: str):
  assert out.returncode == 2, out.stderr[-2000:]
  lines = [l for l in out.stderr.splitlines() if l.startswith("genjax: error:")]
  assert len(lines) == 1 and expected in lines[0], out.stderr[-2000:]


def _cli(*flags_, timeout=60, env=None):
  return subprocess.run([sys.executable, "-m", "genjax.main", *ARGS[:2], *flags_,
                         "--workdir=/nonexistent/never_written"], cwd=ROOT,
                        capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.parametrize("flags_,expected", [
    (["--num_processes=2", "--process_id=0"], "add --coordinator_address"),
    (["--coordinator_address=localhost:1234", "--num_processes=2", "--process_id=2"],
     "--process_id=2 is outside [0, 2)"),
    (["--coordinator_address=localhost", "--num_processes=2", "--process_id=0"],
     "is not HOST:PORT"),
    (["--distributed", "--num_processes=2"], "drop --num_processes"),
    (["--distributed", "--distributed_timeout=5"], "jax.distributed could not start"),
])
def test_bad_multihost_flags(flags_, expected):
  _one_line_exit_2(_cli(*flags_), expected)


@pytest.mark.parametrize("process_id,expected", [
    (1, "cannot reach the coordinator"),     # a worker with no coordinator listening
    (0, "not all 2 processes joined"),       # a coordinator whose worker never comes
])
def test_start_up_fails_within_the_timeout_instead_of_hanging(process_id, expected):
  start = time.time()
  out = _cli(f"--coordinator_address=localhost:{_free_port()}", "--num_processes=2",
             f"--process_id={process_id}", "--distributed_timeout=4")
  _one_line_exit_2(out, expected)
  assert time.time() - start < 45


SLOW_SKLEARN = """
import sys, time
class _Slow:   # this process reaches the run's checks seconds after the other one
  def find_spec(self, name, path=None, target=None):
    if name == "sklearn":
      time.sleep(8)
    return None
sys.meta_path.insert(0, _Slow())
"""


@pytest.mark.parametrize("slow", [0, 1])
def test_a_bad_config_is_one_line_on_every_process_when_one_gets_there_later(tmp_path, slow):
  # The first process to refuse the run must not abort the other one on its way to the same
  # refusal (JAX's coordination client aborts with a C++ stack trace when the service on
  # process 0 vanishes).
  (tmp_path / "slow").mkdir()
  (tmp_path / "slow" / "sitecustomize.py").write_text(SLOW_SKLEARN)
  port, workdir = _free_port(), tmp_path / "run"
  procs = []
  for i in range(2):
    env = _env(1)
    if i == slow:
      env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path / "slow"),
                                                        env.get("PYTHONPATH")]))
    procs.append(subprocess.Popen(
        [sys.executable, "-m", "genjax.main", *ARGS, "--config.parallel.devices=1",
         f"--workdir={workdir}", f"--coordinator_address=localhost:{port}",
         "--num_processes=2", f"--process_id={i}"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
  for rc, _, err in _finish(procs, timeout=120):
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and "more processes than devices" in lines[0], err[-3000:]
  assert not os.path.exists(workdir / "config.json")


def test_more_processes_than_devices(tmp_path):
  workdir = tmp_path / "run"
  done = _finish(_start(str(workdir), processes=2, extra=["--config.parallel.devices=1"]),
                 timeout=120)
  for rc, _, err in done:
    lines = [l for l in err.splitlines() if l.startswith("genjax: error:")]
    assert rc == 2 and len(lines) == 1 and "more processes than devices" in lines[0], err
  assert not os.path.exists(workdir / "config.json")


# ------------------------------------------------------- in-process unit checks


@pytest.fixture
def two_processes(monkeypatch):
  monkeypatch.setattr(distributed, "_PROCESS", distributed.Process(index=1, count=2))


def test_process_shards_cover_every_row_once():
  for n in (0, 1, 7, 3600):
    for count in (1, 2, 3, 8):
      rows = [distributed.shard(n, distributed.Process(i, count)) for i in range(count)]
      assert [r for part in rows for r in part] == list(range(n))
      assert max(map(len, rows)) - min(map(len, rows)) <= 1


def test_pmap_backend_is_refused_across_processes(two_processes):
  cfg = parallel.default_config()
  cfg.backend = "pmap"
  with pytest.raises(ConfigError, match="backend=shard_map"):
    parallel.check_devices(cfg)


def test_multihost_sweep_runs_one_structural_group(two_processes):
  from genjax.config import defaults
  config = defaults.get_config()   # a whole config: every point is validated first
  points = [{"model.name": "mlp"}, {"model.name": "cnn1d"}]
  with pytest.raises(ConfigError, match="one structural group"):
    sweep.run(config, "/nonexistent", points)


def test_only_process_zero_writes(two_processes, tmp_path):
  from genjax.report.files import write_json, write_metrics
  write_json(str(tmp_path / "r.json"), {"a": 1})
  write_metrics(str(tmp_path / "m.jsonl"), [{"epoch": 0}])
  assert not os.listdir(tmp_path)
  assert not distributed.is_primary()
