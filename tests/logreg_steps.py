"""A logistic regression's pure step functions on one member, for tests that check a step
against a formula coded in numpy (its gradient ∂L/∂z = p − ỹ is short to write down)."""

import jax
import jax.numpy as jnp
import optax

from genjax import models
from genjax.train.steps import Plan, Steps, TrainState


def logreg_steps(n: int, d: int, c: int, *, batch_size: int, tx=None, ema: bool = False,
                 **step_options):
  """(fns, state, plan): `Steps` of a logreg on d features and c classes, its initial
  state (`tx` defaults to sgd(0.1); `ema`: the average starts at the weights) and a plan of all
  n examples unstandardized. `step_options` go to `Steps` (targets_fn, lr_fn, ema_fn)."""
  cfg = models.default_config()
  cfg.name = "logreg"
  model = models.create(cfg, (d,), c)
  tx = tx or optax.sgd(0.1)
  fns = Steps(
      apply_fn=lambda p, x, train, rng, hparams: model.apply(p, x, train=train, rng=rng),
      tx=tx, penalty_fn=lambda p, s, h: 0.0, augmenter=None, num_classes=c,
      batch_size=batch_size, eval_batch_size=n, **step_options)
  params = model.init(jax.random.key(0))
  state = TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                     ema=params if ema else None)
  plan = Plan(train_idx=jnp.arange(n), train_weight=jnp.ones(n), val_idx=jnp.arange(n),
              val_weight=jnp.ones(n), mean=jnp.zeros(d), std=jnp.ones(d), key=jax.random.key(1))
  return fns, state, plan
