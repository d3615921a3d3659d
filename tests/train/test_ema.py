"""The weights' moving average (`ema.decay` = d): θ̄ ← d·θ̄ + (1 − d)·θ after every active step,
θ̄₀ = θ₀, checked against the average recomputed in numpy from the trained weights; with it on,
what is validated, monitored, selected and tested is θ̄; members with their own d in one program
≡ each alone; bad decays are refused."""

import dataclasses

import jax
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


def test_the_average_follows_its_recursion_step_by_step():
  rng = np.random.default_rng(0)
  n, d, c, decay = 40, 5, 3, 0.8
  x = rng.normal(size=(n, d)).astype(np.float32)
  y = rng.integers(0, c, n).astype(np.int32)
  fns, state, plan = logreg_steps(
      n, d, c, batch_size=10, tx=optax.adam(0.05), ema=True,
      ema_fn=lambda e, p, h: optax.incremental_update(p, e, step_size=1 - decay))
  params = state.params
  idx, w, example_key = fns.epoch_batches(plan, 0)
  average = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
  step = jax.jit(fns.train_step)
  for b in range(4):
    frozen = b == 2                      # a frozen step changes neither θ nor θ̄
    state, _ = step(state, plan, x, y, idx[b], w[b], example_key, frozen)
    if not frozen:
      average = jax.tree.map(lambda a, p: decay * a + (1 - decay) * np.asarray(p, np.float64),
                             average, jax.device_get(state.params))
    jax.tree.map(lambda a, e: np.testing.assert_allclose(e, a, rtol=1e-5, atol=1e-6),
                 average, jax.device_get(state.ema))
  assert not np.allclose(state.ema["head"]["kernel"], state.params["head"]["kernel"])


def _config(decay=0.0):
  config = defaults.get_config()
  config.model.widths = (16,)
  config.num_epochs = 3
  config.checkpoint.enabled = False
  config.early_stopping.patience = 1
  config.ema.decay = decay
  config.cv.method, config.cv.folds = "stratified_kfold", 3
  return config


def _train(config, plans):
  s = experiment.prepare(config, None)
  program = build_program(s, plans)
  return program, fit(program, [], num_epochs=config.num_epochs)


def test_the_average_is_validated_selected_and_kept_apart_from_the_weights():
  config = _config(0.9)
  s = experiment.prepare(config, None)
  plans = experiment.fold_plans(config, s.splits.train_y)[:1]
  program, fitted = _train(config, plans)
  assert program.use_ema
  state = fitted.state
  evaluate = jax.jit(jax.vmap(program.evaluate, in_axes=(0, 0, None, None, 0, 0)))
  args = (program.plan, program.x_train, program.y_train, program.plan.val_idx,
          program.plan.val_weight)
  on_ema = jax.device_get(evaluate(state.train.ema, *args))
  on_params = jax.device_get(evaluate(state.train.params, *args))
  last = [r for r in fitted.rows if r["epoch"] == fitted.epochs_run - 1][0]
  np.testing.assert_allclose(last["val_loss"], on_ema["loss"][0], rtol=1e-5)
  assert abs(on_params["loss"][0] - on_ema["loss"][0]) > 1e-4
  best = jax.device_get(state.best_params)
  selected = fitted.selected_params
  jax.tree.map(np.testing.assert_array_equal, best, selected)   # restore_best_weights


@pytest.mark.slow
def test_members_with_their_own_decay_equal_each_run_alone():
  config = _config()
  s = experiment.prepare(config, None)
  base = experiment.fold_plans(config, s.splits.train_y)[0]
  decays = (0.0, 0.9)
  plans = [dataclasses.replace(base, member_id=k, hparams={"ema.decay": v})
           for k, v in enumerate(decays)]
  config.ema.decay = max(decays)            # as `hparams.prepare_base` sets a sweep's base
  _, together = _train(config, plans)
  for k, v in enumerate(decays):
    # The decay swept alone (a one-point sweep: traced, as in the program): bit for bit.
    swept = _config(v)
    hparams.prepare_base(swept, [{"ema.decay": v}])
    _, alone = _train(swept, [plans[k]])
    # `genjax train --config.ema.decay=v` compiles v as a constant: float rounding apart.
    _, constant = _train(_config(v), [dataclasses.replace(base, member_id=k)])
    for key in ("train_loss_running", "val_loss", "val_accuracy"):
      got = [r[key] for r in together.rows if r["fold"] == k]
      assert got == [r[key] for r in alone.rows], (f"decay={v} {key}")
      np.testing.assert_allclose(got, [r[key] for r in constant.rows], rtol=1e-5,
                                 err_msg=f"decay={v} {key}")


@pytest.mark.parametrize("decay", [-0.1, 1.0, 1.5])
def test_bad_decay_is_refused(decay):
  with pytest.raises(ConfigError, match=r"ema.decay must be in \[0, 1\)"):
    defaults.validate(_config(decay))
