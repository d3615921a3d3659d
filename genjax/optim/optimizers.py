"""The optimizer: one optax chain built from config, hyperparameters injectable.

`make_optimizer` builds, in order (AdamW's placement of the decay):

  clip_by_global_norm(c)                        if grad_clip_norm > 0
  base scaling   u = adam(g) | trace(g) | g     adam/adamw | momentum | sgd, and nadam,
                 | rms(g) | rss(g) | lion(g)    rmsprop, adagrad, lion (`OPTIMIZERS`,
                                                one factory each)
  decayed weights u ← u + wd·w (mask)           adamw's weight_decay; penalty
                                                "weight_decay" (pre_lr stage)
  learning rate  u ← −lr·shape(t)·u             shape from `schedule`
  post-update    e.g. proximal L1 u ← S(w + u) − w    (penalty "l1_prox")

so an AdamW step is w ← w − lr_t·(adam(g) + wd·w), as `optax.adamw`.

The whole chain is wrapped in `optax.inject_hyperparams`: `learning_rate`
(the peak; the schedule multiplies it), `weight_decay` (adamw only) and
`<penalty>_strength` for each enabled transform penalty live in
`opt_state.hyperparams` as arrays. `set_hyperparams` overrides them, e.g. one
value per member under `jax.vmap`, without recompiling per value.

To add an optimizer, register its base scaling (the transforms between gradient
clipping and the learning rate), reading the fields of `default_config()` (a new name:
built-in ones are refused):

  import optax
  from genjax.optim import register     # = genjax.optim.optimizers.register

  @register("yogi")
  def yogi(c):
    return [optax.scale_by_yogi(b1=c["b1"], b2=c["b2"], eps=c["eps"])]

`--config.optimizer.name=yogi` then builds clip -> scale_by_yogi -> penalties ->
learning rate. Learning-rate shapes are registered in `LR_SCHEDULES` likewise.
"""

import dataclasses
import inspect
import math
import re
from typing import Callable

import jax.numpy as jnp
import ml_collections
import optax

from genjax.optim import penalties
from genjax.errors import ConfigError
from genjax.registry import Registry


@dataclasses.dataclass(frozen=True)
class Optimizer:
  """A registered optimizer: `scaling(c) -> [optax.GradientTransformation, ...]`, the base
  scaling built from the resolved optimizer fields `c` (a dict of `default_config()`'s
  fields). `decoupled_weight_decay`: it takes `optimizer.weight_decay` as an injected
  hyperparameter, applied as u ← u + wd·w on kernels right after `scaling` (AdamW's place)."""
  name: str
  scaling: Callable[[dict], list]
  decoupled_weight_decay: bool = False


OPTIMIZERS: Registry[Optimizer] = Registry("optimizer", config_key="optimizer.name")

# Learning-rate shapes: `shape(total=, warmup=, end=) -> schedule step -> [0, 1]`, with
# total/warmup in steps and end = final_lr_fraction (the learning rate is lr · shape(t)).
LR_SCHEDULES: Registry[Callable[..., optax.Schedule]] = Registry(
    "learning-rate schedule", config_key="optimizer.schedule")


def register(name: str, *, decoupled_weight_decay: bool = False):
  """Decorator registering `scaling(c) -> [transforms]` (a list, or one transform) as
  optimizer `name` (see `Optimizer`); ValueError if another definition holds the name."""
  def decorator(scaling):
    OPTIMIZERS.register(name, Optimizer(name, scaling, decoupled_weight_decay),
                        origin=scaling)
    return scaling
  return decorator


def _ordered(registry: Registry) -> tuple[str, ...]:
  return tuple(name for name, _ in registry.items())


def __getattr__(attr):
  """`NAMES` / `SCHEDULES`: the registered optimizer / schedule names, registration order."""
  if attr == "NAMES":
    return _ordered(OPTIMIZERS)
  if attr == "SCHEDULES":
    return _ordered(LR_SCHEDULES)
  raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


@register("sgd")
def _sgd(c):
  """u = g."""
  del c
  return []


@register("momentum")
def _momentum(c):
  """u = trace(g): heavy-ball (or Nesterov) momentum, as `optax.sgd(momentum=)`."""
  return [optax.trace(c["momentum"], nesterov=c["nesterov"])]


@register("adam")
def _adam(c):
  """u = adam(g), as `optax.adam`."""
  return [optax.scale_by_adam(c["b1"], c["b2"], c["eps"])]


@register("adamw", decoupled_weight_decay=True)
def _adamw(c):
  """u = adam(g) + wd·w (kernels), as `optax.adamw`."""
  return [optax.scale_by_adam(c["b1"], c["b2"], c["eps"])]


@register("nadam")
def _nadam(c):
  """u = adam(g) with Nesterov momentum (Dozat 2016), as `optax.nadam`."""
  return [optax.scale_by_adam(c["b1"], c["b2"], c["eps"], nesterov=True)]


@register("rmsprop")
def _rmsprop(c):
  """u = g / sqrt(v + eps), v ← ρ·v + (1 − ρ)·g², ρ = rms_decay, as `optax.rmsprop`."""
  return [optax.scale_by_rms(decay=c["rms_decay"], eps=c["eps"])]


@register("adagrad")
def _adagrad(c):
  """u = g / sqrt(Σ_t g_t² + eps), the sum started at 0.1, as `optax.adagrad`."""
  return [optax.scale_by_rss(initial_accumulator_value=0.1, eps=c["eps"])]


@register("lion")
def _lion(c):
  """u = sign(b1·m + (1 − b1)·g), m ← b2·m + (1 − b2)·g (Chen et al. 2023), as
  `optax.lion` (its authors use b2 = 0.99 and a 3-10× smaller learning rate than AdamW's)."""
  return [optax.scale_by_lion(b1=c["b1"], b2=c["b2"])]


@LR_SCHEDULES.register("constant")
def _constant(*, total, warmup, end):
  """1."""
  del total, warmup, end
  return optax.constant_schedule(1.0)


@LR_SCHEDULES.register("cosine")
def _cosine(*, total, warmup, end):
  """f + (1 − f)·½(1 + cos(π·t/T)), T = total, f = end."""
  del warmup
  return optax.cosine_decay_schedule(1.0, total, alpha=end)


@LR_SCHEDULES.register("warmup_cosine")
def _warmup_cosine(*, total, warmup, end):
  """t/W for t < W = warmup, then cosine from 1 to `end` by step `total`."""
  if warmup == 0:
    return _cosine(total=total, warmup=warmup, end=end)
  if warmup >= total:  # All warmup: nothing left to decay.
    return optax.linear_schedule(0.0, 1.0, warmup)
  return optax.warmup_cosine_decay_schedule(0.0, 1.0, warmup, total, end)


@LR_SCHEDULES.register("warmup_constant")
def _warmup_constant(*, total, warmup, end):
  """min(t/W, 1), W = warmup."""
  if warmup == 0:
    return _constant(total=total, warmup=warmup, end=end)
  return optax.linear_schedule(0.0, 1.0, warmup)


def default_config() -> ml_collections.ConfigDict:
  """Optimizer defaults.

  name: sgd | momentum | adam | adamw | nadam | rmsprop | adagrad | lion, or another name
  registered in `OPTIMIZERS`. `momentum` and `nesterov` are used by "momentum" only; `b1`,
  `b2`, `eps` by adam/adamw/nadam (lion: b1, b2; rmsprop: `rms_decay`, eps; adagrad: eps); `weight_decay` is adamw's own decoupled decay on kernels (optimizers
  without `decoupled_weight_decay` never read it and refuse a value other than 0 or the
  default, `check_settings_used`: use the penalty `penalties.weight_decay` for decoupled
  decay with any optimizer).
  schedule: constant | cosine | warmup_cosine | warmup_constant (or another
  name registered in `LR_SCHEDULES`), with
  `warmup_epochs` of linear warmup from 0 and `final_lr_fraction` the cosine
  end value as a fraction of the peak. grad_clip_norm: 0 = off.
  """
  return ml_collections.ConfigDict({
      "name": "adam",
      "learning_rate": 1e-3,
      "momentum": 0.9,
      "nesterov": False,
      "b1": 0.9,
      "b2": 0.999,
      "eps": 1e-8,
      "rms_decay": 0.9,
      "weight_decay": 1e-4,
      "schedule": "constant",
      "warmup_epochs": 0,
      "final_lr_fraction": 0.0,
      "grad_clip_norm": 0.0,
  })


def _fields(opt_cfg) -> dict:
  defaults = default_config().to_dict()
  given = opt_cfg.to_dict() if hasattr(opt_cfg, "to_dict") else dict(opt_cfg)
  unknown = sorted(set(given) - set(defaults))
  if unknown:
    raise ConfigError(f"unknown optimizer field(s) {unknown}; valid fields: "
                      f"{', '.join(defaults)}")
  return {**defaults, **given}


def check_settings_used(opt_cfg) -> None:
  """ConfigError for `optimizer.weight_decay` set (not 0, not its default) on an optimizer
  that never reads it (one without decoupled weight decay): it would change nothing."""
  c = _fields(opt_cfg)
  opt = OPTIMIZERS.get(c["name"]) if c["name"] in OPTIMIZERS else None
  if opt is None or opt.decoupled_weight_decay:
    return
  if c["weight_decay"] not in (0, default_config()["weight_decay"]):
    raise ConfigError(not_read_message(c["name"], f"optimizer.weight_decay={c['weight_decay']}"))


def not_read_message(name: str, setting: str) -> str:
  """Why a weight decay on optimizer `name` is refused, and the fix."""
  return (f"optimizer {name!r} has no use for {setting} (only optimizers with decoupled "
          "weight decay, e.g. adamw, read it): it would change nothing; use "
          "penalties.weight_decay.strength (decoupled decay with any optimizer) or "
          "optimizer.name=adamw")


def validate_config(opt_cfg, num_epochs: int | None = None) -> None:
  """Raises ConfigError (one line: what, and the fix) on the first bad value."""
  c = _fields(opt_cfg)
  for name in ("learning_rate", "weight_decay", "momentum", "b1", "b2", "eps", "rms_decay",
               "warmup_epochs", "final_lr_fraction", "grad_clip_norm"):
    value = c[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
      raise ConfigError(f"optimizer {name}={value!r} must be a finite number; e.g. "
                        f"--config.optimizer.{name}={default_config()[name]}")
  checks = [
      (c["name"] in OPTIMIZERS, f"optimizer name {c['name']!r} is unknown; use one "
       f"of: {', '.join(_ordered(OPTIMIZERS))}"),
      (c["schedule"] in LR_SCHEDULES, f"optimizer schedule {c['schedule']!r} is "
       f"unknown; use one of: {', '.join(_ordered(LR_SCHEDULES))}"),
      (c["learning_rate"] > 0, f"optimizer learning_rate={c['learning_rate']} "
       "must be > 0"),
      (c["weight_decay"] >= 0, f"optimizer weight_decay={c['weight_decay']} "
       "must be >= 0 (0 = off)"),
      (0 <= c["momentum"] < 1, f"optimizer momentum={c['momentum']} must be "
       "in [0, 1)"),
      (0 <= c["b1"] < 1 and 0 <= c["b2"] < 1, f"optimizer b1={c['b1']}, "
       f"b2={c['b2']} must be in [0, 1)"),
      (c["eps"] > 0, f"optimizer eps={c['eps']} must be > 0"),
      (0 <= c["rms_decay"] < 1, f"optimizer rms_decay={c['rms_decay']} must be in [0, 1)"),
      (c["warmup_epochs"] >= 0, f"optimizer warmup_epochs="
       f"{c['warmup_epochs']} must be >= 0"),
      (num_epochs is None or c["warmup_epochs"] <= num_epochs,
       f"optimizer warmup_epochs={c['warmup_epochs']} exceeds num_epochs="
       f"{num_epochs}; lower warmup_epochs"),
      (0 <= c["final_lr_fraction"] <= 1, f"optimizer final_lr_fraction="
       f"{c['final_lr_fraction']} must be in [0, 1]"),
      (c["grad_clip_norm"] >= 0, f"optimizer grad_clip_norm="
       f"{c['grad_clip_norm']} must be >= 0 (0 = off)"),
  ]
  for ok, message in checks:
    if not ok:
      raise ConfigError(message)


def _schedule_shape(c: dict, steps_per_epoch: int, num_epochs: int):
  """The learning-rate schedule divided by its peak: step -> [0, 1]."""
  if steps_per_epoch < 1 or num_epochs < 1:
    raise ConfigError(f"steps_per_epoch={steps_per_epoch} and num_epochs="
                      f"{num_epochs} must both be >= 1")
  return LR_SCHEDULES.get(c["schedule"])(total=steps_per_epoch * num_epochs,
                                          warmup=c["warmup_epochs"] * steps_per_epoch,
                                          end=c["final_lr_fraction"])


def learning_rate_schedule(opt_cfg, steps_per_epoch: int,
                           num_epochs: int) -> optax.Schedule:
  """step -> learning rate.

  constant: lr. cosine: lr·(f + (1 − f)·½(1 + cos(π·t/T))), T = all steps,
  f = final_lr_fraction. warmup_constant: lr·min(t/W, 1), W = warmup steps.
  warmup_cosine: linear 0 → lr over W steps, then cosine lr → f·lr by step T.
  """
  validate_config(opt_cfg, num_epochs)
  c = _fields(opt_cfg)
  shape = _schedule_shape(c, steps_per_epoch, num_epochs)
  lr = c["learning_rate"]
  return lambda step: lr * shape(step)


def learning_rate_fn(opt_cfg, *, steps_per_epoch: int, num_epochs: int):
  """(opt_state, step) -> the learning rate `make_optimizer`'s chain applies at `step`:
  the state's injected peak (a member's own under a sweep) × its `lr_scale` (when injected)
  × the schedule's shape."""
  shape = _schedule_shape(_fields(opt_cfg), steps_per_epoch, num_epochs)

  def rate(opt_state, step):
    hp = opt_state.hyperparams
    return hp["learning_rate"] * hp.get("lr_scale", 1.0) * shape(step)
  return rate


def hyperparam_name(penalty_name: str) -> str:
  return re.sub(r"\W", "_", penalty_name) + "_strength"


def make_optimizer(opt_cfg, penalties_cfg, params, *, steps_per_epoch: int,
                   num_epochs: int, lr_scale: bool = False) -> optax.GradientTransformation:
  """The optax chain of the module docstring, under `inject_hyperparams`.

  `params` (one member's) fixes the structure of the masks: kernels only for
  adamw's decay, each penalty's `mask` regex for penalty transforms. `lr_scale`: the
  learning rate is also multiplied by the injected hyperparameter `lr_scale` (initially 1;
  reduce-on-plateau sets it per member, `genjax.optim.reduce_on_plateau`).
  """
  validate_config(opt_cfg, num_epochs)
  penalties.validate_config(penalties_cfg, params)
  c = _fields(opt_cfg)
  shape = _schedule_shape(c, steps_per_epoch, num_epochs)
  tx_names = penalties.enabled(penalties_cfg, ("pre_lr", "post_update"))
  opt = OPTIMIZERS.get(c["name"])
  init = {"learning_rate": c["learning_rate"]}
  if lr_scale:
    init["lr_scale"] = 1.0
  if opt.decoupled_weight_decay:
    init["weight_decay"] = c["weight_decay"]
  for name in tx_names:
    init[hyperparam_name(name)] = float(penalties_cfg[name].strength)
  kernel_mask = penalties.make_mask(params, "") if "weight_decay" in init \
      else None

  def chain(**hp):
    scale = hp["lr_scale"] if lr_scale else 1.0
    lr = lambda step: hp["learning_rate"] * scale * shape(step)
    pre_lr, post_update = penalties.penalty_transforms(
        penalties_cfg, params, lr,
        strengths={n: hp[hyperparam_name(n)] for n in tx_names})
    parts = []
    if c["grad_clip_norm"] > 0:
      parts.append(optax.clip_by_global_norm(c["grad_clip_norm"]))
    scaling = opt.scaling(c)
    parts += [scaling] if isinstance(scaling, optax.GradientTransformation) else list(scaling)
    if opt.decoupled_weight_decay:
      parts.append(optax.add_decayed_weights(hp["weight_decay"], kernel_mask))
    parts += pre_lr
    parts.append(optax.scale_by_learning_rate(lr))
    parts += post_update
    return optax.chain(*parts)

  chain.__signature__ = inspect.Signature(
      [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY) for k in init])
  return optax.inject_hyperparams(chain)(**init)


def set_hyperparams(opt_state, **values):
  """Returns `opt_state` with injected hyperparameters replaced.

  Values may be traced, e.g. one learning rate per member:
    states = jax.vmap(lambda p, lr: set_hyperparams(tx.init(p),
                                                    learning_rate=lr))(ps, lrs)
  after which `jax.vmap(tx.update)(grads, states, ps)` uses each member's.
  """
  hp = dict(opt_state.hyperparams)
  for name, value in values.items():
    if name not in hp:
      raise ConfigError(f"optimizer has no injected hyperparameter {name!r}; "
                        f"it has: {', '.join(hp)}")
    hp[name] = jnp.asarray(value, jnp.result_type(hp[name]))
  return opt_state._replace(hyperparams=hp)
