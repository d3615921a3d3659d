"""The sweep driver: grids over config values, numeric axes vmapped, structural axes as processes.

    genjax sweep --config=experiments/FILE.py[:ARG] --workdir=DIR \\
        --sweep='penalties.l2.strength=0,1e-4,1e-3' --sweep='model.dropout=0,0.2,0.5'

Each `--sweep` is an axis; the grid is their cartesian product. `--zip` axes
advance together (all of the same length) and form one more axis of the
product. Values are comma lists of Python literals, or `logspace(a,b,n)`
(10^a..10^b), `linspace(a,b,n)`, `range(a,b[,step])`. A config file may define
`get_sweep()` (or `get_sweep(arg)`) returning a list of {key: value} points.

Numeric axes (the keys of `genjax.hparams.TABLE`: learning rate, weight decay, penalty
strengths, dropout rate, label-noise fraction, augmentation parameters
`data.augment.OP.PARAM`) become members of one
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
import os
import subprocess
import sys
import time

from genjax import distributed, nested_cv, run_identity, sweep_compare, sweep_run, sweep_select
from genjax import workdir as wd
from genjax.errors import ConfigError
from genjax.sweep_grid import (_plain, apply_point, check_unique, config_sweep,  # noqa: F401
                               grid, is_numeric, label, named, parse_values, point_name, split,
                               without_seed)


def run(config, workdir: str, points: list[dict], *, config_file: str | None = None,
        parallel_jobs: int = 1, overwrite: bool = False, progress: bool = True,
        baseline: str | None = None, select: bool = True,
        test_for_all_points: bool = False) -> list[dict]:
  """Runs every point; writes the sweep tables and plots into `workdir`. Returns the rows.

  Every point and every structural group is checked before anything compiles. Structural
  groups run as `genjax sweep` processes, each given this `config` resolved (never the file's
  values again); `config_file` (the `--config` file, if any) is only imported by them, so
  that penalties or models it registers exist there too. `baseline` (a point's name, seeds
  aside; default the first) is what `sweep_compare.md` tests every other point against.
  A point may carry a display name under `sweep_grid.NAME_KEY` ('name'). The test split
  is reported for the selected point only (selected.json) unless `test_for_all_points`.
  """
  if not points:
    raise ConfigError("the sweep has no points; pass --sweep=KEY=VALUES or define get_sweep()")
  if isinstance(parallel_jobs, bool) or not isinstance(parallel_jobs, int) or parallel_jobs < 1:
    raise ConfigError(f"--parallel_jobs={parallel_jobs!r} must be an integer >= 1 (structural "
                      "groups run at once), e.g. --parallel_jobs=2")
  recorded = [{k: _plain(v) for k, v in p.items()} for p in points]
  points, labels = named(recorded)
  check_unique(points)
  for p in points:
    apply_point(config, p)        # every key and type checked before anything runs
  sweep_compare.check_baseline(baseline, list(dict.fromkeys(label(p, labels) for p in points)))
  groups = split(points)
  if "cv" in config and config.cv.get("outer_folds"):
    return _nested(config, workdir, groups, recorded, labels, baseline=baseline,
                   test_for_all_points=test_for_all_points, overwrite=overwrite,
                   progress=progress)
  if len(groups) > 1 and distributed.process().count > 1:
    raise ConfigError(f"a multi-host sweep runs one structural group, this one has {len(groups)} "
                      f"({', '.join(point_name(g[0]) for g in groups)}); launch one multi-host "
                      "job per structural value, or sweep only numeric keys")
  if len(groups) == 1:
    structural, numeric = groups[0]
    return sweep_run.run_group(apply_point(config, structural), workdir, numeric,
                               structural=structural, overwrite=overwrite, progress=progress,
                               points=recorded, baseline=baseline, select=select,
                               labels=labels, test_for_all_points=test_for_all_points)
  for i, (structural, numeric) in enumerate(groups):   # every group checked before any runs
    _resolved_text(apply_point(config, structural))
    sweep_run.plan_group(apply_point(config, structural), _group_dir(workdir, i), numeric)
  outputs = sweep_run.OUTPUTS + sweep_select.OUTPUTS + (
      config.checkpoint.subdir + "_refit",) + tuple(
      name for i in range(len(groups)) for name in (f"group{i:02d}", f"group{i:02d}.log",
                                                     f"group{i:02d}.config"))
  with wd.claim_workdir(workdir, config, kind="sweep", points=recorded, outputs=outputs,
                        overwrite=overwrite,
                        options=sweep_run.options(test_for_all_points)) as claim:
    done = wd.completed(claim, "sweep.json")
    if done is not None:
      return done["rows"]
    t_start = time.time()
    rows, members = _run_processes(config, groups, workdir, config_file, parallel_jobs)
    return sweep_run.finish(
        config, workdir, rows, members, baseline=baseline, select=True, labels=labels,
        test_for_all_points=test_for_all_points, resume=claim.resume, progress=False,
        record={"wall_time_s": time.time() - t_start, "groups": len(groups),
                "provenance": run_identity.provenance(config)})


def _nested(config, workdir, groups, recorded, labels, *, baseline, test_for_all_points,
            overwrite, progress):
  """Nested CV (`genjax.nested_cv`) of one structural group's points."""
  if len(groups) > 1:
    raise ConfigError(f"nested CV (cv.outer_folds) selects among the numeric points of one "
                      f"program; this sweep has {len(groups)} structural groups "
                      f"({', '.join(point_name(g[0]) for g in groups)}): run one nested sweep "
                      "per structural value")
  if distributed.process().count > 1:
    raise ConfigError("nested CV (cv.outer_folds) runs in one process; drop --distributed "
                      "or cv.outer_folds")
  for flag, given in (("--baseline", baseline), ("--test_for_all_points", test_for_all_points)):
    if given:
      raise ConfigError(f"{flag} does not apply to nested CV (cv.outer_folds), which reports "
                        "each outer fold's selection and never uses the test split; drop it")
  structural, numeric = groups[0]
  return nested_cv.run(apply_point(config, structural), workdir, numeric, recorded=recorded,
                       names=labels, overwrite=overwrite, progress=progress)


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


def _run_processes(config, groups, workdir, config_file, parallel_jobs):
  """One `genjax sweep` process per structural group, `parallel_jobs` at a time: (rows,
  members) of every group, in the order the points were given."""
  pending, running, rows, members = list(enumerate(groups)), [], {}, {}
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
        members[i] = []
        for member in sweep_run.read_members(_group_dir(workdir, i)):
          member["values"] = {**structural, **member["values"]}
          member["point"] = point_name(member["values"])
          members[i].append(member)
  finally:
    for _, _, other, other_log in running:   # stop the rest: nothing left orphaned
      other.terminate()
      other.wait()
      other_log.close()
  return ([row for i in sorted(rows) for row in rows[i]],
          [member for i in sorted(members) for member in members[i]])
