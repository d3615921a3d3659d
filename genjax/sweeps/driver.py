"""The sweep driver: grids over config values, numeric axes vmapped, structural axes as processes.

    genjax sweep --config=experiments/FILE.py[:ARG] --workdir=DIR \\
        --sweep='penalties.l2.strength=0,1e-4,1e-3' --sweep='model.dropout=0,0.2,0.5'

Each `--sweep` is an axis; the grid is their cartesian product. `--zip` axes
advance together (all of the same length) and form one more axis of the
product. Values are comma lists of Python literals, or `logspace(a,b,n)`
(10^a..10^b), `linspace(a,b,n)`, `range(a,b[,step])`. A config file may define
`get_sweep()` (or `get_sweep(arg)`) returning a list of {key: value} points; `--sweep` /
`--zip` flags on such a file multiply its points (every get_sweep point × every flag
combination; a flag key may not be a get_sweep key). A point lists only its own keys
(`{"name": "l2", "penalties.l2.strength": 1e-3}`): a key it leaves out that another point
sets takes the config's value (`sweep_grid.complete`). A grid of over
`sweep_grid.MAX_POINTS` points is refused before it is built.

Numeric axes (the keys of `genjax.train.hparams.TABLE`: learning rate, weight decay, penalty
strengths, dropout rate, label-noise fraction, augmentation parameters
`data.augment.OP.PARAM`) become members of one
compiled program — every point × every fold — with the value passed as a
per-member array (per-member labels for label noise): one compile for the whole
grid. Every point uses the same keys per fold as `genjax train` would, so a
point inside the sweep trains exactly as the point alone. Other (structural)
axes — model, width, optimizer, dataset... — run as separate `genjax sweep`
processes, each vmapped inside, started by a launcher (`genjax.sweeps.launch`):
`--launcher=local` (default) runs them here, up to `--parallel_jobs` at a time;
`--launcher=submitit_local` runs them as submitit jobs on this machine (the cluster path,
to check a cluster sweep) and `--launcher=slurm` as one SLURM job each (`--slurm_*`
resources; `--slurm_nodes=N` makes each group a multi-host run). A job sweep waits for
its jobs, or returns at once with `--detach`; rerunning the same command collects, and
resubmits only the groups that did not finish. The parent aggregates every group's rows.

The workdir gets sweep.csv, sweep.md, sweep.tex (per point: validation mean ±
std over folds, test accuracy, generalization gap, best epoch, stop reasons),
metric-vs-hyperparameter plots with error bars, learning curves per point, and
TensorBoard event files per member under tensorboard/.
"""

from __future__ import annotations

import time

from genjax.platform import distributed
from genjax.sweeps import cluster as sweep_jobs, compare as sweep_compare, launch as sweep_launch, nested as nested_cv
from genjax.workdir import identity as run_identity
from genjax.sweeps import group as sweep_run, select as sweep_select, stats as sweep_stats
from genjax.workdir import claims as wd
from genjax.config import defaults
from genjax.errors import ConfigError
from genjax.optim import optimizers as optim
from genjax.sweeps import points as sweep_grid, pruning as sweep_pruning, sampling as sweep_sampling
from genjax.sweeps.points import (_plain, apply_point, check_unique, config_sweep,  # noqa: F401
                               grid, is_numeric, label, named, parse_values, point_name, split,
                               without_seed)


def run(config, workdir: str, points: list[dict], *, config_file: str | None = None,
        parallel_jobs: int | None = None, overwrite: bool = False, progress: bool = True,
        baseline: str | None = None, select: bool = True,
        test_for_all_points: bool = False, launcher: str = "local",
        slurm: dict | None = None, detach: bool = False,
        search: dict | None = None, p_adjust: str = "holm") -> list[dict] | None:
  """Runs every point; writes the sweep tables and plots into `workdir`. Returns the rows, or
  None when `detach` left group jobs running (rerun to collect).

  Every point and every structural group is checked before anything compiles. Structural
  groups run as `genjax sweep` processes, each given this `config` resolved (never the file's
  values again); `config_file` (the `--config` file, if any) is only imported by them, so
  that penalties or models it registers exist there too. `launcher`, `slurm` (the --slurm_*
  options given), `detach` and `parallel_jobs` (default: 1 locally, all groups as jobs) say
  where they run (`sweep_launch`); they are no part of the run's identity. With a job launcher
  a single structural group runs as one job too. `baseline` (a point's name, seeds
  aside; default the first) is what `sweep_compare.md` tests every other point against, the
  p-values adjusted together by `p_adjust` ("holm", "bh" or "none"; `stats.adjust_p`).
  A point may carry a display name under `sweep_grid.NAME_KEY` ('name'). The test split
  is reported for the selected point only (selected.json) unless `test_for_all_points`.

  `points` is a list of {key: value} dicts (anything else: ConfigError). A point lists only
  its own keys: a key another point sets takes the config's value where it is left out
  (`sweep_grid.complete`), so every point means one config. `points` made by
  `sweep_grid.grid` (the `--sweep`/`--zip` flags) on a `config_file` with `get_sweep()`
  multiply its points (`sweep_grid.combine`); any other list (the Python API's, a group
  process's) is run as given: `genjax.sweep(config, points)` never reads a get_sweep.
  Points that print alike get names with more digits (`sweep_grid.distinct_labels`).
  Sampled points (`genjax.sweeps.sampling.Samples`: `--sample`, or `sampling.sample` from
  Python) run as any others; sweep.json records how they were drawn ("sampling"), and the
  workdir gets sweep_sampled.png and sweep_best_so_far.png (`sample_plots`).
  `search` (`sweep_pruning.spec`: successive halving or Hyperband, None for a grid) prunes
  points inside the one program (`genjax.sweeps.pruning`), checked before anything runs.
  """
  sampled = points.record() if isinstance(points, sweep_sampling.Samples) else None
  launch = sweep_launch.check(launcher, slurm, detach=detach, parallel_jobs=parallel_jobs)
  if p_adjust not in sweep_stats.P_ADJUST:
    raise ConfigError(f"--p_adjust={p_adjust!r} is not a p-value adjustment; use one of "
                      f"{', '.join(sweep_stats.P_ADJUST)} (holm: family-wise error, bh: false "
                      "discovery rate)")
  recorded, labels, groups = _resolve(config, points, config_file, baseline)
  sweep_launch.check_sweep(launch, config, groups)
  nested = "cv" in config and bool(config.cv.get("outer_folds"))
  sweep_pruning.check(search, config, groups,
                      list(dict.fromkeys(label(without_seed({**structural, **p}), labels)
                                         for structural, numeric in groups for p in numeric)),
                      nested=nested, cluster=launch.launcher.cluster is not None,
                      processes=distributed.process().count)
  if "cv" in config and config.cv.get("outer_folds"):
    return _nested(config, workdir, groups, recorded, labels, baseline=baseline,
                   test_for_all_points=test_for_all_points, p_adjust=p_adjust, overwrite=overwrite,
                   progress=progress)
  if len(groups) > 1 and distributed.process().count > 1:
    raise ConfigError(f"a multi-host sweep runs one structural group, this one has {len(groups)} "
                      f"({', '.join(point_name(g[0]) for g in groups)}); launch one multi-host "
                      "job per structural value, or sweep only numeric keys")
  if overwrite:
    sweep_jobs.check_no_live_jobs(workdir, "--overwrite is refused",
                                  "wait for it to end or cancel it, then rerun")
  elif launch.launcher.cluster is None:
    sweep_jobs.check_no_live_jobs(workdir, f"--launcher={launch.launcher.name} is refused",
                                  "rerun with the launcher that submitted it to wait for it "
                                  "and collect, or wait for it to end")
  if len(groups) == 1 and launch.launcher.cluster is None:
    structural, numeric = groups[0]
    return sweep_run.run_group(apply_point(config, structural), workdir, numeric,
                               structural=structural, overwrite=overwrite, progress=progress,
                               points=recorded, baseline=baseline, select=select,
                               labels=labels, test_for_all_points=test_for_all_points,
                               sampling=sampled, search=search, p_adjust=p_adjust)
  return _run_structural(config, workdir, groups, recorded, labels, launch, config_file,
                         overwrite=overwrite, baseline=baseline, p_adjust=p_adjust,
                         test_for_all_points=test_for_all_points, sampling=sampled)


def run_one_group(config, workdir: str, points: list[dict], *, overwrite: bool = False,
                  progress: bool = False, names: list[str] | None = None) -> list[dict]:
  """A structural group's process: its resolved config and exactly its numeric points (from
  its group file, `sweep_launch.read_group`), each applied to the config and checked once,
  trained as one program in `workdir`; its parent selects and reports (`select=False`)."""
  recorded, labels, groups = _resolve(config, points, None, None)
  if len(groups) != 1 or groups[0][0]:
    raise ConfigError(f"a sweep group's points must all be numeric, got {points!r:.200}; "
                      "rerun the sweep that wrote the group file")
  return sweep_run.run_group(config, workdir, groups[0][1], structural={}, overwrite=overwrite,
                             progress=progress, points=recorded, baseline=None, select=False,
                             labels=labels, test_for_all_points=False, run_names=names)


def _check_point(config, point: dict) -> None:
  """ConfigError when `point`'s config is invalid, or a key it sweeps is one its optimizer
  never reads (a swept value that would change nothing)."""
  defaults.validate(config)
  if "optimizer.weight_decay" in point:
    opt = optim.OPTIMIZERS.get(config.optimizer.name)
    if not opt.decoupled_weight_decay:
      raise ConfigError("sweep: " + optim.not_read_message(config.optimizer.name,
                                                          "a swept optimizer.weight_decay"))


def _resolve(config, points, config_file, baseline):
  """(recorded points, labels, groups): the points checked, completed from the config (a
  `--sweep`/`--zip` grid multiplies a config file's get_sweep()), named, every key applied
  to the config once, split into structural groups."""
  flags = isinstance(points, sweep_grid.Grid)
  points = sweep_grid.check_points(points)
  if flags and config_file:
    from_file = config_sweep(config_file)
    if from_file:
      points = sweep_grid.combine(from_file, points)
  if not points:
    raise ConfigError("the sweep has no points; pass --sweep=KEY=VALUES or define get_sweep()")
  if len(points) > sweep_grid.MAX_POINTS:
    raise sweep_grid._too_many("the sweep", len(points))
  recorded = sweep_grid.complete(config, [{k: _plain(v) for k, v in p.items()} for p in points])
  points, labels = named(recorded)
  check_unique(points)
  for p in points:               # every key, type and value checked before anything runs
    _check_point(apply_point(config, p), p)
  labels = sweep_grid.distinct_labels(points, labels)
  sweep_compare.check_baseline(baseline, list(dict.fromkeys(label(p, labels) for p in points)))
  if not ("cv" in config and config.cv.get("outer_folds")):   # nested CV compares otherwise
    sweep_compare.check_paired([label(p, labels) for p in points],
                               [apply_point(config, p) for p in points], baseline)
  return recorded, labels, split(points)


def _run_structural(config, workdir, groups, recorded, labels, launch, config_file, *,
                    overwrite, baseline, test_for_all_points, sampling=None, p_adjust="holm"):
  """Several structural groups (or one as a cluster job): each group planned and checked
  before any runs, then run through the launcher and collected into the sweep's tables."""
  for i, (structural, numeric) in enumerate(groups):   # every group checked before any runs
    sweep_launch.resolved_text(apply_point(config, structural))
    sweep_run.plan_group(apply_point(config, structural), sweep_launch.group_dir(workdir, i),
                         numeric, here=launch.launcher.name != "slurm")
  outputs = sweep_run.OUTPUTS + sweep_select.OUTPUTS + sweep_jobs.OUTPUTS + (
      config.checkpoint.subdir + "_refit",) + tuple(
      name for i in range(len(groups)) for name in (f"group{i:02d}", f"group{i:02d}.log",
                                                     f"group{i:02d}.config"))
  with wd.claim_workdir(workdir, config, kind="sweep", points=recorded, outputs=outputs,
                        overwrite=overwrite,
                        options=sweep_run.options(test_for_all_points, None, baseline,
                                                  p_adjust)) as claim:
    done = wd.completed(claim, "sweep.json")
    if done is not None:
      return done["rows"]
    t_start = time.time()
    names = [[label({**structural, **p}, labels) for p in numeric]
             for structural, numeric in groups]
    collected = _run_groups(launch, config, groups, workdir, config_file, names)
    if collected is None:
      return None   # detached: the group jobs run on
    rows, members = collected
    return sweep_run.finish(
        config, workdir, rows, members, baseline=baseline, select=True, labels=labels,
        test_for_all_points=test_for_all_points, resume=claim.resume, progress=False,
        sampling=sampling, p_adjust=p_adjust,
        record={"wall_time_s": time.time() - t_start, "groups": len(groups),
                "provenance": run_identity.provenance(config)})


def _run_groups(launch, config, groups, workdir, config_file, names=None):
  """Every group through `launch`'s launcher: (rows, members), or None when detached.
  `names`: per group, its points' display names (the group processes' TensorBoard runs)."""
  if launch.launcher.cluster is None:
    sweep_launch.run_processes(config, groups, workdir, config_file, launch.parallel_jobs or 1,
                               names)
    return sweep_launch.collect(workdir, groups, config)
  return sweep_jobs.run(launch, config, groups, workdir, config_file, names)


def _nested(config, workdir, groups, recorded, labels, *, baseline, test_for_all_points,
            overwrite, progress, p_adjust="holm"):
  """Nested CV (`genjax.sweeps.nested`) of one structural group's points."""
  if len(groups) > 1:
    raise ConfigError(f"nested CV (cv.outer_folds) selects among the numeric points of one "
                      f"program; this sweep has {len(groups)} structural groups "
                      f"({', '.join(point_name(g[0]) for g in groups)}): run one nested sweep "
                      "per structural value")
  if distributed.process().count > 1:
    raise ConfigError("nested CV (cv.outer_folds) runs in one process; drop --distributed "
                      "or cv.outer_folds")
  for flag, given in (("--baseline", baseline), ("--test_for_all_points", test_for_all_points),
                      ("--p_adjust", p_adjust != "holm")):
    if given:
      raise ConfigError(f"{flag} does not apply to nested CV (cv.outer_folds), which reports "
                        "each outer fold's selection and never uses the test split; drop it")
  structural, numeric = groups[0]
  return nested_cv.run(apply_point(config, structural), workdir, numeric, recorded=recorded,
                       names=labels, overwrite=overwrite, progress=progress)
