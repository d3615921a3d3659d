"""Tests for genjax.data.augment."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from genjax.data import augment
from genjax.errors import ConfigError

B = 6
SIGNAL = (40,)
SIGNAL_C = (40, 3)
IMAGE = (8, 10, 3)
NUM_CLASSES = 8


def _keys(seed=0, n=B):
  return jax.vmap(lambda i: jax.random.fold_in(jax.random.key(seed), i))(
      jnp.arange(n))


def _x(shape, seed=1, n=B):
  return jax.random.normal(jax.random.key(seed), (n,) + shape, jnp.float32)


def _y(n=B):
  return jax.nn.one_hot(jnp.arange(n) % NUM_CLASSES, NUM_CLASSES)


def _run(spec, shape, keys=None, x=None, y=None):
  aug = augment.build(spec, shape, NUM_CLASSES)
  keys = _keys() if keys is None else keys
  x = _x(shape) if x is None else x
  y = _y(x.shape[0]) if y is None else y
  return aug(keys, x, y)


CASES = [
    ('shift(max_shift=5)', SIGNAL), ('shift(max_shift=5, mode=zero)', SIGNAL),
    ('shift(max_shift=5)', SIGNAL_C), ('scale', SIGNAL), ('noise', SIGNAL),
    ('slope(max_offset=0.2)', SIGNAL), ('slope(max_offset=0.2)', SIGNAL_C),
    ('noise', IMAGE), ('scale', IMAGE), ('crop(pad=2)', IMAGE),
    ('crop(pad=2, mode=zero)', IMAGE), ('flip', IMAGE),
    ('cutout(size=3)', IMAGE), ('mixup', SIGNAL), ('mixup', IMAGE),
    ('cutmix', IMAGE), ('crop(pad=1)|flip|cutout(size=2)|mixup', IMAGE),
]


@pytest.mark.parametrize('spec,shape', CASES)
def test_shape_dtype_determinism_and_key_dependence(spec, shape):
  x, y = _x(shape), _y()
  out1, y1 = _run(spec, shape, x=x, y=y)
  out2, y2 = _run(spec, shape, x=x, y=y)
  out3, _ = _run(spec, shape, keys=_keys(seed=7), x=x, y=y)
  assert out1.shape == x.shape and out1.dtype == x.dtype
  assert y1.shape == y.shape and y1.dtype == y.dtype
  np.testing.assert_array_equal(out1, out2)
  np.testing.assert_array_equal(y1, y2)
  assert not np.array_equal(out1, out3)


@pytest.mark.parametrize('spec,shape', [
    ('noise(std=0)', SIGNAL), ('shift(max_shift=0)', SIGNAL),
    ('shift(max_shift=0, mode=zero)', SIGNAL), ('scale(lo=1, hi=1)', SIGNAL),
    ('slope(max_slope=0, max_offset=0)', SIGNAL), ('crop(pad=0)', IMAGE),
    ('flip(p=0)', IMAGE), ('cutout(size=0)', IMAGE)])
def test_identity_settings(spec, shape):
  x = _x(shape)
  out, y = _run(spec, shape, x=x)
  np.testing.assert_array_equal(out, x)
  np.testing.assert_array_equal(y, _y())


def test_circular_shift_is_roll_in_range():
  x = _x(SIGNAL)
  out, _ = _run('shift(max_shift=3)', SIGNAL, keys=_keys(n=B), x=x)
  shifts = []
  for xi, oi in zip(np.asarray(x), np.asarray(out)):
    found = [s for s in range(-3, 4) if np.array_equal(np.roll(xi, s), oi)]
    assert len(found) == 1
    shifts.append(found[0])
  assert len(set(shifts)) > 1


def _zero_shift(v, s):
  out = np.roll(v, s)
  if s > 0:
    out[:s] = 0
  elif s < 0:
    out[s:] = 0
  return out


def test_zero_shift_zero_fills():
  v = np.arange(1.0, 41.0)  # Nonzero, distinct entries.
  out, _ = _run('shift(max_shift=4, mode=zero)', SIGNAL,
                x=jnp.tile(jnp.asarray(v, jnp.float32), (B, 1)))
  shifts = []
  for oi in np.asarray(out):
    found = [s for s in range(-4, 5) if np.array_equal(_zero_shift(v, s), oi)]
    assert len(found) == 1
    shifts.append(found[0])
  assert any(shifts)


def test_slope_adds_linear_trend_and_offset():
  x = jnp.zeros((B,) + SIGNAL_C)
  out, _ = _run('slope(max_slope=0.5, max_offset=0.3)', SIGNAL_C, x=x)
  t = np.linspace(-0.5, 0.5, SIGNAL_C[0])
  for oi in np.asarray(out):
    a, b = np.polyfit(t, oi[:, 0], 1)
    np.testing.assert_allclose(oi, (a * t + b)[:, None] * np.ones(3), atol=1e-5)
    assert abs(a) <= 0.5 + 1e-5 and abs(b) <= 0.3 + 1e-5


def test_scale_in_range():
  x = jnp.ones((B,) + SIGNAL)
  out, _ = _run('scale(lo=0.5, hi=2)', SIGNAL, x=x)
  a = np.asarray(out)[:, 0]
  np.testing.assert_allclose(out, a[:, None] * np.ones(SIGNAL), rtol=1e-6)
  assert np.all((a >= 0.5) & (a <= 2))


def test_flip_flips():
  x = _x(IMAGE)
  out, _ = _run('flip(p=1)', IMAGE, x=x)
  np.testing.assert_array_equal(out, x[:, :, ::-1, :])


def test_zero_crop_is_window_of_padded_image():
  x = _x(IMAGE)
  out, _ = _run('crop(pad=2, mode=zero)', IMAGE, x=x)
  for xi, oi in zip(np.asarray(x), np.asarray(out)):
    xp = np.pad(xi, ((2, 2), (2, 2), (0, 0)))
    assert any(np.array_equal(xp[i:i + 8, j:j + 10], oi)
               for i in range(5) for j in range(5))


def test_cutout_zeroes_square_of_size():
  x = jnp.ones((B,) + IMAGE)
  out, _ = _run('cutout(size=3)', IMAGE, x=x)
  for oi in np.asarray(out):
    zero = np.all(oi == 0, axis=-1)
    assert zero.sum() == 9 and np.all((oi == 0) | (oi == 1))
    rows, cols = np.nonzero(zero)
    assert np.ptp(rows) == 2 and np.ptp(cols) == 2


def test_mixup_labels_are_lambda_mixture():
  x, y = _x(SIGNAL), _y()  # Example i has class i (B <= NUM_CLASSES).
  out, ys = _run('mixup(alpha=1.0)', SIGNAL, x=x, y=y)
  out, ys, x = np.asarray(out), np.asarray(ys), np.asarray(x)
  np.testing.assert_allclose(ys.sum(-1), 1, rtol=1e-6)
  for i in range(B):
    lam = ys[i, i]
    rest = ys[i].copy()
    rest[i] = 0
    j = int(np.argmax(rest)) if rest.max() > 0 else i
    assert np.count_nonzero(ys[i]) <= 2
    np.testing.assert_allclose(out[i], lam * x[i] + (1 - lam) * x[j],
                               rtol=1e-5, atol=1e-6)
  assert np.count_nonzero(ys) > B  # Something mixed.


def test_cutmix_labels_are_area_mixture():
  x = jnp.broadcast_to(jnp.arange(1.0, B + 1)[:, None, None, None],
                       (B,) + IMAGE)  # Example i is the constant i + 1.
  out, ys = _run('cutmix(alpha=1.0)', IMAGE, x=x)
  out, ys = np.asarray(out), np.asarray(ys)
  np.testing.assert_allclose(ys.sum(-1), 1, rtol=1e-6)
  for i in range(B):
    src = np.unique(out[i]).astype(int) - 1
    assert set(src) <= {i} | set(range(B)) and len(src) <= 2
    j = next((s for s in src if s != i), i)
    frac = np.mean(out[i] == j + 1) if j != i else 0.0
    expect = np.zeros(NUM_CLASSES)
    expect[i] += 1 - frac
    expect[j] += frac
    np.testing.assert_allclose(ys[i], expect, atol=1e-6)
  assert np.count_nonzero(ys) > B


def test_jit_with_traced_keys_matches_eager():
  aug = augment.build('shift(max_shift=5)|noise|slope|mixup', SIGNAL,
                      NUM_CLASSES)
  keys, x, y = _keys(), _x(SIGNAL), _y()
  eager = aug(keys, x, y)
  jitted = jax.jit(aug)(keys, x, y)
  for a, b in zip(eager, jitted):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_per_example_draws_ignore_batch_layout():
  aug = augment.build('shift(max_shift=5)|noise|slope', SIGNAL, NUM_CLASSES)
  keys, x, y = _keys(), _x(SIGNAL), _y()
  full, _ = aug(keys, x, y)
  part, _ = aug(keys[2:5], x[2:5], y[2:5])
  np.testing.assert_allclose(full[2:5], part, rtol=1e-6)


def test_adding_an_op_keeps_other_ops_draws():
  keys, x, y = _keys(), _x(SIGNAL), _y()
  alone, _ = _run('noise(std=0.1)', SIGNAL, keys, x, y)
  # scale(lo=1, hi=1) is the identity, so noise must draw the same values.
  before, _ = _run('scale(lo=1, hi=1)|noise(std=0.1)', SIGNAL, keys, x, y)
  after, _ = _run('noise(std=0.1)|shift(max_shift=0)', SIGNAL, keys, x, y)
  np.testing.assert_allclose(alone, before, rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(alone, after, rtol=1e-6, atol=1e-7)
  twice, _ = _run('noise(std=0.1)|noise(std=0.1)', SIGNAL, keys, x, y)
  assert not np.allclose(twice - x, 2 * (alone - x))  # Own key per occurrence.


def test_vmaps_over_members():
  aug = augment.build('noise|mixup', SIGNAL, NUM_CLASSES)
  keys = jnp.stack([_keys(0), _keys(1)])
  x, y = jnp.stack([_x(SIGNAL, 1), _x(SIGNAL, 2)]), jnp.stack([_y(), _y()])
  xs, ys = jax.vmap(aug)(keys, x, y)
  for m in range(2):
    xm, ym = aug(keys[m], x[m], y[m])
    np.testing.assert_allclose(xs[m], xm, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ys[m], ym, rtol=1e-6)


def test_raw_uint32_keys_accepted():
  keys, x, y = _keys(), _x(SIGNAL), _y()
  a = _run('noise', SIGNAL, keys, x, y)[0]
  b = _run('noise', SIGNAL, jax.random.key_data(keys), x, y)[0]
  np.testing.assert_array_equal(a, b)


def test_build_empty_and_batch_level():
  assert augment.build('', SIGNAL, NUM_CLASSES) is None
  assert augment.build('  ', IMAGE, NUM_CLASSES) is None
  assert not augment.build('noise|shift', SIGNAL, 3).batch_level
  assert augment.build('flip|mixup', IMAGE, 3).batch_level


@pytest.mark.parametrize('spec', [
    'noise', 'shift(max_shift=5, mode=\'circular\')|noise(std=0.05)',
    'a(b=1, c=-2.5, d=True, e="x|y")|f()|g(h=false, i=word)'])
def test_parse_round_trips(spec):
  ops = augment.parse(spec)
  assert augment.parse(augment.format_spec(ops)) == ops
  assert augment.format_spec(augment.parse(augment.format_spec(ops))) == (
      augment.format_spec(ops))


def test_parse_values():
  assert augment.parse('') == []
  assert augment.parse(
      "shift(max_shift=5,mode='circular') | noise(std=0.05)") == [
          ('shift', {'max_shift': 5, 'mode': 'circular'}),
          ('noise', {'std': 0.05})]
  assert augment.parse('a(b=zero, c=true, d=-1e-3, e="p|q")|f()') == [
      ('a', {'b': 'zero', 'c': True, 'd': -1e-3, 'e': 'p|q'}), ('f', {})]


def test_validate_fills_defaults_and_widens_ints():
  assert augment.validate('noise(std=1)|scale', SIGNAL) == [
      ('noise', {'std': 1.0}), ('scale', {'lo': 0.8, 'hi': 1.2})]


@pytest.mark.parametrize('spec,shape,match', [
    ('shift(max_shift=3', SIGNAL, 'cannot parse'),
    ('noise||flip', IMAGE, 'cannot parse'),
    ('noise|', IMAGE, 'cannot parse'),
    ('noise(0.1)', SIGNAL, 'cannot parse'),
    ('noise.x', SIGNAL, 'cannot parse'),
    ('noise(std=[1])', SIGNAL, 'values must be'),
    ('noise(std=1, std=2)', SIGNAL, 'repeats'),
    ('blur', SIGNAL, 'unknown augment op .*cutmix.*noise'),
    ('flip', SIGNAL, 'image inputs but examples are signals'),
    ('shift', IMAGE, 'signal inputs'),
    ('noise(sigma=1)', SIGNAL, 'no parameter .*sigma.*std'),
    ('noise(std=-0.1)', SIGNAL, 'std must be >= 0'),
    ('noise(std=x)', SIGNAL, 'std must be float'),
    ('shift(max_shift=40)', SIGNAL, r'max_shift must be in \[0, 40\)'),
    ('shift(max_shift=-1)', SIGNAL, 'max_shift'),
    ('shift(max_shift=1.5)', SIGNAL, 'max_shift must be int'),
    ('shift(mode=wrap)', SIGNAL, 'mode must be one of'),
    ('flip(p=1.5)', IMAGE, r'p must be in \[0, 1\]'),
    ('flip(p=-0.1)', IMAGE, 'p must be'),
    ('mixup(alpha=0)', SIGNAL, 'alpha must be > 0'),
    ('cutmix(alpha=-1)', IMAGE, 'alpha must be > 0'),
    ('cutout(size=9)', IMAGE, 'size must be in'),
    ('crop(pad=8)', IMAGE, 'pad must be in'),
    ('crop(mode=edge)', IMAGE, 'mode must be one of'),
    ('scale(lo=2, hi=1)', SIGNAL, 'lo <= hi'),
    ('slope(max_slope=-1)', SIGNAL, 'max_slope must be >= 0'),
    ('noise', (2, 3, 4, 5), 'examples shaped'),
])
def test_bad_specs_raise_one_line_config_error(spec, shape, match):
  with pytest.raises(ConfigError, match=match) as err:
    augment.build(spec, shape, NUM_CLASSES)
  assert '\n' not in str(err.value)


def test_register_custom_op():
  @augment.register('negate_test', 'any', check=lambda p, s: [
      (0 <= p['p'] <= 1, 'p must be in [0, 1]')])
  def negate(key, x, *, p=0.5):
    return jnp.where(jax.random.bernoulli(key, p), -x, x)

  try:
    assert 'negate_test' in augment.known_ops()
    x = _x(SIGNAL)
    out, _ = _run('negate_test(p=1)', SIGNAL, x=x)
    np.testing.assert_array_equal(out, -x)
    with pytest.raises(ConfigError, match='p must be in'):
      augment.validate('negate_test(p=2)', SIGNAL)
    with pytest.raises(ValueError, match='already registered'):
      augment.register('negate_test', 'any')(negate)   # the same function object again
  finally:
    augment.OPS.unregister('negate_test')


def test_soft_cross_entropy_matches_closed_form():
  logits = jax.random.normal(jax.random.key(3), (4, 5))
  y = jax.nn.softmax(jax.random.normal(jax.random.key(4), (4, 5)))
  expect = -jnp.sum(y * jax.nn.log_softmax(logits), axis=-1)
  np.testing.assert_allclose(augment.soft_cross_entropy(logits, y), expect,
                             rtol=1e-5)
  np.testing.assert_allclose(augment.soft_cross_entropy(logits, y),
                             optax.softmax_cross_entropy(logits, y))


def test_registry_replaces_a_re_executed_definition_refuses_another():
  source = ('from genjax.data import augment\n'
            '@augment.register("rerun_test_op", "any")\n'
            'def rerun(key, x, *, c=1.0):\n'
            '  return x + c\n')
  try:
    for _ in range(2):   # a config file executed twice: one definition, replaced
      namespace = {}
      exec(compile(source, '/tmp/genjax_rerun_test_op.py', 'exec'), namespace)
    assert augment.get_op('rerun_test_op').fn is namespace['rerun']

    def rerun(key, x, *, c=1.0):  # another definition under the taken name
      return x - c
    with pytest.raises(ValueError, match="augment op 'rerun_test_op' is already registered"):
      augment.register('rerun_test_op', 'any')(rerun)
  finally:
    augment.OPS.unregister('rerun_test_op')
  assert 'rerun_test_op' not in augment.known_ops()


def test_temporary_op_and_unknown_op_message():
  def negate(key, x):
    return -x

  op = augment.Op('negate_tmp', 'any', False, negate, {}, (), None)
  with augment.OPS.temporary('negate_tmp', op, origin=negate):
    out, _ = _run('negate_tmp', SIGNAL, x=_x(SIGNAL))
    np.testing.assert_array_equal(out, -_x(SIGNAL))
  with pytest.raises(ConfigError, match="unknown augment op 'negate_tmp'; use one of: crop, "):
    augment.validate('negate_tmp', SIGNAL)


def test_augment_ops_never_imports_augment():
  """Imports flow one way: augment -> augment_ops (module level and inside functions)."""
  import ast
  import inspect
  from genjax.data import augment_ops

  tree = ast.parse(inspect.getsource(augment_ops))
  for node in ast.walk(tree):
    if isinstance(node, ast.ImportFrom):
      module = 'genjax.data' + (f'.{node.module}' if node.module else '') if node.level \
          else node.module
      names = [module] + [f'{module}.{a.name}' for a in node.names]
    elif isinstance(node, ast.Import):
      names = [a.name for a in node.names]
    else:
      continue
    assert not any(n == 'genjax.data.augment' or n.startswith('genjax.data.augment.')
                   for n in names), ast.unparse(node)
  assert augment.register is augment_ops.register and augment.OPS is augment_ops.OPS
