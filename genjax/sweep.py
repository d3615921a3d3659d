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
import importlib.util
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
    if fn == "range":
      return [int(v) for v in range(*[int(a) for a in args])]
    if len(args) != 3 or args[2] < 1:
      raise ConfigError(f"--sweep {key}: {fn} takes (start, stop, count), got '{text}'")
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
  """The points of `get_sweep([arg])` in a config file, or None when it has none."""
  path, _, arg = config_path.partition(":")
  spec = importlib.util.spec_from_file_location("genjax_sweep_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, "get_sweep"):
    return None
  points = module.get_sweep(arg) if arg else module.get_sweep()
  return [dict(p) for p in points]


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


def run(config, workdir: str, points: list[dict], *, base_args: list[str],
        parallel_jobs: int = 1, overwrite: bool = False, progress: bool = True) -> list[dict]:
  """Runs every point; writes the sweep tables and plots into `workdir`. Returns the rows."""
  from genjax import sweep_run  # The training side (heavy imports).

  if not points:
    raise ConfigError("the sweep has no points; pass --sweep=KEY=VALUES or define get_sweep()")
  for p in points:
    apply_point(config, p)        # every key and type checked before anything runs
  groups = split(points)
  if len(groups) > 1 and distributed.process().count > 1:
    raise ConfigError(f"a multi-host sweep runs one structural group, this one has {len(groups)} "
                      f"({', '.join(point_name(g[0]) for g in groups)}); launch one multi-host "
                      "job per structural value, or sweep only numeric keys")
  if len(groups) == 1:
    structural, numeric = groups[0]
    rows = sweep_run.run_group(apply_point(config, structural), workdir, numeric,
                               structural=structural, overwrite=overwrite, progress=progress)
  else:
    rows = _run_processes(groups, workdir, base_args, parallel_jobs, overwrite)
  sweep_run.write_outputs(workdir, rows)
  return rows


def _run_processes(groups, workdir, base_args, parallel_jobs, overwrite) -> list[dict]:
  """One `genjax sweep` process per structural group, `parallel_jobs` at a time."""
  from genjax import sweep_run

  os.makedirs(workdir, exist_ok=True)
  pending, running, rows = list(enumerate(groups)), [], {}
  while pending or running:
    while pending and len(running) < max(parallel_jobs, 1):
      i, (structural, numeric) = pending.pop(0)
      sub = os.path.join(workdir, f"group{i:02d}")
      args = [sys.executable, "-m", "genjax.main", "sweep", *base_args, f"--workdir={sub}",
              "--progress=false", *(["--overwrite"] if overwrite else []),
              *[f"--config.{k}={v}" for k, v in structural.items()]]
      keys = sorted(numeric[0]) if numeric and numeric[0] else []
      args.append("--zip_points=" + ";".join(      # '' = the group's config as its one point
          ",".join(f"{k}={p[k]!r}" for k in keys) for p in numeric) if keys else "--zip_points=")
      log = open(os.path.join(workdir, f"group{i:02d}.log"), "w")
      running.append((i, structural, sub, subprocess.Popen(args, stdout=log, stderr=log), log))
      print(f"sweep: started group {i} ({point_name(structural)}) in {sub}", flush=True)
    time.sleep(0.2)
    for item in list(running):
      i, structural, sub, proc, log = item
      if proc.poll() is None:
        continue
      running.remove(item)
      log.close()
      if proc.returncode != 0:
        for _, _, _, other, other_log in running:   # stop the rest: nothing left orphaned
          other.kill()
          other.wait()
          other_log.close()
        raise ConfigError(f"sweep group {i} ({point_name(structural)}) failed with status "
                          f"{proc.returncode}; see {os.path.join(workdir, f'group{i:02d}.log')}")
      rows[i] = []
      for row in sweep_run.read_rows(sub):
        row["point"] = {**structural, **row["point"]}
        row["name"] = point_name(row["point"])
        rows[i].append(row)
  return [row for i in sorted(rows) for row in rows[i]]  # in the order the points were given
