"""CPU devices: `--cpu_devices` (genjax.platform.runtime) and the CPU rule of `parallel.axis=auto`.

The CLI makes the host CPU one device per usable core (at most 8) before JAX starts, and
`parallel.resolve` splits the members over them, ⌈M / D⌉ per device on the fewest devices
that reach it, with padding members where they do not divide. Real subprocesses: the device
count is fixed when JAX's backend starts.
"""

import json
import os
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = ["--config=experiments/mnist1d_kfold.py", "--config.num_epochs=2",
        "--config.model.widths=(16,)", "--config.cv.refit=false", "--progress=false",
        "--config.checkpoint.min_interval_s=0"]


def genjax(*args, env=None, timeout=300):
  env = dict(os.environ if env is None else env, PYTHONUNBUFFERED="1")
  return subprocess.run([sys.executable, "-m", "genjax.main", *map(str, args)], cwd=ROOT,
                        env=env, capture_output=True, text=True, timeout=timeout)


def refused(out, *needles):
  lines = out.stderr.strip().splitlines()
  assert out.returncode == 2, (out.returncode, out.stderr[-3000:])
  assert len(lines) == 1 and lines[0].startswith("genjax: error:"), out.stderr[-3000:]
  for needle in needles:
    assert needle in lines[0], lines[0]


def no_forced_count():
  env = dict(os.environ)
  env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split()
                              if "xla_force_host_platform_device_count" not in f)
  return env


RESOLVE = """
import os, json, sys
import jax
if sys.argv[1] == "cores":
  jax.config.update("jax_num_cpu_devices", 4)       # what --cpu_devices=4 sets
else:
  os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
from genjax.train import parallel
cfg = parallel.default_config()
out = {}
for m in (1, 2, 3, 4, 5, 6, 7, 8, 12):
  layout = parallel.resolve(cfg, num_members=m, batch_size=100)
  out[m] = [layout.axis, layout.num_devices, layout.padding]
pmap = parallel.default_config(); pmap.backend = "pmap"
out["pmap, 5 members"] = [parallel.resolve(pmap, num_members=5, batch_size=100).axis]
out["pmap, 6 members"] = [parallel.resolve(pmap, num_members=6, batch_size=100).num_devices]
explicit = parallel.default_config(); explicit.devices = 4
out["devices=4, 5 members"] = [parallel.resolve(explicit, num_members=5, batch_size=100).axis]
data = parallel.default_config(); data.axis = "data"
out["axis=data, 4 members"] = [parallel.resolve(data, num_members=4, batch_size=100).axis]
print(json.dumps(out))
"""


def _resolved(kind):
  out = subprocess.run([sys.executable, "-c", RESOLVE, kind], cwd=ROOT, capture_output=True,
                       text=True, timeout=120, env=no_forced_count())
  assert out.returncode == 0, out.stderr[-3000:]
  got = json.loads(out.stdout.strip().splitlines()[-1])
  return {int(k) if k.isdigit() else k: v for k, v in got.items()}


def test_auto_on_cores_as_devices_splits_members_over_them_with_padding():
  got = _resolved("cores")
  # By hand, on 4 devices: 5 members need 2 per device, which 3 devices reach (2+2+2, one
  # padding member); 7 need 2 per device on all 4 (one padding); 6 are 2+2+2 on 3, no padding.
  expected = {1: ["single", 1, 0], 2: ["members", 2, 0], 3: ["members", 3, 0],
              4: ["members", 4, 0], 5: ["members", 3, 1], 6: ["members", 3, 0],
              7: ["members", 4, 1], 8: ["members", 4, 0], 12: ["members", 4, 0]}
  assert {k: v for k, v in got.items() if isinstance(k, int)} == expected
  # pmap takes no padding: the most devices that divide the members (one for 5).
  assert got["pmap, 5 members"] == ["single"]
  assert got["pmap, 6 members"] == [3]
  # Asked-for devices or axes keep their meaning: 4 devices for 5 members is data parallel.
  assert got["devices=4, 5 members"] == ["data"]
  assert got["axis=data, 4 members"] == ["data"]


def test_devices_forced_with_xla_flags_keep_the_general_rule():
  got = _resolved("forced")   # a stand-in for a 4-device machine: members if they divide, else data
  assert {k: v for k, v in got.items() if isinstance(k, int)} == {
      1: ["data", 4, 0], 2: ["data", 4, 0], 3: ["data", 4, 0], 4: ["members", 4, 0],
      5: ["data", 4, 0], 6: ["data", 4, 0], 7: ["data", 4, 0], 8: ["members", 4, 0],
      12: ["members", 4, 0]}


PADDED = """
import importlib.util, json, tempfile
import jax
jax.config.update("jax_num_cpu_devices", 2)
import numpy as np
from genjax.run import setup as experiment
from genjax.train import program
spec = importlib.util.spec_from_file_location("cfg", "experiments/mnist1d_kfold.py")
module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
config = module.get_config()
config.model.widths, config.cv.refit, config.checkpoint.enabled = (16,), False, False
s = experiment.prepare(config, tempfile.mkdtemp())
p = program.build_program(s, experiment.fold_plans(config, s.splits.train_y))
state = p.start()
for epoch in range(2):
  state, metrics, improved = p.run_epoch(state, epoch)
leaves = [np.asarray(a) for a in jax.tree.leaves(jax.device_get(state))]
print(json.dumps({"padding": p.padding, "rows": sorted({len(a) for a in leaves}),
                  "copy": all(np.array_equal(a[5], a[4]) for a in leaves),
                  "metrics": sorted({len(v) for v in p.real(metrics).values()}),
                  "real": sorted({len(a) for a in jax.tree.leaves(p.real(state))})}))
"""


@pytest.mark.slow
def test_a_padding_member_trains_as_a_copy_of_the_last_and_is_dropped():
  out = subprocess.run([sys.executable, "-c", PADDED], cwd=ROOT, capture_output=True, text=True,
                       timeout=300, env=no_forced_count())
  assert out.returncode == 0, out.stderr[-3000:]
  got = json.loads(out.stdout.strip().splitlines()[-1])
  # 5 folds on 2 devices: 6 members in the state; the sixth is the fifth, bit for bit.
  assert got == {"padding": 1, "rows": [6], "copy": True, "metrics": [5], "real": [5]}


def _rows(workdir):
  return [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]


@pytest.mark.slow
def test_the_cli_splits_five_folds_over_two_cpu_devices_with_the_same_bits(tmp_path):
  # 5 folds over 2 devices: 3 + 3 with one padding member, which no output may show.
  env = no_forced_count()
  split, one = tmp_path / "split", tmp_path / "one"
  out = genjax("train", *TINY, "--cpu_devices=2", f"--workdir={split}", env=env)
  assert out.returncode == 0, out.stderr[-3000:]
  assert ("genjax: 5 member(s), members split over 2 devices (+1 padding member(s), not "
          "reported), epoch loop: scan") in out.stdout
  results = json.loads((split / "results.json").read_text())
  assert results["parallel"] == {"axis": "members", "devices": 2, "padding": 1,
                                 "member_block": 1, "member_bits": "independent"}
  assert results["provenance"]["device_count"] == 2
  assert [f["fold"] for f in results["cv"]["per_fold"]] == [0, 1, 2, 3, 4]
  assert sorted(os.listdir(split / "tensorboard")) == [f"fold{k}" for k in range(5)]
  out = genjax("train", *TINY, "--cpu_devices=1", f"--workdir={one}", env=env)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "genjax: 5 member(s), epoch loop: scan" in out.stdout
  assert json.loads((one / "results.json").read_text())["parallel"] == {
      "axis": "single", "devices": 1, "member_block": 1, "member_bits": "independent"}
  a, b = _rows(split), _rows(one)
  assert [(r["fold"], r["epoch"]) for r in a] == [(r["fold"], r["epoch"]) for r in b]
  # Member blocks: a member's program is its one-member block on either layout, so the
  # numbers are the same bits.
  for key in ("train_loss_running", "val_loss", "val_accuracy", "train_grad_norm"):
    assert [r[key] for r in a] == [r[key] for r in b], key


def _events(directory):
  """(step, {tag: value}) of every epoch's scalars event in a TensorBoard directory, read as
  TFRecords by hand (length, crc, Event proto, crc), independently of the writer (the run's
  HParams, config text and `final/` metrics: tests/report/test_tensorboard_hparams.py)."""
  from tensorboardX.proto.event_pb2 import Event
  out = []
  for name in sorted(os.listdir(directory)):
    data = open(os.path.join(directory, name), "rb").read()
    i = 0
    while i < len(data):
      (length,) = struct.unpack("<Q", data[i:i + 8])
      event = Event.FromString(data[i + 12:i + 12 + length])
      i += 12 + length + 4
      epoch_scalars = all(v.HasField("simple_value") and not v.tag.startswith("final/")
                          for v in event.summary.value)
      if event.HasField("summary") and epoch_scalars:
        out.append((event.step, {v.tag: v.simple_value for v in event.summary.value}))
  return out


@pytest.mark.slow
def test_the_default_makes_one_device_per_usable_core(tmp_path):
  cores = min(len(os.sched_getaffinity(0)), 8)
  expected = max(k for k in range(1, cores + 1) if 4 % k == 0)   # devices dividing 4 folds
  out = genjax("train", *TINY, "--config.cv.folds=4", f"--workdir={tmp_path / 'run'}",
               env=no_forced_count())
  assert out.returncode == 0, out.stderr[-3000:]
  results = json.loads((tmp_path / "run" / "results.json").read_text())
  assert results["parallel"]["devices"] == expected
  assert results["provenance"]["device_count"] == cores
  # TensorBoard: one event per member and epoch, holding every scalar of its row.
  rows = _rows(tmp_path / "run")
  for fold in range(4):
    events = _events(tmp_path / "run" / "tensorboard" / f"fold{fold}")
    mine = [r for r in rows if r["fold"] == fold]
    assert [step for step, _ in events] == [r["epoch"] for r in mine]
    for (_, scalars), row in zip(events, mine):
      want = {k.replace("_", "/", 1): v for k, v in row.items() if isinstance(v, float)}
      assert set(scalars) == set(want)
      np.testing.assert_allclose([scalars[k] for k in want], list(want.values()), rtol=1e-6)
  # Five folds: ⌈5 / cores⌉ per device on the fewest devices that reach it, padded.
  per = -(-5 // cores)
  devices = -(-5 // per)
  want = ({"axis": "single", "devices": 1} if devices == 1 else
          {"axis": "members", "devices": devices,
           **({"padding": devices * per - 5} if devices * per > 5 else {})})
  want.update(member_block=1, member_bits="independent")
  out = genjax("train", *TINY, f"--workdir={tmp_path / 'five'}", env=no_forced_count())
  assert out.returncode == 0, out.stderr[-3000:]
  assert json.loads((tmp_path / "five" / "results.json").read_text())["parallel"] == want


@pytest.mark.slow
def test_a_structural_sweep_passes_cpu_devices_to_its_groups(tmp_path):
  workdir = tmp_path / "sweep"
  out = genjax("sweep", *TINY, "--config.cv.folds=2", "--cpu_devices=2",
               "--sweep=model.widths=(8,),(16,)", f"--workdir={workdir}", env=no_forced_count())
  assert out.returncode == 0, out.stderr[-3000:]
  for group in ("group00", "group01"):
    record = json.loads((workdir / group / "sweep.json").read_text())
    assert record["parallel"] == {"axis": "members", "devices": 2, "member_block": 1,
                                  "member_bits": "independent"}, group


@pytest.mark.parametrize("args,env_flags,needles", [
    (["--cpu_devices=-1"], "", ["--cpu_devices=-1", ">= 0"]),
    (["--cpu_devices=2"], "--xla_force_host_platform_device_count=3",
     ["--cpu_devices=2", "XLA_FLAGS", "drop one"]),
    (["--cpu_devices=2", "--distributed"], "", ["--cpu_devices=2", "jax.distributed"]),
])
def test_bad_cpu_devices_is_one_line_and_writes_nothing(tmp_path, args, env_flags, needles):
  env = no_forced_count()
  if env_flags:
    env["XLA_FLAGS"] = env_flags
  workdir = tmp_path / "run"
  refused(genjax("train", *TINY, *args, f"--workdir={workdir}", env=env), *needles)
  assert not workdir.exists()


@pytest.mark.slow
def test_a_run_resumes_only_on_the_device_count_it_ran_on(tmp_path):
  # 5 folds: the checkpoint holds the padding member (3 + 3 on 2 devices).
  workdir = tmp_path / "run"
  # A checkpoint at most every second (not every epoch: a save costs ~10 of these epochs).
  args = [*TINY, "--config.num_epochs=300", "--config.early_stopping.patience=300",
          "--config.checkpoint.min_interval_s=1", f"--workdir={workdir}"]
  env = dict(no_forced_count(), PYTHONUNBUFFERED="1")
  proc = subprocess.Popen([sys.executable, "-m", "genjax.main", "train", *args,
                           "--cpu_devices=2"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
  ckpts, deadline = workdir / "checkpoints", time.time() + 240
  while time.time() < deadline and not (
      ckpts.is_dir() and any(name.isdigit() for name in os.listdir(ckpts))):
    time.sleep(0.5)
  time.sleep(1.0)
  proc.send_signal(signal.SIGINT)
  assert proc.wait(timeout=120) == 130, proc.stderr.read()[-3000:]
  before = sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*"))
  refused(genjax("train", *args, "--cpu_devices=1", env=env), "trained on 2 device(s)",
          "places it on 1", "--cpu_devices")
  assert sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*")) == before
  # On the devices it ran on, it resumes (the restored state split over them again).
  out = genjax("train", *args, "--cpu_devices=2", env=env)
  assert out.returncode == 0, out.stderr[-3000:]
  results = json.loads((workdir / "results.json").read_text())
  assert results["epochs_run"] == 300
  assert results["parallel"] == {"axis": "members", "devices": 2, "padding": 1,
                                 "member_block": 1, "member_bits": "independent"}
  assert sorted({r["fold"] for r in _rows(workdir)}) == [0, 1, 2, 3, 4]
