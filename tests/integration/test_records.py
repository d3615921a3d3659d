"""The record is verified, not believed: what genjax reads back from a workdir is what it wrote.

Real processes and files (issue #30, item 4). A finished run's manifest.json is sealed (a
digest over its content) and lists every output with its digest, written last; a rerun
checks them: an output that can be rebuilt from the run's checkpoints is rebuilt, anything
else is refused in one line with nothing deleted. Every refusal is exit status 2 and one
stderr line `genjax: error: ...`.

As in test_run_identity.py, the CLI runs from a copy of genjax/ and experiments/ taken once
for this module, so that an edit of genjax/ by someone else cannot change the fingerprint.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXP = "--config=experiments/mnist1d_mlp.py"
FAST = ["--config.num_epochs=2", "--config.model.widths=(16,)", "--progress=false"]
TRAIN = ["train", EXP, *FAST]
CODE = {"dir": ROOT}


@pytest.fixture(scope="module", autouse=True)
def code(tmp_path_factory):
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


def python(*args, cwd=None, timeout=300):
  return subprocess.run([sys.executable, *map(str, args)], cwd=cwd or CODE["dir"], env=_env(),
                        capture_output=True, text=True, timeout=timeout)


def ok(out):
  assert out.returncode == 0, (out.returncode, out.stdout[-2000:], out.stderr[-3000:])
  return out


def refused(out, *needles):
  lines = out.stderr.strip().splitlines()
  assert out.returncode == 2, (out.returncode, out.stdout[-1000:], out.stderr[-3000:])
  assert len(lines) == 1, out.stderr[-3000:]
  assert lines[0].startswith("genjax: error:"), lines[0]
  for needle in needles:
    assert needle in lines[0], (needle, lines[0])
  return lines[0]


def tree(root):
  """{relative path: sha1} of every file under root, and '<dir>/' for each directory."""
  state = {}
  for dirpath, _, filenames in os.walk(root):
    rel = os.path.relpath(dirpath, root)
    if rel != ".":
      state[rel + "/"] = None
    for name in filenames:
      with open(os.path.join(dirpath, name), "rb") as f:
        state[os.path.normpath(os.path.join(rel, name))] = hashlib.sha1(f.read()).hexdigest()
  return state


def read_json(path):
  with open(path) as f:
    return json.load(f)


def results_without_run_facts(path):
  r = read_json(path)
  r.pop("wall_time_s")
  r.pop("provenance")
  return r


@pytest.fixture(scope="module")
def train_run(tmp_path_factory):
  """A finished `genjax train` run (TRAIN); tests copy it before changing it."""
  workdir = tmp_path_factory.mktemp("train") / "run"
  ok(genjax(*TRAIN, f"--workdir={workdir}"))
  return str(workdir)


def copy_run(src, dst):
  shutil.copytree(src, dst, symlinks=True)
  return str(dst)


# -------------------------------------------------- 1. outputs without their identity ---

def test_outputs_without_run_json_are_refused_and_nothing_is_deleted(train_run, tmp_path):
  workdir = copy_run(train_run, tmp_path / "run")
  os.remove(os.path.join(workdir, "run.json"))
  before = tree(workdir)
  refused(genjax(*TRAIN, f"--workdir={workdir}"), "run.json", "results.json", "--overwrite")
  assert tree(workdir) == before
  # --overwrite replaces them, as the message says.
  ok(genjax(*TRAIN, f"--workdir={workdir}", "--overwrite"))
  assert os.path.exists(os.path.join(workdir, "run.json"))


# ------------------------------------------------------- 2. a workdir inside another run ---

def test_a_workdir_inside_another_runs_outputs_is_refused(train_run, tmp_path):
  workdir = copy_run(train_run, tmp_path / "run")
  before = tree(workdir)
  for inner in ("checkpoints/nested", "selected", "mine/deeper"):
    refused(genjax(*TRAIN, f"--workdir={os.path.join(workdir, inner)}"), "inside", workdir)
  assert tree(workdir) == before


def test_overwrite_never_removes_another_run_nested_in_its_outputs(train_run, tmp_path):
  workdir = copy_run(train_run, tmp_path / "run")
  copy_run(train_run, tmp_path / "run" / "checkpoints" / "nested")   # made by an older genjax
  before = tree(workdir)
  refused(genjax(*TRAIN, f"--workdir={workdir}", "--overwrite"), "nested", "another genjax run")
  assert tree(workdir) == before


# -------------------------------------------------------- 3. a hand-edited manifest ---

def test_overwrite_never_trusts_a_hand_edited_manifest(train_run, tmp_path):
  workdir = copy_run(train_run, tmp_path / "run")
  (tmp_path / "run" / "notes.txt").write_text("my notes\n")
  manifest = read_json(os.path.join(workdir, "manifest.json"))
  manifest["outputs"].append("notes.txt")
  with open(os.path.join(workdir, "manifest.json"), "w") as f:
    json.dump(manifest, f, indent=2, sort_keys=True)
  before = tree(workdir)
  refused(genjax(*TRAIN, f"--workdir={workdir}", "--overwrite"), "manifest.json")
  assert tree(workdir) == before
  assert (tmp_path / "run" / "notes.txt").read_text() == "my notes\n"


# ------------------------------------------------------------- 4. edited records ---

def test_edited_results_are_rebuilt_from_the_checkpoints(train_run, tmp_path):
  workdir = copy_run(train_run, tmp_path / "run")
  path = os.path.join(workdir, "results.json")
  results = read_json(path)
  results["test"]["accuracy"] = 0.99
  with open(path, "w") as f:
    json.dump(results, f)
  out = ok(genjax(*TRAIN, f"--workdir={workdir}"))
  assert "99.00%" not in out.stdout
  assert "results.json" in out.stdout and "rebuil" in out.stdout
  assert results_without_run_facts(path) == results_without_run_facts(
      os.path.join(train_run, "results.json"))
  # Rebuilt and recorded: the next rerun believes it again and writes nothing.
  before = tree(workdir)
  ok(genjax(*TRAIN, f"--workdir={workdir}"))
  assert tree(workdir) == before


def test_an_edited_run_json_is_refused(train_run, tmp_path):
  workdir = copy_run(train_run, tmp_path / "run")
  path = os.path.join(workdir, "run.json")
  run = read_json(path)
  run["config"]["seed"] = 5      # made to look like the run of --config.seed=5
  with open(path, "w") as f:
    json.dump(run, f, indent=2, sort_keys=True)
  before = tree(workdir)
  refused(genjax(*TRAIN, "--config.seed=5", f"--workdir={workdir}"), "run.json", "--overwrite")
  assert tree(workdir) == before


def test_an_edited_config_json_is_rebuilt_from_run_json(train_run, tmp_path):
  workdir = copy_run(train_run, tmp_path / "run")
  path = os.path.join(workdir, "config.json")
  with open(path, "w") as f:
    f.write('{"seed": 123}\n')
  ok(genjax(*TRAIN, f"--workdir={workdir}"))
  with open(path) as f, open(os.path.join(train_run, "config.json")) as g:
    assert f.read() == g.read()


def _cut(path, keep_lines: int):
  """metrics.jsonl cut in the middle of line `keep_lines` (as a copy or a full disk may)."""
  with open(path) as f:
    lines = f.read().splitlines(keepends=True)
  with open(path, "w") as f:
    f.write("".join(lines[:keep_lines]) + lines[keep_lines][:10])


def test_a_cut_metrics_log_of_a_finished_run_is_refused(train_run, tmp_path):
  workdir = copy_run(train_run, tmp_path / "run")
  _cut(os.path.join(workdir, "metrics.jsonl"), 1)
  before = tree(workdir)
  refused(genjax(*TRAIN, f"--workdir={workdir}"), "metrics.jsonl", "--overwrite")
  assert tree(workdir) == before


def test_a_resume_with_a_cut_metrics_log_is_refused_not_finished_short(tmp_path):
  workdir = tmp_path / "run"
  cmd = ["train", EXP, "--config.num_epochs=6", "--config.model.widths=(16,)",
         "--config.early_stopping.enabled=false", "--progress=false", f"--workdir={workdir}"]
  ok(genjax(*cmd))
  _cut(workdir / "metrics.jsonl", 2)
  os.remove(workdir / "results.json")    # as a kill before results.json would leave it
  before = tree(workdir)
  refused(genjax(*cmd), "metrics.jsonl", "--overwrite")
  assert tree(workdir) == before


def test_metrics_log_refuses_to_resume_past_rows_it_lacks(tmp_path):
  from genjax.errors import ConfigError
  from genjax.train import callbacks
  from genjax.train.fit import FitInfo
  path = tmp_path / "metrics.jsonl"
  path.write_text("".join(json.dumps({"epoch": e, "val_loss": 1.0}) + "\n" for e in range(3)))
  log = callbacks.MetricsLog(str(path))
  with pytest.raises(ConfigError, match="metrics.jsonl.*epochs 3..7"):
    log.on_train_start(FitInfo(program=None, start_epoch=8, num_epochs=10, rows=[]))
  assert len(path.read_text().splitlines()) == 3           # nothing dropped
  info = FitInfo(program=None, start_epoch=2, num_epochs=10, rows=[])
  log.on_train_start(info)                                  # resuming inside the rows: fine
  log.on_interrupt(info)
  assert [r["epoch"] for r in info.rows] == [0, 1]


# ------------------------------------------------------- 5. a finish without all outputs ---

def test_a_finished_run_missing_its_plot_completes_it_on_rerun(train_run, tmp_path):
  workdir = copy_run(train_run, tmp_path / "run")
  os.remove(os.path.join(workdir, "learning_curves.png"))   # killed after results.json
  ok(genjax(*TRAIN, f"--workdir={workdir}"))
  assert os.path.getsize(os.path.join(workdir, "learning_curves.png")) > 0
  assert results_without_run_facts(os.path.join(workdir, "results.json")) == (
      results_without_run_facts(os.path.join(train_run, "results.json")))


# ---------------------------------------------------------------- 6. deleted selected/ ---

LOAD = """
import sys, genjax
run = genjax.load_run(sys.argv[1])
print("test accuracy", float(run.evaluate("test")["accuracy"][0]))
"""


def test_a_deleted_selected_dir_is_rebuilt_by_the_rerun(train_run, tmp_path):
  workdir = copy_run(train_run, tmp_path / "run")
  shutil.rmtree(os.path.join(workdir, "selected"))
  ok(genjax(*TRAIN, f"--workdir={workdir}"))
  assert os.path.isdir(os.path.join(workdir, "selected"))
  out = ok(python("-c", LOAD, workdir))
  accuracy = read_json(os.path.join(train_run, "results.json"))["test"]["accuracy"]
  assert abs(float(out.stdout.split()[-1]) - accuracy) < 1e-6


# ------------------------------------------------- 7. the identity is not the caller ---

SCRIPT = """
import sys, genjax
config = genjax.load_config("experiments/mnist1d_mlp.py",
                            ["num_epochs=2", "model.widths=(16,)"])
run = genjax.fit(config, sys.argv[1])
print("accuracy", run.results["test"]["accuracy"])
"""


def test_fit_identity_does_not_include_the_calling_script(tmp_path):
  workdir = tmp_path / "run"
  script = tmp_path / "mkapi.py"
  script.write_text(SCRIPT)
  first = ok(python(script, workdir)).stdout.split()[-1]
  modules = read_json(workdir / "run.json")["code"]["user_modules"]
  assert not any(p.endswith("mkapi.py") for p in modules), modules
  script.write_text(SCRIPT + "# a comment in the calling script\n")
  assert ok(python(script, workdir)).stdout.split()[-1] == first
  other = tmp_path / "other.py"
  other.write_text(SCRIPT)
  assert ok(python(other, workdir)).stdout.split()[-1] == first
  assert ok(python("-c", SCRIPT, workdir)).stdout.split()[-1] == first


# ------------------------------------------- the same class: sweeps, readers of a finished run ---

SWEEP = ["sweep", EXP, *FAST, "--sweep=optimizer.learning_rate=1e-3,1e-2"]


def _without_run_facts(sweep):
  return {k: v for k, v in sweep.items() if k not in ("wall_time_s", "provenance")}


def test_an_edited_sweep_json_is_rebuilt_and_a_cut_sweep_log_refused(tmp_path):
  workdir = tmp_path / "sweep"
  ok(genjax(*SWEEP, f"--workdir={workdir}"))
  original = read_json(workdir / "sweep.json")
  edited = json.loads(json.dumps(original))
  edited["rows"][0]["val_accuracy_mean"] = 0.99
  (workdir / "sweep.json").write_text(json.dumps(edited))
  os.remove(workdir / "sweep.md")
  out = ok(genjax(*SWEEP, f"--workdir={workdir}"))
  assert "sweep.json" in out.stdout and "rebuil" in out.stdout
  assert _without_run_facts(read_json(workdir / "sweep.json")) == _without_run_facts(original)
  assert (workdir / "sweep.md").exists()
  _cut(workdir / "metrics.jsonl", 1)
  before = tree(workdir)
  refused(genjax(*SWEEP, f"--workdir={workdir}"), "metrics.jsonl", "--overwrite")
  assert tree(workdir) == before


def test_a_reader_of_a_finished_run_gets_only_verified_records(train_run, tmp_path):
  from genjax.workdir import record
  from genjax.errors import ConfigError
  identity, results = record.load_verified(train_run, "results.json")
  assert identity["kind"] == "train" and "test" in results
  workdir = copy_run(train_run, tmp_path / "run")
  with open(os.path.join(workdir, "results.json"), "a") as f:
    f.write(" ")
  with pytest.raises(ConfigError, match="results.json.*rerun the same command"):
    record.load_verified(workdir, "results.json")
  with pytest.raises(ConfigError, match="no finished genjax run"):
    record.load_verified(str(tmp_path), "results.json")


def test_load_run_refuses_an_edited_results_json(train_run, tmp_path):
  # Before: load_run read results.json as found (an edited number was believed).
  workdir = copy_run(train_run, tmp_path / "run")
  results = read_json(os.path.join(workdir, "results.json"))
  results["test"]["accuracy"] = 0.99
  with open(os.path.join(workdir, "results.json"), "w") as f:
    json.dump(results, f)
  out = python("-c", "import sys, genjax\ngenjax.load_run(sys.argv[1])", workdir)
  assert out.returncode != 0
  last = out.stderr.strip().splitlines()[-1]
  assert "ConfigError" in last and "results.json" in last and "rerun" in last, out.stderr


@pytest.mark.parametrize("launcher", ["local", "submitit_local"])
def test_an_edited_group_sweep_json_is_rebuilt_not_believed(tmp_path, launcher):
  # A structural sweep's parent read each group's sweep.json as found: through submitit an
  # edited number went into the table (the group counted as finished since its sweep.json
  # existed). Now a group is finished only when its sealed record verifies: its job runs
  # again and rebuilds it from its checkpoints.
  args = ["sweep", EXP, *FAST, "--sweep=model.widths=(8,),(16,)", f"--workdir={tmp_path / 's'}",
          f"--launcher={launcher}"]
  ok(genjax(*args))
  original = read_json(tmp_path / "s" / "sweep.json")
  group = tmp_path / "s" / "group00" / "sweep.json"
  edited = read_json(group)
  edited["rows"][0]["val_accuracy_mean"] = 0.99
  group.write_text(json.dumps(edited))
  os.remove(tmp_path / "s" / "sweep.json")   # the parent collects its groups again
  ok(genjax(*args))
  rebuilt = read_json(group)["rows"][0]["val_accuracy_mean"]
  assert rebuilt == original_rows(original, 0)[0]["val_accuracy_mean"] != 0.99
  assert _without_run_facts(read_json(tmp_path / "s" / "sweep.json"))["rows"] == original["rows"]


def original_rows(sweep, group):
  """The rows of group `group` (model.widths its first value) as the parent stored them."""
  return [r for r in sweep["rows"] if r["point"]["model.widths"] == [[8], [16]][group]]
