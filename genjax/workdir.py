"""Workdir policy: one run per workdir, locked, its outputs listed, resumed only when identical.

* `claim_workdir(workdir, config, kind=, outputs=, overwrite=)`: locks the workdir
  (`WorkdirLock`: `fcntl.flock` on `.genjax.lock`, released by the kernel when the process
  dies, so `kill -9` leaves no stale lock) and decides: resume (the stored `run.json` equals
  this run's identity), start fresh (empty workdir, or `overwrite`), or refuse in one line
  saying what differs. `workdir=None` (an in-memory run) claims nothing.
* `manifest.json` lists every name the run may write (relative, inside the workdir);
  `--overwrite` removes exactly those (`remove_outputs`), never another file.
* `check_output_name`: every path-valued setting is a plain name inside the workdir.
* `completed(claim, name)`: a finished run's stored results (a rerun writes nothing).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import json
import os
import shutil
import socket
import time

from genjax import distributed
from genjax.errors import ConfigError
from genjax.run_identity import CONFIG, IDENTITY, LOCK, MANIFEST, RESERVED, _NAME, _GROUP
from genjax.run_identity import difference, identity

def check_output_name(setting: str, name) -> None:
  """A path-valued setting must be a plain name inside the workdir, not one of genjax's."""
  ok = (isinstance(name, str) and _NAME.match(name) is not None and name not in (".", "..")
        and len(name) <= 100)
  if not ok:
    raise ConfigError(f"{setting}={name!r} must be a plain directory name inside the workdir "
                      "(letters, digits, '_', '-', '.'; no '/', '..' or absolute path), e.g. "
                      "'checkpoints'")
  if (name in RESERVED or _GROUP.match(name) or name.endswith(".tmp")
      or name.endswith("_refit") and name[:-6] in RESERVED):
    raise ConfigError(f"{setting}={name!r} is the name of one of genjax's outputs; choose "
                      "another name, e.g. 'checkpoints'")


def check_workdir(workdir: str) -> None:
  """Refuses (one line) a workdir that is a file, lies under a file, or cannot be written."""
  workdir = os.path.abspath(workdir)
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise ConfigError(f"--workdir '{workdir}' is a file, not a directory; pass a directory path")
  parent = workdir
  while not os.path.exists(parent):
    parent = os.path.dirname(parent)
  if not os.path.isdir(parent):
    raise ConfigError(f"--workdir '{workdir}' lies under '{parent}', which is a file; pass a "
                      "path whose parents are directories")
  if not os.access(parent, os.W_OK | os.X_OK):
    raise ConfigError(f"--workdir '{workdir}': '{parent}' is not writable by this user; "
                      "fix its permissions or choose another --workdir")


# --- the code fingerprint -------------------------------------------------------------------

class WorkdirLock:
  """An exclusive `fcntl.flock` on `<workdir>/.genjax.lock`, refused (not waited) when held.

  The file holds the holder's PID and host; it is removed on release. The kernel drops
  the lock when the holding process dies, so a killed run never blocks the next.
  """

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, LOCK)
    self._fd = None

  def acquire(self) -> None:
    while True:
      try:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
      except OSError as e:
        if e.errno == errno.ELOOP:
          raise ConfigError(f"'{self.path}' is a symbolic link; remove it (genjax keeps its "
                            "lock file inside the workdir)") from None
        raise
      try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except OSError as e:
        holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
        os.close(fd)
        if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
          raise ConfigError(f"the filesystem of '{self.path}' does not support file locks "
                            f"({e.strerror}); put the workdir on a filesystem that does "
                            "(a local disk, NFS with locking)") from None
        if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
          raise
        raise ConfigError(f"workdir '{os.path.dirname(self.path)}' is in use by another genjax "
                          f"run ({holder}); wait for it to finish, or choose another "
                          "--workdir") from None
      try:   # the file may have been removed by a holder releasing it meanwhile: retry
        same = os.path.samestat(os.fstat(fd), os.stat(self.path))
      except FileNotFoundError:
        same = False
      if same:
        break
      os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"PID {os.getpid()} on host {socket.gethostname()}, since "
                 f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
    self._fd = fd

  def release(self) -> None:
    if self._fd is not None:
      with contextlib.suppress(OSError):
        os.remove(self.path)
      os.close(self._fd)
      self._fd = None


# --- the manifest ---------------------------------------------------------------------------

def _read_json(path: str):
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def _write_json(path: str, obj) -> None:
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(obj, f, indent=2, sort_keys=True)
    f.write("\n")
  os.replace(tmp, path)


def _safe_entry(name) -> bool:
  return isinstance(name, str) and _NAME.match(name) is not None and name not in (".", "..")


def remove_outputs(workdir: str) -> list[str]:
  """Removes what `<workdir>/manifest.json` lists (recursing into listed sub-runs), then the
  manifest itself. Never anything else. Returns the names removed."""
  manifest = _read_json(os.path.join(workdir, MANIFEST)) or {}
  names = [n for n in manifest.get("outputs", []) if _safe_entry(n)]
  sub_runs = [n for n in names if os.path.isdir(os.path.join(workdir, n))
              and not os.path.islink(os.path.join(workdir, n))
              and os.path.exists(os.path.join(workdir, n, MANIFEST))]
  locks = _lock_all(workdir, sub_runs)   # every sub-run idle, or nothing is removed
  removed = []
  try:
    for name in names:
      target = os.path.join(workdir, name)
      if name in sub_runs:   # a sub-run (a sweep's group): only its own outputs
        remove_outputs(target)
      elif os.path.isdir(target) and not os.path.islink(target):
        shutil.rmtree(target)
      elif os.path.lexists(target):
        os.remove(target)
      else:
        continue
      removed.append(name)
  finally:
    for lock in locks:
      lock.release()   # removes its lock file: an emptied sub-run can go
  for name in sub_runs:
    with contextlib.suppress(OSError):
      os.rmdir(os.path.join(workdir, name))
  for name in (MANIFEST,):
    with contextlib.suppress(FileNotFoundError):
      os.remove(os.path.join(workdir, name))
  return removed


def _lock_all(workdir: str, sub_runs: list[str]) -> list[WorkdirLock]:
  """Every sub-run's lock, taken before anything is removed; ConfigError (and none kept) if
  a process still runs in one, e.g. an orphaned or still-submitted sweep group."""
  locks = []
  try:
    for name in sub_runs:
      lock = WorkdirLock(os.path.join(workdir, name))
      try:
        lock.acquire()
      except ConfigError as e:
        raise ConfigError(f"--overwrite would remove '{os.path.join(workdir, name)}', where "
                          f"{str(e).partition('in use by ')[2].partition(';')[0] or 'a run'} "
                          "still runs; nothing was removed: wait for it to end (or stop it), "
                          "then rerun") from None
      locks.append(lock)
  except ConfigError:
    for lock in locks:
      lock.release()
    raise
  return locks


@dataclasses.dataclass
class Claim:
  """A workdir held by this process for one run: `resume` tells whether to continue it."""
  workdir: str
  resume: bool
  lock: WorkdirLock | None

  def release(self) -> None:
    if self.lock is not None:
      self.lock.release()

  def __enter__(self) -> Claim:
    return self

  def __exit__(self, *exc) -> None:
    self.release()


_FRESH, _RESUME, _REFUSED = 0, 1, 2


def claim(workdir: str, run: dict, *, config_json: str, outputs: tuple[str, ...],
          overwrite: bool) -> Claim:
  """Locks `workdir` and decides resume / fresh start / refusal; writes run.json, config.json
  and manifest.json for a fresh start.

  Resume only when the stored identity equals `run` and not `overwrite`; `overwrite` removes
  the stored run's manifest outputs and starts from scratch; anything else is refused
  (ConfigError). In a multi-host run process 0 alone locks, reads and writes, and tells the
  others its verdict, so every process resumes, starts or stops alike.
  """
  workdir = os.path.abspath(workdir)
  check_workdir(workdir)
  lock, verdict, error = None, _REFUSED, None
  if distributed.is_primary():
    try:
      os.makedirs(workdir, exist_ok=True)
      lock = WorkdirLock(workdir)
      lock.acquire()
      verdict = _RESUME if _decide(workdir, run, outputs, overwrite) else _FRESH
      if verdict == _FRESH:
        _start_fresh(workdir, run, config_json, outputs, overwrite)
    except BaseException as e:   # told to the other processes before it is raised here
      error = e
  verdict = distributed.broadcast_int(verdict)
  if error is not None or verdict == _REFUSED:
    if lock is not None:
      lock.release()
    if error is not None:
      raise error
    raise ConfigError(f"process 0 refused workdir '{workdir}' (its message says why)")
  distributed.barrier("genjax-workdir-ready")
  return Claim(workdir, verdict == _RESUME, lock)


def _start_fresh(workdir: str, run: dict, config_json: str, outputs, overwrite: bool) -> None:
  if os.path.exists(os.path.join(workdir, MANIFEST)):
    removed = remove_outputs(workdir)
    if overwrite and removed:
      print(f"--overwrite: removed the previous run's outputs in {workdir}: "
            f"{', '.join(removed)}", flush=True)
  names = sorted(set(outputs) | {IDENTITY, CONFIG})
  _write_json(os.path.join(workdir, MANIFEST), {"outputs": names})
  with open(os.path.join(workdir, CONFIG), "w") as f:
    f.write(config_json + "\n")
  _write_json(os.path.join(workdir, IDENTITY), run)


def _decide(workdir: str, run: dict, outputs, overwrite: bool) -> bool:
  """True: resume. False: start fresh. Raises ConfigError for a refusal."""
  fix = "pass --overwrite to replace it, or choose another --workdir"
  identity_path, manifest_path = (os.path.join(workdir, n) for n in (IDENTITY, MANIFEST))
  has_identity, has_manifest = os.path.lexists(identity_path), os.path.lexists(manifest_path)
  manifest = _read_json(manifest_path) if has_manifest else None
  if has_manifest and not (isinstance(manifest, dict)
                           and isinstance(manifest.get("outputs"), list)):
    raise ConfigError(f"workdir '{workdir}': {MANIFEST} is unreadable, so which files are "
                      "genjax's is unknown; remove the workdir yourself, or choose another "
                      "--workdir")
  if not has_identity and os.path.exists(os.path.join(workdir, CONFIG)) and not has_manifest:
    raise ConfigError(f"workdir '{workdir}' holds a run of an older genjax (no {IDENTITY} or "
                      f"{MANIFEST}), which cannot be resumed or overwritten safely; move it "
                      "away, or choose another --workdir")
  owned = set(manifest["outputs"]) if manifest else set()
  for name in sorted(set(outputs) | {IDENTITY, CONFIG}):
    path = os.path.join(workdir, name)
    if os.path.islink(path):
      raise ConfigError(f"workdir '{workdir}': '{name}' is a symbolic link; genjax writes its "
                        "outputs only as plain files inside the workdir: remove the link")
    if name not in owned and name != IDENTITY and os.path.lexists(path):
      raise ConfigError(f"workdir '{workdir}' already holds '{name}', which no genjax run "
                        "there wrote; move it away, or choose another --workdir")
  if not has_identity:
    return False   # empty, or a run killed before it wrote run.json: nothing of it to keep
  stored = _read_json(identity_path)
  if not isinstance(stored, dict):
    raise ConfigError(f"workdir '{workdir}': {IDENTITY} is unreadable, so the run it holds "
                      f"is unknown; {fix}")
  if overwrite:
    return False
  diff = difference(stored, run)
  if diff is not None:
    raise ConfigError(f"workdir '{workdir}' holds another run: {diff}; {fix}")
  return True


class _NoClaim:
  """The claim of an in-memory run (no workdir): nothing locked, nothing to resume."""
  workdir = None
  resume = False

  def __enter__(self):
    return self

  def __exit__(self, *exc) -> None:
    pass


def claim_workdir(workdir: str | None, config, *, kind: str, outputs: tuple[str, ...],
                  overwrite: bool, points: list[dict] | None = None,
                  options: dict | None = None):
  """Locks `workdir` for this run and decides whether it resumes (`claim`); a no-op claim
  when `workdir` is None. Call after every check that can refuse the run, before anything
  is written."""
  if workdir is None:
    return _NoClaim()
  run = identity(kind, config, points, options)
  config_json = json.dumps(run["config"], indent=2, sort_keys=True)
  return claim(workdir, run, config_json=config_json, outputs=outputs, overwrite=overwrite)


def completed(claim: Claim, name: str) -> dict | None:
  """The stored `name` (e.g. results.json) of a finished run being resumed, else None.

  A rerun of a finished run reads its results and writes nothing.
  """
  if not claim.resume:
    return None
  path = os.path.join(claim.workdir, name)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def path(workdir: str, name: str) -> str:
  """`<workdir>/<name>`."""
  return os.path.join(workdir, name)
