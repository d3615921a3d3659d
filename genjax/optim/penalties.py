"""Regularization penalties: a registry of loss terms and optax transforms.

Two kinds of penalty, each registered by name with `register` (into `PENALTIES`):

* *loss* penalties add a term to the training loss. Scope "leaf" (`l2`, `l1`,
  `elastic_net`, `group_lasso`): `λ_t · Σ_{w ∈ mask} R(w)`, `R` a function of one
  leaf. Scope "tree" (`orthogonality`): `λ_t · R(θ, mask)`, `R` a function of the
  whole parameter tree θ and its boolean mask tree, so it may couple layers.
* *transform* penalties are optax `GradientTransformation`s placed in the
  optimizer chain by `genjax.optim.make_optimizer`: stage "pre_lr" goes after
  the adaptive scaling and before the learning rate (`weight_decay`, where
  AdamW puts its decay); stage "post_update" goes after the learning rate
  (`l1_prox`, a proximal step on the updated weights).

Every penalty has the config fields `strength` (λ; 0 = off), `mask` (regex over
"/"-joined parameter paths; "" = kernels only), `schedule` (a name in
`STRENGTH_SCHEDULES`: λ_t = λ · shape(t)) and `schedule_steps`, plus its own extra
fields. `default_config()` is built from the registry, so a penalty registered
before the config is built is settable from any config or flag, e.g.
`--config.penalties.group_lasso.strength=1e-3`. Loss penalties of either scope
take per-member strengths in `penalty_loss(params, step, strengths)` (sweeps).

To add a penalty, write one function with the math in its docstring (in a module
your config file imports, under a name not yet taken):

  import jax.numpy as jnp
  from genjax.optim.penalties import register, selected

  @register("cubic", power=3.0)                 # scope "leaf": R of one masked leaf
  def cubic(w, power):
    '''R(w) = Σ|w|^power.'''
    return jnp.sum(jnp.abs(w) ** power)

  @register("norm_balance", scope="tree")       # scope "tree": R of the whole tree
  def norm_balance(params, mask):
    '''R(θ) = (‖W_a‖² − ‖W_b‖²)²: W_a, W_b the first two masked leaves.'''
    (_, a), (_, b), *_ = selected(params, mask).items()
    return (jnp.sum(a ** 2) - jnp.sum(b ** 2)) ** 2

then set `--config.penalties.cubic.strength=1e-3` (and `.mask`, `.schedule`, `.power`).
"""

import dataclasses
import math
import re
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

from genjax.errors import ConfigError
from genjax.registry import Registry

KINDS = ("loss", "pre_lr", "post_update")
SCOPES = ("leaf", "tree")
COMMON_FIELDS = {"strength": 0.0, "mask": "", "schedule": "constant",
                 "schedule_steps": 0}

# Strength shapes, each in [0, 1]: λ_t = λ · shape(schedule_steps)(t).
STRENGTH_SCHEDULES: Registry[Callable[[int], optax.Schedule]] = Registry(
    "penalty strength schedule", config_key="penalties.NAME.schedule")
STRENGTH_SCHEDULES.register("constant", lambda n: optax.constant_schedule(1.0))
STRENGTH_SCHEDULES.register("linear_warmup", lambda n: optax.linear_schedule(0.0, 1.0, n))
STRENGTH_SCHEDULES.register("linear_decay", lambda n: optax.linear_schedule(1.0, 0.0, n))
STRENGTH_SCHEDULES.register("cosine_decay", lambda n: optax.cosine_decay_schedule(1.0, n))


@dataclasses.dataclass(frozen=True)
class Penalty:
  """A registered penalty: `fn`, its `kind`, its extra config `fields` and, for loss
  penalties, its `scope` ("leaf": `fn(w, **fields)`; "tree": `fn(params, mask, **fields)`)."""
  name: str
  fn: Callable[..., Any]
  kind: str
  fields: dict
  scope: str = "leaf"


PENALTIES: Registry[Penalty] = Registry("penalty", config_key="penalties")


def register(name: str, *, kind: str = "loss", scope: str = "leaf", **fields):
  """Decorator registering a penalty under `name`, with extra config `fields`.

  A "loss" penalty of scope "leaf" is `fn(w, **fields) -> R(w)` for one masked
  parameter leaf `w` (summed over the masked leaves); of scope "tree" it is
  `fn(params, mask, **fields) -> R` for the whole parameter tree and the tree of
  bools `make_mask(params, cfg.mask)`. A "pre_lr" / "post_update" penalty is
  `fn(strength, learning_rate, mask, **fields) -> optax.GradientTransformation`
  where `strength` and `learning_rate` are schedules (step -> value).

  A taken name raises ValueError unless `fn` is the same definition again (a
  re-executed file: the entry is replaced); see `genjax.registry`.
  """
  if kind not in KINDS:
    raise ValueError(f"penalty kind {kind!r} is not one of {KINDS}")
  if scope not in SCOPES or (scope == "tree" and kind != "loss"):
    raise ValueError(f"penalty scope {scope!r} is not one of {SCOPES} (\"tree\" is for "
                     "kind=\"loss\" only)")
  clash = set(fields) & set(COMMON_FIELDS)
  if clash:
    raise ValueError(f"penalty fields {sorted(clash)} are common fields")

  def decorator(fn):
    PENALTIES.register(name, Penalty(name, fn, kind, dict(fields), scope), origin=fn)
    return fn
  return decorator


def unregister(name: str) -> None:
  """Removes a registered penalty (for tests and interactive use)."""
  PENALTIES.unregister(name)


def get(name: str) -> Penalty:
  """The registered penalty `name`; ConfigError listing the registered ones otherwise."""
  if name not in PENALTIES:
    raise ConfigError(f"unknown penalty {name!r}; registered penalties are: "
                      f"{', '.join(names())}")
  return PENALTIES.get(name)


def names() -> list[str]:
  """Registered penalty names, in registration order."""
  return [name for name, _ in PENALTIES.items()]


def default_config() -> ml_collections.ConfigDict:
  """One sub-config per registered penalty, every strength 0 (off)."""
  return ml_collections.ConfigDict({
      name: {**COMMON_FIELDS, **p.fields} for name, p in PENALTIES.items()})


# ---------------------------------------------------------------- masks ---

def _key_str(k) -> str:
  for attr in ("key", "idx", "name"):
    if hasattr(k, attr):
      return str(getattr(k, attr))
  return str(k)


def param_paths(params) -> list[str]:
  """The "/"-joined key path of every leaf, in `jax.tree.leaves` order."""
  flat, _ = jax.tree_util.tree_flatten_with_path(params)
  return ["/".join(_key_str(k) for k in path) for path, _ in flat]


def make_mask(params, regex: str = ""):
  """Pytree of bools: `re.search(regex, path)`; "" = leaves named "kernel"."""
  paths = param_paths(params)
  if regex:
    try:
      pattern = re.compile(regex)
    except re.error as e:
      raise ConfigError(f"mask regex {regex!r} is invalid ({e}); "
                        "write a Python regular expression") from None
    flags = [bool(pattern.search(p)) for p in paths]
  else:
    flags = [p.rsplit("/", 1)[-1] == "kernel" for p in paths]
  if paths and not any(flags):
    what = f"mask regex {regex!r}" if regex else 'the default mask ("kernel")'
    shown = ", ".join(paths[:6]) + (", ..." if len(paths) > 6 else "")
    raise ConfigError(f"{what} matches no parameter; use a regex matching "
                      f"some of these paths: {shown}")
  return jax.tree.unflatten(jax.tree.structure(params), flags)


def _masked_leaves(params, mask):
  return [w for w, m in zip(jax.tree.leaves(params), jax.tree.leaves(mask))
          if m]


def selected(params, mask) -> dict:
  """{"/"-joined path: leaf} of the leaves where the bool tree `mask` is True, in
  `jax.tree.leaves` order: what a tree penalty usually iterates over."""
  return {path: w for path, w, m in zip(param_paths(params), jax.tree.leaves(params),
                                        jax.tree.leaves(mask)) if m}


# --------------------------------------------------------------- config ---

def _resolved(cfg, name):
  """The penalty's fields: registry defaults overridden by `cfg`."""
  sub = cfg[name]
  if not hasattr(sub, "items"):
    raise ConfigError(f"penalties.{name} must be a sub-config of fields, got "
                      f"{sub!r}; set e.g. penalties.{name}.strength instead")
  return {**COMMON_FIELDS, **get(name).fields,
          **(sub.to_dict() if hasattr(sub, "to_dict") else dict(sub))}


def enabled(penalties_cfg, kinds=KINDS) -> list[str]:
  """Names of the penalties of `kinds` whose config strength is > 0."""
  cfg = penalties_cfg
  return [n for n in cfg if n in PENALTIES and PENALTIES.get(n).kind in kinds
          and _resolved(cfg, n)["strength"] > 0]


def validate_config(penalties_cfg, params=None) -> None:
  """Raises ConfigError on a bad value; checks enabled masks on params."""
  for name in penalties_cfg:
    p = get(name)
    f = _resolved(penalties_cfg, name)
    unknown = sorted(set(f) - set(COMMON_FIELDS) - set(p.fields))
    if unknown:
      raise ConfigError(f"penalties.{name} has unknown field(s) {unknown}; "
                        f"valid: {sorted({**COMMON_FIELDS, **p.fields})}")
    if (isinstance(f["strength"], bool) or not isinstance(f["strength"], (int, float))
        or not math.isfinite(f["strength"]) or f["strength"] < 0):
      raise ConfigError(f"penalties.{name}.strength={f['strength']!r} must be a finite "
                        "number >= 0 (0 turns the penalty off)")
    try:   # the regex is checked even while the penalty is off (a sweep may turn it on)
      re.compile(f["mask"])
    except (re.error, TypeError) as e:
      raise ConfigError(f"penalties.{name}.mask={f['mask']!r} is not a valid regular "
                        f"expression ({e}); fix the regex, e.g. 'dense' or '' (kernels)") from None
    if f["schedule"] not in STRENGTH_SCHEDULES:
      shapes = ", ".join(n for n, _ in STRENGTH_SCHEDULES.items())
      raise ConfigError(f"penalties.{name}.schedule={f['schedule']!r} is "
                        f"unknown; use one of: {shapes}")
    if f["schedule"] != "constant" and f["schedule_steps"] <= 0:
      raise ConfigError(f"penalties.{name}.schedule_steps must be > 0 for "
                        f"schedule={f['schedule']!r}")
    if "l1_ratio" in f and not 0 <= f["l1_ratio"] <= 1:
      raise ConfigError(f"penalties.{name}.l1_ratio={f['l1_ratio']} must be "
                        "in [0, 1]")
    if params is not None and f["strength"] > 0:
      make_mask(params, f["mask"])


def _strength_schedule(f, strength):
  shape = STRENGTH_SCHEDULES.get(f["schedule"])(f["schedule_steps"])
  return lambda step: strength * shape(step)


def _extra(name, f):
  return {k: f[k] for k in get(name).fields}


def _check_strengths(strengths, kinds):
  for name in strengths or {}:
    if get(name).kind not in kinds:
      raise ConfigError(f"penalty {name!r} is a {get(name).kind} penalty, not "
                        f"one of {kinds}; pass its strength to the right place")


def penalty_loss_fn(penalties_cfg, params):
  """Returns `penalty_loss(params, step, strengths=None) -> scalar`.

  penalty_loss = Σ_p λ_p · shape_p(step) · R_p, summed over the loss penalties
  with config strength > 0 and those named in `strengths` (a dict name -> λ,
  possibly traced arrays, overriding config strengths), where
  R_p = Σ_{w ∈ mask_p} R_p(w) for scope "leaf" and R_p(params, mask_p) for
  scope "tree" (mask_p = make_mask(params, cfg.p.mask)). Returns 0.0 when none
  is enabled.
  """
  validate_config(penalties_cfg, params)
  on = enabled(penalties_cfg, ("loss",))

  def penalty_loss(params, step, strengths=None):
    _check_strengths(strengths, ("loss",))
    strengths = dict(strengths or {})
    total = jnp.zeros(())
    for name in dict.fromkeys(on + list(strengths)):
      f = _resolved(penalties_cfg, name) if name in penalties_cfg else {
          **COMMON_FIELDS, **get(name).fields}
      lam = _strength_schedule(f, strengths.get(name, f["strength"]))(step)
      p, mask = get(name), make_mask(params, f["mask"])
      if p.scope == "tree":
        reg = p.fn(params, mask, **_extra(name, f))
      else:
        reg = sum(p.fn(w, **_extra(name, f)) for w in _masked_leaves(params, mask))
      total = total + lam * reg
    return total
  return penalty_loss


def penalty_transforms(penalties_cfg, params, learning_rate_schedule,
                       strengths=None):
  """Optax transforms of the enabled transform penalties: (pre_lr, post_update).

  `learning_rate_schedule` is a float or a schedule step -> lr; `strengths`
  (name -> λ, possibly traced) overrides config strengths.
  """
  validate_config(penalties_cfg, params)
  _check_strengths(strengths, ("pre_lr", "post_update"))
  strengths = strengths or {}
  lr = learning_rate_schedule
  lr = lr if callable(lr) else optax.constant_schedule(lr)
  out = {"pre_lr": [], "post_update": []}
  for name in enabled(penalties_cfg, ("pre_lr", "post_update")):
    f = _resolved(penalties_cfg, name)
    lam = _strength_schedule(f, strengths.get(name, f["strength"]))
    mask = make_mask(params, f["mask"])
    out[get(name).kind].append(get(name).fn(lam, lr, mask, **_extra(name, f)))
  return out["pre_lr"], out["post_update"]


# ------------------------------------------------------- loss penalties ---

@register("l2")
def l2(w):
  """R(w) = ½‖w‖₂² (so ∇ λR = λ·w: L2 with strength λ ≡ coupled decay λ)."""
  return 0.5 * jnp.sum(jnp.square(w))


@register("l1")
def l1(w):
  """R(w) = ‖w‖₁ (∇ λR = λ·sign(w); for exact zeros use `l1_prox`)."""
  return jnp.sum(jnp.abs(w))


@register("elastic_net", l1_ratio=0.5)
def elastic_net(w, l1_ratio):
  """R(w) = α‖w‖₁ + (1 − α)·½‖w‖₂², with α = l1_ratio ∈ [0, 1]."""
  return l1_ratio * l1(w) + (1.0 - l1_ratio) * l2(w)


@register("group_lasso")
def group_lasso(w):
  """R(W) = Σ_j ‖W[:, j]‖₂: one group per output unit j (column of a kernel).

  Dense kernels are (in, out); conv kernels (..., in, out) are reshaped to
  (-1, out). ∇R = W[:, j] / ‖W[:, j]‖₂ per column, and 0 for a zero column
  (`optax.safe_norm`), so whole units are driven to zero together.
  """
  w = jnp.atleast_1d(w)
  return jnp.sum(optax.safe_norm(w.reshape(-1, w.shape[-1]), 0.0, axis=0))


# -------------------------------------------------- transform penalties ---

@register("weight_decay", kind="pre_lr")
def weight_decay(strength, learning_rate, mask):
  """Decoupled weight decay placed as AdamW places it: u ← u + λ_t·w.

  After the learning rate scaling the step is w ← w − lr_t·(u + λ_t·w); with
  SGD and zero gradient, w ← w·(1 − lr_t·λ_t).
  """
  del learning_rate
  return optax.add_decayed_weights(strength, mask)


class ProximalL1State(NamedTuple):
  count: jax.Array


def soft_threshold(x, t):
  """S_t(x) = sign(x)·max(|x| − t, 0), the proximal operator of t‖x‖₁."""
  return jnp.sign(x) * jnp.maximum(jnp.abs(x) - t, 0.0)


def proximal_l1(strength, learning_rate, mask=None):
  """Proximal L1 applied after the optimizer update, yielding exact zeros.

  Given the (already learning-rate scaled) update u and the weights w:
    w_new = S_{lr_t·λ_t}(w + u) = sign(w + u)·max(|w + u| − lr_t·λ_t, 0)
  and the returned update is w_new − w. `strength` λ and `learning_rate` lr
  are floats or schedules of the step count. Put it last in the chain.
  """
  as_schedule = lambda v: v if callable(v) else (lambda n: v)
  lam, lr = as_schedule(strength), as_schedule(learning_rate)

  def init_fn(params):
    del params
    return ProximalL1State(count=jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None):
    if params is None:
      raise ValueError("proximal_l1 needs update(updates, state, params)")
    t = lr(state.count) * lam(state.count)
    updates = jax.tree.map(lambda u, w: soft_threshold(w + u, t) - w,
                           updates, params)
    return updates, ProximalL1State(optax.safe_increment(state.count))

  tx = optax.GradientTransformation(init_fn, update_fn)
  return tx if mask is None else optax.masked(tx, mask)


@register("l1_prox", kind="post_update")
def l1_prox(strength, learning_rate, mask):
  """Proximal L1 (ISTA step): w ← S_{lr_t·λ_t}(w + u); see `proximal_l1`."""
  return proximal_l1(strength, learning_rate, mask)


# -------------------------------------------------- tree loss penalties ---

@register("orthogonality", scope="tree")
def orthogonality(params, mask):
  """Soft orthogonality of every masked kernel, summed across layers:

    R(θ) = Σ_{W ∈ mask, ndim(W) ≥ 2} ‖ŴᵀŴ − I_m‖_F²,  Ŵ = W.reshape(-1, m), m = W.shape[-1]

  i.e. a dense kernel (in, out) or a conv kernel (..., in, out) flattened to
  (fan_in, out), whose m output columns are pushed towards an orthonormal set
  (exactly reachable only when m ≤ fan_in; otherwise R > 0 at its minimum).
  Masked leaves with fewer than 2 dimensions (biases, scalars) contribute 0.
  ∇_W R = 4·Ŵ(ŴᵀŴ − I) (reshaped back). The Gram matrix uses float32 "highest"
  matmul precision, so the value does not depend on the accelerator's default.
  """
  total = jnp.zeros(())
  for w in _masked_leaves(params, mask):
    if jnp.ndim(w) < 2:
      continue
    flat = jnp.reshape(w, (-1, w.shape[-1]))
    gram = jnp.matmul(flat.T, flat, precision=jax.lax.Precision.HIGHEST)
    total = total + jnp.sum(jnp.square(gram - jnp.eye(gram.shape[0], dtype=gram.dtype)))
  return total


# ---------------------------------------------------------------- stats ---

def weight_stats(params, mask=None) -> dict:
  """l2_norm = √Σw², l1_norm = Σ|w|, sparsity = fraction of w == 0.

  Over the leaves selected by `mask`: None = every leaf, a str = a regex for
  `make_mask` ("" = kernels only), or a pytree of bools. jit-able.
  """
  if mask is None:
    leaves = jax.tree.leaves(params)
  else:
    mask = make_mask(params, mask) if isinstance(mask, str) else mask
    leaves = _masked_leaves(params, mask)
  if not leaves:
    zero = jnp.zeros(())
    return {"l2_norm": zero, "l1_norm": zero, "sparsity": zero}
  size = sum(w.size for w in leaves)
  return {
      "l2_norm": jnp.sqrt(sum(jnp.sum(jnp.square(w)) for w in leaves)),
      "l1_norm": sum(jnp.sum(jnp.abs(w)) for w in leaves),
      "sparsity": sum(jnp.sum(w == 0) for w in leaves) / size,
  }
