"""Launchers: where a structural sweep's groups run — processes here, or jobs through submitit.

Every structural group (`genjax.sweeps.driver`) is one file, WORKDIR/groupNN.config — its
config resolved by the sweep and exactly its points (`write_group`, read back by `read_group`)
— and one command line,

    python -m genjax.main group WORKDIR/groupNN.config [--config=FILE] \\
        --workdir=WORKDIR/groupNN --progress=false [--distributed]

which enters the group runner directly (`genjax.sweeps.driver.run_one_group`): a group never
reads the config file's values again (the file is only imported, for the code it registers)
and never expands a sweep again.

LAUNCHERS:

* `local`: `subprocess.Popen` on this machine (`run_processes`), `parallel_jobs` at a time
  (default 1), logs in groupNN.log; the groups die with the sweep process, and a failed group
  stops the others.
* `submitit_local`: submitit's local executor — the cluster path on this machine (jobs,
  launch.json, resubmission, `detach`: `genjax.sweeps.cluster`), to check a cluster sweep before
  submitting it.
* `slurm`: submitit's SLURM executor — one job per group, as one job array (`parallel_jobs`
  is the array's limit, default all), resources from `slurm` (`--slurm_*`). A group of
  nodes × tasks_per_node > 1 tasks runs the command on every task with `--distributed`.

`check` (the options alone) and `check_sweep` (what they need of the sweep) refuse bad input
in one line before anything is written or submitted.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import warnings

from genjax.errors import ConfigError
from genjax.report import files as report_files
from genjax.workdir import record
from genjax.sweeps.points import apply_point, point_name


GROUP_COMMAND = "group"   # `python -m genjax.main group FILE`: a group process (not for users)


@dataclasses.dataclass(frozen=True)
class Launcher:
  name: str
  cluster: str | None   # submitit's AutoExecutor cluster; None: processes started here
  doc: str


LAUNCHERS = {x.name: x for x in (
    Launcher("local", None, "processes on this machine, --parallel_jobs at a time"),
    Launcher("submitit_local", "local", "submitit jobs on this machine: the cluster path, to "
             "check a cluster sweep before submitting it"),
    Launcher("slurm", "slurm", "one SLURM job per structural group (a job array), via submitit"),
)}
# --slurm_NAME options and their defaults (None: not passed to sbatch).
SLURM = {"partition": None, "account": None, "timeout_min": None, "nodes": 1,
         "tasks_per_node": 1, "gpus_per_task": None, "gpus_per_node": None,
         "cpus_per_task": None, "mem_gb": None}


@dataclasses.dataclass(frozen=True)
class Launch:
  """A checked launch: the launcher, SLURM resources (defaults filled), detach, parallel_jobs."""
  launcher: Launcher
  slurm: dict
  detach: bool = False
  parallel_jobs: int | None = None

  @property
  def tasks(self) -> int:
    """Processes per group job: nodes × tasks_per_node (> 1: a multi-host group)."""
    return self.slurm["nodes"] * self.slurm["tasks_per_node"]


def _flags(names) -> str:
  return ", ".join(f"--slurm_{n}" for n in names)


def _check_values(slurm: dict) -> None:
  """Each --slurm_* value's type and range, and that the GPUs asked per node exist."""
  for name in ("timeout_min", "nodes", "tasks_per_node", "gpus_per_task", "gpus_per_node",
               "cpus_per_task"):
    v = slurm[name]
    if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
      raise ConfigError(f"--slurm_{name}={v!r} must be an integer >= 1")
  mem = slurm["mem_gb"]
  if mem is not None and (isinstance(mem, bool) or not isinstance(mem, (int, float)) or mem <= 0):
    raise ConfigError(f"--slurm_mem_gb={mem!r} must be a number of GB > 0")
  for name in ("partition", "account"):
    v = slurm[name]
    if v is not None and (not isinstance(v, str) or not v or v.split() != [v]):
      raise ConfigError(f"--slurm_{name}={v!r} must be a SLURM name (no spaces)")
  per_task, per_node = slurm["gpus_per_task"], slurm["gpus_per_node"]
  if per_node is not None and per_task is None:
    raise ConfigError("--slurm_gpus_per_node is the nodes' GPU count, only checked against "
                      "--slurm_tasks_per_node × --slurm_gpus_per_task; request GPUs with "
                      "--slurm_gpus_per_task")
  if per_node is not None and slurm["tasks_per_node"] * per_task > per_node:
    raise ConfigError(f"--slurm_tasks_per_node={slurm['tasks_per_node']} × "
                      f"--slurm_gpus_per_task={per_task} = {slurm['tasks_per_node'] * per_task} "
                      f"GPUs per node, more than --slurm_gpus_per_node={per_node}; lower one, or "
                      "spread the tasks with --slurm_nodes")


def check(launcher: str = "local", slurm: dict | None = None, *, detach: bool = False,
          parallel_jobs: int | None = None, multihost: bool = False) -> Launch:
  """Checks the launch options alone (no config, nothing touched); ConfigError in one line.

  `slurm` holds only the options given (`{"partition": "gpu", "nodes": 2, ...}`); they apply
  to `launcher="slurm"` alone, which needs `timeout_min`. `multihost`: the sweep process
  itself was started with --distributed or --coordinator_address (refused with a job launcher,
  which starts multi-host groups itself)."""
  slurm = dict(slurm or {})
  if launcher not in LAUNCHERS:
    raise ConfigError(f"unknown --launcher={launcher!r}; choose one of {', '.join(LAUNCHERS)}")
  if parallel_jobs is not None and (isinstance(parallel_jobs, bool)
                                    or not isinstance(parallel_jobs, int) or parallel_jobs < 1):
    raise ConfigError(f"--parallel_jobs={parallel_jobs!r} must be an integer >= 1 (structural "
                      "groups run at once), e.g. --parallel_jobs=2")
  unknown = sorted(set(slurm) - set(SLURM))
  if unknown:
    raise ConfigError(f"unknown SLURM option(s) {', '.join(unknown)}; known: "
                      f"{', '.join(SLURM)}")
  if slurm and launcher != "slurm":
    raise ConfigError(f"{_flags(slurm)} {'applies' if len(slurm) == 1 else 'apply'} to "
                      f"--launcher=slurm only (--launcher={launcher} "
                      "runs on this machine); drop them or pass --launcher=slurm")
  if detach and launcher == "local":
    raise ConfigError("--detach needs a job launcher: --launcher=local's processes die with "
                      "the sweep; pass --launcher=submitit_local or --launcher=slurm")
  if multihost and launcher != "local":
    raise ConfigError(f"--launcher={launcher} starts each group's processes itself (a "
                      "multi-host group: --slurm_nodes=N); drop --distributed / "
                      "--coordinator_address from the sweep command")
  slurm = {**SLURM, **slurm}
  _check_values(slurm)
  if launcher == "slurm" and slurm["timeout_min"] is None:
    raise ConfigError("--launcher=slurm needs --slurm_timeout_min=MINUTES, each group job's "
                      "time limit (submitit's default would be 5 minutes)")
  return Launch(LAUNCHERS[launcher], slurm, bool(detach), parallel_jobs)


def check_sweep(launch: Launch, config, groups: list) -> None:
  """What a launch needs of the sweep itself: no nested CV through a job launcher, multi-host
  groups that can be multi-host, srun on this machine for slurm, a kept --parallel_jobs."""
  name = launch.launcher.name
  if name != "local" and config.cv.get("outer_folds"):
    raise ConfigError(f"nested CV (cv.outer_folds) runs in the sweep's own process; drop "
                      f"--launcher={name} (or submit `genjax sweep` itself as a job)")
  if launch.tasks > 1:
    for structural, _ in groups:
      _check_multihost(apply_point(config, structural).parallel, launch.tasks)
  if name == "slurm":
    import submitit
    if submitit.SlurmExecutor.affinity() <= 0:
      raise ConfigError("--launcher=slurm submits with sbatch, but srun is not on PATH here; "
                        "run genjax sweep on the cluster's login node (or check the sweep "
                        "with --launcher=submitit_local)")
  if (launch.detach and name == "submitit_local" and launch.parallel_jobs is not None
      and launch.parallel_jobs < len(groups)):
    raise ConfigError(f"--detach with --launcher=submitit_local starts all {len(groups)} "
                      f"groups at once, so --parallel_jobs={launch.parallel_jobs} cannot be "
                      "kept once this process returns; drop --parallel_jobs or --detach")


def _check_multihost(parallel, tasks: int) -> None:
  if parallel.backend == "pmap":
    raise ConfigError(f"a group of {tasks} tasks (--slurm_nodes × --slurm_tasks_per_node) is "
                      "a multi-host run, and parallel.backend=pmap runs within one process; "
                      "pass --config.parallel.backend=shard_map (the default)")
  if parallel.devices and parallel.devices % tasks:
    raise ConfigError(f"parallel.devices={parallel.devices} must be a multiple of the {tasks} "
                      "tasks of each group job; set --config.parallel.devices=0 (all)")


# --- a group's command line ---------------------------------------------------------------

def group_dir(workdir: str, i: int) -> str:
  return os.path.join(workdir, f"group{i:02d}")


def write_group(path: str, config, numeric: list[dict], names: list[str] | None = None) -> None:
  """Writes a structural group's file: its config, resolved by the sweep (never the config
  file's values again), and exactly its points, as one Python literal {"config": ...,
  "points": [...]} (`read_group` reads it). Read back here first: a group trains exactly the
  points it is given, or the sweep is refused in one line before the group starts."""
  body = {"config": ast.literal_eval(resolved_text(config)), "points": numeric,
          **({"names": list(names)} if names else {})}
  text = repr(body)
  try:
    back = ast.literal_eval(text)["points"]
  except (ValueError, SyntaxError):
    back = None
  if back is None or _typed(back) != _typed(numeric):
    raise ConfigError(f"the sweep's points {numeric!r:.200} cannot be passed to a group process "
                      "as text that reads back the same; give plain numbers (floats or ints)")
  report_files.write_bytes(path, (text + "\n").encode())


def read_group(path: str):
  """(config, points) of a group file `write_group` wrote; ConfigError (one line) when it
  cannot be read."""
  import ml_collections
  try:
    with open(path) as f:
      body = ast.literal_eval(f.read())
    config, points = ml_collections.ConfigDict(body["config"]), body["points"]
  except (OSError, ValueError, SyntaxError, KeyError, TypeError) as e:
    raise ConfigError(f"the sweep group file {path} cannot be read ({' '.join(str(e).split())});"
                      " genjax sweep writes it for its group processes: rerun the sweep") from None
  if not isinstance(points, list) or not all(isinstance(p, dict) for p in points):
    raise ConfigError(f"the sweep group file {path} holds no list of points; rerun the sweep")
  return config, points


def group_names(path: str) -> list[str] | None:
  """The display names of a group file's points (the sweep's, structural values and given
  names included: TensorBoard's run folders), or None when it holds none."""
  try:
    with open(path) as f:
      names = ast.literal_eval(f.read()).get("names")
  except (OSError, ValueError, SyntaxError, AttributeError):
    return None
  return [str(n) for n in names] if isinstance(names, list) else None


def _typed(points: list[dict]) -> list:
  return [sorted((k, type(v).__name__, repr(v)) for k, v in p.items()) for p in points]


def resolved_text(config) -> str:
  """The config as a Python literal a group process reads back (`ast.literal_eval`)."""
  text = repr(config.to_dict())
  try:
    ast.literal_eval(text)
  except (ValueError, SyntaxError):
    raise ConfigError("the config holds a value that is not a plain number, string, boolean "
                      "or tuple (e.g. a numpy scalar), which a structural sweep cannot pass to "
                      "its group processes; use Python values in get_config()") from None
  return text


def _inherited_flags(distributed: bool = False) -> list[str]:
  """The parent's --compilation_cache_dir, --distributed_timeout, -v and (for one-process
  groups) --cpu_devices, for its groups."""
  from absl import flags
  out = []
  for name in ("compilation_cache_dir", "distributed_timeout", "verbosity",
               *(() if distributed else ("cpu_devices",))):
    if name in flags.FLAGS and flags.FLAGS[name].present:
      out.append(flags.FLAGS[name].serialize())
  return out


def command(config, group, workdir: str, i: int, config_file: str | None, *,
            distributed: bool = False, names: list[str] | None = None) -> list[str]:
  """Writes groupNN.config (`write_group`) and returns the group's command line: the group
  runner (`genjax.sweeps.driver.run_one_group`), entered through `python -m genjax.main group
  FILE`, not through `genjax sweep`'s flags."""
  structural, numeric = group
  path = os.path.join(workdir, f"group{i:02d}.config")
  write_group(path, apply_point(config, structural), numeric, names)
  return [sys.executable, "-m", "genjax.main", GROUP_COMMAND, path,
          *([f"--config={config_file}"] if config_file else []),
          f"--workdir={group_dir(workdir, i)}", "--progress=false",
          *_inherited_flags(distributed),
          *(["--distributed"] if distributed else [])]


def last_error(log_path: str) -> str:
  """A log's last `genjax: error:` line (its text), else its last line ('' if unreadable)."""
  try:
    with open(log_path, errors="replace") as f:
      lines = [line.strip() for line in f if line.strip()]
  except OSError:
    return ""
  errors = [line for line in lines if line.startswith("genjax: error:")]
  return (errors or lines or [""])[-1].removeprefix("genjax: error: ")


def collect(workdir: str, groups: list, config=None) -> tuple[list[dict], list[dict]]:
  """(rows, members) of every finished group, structural values restored, in group order.

  Each group's sweep.json must hold this group's points and, given `config` (the sweep's),
  have been written for this group's config (`sweep_run.config_fingerprint`): a sweep.json
  of an earlier run or of another group (copied over it) is refused in one line."""
  from genjax.sweeps import group as sweep_run
  rows, members = [], []
  for i, (structural, numeric) in enumerate(groups):
    path = os.path.join(group_dir(workdir, i), "sweep.json")
    fix = (f"remove {group_dir(workdir, i)} to train that group again, or rerun with "
           "--overwrite to train every group again")
    try:   # sealed, finished, unedited
      record.load_verified(group_dir(workdir, i), "sweep.json")
    except ConfigError as e:
      raise ConfigError(f"sweep group {i} ({point_name(structural)}): {e}") from None
    stored = sweep_run.read_rows(group_dir(workdir, i))
    if [r["point"] for r in stored] != json.loads(json.dumps(numeric)):   # never stale
      raise ConfigError(f"sweep group {i} ({point_name(structural)}) holds results of other "
                        f"points than this group's ({path}), e.g. from a job of an earlier run "
                        f"or copied from another group; {fix}")
    if config is not None:
      with open(path) as f:
        written_for = json.load(f).get("group_config")
      if written_for != sweep_run.config_fingerprint(apply_point(config, structural)):
        raise ConfigError(f"sweep group {i} ({point_name(structural)}) holds results written "
                          f"for another config than this group's ({path}), e.g. copied from "
                          f"another group or from an earlier run; {fix}")
    for row in stored:
      row["point"] = {**structural, **row["point"]}
      row["name"] = point_name(row["point"])
      rows.append(row)
    for member in sweep_run.read_members(group_dir(workdir, i)):
      member["values"] = {**structural, **member["values"]}
      member["point"] = point_name(member["values"])
      members.append(member)
  return rows, members


# --- local: processes started here ----------------------------------------------------------

def _die_with_parent() -> None:
  """Group processes get SIGTERM when the sweep process dies (Linux), leaving no orphan."""
  try:
    import ctypes
    import signal
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
  except (OSError, AttributeError):
    pass


def run_processes(config, groups, workdir, config_file, parallel_jobs,
                  names: list | None = None) -> None:
  """One `genjax sweep` process per structural group, `parallel_jobs` at a time; the first
  that fails stops the others (ConfigError naming its log)."""
  pending, running = list(enumerate(groups)), []
  try:
    while pending or running:
      while pending and len(running) < parallel_jobs:
        i, group = pending.pop(0)
        args = command(config, group, workdir, i, config_file,
                       names=names[i] if names else None)
        log = open(os.path.join(workdir, f"group{i:02d}.log"), "a")   # a resume appends
        with warnings.catch_warnings():   # os.fork's multithreading warning: the child
          warnings.simplefilter("ignore", RuntimeWarning)   # execs at once, nothing is shared
          proc = subprocess.Popen(args, stdout=log, stderr=log, preexec_fn=_die_with_parent)
        running.append((i, group[0], proc, log))
        print(f"sweep: started group {i} ({point_name(group[0])}) in "
              f"{group_dir(workdir, i)}", flush=True)
      time.sleep(0.2)
      for item in list(running):
        i, structural, proc, log = item
        if proc.poll() is None:
          continue
        running.remove(item)
        log.close()
        if proc.returncode != 0:
          path = os.path.join(workdir, f"group{i:02d}.log")
          reason = (f"its process was killed ({signal.Signals(-proc.returncode).name})"
                    if proc.returncode < 0 else
                    f"status {proc.returncode}: {last_error(path)}")
          raise ConfigError(f"sweep group {i} ({point_name(structural)}) failed: {reason} "
                            f"(log: {path})")
  finally:
    for _, _, other, other_log in running:   # stop the rest: nothing left orphaned
      other.terminate()
      other.wait()
      other_log.close()
