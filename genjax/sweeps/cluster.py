"""Group jobs through submitit: submit, record, attach, wait, resubmit (`sweep_launch`'s
`submitit_local` and `slurm` launchers).

Each submission is recorded in WORKDIR/launch.json (group -> [job id, log, host, ...], oldest
first); submitit's folder WORKDIR/submitit holds its pickles, sbatch scripts and logs
(`JOB_TASK_log.out`, stdout and stderr together). `run` never resubmits a finished group (its
groupNN/sweep.json exists) nor one whose recorded job still runs — asked through submitit (sacct)
for SLURM, the job's controller PID for a local job (submitit cannot tell once its submitting
process is gone) — and refuses one whose workdir lock another process holds; it submits the
rest, waits for all, then reports the first failed group in one line with its log. `detach`:
submit and return None; a later identical sweep collects. Each job runs its group process as a
`genjax.sweeps.group_job.GroupCommand`: checkpointable, so a preempted or timed-out job saves
(SIGTERM to the group process) and is requeued, a bounded number of times, and resumes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sys
import time

from genjax.workdir import record
from genjax.sweeps import launch as sweep_launch
from genjax.workdir import claims as wd
from genjax.errors import ConfigError
from genjax.report.files import atomic
from genjax.sweeps.points import point_name
from genjax.sweeps.launch import Launch, collect, group_dir, last_error

LAUNCH, FOLDER = "launch.json", "submitit"
OUTPUTS = (LAUNCH, FOLDER)
LOCAL_TIMEOUT_MIN = 60 * 24 * 365   # submitit's local executor kills a job after 2 min unless told
POLL_S = 0.5
SHARED_FS_WAIT_S = 15.0   # as submitit waits for a job's result file


def _load(workdir: str) -> dict:
  """launch.json: {group index (str): [one record per submission, oldest first]}."""
  try:
    with open(os.path.join(workdir, LAUNCH)) as f:
      return json.load(f)["groups"]
  except FileNotFoundError:
    return {}
  except (OSError, ValueError, KeyError, TypeError):
    raise ConfigError(f"'{os.path.join(workdir, LAUNCH)}' is unreadable, so which group jobs "
                      "run is unknown; wait for them to end, then rerun with --overwrite") from None


def _save(workdir: str, records: dict) -> None:
  with atomic(os.path.join(workdir, LAUNCH)) as f:
    json.dump({"groups": records}, f, indent=2, sort_keys=True)
    f.write("\n")


def _verified(directory: str) -> bool:
  """Whether the group run in `directory` finished and its sealed record verifies (a group
  whose sweep.json was edited or lost is not finished: its job runs again and rebuilds it)."""
  try:
    record.load_verified(directory, "sweep.json")
  except ConfigError:
    return False
  return True


def _finished(workdir: str, i: int, wait_s: float = 0.0) -> bool:
  """Whether group `i` finished (`_verified`); `wait_s`: give a shared filesystem that long to
  show a file another node wrote (listing the directory refreshes NFS's cache)."""
  directory, deadline = group_dir(workdir, i), time.time() + wait_s
  while True:
    with contextlib.suppress(OSError):
      os.listdir(directory)
    if _verified(directory) or time.time() >= deadline:
      return _verified(directory)
    time.sleep(1.0)


def _executor(launch: Launch, workdir: str, count: int):
  """submitit's executor for `count` group jobs, with the launch's resources."""
  import submitit
  s = launch.slurm
  ex = submitit.AutoExecutor(folder=os.path.join(workdir, FOLDER), cluster=launch.launcher.cluster)
  params = {"name": "genjax-sweep", "stderr_to_stdout": True,
            "timeout_min": s["timeout_min"] or LOCAL_TIMEOUT_MIN}
  if launch.launcher.name == "slurm":
    params.update(nodes=s["nodes"], tasks_per_node=s["tasks_per_node"],
                  slurm_array_parallelism=launch.parallel_jobs or count)
    for key, name in (("cpus_per_task", "cpus_per_task"), ("mem_gb", "mem_gb"),
                      ("partition", "slurm_partition"), ("account", "slurm_account"),
                      ("gpus_per_task", "slurm_gpus_per_task")):
      if s[key] is not None:
        params[name] = s[key]
  ex.update_parameters(**params)
  return ex


@contextlib.contextmanager
def _controller_output(launch: Launch, workdir: str):
  """submitit's local job controllers inherit this process's stdout/stderr and outlive it
  (--detach): give them a file, so that a pipe reading the sweep's output ends with it."""
  if launch.launcher.name != "submitit_local":
    yield
    return
  sys.stdout.flush()
  sys.stderr.flush()
  saved = [os.dup(1), os.dup(2)]
  log = os.open(os.path.join(workdir, FOLDER, "controllers.log"),
                os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
  try:
    os.dup2(log, 1)
    os.dup2(log, 2)
    yield
  finally:
    os.dup2(saved[0], 1)
    os.dup2(saved[1], 2)
    for fd in (*saved, log):
      os.close(fd)


def _submit(launch: Launch, config, groups, workdir, config_file, indices, records,
            names: list | None = None) -> dict:
  """Submits groups `indices` (one batch: a job array on SLURM); records them in launch.json;
  returns {group: (record, job)}."""
  from submitit.core import utils
  os.makedirs(os.path.join(workdir, FOLDER), exist_ok=True)
  ex = _executor(launch, workdir, len(indices))
  from genjax.sweeps.group_job import GroupCommand   # checkpointable: requeued on preemption
  functions = [GroupCommand(
      sweep_launch.command(config, groups[i], workdir, i, config_file,
                           distributed=launch.tasks > 1, names=names[i] if names else None),
      cwd=os.getcwd()) for i in indices]
  try:
    with _controller_output(launch, workdir), ex.batch():
      jobs = [ex.submit(fn) for fn in functions]
  except (utils.FailedJobError, utils.FailedSubmissionError) as e:
    reason = " ".join(str(e).split())[:300] or e.__class__.__name__
    raise ConfigError(f"submitting the sweep's group jobs failed ({reason}); check the "
                      "--slurm_* resources against the cluster's limits") from None
  out = {}
  for i, job in zip(indices, jobs):
    record = {"launcher": launch.launcher.name, "job_id": str(job.job_id),
              "tasks": launch.tasks, "log": str(job.paths.stdout),
              "folder": str(ex.folder), "host": socket.gethostname(),
              "submitted": time.strftime("%Y-%m-%d %H:%M:%S")}
    records.setdefault(str(i), []).append(record)
    out[i] = (record, job)
    print(f"sweep: submitted group {i} ({point_name(groups[i][0])}) as job {job.job_id} "
          f"(log: {record['log']})", flush=True)
  _save(workdir, records)
  return out


def _attach(record: dict, name: str):
  """A job handle for a group's recorded job of an earlier sweep process: SLURM's (asked
  through sacct), or None for a local job (its controller's PID is checked instead)."""
  if record["launcher"] != "slurm":
    if record["host"] != socket.gethostname():
      raise ConfigError(f"sweep group {name}: its submitit_local job {record['job_id']} runs "
                        f"on host {record['host']}; rerun this sweep there")
    return None
  import shutil
  import submitit
  if shutil.which("sacct") is None:
    raise ConfigError(f"sweep group {name} was submitted to SLURM as job {record['job_id']}, "
                      "whose state cannot be asked here (no sacct); rerun on the cluster")
  return submitit.SlurmJob(record["folder"], record["job_id"],
                           tasks=list(range(record["tasks"])))


def _local_alive(record: dict) -> bool:
  """Whether a submitit_local job's controller (its job id is the controller's PID) runs."""
  try:
    with open(f"/proc/{int(record['job_id'])}/cmdline", "rb") as f:
      cmdline = f.read()
  except (OSError, ValueError):
    return False
  return b"submitit.local._local" in cmdline and record["folder"].encode() in cmdline


def _running(record: dict, job) -> bool:
  """Whether a group's job is still pending or running."""
  return _local_alive(record) if job is None else not job.done()


def _check_unlocked(workdir: str, i: int, name: str) -> None:
  """Refuses to resubmit group `i` while a process still holds its workdir lock."""
  sub = group_dir(workdir, i)
  if not os.path.isdir(sub):
    return
  lock = wd.WorkdirLock(sub)
  try:
    lock.acquire()
  except ConfigError:
    try:
      with open(lock.path) as f:
        holder = f.read().strip()
    except OSError:
      holder = "another process"
    raise ConfigError(f"sweep group {i} ({name}) is still running outside the jobs {LAUNCH} "
                      f"records ({holder}); wait for it to end, then rerun") from None
  lock.release()


_DIED = re.compile(r"CalledProcessError: Command .* (?:died with <Signals\.(\w+)|returned "
                   r"non-zero exit status (-?\d+))")


def _failure(workdir: str, i: int, name: str, record: dict, job) -> str:
  """'sweep group I (NAME) failed: REASON (log: PATH)': the group's own error line, else how
  its process ended (CommandFunction's error in the log), else the job's state."""
  reason = last_error(record["log"])
  if not reason or reason.startswith("submitit"):
    try:
      with open(record["log"], errors="replace") as f:
        died = [m for m in map(_DIED.search, f) if m]
    except OSError:
      died = []
    if died:
      signal_name, status = died[-1].groups()
      reason = (f"its process was killed ({signal_name})" if signal_name else
                f"its process exited with status {status}")
    else:
      state = job.state if job is not None else "ended"
      reason = (f"job {record['job_id']} ended ({state}) without "
                f"{group_dir(workdir, i)}/sweep.json")
  return f"sweep group {i} ({name}) failed: {reason} (log: {record['log']})"


def check_no_live_jobs(workdir: str, doing: str, fix: str) -> None:
  """Refuses `doing` (one line, ConfigError) while launch.json records a group job that is
  still pending or running: it would write into the workdir underneath."""
  records = _load(workdir) if os.path.exists(os.path.join(workdir, LAUNCH)) else {}
  for i, history in sorted(records.items(), key=lambda kv: int(kv[0])):
    last = history[-1] if history else None
    if last is None or _finished(workdir, int(i)):   # a finished group's job is over
      continue
    job = _attach(last, f"{i}")
    if _running(last, job):
      raise ConfigError(f"{doing} while sweep group {i}'s {last['launcher']} job "
                        f"{last['job_id']} is still pending or running (log: {last['log']}); "
                        f"{fix}")


def _plan(workdir: str, groups: list, records: dict) -> tuple[list[int], dict]:
  """(groups to submit, {group: (record, job)} still running from an earlier sweep process)."""
  todo, watched = [], {}
  for i, (structural, _) in enumerate(groups):
    name, last = point_name(structural), (records.get(str(i)) or [None])[-1]
    if _finished(workdir, i):
      continue
    job = None if last is None else _attach(last, f"{i} ({name})")
    if last is not None and _running(last, job):
      watched[i] = (last, job)
      print(f"sweep: group {i} ({name}) is still running as job {last['job_id']} "
            f"(log: {last['log']})", flush=True)
    else:
      _check_unlocked(workdir, i, name)
      if last is not None:   # an earlier job ended without results: say why, then resubmit
        print(f"sweep: {_failure(workdir, i, name, last, job)}; resubmitting it", flush=True)
      todo.append(i)
  return todo, watched


def run(launch: Launch, config, groups, workdir, config_file, names: list | None = None):
  """Submits the groups that need it and waits for all (or returns None with `detach`);
  then (rows, members), or ConfigError naming the first failed group."""
  records = _load(workdir)
  todo, watched = _plan(workdir, groups, records)
  if launch.detach:
    if not todo and not watched:
      return collect(workdir, groups, config)
    if todo:
      _submit(launch, config, groups, workdir, config_file, todo, records, names)
    print(f"sweep: detached; {len(todo) + len(watched)} group job(s) running; rerun the same "
          "command to collect the tables", flush=True)
    return None
  limit = (len(groups) if launch.launcher.name == "slurm" or launch.parallel_jobs is None
           else launch.parallel_jobs)
  failures = []
  while todo or watched:
    free = limit - len(watched)
    if todo and free > 0:
      watched.update(_submit(launch, config, groups, workdir, config_file, todo[:free], records,
                             names))
      todo = todo[free:]
    time.sleep(POLL_S)
    for i, (record, job) in list(watched.items()):
      if not _running(record, job):
        del watched[i]
        wait_s = SHARED_FS_WAIT_S if record["launcher"] == "slurm" else 0.0
        if not _finished(workdir, i, wait_s):
          failures.append(_failure(workdir, i, point_name(groups[i][0]), record, job))
  if failures:
    done = sum(_finished(workdir, i) for i in range(len(groups)))
    raise ConfigError(f"{failures[0]}; {len(failures)} of {len(groups)} groups failed, "
                      f"{done} finished (kept): rerun the same command to resubmit the rest")
  return collect(workdir, groups, config)
