"""A workdir's record: what genjax wrote there, sealed, so that nothing is believed unchecked.

`manifest.json` is genjax's own account of a workdir:

    {"outputs":  every name the run may write (what --overwrite may remove),
     "files":    {"run.json": sha256, "config.json": sha256}   (written with them),
     "finished": {name: sha256 of a file | "dir", ...}         (only once the run finished),
     "seal":     sha256 over the rest}

* The seal makes a hand edit visible: a manifest whose seal does not match its content (an
  entry added by hand, a manifest of an older genjax) is never trusted (`read`: ConfigError,
  one line), so `--overwrite` removes only names genjax itself recorded.
* `finished` is written last, when every output of the run exists (`finish`): a run is
  finished only then. A kill between two outputs leaves no `finished`, so the rerun resumes
  and writes them all.
* `check_finished` compares the outputs with their recorded digests: one that can be made
  again from the run's checkpoints (results, tables, plots, selected weights) is reported for
  rebuilding; one that cannot (a metrics log, run.json) is refused.

The seal is a checksum, not a signature: it catches edits and accidents, not forgery.

`enclosing_run(path)`: the genjax run a path lies inside (a workdir there is refused; a
sweep's `groupNN` is the one run allowed inside another). `removal_plan(workdir)`: what
`--overwrite` may remove, checked before anything is: the sealed manifest's names, never a
listed directory that holds another genjax run.
"""

from __future__ import annotations

import hashlib
import json
import os
import re

from genjax.errors import ConfigError
from genjax.report.files import atomic
from genjax.workdir.identity import CONFIG, IDENTITY, LOCK, MANIFEST, _NAME

_SALT = b"genjax manifest 1\0"
DIR = "dir"   # the digest recorded for a directory (checkpoints verify their own content)


def sha256(path: str) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      h.update(block)
  return h.hexdigest()


def digest_bytes(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


def digest(path: str) -> str | None:
  """sha256 of a plain file, DIR for a directory, None when absent (or a link)."""
  if os.path.islink(path) or not os.path.exists(path):
    return None
  return DIR if os.path.isdir(path) else sha256(path)


def _seal(body: dict) -> str:
  text = json.dumps({k: v for k, v in body.items() if k != "seal"}, sort_keys=True)
  return hashlib.sha256(_SALT + text.encode()).hexdigest()


def write(workdir: str, body: dict) -> None:
  """Writes `<workdir>/manifest.json` sealed, atomically (temp file + rename)."""
  body = {k: v for k, v in body.items() if k != "seal"}
  body["seal"] = _seal(body)
  path = os.path.join(workdir, MANIFEST)
  with atomic(path) as f:
    json.dump(body, f, indent=2, sort_keys=True)
    f.write("\n")


def read(workdir: str) -> dict | None:
  """The verified manifest, None when there is none; ConfigError (one line) when it is
  unreadable or its seal does not match its content."""
  path = os.path.join(workdir, MANIFEST)
  if not os.path.lexists(path):
    return None
  try:
    with open(path) as f:
      body = json.load(f)
  except (OSError, ValueError):
    body = None
  if not (isinstance(body, dict) and isinstance(body.get("outputs"), list)):
    raise ConfigError(f"workdir '{workdir}': {MANIFEST} is unreadable, so which files are "
                      "genjax's is unknown; nothing was removed: remove the workdir yourself, "
                      "or choose another --workdir")
  if body.get("seal") != _seal(body):
    raise ConfigError(f"workdir '{workdir}': {MANIFEST} is not as genjax wrote it (edited by "
                      "hand, or written by an older genjax), so which files are genjax's is "
                      "unknown; nothing was removed: restore it, or move the files you want "
                      "to keep and remove the workdir yourself")
  return body


def start(outputs, files: dict[str, str]) -> dict:
  """The manifest of a fresh run: its outputs and the digests of run.json and config.json."""
  return {"outputs": sorted(set(outputs) | {IDENTITY, CONFIG}), "files": dict(files)}


def finish(workdir: str) -> None:
  """Records the run finished: every listed output that exists, with its digest (the last
  write of a run)."""
  body = read(workdir)
  if body is None:
    return
  done = {}
  for name in body["outputs"]:
    if name in (LOCK, MANIFEST):
      continue
    d = digest(os.path.join(workdir, name))
    if d is not None:
      done[name] = d
  write(workdir, {**body, "finished": done})


def is_log(name: str) -> bool:
  """A metrics log: its rows exist nowhere else, so it cannot be rebuilt."""
  return name.startswith("metrics") and name.endswith(".jsonl")


def check_finished(workdir: str, body: dict) -> list[str] | None:
  """None when the manifest records no finish; else the recorded outputs that are missing or
  differ from their digests ([] when all match). ConfigError for one that cannot be rebuilt."""
  done = body.get("finished")
  if not isinstance(done, dict):
    return None
  bad = [name for name, d in sorted(done.items())
         if digest(os.path.join(workdir, name)) != d]
  lost = [name for name in bad if is_log(name) or name == IDENTITY]
  if lost:
    how = "cut or edited since" if os.path.exists(os.path.join(workdir, lost[0])) else "missing"
    raise ConfigError(f"workdir '{workdir}': {lost[0]} is not the file this run wrote ({how}); "
                      "it cannot be rebuilt from the checkpoints: restore it, or pass "
                      "--overwrite to rerun the run from scratch")
  return bad


def load_verified(workdir: str, name: str = "results.json") -> tuple[dict, dict]:
  """(run.json, `name`) of a finished run, both read back only when the sealed manifest
  records the run finished and every output it recorded matches its digest; ConfigError (one
  line, saying that a rerun of the same command rebuilds it) otherwise. For readers of a
  finished run (`genjax.load_run`, a sweep collecting its groups)."""
  body = read(workdir)
  bad = check_finished(workdir, body) if body is not None else None
  if body is None or bad is None or name not in body.get("finished", {}):
    raise ConfigError(f"'{workdir}' holds no finished genjax run (no sealed {MANIFEST} "
                      f"recording {name}); give the workdir of a finished run, or rerun it")
  if bad:
    raise ConfigError(f"'{workdir}': {', '.join(bad[:3])} missing or not as the run wrote "
                      "it; rerun the same command to rebuild it from the run's checkpoints")
  with open(os.path.join(workdir, IDENTITY)) as f, open(os.path.join(workdir, name)) as g:
    return json.load(f), json.load(g)


# --- runs inside runs, and what --overwrite removes -----------------------------------------

def _load(path: str):
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


_SUB_RUN = re.compile(r"^group\d+$")   # a sweep's group: the one run inside another


def _holds_run(directory: str) -> dict | None:
  """{"kind": ..., "outputs": [...]} when `directory` holds a genjax run (a run.json or a
  manifest.json of genjax's form), else None."""
  found = None
  run = _load(os.path.join(directory, IDENTITY))
  if isinstance(run, dict) and "kind" in run and "code" in run:
    found = {"kind": run.get("kind"), "outputs": []}
  manifest = _load(os.path.join(directory, MANIFEST))
  if isinstance(manifest, dict) and isinstance(manifest.get("outputs"), list):
    found = {**(found or {"kind": None}), "outputs": manifest["outputs"]}
  return found


def enclosing_run(path: str) -> str | None:
  """The directory above `path` that holds a genjax run `path` is no sub-run of, else None.
  A sweep's group directory (`<sweep>/groupNN`) is the one run allowed inside another."""
  path = os.path.abspath(path)
  child, parent = path, os.path.dirname(path)
  while parent != child:
    held = _holds_run(parent)
    if held is not None:
      sub_run = (child == path and _SUB_RUN.match(os.path.basename(path)) is not None
                 and (held["kind"] == "sweep"
                      or any(_SUB_RUN.match(str(n)) for n in held["outputs"])))
      if not sub_run:
        return parent
    child, parent = parent, os.path.dirname(parent)
  return None


def _safe_entry(name) -> bool:
  return isinstance(name, str) and _NAME.match(name) is not None and name not in (".", "..")


def removal_plan(workdir: str) -> tuple[list[str], list[str]]:
  """(names, sub_runs) that `remove_outputs` removes: the names the verified manifest lists
  (ConfigError if its seal fails), every sub-run's checked the same way, and none holding a
  genjax run that is not one of its sub-runs; ConfigError before anything is removed."""
  manifest = read(workdir) or {"outputs": []}
  names = [n for n in manifest["outputs"] if _safe_entry(n) and n not in (MANIFEST, LOCK)]
  sub_runs = [n for n in names if os.path.isdir(os.path.join(workdir, n))
              and not os.path.islink(os.path.join(workdir, n))
              and os.path.exists(os.path.join(workdir, n, MANIFEST))]
  for name in names:
    target = os.path.join(workdir, name)
    if name in sub_runs:
      removal_plan(target)
    elif os.path.isdir(target) and not os.path.islink(target):
      for dirpath, _, _ in os.walk(target):
        if _holds_run(dirpath) is not None:
          raise ConfigError(f"--overwrite would remove '{target}', which holds another genjax "
                            f"run ('{dirpath}'); nothing was removed: move that run out of "
                            f"'{workdir}' first, then rerun")
  return names, sub_runs
