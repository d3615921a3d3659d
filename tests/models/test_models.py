"""Model zoo: shapes, registry, dropout semantics, purity of apply."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import models
from genjax.errors import ConfigError
from genjax.models.layers import Dropout


def _cfg(name, **kw):
  cfg = models.default_config()
  cfg.name = name
  for k, v in kw.items():
    cfg[k] = v
  return cfg


@pytest.mark.parametrize("name,shape,num_params", [
    ("logreg", (40,), 40 * 10 + 10),
    ("mlp", (40,), (40 * 100 + 100) + (100 * 100 + 100) + (100 * 10 + 10)),  # MNIST-1D reference
    ("cnn1d", (40,), (5 * 25 + 25) + 2 * (3 * 25 * 25 + 25) + (5 * 25 * 10 + 10)),
    ("cnn2d", (28, 28, 1), None),
    ("mlp", (8, 8, 1), None),
])
@pytest.mark.slow
def test_forward_shapes_and_param_counts(name, shape, num_params):
  model = models.create(_cfg(name), shape, 10)
  params = model.init(jax.random.key(0))
  x = jnp.ones((3, *shape))
  logits = model.apply(params, x, train=False)
  assert logits.shape == (3, 10)
  assert bool(jnp.all(jnp.isfinite(logits)))
  if num_params is not None:
    assert sum(p.size for p in jax.tree.leaves(params)) == num_params


def test_init_is_deterministic_per_key():
  model = models.create(_cfg("mlp"), (40,), 10)
  a, b, c = (model.init(jax.random.key(k)) for k in (0, 0, 1))
  assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
  assert not np.array_equal(a["dense0"]["kernel"], c["dense0"]["kernel"])


def test_apply_is_pure_under_jit():
  model = models.create(_cfg("cnn1d", dropout=0.3), (40,), 10)
  params = model.init(jax.random.key(0))
  x = jax.random.normal(jax.random.key(1), (8, 40))
  keys = jax.random.split(jax.random.key(2), 8)
  f = jax.jit(lambda p, x, k: model.apply(p, x, train=True, rng=k))
  np.testing.assert_array_equal(f(params, x, keys), f(params, x, keys))
  other = jax.random.split(jax.random.key(3), 8)
  assert not np.allclose(f(params, x, keys), f(params, x, other))


def test_dropout_identity_at_eval_and_mean_preserving_in_training():
  layer = Dropout(0.5, layer_id=0)
  x = jnp.ones((2000, 50))
  keys = jax.random.split(jax.random.key(0), 2000)
  np.testing.assert_array_equal(layer(x, train=False, rng=keys), x)
  y = layer(x, train=True, rng=keys)
  assert set(np.unique(np.asarray(y)).tolist()) == {0.0, 2.0}
  assert abs(float(y.mean()) - 1.0) < 0.02          # E[y] = x
  assert abs(float((y == 0).mean()) - 0.5) < 0.02   # drop rate


def test_dropout_mask_depends_only_on_the_example_key():
  layer = Dropout(0.5, layer_id=3)
  keys = jax.random.split(jax.random.key(0), 6)
  x = jnp.ones((6, 20))
  full = layer(x, train=True, rng=keys)
  part = layer(x[2:4], train=True, rng=keys[2:4])
  np.testing.assert_array_equal(full[2:4], part)


def test_mlp_eval_ignores_dropout_rate():
  cfg0, cfg5 = _cfg("mlp", dropout=0.0), _cfg("mlp", dropout=0.5)
  m0, m5 = models.create(cfg0, (40,), 10), models.create(cfg5, (40,), 10)
  params = m0.init(jax.random.key(0))
  x = jax.random.normal(jax.random.key(1), (4, 40))
  np.testing.assert_allclose(m0.apply(params, x, train=False), m5.apply(params, x, train=False))


def test_per_layer_dropout_rates():
  model = models.create(_cfg("mlp", layer_dropout=(0.0, 0.9)), (40,), 10)
  params = model.init(jax.random.key(0))
  keys = jax.random.split(jax.random.key(1), 500)
  x = jnp.ones((500, 40))
  a = model.apply(params, x, train=True, rng=keys)
  b = model.apply(params, x, train=False)
  assert not np.allclose(a, b)
  with pytest.raises(ConfigError, match="layer_dropout"):
    models.create(_cfg("mlp", layer_dropout=(0.1, 0.2, 0.3)), (40,), 10)


@pytest.mark.parametrize("kw,match", [
    ({"name": "resnet9000"}, "unknown model"),
    ({"name": "mlp", "dropout": 1.0}, "dropout"),
    ({"name": "mlp", "activation": "swishy"}, "activation"),
    ({"name": "cnn2d"}, "images"),
])
def test_bad_model_config(kw, match):
  with pytest.raises(ConfigError, match=match):
    models.create(_cfg(**kw), (40,), 10)


def test_registry_accepts_a_new_model():
  from flax import nnx

  @models.register("tiny_test_model")
  def _factory(cfg, input_shape, num_classes, rngs):
    return models.zoo.LogisticRegression(int(np.prod(input_shape)), num_classes, rngs=rngs)

  try:
    model = models.create(_cfg("tiny_test_model"), (5,), 3)
    assert model.apply(model.init(jax.random.key(0)), jnp.ones((2, 5)), train=False).shape == (2, 3)
    assert isinstance(model.graphdef, nnx.graph.GraphDef) or model.graphdef is not None
  finally:
    models.MODELS.unregister("tiny_test_model")


def test_registry_refuses_another_definition_under_a_taken_name():
  def _mlp(cfg, input_shape, num_classes, rngs):   # not the built-in's definition
    return models.zoo.LogisticRegression(int(np.prod(input_shape)), num_classes, rngs=rngs)

  with pytest.raises(ValueError, match="model 'mlp' is already registered"):
    models.register("mlp")(_mlp)
  assert models.MODELS.get("mlp") is not _mlp
  assert models.names() == ("cnn1d", "cnn2d", "logreg", "mlp", "resnet", "wide_resnet")


def test_registry_same_definition_again_replaces_and_temporary():
  source = ("from genjax import models\n"
            "@models.register('rerun_test_model')\n"
            "def factory(cfg, input_shape, num_classes, rngs):\n"
            "  return models.zoo.LogisticRegression(5, num_classes, rngs=rngs)\n")
  try:
    for _ in range(2):   # a config file executed twice registers the same definition twice
      namespace = {}
      exec(compile(source, "/tmp/genjax_rerun_test_model.py", "exec"), namespace)
    assert models.MODELS.get("rerun_test_model") is namespace["factory"]
  finally:
    models.MODELS.unregister("rerun_test_model")
  with models.MODELS.temporary("tmp_test_model", namespace["factory"]):
    assert models.create(_cfg("tmp_test_model"), (5,), 3).num_classes == 3
  with pytest.raises(ConfigError, match="unknown model 'tmp_test_model'; choose model.name from"):
    models.create(_cfg("tmp_test_model"), (5,), 3)
