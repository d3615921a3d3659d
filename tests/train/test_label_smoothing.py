"""Label smoothing (`loss.label_smoothing`): the training targets are (1 − α)·one_hot(y) + α/C.

Checked against the logistic-regression gradient coded in numpy (∂L/∂z = p − ỹ), as a sweepable
key (members with different α in one program ≡ each alone with its α), and against bad values."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from genjax.config import defaults
from genjax.run import setup as experiment
from genjax.train import hparams
from genjax.errors import ConfigError
from genjax.train.fit import fit
from genjax.train.program import build_program
from logreg_steps import logreg_steps


@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.4])
def test_a_step_follows_the_smoothed_cross_entropy_gradient(alpha):
  rng = np.random.default_rng(0)
  n, d, c, lr = 32, 5, 4, 0.5
  x = rng.normal(size=(n, d)).astype(np.float32)
  y = rng.integers(0, c, n).astype(np.int32)
  fns, state, plan = logreg_steps(n, d, c, batch_size=n, tx=optax.sgd(lr),
                                  targets_fn=lambda ys, h: optax.smooth_labels(ys, alpha))
  params = state.params
  idx = jnp.arange(n, dtype=jnp.int32)[None]
  new, _ = jax.jit(fns.train_step)(state, plan, x, y, idx[0], jnp.ones(n), plan.key, False)

  w, b = np.asarray(params["head"]["kernel"], np.float64), np.asarray(params["head"]["bias"])
  z = x @ w + b
  p = np.exp(z - z.max(1, keepdims=True))
  p /= p.sum(1, keepdims=True)
  target = (1 - alpha) * np.eye(c)[y] + alpha / c
  dz = (p - target) / n
  np.testing.assert_allclose(new.params["head"]["kernel"], w - lr * x.T @ dz, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(new.params["head"]["bias"], b - lr * dz.sum(0), rtol=1e-5, atol=1e-6)


def _config(alpha=0.0):
  config = defaults.get_config()
  config.model.widths = (16,)
  config.num_epochs = 2
  config.checkpoint.enabled = False
  config.loss.label_smoothing = alpha
  config.cv.method, config.cv.folds = "stratified_kfold", 3
  return config


def _train(config, plans):
  s = experiment.prepare(config, None)
  return fit(build_program(s, plans), [], num_epochs=config.num_epochs)


@pytest.mark.slow
def test_members_with_their_own_alpha_equal_each_run_alone():
  assert hparams.route("loss.label_smoothing") == ("targets", "label_smoothing")
  config = _config()
  s = experiment.prepare(config, None)
  base = experiment.fold_plans(config, s.splits.train_y)[0]
  alphas = (0.0, 0.3)
  plans = [dataclasses.replace(base, member_id=k, hparams={"loss.label_smoothing": a})
           for k, a in enumerate(alphas)]
  together = _train(config, plans)
  for k, a in enumerate(alphas):
    alone = _train(_config(a), [dataclasses.replace(base, member_id=k)])
    for key in ("train_loss_running", "val_loss", "val_accuracy"):
      got = [r[key] for r in together.rows if r["fold"] == k]
      want = [r[key] for r in alone.rows]
      assert len(got) == len(want) == 2
      np.testing.assert_allclose(got, want, rtol=1e-5, err_msg=f"alpha={a} {key}")
  first = [r["train_loss_running"] for r in together.rows if r["epoch"] == 0]
  assert first[1] > first[0] + 0.01  # smoothed targets: a higher training cross-entropy


@pytest.mark.parametrize("alpha", [-0.1, 1.0, 1.5])
def test_bad_alpha_is_refused(alpha):
  with pytest.raises(ConfigError, match=r"loss.label_smoothing must be in \[0, 1\)"):
    defaults.validate(_config(alpha))
