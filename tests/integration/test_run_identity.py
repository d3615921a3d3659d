"""One workdir, one run: identity, refusals, the manifest, the lock — on real processes and files.

Every refusal is exit status 2 and exactly one stderr line `genjax: error: ...`, and leaves
the workdir as it was (sha1 of every file compared before and after), or uncreated.

The CLI runs from a copy of genjax/ and experiments/ taken once for this module (`CODE`):
the code fingerprint in run.json hashes genjax's sources, so an edit of genjax/ made by
someone else while these tests run would otherwise turn every resume into a refusal.
"""

import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from genjax.workdir import identity as run_identity
from genjax.workdir import claims as workdir_lib
from genjax.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXP = "--config=experiments/mnist1d_mlp.py"
FAST = ["--config.num_epochs=2", "--config.model.widths=(16,)", "--progress=false"]
TRAIN = ["train", EXP, *FAST]
SWEEP = ["sweep", EXP, *FAST]
CODE = {"dir": ROOT}   # set to the module's snapshot by the `code` fixture


@pytest.fixture(scope="module", autouse=True)
def code(tmp_path_factory):
  """A frozen copy of genjax/ and experiments/: the code every subprocess here runs."""
  root = tmp_path_factory.mktemp("code")
  ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
  for name in ("genjax", "experiments"):
    shutil.copytree(os.path.join(ROOT, name), root / name, ignore=ignore)
  CODE["dir"] = str(root)
  yield str(root)
  CODE["dir"] = ROOT


def _env():
  return dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=CODE["dir"])


def genjax(*args, timeout=300):
  return subprocess.run([sys.executable, "-m", "genjax.main", *map(str, args)], cwd=CODE["dir"],
                        env=_env(), capture_output=True, text=True, timeout=timeout)


def genjax_all(arg_lists, jobs=2):
  """Several genjax commands, `jobs` at a time (refusals: mostly start-up time)."""
  with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
    return list(pool.map(lambda a: genjax(*a), arg_lists))


def ok(out):
  assert out.returncode == 0, (out.returncode, out.stdout[-2000:], out.stderr[-3000:])
  return out


def refused(out, *needles):
  """Exit 2, one stderr line `genjax: error: ...` holding every needle; returns the line."""
  lines = out.stderr.strip().splitlines()
  assert out.returncode == 2, (out.returncode, out.stderr[-3000:])
  assert len(lines) == 1, out.stderr[-3000:]
  assert lines[0].startswith("genjax: error:"), lines[0]
  for needle in needles:
    assert needle in lines[0], (needle, lines[0])
  return lines[0]


def strict_loads(text):
  return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))


def read_json(path):
  with open(path) as f:
    return strict_loads(f.read())


def read_jsonl(path):
  with open(path) as f:
    return [strict_loads(line) for line in f.read().splitlines()]


def tree(root, mtimes=False):
  """{relative path: sha1 (, mtime_ns)} of every file under root, and '<dir>/' for each directory."""
  state = {}
  for dirpath, dirnames, filenames in os.walk(root):
    rel = os.path.relpath(dirpath, root)
    if rel != ".":
      state[rel + "/"] = None
    for name in filenames:
      path = os.path.join(dirpath, name)
      with open(path, "rb") as f:
        digest = hashlib.sha1(f.read()).hexdigest()
      key = os.path.normpath(os.path.join(rel, name))
      state[key] = (digest, os.stat(path).st_mtime_ns) if mtimes else digest
  return state


def results_without_run_facts(path):
  r = read_json(path)
  r.pop("wall_time_s")
  r.pop("provenance")
  return r


def copy_run(src, dst):
  shutil.copytree(src, dst, symlinks=True)
  return str(dst)


# ------------------------------------------------------------------- shared finished runs ---

@pytest.fixture(scope="module")
def train_run(tmp_path_factory):
  """A finished `genjax train` run (TRAIN); tests copy it before changing it."""
  workdir = tmp_path_factory.mktemp("train") / "run"
  ok(genjax(*TRAIN, f"--workdir={workdir}"))
  return str(workdir)


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory):
  """A finished numeric `genjax sweep` (one program). test_sweep_rerun_... overwrites it."""
  workdir = tmp_path_factory.mktemp("sweep") / "run"
  ok(genjax(*SWEEP, "--sweep=optimizer.learning_rate=1e-3,1e-2", f"--workdir={workdir}"))
  return str(workdir)


# -------------------------------------------------------------------------------- 1. sweep ---

def test_sweep_rerun_with_other_values_is_refused_and_overwrite_replaces_it(sweep_run):
  rows = read_json(os.path.join(sweep_run, "sweep.json"))["rows"]
  assert [r["point"]["optimizer.learning_rate"] for r in rows] == [1e-3, 1e-2]
  before = tree(sweep_run, mtimes=True)
  # The same sweep again: a no-op resume.
  out = ok(genjax(*SWEEP, "--sweep=optimizer.learning_rate=1e-3,1e-2", f"--workdir={sweep_run}"))
  assert "2 points" in out.stdout
  assert tree(sweep_run, mtimes=True) == before
  # Other values on the same workdir: refused, nothing changed.
  out = genjax(*SWEEP, "--sweep=optimizer.learning_rate=0.5,5.0", f"--workdir={sweep_run}")
  refused(out, "sweep points differ", "--overwrite")
  assert tree(sweep_run, mtimes=True) == before
  # --overwrite: the new values run.
  ok(genjax(*SWEEP, "--sweep=optimizer.learning_rate=0.5,5.0", f"--workdir={sweep_run}",
            "--overwrite"))
  data = read_json(os.path.join(sweep_run, "sweep.json"))
  assert [r["point"]["optimizer.learning_rate"] for r in data["rows"]] == [0.5, 5.0]
  assert read_json(os.path.join(sweep_run, "run.json"))["points"] == [
      {"optimizer.learning_rate": 0.5}, {"optimizer.learning_rate": 5.0}]
  read_jsonl(os.path.join(sweep_run, "metrics.jsonl"))   # strict JSON (lr 5 may diverge)


# ------------------------------------------------------------------------ 2. code changes ---

PENALTY = '''"""A user penalty, registered from a module beside the config file."""
import jax.numpy as jnp
from genjax.optim import penalties


@penalties.register("my_cubic")
def my_cubic(w):
  return jnp.sum(jnp.abs(w) ** 3)
'''

CONFIG = '''"""A config importing my_penalties.py from its own folder."""
import my_penalties  # noqa: F401  (registers my_cubic)
from genjax.config import defaults


def get_config():
  config = defaults.get_config()
  config.data.name = "mnist1d"
  config.model.widths = (16,)
  config.num_epochs = 2
  config.penalties.my_cubic.strength = 1e-4
  return config
'''


def test_code_change_of_a_user_module_or_the_config_file_is_refused(tmp_path):
  exp = tmp_path / "exp"
  exp.mkdir()
  (exp / "my_penalties.py").write_text(PENALTY)
  (exp / "my_config.py").write_text(CONFIG)
  workdir = tmp_path / "run"
  cmd = ["train", f"--config={exp / 'my_config.py'}", f"--workdir={workdir}", "--progress=false"]
  ok(genjax(*cmd))
  run = read_json(workdir / "run.json")
  modules = run["code"]["user_modules"]
  assert {os.path.basename(p) for p in modules} >= {"my_penalties.py", "my_config.py"}, modules
  assert run["config"]["penalties"]["my_cubic"]["strength"] == 1e-4
  before = tree(workdir)

  # The penalty's formula changes: refused, naming the module.
  (exp / "my_penalties.py").write_text(PENALTY.replace("** 3)", "** 3) * 2.0"))
  refused(genjax(*cmd), "my_penalties.py", "--overwrite")
  assert tree(workdir) == before

  # Back to the original penalty, but a comment added to the config file: refused too.
  (exp / "my_penalties.py").write_text(PENALTY)
  (exp / "my_config.py").write_text(CONFIG + "# a comment is code too\n")
  refused(genjax(*cmd), "my_config.py", "--overwrite")
  assert tree(workdir) == before

  # Both as they were (same content, new mtimes): the run is the stored one again.
  (exp / "my_config.py").write_text(CONFIG)
  ok(genjax(*cmd))
  assert tree(workdir) == before


# --------------------------------------------------------------------- 3. train vs sweep ---

def test_sweep_into_a_train_workdir_and_train_into_a_sweep_workdir_are_refused(train_run,
                                                                                sweep_run):
  train_before, sweep_before = tree(train_run), tree(sweep_run)
  out_sweep, out_train = genjax_all([
      [*SWEEP, "--sweep=optimizer.learning_rate=1e-3,1e-2", f"--workdir={train_run}"],
      [*TRAIN, f"--workdir={sweep_run}"]])
  refused(out_sweep, "holds a genjax train run")
  refused(out_train, "holds a genjax sweep run")
  assert tree(train_run) == train_before
  assert tree(sweep_run) == sweep_before


# ------------------------------------------------------------------- 4. checkpoint.subdir ---

BAD_SUBDIRS = [".", "..", "ABSOLUTE", "a/b", "results.json", "config.json", "metrics.jsonl"]


def test_bad_checkpoint_subdir_is_refused_before_the_workdir_is_created(tmp_path):
  absolute = str(tmp_path / "elsewhere" / "x")
  values = [absolute if v == "ABSOLUTE" else v for v in BAD_SUBDIRS]
  workdirs = [tmp_path / f"fresh{i}" for i in range(len(values))]
  outs = genjax_all([[*TRAIN, f"--workdir={w}", f"--config.checkpoint.subdir={v}"]
                     for w, v in zip(workdirs, values)])
  for w, v, out in zip(workdirs, values, outs):
    refused(out, "checkpoint.subdir")
    assert not w.exists(), (v, os.listdir(w))
  assert not (tmp_path / "elsewhere").exists()


def test_overwrite_with_a_subdir_outside_the_workdir_deletes_nothing(train_run, tmp_path):
  parent = tmp_path / "parent"
  parent.mkdir()
  workdir = copy_run(train_run, parent / "run")
  (parent / "run" / "notes.txt").write_text("my notes")
  (parent / "sibling").mkdir()
  (parent / "sibling" / "data.txt").write_text("a sibling's file")
  (parent / "target").mkdir()
  (parent / "target" / "keep.txt").write_text("inside the absolute subdir")
  before = tree(tmp_path)
  outs = genjax_all([[*TRAIN, f"--workdir={workdir}", "--overwrite",
                      f"--config.checkpoint.subdir={v}"]
                     for v in ("..", ".", str(parent / "target"))])
  for out in outs:
    refused(out, "checkpoint.subdir")
  assert tree(tmp_path) == before


# -------------------------------------------------------------------------- 5. --overwrite ---

def test_overwrite_removes_only_the_manifest_outputs(train_run, tmp_path):
  workdir = copy_run(train_run, tmp_path / "run")
  (tmp_path / "run" / "notes.txt").write_text("my notes")
  (tmp_path / "run" / "mydata").mkdir()
  (tmp_path / "run" / "mydata" / "table.csv").write_text("a,b\n1,2\n")
  old_results = read_json(os.path.join(workdir, "results.json"))
  out = ok(genjax(*TRAIN, f"--workdir={workdir}", "--config.optimizer.learning_rate=0.01",
                  "--overwrite"))
  assert "--overwrite: removed" in out.stdout
  assert (tmp_path / "run" / "notes.txt").read_text() == "my notes"
  assert (tmp_path / "run" / "mydata" / "table.csv").read_text() == "a,b\n1,2\n"
  assert read_json(os.path.join(workdir, "config.json"))["optimizer"]["learning_rate"] == 0.01
  assert read_json(os.path.join(workdir, "run.json"))["config"]["optimizer"]["learning_rate"] == 0.01
  assert [r["epoch"] for r in read_jsonl(os.path.join(workdir, "metrics.jsonl"))] == [0, 1]
  new_results = read_json(os.path.join(workdir, "results.json"))
  assert new_results["test"] != old_results["test"]
  assert "notes.txt" not in read_json(os.path.join(workdir, "manifest.json"))["outputs"]


def test_overwrite_with_the_same_config_restarts_from_scratch(train_run, tmp_path):
  workdir = copy_run(train_run, tmp_path / "run")
  stamp = os.stat(os.path.join(workdir, "results.json")).st_mtime_ns
  old_wall = read_json(os.path.join(workdir, "results.json"))["wall_time_s"]
  out = ok(genjax(*TRAIN, f"--workdir={workdir}", "--overwrite"))
  assert "--overwrite: removed" in out.stdout
  assert os.stat(os.path.join(workdir, "results.json")).st_mtime_ns != stamp
  assert read_json(os.path.join(workdir, "results.json"))["wall_time_s"] != old_wall
  assert [r["epoch"] for r in read_jsonl(os.path.join(workdir, "metrics.jsonl"))] == [0, 1]
  assert (results_without_run_facts(os.path.join(workdir, "results.json"))
          == results_without_run_facts(os.path.join(train_run, "results.json")))
  assert not os.path.exists(os.path.join(workdir, run_identity.LOCK))


def test_holdout_overwrite_of_a_kfold_run_leaves_no_kfold_outputs(tmp_path):
  workdir = tmp_path / "run"
  kfold = ["--config.cv.method=kfold", "--config.cv.folds=2", "--config.cv.refit=true"]
  ok(genjax(*TRAIN, *kfold, f"--workdir={workdir}"))
  kfold_only = ["oof_predictions.npz", "cv_folds.png", "metrics_refit.jsonl",
                "checkpoints_refit"]
  for name in kfold_only:
    assert (workdir / name).exists(), (name, sorted(os.listdir(workdir)))
  (workdir / "notes.txt").write_text("mine")
  ok(genjax(*TRAIN, f"--workdir={workdir}", "--overwrite"))
  left = sorted(os.listdir(workdir))
  for name in kfold_only:
    assert name not in left, left
  assert (workdir / "notes.txt").read_text() == "mine"
  results = read_json(workdir / "results.json")
  assert "cv" not in results and "test_refit" not in results
  assert read_json(workdir / "config.json")["cv"]["method"] == "none"
  assert [r["epoch"] for r in read_jsonl(workdir / "metrics.jsonl")] == [0, 1]
  assert all("fold" not in r for r in read_jsonl(workdir / "metrics.jsonl"))


# -------------------------------------------------------------------------------- 6. lock ---

def _rows(path):
  try:
    with open(path) as f:
      return len(f.read().splitlines())
  except FileNotFoundError:
    return 0


def _wait_rows(proc, path, n, timeout=240):
  deadline = time.time() + timeout
  while _rows(path) < n:
    assert proc.poll() is None, f"the run exited ({proc.returncode}) before {n} metric rows"
    assert time.time() < deadline, f"no {n} metric rows after {timeout} s"
    time.sleep(0.005)


def test_a_workdir_in_use_is_refused_naming_the_holder_and_a_killed_holder_never_blocks(
    tmp_path):
  workdir = tmp_path / "run"
  epochs = 10   # SIGSTOP keeps it running as long as needed; the resumed rerun stays short
  cmd = ["train", EXP, f"--config.num_epochs={epochs}", "--config.model.widths=(16,)",
         "--progress=false", "--config.checkpoint.min_interval_s=0",
         "--config.early_stopping.enabled=false", f"--workdir={workdir}"]
  metrics = workdir / "metrics.jsonl"
  first = subprocess.Popen([sys.executable, "-m", "genjax.main", *cmd], cwd=CODE["dir"],
                           env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    _wait_rows(first, metrics, 1)
    first.send_signal(signal.SIGSTOP)   # holds the lock, and cannot finish meanwhile
    assert (workdir / run_identity.LOCK).exists()
    before = tree(workdir)
    t0 = time.time()
    out = genjax(*cmd, timeout=120)
    line = refused(out, "in use")
    assert re.search(rf"\bPID {first.pid}\b", line), (first.pid, line)
    assert time.time() - t0 < 60        # refused, not waited for
    assert tree(workdir) == before
    # Running again, then killed with SIGKILL: its lock file stays behind, its lock does not.
    rows = _rows(metrics)
    first.send_signal(signal.SIGCONT)
    _wait_rows(first, metrics, rows + 1)
    first.send_signal(signal.SIGKILL)
    first.wait()
  finally:
    if first.poll() is None:
      first.kill()
      first.wait()
  assert _rows(metrics) < epochs        # it was killed mid-run
  assert (workdir / run_identity.LOCK).exists()
  ok(genjax(*cmd))
  assert [r["epoch"] for r in read_jsonl(metrics)] == list(range(epochs))
  assert read_json(workdir / "results.json")["epochs_run"] == epochs
  assert not (workdir / run_identity.LOCK).exists()


def test_a_finished_run_leaves_no_lock_file(train_run):
  assert not os.path.exists(os.path.join(train_run, run_identity.LOCK))
  # Every top-level name but the manifest itself is one of its outputs: no lock file left.
  assert sorted(read_json(os.path.join(train_run, "manifest.json"))["outputs"]) == sorted(
      set(os.listdir(train_run)) - {"manifest.json"})


# ---------------------------------------------------------------------- 7. no-op resume ---

def test_rerun_of_a_finished_run_changes_no_file_and_prints_the_stored_results(train_run,
                                                                                 tmp_path):
  workdir = copy_run(train_run, tmp_path / "run")
  before = tree(workdir, mtimes=True)
  out = ok(genjax(*TRAIN, f"--workdir={workdir}"))
  assert tree(workdir, mtimes=True) == before
  results = read_json(os.path.join(workdir, "results.json"))
  assert "| test |" in out.stdout
  assert f"{100 * results['test']['accuracy']:.2f}%" in out.stdout
  assert f"{results['wall_time_s']:.1f} s" in out.stdout   # the stored run's time, not a new one


# ---------------------------------------------------------- 8. sweep.run called from Python ---

SCRIPT = '''
import json, sys
from genjax.config import defaults
from genjax.sweeps import driver as sweep

config = defaults.get_config()
config.num_epochs = 2
config.early_stopping.enabled = False
rows = sweep.run(config, sys.argv[1], [{"model.widths": (8,)}, {"model.widths": (16,)}],
                 parallel_jobs=2, progress=False)
print(json.dumps([r["point"] for r in rows]))
'''


def test_sweep_run_from_python_gives_its_groups_the_callers_config(tmp_path):
  script = tmp_path / "call_sweep.py"
  script.write_text(SCRIPT)
  workdir = tmp_path / "run"
  out = subprocess.run([sys.executable, str(script), str(workdir)], cwd=CODE["dir"], env=_env(),
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-3000:],
                               [(workdir / f"group0{i}.log").read_text()[-2000:]
                                for i in range(2) if (workdir / f"group0{i}.log").exists()])
  points = json.loads(out.stdout.strip().splitlines()[-1])
  assert points == [{"model.widths": [8]}, {"model.widths": [16]}]
  for i, widths in enumerate(([8], [16])):
    config = read_json(workdir / f"group0{i}" / "config.json")
    assert config["num_epochs"] == 2, (i, config["num_epochs"])
    assert config["early_stopping"]["enabled"] is False, i
    assert config["model"]["widths"] == widths
    rows = read_jsonl(workdir / f"group0{i}" / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [0, 1]


# ------------------------------------------------------------ 9. provenance, strict JSON ---

def test_results_record_provenance_and_are_strict_json(train_run):
  results = read_json(os.path.join(train_run, "results.json"))
  read_jsonl(os.path.join(train_run, "metrics.jsonl"))
  p = results["provenance"]
  assert re.fullmatch(r"[0-9a-f]{64}", p["code"]["genjax_source"]), p["code"]
  assert p["code"]["genjax_version"]
  assert any(path.endswith("mnist1d_mlp.py") for path in p["code"]["user_modules"])
  assert p["seed"] == 0
  assert "jax" in p["packages"] and "jaxlib" in p["packages"]
  assert p["device_kind"]
  assert "git_commit" in p
  assert p["code"] == read_json(os.path.join(train_run, "run.json"))["code"]


def test_a_diverging_run_writes_strict_json(tmp_path):
  # Adam's steps have the learning rate's size: 1e30 overflows the weights within an epoch
  # (1e6 stays finite on this model).
  # A diverged run keeps its outputs, is marked in results.json and exits 1 saying so.
  workdir = tmp_path / "run"
  out = genjax(*TRAIN, f"--workdir={workdir}", "--config.optimizer.learning_rate=1e30",
               "--config.early_stopping.enabled=false")
  assert out.returncode == 1, (out.returncode, out.stderr[-2000:])
  assert "diverged" in out.stderr, out.stderr[-2000:]
  rows = read_jsonl(workdir / "metrics.jsonl")
  results = read_json(workdir / "results.json")
  assert results["diverged"], results
  assert [r["epoch"] for r in rows] == [0, 1]
  assert any(r["train_loss_running"] is None for r in rows), rows   # non-finite -> null
  assert results["test"]["loss"] is None, results["test"]


# ------------------------------------------------------- 10. values checked before running ---

def test_bad_values_are_refused_per_point_before_the_workdir_is_created(tmp_path):
  cases = [
      (["sweep", "--sweep=model.dropout=0.0,1.5"], "dropout"),
      (["sweep", "--sweep=optimizer.learning_rate=-1.0,1e-3"], "learning_rate"),
      (["sweep", "--sweep=penalties.l2.strength=-1.0,0.0"], "strength"),
      (["train", "--config.optimizer.learning_rate=inf"], "learning_rate"),
      (["sweep", "--sweep=model.widths=(8,),(16,)", "--parallel_jobs=0"], "parallel_jobs"),
      (["sweep", "--sweep=model.widths=(8,),(16,)", "--parallel_jobs=-3"], "parallel_jobs"),
      (["train", "--config.penalties.l1.mask=("], "mask"),
      (["sweep", "--sweep=penalties.l1.strength=0.0,1e-3", "--config.penalties.l1.mask=("],
       "mask"),
      # A structural axis whose second group is invalid: refused before group 0 starts.
      (["sweep", "--sweep=model.widths=(8,),(0,)"], "model.widths"),
  ]
  workdirs = [tmp_path / f"run{i}" for i in range(len(cases))]
  outs = genjax_all([[args[0], EXP, *FAST, *args[1:], f"--workdir={w}"]
                     for (args, _), w in zip(cases, workdirs)])
  for ((args, needle), w, out) in zip(cases, workdirs, outs):
    refused(out, needle)
    assert not w.exists(), (args, sorted(os.listdir(w)))


# --------------------------------------------------------------------------- 11. units ---

def _identity(**changes):
  ident = {"kind": "train", "config": {"optimizer": {"learning_rate": 0.001, "name": "adam"},
                                       "num_epochs": 2, "seed": 0},
           "points": [],
           "code": {"genjax_version": "0.1.0", "genjax_source": "a" * 64,
                    "user_modules": {"/u/my_config.py": "1" * 64,
                                     "/u/my_penalties.py": "2" * 64}}}
  for key, value in changes.items():
    ident[key] = value
  return ident


def test_difference_equal_identities_is_none():
  assert run_identity.difference(_identity(), _identity()) is None
  from genjax.config import defaults
  config = defaults.get_config()
  a = run_identity.identity("train", config)
  b = run_identity.identity("train", defaults.get_config())
  assert run_identity.difference(a, b) is None
  assert json.loads(json.dumps(a)) == a          # what run.json stores reads back equal


def test_difference_names_what_differs():
  old = _identity()
  phrase = run_identity.difference(old, _identity(kind="sweep"))
  assert "train" in phrase and "sweep" in phrase

  config = json.loads(json.dumps(old["config"]))
  config["optimizer"]["learning_rate"] = 0.01
  phrase = run_identity.difference(old, _identity(config=config))
  assert "config differs" in phrase and "optimizer.learning_rate" in phrase
  assert "0.001" in phrase and "0.01" in phrase

  config = json.loads(json.dumps(old["config"]))
  config.update(seed=1, num_epochs=3, extra_key=5)
  config["optimizer"]["name"] = "sgd"
  phrase = run_identity.difference(old, _identity(config=config))
  assert "and 1 more" in phrase, phrase
  assert "extra_key" in phrase and "<unset>" in phrase, phrase

  config = json.loads(json.dumps(old["config"]))
  del config["seed"]
  phrase = run_identity.difference(old, _identity(config=config))
  assert "seed" in phrase and "<unset>" in phrase

  phrase = run_identity.difference(
      _identity(points=[{"model.dropout": 0.0}]), _identity(points=[{"model.dropout": 0.5}]))
  assert "sweep points differ" in phrase

  code = json.loads(json.dumps(old["code"]))
  code["genjax_source"] = "b" * 64
  assert "genjax's source code changed" in run_identity.difference(old, _identity(code=code))
  code = json.loads(json.dumps(old["code"]))
  code["genjax_version"] = "0.2.0"
  assert "genjax's source code changed" in run_identity.difference(old, _identity(code=code))

  code = json.loads(json.dumps(old["code"]))
  code["user_modules"]["/u/my_penalties.py"] = "3" * 64
  phrase = run_identity.difference(old, _identity(code=code))
  assert "/u/my_penalties.py" in phrase and "changed" in phrase
  code = json.loads(json.dumps(old["code"]))
  code["user_modules"]["/u/new_module.py"] = "4" * 64
  phrase = run_identity.difference(old, _identity(code=code))
  assert "/u/new_module.py" in phrase and "not used then" in phrase
  code = json.loads(json.dumps(old["code"]))
  del code["user_modules"]["/u/my_penalties.py"]
  phrase = run_identity.difference(old, _identity(code=code))
  assert "/u/my_penalties.py" in phrase and "no longer used" in phrase

  assert run_identity.difference(old, {**_identity(), "other": 1}) == "its record differs"


def test_difference_reports_config_before_points_before_code():
  config = {"num_epochs": 3}
  code = {"genjax_version": "9", "genjax_source": "c", "user_modules": {}}
  phrase = run_identity.difference(_identity(), _identity(config=config, points=[{"a": 1}],
                                                          code=code))
  assert "config differs" in phrase
  phrase = run_identity.difference(_identity(), _identity(points=[{"a": 1}], code=code))
  assert "sweep points differ" in phrase


@pytest.mark.parametrize("name", ["checkpoints", "ckpt", "ckpt-2", "my.ckpts", "_c",
                                  "checkpoints_refit", "results", "x" * 100])
def test_check_output_name_accepts_plain_names(name):
  workdir_lib.check_output_name("checkpoint.subdir", name)


@pytest.mark.parametrize("name", [".", "..", "/tmp/x", "a/b", "../x", "", " ", "-x", "a b",
                                  "x" * 101, None, 3, "a\\b", "~"])
def test_check_output_name_refuses_paths(name):
  with pytest.raises(ConfigError, match=r"checkpoint\.subdir=.*plain directory name"):
    workdir_lib.check_output_name("checkpoint.subdir", name)


@pytest.mark.parametrize("name", sorted(n for n in run_identity.RESERVED if not n.startswith(".")) + [
    "group00", "group7", "group12.log", "group03.config", "results.json_refit",
    "metrics.jsonl_refit"])
def test_check_output_name_refuses_genjax_outputs(name):
  with pytest.raises(ConfigError, match=r"checkpoint\.subdir=.*genjax's outputs"):
    workdir_lib.check_output_name("checkpoint.subdir", name)


def test_check_output_name_message_is_one_line():
  for name in ("..", "results.json"):
    with pytest.raises(ConfigError) as e:
      workdir_lib.check_output_name("checkpoint.subdir", name)
    assert "\n" not in str(e.value)


# ------------------------------------------------------------ found in review of this file ---

def test_an_unreadable_run_json_is_refused_and_nothing_is_deleted(train_run, tmp_path):
  for content in ("{broken", "[]"):
    workdir = copy_run(train_run, tmp_path / f"w{len(content)}")
    with open(os.path.join(workdir, "run.json"), "w") as f:
      f.write(content)
    before = tree(workdir)
    refused(genjax(*TRAIN, "--config.seed=5", f"--workdir={workdir}"), "run.json is unreadable")
    assert tree(workdir) == before


def test_outputs_that_exist_before_a_first_run_are_never_claimed(tmp_path):
  workdir = tmp_path / "run"
  (workdir / "tensorboard").mkdir(parents=True)
  (workdir / "tensorboard" / "my_notes.txt").write_text("mine\n")
  refused(genjax(*TRAIN, f"--workdir={workdir}"), "'tensorboard'", "no genjax run")
  assert (workdir / "tensorboard" / "my_notes.txt").read_text() == "mine\n"
  assert sorted(os.listdir(workdir)) == ["tensorboard"]


def test_symlinked_outputs_are_refused_and_their_targets_untouched(train_run, tmp_path):
  outside = tmp_path / "outside.txt"
  outside.write_text("keep\n")
  for name in (".genjax.lock", "config.json"):
    workdir = copy_run(train_run, tmp_path / f"w{name}")
    path = os.path.join(workdir, name)
    if os.path.exists(path):
      os.remove(path)
    os.symlink(outside, path)
    refused(genjax(*TRAIN, "--overwrite", f"--workdir={workdir}"), "symbolic link")
    assert outside.read_text() == "keep\n"


def test_numpy_values_from_get_sweep_are_plain_in_the_records(tmp_path):
  config = tmp_path / "np_sweep.py"
  config.write_text(
      "import numpy as np\n"
      "from genjax.config import defaults\n"
      "def get_config():\n"
      "  c = defaults.get_config()\n"
      "  c.num_epochs = 1\n"
      "  c.checkpoint.enabled = False\n"
      "  return c\n"
      "def get_sweep():\n"
      "  return [{'model.widths': (w,), 'model.dropout': d}\n"
      "          for w in np.array([8, 16]) for d in np.array([0.0, 0.1])]\n")
  workdir = tmp_path / "sw"
  ok(genjax("sweep", f"--config={config}", "--progress=false", f"--workdir={workdir}"))
  points = read_json(workdir / "run.json")["points"]
  assert points[0] == {"model.widths": [8], "model.dropout": 0.0}
  assert read_json(workdir / "group01" / "config.json")["model"]["widths"] == [16]


def test_refit_device_layout_is_checked_before_the_folds_train(tmp_path):
  workdir = tmp_path / "cv"
  env = dict(_env(), XLA_FLAGS="--xla_force_host_platform_device_count=2")
  out = subprocess.run([sys.executable, "-m", "genjax.main", *TRAIN, "--config.cv.method=kfold",
                        "--config.cv.folds=2", "--config.cv.refit=true",
                        "--config.batch_size=99", "--config.parallel.axis=members",
                        f"--workdir={workdir}"],
                       cwd=CODE["dir"], env=env, capture_output=True, text=True, timeout=300)
  refused(out)
  assert not workdir.exists()
