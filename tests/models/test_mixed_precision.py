"""Mixed precision (`config.precision="bfloat16"`): every matrix product and convolution of the
forward and backward pass takes bfloat16 operands (read off the jaxpr), logits and gradients are
float32, an update below bfloat16's resolution survives in the float32 master weights, BatchNorm
statistics stay float32, a trained run matches float32 to within bfloat16's noise, and bfloat16
is refused where the device would emulate it (the expectation read from /proc/cpuinfo here)."""

import json
import os
import subprocess
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.extend import core as jcore

from genjax import models
from genjax.config import defaults
from genjax.run import setup as experiment
from genjax.errors import ConfigError
from genjax.models import precision
from genjax.train.fit import fit
from genjax.train.program import build_program
from genjax.train.steps import Plan, Steps, TrainState

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PRODUCTS = ("dot_general", "conv_general_dilated")


def _eqns(jaxpr):
  for e in jaxpr.eqns:
    yield e
    for param in e.params.values():
      for sub in param if isinstance(param, (list, tuple)) else [param]:
        if isinstance(sub, jcore.ClosedJaxpr):
          yield from _eqns(sub.jaxpr)
        elif isinstance(sub, jcore.Jaxpr):
          yield from _eqns(sub)


def _model(name, shape, prec, classes=10, **fields):
  cfg = models.default_config()
  cfg.name = name
  for k, v in fields.items():
    cfg[k] = v
  return models.create(cfg, shape, classes, precision=prec)


def _grad_jaxpr(model, shape):
  x, y = jnp.linspace(-1, 1, 4 * int(np.prod(shape))).reshape(4, *shape), jnp.arange(4) % 10
  keys = jax.random.split(jax.random.key(1), 4)

  def loss(p):
    if model.has_batch_stats:
      logits, _ = model.apply_train(p, x, rng=keys)
    else:
      logits = model.apply(p, x, train=True, rng=keys)
    assert logits.dtype == jnp.float32
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  params = model.param_shapes   # traced only: shapes and dtypes
  return jax.make_jaxpr(jax.grad(loss))(params), jax.eval_shape(jax.grad(loss), params)


MODELS = [("mlp", (40,), {"dropout": 0.2}), ("mlp", (40,), {"norm": "layer"}),
          ("cnn1d", (40,), {}), ("cnn2d", (8, 8, 1), {"conv": "xla"}),
          ("cnn2d", (8, 8, 1), {"conv": "patches", "norm": "batch"}),
          ("cnn2d", (8, 8, 1), {"conv": "patches", "norm": "group"}),
          ("resnet", (8, 8, 1), {"resnet_width": 2})]


@pytest.mark.slow
@pytest.mark.parametrize("name,shape,fields", MODELS, ids=[f"{m[0]}-{m[2]}" for m in MODELS])
def test_every_product_of_forward_and_backward_pass_is_bfloat16(name, shape, fields):
  jaxpr, grads = _grad_jaxpr(_model(name, shape, "bfloat16", **fields), shape)
  products = [e for e in _eqns(jaxpr.jaxpr) if e.primitive.name in PRODUCTS]
  assert len(products) >= 3   # forward, and the two of each backward product
  for e in products:
    assert [v.aval.dtype for v in e.invars] == [jnp.bfloat16] * 2, (e.primitive, e.invars)
  assert {leaf.dtype for leaf in jax.tree.leaves(grads)} == {jnp.dtype(jnp.float32)}
  # float32 has no bfloat16 anywhere.
  jaxpr, _ = _grad_jaxpr(_model(name, shape, "float32", **fields), shape)
  assert not any(v.aval.dtype == jnp.bfloat16 for e in _eqns(jaxpr.jaxpr) for v in e.outvars)


def test_logits_are_the_product_of_bfloat16_inputs_and_weights():
  model = _model("logreg", (40,), "bfloat16")
  params = model.init(jax.random.key(0))
  x = np.random.default_rng(0).normal(size=(16, 40)).astype(np.float32)
  got = np.asarray(model.apply(params, jnp.asarray(x), train=False))
  bf = lambda a: np.asarray(a, jnp.bfloat16).astype(np.float64)  # noqa: E731
  w, b = params["head"]["kernel"], params["head"]["bias"]
  ref = bf(x) @ bf(w) + bf(b)
  bound = 2.0 ** -6 * (np.abs(bf(x)) @ np.abs(bf(w)) + np.abs(bf(b)))   # bf16 rounding
  assert got.dtype == np.float32 and np.all(np.abs(got - ref) <= bound)
  exact = x.astype(np.float64) @ np.asarray(w, np.float64) + np.asarray(b, np.float64)
  assert np.max(np.abs(got - exact)) > 1e-3   # not float32's answer: the inputs were cast


def test_an_update_below_bfloat16_resolution_survives_in_the_float32_weights():
  n, d, c, lr = 32, 6, 3, 1e-4
  model = _model("logreg", (d,), "bfloat16", classes=c)
  rng = np.random.default_rng(0)
  x = rng.normal(size=(n, d)).astype(np.float32)
  y = rng.integers(0, c, n).astype(np.int32)
  tx = optax.sgd(lr)
  fns = Steps(
      apply_fn=lambda p, x, train, rng, hparams: model.apply(p, x, train=train, rng=rng),
      tx=tx, penalty_fn=lambda p, s, h: 0.0, augmenter=None, num_classes=c, batch_size=n,
      eval_batch_size=n)
  params = model.init(jax.random.key(0))
  state = TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params))
  plan = Plan(train_idx=jnp.arange(n), train_weight=jnp.ones(n), val_idx=jnp.arange(n),
              val_weight=jnp.ones(n), mean=jnp.zeros(d), std=jnp.ones(d), key=jax.random.key(1))
  idx, w, key = fns.epoch_batches(plan, 0)
  new, _ = jax.jit(fns.train_step)(state, plan, x, y, idx[0], w[0], key, False)
  kernel, new_kernel = np.asarray(params["head"]["kernel"]), np.asarray(new.params["head"]["kernel"])
  assert new_kernel.dtype == np.float32
  # The step's gradient, from bfloat16 logits: X^T (softmax(z) − onehot(y)) / n.
  bf = lambda a: np.asarray(a, jnp.bfloat16).astype(np.float64)  # noqa: E731
  xb = bf(x[np.asarray(idx[0])])
  yb = y[np.asarray(idx[0])]
  z = xb @ bf(kernel) + bf(params["head"]["bias"])
  p = np.exp(z - z.max(1, keepdims=True))
  p /= p.sum(1, keepdims=True)
  grad = xb.T @ (p - np.eye(c)[yb]) / n
  delta = new_kernel.astype(np.float64) - kernel
  assert np.max(np.abs(lr * grad) / np.abs(kernel)) < 2.0 ** -9   # bf16(θ + δ) would be bf16(θ)
  np.testing.assert_allclose(delta, -lr * grad, rtol=0.05, atol=1e-8)


def _config(prec, **model):
  config = defaults.get_config()
  config.model.widths = (32,)
  config.num_epochs = 6
  config.checkpoint.enabled = False
  config.early_stopping.enabled = False
  config.precision = prec
  config.allow_emulated_bfloat16 = True
  for k, v in model.items():
    config.model[k] = v
  return config


def _fit(config):
  s = experiment.prepare(config, None)
  program = build_program(s, experiment.member_plans(config, s.splits.train_y))
  fitted = fit(program, [], num_epochs=config.num_epochs)
  fitted.stat_mask = s.model.stat_mask
  return fitted


def _stats(fitted):
  """The batch statistics' leaves (running means and variances) of the selected weights."""
  return [np.asarray(leaf) for leaf, is_stat in zip(jax.tree.leaves(fitted.selected_params),
                                                     jax.tree.leaves(fitted.stat_mask)) if is_stat]


def _last(fitted, key):
  return [r[key] for r in fitted.rows if r["epoch"] == fitted.epochs_run - 1]


@pytest.mark.slow
@pytest.mark.parametrize("norm", ["none", "batch"])
def test_training_in_bfloat16_matches_float32_within_its_noise(norm):
  f32, bf16 = _fit(_config("float32", norm=norm)), _fit(_config("bfloat16", norm=norm))
  for fitted in (f32, bf16):   # master weights, optimizer state and statistics are float32
    dtypes = {leaf.dtype for leaf in jax.tree.leaves((fitted.selected_params,
                                                      fitted.state.train.opt_state))
              if jnp.issubdtype(leaf.dtype, jnp.floating)}
    assert dtypes == {jnp.dtype(jnp.float32)}
  assert _last(f32, "val_loss") != _last(bf16, "val_loss")   # bf16 did compute differently
  np.testing.assert_allclose(_last(bf16, "val_loss"), _last(f32, "val_loss"), rtol=0.03)
  assert abs(_last(bf16, "val_accuracy")[0] - _last(f32, "val_accuracy")[0]) <= 0.03
  if norm == "batch":   # the running statistics, kept in float32, agree closely
    stats32, stats16 = _stats(f32), _stats(bf16)
    assert len(stats32) == 2 * len(_config("float32").model.widths)   # mean and var per layer
    for a, b in zip(stats32, stats16):
      assert b.dtype == np.float32 and not np.array_equal(a, b)
      np.testing.assert_allclose(b, a, rtol=0.05, atol=0.05)


def test_bfloat16_is_refused_where_the_device_would_emulate_it(monkeypatch):
  gpu = lambda cc, kind: types.SimpleNamespace(platform="gpu", compute_capability=cc,  # noqa: E731
                                               device_kind=kind)
  with pytest.raises(ConfigError, match="compute capability 7.0"):
    precision.check_backend("bfloat16", False, [gpu("7.0", "Tesla V100")])
  precision.check_backend("bfloat16", False, [gpu("8.0", "NVIDIA A100")])
  precision.check_backend("bfloat16", False, [gpu("9.0", "NVIDIA H200")])
  precision.check_backend("bfloat16", False, [types.SimpleNamespace(platform="tpu")])
  precision.check_backend("bfloat16", True, [gpu("7.0", "Tesla V100")])   # allowed emulated
  precision.check_backend("float32", False, [gpu("6.0", "Tesla P100")])
  cpu = [types.SimpleNamespace(platform="cpu")]
  monkeypatch.setattr(precision, "_cpu_flags", lambda: {"avx2", "avx512_bf16"})
  precision.check_backend("bfloat16", False, cpu)
  monkeypatch.setattr(precision, "_cpu_flags", lambda: {"avx2", "avx512f"})
  with pytest.raises(ConfigError, match="allow_emulated_bfloat16"):
    precision.check_backend("bfloat16", False, cpu)


def _genjax(*args):
  return subprocess.run([sys.executable, "-m", "genjax.main", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=240)


@pytest.mark.slow
def test_the_command_line_refuses_or_runs_bfloat16_as_this_cpu_allows(tmp_path):
  with open("/proc/cpuinfo") as f:
    native = any(flag in line.split() for line in f if line.startswith("flags")
                 for flag in ("avx512_bf16", "amx_bf16"))
  args = ["train", "--config=experiments/mnist1d_mlp.py", "--config.num_epochs=2",
          "--config.model.widths=(16,)", "--progress=false", "--config.precision=bfloat16"]
  out = _genjax(*args, f"--workdir={tmp_path / 'plain'}")
  if native:
    assert out.returncode == 0, out.stderr[-2000:]
  else:
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs native bfloat16" in lines[0], out.stderr
    assert not (tmp_path / "plain").exists()
  out = _genjax(*args, "--config.allow_emulated_bfloat16=true", f"--workdir={tmp_path / 'run'}")
  assert out.returncode == 0, out.stderr[-2000:]
  assert "precision: bfloat16 (float32 weights)" in out.stdout
  with open(tmp_path / "run" / "results.json") as f:
    assert json.load(f)["precision"] == "bfloat16"
