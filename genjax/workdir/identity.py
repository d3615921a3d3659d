"""A run's identity: what a workdir's run is, and whether a rerun is the same run.

`run.json` holds

    {"kind": "train" | "sweep" | "sweep_group",
     "config": the resolved config,
     "points": every sweep point with its values ([] for a plain run),
     "code": a fingerprint of the code that defines the run}

where the code fingerprint is genjax's version and a hash of its sources, plus a
hash of every user module loaded from outside the Python installation (the
config file and whatever it imports: a penalty in `my_penalties.py`, ...).
A rerun resumes only when its identity equals the stored one (`difference` says, in a few
words, what differs). `provenance` records what produced a result (versions, commit,
devices). The workdir policy built on it (lock, manifest, claim) is `genjax.workdir.claims`.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import re
import sys
import sysconfig
import types

from genjax.report.provenance import git_commit


IDENTITY = "run.json"
CONFIG = "config.json"
MANIFEST = "manifest.json"
LOCK = ".genjax.lock"
# Names genjax itself writes at a workdir's top level: no path-valued setting may take them.
RESERVED = frozenset({
    IDENTITY, CONFIG, MANIFEST, LOCK, "results.json", "metrics.jsonl", "metrics_refit.jsonl",
    "learning_curves.png", "cv_folds.png", "oof_predictions.npz", "tensorboard", "sweep.json",
    "sweep.csv", "sweep.md", "sweep.tex", "sweep_metrics.png", "sweep_curves.png", "selected",
    "sweep_members.csv", "sweep_compare.md", "sweep_compare.csv", "selected.json",
    "launch.json", "submitit"})   # sweep_jobs.OUTPUTS
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_GROUP = re.compile(r"^group\d+(\.log|\.config)?$")
PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "tensorflow-datasets",
            "numpy", "scikit-learn", "ml-collections")


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
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # genjax/
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
  """{path: sha256} of the user code a run's numbers depend on, outside the Python
  installation and genjax: the config files loaded and the modules their code imported
  (`genjax.config.files.user_files`), the files defining every registered model, penalty,
  metric, ... (`genjax.registry.definition_files`), and the user modules those reference
  (their globals), transitively. Not the script that calls genjax (`__main__`), unless it
  defines such code itself."""
  from genjax import registry
  genjax_dir = os.path.dirname(os.path.dirname(os.path.realpath(__file__))) + os.sep
  skip = _installation_dirs() + (genjax_dir,)
  by_file = {}
  for module in list(sys.modules.values()):
    path = getattr(module, "__file__", None)
    if (isinstance(path, str) and path.endswith(".py")
        and not os.path.abspath(path).startswith(skip)):
      by_file.setdefault(os.path.realpath(path), module)
  todo = sorted(registry.user_files() | registry.definition_files())
  out = {}
  while todo:
    path = os.path.realpath(todo.pop())
    if (path in out or path.startswith(skip) or not path.endswith(".py")
        or not os.path.isfile(path)):
      continue
    out[path] = _sha256(path)
    module = by_file.get(path)
    for value in list(vars(module).values()) if module is not None else ():
      try:
        name = None if isinstance(value, types.ModuleType) else value.__module__
      except Exception:  # pylint: disable=broad-except  (any object: no __module__, a proxy)
        continue
      owner = value if name is None else sys.modules.get(name) if isinstance(name, str) else None
      file = getattr(owner, "__file__", None)
      if isinstance(file, str) and file.endswith(".py"):
        todo.append(file)
  return dict(sorted(out.items()))


def code_fingerprint() -> dict:
  from genjax.version import __version__
  return {"genjax_version": __version__, "genjax_source": genjax_source_hash(),
          "user_modules": user_modules()}


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
          "git_commit": git_commit(os.path.dirname(os.path.abspath(__file__))),
          "device_kind": jax.devices()[0].device_kind, "device_count": jax.device_count(),
          "process_count": jax.process_count()}


# --- identity -------------------------------------------------------------------------------

def config_dict(config) -> dict:
  return json.loads(config.to_json_best_effort())


ARRAYS_KEY = "arrays:"   # inputs["arrays:NAME"]: the digest of the arrays registered as NAME
_DATA_DIGESTS: list = []   # name -> sha256 | None (genjax.data.arrays registers its own)


def register_data_digest(digest_of) -> None:
  """Makes `digest_of(dataset name)` (a digest, or None for a dataset without one) part of
  every run's identity: `genjax.data.arrays` records the arrays registered in memory."""
  if digest_of not in _DATA_DIGESTS:
    _DATA_DIGESTS.append(digest_of)


def input_files(config, points: list[dict] | None = None) -> dict:
  """{setting: sha256} of the input files a config names (`cv.groups`), by content, and
  {"arrays:NAME": sha256} of the in-memory arrays its `data.name` (or a point's) names."""
  out = {}
  if config.cv.method == "group_kfold" and config.cv.groups and os.path.isfile(config.cv.groups):
    out["cv.groups"] = _sha256(config.cv.groups)
  names = [config.data.name] + [p["data.name"] for p in points or () if "data.name" in p]
  for name in dict.fromkeys(n for n in names if isinstance(n, str)):
    for digest_of in _DATA_DIGESTS:
      digest = digest_of(name)
      if digest:
        out[ARRAYS_KEY + name] = digest
  return out


def identity(kind: str, config, points: list[dict] | None = None,
             options: dict | None = None) -> dict:
  """What a rerun must equal to resume; `options`: flags that change the outputs (e.g. a
  sweep's --test_for_all_points)."""
  run = {"kind": kind, "config": config_dict(config),
         "points": json.loads(json.dumps(points or [])), "code": code_fingerprint(),
         "inputs": input_files(config, points)}
  if options:
    run["options"] = dict(options)
  return run


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
  if old.get("options", {}) != new.get("options", {}):
    a, b = old.get("options", {}), new.get("options", {})
    key = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))[0]
    return (f"its --{key} differs ({a.get(key, 'the default')} -> "
            f"{b.get(key, 'the default')})")
  if old.get("inputs") != new.get("inputs"):
    a, b = old.get("inputs", {}), new.get("inputs", {})
    changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    arrays = [k for k in changed if k.startswith(ARRAYS_KEY)]
    if arrays:
      short = lambda d: f"sha256 {d[:12]}…" if d else "not registered arrays"
      return (f"the arrays registered as {arrays[0][len(ARRAYS_KEY):]!r} differ from those it "
              f"trained on ({short(a.get(arrays[0]))} then, {short(b.get(arrays[0]))} now)")
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

