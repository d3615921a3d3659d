"""What every driver does before and around training: check, load, plan, build callbacks.

* `prepare(config, workdir)` -> `Setup`: validates the config (and the workdir when there
  is one), loads the data (label noise applied), builds the model and early stopping.
  Writes nothing.
* `member_plans(config, labels)`: the hold-out plan (`cv.method="none"`) or one plan per
  fold (scikit-learn's splitters over the training split).
* `validate_plans(setup, plans)`: the checks that need the members' sizes and parameters.
* `callbacks_for(...)`: the standard callbacks of a run with a workdir (metrics log,
  TensorBoard, progress, run checkpoint, per-member best checkpoints), then the user's.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from genjax import models
from genjax.workdir import checkpoint
from genjax.config import defaults
from genjax.platform import distributed
from genjax.train import early_stopping, metrics
from genjax.optim import penalties
from genjax.workdir import claims as workdir_lib
from genjax.data import arrays as own_arrays, datasets, label_noise
from genjax.data import splits as validation
from genjax.errors import ConfigError
from genjax.models import precision as precision_lib
from genjax.train import callbacks as callbacks_lib
from genjax.train import parallel
from genjax.train.members import MemberPlan
from genjax.train.fit import fit
from genjax.train.program import Program, build_program


@dataclasses.dataclass
class Setup:
  """What a driver needs before training: validated config, data, model, early stopping."""
  config: Any
  splits: datasets.ArraySplits
  model: models.Model
  es: early_stopping.EarlyStopping | None   # None: early stopping off
  monitor: early_stopping.EarlyStopping     # what is tracked (never stops when es is None)
  metrics: tuple                            # config.metrics (genjax.train.metrics.Metric)
  x_train: jax.Array
  y_train: jax.Array

  def x_test(self):
    return jnp.asarray(self.splits.test_x), jnp.asarray(self.splits.test_y, jnp.int32)


def prepare(config, workdir: str | None, *, here: bool = True) -> Setup:
  """Validates the config and workdir, loads the data, builds the model. Writes nothing.
  `here=False`: the run is checked for other machines (a cluster job), so this machine's
  devices are not asked whether they support `config.precision`."""
  if workdir is not None:
    workdir_lib.check_workdir(workdir)
  defaults.validate(config)
  es = early_stopping.from_config(config.early_stopping)
  if here:
    precision_lib.check_backend(config.get("precision", "float32"),
                                config.get("allow_emulated_bfloat16", False))
  extra = metrics.parse(config.metrics)
  check_monitor(config.early_stopping.monitor, extra)
  splits = datasets.load(config.data.name, data_dir=config.data.data_dir or None)
  if workdir is not None:   # a sweep's group processes read arrays registered in memory here
    own_arrays.share_with_subprocesses(config.data.name)
  if config.data.label_noise:
    noisy = label_noise.corrupt(splits.train_y, splits.num_classes, config.data.label_noise,
                                data_seed(config))
    splits = datasets.ArraySplits(splits.name, splits.train_x, noisy, splits.test_x,
                                  splits.test_y, splits.num_classes)
  precision = config.get("precision", "float32")
  model = models.create(config.model, splits.input_shape, splits.num_classes,
                        precision=precision)
  monitor = es or early_stopping.never_stopping(config.early_stopping.monitor)
  return Setup(config=config, splits=splits, model=model, es=es, monitor=monitor,
               metrics=extra, x_train=jax.device_put(splits.train_x),
               y_train=jax.device_put(np.asarray(splits.train_y, np.int32)))


def data_seed(config) -> int:
  """The seed of the data's randomness (hold-out, folds, label noise): `data.split_seed`, or
  `seed` when it is None (so that runs from before the split seed existed reproduce)."""
  split_seed = config.data.get("split_seed")
  return config.seed if split_seed is None else split_seed


def check_monitor(monitor: str, extra: tuple) -> None:
  """A monitored `val_<metric output>` needs its metric in config.metrics."""
  if monitor in early_stopping.KNOWN_MONITORS or monitor in early_stopping.WEIGHT_MONITORS:
    return
  if not any(metrics.produces(m, monitor[4:]) for m in extra):
    owner = [name for name, m in metrics.METRICS.items() if metrics.produces(m, monitor[4:])]
    raise ConfigError(f"early_stopping.monitor={monitor!r} is not logged: add "
                      f"'{owner[0] if owner else '?'}' to config.metrics, e.g. "
                      f"--config.metrics={owner[0] if owner else 'NAME'}")


def cv_groups(config, n: int):
  """cv.groups's group ids (group_kfold), else None; ConfigError for a missing or bad file."""
  if config.cv.method != "group_kfold":
    return None
  path = config.cv.groups
  if not path:
    return None  # kfold_splits raises the one-line error
  if not os.path.isfile(path):
    raise ConfigError(f"cv.groups file '{path}' does not exist; give a .npy file with one "
                      "group id per training example")
  try:
    groups = np.load(path, allow_pickle=False)
  except (OSError, ValueError, EOFError) as e:
    raise ConfigError(f"cv.groups file '{path}' is not a readable .npy array ({e}); write it "
                      "with numpy.save(path, group_ids)") from None
  if groups.ndim != 1 or groups.dtype.kind not in "biufUS":
    raise ConfigError(f"cv.groups file '{path}' holds a {groups.dtype} array of shape "
                      f"{groups.shape}; give one group id (an integer or a string) per "
                      f"training example, shape ({n},)")
  if groups.dtype.kind == "f":
    bad = np.flatnonzero(~np.isfinite(groups))
    if len(bad):
      raise ConfigError(f"cv.groups file '{path}' has {len(bad)} NaN or infinite group id(s) "
                        f"(first at training example {bad[0]}); give every training example "
                        "a group id (integers are best)")
  return groups


def fold_plans(config, labels: np.ndarray) -> list[MemberPlan]:
  """One plan per fold of `config.cv` over the training split (scikit-learn's indices)."""
  splits = validation.kfold_splits(
      labels, method=config.cv.method, folds=config.cv.folds, shuffle=config.cv.shuffle,
      seed=data_seed(config), repeats=config.cv.repeats, groups=cv_groups(config, len(labels)))
  return [MemberPlan(k, tr, va) for k, (tr, va) in enumerate(splits)]


def member_plans(config, labels: np.ndarray) -> list[MemberPlan]:
  """The hold-out plan (cv.method none: a stratified, seeded validation fraction) or folds."""
  if config.cv.method == "none":
    tr, va = validation.holdout_split(labels, config.data.validation_fraction,
                                      data_seed(config))
    return [MemberPlan(0, tr, va)]
  return fold_plans(config, labels)


def validate_plans(s: Setup, plans: list[MemberPlan], *, here: bool = True) -> None:
  """Checks that need the members' sizes and the model's parameters (before compile); the
  device layout's only when the run is `here` (on this machine's devices)."""
  defaults.validate_against_data(s.config, s.splits, min(len(p.train_idx) for p in plans))
  penalties.validate_config(s.config.penalties, s.model.param_shapes)
  if here:
    parallel.resolve(s.config.parallel, num_members=len(plans), batch_size=s.config.batch_size)


def callbacks_for(s: Setup, program: Program, workdir: str | None, *, progress: bool,
                  label: str, ckpt_subdir: str | None = None,
                  metrics_name: str = "metrics.jsonl",
                  tensorboard_runs: list[tuple[str, ...]] | None = None) -> list:
  """The standard callbacks of a run (none that write when `workdir` is None), then the
  user's (`config.callbacks`). `tensorboard_runs`: each member's TensorBoard run folder
  parts (`callbacks.TensorBoardLog`; default: from the member names)."""
  config = s.config
  out: list = [callbacks_lib.Progress(label, enabled=progress),
               callbacks_lib.MembersLeaving()]
  if workdir is not None and distributed.is_primary():
    check_open_files(program.num_members)
  if workdir is not None:
    out = [callbacks_lib.MetricsLog(os.path.join(workdir, metrics_name)),
           callbacks_lib.TensorBoardLog(
               os.path.join(workdir, "tensorboard"),
               suffix=metrics_name.removesuffix(".jsonl").removeprefix("metrics"),
               config=config, runs=tensorboard_runs)] + out
    if config.checkpoint.enabled:
      ckpt = checkpoint.from_config(config.checkpoint, workdir, subdir=ckpt_subdir,
                                    mode=program.monitor.resolved_mode)
      out.append(callbacks_lib.RunCheckpoint(ckpt, devices=program.placement["devices"]))
      # With several members, each also keeps its own best-k of its own weights (the run
      # checkpoint ranks the members' mean); single-process runs only.
      if (1 < program.num_members <= callbacks_lib.MAX_MEMBER_CHECKPOINTS
          and program.early_stopping is not None and distributed.process().count == 1):
        out.append(callbacks_lib.MemberBestCheckpoints(
            os.path.join(ckpt.directory, "best"), mode=program.monitor.resolved_mode,
            keep_best=config.checkpoint.keep_best,
            min_interval_s=config.checkpoint.min_interval_s,
            async_save=config.checkpoint.async_save))
  return out + callbacks_lib.from_config(config, workdir)


_FILES_MARGIN = 128   # open files beyond the writers: libraries, checkpoints, the dataset
_FILES_PER_WRITER = 3   # a tensorboardX FileWriter: its event file and its queue's pipe pair


def check_open_files(members: int) -> None:
  """A run with a workdir holds one TensorBoard writer open per member for the whole run
  (`callbacks.TensorBoardLog`): the soft open-file limit is raised toward the hard one when it
  is too low, and a run that still would not fit is refused here, before anything is created
  or compiled (else `OSError: Too many open files` midway, after the folders are made)."""
  try:
    import resource
  except ImportError:   # not POSIX
    return
  soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
  try:
    in_use = len(os.listdir("/proc/self/fd"))
  except OSError:
    in_use = 64
  needed = _FILES_PER_WRITER * members + in_use + _FILES_MARGIN
  if soft == resource.RLIM_INFINITY or needed <= soft:
    return
  if hard == resource.RLIM_INFINITY or needed <= hard:
    try:
      resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
      return
    except (ValueError, OSError):
      pass
  raise ConfigError(f"{members} members each keep a TensorBoard writer open while training "
                    f"({_FILES_PER_WRITER} open files each), about {needed} open files in all, but this process may open "
                    f"{soft} (ulimit -n; hard limit {hard}); raise the limit (ulimit -n "
                    f"{needed}, as root or in /etc/security/limits.conf) or train fewer "
                    "members per run (fewer seeds or points per sweep)")


def train(s: Setup, plans: list[MemberPlan], workdir: str | None, *, resume: bool = False,
          progress: bool = False, label: str = "", member_names: list[str] | None = None,
          num_epochs: int | None = None, pruner=None,
          tensorboard_runs: list[tuple[str, ...]] | None = None):
  """`build_program` + `fit` with the standard callbacks: (program, fitted). A program without
  early stopping, or with other files (a refit), is `genjax.run.refit`'s. `tensorboard_runs`:
  each member's TensorBoard run folder parts (default: from `member_names`)."""
  program = build_program(s, plans, member_names=member_names)
  if distributed.is_primary():   # the epoch's formulation, once per run (results.json too)
    side = ", members side by side" if program.member_layout == "side_by_side" else ""
    conv = f", convolutions: {program.convolutions}" if program.convolutions else ""
    bf16 = (", precision: bfloat16 (float32 weights)"
            if s.config.get("precision", "float32") == "bfloat16" else "")
    where = program.placement
    padding = (f" (+{where['padding']} padding member(s), not reported)"
               if where.get("padding") else "")
    devices = ({"members": f", members split over {where['devices']} devices{padding}",
                "data": f", data parallel over {where['devices']} devices"}
               .get(where["axis"], ""))
    print(f"genjax: {len(plans)} member(s){devices}, epoch loop: {program.epoch_loop}{side}"
          f"{conv}{bf16}", flush=True)
  cbs = callbacks_for(s, program, workdir, progress=progress,
                      label=label or f"{s.config.data.name}/{s.config.model.name}",
                      tensorboard_runs=tensorboard_runs)
  return program, fit(program, cbs, num_epochs=num_epochs or s.config.num_epochs,
                      resume=resume, pruner=pruner)


@dataclasses.dataclass
class Outcome:
  """What a driver returns: results.json's content and, when it trained now, the program and
  the fitted members (None for the rerun of a finished run, which only reads its results)."""
  results: dict
  setup: Setup
  program: Program | None = None
  fitted: Any = None


SELECTED = "selected"   # <workdir>/selected: the members' selected weights and plans (orbax)


def save_selected(workdir: str, program: Program, fitted) -> None:
  """Writes every member's selected weights with its plan (indices, standardization) to
  `<workdir>/selected` (one orbax step, checksummed), for `genjax.load_run`."""
  write_selected(workdir, selected_tree(program, fitted.selected_params))


def write_selected(workdir: str, tree: dict) -> None:
  """Writes `tree` (`selected_tree`: a run's or a sweep group's members) as
  `<workdir>/selected`, replacing one a previous write of this run left."""
  path = os.path.join(workdir, SELECTED)
  if distributed.is_primary() and os.path.isdir(path):
    import shutil   # a kill after it was written, or a run continued: written again
    shutil.rmtree(path)
  distributed.barrier("genjax-selected-cleared")
  with checkpoint.Checkpointer(path, async_save=False) as ckpt:
    ckpt.save(0, tree, metric=None, force=True)


def selected_tree(program: Program, params) -> dict:
  """The tree `save_selected` writes: params and the plan's arrays (member axis first)."""
  plan = program.plan
  # Host copies: a multi-host run's plan arrays are process-local, which orbax cannot save.
  arrays = jax.device_get({"mean": plan.mean, "std": plan.std, "train_idx": plan.train_idx,
                           "train_weight": plan.train_weight, "val_idx": plan.val_idx,
                           "val_weight": plan.val_weight})
  return {"params": params, **{k: np.asarray(v) for k, v in arrays.items()}}


def load_selected(workdir: str, target: dict, *, fix: str = "rerun it") -> dict:
  """The tree `save_selected` (or `write_selected`) wrote, restored into the structure of
  `target` and verified (its checksum); `fix` ends the error for a workdir without it."""
  path = os.path.join(workdir, SELECTED)
  if not os.path.isdir(path):
    raise ConfigError(f"'{workdir}' has no {SELECTED}/ (the selected weights of a finished "
                      f"run); it was not finished, or was written by an older genjax: {fix}")
  with checkpoint.Checkpointer(path, async_save=False) as ckpt:
    return ckpt.restore(0, target)
