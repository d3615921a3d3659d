"""What a workdir holds and who writes it: run identity, workdir lock, output manifest.

A workdir holds exactly one run. Its identity (`run.json`) is

    {"kind": "train" | "sweep" | "sweep_group",
     "config": the resolved config,
     "points": every sweep point with its values ([] for a plain run),
     "code": a fingerprint of the code that defines the run}

where the code fingerprint is genjax's version and a hash of its sources, plus a
hash of every user module loaded from outside the Python installation (the
config file and whatever it imports: a penalty in `my_penalties.py`, ...).
A rerun resumes only when its identity equals the stored one; otherwise it is
refused in one line saying what differs (`--overwrite` replaces the run).

`manifest.json` lists every name the run may write (relative, inside the
workdir); `--overwrite` removes exactly those, never another file. A workdir
is used by one process at a time: `WorkdirLock` holds an OS lock
(`fcntl.flock`, released by the kernel when the process dies, so `kill -9`
leaves no stale lock) for the run's life.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import functools
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
import time

from genjax import distributed
from genjax.errors import ConfigError

IDENTITY = "run.json"
CONFIG = "config.json"
MANIFEST = "manifest.json"
LOCK = ".genjax.lock"
# Names genjax itself writes at a workdir's top level: no path-valued setting may take them.
RESERVED = frozenset({
    IDENTITY, CONFIG, MANIFEST, LOCK, "results.json", "metrics.jsonl", "metrics_refit.jsonl",
    "learning_curves.png", "cv_folds.png", "oof_predictions.npz", "tensorboard", "sweep.json",
    "sweep.csv", "sweep.md", "sweep.tex", "sweep_metrics.png", "sweep_curves.png"})
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_GROUP = re.compile(r"^group\d+(\.log|\.config)?$")
PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "tensorflow-datasets",
            "numpy", "scikit-learn", "ml-collections")


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

def _sha256(path: str) -> str:
  with open(path, "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()


def _installation_dirs() -> tuple[str, ...]:
  paths = sysconfig.get_paths()
  dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, paths.get("stdlib", ""),
          paths.get("platstdlib", ""), paths.get("purelib", ""), paths.get("platlib", "")}
  dirs = {d for d in dirs if d}
  return tuple(sorted({p + os.sep for d in dirs for p in (os.path.abspath(d), os.path.realpath(d))}))


@functools.lru_cache(maxsize=1)
def genjax_source_hash() -> str:
  """sha256 over genjax's own .py files (relative path and content), in sorted order."""
  root = os.path.dirname(os.path.abspath(__file__))
  h = hashlib.sha256()
  for dirpath, dirnames, filenames in os.walk(root):
    dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
    for name in sorted(f for f in filenames if f.endswith(".py")):
      path = os.path.join(dirpath, name)
      if not os.path.isfile(path):   # e.g. an editor's dangling lock link
        continue
      h.update(os.path.relpath(path, root).encode() + b"\0")
      with open(path, "rb") as f:
        h.update(f.read() + b"\0")
  return h.hexdigest()


def user_modules() -> dict[str, str]:
  """{path: sha256} of loaded modules outside the Python installation and outside genjax."""
  genjax_dir = os.path.dirname(os.path.realpath(__file__)) + os.sep
  skip = _installation_dirs() + (genjax_dir,)
  out = {}
  for module in list(sys.modules.values()):
    path = getattr(module, "__file__", None)
    if not path or not path.endswith(".py") or os.path.abspath(path).startswith(skip):
      continue   # (the cheap test first: thousands of modules are installed ones)
    path = os.path.realpath(path)
    if path.startswith(skip) or not os.path.isfile(path):
      continue
    out[path] = _sha256(path)
  return dict(sorted(out.items()))


def code_fingerprint() -> dict:
  import genjax
  return {"genjax_version": genjax.__version__, "genjax_source": genjax_source_hash(),
          "user_modules": user_modules()}


def _git_commit(path: str) -> str | None:
  try:
    out = subprocess.run(["git", "-C", path, "rev-parse", "HEAD"], capture_output=True,
                         text=True, timeout=5)
    dirty = subprocess.run(["git", "-C", path, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=5)
  except (OSError, subprocess.SubprocessError):
    return None
  if out.returncode != 0:
    return None
  return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def provenance(config) -> dict:
  """What results.json records beside the numbers: code, seeds, versions, commit, devices."""
  import jax
  versions = {}
  for name in PACKAGES:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      pass
  return {"code": code_fingerprint(), "seed": config.seed, "packages": versions,
          "python": sys.version.split()[0],
          "git_commit": _git_commit(os.path.dirname(os.path.abspath(__file__))),
          "device_kind": jax.devices()[0].device_kind, "device_count": jax.device_count(),
          "process_count": jax.process_count()}


# --- identity -------------------------------------------------------------------------------

def config_dict(config) -> dict:
  return json.loads(config.to_json_best_effort())


def input_files(config) -> dict:
  """{setting: sha256} of the input files a config names (`cv.groups`), by content."""
  out = {}
  if config.cv.method == "group_kfold" and config.cv.groups and os.path.isfile(config.cv.groups):
    out["cv.groups"] = _sha256(config.cv.groups)
  return out


def identity(kind: str, config, points: list[dict] | None = None) -> dict:
  return {"kind": kind, "config": config_dict(config),
          "points": json.loads(json.dumps(points or [])), "code": code_fingerprint(),
          "inputs": input_files(config)}


def _flat(d, prefix=""):
  for k, v in sorted(d.items()):
    if isinstance(v, dict) and v:
      yield from _flat(v, f"{prefix}{k}.")
    else:
      yield f"{prefix}{k}", v


def difference(old: dict, new: dict) -> str | None:
  """A short phrase naming what differs between two identities, or None when equal."""
  if old == new:
    return None
  if old.get("kind") != new.get("kind"):
    return f"it holds a genjax {old.get('kind')} run, this is a {new.get('kind')}"
  a, b = dict(_flat(old.get("config", {}))), dict(_flat(new.get("config", {})))
  keys = [k for k in sorted(set(a) | set(b)) if a.get(k, "<unset>") != b.get(k, "<unset>")]
  if keys:
    shown = ", ".join(f"{k}: {a.get(k, '<unset>')!r} -> {b.get(k, '<unset>')!r}"
                      for k in keys[:3])
    return "its config differs (" + shown + (f", and {len(keys) - 3} more" if keys[3:] else "") + ")"
  if old.get("points") != new.get("points"):
    return (f"its sweep points differ ({len(old.get('points', []))} stored points, "
            f"{len(new.get('points', []))} now; values changed)")
  if old.get("inputs") != new.get("inputs"):
    changed = sorted(set(old.get("inputs", {})) | set(new.get("inputs", {})))
    return f"an input file's content differs ({', '.join(changed)})"
  oc, nc = old.get("code", {}), new.get("code", {})
  if oc.get("genjax_version") != nc.get("genjax_version") or (
      oc.get("genjax_source") != nc.get("genjax_source")):
    return "genjax's source code changed since it ran"
  om, nm = oc.get("user_modules", {}), nc.get("user_modules", {})
  changed = [p for p in sorted(set(om) | set(nm)) if om.get(p) != nm.get(p)]
  if changed:
    what = "changed" if changed[0] in om and changed[0] in nm else (
        "was not used then" if changed[0] in nm else "is no longer used")
    return f"the code it ran differs ({changed[0]} {what})"
  return "its record differs"


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
  removed = []
  for name in manifest.get("outputs", []):
    if not _safe_entry(name):
      continue
    target = os.path.join(workdir, name)
    if os.path.isdir(target) and not os.path.islink(target):
      if os.path.exists(os.path.join(target, MANIFEST)):   # a sub-run: only its own outputs
        sub_lock = WorkdirLock(target)
        sub_lock.acquire()   # refused while a process (an orphaned group) still runs there
        try:
          remove_outputs(target)
        finally:
          sub_lock.release()
        with contextlib.suppress(OSError):
          os.rmdir(target)
      else:
        shutil.rmtree(target)
    elif os.path.lexists(target):
      os.remove(target)
    else:
      continue
    removed.append(name)
  for name in (MANIFEST,):
    with contextlib.suppress(FileNotFoundError):
      os.remove(os.path.join(workdir, name))
  return removed


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
