"""The Python API: what the CLI does, from a notebook or a script.

    import genjax
    config = genjax.load_config("experiments/mnist1d_kfold.py",
                                overrides=["num_epochs=20", "cv.refit=False"])
    run = genjax.fit(config)                  # in memory: no files; or workdir="runs/cv"
    run.results["cv"]["val_accuracy"]         # results.json's content
    run.history["val_loss"]                   # (members, epochs), NaN after a member stopped
    run.predict(x)                            # raw inputs -> logits (members, N, classes)
    run.predict(x, ensemble=True)             # log of the members' mean probabilities
    run.evaluate("test")                      # per member: {"loss": (M,), "accuracy": (M,)}
    rows = genjax.sweep(config, [{"name": "none", "model.dropout": 0.0},
                                 {"name": "dropout", "model.dropout": 0.2}],
                        workdir="runs/grid")   # rows[1]["name"] == "dropout"
    best = genjax.load_run("runs/grid")       # the selected point's members, as a Run
    other = genjax.load_run("runs/grid", point="none")
    points = genjax.sample_points({"optimizer.learning_rate": "loguniform(1e-4,1e-1)"},
                                  samples=16, sampler="sobol", seed=0)
    rows = genjax.sweep(config, points, workdir="runs/sampled")   # + the sampled plots
    run = genjax.load_run("runs/cv")          # a finished run's models, with standardization

`fit` and `sweep` are the drivers the CLI runs (`genjax train`, `genjax sweep`), with the same
checks (ConfigError, one line, before anything compiles), the same workdir rules (resume only
the identical run, `overwrite=True` to replace it) and the same numbers.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from genjax.run import driver, setup as experiment
from genjax.workdir import paths, record
from genjax.sweeps import driver as sweep_driver, pruning as sweep_pruning, sampling as sweep_sampling
from genjax.errors import ConfigError
from genjax.train import hparams
from genjax.train.members import MemberPlan
from genjax.train.program import Program, build_program


def load_config(spec: str | None = None, overrides: list[str] | tuple[str, ...] = ()):
  """The config of `spec` ('FILE.py' or 'FILE.py:ARG'; None = genjax's defaults) with
  `overrides` applied as the CLI applies `--config.` flags: the strings without the prefix,
  e.g. "num_epochs=2", "model.widths=(64,64)", "cv.refit=False". ConfigError (one line) for a
  bad file, key or value."""
  from genjax.config import defaults, files as config_file, overrides as overrides_lib
  if isinstance(overrides, str):   # one override, e.g. "num_epochs=2"
    overrides = [overrides]
  if (not isinstance(overrides, (list, tuple))
      or not all(isinstance(o, str) for o in overrides)):
    raise ConfigError(f"load_config: overrides must be a list of 'KEY=VALUE' strings, got "
                      f"{type(overrides).__name__} {overrides!r}; e.g. "
                      "overrides=['num_epochs=2']")
  if spec is not None and not isinstance(spec, (str, os.PathLike)):
    raise ConfigError(f"load_config: spec must be a path 'FILE.py[:ARG]' (or None for the "
                      f"defaults), got {type(spec).__name__} {spec!r}")
  config = (defaults.get_config() if spec is None
            else config_file.load(os.path.expanduser(os.fspath(spec)))[0])
  return overrides_lib.apply(config, list(overrides)) if overrides else config


def _check_config(config, what: str) -> None:
  """ConfigError unless `config` is a ConfigDict with every top-level key of the defaults."""
  if not isinstance(config, ml_collections.ConfigDict):
    raise ConfigError(f"{what}: config must be an ml_collections.ConfigDict, got "
                      f"{type(config).__name__}; build it with genjax.load_config(...) (or "
                      "ml_collections.ConfigDict(d) of a complete config)")
  from genjax.config import defaults
  missing = [k for k in defaults.get_config() if k not in config]
  if missing:
    raise ConfigError(f"{what}: the config has no {', '.join('config.' + k for k in missing)}"
                      "; build it from genjax.load_config() and change what you need")


def _workdir(workdir, what: str, *, optional: bool = False) -> str | None:
  """`workdir` as an absolute path (~ expanded); ConfigError for a non-path."""
  if workdir is None and optional:
    return None
  if not isinstance(workdir, (str, os.PathLike)) or not os.fspath(workdir):
    raise ConfigError(f"{what}: workdir must be a directory path (str or os.PathLike), got "
                      f"{type(workdir).__name__} {workdir!r}; e.g. workdir='runs/my_run'")
  return paths.workdir_path(os.fspath(workdir), "workdir")


@dataclasses.dataclass
class Run:
  """A trained run: its members' selected models (see the module docstring).

  `params` and the plans' arrays have the member axis first; member k is `member_names[k]`
  (fold k, or "run" for a hold-out run; a sweep point's "POINT[/seedS]/foldK", `load_run`).
  `history[name]` is (M, epochs_run), NaN where a member did not train (it had stopped).
  `results`: results.json's content; of a sweep's point, its rows and member results as
  sweep.json holds them and the sweep's selection.
  """
  config: Any
  results: dict
  workdir: str | None
  member_names: list[str]
  plans: list[MemberPlan]
  params: Any
  mean: np.ndarray            # (M, *input_shape) standardization, from each member's training part
  std: np.ndarray
  history: dict[str, np.ndarray]
  _setup: experiment.Setup = dataclasses.field(repr=False)
  _program: Program = dataclasses.field(repr=False)

  def predict(self, x, *, member: int | None = None, ensemble: bool = False) -> np.ndarray:
    """Logits for raw inputs `x` (N, *input_shape): (M, N, C), or (N, C) for one `member`;
    `ensemble=True`: log of the members' mean predicted probabilities, (N, C)."""
    x = self._inputs(x)
    if member is not None and (isinstance(member, bool) or not isinstance(member, int)
                               or not -len(self.plans) <= member < len(self.plans)):
      raise ConfigError(f"predict: member={member!r} is not one of the run's "
                        f"{len(self.plans)} member(s); give 0..{len(self.plans) - 1} "
                        f"({', '.join(self.member_names)}) or None for all")
    plan = self._plan()
    idx = jnp.arange(x.shape[0], dtype=jnp.int32)
    logits = np.asarray(self._predict(self.params, plan, x, idx))
    if ensemble:
      probs = np.asarray(jax.nn.softmax(logits, axis=-1)).mean(0)
      return np.log(probs + 1e-12)
    return logits if member is None else logits[member]

  def _inputs(self, x) -> jax.Array:
    """`x` as float32 (N, *input_shape); ConfigError for what the model cannot take."""
    shape = tuple(self._setup.splits.input_shape)
    want = f"(N, {', '.join(map(str, shape))})"
    try:
      a = np.asarray(x)
    except (TypeError, ValueError) as e:   # ragged lists
      raise ConfigError(f"predict: inputs are not an array ({e}); give real numbers of "
                        f"shape {want}") from None
    if a.dtype.kind not in "biuf":
      raise ConfigError(f"predict: inputs have dtype {a.dtype} ({type(x).__name__}); the "
                        f"model takes real numbers: give a float array of shape {want}")
    if a.shape[1:] != shape or a.ndim != len(shape) + 1:
      raise ConfigError(f"predict: inputs have shape {a.shape}, the model takes {want}; "
                        f"give a batch of examples of shape {shape} (one example: x[None])")
    if len(a) == 0:
      raise ConfigError(f"predict: inputs are empty, shape {a.shape}; give at least one "
                        f"example of shape {shape}")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
      raise ConfigError(f"predict: inputs hold {int((~np.isfinite(a)).sum())} NaN or infinite "
                        "value(s); give finite numbers (raw inputs, as in the dataset)")
    return jnp.asarray(a, jnp.float32)

  def evaluate(self, split: str = "test") -> dict[str, np.ndarray]:
    """Each member's selected model on `split`: "test" (the whole test split), "val" or
    "train" (the member's own part, its own labels under a swept label-noise fraction):
    {metric: (M,)}."""
    if not isinstance(split, str) or split not in ("test", "val", "train"):
      raise ConfigError(f"evaluate: split {split!r} is unknown; use 'test', 'val' or 'train'")
    plan, evaluate = self._plan(), self._evaluate
    if split == "test":
      x, y = self._setup.x_test()
      m, n = len(self.plans), len(self._setup.splits.test_y)
      idx = jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32), (m, n))
      out = evaluate(self.params, plan, x, y, idx, jnp.ones((m, n), jnp.float32))
    else:
      idx, w = ((plan.train_idx, plan.train_weight) if split == "train"
                else (plan.val_idx, plan.val_weight))
      if plan.labels is not None:   # each member's own labels (a swept label-noise fraction)
        evaluate = self._program.members_map(self._program.evaluate, (0, 0, None, 0, 0, 0))
        out = evaluate(self.params, plan, self._program.x_train, plan.labels, idx, w)
      else:
        out = evaluate(self.params, plan, self._program.x_train, self._program.y_train, idx, w)
    return {k: np.asarray(v) for k, v in jax.device_get(out).items()}

  @functools.cached_property
  def _predict(self):
    return self._program.members_map(self._program.predict, (0, 0, None, None))

  @functools.cached_property
  def _evaluate(self):
    return self._program.members_map(self._program.evaluate, (0, 0, None, None, 0, 0))

  def _plan(self):
    return self._program.plan.replace(mean=jnp.asarray(self.mean), std=jnp.asarray(self.std))


def _history(rows: list[dict], plans: list[MemberPlan], epochs: int) -> dict[str, np.ndarray]:
  index = {p.member_id: k for k, p in enumerate(plans)}
  names = sorted({k for r in rows for k in r if k not in ("epoch", "fold", "member")})
  out = {n: np.full((len(plans), epochs), np.nan) for n in names}
  for r in rows:
    k = index[r["fold"]] if "fold" in r else 0
    for n in names:
      if n in r and r["epoch"] < epochs:
        out[n][k, r["epoch"]] = np.nan if r[n] is None else r[n]
  return out


def train(config, workdir: str, *, overwrite: bool = False, progress: bool = True) -> dict:
  """`genjax train`: trains `config` in `workdir`; returns results.json's content."""
  _check_config(config, "train")
  workdir = _workdir(workdir, "train")
  return driver.run(config, workdir, overwrite=overwrite, progress=progress)


def fit(config, workdir: str | None = None, *, overwrite: bool = False,
        progress: bool = False) -> Run:
  """Trains `config` as `genjax train` does (hold-out or cross-validation); in memory (no
  file written) when `workdir` is None. A finished run in `workdir` is loaded, not retrained."""
  _check_config(config, "fit")
  workdir = _workdir(workdir, "fit", optional=True)
  outcome = driver.train(config, workdir, overwrite=overwrite, progress=progress)
  if outcome.program is None:
    return load_run(workdir)
  program, fitted = outcome.program, outcome.fitted
  return Run(config=config, results=outcome.results, workdir=workdir,
             member_names=program.member_names, plans=program.plans,
             params=fitted.selected_params, mean=np.asarray(program.plan.mean),
             std=np.asarray(program.plan.std),
             history=_history(fitted.rows, program.plans, fitted.epochs_run),
             _setup=outcome.setup, _program=program)


def sweep(config, points: list[dict], workdir: str, *, parallel_jobs: int | None = None,
          overwrite: bool = False, progress: bool = False,
          baseline: str | None = None, test_for_all_points: bool = False,
          launcher: str = "local", slurm: dict | None = None,
          detach: bool = False, search: str = "grid", search_factor: int = 3,
          search_min_epochs: int | str = "exhaust", p_adjust: str = "holm") -> list[dict] | None:
  """Runs every point as `genjax sweep` does; returns sweep.json's rows (one per point).
  A point may be named (`{"name": "l2", "penalties.l2.strength": 1e-3}`): a row's `name` is
  the point's name as the tables show it (the given name, else the automatic one; also
  `label`), `auto_name` the automatic one spelled from its values ('dropout=0.2', seed
  included: sweep.json's `name`); `genjax.load_run(workdir, point=NAME)` loads a point's
  members. sweep.json also
  holds `member_results` (one per point × seed × fold), `comparisons` (each point against
  `baseline`, default the first: corrected resampled t-test on fixed folds, p-values adjusted
  together by `p_adjust`, "holm", "bh" or "none"; interquartile mean and probability of
  improvement) and `selected` (the point with
  the best validation mean, and its test metrics: the only test reported unless
  `test_for_all_points`). `launcher` ("local", "submitit_local", "slurm"), `slurm` (the
  `--slurm_*` options by name, e.g. `{"partition": "gpu", "timeout_min": 60}`) and `detach`
  are the CLI's launch flags (`genjax.sweeps.launch`); detached, it returns None while group
  jobs run (call it again to collect). `search` ("grid", "halving", "hyperband"),
  `search_factor` and `search_min_epochs` are `--search`, `--search_factor` and
  `--search_min_epochs` (`genjax.sweeps.pruning`)."""
  if workdir is None:
    raise ConfigError("genjax.sweep needs a workdir (its tables and group processes live there)")
  _check_config(config, "sweep")
  workdir = _workdir(workdir, "sweep")
  try:   # a list as given: sampled points (`sample_points`) keep how they were drawn
    points = (None if isinstance(points, (str, bytes, dict)) else
              points if isinstance(points, list) else list(points))
  except TypeError:
    points = None
  if points is None or not all(isinstance(p, dict) for p in points):
    raise ConfigError("sweep: points must be a list of dicts, e.g. "
                      "[{'model.dropout': 0.0}, {'model.dropout': 0.2}]")
  rows = sweep_driver.run(config, workdir, points,
                          parallel_jobs=parallel_jobs, overwrite=overwrite, progress=progress,
                          baseline=baseline, test_for_all_points=test_for_all_points,
                          p_adjust=p_adjust, launcher=launcher, slurm=slurm, detach=detach,
                          search=sweep_pruning.spec(search, search_factor, search_min_epochs))
  return None if rows is None else [_named_row(r) for r in rows]


def _named_row(row: dict) -> dict:
  """A sweep.json row as `sweep` returns it: `name` the point's name as the tables show it
  (the user's, else the automatic one), `auto_name` the automatic one, spelled from its
  values, seed included (sweep.json's `name`). Nested CV's rows are returned as stored."""
  if "label" not in row:
    return row
  return {**row, "name": row["label"], "auto_name": row.get("auto_name", row["name"])}


def sample_points(axes: dict, samples: int, *, sampler: str = sweep_sampling.DEFAULT_SAMPLER,
                  seed: int = 0, scramble: bool = True) -> list[dict]:
  """`samples` points drawn for `axes` ({key: "uniform(a,b)" | "loguniform(a,b)" |
  "randint(a,b)" | [v1, v2, ...] for a choice}) by `sampler` ("random", "sobol": `samples` a
  power of 2, "halton") from `seed`, as `genjax sweep --sample=... --samples=N` draws them
  (`genjax.sweeps.sampling`: scipy.stats.qmc). A list of {key: value} points: give it to
  `sweep` (which then also draws sweep_sampled.png and sweep_best_so_far.png), multiply it
  by grid points (`genjax.sweeps.sampling.product`), or return it from a config's
  get_sweep() (run there as listed points). Bad input: one ConfigError line."""
  return sweep_sampling.sample(axes, samples, sampler, seed, scramble)


def _config_from_json(stored: dict):
  """The ConfigDict a run stored (run.json), with tuples and placeholders restored from
  genjax's defaults where the JSON holds lists and nulls."""
  from genjax.config import defaults

  def merge(node, values):
    for key, value in values.items():
      if isinstance(value, dict) and key in node and isinstance(node[key], ml_collections.ConfigDict):
        merge(node[key], value)
        continue
      old = node[key] if key in node else None
      if isinstance(value, list) and (isinstance(old, tuple) or old is None):
        value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
      if key in node:
        node[key] = value
      else:
        with node.unlocked():
          node[key] = ml_collections.ConfigDict(value) if isinstance(value, dict) else value
  config = defaults.get_config()
  merge(config, stored)
  return config


def load_run(workdir: str, *, point: str | None = None) -> Run:
  """A finished run's members, restored with their standardization statistics; the data are
  loaded again (offline) for `evaluate`.

  * A `genjax train` run (or `genjax.fit` with a workdir): its members, from
    `<workdir>/selected`.
  * A finished `genjax sweep` (or `genjax.sweep`): the members (seeds × folds) of its
    selected point (selected.json), or of `point`, a point's name as the sweep's tables show
    it (`load_run("runs/grid", point="l2")`; another name is refused in one line that lists
    them). A structural sweep's members are read from the group that trained them
    (`groupNN/selected`). `results` holds the point's rows and member results as the sweep
    recorded them, and the sweep's selection; `member_names` are "POINT[/seedS]/foldK".
    Nested cross-validation (`cv.outer_folds`) is refused.

  What is read is verified: the run's sealed manifest must record it finished with every
  output unchanged, the stored weights their checksum, the stored members the splits their
  config gives. Penalties, models or metrics the run's config registered are found again: the
  modules it recorded (its identity's `code.user_modules`) are imported when their files are
  there unchanged, and an error names one that is missing or changed. Arrays it trained on
  must be registered first (`genjax.register_arrays`, the same arrays: their digest is
  checked)."""
  workdir = _workdir(workdir, "load_run")
  if point is not None and not isinstance(point, str):
    raise ConfigError(f"load_run: point must be a point's name (a str, as the sweep's tables "
                      f"show it), got {type(point).__name__} {point!r}")
  if _stored_kind(workdir) == "sweep":
    return _load_sweep(workdir, point)
  identity, results = record.load_verified(workdir, "results.json")   # sealed and unedited
  if identity.get("kind") != "train":
    raise ConfigError(f"'{workdir}' holds a genjax {identity.get('kind')} run; load_run reads "
                      "`genjax train` and `genjax sweep` runs")
  if point is not None:
    raise ConfigError(f"load_run: point={point!r} names a sweep's point, and '{workdir}' holds "
                      "a `genjax train` run; drop point=, or give a sweep's workdir")
  config, s = _prepared(workdir, identity, lambda c: experiment.prepare(c, None))
  plans = experiment.member_plans(config, s.splits.train_y)
  program = build_program(s, plans)
  m = len(plans)
  params = jax.tree.map(lambda a: jax.ShapeDtypeStruct((m,) + a.shape, a.dtype),
                        s.model.param_shapes)
  stored = experiment.load_selected(workdir, experiment.selected_tree(program, params))
  _check_splits(workdir, stored, program.plan)
  rows = []
  path = os.path.join(workdir, "metrics.jsonl")
  if os.path.exists(path):
    from genjax.report.files import read_metrics
    rows = read_metrics(path)
  epochs = int(results.get("epochs_run", 0))
  return Run(config=config, results=results, workdir=workdir,
             member_names=program.member_names, plans=plans,
             params=jax.tree.map(np.asarray, stored["params"]),
             mean=np.asarray(stored["mean"]), std=np.asarray(stored["std"]),
             history=_history(rows, plans, epochs), _setup=s, _program=program)


def _stored_kind(workdir: str) -> str | None:
  """The kind run.json names (only to choose what to verify and read; None when unreadable)."""
  import json
  try:
    with open(os.path.join(workdir, "run.json")) as f:
      kind = json.load(f).get("kind")
  except (OSError, ValueError, AttributeError):
    return None
  return kind if isinstance(kind, str) else None


def _prepared(workdir: str, identity: dict, prepare):
  """(config, prepare(config)) of the run `identity` records: its arrays checked, the user
  modules it imported imported again (an error names one that is missing or changed)."""
  from genjax.data import arrays as own_arrays   # arrays it trained on: registered, the same
  own_arrays.check_recorded(identity.get("inputs", {}), workdir)
  from genjax.config import files as config_files
  modules = identity.get("code", {}).get("user_modules", {})
  left = config_files.reimport(modules)
  config = _config_from_json(identity["config"])
  try:
    prepared = prepare(config)
  except ConfigError as e:
    if not left:
      raise
    path, why = left[0]
    raise ConfigError(f"{e} — the run imported {path}, which is {why} since: restore it, or "
                      "import the module that registers what the config names before "
                      "load_run") from None
  changed = config_files.changed_definitions(modules)
  if changed:
    raise ConfigError(f"'{workdir}' was trained with {changed[0]} as it was then, and it has "
                      "changed since (it defines a registered model, penalty, metric, ...): "
                      "restore that file to load this run, or train it again")
  return config, prepared


def _check_splits(workdir: str, stored: dict, plan) -> None:
  for name in ("train_idx", "val_idx"):   # the stored members are the ones recomputed
    if not np.array_equal(np.asarray(stored[name]), np.asarray(getattr(plan, name))):
      raise ConfigError(f"'{workdir}': the stored members' {name} differ from the split its "
                        "config gives (another dataset version or scikit-learn?); rerun it")


def _table_name(row: dict) -> str:
  """A sweep.json row's point as the sweep's tables name it (seed aside)."""
  from genjax.sweeps.points import point_name, without_seed
  return row.get("label") or point_name(without_seed(row["point"]))


def _tuples(value):
  """A JSON value as the sweep had it: lists back to tuples."""
  return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _row_groups(workdir: str, identity: dict, stored: dict) -> list[tuple]:
  """Per row of a sweep's sweep.json, the group that trained it: (directory, its run.json,
  its rows, the row's index there): the workdir itself, or a structural sweep's groupNN (the
  parent's rows are its groups' rows, in group order; each group's record verified)."""
  from genjax.sweeps import launch as sweep_launch
  rows = stored["rows"]
  if "groups" not in stored:
    return [(workdir, identity, rows, i) for i in range(len(rows))]
  where = []
  for g in range(int(stored["groups"])):
    gdir = sweep_launch.group_dir(workdir, g)
    g_identity, g_stored = record.load_verified(gdir, "sweep.json")
    where += [(gdir, g_identity, g_stored["rows"], i) for i in range(len(g_stored["rows"]))]
  if len(where) != len(rows) or any(
      any(rows[j]["point"].get(k) != v for k, v in g_rows[i]["point"].items())
      for j, (_, _, g_rows, i) in enumerate(where)):
    raise ConfigError(f"'{workdir}': its groups' rows are not the sweep's rows (a group "
                      "copied or rerun since?); rerun the sweep with --overwrite")
  return where


def _load_sweep(workdir: str, point: str | None) -> Run:
  """`load_run` of a finished sweep (its docstring)."""
  from genjax.sweeps import group as sweep_group
  from genjax.sweeps import points as sweep_points
  if os.path.exists(os.path.join(workdir, "nested.json")):
    raise ConfigError(f"'{workdir}' holds a nested cross-validation sweep (cv.outer_folds), "
                      "whose models are its outer folds' refits; load_run reads `genjax train` "
                      "runs and sweeps without cv.outer_folds (nested.json holds its results)")
  identity, stored = record.load_verified(workdir, "sweep.json")   # sealed and unedited
  if identity.get("kind") != "sweep":
    raise ConfigError(f"'{workdir}' holds a genjax {identity.get('kind')} run, not a sweep; "
                      "load_run reads `genjax train` and `genjax sweep` runs")
  rows, names = stored["rows"], list(dict.fromkeys(_table_name(r) for r in stored["rows"]))
  selected = stored.get("selected")
  if point is None:
    if not selected:
      raise ConfigError(f"'{workdir}' is one group of a structural sweep, which selects no "
                        "point of its own: load_run the sweep's workdir (its parent), or name "
                        f"a point: point= one of {', '.join(map(repr, names))}")
    point = selected["name"]
  if point not in names:
    raise ConfigError(f"load_run: the sweep in '{workdir}' has no point named {point!r}; its "
                      f"points are {', '.join(map(repr, names))}")
  where = _row_groups(workdir, identity, stored)
  mine = [j for j, r in enumerate(rows) if _table_name(r) == point]
  gdir, g_identity, g_rows = where[mine[0]][:3]
  if any(where[j][0] != gdir for j in mine):
    raise ConfigError(f"'{workdir}': point {point!r} was trained in several groups; load_run "
                      "reads one group's members")
  groups = sweep_points.split([{k: _tuples(v) for k, v in r["point"].items()} for r in g_rows])
  if len(groups) != 1:
    raise ConfigError(f"'{gdir}': its sweep.json holds {len(groups)} structural groups' rows; "
                      "rerun the sweep with --overwrite")
  structural, numeric = groups[0]
  config, g = _prepared(gdir, g_identity,
                        lambda c: sweep_group.plan_group(c, None, numeric, here=False))
  program = build_program(g.setup, g.plans, member_names=g.names)
  m = len(g.plans)
  params = jax.tree.map(lambda a: jax.ShapeDtypeStruct((m,) + a.shape, a.dtype),
                        g.setup.model.param_shapes)
  weights = experiment.load_selected(
      gdir, experiment.selected_tree(program, params),
      fix="rerun the sweep with --overwrite (a finished sweep is not trained again)")
  _check_splits(gdir, weights, program.plan)
  k = len(g.folds)
  in_group = [where[j][3] for j in mine]
  members = [i * k + f for i in in_group for f in range(k)]
  seeds = len(in_group) > 1 or any(hparams.SEED_KEY in numeric[i] for i in in_group)
  member_names = [f"{point}" + (f"/seed{g.plans[j].seed}" if seeds else "")
                  + f"/fold{g.plans[j].member_id}" for j in members]
  plans = [g.plans[j] for j in members]
  sub = build_program(g.setup, plans, member_names=[g.names[j] for j in members])
  take = lambda a: np.asarray(a)[np.asarray(members)]   # noqa: E731
  history_rows = []
  path = os.path.join(gdir, "metrics.jsonl")
  if os.path.exists(path):
    from genjax.report.files import read_metrics
    history_rows = read_metrics(path)
  member_results = [r for r in stored["member_results"] if r["point"] == point]
  results = {"kind": "sweep", "point": point, "values": rows[mine[0]]["point"],
             "rows": [rows[j] for j in mine], "member_results": member_results,
             "selected": selected, "group": os.path.relpath(gdir, workdir)}
  return Run(config=sweep_points.apply_point(config, sweep_points.without_seed(
                 numeric[in_group[0]])),
             results=results, workdir=workdir, member_names=member_names, plans=plans,
             params=jax.tree.map(take, weights["params"]), mean=take(weights["mean"]),
             std=take(weights["std"]),
             history=_member_history(history_rows, [g.names[j] for j in members]),
             _setup=g.setup, _program=sub)


def _member_history(rows: list[dict], names: list[str]) -> dict[str, np.ndarray]:
  """`_history` of a sweep's members, by their metric rows' `member` names: (M, epochs the
  group ran), NaN where a member did not train. A name ('l2=0.001,dropout=0/fold1') is
  compared as its set of values and its fold: the records keep no key order."""
  def canonical(name: str):
    values, _, fold = name.rpartition("/")
    return frozenset(values.split(",")), fold
  index = {canonical(n): k for k, n in enumerate(names)}
  epochs = 1 + max((r["epoch"] for r in rows), default=-1)
  mine = [{**r, "member": index[canonical(r["member"])]} for r in rows
          if isinstance(r.get("member"), str) and canonical(r["member"]) in index]
  keys = sorted({k for r in mine for k in r if k not in ("epoch", "fold", "member")})
  out = {n: np.full((len(names), epochs), np.nan) for n in keys}
  for r in mine:
    for n in keys:
      if n in r and r["epoch"] < epochs:
        out[n][r["member"], r["epoch"]] = np.nan if r[n] is None else r[n]
  return out
