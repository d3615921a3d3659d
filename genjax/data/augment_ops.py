"""The augmentation op registry (`OPS`, `register`, `Op`) and the built-in ops.

`genjax.data.augment` parses, validates and applies specs of these ops and
re-exports `register`, `known_ops`, `get_op` and `Op`; this module imports
nothing from it (imports flow one way: augment -> augment_ops -> registry).

Per-example ops take (key, x) for one example; batch ops (mixup, cutmix) take
(keys, x, y_soft) for a batch. Parameters are keyword arguments whose defaults
fix their types; `check` callbacks validate values before anything compiles.
"""

import dataclasses
import inspect
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp

from genjax.errors import ConfigError
from genjax.registry import Registry

KINDS = ('signal', 'image', 'any')


@dataclasses.dataclass(frozen=True)
class Op:
  """A registered augmentation.

  Per-example: `fn(key, x, **params) -> x` on one example.
  Batch-level: `fn(keys, x, y_soft, **params) -> (x, y_soft)` on a batch.
  `check(params, example_shape)` returns (ok, message) pairs; the first
  failing one becomes a ConfigError. `static`: int/float parameters that must
  be Python values (e.g. a pad width that sets a shape); the others can be
  traced, so sweeps vmap them (`Augmenter(..., overrides=)`).
  """
  name: str
  kind: str
  batch: bool
  fn: Callable[..., Any]
  defaults: dict[str, Any]
  required: tuple[str, ...]
  check: Callable[[dict[str, Any], tuple[int, ...]], Any] | None
  static: tuple[str, ...] = ()

  def traceable(self, param: str) -> bool:
    """Whether `param` may be a traced scalar (numeric, not static)."""
    default = self.defaults.get(param)
    return (isinstance(default, (int, float)) and not isinstance(default, bool)
            and param not in self.static)


OPS: Registry[Op] = Registry('augment op', config_key='data.augment')


def register(name: str, kind: str, *, batch: bool = False, check=None, static=()):
  """Decorator registering `fn` as op `name` for inputs of `kind` (into `OPS`).

  `kind` is 'signal' ((L,) or (L, C) examples), 'image' (HWC) or 'any'.
  Parameters are `fn`'s keyword arguments after `(key, x)` (or
  `(keys, x, y_soft)` when `batch=True`); their defaults fix their types.
  `check(params, example_shape)` returns (ok, message) pairs for values.
  `static` names numeric parameters that cannot be traced (see `Op`).
  A taken name raises ValueError unless `fn` is the same definition again (a new
  function object from the same file and qualified name: a re-executed config file).
  """
  if kind not in KINDS:
    raise ValueError(f'kind must be one of {KINDS}, got {kind!r}')
  if not name.isidentifier():
    raise ValueError(f'augment op name must be an identifier, got {name!r}')

  def deco(fn):
    params = list(inspect.signature(fn).parameters.values())
    params = params[3 if batch else 2:]
    defaults = {p.name: p.default for p in params if p.default is not p.empty}
    required = tuple(p.name for p in params if p.default is p.empty)
    op = Op(name, kind, batch, fn, defaults, required, check, tuple(static))
    OPS.register(name, op, origin=fn)
    return fn

  return deco


def known_ops() -> list[str]:
  """Sorted names of all registered ops."""
  return OPS.names()


def get_op(name: str) -> Op:
  """The registered op `name` (ConfigError listing known ops if unknown)."""
  if name not in OPS:
    raise ConfigError(
        f'unknown augment op {name!r}; use one of: {", ".join(known_ops())}')
  return OPS.get(name)


# ------------------------------------------------------------ built-in ops --


def _choice(p, key, options):
  return p[key] in options, f'{key} must be one of {options}, got {p[key]!r}'


@register('shift', 'signal', check=lambda p, s: [
    _choice(p, 'mode', ('circular', 'zero')),
    (0 <= p['max_shift'] < s[0],
     f'max_shift must be in [0, {s[0]}) for length {s[0]}, got '
     f'{p["max_shift"]}')])
def shift(key, x, *, max_shift=4, mode='circular'):
  """Shifts along L by s ~ U{-max_shift..max_shift}: out[i] = x[i - s].

  mode 'circular' rolls (= jnp.roll(x, s, 0)); 'zero' zero-fills vacated
  entries.
  """
  n = x.shape[0]
  s = jax.random.randint(key, (), -max_shift, max_shift + 1)
  src = jnp.arange(n) - s
  out = x[jnp.mod(src, n)]
  if mode == 'zero':
    valid = ((src >= 0) & (src < n)).reshape((n,) + (1,) * (x.ndim - 1))
    out = jnp.where(valid, out, jnp.zeros_like(out))
  return out


@register('slope', 'signal', check=lambda p, s: [
    (p['max_slope'] >= 0, f'max_slope must be >= 0, got {p["max_slope"]}'),
    (p['max_offset'] >= 0, f'max_offset must be >= 0, got {p["max_offset"]}')])
def slope(key, x, *, max_slope=0.375, max_offset=0.0):
  """Adds a linear trend and offset: x + a·t + b, t = linspace(-.5, .5, L).

  a ~ U[-max_slope, max_slope], b ~ U[-max_offset, max_offset], shared by all
  channels. mnist1d/transform.py's `shear(x, scale)` is this op with
  max_slope = scale / 2 (MNIST-1D uses shear_scale=0.75) and max_offset = 0.
  """
  ka, kb = jax.random.split(key)
  a = jax.random.uniform(ka, (), minval=-max_slope, maxval=max_slope)
  b = jax.random.uniform(kb, (), minval=-max_offset, maxval=max_offset)
  t = jnp.linspace(-0.5, 0.5, x.shape[0]).reshape((-1,) + (1,) * (x.ndim - 1))
  return (x + a * t + b).astype(x.dtype)


@register('scale', 'any', check=lambda p, s: [
    (0 <= p['lo'] <= p['hi'],
     f'need 0 <= lo <= hi, got lo={p["lo"]}, hi={p["hi"]}')])
def scale(key, x, *, lo=0.8, hi=1.2):
  """Multiplies the example by a ~ U[lo, hi] (MNIST-1D's scale_coeff=0.4)."""
  a = jax.random.uniform(key, (), minval=lo, maxval=hi)
  return (x * a).astype(x.dtype)


@register('noise', 'any', check=lambda p, s: [
    (0 <= p['std'] < math.inf, f'std must be >= 0, got {p["std"]}')])
def noise(key, x, *, std=0.05):
  """Adds i.i.d. Gaussian noise: x + std·N(0, 1)."""
  return (x + std * jax.random.normal(key, x.shape, x.dtype)).astype(x.dtype)


@register('crop', 'image', static=('pad',), check=lambda p, s: [
    _choice(p, 'mode', ('reflect', 'zero')),
    (0 <= p['pad'] < min(s[:2]),
     f'pad must be in [0, {min(s[:2])}) for {s[0]}x{s[1]} images, got '
     f'{p["pad"]}')])
def crop(key, x, *, pad=4, mode='reflect'):
  """Pads H and W by `pad` (reflect or zero) and takes a random HxW crop."""
  if pad == 0:
    return x
  xp = jnp.pad(x, ((pad, pad), (pad, pad), (0, 0)),
               mode='reflect' if mode == 'reflect' else 'constant')
  oy, ox = jax.random.randint(key, (2,), 0, 2 * pad + 1)
  return jax.lax.dynamic_slice(xp, (oy, ox, 0), x.shape)


@register('flip', 'image', check=lambda p, s: [
    (0 <= p['p'] <= 1, f'p must be in [0, 1], got {p["p"]}')])
def flip(key, x, *, p=0.5):
  """Mirrors left-right (x[:, ::-1]) with probability p."""
  return jnp.where(jax.random.bernoulli(key, p), x[:, ::-1], x)


def _box(h, w, y0, y1, x0, x1):
  """(H, W) bool mask of rows [y0, y1) x cols [x0, x1)."""
  rows, cols = jnp.arange(h)[:, None], jnp.arange(w)[None, :]
  return (rows >= y0) & (rows < y1) & (cols >= x0) & (cols < x1)


@register('cutout', 'image', check=lambda p, s: [
    (0 <= p['size'] <= min(s[:2]),
     f'size must be in [0, {min(s[:2])}] for {s[0]}x{s[1]} images, got '
     f'{p["size"]}')])
def cutout(key, x, *, size=8):
  """Zeroes a size x size square placed uniformly, wholly inside the image."""
  h, w, _ = x.shape
  y0 = jax.random.randint(jax.random.fold_in(key, 0), (), 0, h - size + 1)
  x0 = jax.random.randint(jax.random.fold_in(key, 1), (), 0, w - size + 1)
  inside = _box(h, w, y0, y0 + size, x0, x0 + size)[..., None]
  return jnp.where(inside, jnp.zeros_like(x), x)


def _alpha(p, s):
  return [(0 < p['alpha'] < math.inf, f'alpha must be > 0, got {p["alpha"]}')]


_PERM_SALT = 0x5EED  # Distinct from the per-example folds 0, 1, 2 below.


def _partners(keys):
  """Permutation pairing example i with perm[i]; drawn from keys[0]."""
  k = jax.random.fold_in(keys[0], _PERM_SALT)
  return jax.random.permutation(k, keys.shape[0])


def _lams(keys, alpha):
  """λ_i ~ Beta(alpha, alpha) from example i's key."""
  beta = lambda k: jax.random.beta(jax.random.fold_in(k, 0), alpha, alpha)
  return jax.vmap(beta)(keys)


def _mix_labels(lam, y, perm):
  ly = lam.astype(y.dtype)[:, None]
  return (ly * y + (1 - ly) * y[perm]).astype(y.dtype)


@register('mixup', 'any', batch=True, check=_alpha)
def mixup(keys, x, y_soft, *, alpha=0.2):
  """(x_i, y_i) <- λ_i (x_i, y_i) + (1-λ_i) (x_j, y_j), j = perm[i]."""
  perm, lam = _partners(keys), _lams(keys, alpha)
  lx = lam.astype(x.dtype).reshape((-1,) + (1,) * (x.ndim - 1))
  x = (lx * x + (1 - lx) * x[perm]).astype(x.dtype)
  return x, _mix_labels(lam, y_soft, perm)


@register('cutmix', 'image', batch=True, check=_alpha)
def cutmix(keys, x, y_soft, *, alpha=1.0):
  """Pastes a box of x_j (j = perm[i]) into x_i; y_i <- λ_i y_i + (1-λ_i) y_j.

  Box sides ≈ (H, W)·sqrt(1-λ'), λ' ~ Beta(alpha, alpha), centre uniform,
  clipped to the image; λ_i is the exact fraction of x_i's pixels kept.
  """
  _, h, w, _ = x.shape
  perm = _partners(keys)

  def mask(k, lam):
    r = jnp.sqrt(1.0 - lam)
    ch, cw = (h * r).astype(jnp.int32), (w * r).astype(jnp.int32)
    cy = jax.random.randint(jax.random.fold_in(k, 1), (), 0, h)
    cx = jax.random.randint(jax.random.fold_in(k, 2), (), 0, w)
    y0, y1 = jnp.clip(cy - ch // 2, 0, h), jnp.clip(cy + ch - ch // 2, 0, h)
    x0, x1 = jnp.clip(cx - cw // 2, 0, w), jnp.clip(cx + cw - cw // 2, 0, w)
    return _box(h, w, y0, y1, x0, x1)

  boxes = jax.vmap(mask)(keys, _lams(keys, alpha))
  lam = 1.0 - boxes.mean(axis=(1, 2))
  return jnp.where(boxes[..., None], x[perm], x), _mix_labels(lam, y_soft, perm)
