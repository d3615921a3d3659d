"""Pure, jit-able data augmentation composed from a string spec.

A spec is ops separated by `|`, each `name` or `name(k=v, ...)` with int,
float, bool or str values (bare words are strings, `true`/`false` bools), e.g.
"shift(max_shift=5, mode=circular)|noise(std=0.05)". Ops run in spec order,
on device inside the train step, on training data only.

`Augmenter(keys, x, y_soft)` takes one typed PRNG key per example (derive them
by `fold_in(epoch_key, global_example_index)` so draws ignore batch layout).
Per-example ops are vmapped over (key_i, x_i). Batch-level ops (mixup, cutmix)
draw λ_i from example i's key but pair examples by a permutation drawn from
keys[0], so partners depend on batch composition (and on the per-device batch
under data parallelism): unavoidable. An op's keys are
fold_in(fold_in(key_i, crc32(name)), occurrence), so adding, removing or
reordering other ops leaves its draws unchanged. Mixed labels are soft: use
`soft_cross_entropy` (= optax.softmax_cross_entropy(logits, soft_labels)).

Add an op in one place with `register`:

  @augment.register('invert', kind='any')
  def invert(key, x, *, p=0.5):
    return jnp.where(jax.random.bernoulli(key, p), -x, x)
"""

import ast
import dataclasses
import inspect
import math
import zlib
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from genjax.errors import ConfigError

KINDS = ('signal', 'image', 'any')


@dataclasses.dataclass(frozen=True)
class Op:
  """A registered augmentation.

  Per-example: `fn(key, x, **params) -> x` on one example.
  Batch-level: `fn(keys, x, y_soft, **params) -> (x, y_soft)` on a batch.
  `check(params, example_shape)` returns (ok, message) pairs; the first
  failing one becomes a ConfigError.
  """
  name: str
  kind: str
  batch: bool
  fn: Callable[..., Any]
  defaults: dict[str, Any]
  required: tuple[str, ...]
  check: Callable[[dict[str, Any], tuple[int, ...]], Any] | None


_REGISTRY: dict[str, Op] = {}


def register(name: str, kind: str, *, batch: bool = False, check=None):
  """Decorator registering `fn` as op `name` for inputs of `kind`.

  `kind` is 'signal' ((L,) or (L, C) examples), 'image' (HWC) or 'any'.
  Parameters are `fn`'s keyword arguments after `(key, x)` (or
  `(keys, x, y_soft)` when `batch=True`); their defaults fix their types.
  `check(params, example_shape)` returns (ok, message) pairs for values.
  """
  if kind not in KINDS:
    raise ValueError(f'kind must be one of {KINDS}, got {kind!r}')
  if name in _REGISTRY:
    raise ValueError(f'augment op {name!r} is already registered')
  if not name.isidentifier():
    raise ValueError(f'augment op name must be an identifier, got {name!r}')

  def deco(fn):
    params = list(inspect.signature(fn).parameters.values())
    params = params[3 if batch else 2:]
    defaults = {p.name: p.default for p in params if p.default is not p.empty}
    required = tuple(p.name for p in params if p.default is p.empty)
    _REGISTRY[name] = Op(name, kind, batch, fn, defaults, required, check)
    return fn

  return deco


def known_ops() -> list[str]:
  """Sorted names of all registered ops."""
  return sorted(_REGISTRY)


def get_op(name: str) -> Op:
  """The registered op `name` (ConfigError listing known ops if unknown)."""
  if name not in _REGISTRY:
    raise ConfigError(
        f'unknown augment op {name!r}; use one of: {", ".join(known_ops())}')
  return _REGISTRY[name]


# ----------------------------------------------------------------- parsing --


def _value(node, tok):
  if isinstance(node, ast.Name):  # Bare word: bool or string (flag-friendly).
    return {'true': True, 'false': False}.get(node.id.lower(), node.id)
  try:
    value = ast.literal_eval(node)
  except Exception:  # pylint: disable=broad-except
    value = None
  if isinstance(value, (bool, int, float, str)):
    return value
  raise ConfigError(f'augment op {tok!r}: values must be numbers, bools or '
                    f'strings; write e.g. noise(std=0.05)')


def _terms(node):
  """Operands of a chain `a | b | c` (parsed as Python bit-or), in order."""
  if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
    return _terms(node.left) + _terms(node.right)
  return [node]


def parse(spec: str) -> list[tuple[str, dict[str, Any]]]:
  """Parses a spec into `[(name, kwargs), ...]`; '' parses to []."""
  if not isinstance(spec, str):
    raise ConfigError(f'augment spec must be a string, got {spec!r}')
  if not spec.strip():
    return []
  hint = "write ops as name or name(k=v, ...) separated by '|'"
  try:
    text = ' '.join(spec.splitlines()).strip()
    nodes = _terms(ast.parse(text, mode='eval').body)
  except (SyntaxError, ValueError):
    raise ConfigError(f'cannot parse augment spec {spec!r}; {hint}') from None
  ops = []
  for node in nodes:
    tok = ast.unparse(node)
    if isinstance(node, ast.Name):
      ops.append((node.id, {}))
      continue
    if (not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name)
        or node.args or any(k.arg is None for k in node.keywords)):
      raise ConfigError(f'cannot parse augment op {tok!r} in {spec!r}; {hint}')
    kwargs = {}
    for kw in node.keywords:
      if kw.arg in kwargs:
        raise ConfigError(f'augment op {tok!r} repeats {kw.arg!r}; give each '
                          f'parameter once')
      kwargs[kw.arg] = _value(kw.value, tok)
    ops.append((node.func.id, kwargs))
  return ops


def format_spec(ops) -> str:
  """Inverse of `parse`: `parse(format_spec(ops)) == ops`."""
  def one(name, kwargs):
    if not kwargs:
      return name
    return f'{name}({", ".join(f"{k}={v!r}" for k, v in kwargs.items())})'
  return '|'.join(one(n, kw) for n, kw in ops)


# -------------------------------------------------------------- validation --


def input_kind(example_shape) -> str:
  """'signal' for (L,) or (L, C) examples, 'image' for (H, W, C)."""
  shape = tuple(example_shape)
  if len(shape) in (1, 2) and all(d > 0 for d in shape):
    return 'signal'
  if len(shape) == 3 and all(d > 0 for d in shape):
    return 'image'
  raise ConfigError(f'augmentation needs examples shaped (L,), (L, C) or '
                    f'(H, W, C); got {shape}')


def _coerce(name, key, value, default):
  """Checks `value` against the type of `default`; ints widen to floats."""
  if isinstance(default, bool):
    ok = isinstance(value, bool)
  elif isinstance(default, int):
    ok = isinstance(value, int) and not isinstance(value, bool)
  elif isinstance(default, float):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    value = float(value) if ok else value
  elif isinstance(default, str):
    ok = isinstance(value, str)
  else:
    ok = True
  if not ok:
    raise ConfigError(f'augment op {name!r}: {key} must be '
                      f'{type(default).__name__}, got {value!r}; e.g. '
                      f'{name}({key}={default!r})')
  return value


def validate(spec: str, example_shape) -> list[tuple[str, dict[str, Any]]]:
  """Checks `spec` against the examples; returns ops with defaults filled.

  Raises ConfigError for an unparsable spec, unknown ops, ops for the other
  input kind, unknown or missing parameters, and out-of-range values.
  """
  kind = input_kind(example_shape)
  shape = tuple(example_shape)
  out = []
  for name, kwargs in parse(spec):
    op = get_op(name)
    if op.kind not in ('any', kind):
      raise ConfigError(f'augment op {name!r} is for {op.kind} inputs but '
                        f'examples are {kind}s of shape {shape}; drop it or '
                        f'use {_ops_for(kind)}')
    allowed = list(op.defaults) + list(op.required)
    for key in kwargs:
      if key not in allowed:
        raise ConfigError(f'augment op {name!r} has no parameter {key!r}; '
                          f'its parameters are: {", ".join(allowed) or "none"}')
    for key in op.required:
      if key not in kwargs:
        raise ConfigError(f'augment op {name!r} needs {key}=...')
    params = dict(op.defaults)
    for key, value in kwargs.items():
      params[key] = _coerce(name, key, value, op.defaults.get(key))
    for ok, msg in (op.check(params, shape) if op.check else ()):
      if not ok:
        raise ConfigError(f'augment op {name!r}: {msg}')
    out.append((name, params))
  return out


def _ops_for(kind):
  return ', '.join(n for n in known_ops() if _REGISTRY[n].kind in (kind, 'any'))


# --------------------------------------------------------------- applying --


def _op_keys(keys, name, occurrence):
  salt = zlib.crc32(name.encode())
  fold = lambda k: jax.random.fold_in(jax.random.fold_in(k, salt), occurrence)
  return jax.vmap(fold)(keys)


@dataclasses.dataclass(frozen=True, eq=False)
class Augmenter:
  """Applies validated ops in spec order: `(keys, x, y_soft) -> (x, y_soft)`.

  keys: (B,) typed PRNG keys (raw uint32 (B, 2) keys are wrapped), one per
  example. x: (B, *example_shape) float. y_soft: (B, num_classes) float.
  Shapes and dtypes are preserved. Pure: call it inside a jitted step.
  """

  ops: tuple[tuple[str, dict[str, Any]], ...]
  example_shape: tuple[int, ...]
  num_classes: int

  @property
  def spec(self) -> str:
    return format_spec(self.ops)

  @property
  def batch_level(self) -> bool:
    """True if any op mixes examples (its output depends on the batch)."""
    return any(_REGISTRY[n].batch for n, _ in self.ops)

  def __call__(self, keys, x, y_soft):
    if not jnp.issubdtype(keys.dtype, jax.dtypes.prng_key):
      keys = jax.random.wrap_key_data(keys)
    b = x.shape[0]
    if keys.shape != (b,) or tuple(x.shape[1:]) != self.example_shape:
      raise ValueError(f'expected keys ({b},) and x ({b}, '
                       f'*{self.example_shape}), got {keys.shape}, {x.shape}')
    if y_soft.shape != (b, self.num_classes):
      raise ValueError(f'expected y_soft ({b}, {self.num_classes}), got '
                       f'{y_soft.shape}')
    seen = {}
    for name, params in self.ops:
      op = _REGISTRY[name]
      seen[name] = seen.get(name, -1) + 1
      k = _op_keys(keys, name, seen[name])
      if op.batch:
        x, y_soft = op.fn(k, x, y_soft, **params)
      else:
        x = jax.vmap(lambda ki, xi: op.fn(ki, xi, **params))(k, x)
    return x, y_soft


def build(spec: str, example_shape, num_classes: int) -> Augmenter | None:
  """Validated `Augmenter` for `spec`, or None when the spec is empty."""
  ops = validate(spec, example_shape)
  if not ops:
    return None
  if int(num_classes) < 1:
    raise ConfigError(f'num_classes must be >= 1, got {num_classes}')
  return Augmenter(tuple(ops), tuple(example_shape), int(num_classes))


def soft_cross_entropy(logits, soft_labels):
  """Per-example -Σ_c y_c log softmax(logits)_c, via optax."""
  return optax.softmax_cross_entropy(logits, soft_labels)


# --------------------------------------------------------------------- ops --


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


@register('crop', 'image', check=lambda p, s: [
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
