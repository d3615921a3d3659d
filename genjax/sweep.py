"""Sweeps: grids over config values, numeric axes vmapped, structural axes as processes.

    genjax sweep --config=experiments/FILE.py[:ARG] --workdir=DIR \\
        --sweep='penalties.l2.strength=0,1e-4,1e-3' --sweep='model.dropout=0,0.2,0.5'

Each `--sweep` is an axis; the grid is their cartesian product. `--zip` axes
advance together (all of the same length) and form one more axis of the
product. Values are comma lists of Python literals, or `logspace(a,b,n)`
(10^a..10^b), `linspace(a,b,n)`, `range(a,b[,step])`. A config file may define
`get_sweep()` (or `get_sweep(arg)`) returning a list of {key: value} points.

Numeric axes (`is_numeric`: learning rate, weight decay, penalty strengths,
dropout rate, label-noise fraction, and augmentation strengths written
`data.augment.OP.PARAM`, e.g. `data.augment.noise.std`) become members of one
compiled program — every point × every fold — with the value passed as a
per-member array (per-member labels for label noise): one compile for the whole
grid. Every point uses the same keys per fold as `genjax train` would, so a
point inside the sweep trains exactly as the point alone. Other (structural)
axes — model, width, optimizer, dataset... — run as separate `genjax sweep`
processes, up to `--parallel_jobs` at a time, each vmapped inside.

The workdir gets sweep.csv, sweep.md, sweep.tex (per point: validation mean ±
std over folds, test accuracy, generalization gap, best epoch, stop reasons),
metric-vs-hyperparameter plots with error bars, learning curves per point, and
TensorBoard event files per member under tensorboard/.
"""

from __future__ import annotations

import ast
import itertools
import os
import re
import subprocess
import sys
import time

import numpy as np

from genjax import distributed
from genjax.errors import ConfigError

NUMERIC_KEYS = re.compile(
    r"^(optimizer\.learning_rate|optimizer\.weight_decay|model\.dropout|penalties\.\w+\.strength)$")
LABEL_NOISE = "data.label_noise"
_RANGE = re.compile(r"^(logspace|linspace|range)\((.*)\)$")


def parse_values(text: str, key: str) -> list:
  """'0,1e-4' / 'logspace(-5,-2,4)' / 'linspace(0,0.5,3)' / 'range(1,4)' -> values."""
  text = text.strip()
  m = _RANGE.match(text)
  if m:
    try:
      args = [float(a) for a in m.group(2).split(",")]
    except ValueError:
      raise ConfigError(f"--sweep {key}: cannot read '{text}'; e.g. logspace(-5,-2,4)") from None
    fn = m.group(1)
    if not all(np.isfinite(a) for a in args):
      raise ConfigError(f"--sweep {key}: {fn} takes finite numbers, got '{text}'")
    if fn == "range":
      if not 1 <= len(args) <= 3 or not all(a.is_integer() for a in args):
        raise ConfigError(f"--sweep {key}: range takes 1 to 3 integers (start, stop[, step]), "
                          f"got '{text}'; e.g. range(0,4)")
      if len(args) == 3 and args[2] == 0:
        raise ConfigError(f"--sweep {key}: range step must not be 0, got '{text}'; "
                          "e.g. range(1,5,1)")
      return list(range(*[int(a) for a in args]))
    if len(args) != 3 or args[2] < 1 or not args[2].is_integer():
      raise ConfigError(f"--sweep {key}: {fn} takes (start, stop, count) with a whole count "
                        f">= 1, got '{text}'; e.g. {fn}(-5,-2,4)")
    values = np.linspace(args[0], args[1], int(args[2]))
    return [float(v) for v in (10.0 ** values if fn == "logspace" else values)]
  try:  # Python literals, tuples included: "0,1e-4" or "(32,),(64,64)"
    values = ast.literal_eval(f"[{text}]")
    if all(not isinstance(v, (list, dict, set)) for v in values):
      return values
  except (ValueError, SyntaxError):
    pass
  values = []
  for item in (text.split(",") if text else []):
    item = item.strip()
    if not item:
      continue
    try:
      values.append(ast.literal_eval(item))
    except (ValueError, SyntaxError):
      values.append(item)  # a bare word is a string, e.g. optimizer.name=adam,sgd
  return values


def _axis(flag: str) -> tuple[str, list]:
  if "=" not in flag:
    raise ConfigError(f"--sweep '{flag}' needs KEY=VALUES, e.g. --sweep='model.dropout=0,0.2'")
  key, text = flag.split("=", 1)
  key = key.strip().removeprefix("config.")
  values = parse_values(text, key)
  if not values:
    raise ConfigError(f"--sweep {key} has an empty value list; give at least one value")
  return key, values


def grid(product: list[str], zipped: list[str] = ()) -> list[dict]:
  """Points of the cartesian product of `product` axes and the `zipped` axis."""
  axes = [_axis(f) for f in product]
  keys = [k for k, _ in axes]
  if zipped:
    zaxes = [_axis(f) for f in zipped]
    lengths = {len(v) for _, v in zaxes}
    if len(lengths) > 1:
      raise ConfigError(f"--zip axes must have equal lengths, got {sorted(lengths)}; "
                        "give each --zip the same number of values")
    keys += [k for k, _ in zaxes]
    axes.append(("zip", list(zip(*[v for _, v in zaxes]))))
  if len(set(keys)) != len(keys):
    raise ConfigError(f"a key is swept twice in {keys}; give each key one axis")
  points = []
  for combo in itertools.product(*[v for _, v in axes]):
    point = {}
    for (key, _), value in zip(axes, combo):
      if key == "zip":
        point.update(zip([k for k, _ in zaxes], value))
      else:
        point[key] = value
    points.append(point)
  return points


def config_sweep(config_path: str) -> list[dict] | None:
  """The points of `get_sweep([arg])` in config file `config_path` ('FILE.py[:ARG]'),
  or None when it has none.

  The file is the module `genjax.config_file` already executed for --config (never
  executed twice); a get_sweep that raises, or returns anything but a list of
  {key: value} points, is a one-line ConfigError.
  """
  from genjax import config_file
  module = config_file.module_for(config_path)
  if not hasattr(module, "get_sweep"):
    return None
  _, arg = config_file.split_spec(config_path)
  points = config_file.optional_call(module, "get_sweep", arg)
  label = os.path.basename(module.__file__)
  example = "return [{'model.dropout': 0.0}, {'model.dropout': 0.2}]"
  if not isinstance(points, (list, tuple)):
    raise ConfigError(f"{label}: get_sweep() returned {type(points).__name__}, not a list of "
                      f"{{key: value}} points; {example}")
  result = []
  for i, point in enumerate(points):
    if hasattr(point, "to_dict"):  # an ml_collections.ConfigDict
      point = point.to_dict()
    if not isinstance(point, dict):
      raise ConfigError(f"{label}: get_sweep() point {i} is a {type(point).__name__} "
                        f"({point!r}), not a {{key: value}} dict; {example}")
    bad = [k for k in point if not isinstance(k, str) or not k]
    if bad:
      raise ConfigError(f"{label}: get_sweep() point {i} has key {bad[0]!r}, not a config key "
                        f"such as 'model.dropout'; {example}")
    result.append(dict(point))
  return result


def is_numeric(key: str) -> bool:
  """Whether sweep key `key` can vary across the members of one program."""
  if NUMERIC_KEYS.match(key) or key == LABEL_NOISE:
    return True
  if key.startswith("data.augment."):
    from genjax.data import augment
    parts = key.split(".")
    return (len(parts) == 4 and parts[2] in augment.known_ops()
            and augment.get_op(parts[2]).traceable(parts[3]))
  return False


def _set_augment(config, key: str, value) -> None:
  from genjax.data import augment
  name, param = augment.sweep_target(key, config.data.augment)
  default = augment.get_op(name).defaults[param]
  if isinstance(default, int) and isinstance(value, float) and value.is_integer():
    value = int(value)
  config.data.augment = augment.set_param(config.data.augment, name, param, value)


def apply_point(config, point: dict):
  """A copy of `config` with `point`'s values set; ConfigError for bad keys or types.

  `data.augment.OP.PARAM` sets a parameter of op OP in the `data.augment` spec.
  """
  config = config.copy_and_resolve_references()
  augment_keys = [k for k in point if k.startswith("data.augment.")]
  for key in augment_keys:
    if "data" not in config or "augment" not in config.data:
      raise ConfigError(f"sweep key '{key}' is not in the config; check it against "
                        "genjax/defaults.py")
  for key, value in point.items():
    if key in augment_keys:
      continue
    node = config
    parts = key.split(".")
    for part in parts[:-1]:
      if part not in node:
        raise ConfigError(f"sweep key '{key}' is not in the config; check it against "
                          "genjax/defaults.py")
      node = node[part]
    if parts[-1] not in node:
      raise ConfigError(f"sweep key '{key}' is not in the config; check it against "
                        "genjax/defaults.py")
    old = node[parts[-1]]
    if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
      value = float(value)
    if isinstance(old, tuple) and isinstance(value, list):
      value = tuple(value)
    try:
      node[parts[-1]] = value
    except TypeError:
      raise ConfigError(f"sweep value {value!r} for '{key}' has the wrong type: the config "
                        f"holds a {type(old).__name__}") from None
  for key in augment_keys:
    _set_augment(config, key, point[key])
  return config


def split(points: list[dict]) -> list[tuple[dict, list[dict]]]:
  """Groups points by their structural values: [(structural, [numeric points])]."""
  groups: dict = {}
  for p in points:
    structural = {k: v for k, v in p.items() if not is_numeric(k)}
    numeric = {k: float(v) for k, v in p.items() if is_numeric(k)}
    key = repr(sorted(structural.items()))
    groups.setdefault(key, (structural, []))[1].append(numeric)
  return list(groups.values())


def _short(key: str) -> str:
  parts = key.split(".")
  if key.endswith(".strength"):
    return parts[-2]
  return ".".join(parts[2:]) if key.startswith("data.augment.") else parts[-1]


def point_name(point: dict) -> str:
  return ",".join(f"{_short(k)}={v:g}"
                  if isinstance(v, float) else f"{_short(k)}={v}"
                  for k, v in point.items()) or "base"


def run(config, workdir: str, points: list[dict], *, config_file: str | None = None,
        parallel_jobs: int = 1, overwrite: bool = False, progress: bool = True) -> list[dict]:
  """Runs every point; writes the sweep tables and plots into `workdir`. Returns the rows.

  Every point and every structural group is checked before anything compiles. Structural
  groups run as `genjax sweep` processes, each given this `config` resolved (never the file's
  values again); `config_file` (the `--config` file, if any) is only imported by them, so
  that penalties or models it registers exist there too.
  """
  from genjax import sweep_run  # The training side (heavy imports).

  if not points:
    raise ConfigError("the sweep has no points; pass --sweep=KEY=VALUES or define get_sweep()")
  if isinstance(parallel_jobs, bool) or not isinstance(parallel_jobs, int) or parallel_jobs < 1:
    raise ConfigError(f"--parallel_jobs={parallel_jobs!r} must be an integer >= 1 (structural "
                      "groups run at once), e.g. --parallel_jobs=2")
  points = [{k: _plain(v) for k, v in p.items()} for p in points]
  for p in points:
    apply_point(config, p)        # every key and type checked before anything runs
  groups = split(points)
  if len(groups) > 1 and distributed.process().count > 1:
    raise ConfigError(f"a multi-host sweep runs one structural group, this one has {len(groups)} "
                      f"({', '.join(point_name(g[0]) for g in groups)}); launch one multi-host "
                      "job per structural value, or sweep only numeric keys")
  if len(groups) == 1:
    structural, numeric = groups[0]
    return sweep_run.run_group(apply_point(config, structural), workdir, numeric,
                               structural=structural, overwrite=overwrite, progress=progress,
                               points=points)
  for i, (structural, numeric) in enumerate(groups):   # every group checked before any runs
    _resolved_text(apply_point(config, structural))
    sweep_run.plan_group(apply_point(config, structural), _group_dir(workdir, i), numeric)
  outputs = sweep_run.OUTPUTS + tuple(
      name for i in range(len(groups)) for name in (f"group{i:02d}", f"group{i:02d}.log",
                                                     f"group{i:02d}.config"))
  from genjax.train import loop
  with loop.claim_workdir(workdir, config, kind="sweep", points=points, outputs=outputs,
                          overwrite=overwrite) as claim:
    done = loop.completed(claim, "sweep.json")
    if done is not None:
      return done["rows"]
    t_start = time.time()
    rows = _run_processes(config, groups, workdir, config_file, parallel_jobs)
    sweep_run.write_outputs(workdir, rows)
    from genjax import report
    from genjax import run_identity
    report.write_json(os.path.join(workdir, "sweep.json"),
                      {"rows": rows, "wall_time_s": time.time() - t_start,
                       "groups": len(groups), "provenance": run_identity.provenance(config)})
  return rows


def _plain(value):
  """numpy scalars (and tuples of them) as Python values: JSON-able, repr-able records."""
  if isinstance(value, (list, tuple)):
    return tuple(_plain(v) for v in value)
  if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
    return value.item()
  if not isinstance(value, (bool, int, float, str)) and value is not None:
    raise ConfigError(f"sweep value {value!r} is a {type(value).__name__}; give numbers, "
                      "strings, booleans or tuples of them")
  return value


def _group_dir(workdir: str, i: int) -> str:
  return os.path.join(workdir, f"group{i:02d}")


def _zip_points(numeric: list[dict]) -> str:
  """--zip_points for a group process: 'k=v,k=v;k=v,...' ('' = the config as its one point)."""
  keys = sorted(numeric[0]) if numeric and numeric[0] else []
  return ";".join(",".join(f"{k}={p[k]!r}" for k in keys) for p in numeric) if keys else ""


def _resolved_text(config) -> str:
  """The config as a Python literal a group process reads back (`ast.literal_eval`)."""
  text = repr(config.to_dict())
  try:
    ast.literal_eval(text)
  except (ValueError, SyntaxError):
    raise ConfigError("the config holds a value that is not a plain number, string, boolean "
                      "or tuple (e.g. a numpy scalar), which a structural sweep cannot pass to "
                      "its group processes; use Python values in get_config()") from None
  return text


def _inherited_flags() -> list[str]:
  """The parent's --compilation_cache_dir and -v, for its group processes."""
  from absl import flags
  out = []
  for name in ("compilation_cache_dir", "verbosity"):
    if name in flags.FLAGS and flags.FLAGS[name].present:
      out.append(flags.FLAGS[name].serialize())
  return out


def _die_with_parent() -> None:
  """Group processes get SIGTERM when the sweep process dies (Linux), leaving no orphan."""
  try:
    import ctypes
    import signal
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
  except (OSError, AttributeError):
    pass


def _last_error(log_path: str) -> str:
  try:
    with open(log_path) as f:
      lines = [line.strip() for line in f if line.strip()]
  except OSError:
    return ""
  errors = [line for line in lines if line.startswith("genjax: error:")]
  return (errors or lines or [""])[-1].removeprefix("genjax: error: ")


def _run_processes(config, groups, workdir, config_file, parallel_jobs) -> list[dict]:
  """One `genjax sweep` process per structural group, `parallel_jobs` at a time."""
  from genjax import sweep_run

  pending, running, rows = list(enumerate(groups)), [], {}
  try:
    while pending or running:
      while pending and len(running) < parallel_jobs:
        i, (structural, numeric) = pending.pop(0)
        sub = _group_dir(workdir, i)
        resolved = os.path.join(workdir, f"group{i:02d}.config")
        with open(resolved, "w") as f:   # the group's config, resolved here: never re-read
          f.write(_resolved_text(apply_point(config, structural)) + "\n")
        args = [sys.executable, "-m", "genjax.main", "sweep",
                *([f"--config={config_file}"] if config_file else []),
                f"--resolved_config={resolved}", f"--workdir={sub}", "--progress=false",
                f"--zip_points={_zip_points(numeric)}", *_inherited_flags()]
        log = open(os.path.join(workdir, f"group{i:02d}.log"), "a")   # a resume appends
        running.append((i, structural, subprocess.Popen(
            args, stdout=log, stderr=log, preexec_fn=_die_with_parent), log))
        print(f"sweep: started group {i} ({point_name(structural)}) in {sub}", flush=True)
      time.sleep(0.2)
      for item in list(running):
        i, structural, proc, log = item
        if proc.poll() is None:
          continue
        running.remove(item)
        log.close()
        if proc.returncode != 0:
          path = os.path.join(workdir, f"group{i:02d}.log")
          raise ConfigError(f"sweep group {i} ({point_name(structural)}) failed with status "
                            f"{proc.returncode}: {_last_error(path)} (log: {path})")
        rows[i] = []
        for row in sweep_run.read_rows(_group_dir(workdir, i)):
          row["point"] = {**structural, **row["point"]}
          row["name"] = point_name(row["point"])
          rows[i].append(row)
  finally:
    for _, _, other, other_log in running:   # stop the rest: nothing left orphaned
      other.terminate()
      other.wait()
      other_log.close()
  return [row for i in sorted(rows) for row in rows[i]]  # in the order the points were given
