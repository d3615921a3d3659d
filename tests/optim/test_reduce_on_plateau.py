"""Reduce-on-plateau (`reduce_on_plateau.*`): the learning rate each epoch logs is the peak ×
the scale that Keras's `ReduceLROnPlateau` rule (coded here in plain Python, cooldown 0) gives
from the monitored values before it, in `min` and `max` mode; a frozen member's state does not
move; bad settings are refused."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from genjax.config import defaults
from genjax.run import driver
from genjax.optim import reduce_on_plateau
from genjax.errors import ConfigError


def _keras_scales(values, mode, factor, patience, min_delta):
  """The scale in force during each epoch: Keras's rule, fed each epoch's value after it."""
  best, wait, scale, scales = None, 0, 1.0, []
  for v in values:
    scales.append(scale)
    better = best is None or (v < best - min_delta if mode == "min" else v > best + min_delta)
    if better:
      best, wait = v, 0
    else:
      wait += 1
      if wait >= patience:
        scale, wait = scale * factor, 0
  return scales


@pytest.mark.slow
@pytest.mark.parametrize("monitor,mode", [("val_loss", "min"), ("val_accuracy", "max")])
def test_logged_learning_rate_follows_keras_rule(tmp_path, monitor, mode):
  config = defaults.get_config()
  config.model.widths = (32,)
  config.optimizer.learning_rate = 1e-2
  config.num_epochs = 24
  config.checkpoint.enabled = False
  config.early_stopping.enabled = False
  config.early_stopping.monitor = monitor
  config.reduce_on_plateau.factor = 0.5
  config.reduce_on_plateau.patience = 2
  config.reduce_on_plateau.min_delta = 1e-3
  driver.train(config, str(tmp_path / "run"), progress=False)
  rows = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
  scales = _keras_scales([r[monitor] for r in rows], mode, 0.5, 2, 1e-3)
  assert min(scales) <= 0.25                      # it did reduce, more than once
  np.testing.assert_allclose([r["learning_rate"] for r in rows], 1e-2 * np.array(scales),
                             rtol=1e-5)


def test_a_frozen_member_keeps_its_state():
  cfg = reduce_on_plateau.default_config()
  cfg.factor, cfg.patience = 0.5, 1
  state = reduce_on_plateau.init(cfg)
  state = reduce_on_plateau.update(cfg, state, jnp.float32(1.0), "min", False)
  worse = reduce_on_plateau.update(cfg, state, jnp.float32(2.0), "min", False)
  frozen = reduce_on_plateau.update(cfg, state, jnp.float32(2.0), "min", True)
  assert float(worse.scale) == 0.5 and float(frozen.scale) == 1.0
  assert float(frozen.best_value) == float(state.best_value) == 1.0


@pytest.mark.parametrize("field,value,match", [
    ("factor", 1.0, "factor must be in"), ("patience", 0, "patience must be an integer >= 1"),
    ("min_delta", 0.0, "min_delta must be > 0"), ("cooldown", -1, "cooldown must be"),
    ("min_scale", 2.0, "min_scale must be in")])
def test_bad_settings_are_refused(field, value, match):
  config = defaults.get_config()
  config.reduce_on_plateau[field] = value
  with pytest.raises(ConfigError, match=match):
    defaults.validate(config)
