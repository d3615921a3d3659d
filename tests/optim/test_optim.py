"""Optimizer chain: equivalence with optax aliases, decay, schedules, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from genjax import optim
from genjax.optim import penalties
from genjax.errors import ConfigError


BUILT_IN = ("sgd", "momentum", "adam", "adamw", "nadam", "rmsprop", "adagrad", "lion")


def _params():
  k = jax.random.split(jax.random.PRNGKey(0), 4)
  return {"layers": {"0": {"kernel": jax.random.normal(k[0], (3, 4)),
                           "bias": jax.random.normal(k[1], (4,))}},
          "head": {"kernel": jax.random.normal(k[2], (4, 2)),
                   "bias": jax.random.normal(k[3], (2,))}}


def _opt(**fields):
  cfg = optim.default_config()
  cfg.update(fields)
  return cfg


def _run(tx, params, n=5):
  """n steps on fixed, param-dependent gradients; returns the final params."""
  def step(carry, i):
    params, state = carry
    grads = jax.tree.map(lambda w: jnp.sin(w * (i + 1.0) + i), params)
    updates, state = tx.update(grads, state, params)
    return (optax.apply_updates(params, updates), state), None
  (params, _), _ = jax.jit(lambda p: jax.lax.scan(
      step, (p, tx.init(p)), jnp.arange(n)))(params)
  return params


def _assert_trees_close(a, b, rtol=1e-5, atol=1e-7):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=rtol,
                                                       atol=atol), a, b)


@pytest.mark.parametrize("cfg,reference", [
    (dict(name="adamw", learning_rate=1e-2, weight_decay=0.1),
     lambda m: optax.adamw(1e-2, weight_decay=0.1, mask=m)),
    (dict(name="adam", learning_rate=1e-2, b1=0.8, b2=0.99, eps=1e-6),
     lambda m: optax.adam(1e-2, b1=0.8, b2=0.99, eps=1e-6)),
    (dict(name="sgd", learning_rate=0.1), lambda m: optax.sgd(0.1)),
    (dict(name="momentum", learning_rate=0.1, momentum=0.5, nesterov=True),
     lambda m: optax.sgd(0.1, momentum=0.5, nesterov=True)),
    (dict(name="nadam", learning_rate=1e-2, b1=0.8, b2=0.99, eps=1e-6),
     lambda m: optax.nadam(1e-2, b1=0.8, b2=0.99, eps=1e-6)),
    (dict(name="rmsprop", learning_rate=1e-2, rms_decay=0.95, eps=1e-6),
     lambda m: optax.rmsprop(1e-2, decay=0.95, eps=1e-6)),
    (dict(name="adagrad", learning_rate=1e-1, eps=1e-6),
     lambda m: optax.adagrad(1e-1, eps=1e-6)),
    (dict(name="lion", learning_rate=1e-3, b1=0.9, b2=0.99),
     lambda m: optax.lion(1e-3, b1=0.9, b2=0.99)),
])
def test_matches_optax_alias_over_steps(cfg, reference):
  params = _params()
  tx = optim.make_optimizer(_opt(**cfg), penalties.default_config(), params,
                            steps_per_epoch=10, num_epochs=1)
  ref = reference(penalties.make_mask(params, ""))  # adamw decays kernels
  _assert_trees_close(_run(tx, params), _run(ref, params))


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam", "adamw"])
def test_decoupled_decay_with_zero_gradient(name):
  params, lr, wd = _params(), 0.1, 0.3
  pcfg = penalties.default_config()
  pcfg.weight_decay.strength = wd
  tx = optim.make_optimizer(_opt(name=name, learning_rate=lr, weight_decay=0.0),
                            pcfg, params, steps_per_epoch=1, num_epochs=1)
  zeros = jax.tree.map(jnp.zeros_like, params)
  updates, _ = jax.jit(tx.update)(zeros, tx.init(params), params)
  new = optax.apply_updates(params, updates)
  for path, w, n in zip(penalties.param_paths(params), jax.tree.leaves(params),
                        jax.tree.leaves(new)):
    want = w * (1 - lr * wd) if path.endswith("kernel") else w
    np.testing.assert_allclose(n, want, rtol=1e-6, err_msg=path)


def test_adamw_decay_and_penalty_decay_add_up():
  params = _params()
  pcfg = penalties.default_config()
  pcfg.weight_decay.strength = 0.2
  tx = optim.make_optimizer(_opt(name="adamw", learning_rate=0.1,
                                 weight_decay=0.05), pcfg, params,
                            steps_per_epoch=1, num_epochs=1)
  zeros = jax.tree.map(jnp.zeros_like, params)
  updates, _ = tx.update(zeros, tx.init(params), params)
  np.testing.assert_allclose(updates["head"]["kernel"],
                             -0.1 * 0.25 * params["head"]["kernel"], rtol=1e-6)


@pytest.mark.parametrize("fields,expected", [
    (dict(schedule="constant"), {0: 1.0, 50: 1.0, 100: 1.0}),
    (dict(schedule="cosine"), {0: 1.0, 50: 0.5, 100: 0.0}),
    (dict(schedule="cosine", final_lr_fraction=0.2),
     {0: 1.0, 50: 0.6, 100: 0.2}),
    (dict(schedule="warmup_constant", warmup_epochs=2),
     {0: 0.0, 10: 0.5, 20: 1.0, 99: 1.0}),
    (dict(schedule="warmup_cosine", warmup_epochs=2),  # cosine over 20..100
     {0: 0.0, 10: 0.5, 20: 1.0, 60: 0.5, 100: 0.0}),
    (dict(schedule="warmup_cosine", warmup_epochs=0), {0: 1.0, 50: 0.5}),
])
def test_learning_rate_schedule_values(fields, expected):
  schedule = optim.learning_rate_schedule(_opt(learning_rate=0.4, **fields),
                                          steps_per_epoch=10, num_epochs=10)
  for step, frac in expected.items():
    assert float(schedule(step)) == pytest.approx(0.4 * frac, abs=1e-6), step


def test_optimizer_follows_schedule_step_by_step():
  params = {"w": jnp.zeros(())}
  cfg = _opt(name="sgd", learning_rate=0.4, schedule="warmup_cosine",
             warmup_epochs=1)
  schedule = optim.learning_rate_schedule(cfg, 4, 3)
  tx = optim.make_optimizer(cfg, penalties.default_config(), params,
                            steps_per_epoch=4, num_epochs=3)
  state, update = tx.init(params), jax.jit(tx.update)
  for step in range(12):
    u, state = update({"w": jnp.ones(())}, state, params)
    assert float(u["w"]) == pytest.approx(-float(schedule(step)), abs=1e-7)


def test_grad_clip_norm():
  params = {"w": jnp.zeros(4)}
  tx = optim.make_optimizer(_opt(name="sgd", learning_rate=0.1,
                                 grad_clip_norm=1.0),
                            penalties.default_config(), params,
                            steps_per_epoch=1, num_epochs=1)
  u, _ = tx.update({"w": jnp.full(4, 5.0)}, tx.init(params), params)
  assert float(jnp.linalg.norm(u["w"])) == pytest.approx(0.1, rel=1e-6)


def test_vmap_over_learning_rates_and_weight_decay():
  """One program, one member per (lr, wd); each matches its own optax.adamw."""
  params = _params()
  tx = optim.make_optimizer(_opt(name="adamw"), penalties.default_config(),
                            params, steps_per_epoch=10, num_epochs=1)
  lrs, wds = jnp.array([1e-3, 1e-2, 1e-1]), jnp.array([0.0, 0.1, 0.5])
  stacked = jax.tree.map(lambda w: jnp.stack([w] * 3), params)
  states = jax.vmap(lambda p, lr, wd: optim.set_hyperparams(
      tx.init(p), learning_rate=lr, weight_decay=wd))(stacked, lrs, wds)
  grads = jax.tree.map(lambda w: jnp.cos(3 * w), stacked)
  update = jax.jit(jax.vmap(tx.update))
  p = stacked
  for _ in range(3):
    u, states = update(grads, states, p)
    p = optax.apply_updates(p, u)
  mask = penalties.make_mask(params, "")
  for i in range(3):
    ref = optax.adamw(float(lrs[i]), weight_decay=float(wds[i]), mask=mask)
    s, q, ref_update = ref.init(params), params, jax.jit(ref.update)
    for _ in range(3):
      u, s = ref_update(jax.tree.map(lambda w: jnp.cos(3 * w), params), s, q)
      q = optax.apply_updates(q, u)
    _assert_trees_close(jax.tree.map(lambda x: x[i], p), q)


def test_set_hyperparams_unknown_name():
  params = _params()
  tx = optim.make_optimizer(_opt(name="sgd"), penalties.default_config(),
                            params, steps_per_epoch=1, num_epochs=1)
  with pytest.raises(ConfigError, match="no injected hyperparameter 'wd'"):
    optim.set_hyperparams(tx.init(params), wd=0.1)


@pytest.mark.parametrize("fields,match", [
    (dict(name="yogi"), "name 'yogi' is unknown; use one of: sgd"),
    (dict(name="rmsprop", rms_decay=1.0), "rms_decay=1.0 must be in"),
    (dict(schedule="step"), "schedule 'step' is unknown"),
    (dict(learning_rate=0.0), "learning_rate=0.0 must be > 0"),
    (dict(learning_rate=-1.0), "learning_rate=-1.0 must be > 0"),
    (dict(weight_decay=-0.1), "weight_decay=-0.1 must be >= 0"),
    (dict(momentum=1.0), "momentum=1.0 must be in"),
    (dict(warmup_epochs=-1), "warmup_epochs=-1 must be >= 0"),
    (dict(warmup_epochs=11), "warmup_epochs=11 exceeds num_epochs=10"),
    (dict(final_lr_fraction=1.5), "final_lr_fraction=1.5"),
    (dict(grad_clip_norm=-1.0), "grad_clip_norm=-1.0"),
    (dict(eps=0.0), "eps=0.0 must be > 0"),
])
def test_bad_config_raises_one_line_config_error(fields, match):
  with pytest.raises(ConfigError, match=match) as e:
    optim.make_optimizer(_opt(**fields), penalties.default_config(), _params(),
                         steps_per_epoch=5, num_epochs=10)
  assert "\n" not in str(e.value)


def test_unknown_field_and_bad_steps():
  with pytest.raises(ConfigError, match="unknown optimizer field"):
    optim.validate_config({**optim.default_config().to_dict(), "lr": 0.1})
  with pytest.raises(ConfigError, match="steps_per_epoch=0"):
    optim.learning_rate_schedule(optim.default_config(), 0, 10)


def _rmsprop(c):
  """u = g / sqrt(EMA_b2(g²) + eps), as `optax.rmsprop` (decay = b2)."""
  return [optax.scale_by_rms(decay=c["b2"], eps=c["eps"])]


def test_registered_optimizer_matches_optax_and_names_update():
  params = _params()
  assert "rms_b2" not in optim.OPTIMIZERS
  rec = optim.Optimizer("rms_b2", _rmsprop)
  with optim.OPTIMIZERS.temporary("rms_b2", rec, origin=_rmsprop):
    assert optim.NAMES == BUILT_IN + ("rms_b2",)
    tx = optim.make_optimizer(_opt(name="rms_b2", learning_rate=1e-2, b2=0.95, eps=1e-6),
                              penalties.default_config(), params,
                              steps_per_epoch=10, num_epochs=1)
    assert sorted(tx.init(params).hyperparams) == ["learning_rate"]   # no weight_decay
    _assert_trees_close(_run(tx, params), _run(optax.rmsprop(1e-2, decay=0.95, eps=1e-6), params))
    with pytest.raises(ConfigError, match="name 'yogi' is unknown; use one of: "
                       + ", ".join(BUILT_IN + ("rms_b2",))):
      optim.validate_config(_opt(name="yogi"))
  assert "rms_b2" not in optim.OPTIMIZERS and optim.NAMES == BUILT_IN


def test_register_decorator_with_decoupled_weight_decay():
  @optim.register("sgdw_test", decoupled_weight_decay=True)
  def sgdw_test(c):
    """u = g + wd·w (kernels): SGD with AdamW-style decoupled decay."""
    del c
    return []

  try:
    params, lr, wd = _params(), 0.1, 0.3
    tx = optim.make_optimizer(_opt(name="sgdw_test", learning_rate=lr, weight_decay=wd),
                              penalties.default_config(), params, steps_per_epoch=1, num_epochs=1)
    assert float(tx.init(params).hyperparams["weight_decay"]) == pytest.approx(wd)
    zeros = jax.tree.map(jnp.zeros_like, params)
    new = optax.apply_updates(params, tx.update(zeros, tx.init(params), params)[0])
    for path, w, n in zip(penalties.param_paths(params), jax.tree.leaves(params),
                          jax.tree.leaves(new)):
      np.testing.assert_allclose(n, w * (1 - lr * wd) if path.endswith("kernel") else w,
                                 rtol=1e-6, err_msg=path)
    with pytest.raises(ValueError, match="optimizer 'sgdw_test' is already registered"):
      optim.register("sgdw_test")(sgdw_test)
  finally:
    optim.OPTIMIZERS.unregister("sgdw_test")


def test_registered_lr_schedule():
  def halfway_drop(*, total, warmup, end):
    """1 for the first half of the steps, then final_lr_fraction."""
    del warmup
    return lambda step: jnp.where(step < total // 2, 1.0, end)

  with optim.LR_SCHEDULES.temporary("halfway_drop", halfway_drop):
    sched = optim.learning_rate_schedule(
        _opt(schedule="halfway_drop", learning_rate=0.5, final_lr_fraction=0.1), 5, 4)
    assert [float(sched(t)) for t in (0, 9, 10, 19)] == pytest.approx([0.5, 0.5, 0.05, 0.05])
    assert optim.SCHEDULES[-1] == "halfway_drop"
  with pytest.raises(ConfigError, match="schedule 'halfway_drop' is unknown; use one of: "
                     "constant, cosine, warmup_cosine, warmup_constant"):
    optim.validate_config(_opt(schedule="halfway_drop"))
