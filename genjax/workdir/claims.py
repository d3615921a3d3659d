"""Workdir policy: one run per workdir, locked, its outputs listed, resumed only when identical.

* `claim_workdir(workdir, config, kind=, outputs=, overwrite=)`: locks the workdir
  (`WorkdirLock`: `fcntl.flock` on `.genjax.lock`, released by the kernel when the process
  dies, so `kill -9` leaves no stale lock) and decides: resume (the stored `run.json` equals
  this run's identity), start fresh (empty workdir, or `overwrite`), or refuse in one line
  saying what differs. `workdir=None` (an in-memory run) claims nothing.
* `manifest.json` lists every name the run may write (relative, inside the workdir), sealed
  (`genjax.workdir.record`); `--overwrite` removes exactly those (`remove_outputs`), never another
  file, and never on the word of a manifest whose seal does not match (an entry added by hand).
* A workdir inside another run's outputs is refused (`check_workdir`), as is a workdir that
  holds genjax's outputs without their run.json; an edited run.json is refused, an edited
  config.json rewritten from run.json.
* `check_output_name`: every path-valued setting is a plain name inside the workdir.
* `completed(claim, name)`: a finished run's stored results (a rerun writes nothing), once
  every recorded output matches its digest; an output that differs and can be made again
  (results, plots, selected weights) makes the run resume from its checkpoints to rebuild it.
  Leaving the claim's block without an error records the run finished (`record.finish`).
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

from genjax.platform import distributed
from genjax.report.files import write_bytes
from genjax.workdir import extend, record
from genjax.errors import ConfigError
from genjax.workdir.identity import CONFIG, IDENTITY, LOCK, MANIFEST, RESERVED, _NAME, _GROUP
from genjax.workdir.identity import difference, identity

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
  outer = record.enclosing_run(workdir)
  if outer is not None:
    raise ConfigError(f"--workdir '{workdir}' lies inside '{outer}', which holds a genjax run "
                      "(its outputs are removed with it by --overwrite); choose a directory "
                      "outside it")


# --- the lock -------------------------------------------------------------------------------

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


def remove_outputs(workdir: str) -> list[str]:
  """Removes what `<workdir>/manifest.json` lists (recursing into listed sub-runs), then the
  manifest itself. Never anything else, nothing when the manifest's seal fails, nothing when a
  listed directory holds another genjax run. Returns the names removed."""
  names, sub_runs = record.removal_plan(workdir)
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
  """A workdir held by this process for one run: `resume` tells whether to continue it.

  `completed(claim, name)` names the run's main result; leaving the `with` block without an
  error, with that result written, records the run finished (`record.finish`), unless the
  run was found finished and intact."""
  workdir: str
  resume: bool
  lock: WorkdirLock | None
  result: str | None = None      # the result file `completed` was asked for
  intact: bool = False           # a finished run whose every output matched its record

  def release(self) -> None:
    if self.lock is not None:
      self.lock.release()

  def __enter__(self) -> Claim:
    return self

  def __exit__(self, exc_type, *exc) -> None:
    try:
      if (exc_type is None and self.result and not self.intact and distributed.is_primary()
          and os.path.exists(os.path.join(self.workdir, self.result))):
        record.finish(self.workdir)
    finally:
      self.release()


_FRESH, _RESUME, _REFUSED = 0, 1, 2
_RESULTS = ("results.json", "sweep.json", "nested.json")   # named first in a message


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
      verdict = _RESUME if _decide(workdir, run, outputs, overwrite, config_json) else _FRESH
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


def _json_bytes(obj) -> bytes:
  return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def _start_fresh(workdir: str, run: dict, config_json: str, outputs, overwrite: bool) -> None:
  if os.path.exists(os.path.join(workdir, MANIFEST)):
    removed = remove_outputs(workdir)
    if overwrite and removed:
      print(f"--overwrite: removed the previous run's outputs in {workdir}: "
            f"{', '.join(removed)}", flush=True)
  config_bytes, run_bytes = (config_json + "\n").encode(), _json_bytes(run)
  # The manifest first (a kill after it leaves nothing it does not list), with the digests
  # of the two records it is written with.
  record.write(workdir, record.start(outputs, {CONFIG: record.digest_bytes(config_bytes),
                                               IDENTITY: record.digest_bytes(run_bytes)}))
  write_bytes(os.path.join(workdir, CONFIG), config_bytes)
  write_bytes(os.path.join(workdir, IDENTITY), run_bytes)


def _decide(workdir: str, run: dict, outputs, overwrite: bool, config_json: str = "") -> bool:
  """True: resume (a larger num_epochs alone: continue, `genjax.workdir.extend`). False: start
  fresh. Raises ConfigError for a refusal."""
  fix = "pass --overwrite to replace it, or choose another --workdir"
  identity_path, manifest_path = (os.path.join(workdir, n) for n in (IDENTITY, MANIFEST))
  has_identity, has_manifest = os.path.lexists(identity_path), os.path.lexists(manifest_path)
  manifest = record.read(workdir)   # ConfigError: unreadable, or its seal fails
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
    # Empty, or a run killed before it wrote run.json (then only the manifest and
    # config.json exist): nothing of it to keep. Anything more is a run without its identity.
    orphans = [n for n in sorted(owned, key=lambda n: (n not in _RESULTS, n))
               if n not in (CONFIG, MANIFEST, LOCK) and os.path.lexists(os.path.join(workdir, n))]
    if orphans and not overwrite:
      raise ConfigError(f"workdir '{workdir}' holds genjax's outputs ({', '.join(orphans[:3])}"
                        f"{', ...' if orphans[3:] else ''}) without their {IDENTITY}, so which "
                        "run made them is unknown; nothing was removed: pass --overwrite to "
                        "replace them, or choose another --workdir")
    return False
  stored = _read_json(identity_path)
  if not isinstance(stored, dict):
    raise ConfigError(f"workdir '{workdir}': {IDENTITY} is unreadable, so the run it holds "
                      f"is unknown; {fix}")
  if overwrite:
    return False
  files = (manifest or {}).get("files", {})
  known = {files.get(IDENTITY), (manifest or {}).get("extended_from", {}).get(IDENTITY)}
  if manifest is None or record.digest(identity_path) not in known:
    raise ConfigError(f"workdir '{workdir}': {IDENTITY} is not the file genjax wrote there "
                      "(edited since, or no sealed manifest records it), so the run it holds "
                      f"is unknown; restore it, or {fix}")
  diff = difference(stored, run)
  grown = extend.grown_epochs(stored, run) if diff is not None else None
  if diff is not None and grown is None:
    raise ConfigError(f"workdir '{workdir}' holds another run: {diff}; {fix}")
  if grown is not None:
    extend.check(run, *grown)
    _continue(workdir, manifest, run, config_json)
    print(f"genjax: continuing the run in {workdir} from {grown[0]} to {grown[1]} epochs "
          "(only num_epochs grew)", flush=True)
    return True
  config_path = os.path.join(workdir, CONFIG)
  if record.digest(config_path) != files.get(CONFIG):   # rebuilt from the verified run.json
    data = _json_bytes(stored["config"])
    if record.digest_bytes(data) != files.get(CONFIG):
      raise ConfigError(f"workdir '{workdir}': {CONFIG} is not the file genjax wrote there "
                        f"and cannot be rebuilt from {IDENTITY}; {fix}")
    write_bytes(config_path, data)
    print(f"genjax: {config_path} was not the file this run wrote; rewrote it from "
          f"{IDENTITY}", flush=True)
  return True


def _continue(workdir: str, manifest: dict, run: dict, config_json: str) -> None:
  """The stored run becomes `run` (a larger num_epochs): the manifest first, with the new
  records' digests, the old ones kept as `extended_from` (a kill before the records are
  rewritten is continued again) and no `finished` (its outputs are written again), then
  run.json and config.json."""
  config_bytes, run_bytes = (config_json + "\n").encode(), _json_bytes(run)
  body = {k: v for k, v in manifest.items() if k != "finished"}
  body["extended_from"] = dict(manifest.get("files", {}))
  body["files"] = {**manifest.get("files", {}), CONFIG: record.digest_bytes(config_bytes),
                   IDENTITY: record.digest_bytes(run_bytes)}
  record.write(workdir, body)
  write_bytes(os.path.join(workdir, IDENTITY), run_bytes)
  write_bytes(os.path.join(workdir, CONFIG), config_bytes)


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


def completed(claim, name: str) -> dict | None:
  """The stored `name` (e.g. results.json) of a finished run being resumed, else None.

  A run is finished when its manifest records it so (`record.finish`, the run's last write)
  and every output it recorded still matches its digest: then a rerun reads its results and
  writes nothing. An output that is missing or differs and can be rebuilt (results, tables,
  plots, selected weights) makes it None, with one line: the run resumes from its checkpoints
  and writes them again. One that cannot (a metrics log) is refused (ConfigError)."""
  if claim.workdir is None:
    return None
  claim.result = name
  if not claim.resume:
    return None
  bad, error = None, None
  if distributed.is_primary():
    try:
      bad = record.check_finished(claim.workdir, record.read(claim.workdir) or {})
    except ConfigError as e:
      error = e
  verdict = distributed.broadcast_int(2 if error else 0 if bad == [] else 1)   # all alike
  if verdict == 2:
    raise error or ConfigError(f"process 0 refused workdir '{claim.workdir}' (its message "
                               "says why)")
  bad = [] if verdict == 0 and bad is None else bad
  path = os.path.join(claim.workdir, name)
  if bad == [] and os.path.exists(path):
    claim.intact = True
    with open(path) as f:
      return json.load(f)
  if bad and distributed.is_primary():
    print(f"genjax: workdir '{claim.workdir}': {', '.join(bad[:4])}{', ...' if bad[4:] else ''}"
          " missing or not as this run wrote it; rebuilding from the run's checkpoints",
          flush=True)
  return None


def path(workdir: str, name: str) -> str:
  """`<workdir>/<name>`."""
  return os.path.join(workdir, name)
