"""Pure steps: padding and frozen members change nothing; shuffles ignore padding."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from genjax import models
from genjax.train.steps import Plan, TrainState, make_epoch_fns, shuffled_order


def _problem(n=203, d=12, c=3, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, d)).astype(np.float32)
  y = (x[:, :c].argmax(1)).astype(np.int32)
  return jnp.asarray(x), jnp.asarray(y)


def _setup(dropout=0.2, batch_size=16):
  cfg = models.default_config()
  cfg.widths, cfg.dropout = (16,), dropout
  model = models.create(cfg, (12,), 3)
  tx = optax.adam(1e-2)
  train_epoch, evaluate, predict = make_epoch_fns(
      apply_fn=lambda p, x, train, rng, hparams: model.apply(p, x, train=train, rng=rng),
      tx=tx, penalty_fn=lambda p, s, h: 0.0, augmenter=None,
      num_classes=3, batch_size=batch_size, eval_batch_size=50)
  params = model.init(jax.random.key(0))
  state = TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params))
  return train_epoch, evaluate, predict, state


def _plan(train_idx, val_idx, pad_to=None, key=1):
  train_w = np.ones(len(train_idx), np.float32)
  if pad_to is not None:
    extra = pad_to - len(train_idx)
    train_idx = np.concatenate([train_idx, np.zeros(extra, np.int64)])
    train_w = np.concatenate([train_w, np.zeros(extra, np.float32)])
  return Plan(train_idx=jnp.asarray(train_idx, jnp.int32), train_weight=jnp.asarray(train_w),
              val_idx=jnp.asarray(val_idx, jnp.int32),
              val_weight=jnp.ones(len(val_idx), jnp.float32),
              mean=jnp.zeros(12), std=jnp.ones(12), key=jax.random.key(key))


def _close(a, b, tol=1e-6):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tol, atol=tol)


@pytest.mark.slow
def test_padding_does_not_change_training():
  x, y = _problem()
  train_epoch, evaluate, _, state = _setup()
  train_idx, val_idx = np.arange(0, 150), np.arange(150, 203)
  alone, padded = state, state
  for epoch in range(3):
    alone, m_alone = jax.jit(train_epoch)(alone, _plan(train_idx, val_idx), x, y, epoch)
    padded, m_pad = jax.jit(train_epoch)(padded, _plan(train_idx, val_idx, pad_to=200), x, y, epoch)
    _close(m_alone, m_pad)
  _close(alone.params, padded.params)
  assert int(alone.step) == int(padded.step) == 3 * 10  # ceil(150/16) active steps per epoch


def test_frozen_member_does_not_change():
  x, y = _problem()
  train_epoch, _, _, state = _setup()
  plan = _plan(np.arange(150), np.arange(150, 203))
  new, _ = jax.jit(train_epoch)(state, plan, x, y, 0, True)
  for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(new)):
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_training_learns_and_eval_is_weighted_mean():
  x, y = _problem()
  train_epoch, evaluate, predict, state = _setup(dropout=0.0)
  plan = _plan(np.arange(150), np.arange(150, 203))
  before = evaluate(state.params, plan, x, y, plan.val_idx, plan.val_weight)
  for epoch in range(15):
    state, _ = jax.jit(train_epoch)(state, plan, x, y, epoch)
  after = evaluate(state.params, plan, x, y, plan.val_idx, plan.val_weight)
  assert float(after["accuracy"]) > 0.8 > float(before["accuracy"])
  logits = predict(state.params, plan, x, plan.val_idx)
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, y[150:203])
  np.testing.assert_allclose(float(after["loss"]), float(ce.mean()), rtol=1e-5)
  acc = float((logits.argmax(-1) == y[150:203]).mean())
  np.testing.assert_allclose(float(after["accuracy"]), acc, rtol=1e-6)


@pytest.mark.slow
def test_shuffle_is_independent_of_padding_and_puts_pads_last():
  key = jax.random.key(7)
  idx = jnp.asarray(np.arange(100, 160), jnp.int32)
  w = jnp.ones(60)
  order = np.asarray(idx[shuffled_order(key, idx, w)])
  idx_p = jnp.concatenate([idx, jnp.zeros(17, jnp.int32)])
  w_p = jnp.concatenate([w, jnp.zeros(17)])
  pos = np.asarray(shuffled_order(key, idx_p, w_p))
  np.testing.assert_array_equal(np.asarray(idx_p)[pos[:60]], order)
  assert sorted(order.tolist()) == list(range(100, 160))
  assert (pos[60:] >= 60).all()
  assert not np.array_equal(order, np.arange(100, 160))
