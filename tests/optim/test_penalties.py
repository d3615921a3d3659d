"""Penalties: gradients and proximal steps vs closed forms, registry, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import optim
from genjax.optim import penalties
from genjax.errors import ConfigError


def _params(seed=0):
  k = jax.random.split(jax.random.PRNGKey(seed), 4)
  return {
      "layers": {"0": {"kernel": jax.random.normal(k[0], (3, 4)),
                       "bias": jax.random.normal(k[1], (4,))}},
      "head": {"kernel": jax.random.normal(k[2], (4, 2)),
               "bias": jax.random.normal(k[3], (2,))},
  }


def _cfg(**strengths):
  cfg = penalties.default_config()
  for name, value in strengths.items():
    cfg[name].strength = value
  return cfg


def _is_kernel(path):
  return path.endswith("kernel")


def _check_grads(grads, params, expected_fn, selected=_is_kernel):
  paths = penalties.param_paths(params)
  for path, g, w in zip(paths, jax.tree.leaves(grads),
                        jax.tree.leaves(params)):
    want = expected_fn(w) if selected(path) else jnp.zeros_like(w)
    np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-6, err_msg=path)


@pytest.mark.parametrize("name,closed_form", [
    ("l2", lambda w: w),
    ("l1", jnp.sign),
    ("elastic_net", lambda w: 0.3 * jnp.sign(w) + 0.7 * w),
])
def test_loss_gradient_closed_form_on_kernels_zero_on_biases(name,
                                                             closed_form):
  params, lam = _params(), 0.1
  cfg = _cfg(**{name: lam})
  if name == "elastic_net":
    cfg.elastic_net.l1_ratio = 0.3
  loss = penalties.penalty_loss_fn(cfg, params)
  grads = jax.jit(jax.grad(loss))(params, 0)
  _check_grads(grads, params, lambda w: lam * closed_form(w))


def test_l2_value_is_half_squared_norm_of_kernels():
  params = _params()
  loss = penalties.penalty_loss_fn(_cfg(l2=2.0), params)
  kernels = [params["layers"]["0"]["kernel"], params["head"]["kernel"]]
  want = 2.0 * 0.5 * sum(jnp.sum(w**2) for w in kernels)
  np.testing.assert_allclose(loss(params, 0), want, rtol=1e-6)


def test_group_lasso_value_and_gradient_dense_and_conv():
  w = jnp.array([[3.0, 0.0, 1.0], [4.0, 0.0, -1.0]])  # column 1 is all zero
  conv = jax.random.normal(jax.random.PRNGKey(1), (3, 3, 2, 4))
  params = {"dense": {"kernel": w, "bias": jnp.ones(3)},
            "conv": {"kernel": conv}}
  loss = penalties.penalty_loss_fn(_cfg(group_lasso=0.5), params)
  cols = conv.reshape(-1, 4)
  cols = np.asarray(cols)
  want = 0.5 * (5.0 + 0.0 + np.sqrt(2.0) + np.linalg.norm(cols, axis=0).sum())
  np.testing.assert_allclose(jax.jit(loss)(params, 0), want, rtol=1e-5)
  grads = jax.jit(jax.grad(loss))(params, 0)
  np.testing.assert_allclose(  # λ·W[:, j]/‖W[:, j]‖, and 0 for a zero column
      grads["dense"]["kernel"],
      0.5 * jnp.array([[0.6, 0.0, 2**-0.5], [0.8, 0.0, -2**-0.5]]), rtol=1e-5)
  np.testing.assert_allclose(
      grads["conv"]["kernel"],
      (0.5 * cols / np.linalg.norm(cols, axis=0)).reshape(conv.shape),
      rtol=1e-5)
  np.testing.assert_array_equal(grads["dense"]["bias"], 0.0)


def test_custom_regex_mask():
  params, lam = _params(), 0.2
  cfg = _cfg(l2=lam)
  cfg.l2.mask = r"^layers/0/"  # kernel AND bias of layer 0, nothing in head
  grads = jax.jit(jax.grad(penalties.penalty_loss_fn(cfg, params)))(params, 0)
  _check_grads(grads, params, lambda w: lam * w,
               selected=lambda p: p.startswith("layers/0/"))


def test_make_mask_default_regex_and_no_match():
  params = {"a": {"kernel": jnp.ones(2), "bias": jnp.ones(2)},
            "norm": {0: jnp.ones(2), 1: jnp.ones(2)}}  # int keys too
  assert penalties.make_mask(params, "") == {
      "a": {"kernel": True, "bias": False}, "norm": {0: False, 1: False}}
  assert penalties.make_mask(params, "bias|norm/1") == {
      "a": {"kernel": False, "bias": True}, "norm": {0: False, 1: True}}
  with pytest.raises(ConfigError, match="'nope' matches no parameter") as e:
    penalties.make_mask(params, "nope")
  assert "a/kernel" in str(e.value) and "\n" not in str(e.value)
  with pytest.raises(ConfigError, match="invalid"):
    penalties.make_mask(params, "(")


def test_penalty_loss_zero_when_off_and_strength_override_and_schedule():
  params = _params()
  r = float(0.5 * sum(jnp.sum(w**2) for w in [params["layers"]["0"]["kernel"],
                                               params["head"]["kernel"]]))
  off = penalties.penalty_loss_fn(penalties.default_config(), params)
  assert float(off(params, 0)) == 0.0
  assert float(off(params, 0, {"l2": 3.0})) == pytest.approx(3.0 * r, 1e-6)
  cfg = _cfg(l2=1.0)
  cfg.l2.schedule, cfg.l2.schedule_steps = "linear_warmup", 10
  loss = jax.jit(penalties.penalty_loss_fn(cfg, params))
  for step, frac in [(0, 0.0), (5, 0.5), (10, 1.0), (50, 1.0)]:
    np.testing.assert_allclose(loss(params, step), frac * r, rtol=1e-6)


def test_penalty_loss_vmaps_over_strengths():
  params = _params()
  loss = penalties.penalty_loss_fn(_cfg(l1=1.0, l2=1.0), params)
  lams = jnp.array([0.0, 0.1, 1.0])
  got = jax.vmap(lambda lam: loss(params, 3, {"l1": lam, "l2": 2 * lam}))(lams)
  kernels = [params["layers"]["0"]["kernel"], params["head"]["kernel"]]
  l1 = sum(jnp.sum(jnp.abs(w)) for w in kernels)
  l2 = 0.5 * sum(jnp.sum(w**2) for w in kernels)
  np.testing.assert_allclose(got, lams * l1 + 2 * lams * l2, rtol=1e-5)


def test_proximal_step_equals_soft_threshold_of_sgd_step():
  params, lr, lam = _params(), 0.1, 0.5
  grads = jax.tree.map(lambda w: 0.3 * jnp.cos(w), params)
  opt = optim.default_config()
  opt.name, opt.learning_rate = "sgd", lr
  tx = optim.make_optimizer(opt, _cfg(l1_prox=lam), params,
                            steps_per_epoch=1, num_epochs=1)
  updates, _ = tx.update(grads, tx.init(params), params)
  new = jax.tree.map(lambda w, u: w + u, params, updates)
  for path, w, g, n in zip(penalties.param_paths(params),
                           *map(jax.tree.leaves, (params, grads, new))):
    want = penalties.soft_threshold(w - lr * g, lr * lam) if _is_kernel(path) \
        else w - lr * g
    np.testing.assert_allclose(n, want, rtol=1e-6, atol=1e-7, err_msg=path)
  assert float(penalties.weight_stats(new, "")["sparsity"]) > 0


def test_proximal_l1_sparsity_grows_with_strength_least_squares():
  x = jax.random.normal(jax.random.PRNGKey(0), (64, 10))
  true_w = jnp.array([2.0, -1.5, 1.0, 0.5, 0.25, 0.1, 0.0, 0.0, 0.0, 0.0])
  y = x @ true_w[:, None] + 0.05 * jax.random.normal(jax.random.PRNGKey(1),
                                                     (64, 1))
  params = {"head": {"kernel": jnp.full((10, 1), 0.1), "bias": jnp.zeros(1)}}
  opt = optim.default_config()
  opt.name, opt.learning_rate = "sgd", 0.05
  tx = optim.make_optimizer(opt, _cfg(l1_prox=1.0), params,
                            steps_per_epoch=300, num_epochs=1)

  def fit(lam):  # One member per strength, all in one vmapped program.
    def loss(p):
      return 0.5 * jnp.mean((x @ p["head"]["kernel"] + p["head"]["bias"] - y)
                            ** 2)

    def step(carry, _):
      p, s = carry
      u, s = tx.update(jax.grad(loss)(p), s, p)
      return (jax.tree.map(jnp.add, p, u), s), None
    state = optim.set_hyperparams(tx.init(params), l1_prox_strength=lam)
    (p, _), _ = jax.lax.scan(step, (params, state), None, length=300)
    return penalties.weight_stats(p, "")["sparsity"]

  lams = jnp.array([0.0, 0.05, 0.3, 0.8, 3.0])
  sparsity = np.asarray(jax.jit(jax.vmap(fit))(lams))
  assert sparsity[0] == 0.0
  assert np.all(np.diff(sparsity) >= 0), sparsity
  assert sparsity[1] > 0 and sparsity[-1] == 1.0, sparsity
  assert len(set(sparsity.tolist())) >= 4, sparsity  # it really grows


def test_registry_new_penalty_in_default_config_and_applied():
  @penalties.register("test_cubic", power=3.0)
  def test_cubic(w, power):
    """R(w) = Σ|w|^power."""
    return jnp.sum(jnp.abs(w) ** power)

  try:
    assert "test_cubic" in penalties.names()
    assert penalties.get("test_cubic").fields == {"power": 3.0}
    cfg = penalties.default_config()
    assert cfg.test_cubic.strength == 0.0 and cfg.test_cubic.power == 3.0
    cfg.test_cubic.strength = 0.5  # as --config.penalties.test_cubic.strength
    params = _params()
    grads = jax.jit(jax.grad(penalties.penalty_loss_fn(cfg, params)))(params, 0)
    _check_grads(grads, params, lambda w: 0.5 * 3.0 * w * jnp.abs(w))
    with pytest.raises(ValueError, match="already registered"):
      penalties.register("test_cubic")(test_cubic)
  finally:
    penalties.unregister("test_cubic")
  assert "test_cubic" not in penalties.default_config()


def test_weight_stats_values_and_jit():
  params = {"a": {"kernel": jnp.array([[0.0, 3.0], [0.0, -4.0]]),
                  "bias": jnp.array([0.0, 1.0])}}
  s = jax.jit(lambda p: penalties.weight_stats(p, ""))(params)
  assert float(s["l2_norm"]) == pytest.approx(5.0)
  assert float(s["l1_norm"]) == pytest.approx(7.0)
  assert float(s["sparsity"]) == pytest.approx(0.5)
  s = penalties.weight_stats(params)  # every leaf
  assert float(s["sparsity"]) == pytest.approx(3 / 6)
  assert float(s["l2_norm"]) == pytest.approx(np.sqrt(26.0))


@pytest.mark.parametrize("edit,match", [
    (lambda c: setattr(c.l2, "strength", -1.0), "strength=-1.0 must be a finite number >= 0"),
    (lambda c: c.update({"nonsense": {"strength": 1.0}}), "unknown penalty"),
    (lambda c: setattr(c.elastic_net, "l1_ratio", 1.5), "l1_ratio=1.5"),
    (lambda c: (setattr(c.l1, "strength", 1.0), setattr(c.l1, "mask", "zzz")),
     "'zzz' matches no parameter"),
    (lambda c: setattr(c.l1, "schedule", "exp"), "schedule='exp' is unknown"),
    (lambda c: setattr(c.l1, "schedule", "linear_warmup"), "schedule_steps"),
    (lambda c: c.l2.update({"strenght": 1.0}), "unknown field"),
])
def test_bad_config_raises_one_line_config_error(edit, match):
  cfg = penalties.default_config()
  edit(cfg)
  with pytest.raises(ConfigError, match=match) as e:
    penalties.validate_config(cfg, _params())
  assert "\n" not in str(e.value)


def test_transform_strength_passed_to_loss_raises():
  params = _params()
  loss = penalties.penalty_loss_fn(penalties.default_config(), params)
  with pytest.raises(ConfigError, match="optimizer|pre_lr"):
    loss(params, 0, {"weight_decay": 1.0})


# ------------------------------------------------------- tree penalties ---

def _orthogonality_numpy(kernels):
  """Σ_W ‖ŴᵀŴ − I‖_F², Ŵ = W.reshape(-1, W.shape[-1]), in float64 numpy."""
  total = 0.0
  for w in kernels:
    w = np.asarray(w, np.float64).reshape(-1, np.shape(w)[-1])
    total += np.sum((w.T @ w - np.eye(w.shape[1])) ** 2)
  return total


def test_orthogonality_is_a_tree_penalty_off_by_default():
  p = penalties.get("orthogonality")
  assert (p.kind, p.scope, p.fields) == ("loss", "tree", {})
  cfg = penalties.default_config()
  assert cfg.orthogonality.strength == 0.0 and cfg.orthogonality.mask == ""
  assert penalties.enabled(cfg) == []
  params = _params()
  assert float(penalties.penalty_loss_fn(cfg, params)(params, 0)) == 0.0


def test_orthogonality_value_and_gradient_match_numpy():
  k = jax.random.split(jax.random.PRNGKey(2), 3)
  params = {"dense": {"kernel": jax.random.normal(k[0], (5, 3)), "bias": jnp.ones(3)},
            "conv": {"kernel": 0.3 * jax.random.normal(k[1], (3, 3, 2, 4))},
            "wide": {"kernel": jax.random.normal(k[2], (2, 6))}}   # out > fan_in
  lam = 0.7
  loss = penalties.penalty_loss_fn(_cfg(orthogonality=lam), params)
  kernels = [params[n]["kernel"] for n in ("dense", "conv", "wide")]
  np.testing.assert_allclose(jax.jit(loss)(params, 0), lam * _orthogonality_numpy(kernels),
                             rtol=1e-5)
  grads = jax.jit(jax.grad(loss))(params, 0)
  for name in ("dense", "conv", "wide"):  # ∇ λR = 4λ·Ŵ(ŴᵀŴ − I), reshaped back
    w = np.asarray(params[name]["kernel"], np.float64)
    flat = w.reshape(-1, w.shape[-1])
    want = 4 * lam * flat @ (flat.T @ flat - np.eye(flat.shape[1]))
    np.testing.assert_allclose(grads[name]["kernel"], want.reshape(w.shape), rtol=1e-4,
                               atol=1e-5, err_msg=name)
  np.testing.assert_array_equal(grads["dense"]["bias"], 0.0)
  q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(5, 3)))   # orthonormal columns
  ortho = {"dense": {"kernel": jnp.asarray(q, jnp.float32)}}
  value = penalties.penalty_loss_fn(_cfg(orthogonality=1.0), ortho)(ortho, 0)
  assert float(value) == pytest.approx(0.0, abs=1e-10)


def test_orthogonality_mask_schedule_and_vmapped_strengths():
  params = _params()
  cfg = _cfg(orthogonality=1.0)
  cfg.orthogonality.mask = r"^head/"   # head kernel (2-D) and head bias (1-D: contributes 0)
  cfg.orthogonality.schedule, cfg.orthogonality.schedule_steps = "linear_warmup", 10
  loss = penalties.penalty_loss_fn(cfg, params)
  r = _orthogonality_numpy([params["head"]["kernel"]])
  np.testing.assert_allclose(loss(params, 5), 0.5 * r, rtol=1e-5)
  lams = jnp.array([0.0, 0.1, 2.0])    # per-member strengths, as a sweep passes them
  got = jax.jit(jax.vmap(lambda lam: loss(params, 10, {"orthogonality": lam})))(lams)
  np.testing.assert_allclose(got, np.asarray(lams) * r, rtol=1e-5)


def test_user_tree_penalty_couples_layers_via_temporary():
  def norm_balance(params, mask, target):
    """R(θ) = (‖W_first‖² − target·‖W_last‖²)² over the first and last masked leaves."""
    leaves = list(penalties.selected(params, mask).values())
    sq = lambda w: jnp.sum(jnp.square(w))
    return (sq(leaves[0]) - target * sq(leaves[-1])) ** 2

  record = penalties.Penalty("norm_balance_test", norm_balance, "loss", {"target": 2.0}, "tree")
  params = _params()
  a, b = params["layers"]["0"]["kernel"], params["head"]["kernel"]
  with penalties.PENALTIES.temporary("norm_balance_test", record, origin=norm_balance):
    cfg = penalties.default_config()
    assert cfg.norm_balance_test.target == 2.0
    cfg.norm_balance_test.strength, cfg.norm_balance_test.target = 0.5, 3.0
    assert list(penalties.selected(params, penalties.make_mask(params, ""))) == [
        "head/kernel", "layers/0/kernel"]            # jax.tree.leaves order (sorted keys)
    loss = penalties.penalty_loss_fn(cfg, params)
    sa, sb = float(np.sum(np.square(a))), float(np.sum(np.square(b)))
    np.testing.assert_allclose(loss(params, 0), 0.5 * (sb - 3.0 * sa) ** 2, rtol=1e-5)
    grads = jax.grad(loss)(params, 0)                # the gradient reaches both layers
    coef = 0.5 * 2 * (sb - 3.0 * sa)
    np.testing.assert_allclose(grads["head"]["kernel"], coef * 2 * b, rtol=1e-4)
    np.testing.assert_allclose(grads["layers"]["0"]["kernel"], coef * -3.0 * 2 * a, rtol=1e-4)
    both = jax.vmap(lambda lam: loss(params, 0, {"norm_balance_test": lam}))(jnp.array([0., 1.]))
    np.testing.assert_allclose(both, [0.0, (sb - 3.0 * sa) ** 2], rtol=1e-5)
  assert "norm_balance_test" not in penalties.names()


def test_register_tree_scope_via_decorator_and_bad_scopes():
  @penalties.register("tree_sum_test", scope="tree")
  def tree_sum_test(params, mask):
    """R(θ) = Σ_{w ∈ mask} Σ w."""
    return sum(jnp.sum(w) for w in penalties.selected(params, mask).values())

  try:
    params = _params()
    loss = penalties.penalty_loss_fn(_cfg(tree_sum_test=2.0), params)
    kernels = [params["layers"]["0"]["kernel"], params["head"]["kernel"]]
    want = 2.0 * float(sum(jnp.sum(w) for w in kernels))
    np.testing.assert_allclose(loss(params, 0), want, rtol=1e-5)
  finally:
    penalties.unregister("tree_sum_test")
  with pytest.raises(ValueError, match="scope"):
    penalties.register("bad_scope_test", scope="layer")
  with pytest.raises(ValueError, match="scope"):
    penalties.register("bad_scope_test", kind="pre_lr", scope="tree")


def test_penalty_registry_keeps_order_and_refuses_another_definition():
  assert penalties.names()[:4] == ["l2", "l1", "elastic_net", "group_lasso"]
  assert set(penalties.default_config()) == set(penalties.names())

  def l2(w):  # another function under a built-in's name
    return jnp.sum(w)
  with pytest.raises(ValueError, match="'l2' is already registered"):
    penalties.register("l2")(l2)
  assert penalties.get("l2").fn is penalties.l2
  with pytest.raises(ConfigError, match="unknown penalty 'nope'; registered penalties are: l2, l1"):
    penalties.get("nope")
