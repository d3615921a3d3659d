"""Early stopping as a pure, vmappable monitor: Keras 3 rules plus Lightning's checks.

`EarlyStopping` holds static settings only (a frozen, hashable dataclass that
can be closed over in `jax.jit`). The per-member state is a pytree:

  es = EarlyStopping(monitor="val_loss", patience=5)
  state = es.init()                          # or es.init(batch_shape=(members,))
  state = es.update(state, value, epoch)     # pure; works under jit and vmap
  best_params = es.keep_best(state, best_params, params)   # masked snapshot
  ...
  params = es.restore(state, best_params, params)          # at the end

`update` is elementwise, so a batched state (leading member axis) can also be
updated without vmap by passing `value` with the same leading shape.
"""

import dataclasses
import math
import numbers
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
from ml_collections import config_dict

from genjax.errors import ConfigError

# train_*_running: the running mean over an epoch's training batches (training mode).
KNOWN_MONITORS = ("val_loss", "val_accuracy", "train_loss_running", "train_accuracy_running")
WEIGHT_MONITORS = ("weight_l2_norm", "weight_l1_norm", "weight_sparsity")


def monitorable(name: str) -> bool:
  """Whether `name` is a metric an epoch can log: loss/accuracy, a weight statistic, or
  `val_<output>` of a registered metric (which must then be in config.metrics)."""
  from genjax.train import metrics
  return name in KNOWN_MONITORS or name in WEIGHT_MONITORS or metrics.monitorable(name)
MODES = ("auto", "min", "max")

# Stop-reason codes: `state.stop_reason` holds the index into this tuple.
STOP_REASONS = (
    "none",
    "patience",
    "non_finite",
    "stopping_threshold",
    "divergence_threshold",
    "max_epochs",  # reserved for the driver; `update` never sets it
    "pruned",      # a search stopped the member's point at a rung (`genjax.sweeps.search`)
)
NONE, PATIENCE, NON_FINITE, STOPPING_THRESHOLD, DIVERGENCE_THRESHOLD, MAX_EPOCHS, PRUNED = (
    range(len(STOP_REASONS)))


def stop_reason_name(code) -> str:
  """The name in `STOP_REASONS` of an integer stop-reason code."""
  return STOP_REASONS[int(code)]


@flax.struct.dataclass
class EarlyStoppingState:
  """Per-member monitor state (every field an array; a leading member axis is allowed).

  Attributes:
    best: best monitored value so far (±inf, i.e. "worst", until `has_best`).
    best_epoch: epoch of `best`; -1 until the first monitored epoch is recorded.
    wait: Keras' wait counter (epochs since the wait last reset).
    should_stop: the member has stopped; later updates leave it frozen.
    stopped_epoch: epoch at which the stop fired; -1 while running.
    stop_reason: index into `STOP_REASONS`; 0 ("none") while running.
    improved: this update recorded a new best: snapshot the weights now.
  """
  best: jax.Array
  best_epoch: jax.Array
  wait: jax.Array
  should_stop: jax.Array
  stopped_epoch: jax.Array
  stop_reason: jax.Array
  improved: jax.Array

  @property
  def has_best(self) -> jax.Array:
    """Whether a best has been recorded (Keras restores weights only then)."""
    return self.best_epoch >= 0


def _check_number(name: str, value, *, allow_none: bool, nonneg: bool = False,
                  integer: bool = False):
  """Returns `value` as a Python int/float/None, or raises ConfigError."""
  if value is None:
    if allow_none:
      return None
    raise ConfigError(f"early_stopping.{name} is None; set it to a number.")
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    raise ConfigError(
        f"early_stopping.{name}={value!r} is not a number; set it to a "
        f"{'non-negative integer' if integer else 'finite number'}.")
  if integer:
    if float(value) != int(value):
      raise ConfigError(
          f"early_stopping.{name}={value!r} is not an integer; set a whole "
          "number >= 0.")
    value = int(value)
  else:
    value = float(value)
    if not math.isfinite(value):
      raise ConfigError(
          f"early_stopping.{name}={value!r} is not finite; set a finite number"
          f"{' or None' if allow_none else ''}.")
  if nonneg and value < 0:
    raise ConfigError(f"early_stopping.{name}={value!r} is negative; set it >= 0.")
  return value


@dataclasses.dataclass(frozen=True)
class EarlyStopping:
  """Static early-stopping settings; `init`/`update` are the pure monitor.

  Rules applied by `update(state, value, epoch)` (epoch is 0-based), in order:

  1. Frozen: if `state.should_stop`, nothing changes except `improved=False`.
  2. Warm-up: if `epoch < start_from_epoch` the epoch is not monitored (no
     change except `improved=False`), as in Keras.
  3. Lightning checks, first match wins for `stop_reason`:
     `check_finite` and `value` is NaN/±inf -> stop "non_finite" (the value is
     not recorded: best, best_epoch and wait are unchanged);
     `value` strictly better than `stopping_threshold` -> stop
     "stopping_threshold"; `value` strictly worse than `divergence_threshold`
     -> stop "divergence_threshold". Thresholds ignore `min_delta`.
  4. Keras 3 bookkeeping (every monitored value not rejected by rule 3's
     finiteness check): `wait += 1`; the value is an improvement if no best
     exists yet (so the first monitored epoch always is, even NaN when
     `check_finite=False`), else if `value + min_delta < best` ("min") or
     `value - min_delta > best` ("max"), strictly. An improvement sets
     `best`, `best_epoch`, `improved=True`, and resets `wait = 0` only if
     `baseline is None` or the value also improves on `baseline` by the same
     `min_delta` rule.
  5. Patience (Keras): a monitored epoch that is not an improvement stops
     with "patience" when `wait >= patience and epoch > 0`.

  A stop sets `should_stop`, `stopped_epoch = epoch` and `stop_reason`. Mode
  "auto" means "max" if the monitor name contains "acc" or "auc", else "min".
  `restore_best_weights`: at the end the driver takes the best snapshot if a
  best exists (`restore`). Decisions equal Keras 3's `EarlyStopping` epoch for
  epoch when the Lightning extras are off (`check_finite=False`, thresholds
  None); Keras' `best_epoch` is 0 where ours is -1 (no monitored epoch yet).
  Values are compared in the state's float dtype (float32 by default).
  """
  monitor: str = "val_loss"
  mode: str = "auto"
  min_delta: float = 0.0
  patience: int = 0
  baseline: float | None = None
  start_from_epoch: int = 0
  restore_best_weights: bool = True
  check_finite: bool = True
  stopping_threshold: float | None = None
  divergence_threshold: float | None = None

  def __post_init__(self):
    self.validate()

  def validate(self) -> None:
    """Raises ConfigError on a bad setting; normalizes numbers to Python types."""
    if self.monitor in ("train_loss", "train_accuracy"):
      raise ConfigError(
          f"early_stopping.monitor={self.monitor!r} is now '{self.monitor}_running' (the "
          "running mean over an epoch's training batches); set that name")
    if not monitorable(self.monitor):
      raise ConfigError(
          f"early_stopping.monitor={self.monitor!r} is unknown; use one of "
          f"{', '.join(KNOWN_MONITORS)}, {', '.join(WEIGHT_MONITORS)} or val_<metric> of a "
          "metric in config.metrics (genjax.train.metrics).")
    if self.mode not in MODES:
      raise ConfigError(
          f"early_stopping.mode={self.mode!r} is unknown; use one of "
          f"{', '.join(MODES)}.")
    for name in ("restore_best_weights", "check_finite"):
      if not isinstance(getattr(self, name), bool):
        raise ConfigError(
            f"early_stopping.{name}={getattr(self, name)!r} is not a bool; set "
            "True or False.")
    checked = {
        "min_delta": _check_number("min_delta", self.min_delta,
                                   allow_none=False, nonneg=True),
        "patience": _check_number("patience", self.patience, allow_none=False,
                                  nonneg=True, integer=True),
        "start_from_epoch": _check_number(
            "start_from_epoch", self.start_from_epoch, allow_none=False,
            nonneg=True, integer=True),
    }
    for name in ("baseline", "stopping_threshold", "divergence_threshold"):
      checked[name] = _check_number(name, getattr(self, name), allow_none=True)
    for name, value in checked.items():
      object.__setattr__(self, name, value)

  @property
  def resolved_mode(self) -> str:
    """"min" or "max" ("auto": "max" if the monitor names acc/auc, else "min")."""
    if self.mode != "auto":
      return self.mode
    return "max" if ("acc" in self.monitor or "auc" in self.monitor) else "min"

  def _better(self, value, reference, delta):
    """Strict `value` beats `reference` by more than `delta` in this mode."""
    if self.resolved_mode == "min":
      return value + delta < reference
    return value - delta > reference

  def init(self, batch_shape=(), dtype=jnp.float32) -> EarlyStoppingState:
    """A fresh state; `batch_shape=(members,)` gives one state per member."""
    worst = jnp.inf if self.resolved_mode == "min" else -jnp.inf
    ints = lambda v: jnp.full(batch_shape, v, jnp.int32)
    bools = jnp.zeros(batch_shape, jnp.bool_)
    return EarlyStoppingState(
        best=jnp.full(batch_shape, worst, dtype),
        best_epoch=ints(-1),
        wait=ints(0),
        should_stop=bools,
        stopped_epoch=ints(-1),
        stop_reason=ints(NONE),
        improved=bools)

  def update(self, state: EarlyStoppingState, value, epoch) -> EarlyStoppingState:
    """One monitored epoch (see the class rules). Pure; jit/vmap-safe."""
    value = jnp.asarray(value, state.best.dtype)
    epoch = jnp.asarray(epoch, jnp.int32)
    active = ~state.should_stop & (epoch >= self.start_from_epoch)

    # Rule 3: Lightning's checks (`_evaluate_stopping_criteria` order).
    non_finite = jnp.logical_and(self.check_finite, ~jnp.isfinite(value))
    if self.stopping_threshold is None:
      reached = jnp.zeros_like(non_finite)
    else:
      reached = self._better(value, self.stopping_threshold, 0.0)
    if self.divergence_threshold is None:
      diverged = jnp.zeros_like(non_finite)
    else:
      diverged = self._better(self.divergence_threshold, value, 0.0)

    # Rule 4: Keras 3 `on_epoch_end` bookkeeping.
    record = active & ~non_finite
    is_improvement = ~state.has_best | self._better(value, state.best,
                                                    self.min_delta)
    reset = is_improvement
    if self.baseline is not None:
      reset = reset & self._better(value, self.baseline, self.min_delta)
    wait = jnp.where(reset, 0, state.wait + 1)
    improved = record & is_improvement

    # Rule 5: Keras' patience check runs only when there was no improvement.
    out_of_patience = (~is_improvement & (wait >= self.patience) & (epoch > 0))
    reason = jnp.select(
        [non_finite, reached, diverged, out_of_patience],
        [NON_FINITE, STOPPING_THRESHOLD, DIVERGENCE_THRESHOLD, PATIENCE],
        NONE).astype(jnp.int32)
    reason = jnp.where(active, reason, state.stop_reason)
    stopping = active & (reason != NONE)
    return EarlyStoppingState(
        best=jnp.where(improved, value, state.best),
        best_epoch=jnp.where(improved, epoch, state.best_epoch),
        wait=jnp.where(record, wait, state.wait),
        should_stop=state.should_stop | stopping,
        stopped_epoch=jnp.where(stopping, epoch, state.stopped_epoch),
        stop_reason=reason,
        improved=improved)

  def keep_best(self, state: EarlyStoppingState, best_tree: Any, tree: Any) -> Any:
    """`tree` where `state.improved`, else `best_tree` (per member, broadcast)."""
    return jax.tree.map(lambda b, t: _select(state.improved, t, b),
                        best_tree, tree)

  def restore(self, state: EarlyStoppingState, best_tree: Any, tree: Any) -> Any:
    """Final weights: `best_tree` if `restore_best_weights` and a best exists."""
    if not self.restore_best_weights:
      return tree
    return jax.tree.map(lambda b, t: _select(state.has_best, b, t),
                        best_tree, tree)


def _select(mask, on_true, on_false):
  """`jnp.where` with `mask` broadcast over the trailing axes of the leaves."""
  mask = jnp.reshape(mask, mask.shape + (1,) * (jnp.ndim(on_true) - mask.ndim))
  return jnp.where(mask, on_true, on_false)


def default_config() -> ml_collections.ConfigDict:
  """Defaults for `config.early_stopping`.

  Optional numbers (`baseline`, `stopping_threshold`, `divergence_threshold`)
  are `ml_collections` float placeholders: None by default, yet typed so that
  `--config.early_stopping.baseline=0.5` parses as a float.
  """
  return ml_collections.ConfigDict({
      "enabled": True,              # false: every member trains num_epochs, the last is selected
      "monitor": "val_loss",        # the value watched, selected on and checkpointed by
      "mode": "auto",               # min | max | auto (max if the monitor names acc/auc)
      "min_delta": 0.0,             # an improvement beats the best by more than this
      "patience": 10,               # epochs without improvement before a member stops
      # Patience resets only on values that also beat this.
      "baseline": config_dict.placeholder(float),
      "start_from_epoch": 0,        # epochs before this one are not monitored (warm-up)
      "restore_best_weights": True,  # select the best epoch's weights (false: the last epoch's)
      "check_finite": True,         # stop a member whose monitored value is NaN or infinite
      # Stop once the monitor is better than this.
      "stopping_threshold": config_dict.placeholder(float),
      # Stop once the monitor is worse than this.
      "divergence_threshold": config_dict.placeholder(float),
  })


def from_config(cfg: ml_collections.ConfigDict) -> EarlyStopping | None:
  """An `EarlyStopping` from `cfg` (keys of `default_config()`); None if disabled.

  Missing keys take the defaults; an unknown key raises ConfigError.
  """
  defaults = default_config()
  unknown = sorted(set(cfg.keys()) - set(defaults.keys()))
  if unknown:
    raise ConfigError(
        f"early_stopping has unknown key(s) {', '.join(unknown)}; use only "
        f"{', '.join(defaults.keys())}.")
  settings = {k: (cfg[k] if k in cfg else defaults[k]) for k in defaults.keys()}
  enabled = settings.pop("enabled")
  if not isinstance(enabled, bool):
    raise ConfigError(
        f"early_stopping.enabled={enabled!r} is not a bool; set True or False.")
  return EarlyStopping(**settings) if enabled else None


def never_stopping(monitor: str) -> EarlyStopping:
  """A monitor that tracks `monitor` (its best value and epoch) but never stops a member:
  what a run without early stopping, or a refit, still records."""
  return EarlyStopping(monitor=monitor, patience=10**9, check_finite=False)
