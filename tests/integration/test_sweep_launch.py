"""Structural sweeps through launchers (genjax/sweeps/launch.py), with real subprocesses.

The reference is the same sweep through `--launcher=local` (today's Popen path); submitit's
local executor must give the same tables, resume a killed group and collect a detached
sweep; the SLURM path is checked up to sbatch (a stand-in sbatch records the script that
submitit wrote; nothing is submitted)."""

import fcntl
import json
import os
import signal
import stat
import subprocess
import sys
import time

import pytest
from submitit.core.utils import DelayedSubmission

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SWEEP = ["--config=experiments/mnist1d_mlp.py", "--config.num_epochs=2", "--progress=false",
         "--sweep=model.widths=(8,),(16,)", "--sweep=model.dropout=0,0.2"]
TABLES = ("sweep.csv", "sweep.md", "sweep.tex", "sweep_members.csv", "sweep_compare.md",
          "selected.json")


def _genjax(workdir, *flags, env=None, timeout=300):
  return subprocess.run([sys.executable, "-m", "genjax.main", "sweep", f"--workdir={workdir}",
                         *SWEEP, *flags], cwd=ROOT, capture_output=True, text=True,
                        timeout=timeout, env=env)


def _sweep_json(workdir):
  with open(os.path.join(workdir, "sweep.json")) as f:
    stored = json.load(f)
  return {k: stored[k] for k in ("rows", "member_results", "comparisons", "selected")}


def _assert_same_tables(workdir, reference):
  for name in TABLES:
    with open(os.path.join(workdir, name)) as f, open(os.path.join(reference, name)) as g:
      assert f.read() == g.read(), name
  assert _sweep_json(workdir) == _sweep_json(reference)


def _submissions(workdir):
  with open(os.path.join(workdir, "launch.json")) as f:
    return {int(i): len(records) for i, records in json.load(f)["groups"].items()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """The sweep through --launcher=local: the tables every launcher must reproduce (run once,
  shared by pytest-xdist's workers through a lock in their common temporary directory)."""
  shared = tmp_path_factory.getbasetemp()   # this session's: never another code version's
  if os.environ.get("PYTEST_XDIST_WORKER"):   # xdist: the workers' common session directory
    shared = shared.parent
  workdir = str(shared / "launch_reference")
  with open(shared / "launch_reference.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not os.path.exists(os.path.join(workdir, "sweep.json")):
      out = _genjax(workdir, "--launcher=local", "--parallel_jobs=2", "--overwrite")
      assert out.returncode == 0, out.stderr[-3000:]
  assert not os.path.exists(os.path.join(workdir, "launch.json"))   # no jobs: processes
  return workdir


def _wait_for(path, timeout=120):
  deadline = time.time() + timeout
  while time.time() < deadline:
    try:
      with open(path) as f:
        text = f.read()
      if text.startswith("PID "):
        return text
    except FileNotFoundError:
      pass
    time.sleep(0.02)
  raise AssertionError(f"{path} never appeared")


def test_a_killed_group_is_resubmitted_and_the_sweep_finishes_identical(tmp_path, reference):
  workdir = str(tmp_path / "sw")
  parent = subprocess.Popen(
      [sys.executable, "-m", "genjax.main", "sweep", f"--workdir={workdir}", *SWEEP,
       "--launcher=submitit_local"], cwd=ROOT, stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, text=True)
  holder = _wait_for(os.path.join(workdir, "group01", ".genjax.lock"))   # group 1 has begun
  os.kill(int(holder.split()[1]), signal.SIGKILL)
  stdout, stderr = parent.communicate(timeout=300)
  assert parent.returncode == 2, stderr[-3000:]
  assert not os.path.exists(os.path.join(workdir, "group01", "sweep.json"))   # it was killed
  line, = stderr.strip().splitlines()
  assert line.startswith("genjax: error: sweep group 1 (widths=(16,)) failed: its process "
                         "was killed (SIGKILL) (log: ")
  log = line.split("(log: ")[1].split(")")[0]
  with open(os.path.join(workdir, "launch.json")) as f:
    assert log == json.load(f)["groups"]["1"][0]["log"] and os.path.exists(log)
  assert "1 of 2 groups failed" in line and not os.path.exists(os.path.join(workdir, "sweep.md"))
  out = _genjax(workdir, "--launcher=submitit_local")
  assert out.returncode == 0, out.stderr[-3000:]
  assert "submitted group 1 " in out.stdout and "submitted group 0 " not in out.stdout
  assert ("sweep: sweep group 1 (widths=(16,)) failed: its process was killed (SIGKILL) (log: "
          f"{log}); resubmitting it") in out.stdout        # the earlier failure is said first
  assert _submissions(workdir) == {0: 1, 1: 2}    # the finished group never ran again
  _assert_same_tables(workdir, reference)


def test_a_killed_local_group_is_one_line_naming_the_signal(tmp_path):
  workdir = str(tmp_path / "sw")
  parent = subprocess.Popen(
      [sys.executable, "-m", "genjax.main", "sweep", f"--workdir={workdir}", *SWEEP,
       "--config.num_epochs=200", "--config.early_stopping.enabled=false",
       "--launcher=local", "--parallel_jobs=2"], cwd=ROOT, stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, text=True)
  holder = _wait_for(os.path.join(workdir, "group01", ".genjax.lock"))
  os.kill(int(holder.split()[1]), signal.SIGKILL)
  _, stderr = parent.communicate(timeout=300)
  assert parent.returncode == 2
  line, = stderr.strip().splitlines()   # no fork warning, no progress line as the reason
  log = os.path.join(workdir, "group01.log")
  assert line == (f"genjax: error: sweep group 1 (widths=(16,)) failed: its process was killed "
                  f"(SIGKILL) (log: {log})")


def test_collecting_refuses_a_group_holding_other_points(reference):
  from genjax.sweeps import launch as sweep_launch
  from genjax.errors import ConfigError
  groups = [({"model.widths": (8,)}, [{"model.dropout": 0.0}, {"model.dropout": 0.2}]),
            ({"model.widths": (16,)}, [{"model.dropout": 0.0}, {"model.dropout": 0.3}])]
  with pytest.raises(ConfigError, match=r"sweep group 1 \(widths=\(16,\)\) holds results of "
                     "other points"):
    sweep_launch.collect(reference, groups)
  groups[1][1][1]["model.dropout"] = 0.2
  rows, _ = sweep_launch.collect(reference, groups)
  assert [r["point"]["model.dropout"] for r in rows] == [0.0, 0.2, 0.0, 0.2]


def test_overwrite_removes_nothing_while_a_group_still_runs(tmp_path, reference):
  import shutil
  from genjax.workdir import claims as wd
  from genjax.errors import ConfigError
  copy = str(tmp_path / "copy")
  shutil.copytree(reference, copy)

  def listing():
    return sorted(os.path.relpath(os.path.join(d, f), copy)
                  for d, _, files in os.walk(copy) for f in files)

  before = listing()
  held = wd.WorkdirLock(os.path.join(copy, "group01"))   # group 1 sorts after group 0
  held.acquire()
  try:
    with pytest.raises(ConfigError, match="nothing was removed"):
      wd.remove_outputs(copy)
    assert listing() == sorted(before + [os.path.join("group01", ".genjax.lock")])
  finally:
    held.release()
  wd.remove_outputs(copy)
  assert not os.path.exists(os.path.join(copy, "group00"))
  assert not os.path.exists(os.path.join(copy, "group01"))


def test_a_finished_cluster_sweep_reruns_anywhere(tmp_path, reference):
  # Its groups finished, so their recorded SLURM jobs are over: no sacct is needed to know it
  # (e.g. the workdir copied from the cluster to a laptop).
  import shutil
  copy = str(tmp_path / "copy")
  shutil.copytree(reference, copy)
  record = {"launcher": "slurm", "job_id": "1000_0", "tasks": 1, "log": "x.out",
            "folder": os.path.join(copy, "submitit"), "host": "login1", "submitted": ""}
  with open(os.path.join(copy, "launch.json"), "w") as f:
    json.dump({"groups": {"0": [record], "1": [{**record, "job_id": "1000_1"}]}}, f)
  env = {**os.environ, "PATH": os.path.dirname(sys.executable)}   # no sacct, no srun
  out = _genjax(copy, "--launcher=local", env=env)
  assert out.returncode == 0, out.stderr[-3000:]
  _assert_same_tables(copy, reference)


def test_detach_returns_at_once_and_a_rerun_collects_the_local_tables(tmp_path, reference):
  workdir = str(tmp_path / "sw")
  out = _genjax(workdir, "--launcher=submitit_local", "--detach")
  assert out.returncode == 0, out.stderr[-3000:]
  groups = [os.path.join(workdir, f"group{i:02d}", "sweep.json") for i in (0, 1)]
  assert not all(os.path.exists(p) for p in groups)       # returned before the jobs ended
  assert not os.path.exists(os.path.join(workdir, "sweep.md"))
  lines = out.stdout.strip().splitlines()
  assert [x.split(" as job ")[0] for x in lines[:2]] == [
      "sweep: submitted group 0 (widths=(8,))", "sweep: submitted group 1 (widths=(16,))"]
  assert "(log: " in lines[0] and "rerun the same command to collect" in lines[-1]
  out = _genjax(workdir, "--launcher=submitit_local")     # waits for the running jobs
  assert out.returncode == 0, out.stderr[-3000:]
  assert _submissions(workdir) == {0: 1, 1: 1}            # none started twice
  _assert_same_tables(workdir, reference)
  with open(os.path.join(workdir, "manifest.json")) as f:
    assert {"launch.json", "submitit"} <= set(json.load(f)["outputs"])   # --overwrite's


def _fake_slurm(bin_dir, states):
  """srun, sbatch (prints 'Submitted batch job N', N = 1000, 1001, ...) and sacct (prints
  `states`' file) stand-ins: submitit writes its sbatch script, nothing is submitted."""
  os.makedirs(bin_dir)
  scripts = {
      "srun": "exit 0\n",
      "sbatch": (f"n=$(cat {bin_dir}/count 2>/dev/null || echo 1000)\n"
                 f"echo $((n + 1)) > {bin_dir}/count\n"
                 "echo \"Submitted batch job $n\"\n"),
      "sacct": f"echo 'JobID|State|NodeList'\ncat {states} 2>/dev/null\n"}
  for name, body in scripts.items():
    path = os.path.join(bin_dir, name)
    with open(path, "w") as f:
      f.write("#!/bin/sh\n" + body)
    os.chmod(path, os.stat(path).st_mode | stat.S_IEXEC)
  return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"]}


SLURM = ["--launcher=slurm", "--slurm_partition=gpu", "--slurm_account=lab",
         "--slurm_nodes=2", "--slurm_tasks_per_node=2", "--slurm_gpus_per_task=2",
         "--slurm_gpus_per_node=4", "--slurm_cpus_per_task=8", "--slurm_mem_gb=64",
         "--slurm_timeout_min=90", "--distributed_timeout=900", "--detach"]


def test_slurm_sbatch_script_resources_and_resubmission(tmp_path):
  workdir, states = str(tmp_path / "sw"), str(tmp_path / "states")
  env = _fake_slurm(str(tmp_path / "bin"), states)
  out = _genjax(workdir, *SLURM, env=env)
  assert out.returncode == 0, out.stderr[-3000:]
  with open(os.path.join(workdir, "submitit", "1000_submission.sh")) as f:
    script = f.read().splitlines()
  for line in ("#SBATCH --partition=gpu", "#SBATCH --account=lab", "#SBATCH --nodes=2",
               "#SBATCH --ntasks-per-node=2", "#SBATCH --gpus-per-task=2",
               "#SBATCH --cpus-per-task=8", "#SBATCH --mem=64GB", "#SBATCH --time=90",
               "#SBATCH --array=0-1%2", "#SBATCH --job-name=genjax-sweep"):
    assert line in script, line
  assert not any("--gpus-per-node" in x for x in script)     # only checked, never requested
  srun, = [x for x in script if x.startswith("srun ")]
  assert "-m submitit.core._submit" in srun                  # every task runs the group
  for i in (0, 1):
    delayed = DelayedSubmission.load(os.path.join(workdir, "submitit",
                                                  f"1000_{i}_submitted.pkl"))
    args = delayed.function.command
    resolved = os.path.join(workdir, f"group{i:02d}.config")
    assert args[1:5] == ["-m", "genjax.main", "group", resolved] and args[-1] == "--distributed"
    assert "--distributed_timeout=900.0" in args               # the parent's, passed on
    assert os.path.exists(resolved)
    assert f"--workdir={os.path.join(workdir, f'group{i:02d}')}" in args
  assert "as job 1000_0 " in out.stdout and "as job 1000_1 " in out.stdout
  with open(states, "w") as f:     # sacct: both jobs pending or running
    f.write("1000_0|RUNNING|n1\n1000_1|PENDING|\n")
  files = sorted(os.listdir(workdir))
  for flags, refused in ((["--overwrite"], "--overwrite is refused"),
                         (["--launcher=local"], "--launcher=local is refused")):
    args = SLURM + flags if flags == ["--overwrite"] else [
        f for f in SLURM if not f.startswith(("--slurm", "--launcher", "--detach"))] + flags
    out = _genjax(workdir, *args, env=env)
    assert out.returncode == 2, out.stdout[-2000:]
    line, = out.stderr.strip().splitlines()
    assert line.startswith(f"genjax: error: {refused} while sweep group 0's slurm job 1000_0 "
                           "is still pending or running (log: "), line
    assert sorted(os.listdir(workdir)) == files                 # nothing removed or added
  with open(states, "w") as f:     # sacct: group 0 still runs, group 1's job failed
    f.write("1000_0|RUNNING|n1\n1000_1|FAILED|n2\n")
  out = _genjax(workdir, *SLURM, env=env)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "group 0 (widths=(8,)) is still running as job 1000_0" in out.stdout
  assert "submitted group 1 (widths=(16,)) as job 1001 " in out.stdout
  assert _submissions(workdir) == {0: 1, 1: 2}
  with open(os.path.join(workdir, "submitit", "1001_submission.sh")) as f:
    assert "#SBATCH --array" not in f.read()                  # one group: one job


def test_one_structural_group_through_slurm_is_one_job(tmp_path):
  workdir = str(tmp_path / "sw")
  env = _fake_slurm(str(tmp_path / "bin"), str(tmp_path / "states"))
  out = subprocess.run(
      [sys.executable, "-m", "genjax.main", "sweep", f"--workdir={workdir}",
       "--config=experiments/mnist1d_mlp.py", "--sweep=model.dropout=0,0.2", "--launcher=slurm",
       "--slurm_timeout_min=5", "--detach"], cwd=ROOT, capture_output=True, text=True,
      timeout=300, env=env)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "submitted group 0 (base) as job 1000 " in out.stdout   # no structural key: 'base'
  with open(os.path.join(workdir, "submitit", "1000_submission.sh")) as f:
    script = f.read()
  assert "#SBATCH --time=5" in script and "--array" not in script and "--nodes=1" in script
  delayed = DelayedSubmission.load(os.path.join(workdir, "submitit", "1000_submitted.pkl"))
  args = delayed.function.command
  from genjax.sweeps import launch as sweep_launch
  _, points = sweep_launch.read_group(args[4])
  assert points == [{"model.dropout": 0.0}, {"model.dropout": 0.2}]
  assert "--distributed" not in args                     # one task: a single-process group
  assert not os.path.exists(os.path.join(workdir, "metrics.jsonl"))   # nothing ran here


def test_slurm_leaves_the_compute_nodes_device_checks_to_the_jobs(tmp_path):
  # 4 devices and bfloat16 are what GPU nodes have, not this CPU (--cpu_devices=1: 1 device;
  # no native bf16):
  # checked here by the machine-local launchers, left by --launcher=slurm to each job.
  node_only = ["--config.parallel.devices=4", "--config.precision=bfloat16"]
  env = _fake_slurm(str(tmp_path / "bin"), str(tmp_path / "states"))
  out = _genjax(str(tmp_path / "sw"), *SLURM, *node_only, env=env)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "as job 1000_0 " in out.stdout and "as job 1000_1 " in out.stdout
  for launcher in ("submitit_local", "local"):
    workdir = tmp_path / launcher
    out = _genjax(str(workdir), f"--launcher={launcher}", node_only[0], "--cpu_devices=1")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "parallel.devices=4 but only 1 local devices" in lines[0], lines
    assert not workdir.exists()


@pytest.mark.parametrize("flags,needle", [
    (["--slurm_partition=gpu"], "--slurm_partition applies to --launcher=slurm only"),
    (["--launcher=submitit_local", "--slurm_timeout_min=5"], "applies to --launcher=slurm only"),
    (["--launcher=cloud"], "--launcher"),
    (["--launcher=slurm"], "needs --slurm_timeout_min"),
    (["--launcher=slurm", "--slurm_timeout_min=10", "--slurm_nodes=0"],
     "--slurm_nodes=0 must be an integer >= 1"),
    (["--launcher=slurm", "--slurm_timeout_min=10", "--slurm_tasks_per_node=2",
      "--slurm_gpus_per_task=4", "--slurm_gpus_per_node=4"], "8 GPUs per node, more than"),
    (["--launcher=slurm", "--slurm_timeout_min=10", "--slurm_gpus_per_node=4"],
     "request GPUs with --slurm_gpus_per_task"),
    (["--detach"], "--detach needs a job launcher"),
    (["--launcher=submitit_local", "--detach", "--parallel_jobs=1"], "cannot be kept"),
    (["--launcher=slurm", "--slurm_timeout_min=10", "--distributed"], "drop --distributed"),
    (["--launcher=slurm", "--slurm_timeout_min=10", "--slurm_nodes=2",
      "--config.parallel.backend=pmap"], "parallel.backend=pmap runs within one process"),
    (["--launcher=submitit_local", "--config.cv.method=kfold", "--config.cv.folds=2",
      "--config.cv.outer_folds=2"], "nested CV (cv.outer_folds) runs in the sweep's own"),
])
def test_bad_launch_input_exits_2_in_one_line_and_writes_nothing(tmp_path, flags, needle):
  env = _fake_slurm(str(tmp_path / "bin"), str(tmp_path / "states"))   # srun "exists"
  workdir = tmp_path / "sw"
  out = _genjax(workdir, *flags, env=env, timeout=120)
  assert out.returncode == 2, out.stderr[-2000:]
  line, = out.stderr.strip().splitlines()
  assert line.startswith("genjax: error:") and needle in line, line
  assert not workdir.exists()
  assert not os.path.exists(tmp_path / "bin" / "count")      # sbatch never ran


def test_slurm_without_srun_is_refused_before_anything_is_written(tmp_path):
  path = os.pathsep.join([os.path.dirname(sys.executable), "/usr/bin", "/bin"])
  import shutil
  if shutil.which("srun", path=path):
    pytest.skip("srun is installed here")
  out = _genjax(tmp_path / "sw", "--launcher=slurm", "--slurm_timeout_min=10",
                env={**os.environ, "PATH": path}, timeout=120)
  assert out.returncode == 2
  line, = out.stderr.strip().splitlines()
  assert "srun is not on PATH" in line and not (tmp_path / "sw").exists()


def test_launch_flags_are_refused_by_genjax_train(tmp_path):
  out = subprocess.run([sys.executable, "-m", "genjax.main", "train",
                        "--config=experiments/mnist1d_mlp.py", f"--workdir={tmp_path / 'w'}",
                        "--launcher=slurm"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
  assert out.returncode == 2 and "--launcher given to genjax train" in out.stderr
  assert not (tmp_path / "w").exists()


def test_check_refuses_options_of_the_python_api():
  from genjax.sweeps import launch as sweep_launch
  from genjax.errors import ConfigError
  with pytest.raises(ConfigError, match="unknown SLURM option"):
    sweep_launch.check("slurm", {"timeout_min": 5, "gpus": 2})
  with pytest.raises(ConfigError, match="unknown --launcher='cloud'"):
    sweep_launch.check("cloud")
  launch = sweep_launch.check("slurm", {"timeout_min": 5, "nodes": 3, "tasks_per_node": 2})
  assert launch.tasks == 6 and launch.slurm["partition"] is None
