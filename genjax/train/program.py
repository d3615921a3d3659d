"""The compiled side of training: `build_program(setup, plans) -> Program`.

A `Program` trains M members (folds × sweep points) at once. Its pieces are pure and
compiled once for the whole run:

* `start()` -> the initial `RunState` (leading member axis), compiled while the epoch
  program compiles in a second thread (XLA compiles outside the GIL);
* `run_epoch(state, epoch)` -> (state, metrics, improved): one `lax.scan` of training steps
  per member, the validation pass (loss, accuracy and `config.metrics`), weight statistics,
  the early-stopping update and its best-weights select, vmapped over members and placed on
  devices (`parallel.place_epoch`); a member whose early stopping fired is frozen;
* `evaluate(params, plan, x, y, idx, weight)` and `predict(params, plan, x, idx)`: one
  member's, outside any device mapping (map them over members with `members_map`, in the
  program's member blocks);
* `select(state)` -> each member's selected weights (best epoch when early stopping
  restores them, else the last) and selected epoch, as host arrays.

Padding members: when the members do not fill whole member blocks (`parallel.member_block`)
on every device (`parallel.Layout.padding`, e.g. 5 folds over 2 CPU devices), the program
trains `padding` copies of the last member after the M real ones, so that each device holds
the same count of whole blocks. A copy has that member's plan, keys and data, so it computes what the member
does; its rows are never produced. The state (`start`, `run_epoch`, checkpoints) carries
M + padding members; `real(tree)` drops the copies from anything with the member axis.

The host loop that drives it is `genjax.train.fit`; the epoch's formulation (scan or a host
loop of steps) is `genjax.train.epoch_loop`'s.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from genjax import optim
from genjax.train import early_stopping, hparams
from genjax.optim import penalties, reduce_on_plateau
from genjax.data import augment
from genjax.train import epoch_loop as epoch_loops
from genjax.train import parallel
from genjax.train.members import MemberPlan, init_keys, pad_members, stack_plans
from genjax.train.steps import Plan, Steps, TrainState, steps_per_epoch

# The initial state runs once: compiled for compile speed (LLVM -O1 cuts its compile time from
# ~1.3 s to ~0.5 s on the K-fold benchmark, same bits). The epoch program keeps XLA's default:
# at -O1 it compiles ~25% faster but a CNN's convolutions round differently (MLPs match).
INIT_COMPILER_OPTIONS = {"xla_backend_optimization_level": 1}


@flax.struct.dataclass
class RunState:
  """Everything an epoch changes (leading member axis), checkpointed as one pytree."""
  train: TrainState
  monitor: Any        # EarlyStopping state
  best_params: Any    # params at each member's best epoch so far (on device)
  plateau: Any = None  # reduce-on-plateau state (`genjax.optim.reduce_on_plateau`), or None: off


@dataclasses.dataclass
class Program:
  """M members' compiled training (see the module docstring). Host arrays: member axis first."""
  plans: list[MemberPlan]
  plan: Plan                                  # the M members' stacked plans (on device)
  member_names: list[str]                     # TensorBoard directories, checkpoint names
  named_members: bool                         # rows carry a `member` field (sweeps)
  early_stopping: early_stopping.EarlyStopping | None   # None: never stops early
  monitor: early_stopping.EarlyStopping       # what is tracked (never stops when off)
  x_train: jax.Array
  y_train: jax.Array
  evaluate: Callable
  predict: Callable
  _init_state: Callable
  _run_epoch: Callable
  _keys: jax.Array
  epoch_loop: str = "scan"                    # "scan" or "steps" (`epoch_loop`)
  member_layout: str = "vmap"                 # "vmap" or "side_by_side" (`member_layout`)
  convolutions: str | None = None             # "patches" or "xla" (`model.conv`); None: no convs
  use_ema: bool = False                       # the evaluated weights are `TrainState.ema`
  layout: parallel.Layout | None = None       # the devices and how members use them
  compaction: bool = False                    # stopped members leave the epoch program
  _epoch_plan: Plan | None = None             # `plan` with the padding members; None: plan
  _epoch_inputs: tuple | None = None          # (epoch plan, x_train, y_train) where the
                                              # compiled epoch takes them (`start`)

  @property
  def padding(self) -> int:
    """Copies of the last member trained after the real ones (see the module docstring)."""
    return self.layout.padding if self.layout is not None else 0

  @property
  def epoch_plan(self) -> Plan:
    """The plan the epoch program trains: `plan` and its padding members."""
    return self.plan if self._epoch_plan is None else self._epoch_plan

  def real(self, tree):
    """`tree` (member axis first, M + padding) without its padding members, on the host
    when there are any (as is when none)."""
    if not self.padding:
      return tree
    m = self.num_members
    return jax.tree.map(lambda a: np.asarray(a)[:m], jax.device_get(tree))

  @property
  def placement(self) -> dict:
    """{"axis": "single" | "members" | "data", "devices": count, "member_block": B,
    "member_bits": what a member's numbers depend on (`parallel.member_bits`)[, "padding":
    members added to fill blocks and devices]}: results.json's `parallel`."""
    if self.layout is None:
      return {"axis": "single", "devices": 1}
    padding = {"padding": self.layout.padding} if self.layout.padding else {}
    return {"axis": self.layout.axis, "devices": self.layout.num_devices,
            "member_block": self.layout.block,
            "member_bits": parallel.member_bits(self.layout,
                                                self.member_layout == "side_by_side"),
            **padding}

  def members_map(self, member_fn: Callable, in_axes: tuple) -> Callable:
    """jit(fn) of one member's `member_fn` over any number of members, in this program's
    member blocks (`parallel.members_map`): a member's evaluation does not depend on how
    many are evaluated with it."""
    return parallel.members_map(member_fn, in_axes, self.layout.block if self.layout else 1)

  def placed(self, state: RunState) -> RunState:
    """`state` (e.g. restored from a checkpoint, committed to one device) where the compiled
    epoch program takes it: its members split over the devices of the `members` layout."""
    shardings = getattr(self._run_epoch, "input_shardings", None)
    if shardings is None or jax.process_count() > 1:
      # Several processes: the checkpoint restores global arrays already sharded as the
      # program takes them (a device_put of a non-addressable array would fail).
      return state
    return jax.device_put(state, shardings[0][0])

  def weights(self, train: TrainState):
    """The weights a member is evaluated, selected and tested with: the moving average when
    `ema.decay` > 0, else the trained parameters."""
    return train.ema if self.use_ema else train.params

  @property
  def num_members(self) -> int:
    return len(self.plans)

  @property
  def has_validation(self) -> bool:
    return any(len(p.val_idx) for p in self.plans)

  def start(self) -> RunState:
    """The initial state; compiles the epoch program meanwhile (both are needed at once)."""
    run_epoch, plan = self._run_epoch, self.epoch_plan
    if not hasattr(run_epoch, "lower"):   # a host loop, or devices side by side
      if hasattr(run_epoch, "input_shardings"):
        self._epoch_inputs = self._placed_inputs()
      return self._init_state(self._keys, plan.hparams)
    abstract = jax.eval_shape(self._init_state, self._keys, plan.hparams)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
      compiled = pool.submit(lambda: run_epoch.lower(abstract, plan, self.x_train,
                                                     self.y_train, 0).compile())
      state = self._init_state(self._keys, plan.hparams)
      self._run_epoch = compiled.result()
    self._epoch_inputs = self._placed_inputs()
    return state

  def _placed_inputs(self) -> tuple | None:
    """The epoch's plan and data, placed once where the compiled epoch takes them (on
    several devices of one process), so that no epoch copies them. Copied from the host: a
    device-to-device copy would compile a small program per array shape. `plan`, `x_train`
    and `y_train` stay as they are, for `evaluate` and `predict` outside the mapping."""
    shardings = getattr(self._run_epoch, "input_shardings", None)
    if shardings is None or self.layout is None or self.layout.axis == "single" \
        or jax.process_count() > 1:
      return None
    inputs = (self.epoch_plan, self.x_train, self.y_train)
    return jax.device_put(jax.device_get(inputs), tuple(shardings[0][1:4]))

  def run_epoch(self, state: RunState, epoch: int):
    """(state, metrics {name: (M,)}, improved (M,)) after epoch `epoch` (dispatched async)."""
    plan, x, y = self._epoch_inputs or (self.epoch_plan, self.x_train, self.y_train)
    return self._run_epoch(state, plan, x, y, epoch)

  def member_epochs(self, monitor, epochs_run: int) -> dict:
    """What the run computed, from the members' final early-stopping state (`monitor`, real
    members, host; so a resumed run records the same): results.json's `compaction`.

    A member trains `stopped_epoch + 1` epochs when it stopped (early stopping, pruning,
    its own epoch limit), else `epochs_run`. `member_epochs` = M · epochs_run;
    `frozen_fraction` = 1 − Σ trained / member_epochs: the share a program without
    compaction computes for members that no longer train. `computed_member_epochs`: what
    this program computed, padding included — a block of B members runs as long as its
    longest-training member (with compaction), or every epoch (without)."""
    m = self.num_members
    stopped = np.asarray(monitor.should_stop).reshape(m)
    trained = np.where(stopped, np.asarray(monitor.stopped_epoch).reshape(m) + 1, epochs_run)
    trained = np.minimum(trained, epochs_run)
    full = np.concatenate([trained, np.repeat(trained[-1:], self.padding)])
    block = self.layout.block if self.layout is not None else 1
    per_block = full.reshape(-1, block).max(axis=1) if self.compaction else \
        np.full(len(full) // block, epochs_run)
    total = m * epochs_run
    return {"enabled": bool(self.compaction), "member_epochs": int(total),
            "trained_member_epochs": int(trained.sum()),
            "frozen_fraction": float(1 - trained.sum() / total) if total else 0.0,
            "computed_member_epochs": int(per_block.sum() * block),
            "member_block": int(block)}

  def stop_members(self, state: RunState, members, epoch: int) -> RunState:
    """`state` with `members` (indices among the real ones) stopped after epoch `epoch`,
    reason "pruned", as early stopping stops a member: frozen from the next epoch (and with
    compaction out of the epoch program), selected weights as early stopping's rule gives
    them. Their padding copies stop with them. Members already stopped keep their record."""
    mask = np.zeros(self.num_members + self.padding, bool)
    mask[np.asarray(members, int)] = True
    if self.padding and mask[self.num_members - 1]:
      mask[self.num_members:] = True
    mon = state.monitor
    host = jax.device_get(mon.should_stop)
    new = mask & ~np.asarray(host)
    if not new.any():
      return state
    def put(a, v):   # on the host, placed back as the state's array is
      old = np.asarray(jax.device_get(a))
      return jax.device_put(np.where(new, v, old).astype(old.dtype), a.sharding)
    return state.replace(monitor=mon.replace(
        should_stop=put(mon.should_stop, True), stopped_epoch=put(mon.stopped_epoch, epoch),
        stop_reason=put(mon.stop_reason, early_stopping.PRUNED)))

  def select(self, state: RunState, epochs_run: int) -> tuple[Any, np.ndarray]:
    """(selected params, selected epoch (M,)) on the host, after `epochs_run` epochs.

    A member's selected weights are its best epoch's when early stopping restores best
    weights and a best exists, else its last trained epoch's: where it stopped, else the
    run's last epoch.
    """
    m = self.num_members
    state = self.real(state)
    mon = jax.device_get(state.monitor)
    restore = self._restores(mon)
    # On the host (a few hundred KB): no extra program to compile for one select.
    best, final = jax.device_get((state.best_params, self.weights(state.train)))
    selected = jax.tree.map(
        lambda b, f: np.where(restore.reshape((m,) + (1,) * (b.ndim - 1)), b, f), best, final)
    return selected, self.selected_epoch(mon, epochs_run)

  def selected_epoch(self, mon, epochs_run: int) -> np.ndarray:
    """(M,) the epoch `select` takes each member's weights from, given the host copy `mon`
    of the members' early-stopping state after `epochs_run` epochs."""
    last_epoch = np.where(np.asarray(mon.should_stop), np.asarray(mon.stopped_epoch),
                          epochs_run - 1)
    return np.where(self._restores(mon), np.asarray(mon.best_epoch), last_epoch)

  def _restores(self, mon) -> np.ndarray:
    """(M,) bool: the member's selected weights are its best epoch's."""
    es = self.early_stopping
    return np.broadcast_to((es is not None and es.restore_best_weights)
                           & (np.asarray(mon.best_epoch) >= 0), (self.num_members,))


def _ema_fn(config, routes) -> Callable:
  """(ema, params, hparams) -> d·ema + (1 − d)·params, d the member's `ema.decay`."""
  key, decay = routes["ema"].get("decay"), float(config.ema.decay)

  def update(ema, params, hp):
    d = hp[key] if key else decay
    return optax.incremental_update(params, ema, step_size=1.0 - d)
  return update


def _living(rs: RunState, *_) -> jax.Array:
  """The members an epoch computes: those whose training has not stopped."""
  return jnp.logical_not(rs.monitor.should_stop)


def _idle(member_epoch: Callable) -> Callable:
  """What `member_epoch` gives a stopped member, without computing it: its state unchanged
  but for `monitor.improved` (False: nothing recorded), metrics NaN (no row reads them),
  not improved. Equal, leaf for leaf, to the computed epoch of a stopped member (tested)."""

  def idle(rs: RunState, plan, x, y, epoch):
    metrics = jax.eval_shape(member_epoch, rs, plan, x, y, epoch)[1]
    rs = rs.replace(monitor=rs.monitor.replace(improved=jnp.zeros_like(rs.monitor.improved)))
    nan = lambda s: jnp.full(s.shape, jnp.nan if jnp.issubdtype(s.dtype, jnp.floating) else 0,  # noqa: E731
                             s.dtype)
    return (rs, jax.tree.map(nan, metrics),
            jnp.zeros((), bool))
  return idle


def _routes(plans: list[MemberPlan]) -> dict[str, dict[str, str]]:
  return hparams.routes(plans[0].hparams)


def build_program(setup, plans: list[MemberPlan], *, member_names: list[str] | None = None,
                  use_early_stopping: bool = True,
                  epoch_limits: list[int] | None = None) -> Program:
  """Compiles (lazily) the training of `plans` on `setup`'s data and model.

  `setup` is a `genjax.run.setup.Setup` (config, data, model, early stopping, metrics).
  `member_names` (sweeps: "point/foldK") also label each metric row; by default members are
  "fold<id>" (several) or "run" (one).
  `use_early_stopping=False` trains every member for the epochs `fit` is given (a refit),
  still tracking the monitored value. `epoch_limits` gives each member its own number of
  epochs (nested CV's refits): member m freezes after epoch epoch_limits[m] − 1, its stop
  reason "max_epochs", its selected weights those of that epoch.
  """
  config, m = setup.config, len(plans)
  es = setup.es if use_early_stopping else None
  monitor_es = es or early_stopping.never_stopping(setup.monitor.monitor)
  if epoch_limits is not None and (len(epoch_limits) != m or min(epoch_limits) < 1):
    raise ValueError(f"epoch_limits needs one count >= 1 per member, got {epoch_limits}")
  plan = stack_plans(plans, setup.splits.train_x, mode=config.data.standardize, seed=config.seed,
                     epoch_limits=epoch_limits)
  template = setup.model.param_shapes   # shapes only, for masks
  # Padding members pay where one device leaves cores idle: the MLP's 5 folds ran 1.9x faster
  # as 3 + 3 on 2 CPU devices, while the 2D CNN's large products keep both cores busy on one
  # (6 members on 2 devices took 10.1 s per epoch, 5 on one 10.0 s; BENCHMARKS.md, "CPU
  # devices"). Models with convolutions take the most devices that divide their members.
  layout = parallel.resolve(config.parallel, num_members=m, batch_size=config.batch_size,
                            pad=not epoch_loops.has_conv(template))
  epoch_steps = steps_per_epoch(max(len(p.train_idx) for p in plans), config.batch_size)
  tx, rop_cfg, use_ema = _member_optimizer(config, template, epoch_steps)
  routes = _routes(plans)
  weights = lambda train: train.ema if use_ema else train.params  # noqa: E731 (Program.weights)
  fns = _step_fn_args(setup, routes, tx, epoch_steps, use_ema)
  plain = Steps(**fns)   # evaluate, predict for callers, outside any device mapping
  sharded = (Steps(**fns, axis_name=parallel.DATA_AXIS, num_shards=layout.num_devices)
             if layout.axis == "data" else plain)
  loop = epoch_loops.resolve(config.get("epoch_loop", "auto"), template, layout.axis,
                             setup.model.conv)
  member_finish = _member_finish(monitor_es, weights, rop_cfg=rop_cfg)

  def member_epoch(rs: RunState, member_plan: Plan, x, y, epoch):
    frozen = rs.monitor.should_stop
    y = y if member_plan.labels is None else member_plan.labels
    train, train_metrics = sharded.train_epoch(rs.train, member_plan, x, y, epoch, frozen)
    val = sharded.evaluate(weights(train), member_plan, x, y, member_plan.val_idx,
                           member_plan.val_weight)
    return member_finish(rs, member_plan, train, train_metrics, val, epoch)

  members = epoch_loops.member_layout(loop, m + layout.padding)
  compaction = bool(config.parallel.get("compaction", True)) and loop == "scan"
  if loop == "steps":
    run_epoch = epoch_loops.stepped_epoch(sharded, layout, member_finish, plan,
                                          config.batch_size, unroll=members == "side_by_side",
                                          weights=weights)
  elif compaction:
    run_epoch = parallel.place_epoch(member_epoch, layout, live=_living, idle=_idle(member_epoch))
  else:
    run_epoch = parallel.place_epoch(member_epoch, layout)
  ids = [p.member_id for p in plans]
  names = member_names or ([f"fold{i}" for i in ids] if m > 1 else ["run"])
  return Program(plans=list(plans), plan=plan, member_names=list(names),
                 named_members=member_names is not None,
                 early_stopping=es, monitor=monitor_es, x_train=setup.x_train,
                 y_train=setup.y_train, evaluate=plain.evaluate, predict=plain.predict,
                 _init_state=_init_state_fn(setup.model, tx, monitor_es, routes["optimizer"],
                                            use_ema, rop_cfg, layout),
                 _run_epoch=run_epoch, epoch_loop=loop, member_layout=members,
                 convolutions=setup.model.conv if epoch_loops.has_conv(template) else None,
                 use_ema=use_ema, layout=layout, compaction=compaction,
                 _keys=init_keys(list(plans) + [plans[-1]] * layout.padding, config.seed),
                 # Padding members (module docstring): copies of the last member's plan.
                 _epoch_plan=pad_members(plan, layout.padding))


def _member_optimizer(config, template, epoch_steps: int) -> tuple[Any, Any, bool]:
  """(the optimizer, the reduce-on-plateau config or None when off, whether the state holds
  an EMA of the weights): what a member's state is built from besides its model."""
  rop_cfg = config.get("reduce_on_plateau")
  plateau = rop_cfg is not None and reduce_on_plateau.enabled(rop_cfg)
  # Schedules span config.num_epochs even when a driver trains fewer epochs (a K-fold refit):
  # the refit then follows the folds' learning-rate and strength trajectory for its epochs.
  tx = optim.make_optimizer(config.optimizer, config.penalties, template,
                            steps_per_epoch=epoch_steps, num_epochs=config.num_epochs,
                            lr_scale=plateau)
  use_ema = float(config.get("ema", {}).get("decay", 0.0)) > 0
  return tx, rop_cfg if plateau else None, use_ema


def member_state_shapes(setup, plans: list[MemberPlan] | None = None) -> RunState:
  """One member's initial `RunState` as `build_program(setup, plans)` builds it, as a pytree
  of `jax.ShapeDtypeStruct` without the member axis: the same `init_member`, traced by
  `jax.eval_shape` for one key and one member's hparams (float32 scalars, as `stack_plans`
  gives them), so nothing is compiled or allocated. Whatever the state holds is there:
  params, the optimizer's state and its injected hyperparameters, the EMA, BatchNorm
  statistics, the early-stopping monitor, best params, reduce-on-plateau. `plans` None: no
  swept hyperparameters (their values never change the state's shapes), one epoch of the
  whole training split."""
  config = setup.config
  n = max(len(p.train_idx) for p in plans) if plans else len(setup.splits.train_y)
  tx, rop_cfg, use_ema = _member_optimizer(config, setup.model.param_shapes,
                                           steps_per_epoch(max(n, 1), config.batch_size))
  names = sorted(plans[0].hparams) if plans else []
  init_member = _init_member_fn(setup.model, tx, setup.monitor,
                                hparams.routes(names)["optimizer"], use_ema, rop_cfg)
  key = jax.eval_shape(lambda: jax.random.key(0))
  hp = {name: jax.ShapeDtypeStruct((), jnp.float32) for name in names}
  return jax.eval_shape(init_member, key, hp)


def _step_fn_args(setup, routes: dict, tx, steps_per_epoch: int, use_ema: bool) -> dict:
  """`Steps`' arguments: the model, loss, penalty, augmentation and targets of one
  member, each taking the member's swept values from its `hparams` (`routes`)."""
  config, template = setup.config, setup.model.param_shapes
  penalty_fn = penalties.penalty_loss_fn(config.penalties, template)
  augmenter = augment.build(config.data.augment, setup.splits.input_shape,
                            setup.splits.num_classes)

  def apply_fn(params, x, *, train, rng, hparams):
    kwargs = {name: hparams[key] for name, key in routes["model"].items()}
    return setup.model.apply(params, x, train=train, rng=rng, **kwargs)

  def train_apply_fn(params, x, *, rng, hparams, weight, axis_name):
    kwargs = {name: hparams[key] for name, key in routes["model"].items()}
    return setup.model.apply_train(params, x, rng=rng, weight=weight, axis_name=axis_name,
                                   **kwargs)

  def member_penalty(params, step, hp):
    return penalty_fn(params, step, {n: hp[k] for n, k in routes["loss"].items()} or None)

  def member_augment(keys, x, y_soft, hp):
    return augmenter(keys, x, y_soft,
                     overrides={n: hp[k] for n, k in routes["augment"].items()})

  smoothing = routes["targets"].get("label_smoothing")
  alpha = float(config.get("loss", {}).get("label_smoothing", 0.0))

  def member_targets(y_soft, hp):
    """Label smoothing: (1 − α)·y + α/C with the member's α (`optax.smooth_labels`)."""
    return optax.smooth_labels(y_soft, hp[smoothing] if smoothing else alpha)

  return dict(apply_fn=apply_fn, tx=tx, penalty_fn=member_penalty,
              augmenter=None if augmenter is None else member_augment,
              targets_fn=member_targets if (smoothing or alpha > 0) else None,
              lr_fn=optim.learning_rate_fn(config.optimizer, steps_per_epoch=steps_per_epoch,
                                           num_epochs=config.num_epochs),
              ema_fn=_ema_fn(config, routes) if use_ema else None,
              train_apply_fn=train_apply_fn if setup.model.has_batch_stats else None,
              stat_mask=setup.model.stat_mask,
              num_classes=setup.splits.num_classes, batch_size=config.batch_size,
              eval_batch_size=config.eval_batch_size, extra_metrics=setup.metrics)


def _member_finish(monitor_es, weights: Callable, rop_cfg) -> Callable:
  """member_finish(rs, plan, train, train_metrics, val, epoch) -> (RunState, metrics,
  improved): one member's epoch end — its metrics, weight statistics, early-stopping update,
  best weights, and (`rop_cfg` not None) the next epoch's reduce-on-plateau scale."""

  def member_finish(rs: RunState, member_plan: Plan, train, train_metrics, val, epoch):
    frozen = rs.monitor.should_stop
    metrics = {**train_metrics, **{f"val_{k}": v for k, v in val.items()}}
    metrics.update({f"weight_{k}": v for k, v in penalties.weight_stats(weights(train), "").items()})
    monitor = monitor_es.update(rs.monitor, metrics[monitor_es.monitor], epoch)
    if member_plan.epoch_limit is not None:   # its own epoch count reached: frozen from now
      done = jnp.logical_and(jnp.logical_not(monitor.should_stop),
                             epoch + 1 >= member_plan.epoch_limit)
      monitor = monitor.replace(
          should_stop=monitor.should_stop | done,
          stopped_epoch=jnp.where(done, epoch, monitor.stopped_epoch),
          stop_reason=jnp.where(done, early_stopping.MAX_EPOCHS, monitor.stop_reason))
    improved = jnp.logical_and(monitor.improved, jnp.logical_not(frozen))
    best = jax.tree.map(lambda n, o: jnp.where(improved, n, o), weights(train), rs.best_params)
    rop_state = rs.plateau
    if rop_cfg is not None:   # the next epoch's learning-rate scale, from this epoch's value
      rop_state = reduce_on_plateau.update(rop_cfg, rs.plateau, metrics[monitor_es.monitor],
                                           monitor_es.resolved_mode, frozen)
      train = train.replace(opt_state=optim.set_hyperparams(train.opt_state,
                                                            lr_scale=rop_state.scale))
    return (RunState(train=train, monitor=monitor, best_params=best, plateau=rop_state),
            metrics, improved)
  return member_finish


def _init_state_fn(model, tx, monitor_es, opt_keys: dict, use_ema: bool, rop_cfg,
                   layout) -> Callable:
  """init_state(keys, hparams) -> the initial RunState of len(keys) members (padding
  included: whole blocks), born where the layout's epoch takes it: one member's
  initialization in the layout's member blocks (`parallel.place`), so that it is the same
  bits on any device count. Runs once: compiled at LLVM -O1, which halves its compile time
  and gives the same bits."""
  init_member = _init_member_fn(model, tx, monitor_es, opt_keys, use_ema, rop_cfg)
  if parallel.side_by_side_devices(layout):
    return parallel.SideBySide(init_member, layout, (True, True),
                               compiler_options=INIT_COMPILER_OPTIONS)
  return jax.jit(parallel.blocked(init_member, (0, 0), layout.block),
                 out_shardings=layout.state_sharding(), compiler_options=INIT_COMPILER_OPTIONS)


def _init_member_fn(model, tx, monitor_es, opt_keys: dict, use_ema: bool,
                    rop_cfg) -> Callable:
  """init_member(key, hp) -> one member's initial RunState (no member axis)."""

  def init_member(key, hp):
    params = model.init(key)
    opt_state = optim.set_hyperparams(tx.init(params), **{n: hp[k] for n, k in opt_keys.items()})
    return RunState(
        train=TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=opt_state,
                         ema=params if use_ema else None),
        monitor=monitor_es.init(batch_shape=()), best_params=params,
        plateau=None if rop_cfg is None else reduce_on_plateau.init(rop_cfg))
  return init_member
