"""Pure, jit-able data augmentation composed from a string spec.

A spec is ops separated by `|`, each `name` or `name(k=v, ...)` with int,
float, bool or str values (bare words are strings, `true`/`false` bools), e.g.
"shift(max_shift=5, mode=circular)|noise(std=0.05)". Ops run in spec order,
on device inside the train step, on training data only.

An `Augmenter` (made by `build(spec, example_shape, num_classes)`) is called as
`augmenter(keys, x, y_soft)` with one typed PRNG key per example (derive them
by `fold_in(epoch_key, global_example_index)` so draws ignore batch layout).
Per-example ops are vmapped over (key_i, x_i). Batch-level ops (mixup, cutmix)
draw λ_i from example i's key but pair examples by a permutation drawn from
keys[0], so partners depend on batch composition (and on the per-device batch
under data parallelism): unavoidable. An op's keys are
fold_in(fold_in(key_i, crc32(name)), occurrence), so adding, removing or
reordering other ops leaves its draws unchanged. Mixed labels are soft: use
`soft_cross_entropy` (= optax.softmax_cross_entropy(logits, soft_labels)).

The op registry (`OPS`, `register`, `Op`) and the built-in ops live in
`genjax.data.augment_ops` (which never imports this module); they are
re-exported here. Add an op in one place with `register` (a new name: built-in
ones are refused):

  import jax
  import jax.numpy as jnp
  from genjax.data import augment

  @augment.register('invert', kind='any')
  def invert(key, x, *, p=0.5):
    return jnp.where(jax.random.bernoulli(key, p), -x, x)

then `--config.data.augment='invert(p=0.3)'`; `p` is also sweepable (data.augment.OP.PARAM).
"""

import ast
import dataclasses
import zlib
from typing import Any

import jax
import jax.numpy as jnp
import optax

from genjax.data.augment_ops import KINDS, OPS, Op, get_op, known_ops, register  # noqa: F401
from genjax.errors import ConfigError


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
  return ', '.join(n for n in known_ops() if OPS.get(n).kind in (kind, 'any'))


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
    return any(OPS.get(n).batch for n, _ in self.ops)

  def __call__(self, keys, x, y_soft, overrides=None):
    """`overrides`: {"op.param": scalar} replacing the first `op`'s parameter by a value
    that may be traced (a swept strength: one program for all its values)."""
    overrides = dict(overrides or {})
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
      op = OPS.get(name)
      seen[name] = seen.get(name, -1) + 1
      if seen[name] == 0:
        params = dict(params)
        for key in [k for k in overrides if k.split('.')[0] == name]:
          param = key.split('.', 1)[1]
          value = overrides.pop(key)
          if isinstance(op.defaults[param], int):
            value = jnp.round(value).astype(jnp.int32)
          params[param] = value
      k = _op_keys(keys, name, seen[name])
      if op.batch:
        x, y_soft = op.fn(k, x, y_soft, **params)
      else:
        x = jax.vmap(lambda ki, xi, op=op, params=params: op.fn(ki, xi, **params))(k, x)
    if overrides:
      raise ValueError(f'overrides {sorted(overrides)} name no op of {self.spec!r}')
    return x, y_soft


def build(spec: str, example_shape, num_classes: int) -> Augmenter | None:
  """Validated `Augmenter` for `spec`, or None when the spec is empty."""
  ops = validate(spec, example_shape)
  if not ops:
    return None
  if int(num_classes) < 1:
    raise ConfigError(f'num_classes must be >= 1, got {num_classes}')
  return Augmenter(tuple(ops), tuple(example_shape), int(num_classes))


SWEEP_PREFIX = 'data.augment.'


def sweep_target(key: str, spec: str) -> tuple[str, str] | None:
  """(op, param) of a sweep key `data.augment.OP.PARAM`, or None for other keys.

  ConfigError when the op is not (or more than once) in `spec` or has no such parameter.
  """
  if not key.startswith(SWEEP_PREFIX):
    return None
  parts = key[len(SWEEP_PREFIX):].split('.')
  if len(parts) != 2:
    raise ConfigError(f"sweep key '{key}' should be data.augment.OP.PARAM, "
                      "e.g. data.augment.noise.std")
  name, param = parts
  op = get_op(name)
  count = [n for n, _ in parse(spec)].count(name)
  if count != 1:
    raise ConfigError(f"sweep key '{key}': data.augment={spec!r} has {count} {name!r} ops; "
                      f"it needs exactly one (e.g. --config.data.augment='{name}')")
  if param not in op.defaults:
    raise ConfigError(f"sweep key '{key}': augment op {name!r} has no parameter {param!r}; "
                      f"its parameters are: {', '.join(op.defaults) or 'none'}")
  return name, param


def set_param(spec: str, name: str, param: str, value) -> str:
  """`spec` with parameter `param` of op `name` set to `value`."""
  return format_spec([(n, {**kw, param: value} if n == name else kw) for n, kw in parse(spec)])


def soft_cross_entropy(logits, soft_labels):
  """Per-example -Σ_c y_c log softmax(logits)_c, via optax."""
  return optax.softmax_cross_entropy(logits, soft_labels)

