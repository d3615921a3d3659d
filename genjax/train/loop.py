"""Training M members at once, epoch by epoch, from a config.

Python only drives epochs. Each epoch is one jit-compiled program
(`run_epoch`), vmapped over the member axis: a `lax.scan` of training steps,
the validation pass, weight statistics and the early-stopping update with its
best-weights select, all on device. A member whose early stopping fired is
frozen while the others go on; the run ends when all have stopped or at
`num_epochs`. After each epoch the host appends metric rows and saves the run
state (orbax, async) so a killed run resumes where it was, bit for bit.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import gc
import json
import os
from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from genjax import (checkpoint, defaults, distributed, early_stopping, models, optim, penalties,
                    report, run_identity)
from genjax.data import augment, datasets, label_noise
from genjax.errors import ConfigError, Interrupted
from genjax.train import parallel
from genjax.train.members import MemberPlan, init_keys, stack_plans
from genjax.train.steps import Plan, TrainState, make_epoch_fns


# The initial state runs once: compiled for compile speed (LLVM -O1 cuts its compile time from
# ~1.3 s to ~0.5 s on the K-fold benchmark, same bits). The epoch program keeps XLA's default:
# at -O1 it compiles ~25% faster but a CNN's convolutions round differently (MLPs match).
INIT_COMPILER_OPTIONS = {"xla_backend_optimization_level": 1}
# Members beyond this count (large sweeps) keep their best weights in the run checkpoint only.
MAX_MEMBER_CHECKPOINTS = 16


@flax.struct.dataclass
class RunState:
  """Everything an epoch changes (leading member axis), checkpointed as one pytree."""
  train: TrainState
  monitor: Any        # EarlyStopping state
  best_params: Any    # params at each member's best epoch so far (on device)


@dataclasses.dataclass
class Setup:
  """What a driver needs before training: validated config, data, model, steps."""
  config: Any
  splits: datasets.ArraySplits
  model: models.Model
  es: early_stopping.EarlyStopping | None   # None: early stopping off
  monitor: early_stopping.EarlyStopping     # what is tracked (never stops when es is None)
  x_train: jax.Array
  y_train: jax.Array

  def x_test(self):
    return jnp.asarray(self.splits.test_x), jnp.asarray(self.splits.test_y, jnp.int32)


@dataclasses.dataclass
class Trained:
  """The outcome of `train_members` (host arrays have a leading member axis)."""
  plan: Plan
  state: RunState
  rows: list[dict]
  epochs_run: int
  selected_params: Any        # best (restore_best_weights) or final, per member (host arrays)
  selected_epoch: np.ndarray  # (M,)
  monitor: Any                # host copy of the early-stopping state
  evaluate: Callable
  predict: Callable


def claim_workdir(workdir: str, config, *, kind: str, outputs: tuple[str, ...],
                  overwrite: bool, points: list[dict] | None = None) -> run_identity.Claim:
  """Locks `workdir` for this run and decides whether it resumes (`run_identity.claim`).

  Call after every check that can refuse the run, before anything is written.
  """
  run = run_identity.identity(kind, config, points)
  config_json = json.dumps(run["config"], indent=2, sort_keys=True)
  return run_identity.claim(workdir, run, config_json=config_json, outputs=outputs,
                            overwrite=overwrite)


def completed(claim: run_identity.Claim, name: str) -> dict | None:
  """The stored `name` (e.g. results.json) of a finished run being resumed, else None.

  A rerun of a finished run reads its results and writes nothing.
  """
  path = os.path.join(claim.workdir, name)
  if not claim.resume or not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def setup(config, workdir: str) -> Setup:
  """Validates the config and workdir, loads the data, builds the model. Writes nothing."""
  run_identity.check_workdir(workdir)
  defaults.validate(config)
  es = early_stopping.from_config(config.early_stopping)
  splits = datasets.load(config.data.name, data_dir=config.data.data_dir or None)
  if config.data.label_noise:
    noisy = label_noise.corrupt(splits.train_y, splits.num_classes, config.data.label_noise,
                                config.seed)
    splits = datasets.ArraySplits(splits.name, splits.train_x, noisy, splits.test_x,
                                  splits.test_y, splits.num_classes)
  model = models.create(config.model, splits.input_shape, splits.num_classes)
  monitor = es or early_stopping.EarlyStopping(monitor=config.early_stopping.monitor,
                                               patience=10**9, check_finite=False)
  return Setup(config=config, splits=splits, model=model, es=es, monitor=monitor,
               x_train=jax.device_put(splits.train_x),
               y_train=jax.device_put(np.asarray(splits.train_y, np.int32)))


def validate_plans(s: Setup, plans: list[MemberPlan]) -> None:
  """Checks that need the members' sizes and the model's parameters (before compile)."""
  defaults.validate_against_data(s.config, s.splits, min(len(p.train_idx) for p in plans))
  params = s.model.param_shapes   # shapes suffice for masks
  penalties.validate_config(s.config.penalties, params)
  parallel.resolve(s.config.parallel, num_members=len(plans), batch_size=s.config.batch_size)


def _gc_frozen(fn: Callable) -> Callable:
  """Runs `fn` with the objects alive at its start frozen out of Python's cyclic GC, and the
  GC on (the CLI pauses it during start-up); both restored after.

  Tracing allocates many objects, and each full collection would otherwise walk the
  millions that jax, flax, orbax and TFDS hold from import (measured: ~0.15 s of a 1.2 s
  run). `gc.unfreeze` afterwards hands them back to the collector: nothing leaks.
  """

  @functools.wraps(fn)
  def wrapper(*args, **kwargs):
    gc.freeze()
    enabled = gc.isenabled()
    gc.enable()
    try:
      return fn(*args, **kwargs)
    finally:
      gc.unfreeze()
      if not enabled:
        gc.disable()

  return wrapper


@_gc_frozen
def train_members(s: Setup, plans: list[MemberPlan], workdir: str, *, resume: bool,
                  progress: bool = True, ckpt_subdir: str | None = None,
                  use_early_stopping: bool = True, num_epochs: int | None = None,
                  label: str = "", metrics_name: str = "metrics.jsonl",
                  member_names: list[str] | None = None) -> Trained:
  """Trains every member of `plans` at once; returns the trained state and metric rows.

  Rows go to `<workdir>/metrics.jsonl` (a `fold` field when there are several
  members, a `member` field when `member_names` are given; strict JSON, null for a
  non-finite value; validation metrics only when members have a validation part) and to
  TensorBoard event files under `<workdir>/tensorboard/<member>`; the run state is
  checkpointed under `ckpt_subdir`. `num_epochs` (default config.num_epochs) caps the
  epochs; schedules always span config.num_epochs. Ctrl-C raises `Interrupted(epoch)`
  once the checkpoints written so far are complete.
  """
  config = s.config
  num_epochs = num_epochs or config.num_epochs
  es = s.es if use_early_stopping else None
  monitor_es = es or early_stopping.EarlyStopping(monitor=s.monitor.monitor, patience=10**9,
                                                  check_finite=False)
  m = len(plans)
  plan = stack_plans(plans, s.splits.train_x, mode=config.data.standardize, seed=config.seed)
  template = s.model.param_shapes   # shapes only, for masks
  steps_per_epoch = -(-max(len(p.train_idx) for p in plans) // config.batch_size)
  # Schedules span config.num_epochs even when `num_epochs` is shorter (a K-fold refit): the
  # refit then follows the folds' learning-rate and strength trajectory for its epochs.
  tx = optim.make_optimizer(config.optimizer, config.penalties, template,
                            steps_per_epoch=steps_per_epoch, num_epochs=config.num_epochs)
  penalty_fn = penalties.penalty_loss_fn(config.penalties, template)
  augmenter = augment.build(config.data.augment, s.splits.input_shape, s.splits.num_classes)
  layout = parallel.resolve(config.parallel, num_members=m, batch_size=config.batch_size)
  loss_keys, opt_keys = hparam_routes(plans[0].hparams, config)

  def apply_fn(params, x, *, train, rng, hparams):
    return s.model.apply(params, x, train=train, rng=rng, dropout=hparams.get("model.dropout"))

  def member_penalty(params, step, hparams):
    return penalty_fn(params, step, {n: hparams[k] for n, k in loss_keys.items()} or None)

  def member_augment(keys, x, y_soft, hparams):
    prefix = augment.SWEEP_PREFIX
    return augmenter(keys, x, y_soft, overrides={
        k[len(prefix):]: v for k, v in hparams.items() if k.startswith(prefix)})

  fns = dict(apply_fn=apply_fn, tx=tx, penalty_fn=member_penalty,
             augmenter=None if augmenter is None else member_augment,
             num_classes=s.splits.num_classes, batch_size=config.batch_size,
             eval_batch_size=config.eval_batch_size)
  _, evaluate, predict = make_epoch_fns(**fns)   # for callers, outside any device mapping
  if layout.axis == "data":
    train_epoch, evaluate_sharded, _ = make_epoch_fns(
        **fns, axis_name=parallel.DATA_AXIS, num_shards=layout.num_devices)
  else:
    train_epoch, evaluate_sharded = make_epoch_fns(**fns)[:2]

  def run_member_epoch(rs: RunState, member_plan: Plan, x, y, epoch):
    frozen = rs.monitor.should_stop
    y = y if member_plan.labels is None else member_plan.labels
    train, train_metrics = train_epoch(rs.train, member_plan, x, y, epoch, frozen)
    val = evaluate_sharded(train.params, member_plan, x, y, member_plan.val_idx,
                           member_plan.val_weight)
    metrics = {**train_metrics, "val_loss": val["loss"], "val_accuracy": val["accuracy"]}
    metrics.update({f"weight_{k}": v for k, v in penalties.weight_stats(train.params, "").items()})
    monitor = monitor_es.update(rs.monitor, metrics[monitor_es.monitor], epoch)
    improved = jnp.logical_and(monitor.improved, jnp.logical_not(frozen))
    best = jax.tree.map(lambda n, o: jnp.where(improved, n, o), train.params, rs.best_params)
    metrics["_improved"] = improved
    return RunState(train=train, monitor=monitor, best_params=best), metrics

  run_epoch = parallel.place_epoch(run_member_epoch, layout)

  # Runs once: compiled at LLVM -O1, which halves its compile time and gives the same bits.
  @functools.partial(jax.jit, out_shardings=layout.state_sharding(),
                     compiler_options=INIT_COMPILER_OPTIONS)
  def init_state(keys, hparams):
    params = jax.vmap(s.model.init)(keys)
    opt_state = jax.vmap(lambda p, h: optim.set_hyperparams(
        tx.init(p), **{n: h[k] for n, k in opt_keys.items()}))(params, hparams)
    return RunState(
        train=TrainState(step=jnp.zeros((m,), jnp.int32), params=params, opt_state=opt_state),
        monitor=monitor_es.init(batch_shape=(m,)), best_params=params)

  # Compile the epoch program in a second thread while the initial state compiles and runs
  # (XLA compiles outside the GIL): the two largest compilations overlap.
  keys = init_keys(plans, config.seed)
  if hasattr(run_epoch, "lower"):
    abstract_state = jax.eval_shape(init_state, keys, plan.hparams)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
      compiled = pool.submit(lambda: run_epoch.lower(abstract_state, plan, s.x_train,
                                                     s.y_train, 0).compile())
      state = init_state(keys, plan.hparams)
      run_epoch = compiled.result()
  else:
    state = init_state(keys, plan.hparams)

  metrics_path = os.path.join(workdir, metrics_name)
  ckpt, start_epoch = None, 0
  if config.checkpoint.enabled:
    ckpt = checkpoint.Checkpointer(
        os.path.join(workdir, ckpt_subdir or config.checkpoint.subdir),
        mode=monitor_es.resolved_mode, keep_best=config.checkpoint.keep_best,
        keep_latest=config.checkpoint.keep_latest, save_every=config.checkpoint.save_every,
        min_interval_s=config.checkpoint.min_interval_s, async_save=config.checkpoint.async_save)
    if resume:
      restored = ckpt.restore_latest(state)
      if restored is not None:
        start_epoch, state = restored
  rows = [r for r in report.read_metrics(metrics_path) if r["epoch"] < start_epoch]
  report.write_metrics(metrics_path, rows)

  ids = [p.member_id for p in plans]
  has_val = any(len(p.val_idx) for p in plans)
  names = member_names or ([f"fold{i}" for i in ids] if m > 1 else ["run"])
  # With several members, each also gets its own orbax best-k of its own weights, saved when
  # it improves (the run checkpoint above ranks the members' mean): <subdir>/best/<member>.
  # (Single-process runs only; multi-host runs keep best weights in the run checkpoint.)
  best_ckpts = []
  if (ckpt is not None and 1 < m <= MAX_MEMBER_CHECKPOINTS and es is not None
      and distributed.process().count == 1):
    best_ckpts = [checkpoint.Checkpointer(
        os.path.join(ckpt.directory, "best", name.replace("/", "_")),
        mode=monitor_es.resolved_mode, keep_best=config.checkpoint.keep_best, keep_latest=1,
        min_interval_s=config.checkpoint.min_interval_s,
        async_save=config.checkpoint.async_save) for name in names]
  tb = report.TensorBoard(os.path.join(workdir, "tensorboard"), names,
                          prefix=metrics_name.removesuffix(".jsonl").removeprefix("metrics"))
  bar = tqdm(total=num_epochs, initial=start_epoch, unit="epoch",
             disable=not progress or not distributed.is_primary(),
             desc=label or f"{config.data.name}/{config.model.name}", dynamic_ncols=True)
  epoch = start_epoch
  stopped = np.asarray(distributed.to_host(state.monitor.should_stop))
  # Epoch e + 1 is dispatched before the host handles epoch e (metric rows, TensorBoard,
  # checkpoints), so that work overlaps the device's. When epoch e stops every member, the
  # speculative epoch e + 1 is dropped unread: results never depend on it.
  ahead = lambda st, e: run_epoch(st, plan, s.x_train, s.y_train, e) if e < num_epochs else None  # noqa: E731
  pending = None if stopped.all() else ahead(state, epoch)
  try:
    with open(metrics_path if distributed.is_primary() else os.devnull, "a") as metrics_file:
      while pending is not None:
        state, metrics = pending
        pending = ahead(state, epoch + 1)
        host = distributed.to_host(metrics)
        improved = np.asarray(host.pop("_improved"))
        active = np.flatnonzero(~stopped)
        value = float(np.mean(host[monitor_es.monitor][active]))
        if not has_val:   # no validation part: no placeholder validation metrics
          host = {k: v for k, v in host.items() if not k.startswith("val_")}
        new_rows = []
        for k in active:
          row = {"epoch": epoch, **({"fold": ids[k]} if m > 1 else {}),
                 **({"member": names[k]} if member_names else {}),
                 **{name: float(v[k]) for name, v in host.items()}}
          new_rows.append(row)
          tb.write(k, epoch, row)
        for row in new_rows:
          metrics_file.write(report.json_line(row))
        metrics_file.flush()
        rows.extend(new_rows)
        better = np.flatnonzero(improved)[:len(best_ckpts)]
        if len(better):  # sliced on the host: a device slice would queue behind epoch e + 1
          params = jax.device_get(state.train.params)
          for k in better:
            best_ckpts[k].save(epoch, member_slice(params, k),
                               metric=float(host[monitor_es.monitor][k]))
        stopped = np.asarray(distributed.to_host(state.monitor.should_stop))
        if stopped.all():  # drop the speculative epoch, but never leave it running (exit, reuse)
          jax.block_until_ready(pending)
          pending = None
        epoch += 1
        if ckpt is not None:
          ckpt.save(epoch, state, metric=value, force=epoch == num_epochs or stopped.all())
        bar.set_postfix(_progress_fields(new_rows, has_val, m, stopped))
        bar.update(1)
  except KeyboardInterrupt:
    bar.close()
    for c in ([ckpt] if ckpt is not None else []) + best_ckpts:
      c.close()   # a save under way completes: the rerun resumes from it
    raise Interrupted(epoch) from None
  bar.close()
  tb.close()
  if best_ckpts:
    # Saves on improvement are rate-limited (checkpoint.min_interval_s): each member's final
    # best weights are written now if that skipped them.
    mon, best_params = jax.device_get((state.monitor, state.best_params))
    for k, c in enumerate(best_ckpts):
      best_epoch = int(mon.best_epoch[k])
      if best_epoch >= 0 and c.latest_epoch() != best_epoch:
        c.save(best_epoch, member_slice(best_params, k), metric=float(mon.best[k]), force=True)
  for c in ([ckpt] if ckpt is not None else []) + best_ckpts:
    c.wait()
    c.close()

  if distributed.process().count > 1:
    # Arrays spanning processes cannot meet the local test arrays: continue from host copies.
    state = distributed.to_host(state)
  mon = jax.device_get(state.monitor)
  best_epoch = np.asarray(mon.best_epoch)
  restore = (es is not None and es.restore_best_weights) & (best_epoch >= 0)
  restore = np.broadcast_to(restore, (m,))
  # On the host (a few hundred KB): no extra program to compile for one select.
  best, final = jax.device_get((state.best_params, state.train.params))
  selected = jax.tree.map(
      lambda b, f: np.where(restore.reshape((m,) + (1,) * (b.ndim - 1)), b, f), best, final)
  # A member's last trained epoch: where it stopped, else the run's last epoch.
  last_epoch = np.where(np.asarray(mon.should_stop), np.asarray(mon.stopped_epoch), epoch - 1)
  selected_epoch = np.where(restore, best_epoch, last_epoch)
  return Trained(plan=plan, state=state, rows=rows, epochs_run=epoch,
                 selected_params=selected, selected_epoch=selected_epoch, monitor=mon,
                 evaluate=evaluate, predict=predict)


def _progress_fields(rows: list[dict], has_val: bool, m: int, stopped: np.ndarray) -> dict:
  mean = lambda key: np.mean([r[key] for r in rows])  # noqa: E731
  shown = {"loss": f"{mean('train_loss_running'):.3f}"}
  if has_val:
    shown.update(val_loss=f"{mean('val_loss'):.3f}", val_acc=f"{mean('val_accuracy'):.3f}")
  if m > 1:
    shown["training"] = f"{m - int(stopped.sum())}/{m}"
  return shown


def hparam_routes(hparams: dict, config) -> tuple[dict, dict]:
  """Where each swept value goes: ({loss penalty: key}, {optimizer hyperparameter: key}).

  `model.dropout` goes to the model's call, `data.augment.OP.PARAM` to the augmenter,
  `data.label_noise` into each member's labels (`MemberPlan.labels`). Sweepable keys:
  optimizer.learning_rate, optimizer.weight_decay (adamw), penalties.NAME.strength,
  model.dropout, data.augment.OP.PARAM, data.label_noise.
  """
  loss_keys, opt_keys = {}, {}
  for key in hparams:
    parts = key.split(".")
    if key in ("optimizer.learning_rate", "optimizer.weight_decay"):
      opt_keys[parts[1]] = key
    elif len(parts) == 3 and parts[0] == "penalties" and parts[2] == "strength":
      if penalties.get(parts[1]).kind == "loss":
        loss_keys[parts[1]] = key
      else:
        opt_keys[optim.hyperparam_name(parts[1])] = key
    elif key not in ("model.dropout", "data.label_noise") and not key.startswith(
        augment.SWEEP_PREFIX):
      raise ValueError(f"{key} cannot vary across members of one program")
  return loss_keys, opt_keys


def stop_info(es, mon, k: int) -> dict:
  """best_epoch / stopped_epoch / stop_reason / best monitored value of member k."""
  stopped = bool(np.asarray(mon.should_stop)[k])
  return {
      # None when early stopping is off or no epoch was ever recorded (e.g. a NaN loss).
      "best_epoch": (int(np.asarray(mon.best_epoch)[k])
                     if es is not None and int(np.asarray(mon.best_epoch)[k]) >= 0 else None),
      "stopped_epoch": int(np.asarray(mon.stopped_epoch)[k]) if stopped else None,
      "stop_reason": (early_stopping.STOP_REASONS[int(np.asarray(mon.stop_reason)[k])]
                      if stopped else "max_epochs"),
      "best_monitor_value": float(np.asarray(mon.best)[k]) if es is not None else None,
  }


def weight_summary(params) -> dict:
  """Kernel L2 norm, L1 norm and sparsity of one member's (selected) parameters, as
  `penalties.weight_stats(params, "")` defines them, computed in numpy on the host (eager jnp
  would compile a small program per operation: ~1 s at the end of every run)."""
  mask = penalties.make_mask(params, "")
  leaves = [np.asarray(w, np.float64) for w, keep in zip(jax.tree.leaves(params),
                                                          jax.tree.leaves(mask)) if keep]
  if not leaves:
    return {"l2_norm": 0.0, "l1_norm": 0.0, "sparsity": 0.0}
  return {"l2_norm": float(np.sqrt(sum(np.sum(w * w) for w in leaves))),
          "l1_norm": float(sum(np.sum(np.abs(w)) for w in leaves)),
          "sparsity": float(sum(np.sum(w == 0) for w in leaves) / sum(w.size for w in leaves))}


def member_slice(tree, k: int):
  return jax.tree.map(lambda a: a[k], tree)
