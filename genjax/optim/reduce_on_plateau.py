"""Reduce-on-plateau: each member's learning rate scaled down when its own monitored metric
stops improving, by `optax.contrib.reduce_on_plateau`'s rule, fed once per epoch.

With v_e the member's monitored value after epoch e (`early_stopping.monitor`, negated for a
`max` metric so that lower is better): v_e improves iff v_e < best − min_delta. After
`patience` epochs in a row without improvement the scale s ← max(factor·s, min_scale), then
`cooldown` epochs are not counted. The learning rate of every step of epoch e + 1 is
peak · s · schedule(t) (the injected hyperparameter `lr_scale` = s; `genjax.optim`). A frozen
(early-stopped) member's state does not move. `factor = 0` turns it off.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import optax.contrib

from genjax.errors import ConfigError


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      "factor": 0.0,        # s ← factor·s on a plateau, in (0, 1); 0 = off (Keras: 0.1)
      "patience": 10,       # epochs without improvement before the scale drops
      "min_delta": 1e-4,    # an improvement beats the best by more than this (absolute)
      "cooldown": 0,        # epochs after a drop that are not counted
      "min_scale": 0.0,     # the scale never goes below this
  })


def enabled(cfg) -> bool:
  return float(cfg.factor) > 0


def validate_config(cfg) -> None:
  """ConfigError (one line) for a value out of range."""
  def number(name, ok, hint):
    v = cfg[name]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not ok(v):
      raise ConfigError(f"reduce_on_plateau.{name} must be {hint}, got {v!r}; e.g. "
                        f"--config.reduce_on_plateau.{name}={_EXAMPLES[name]}")
  number("factor", lambda v: 0.0 <= v < 1.0, "in [0, 1) (0 = off)")
  number("patience", lambda v: isinstance(v, int) and v >= 1, "an integer >= 1")
  number("min_delta", lambda v: v > 0, "> 0")
  number("cooldown", lambda v: isinstance(v, int) and v >= 0, "an integer >= 0")
  number("min_scale", lambda v: 0.0 <= v <= 1.0, "in [0, 1]")


_EXAMPLES = {"factor": 0.1, "patience": 10, "min_delta": 1e-4, "cooldown": 0, "min_scale": 0.0}


def transform(cfg) -> optax.GradientTransformationExtraArgs:
  """optax's rule with these settings (absolute `min_delta` only, as Keras's callback)."""
  validate_config(cfg)
  return optax.contrib.reduce_on_plateau(
      factor=float(cfg.factor), patience=int(cfg.patience), rtol=0.0,
      atol=float(cfg.min_delta), cooldown=int(cfg.cooldown), min_scale=float(cfg.min_scale))


def init(cfg):
  """One member's state (scale 1, no best yet)."""
  return transform(cfg).init(jnp.zeros((), jnp.float32))


def update(cfg, state, value, mode: str, frozen):
  """The state after an epoch whose monitored value is `value` (`mode` "min" or "max")."""
  signed = value if mode == "min" else -value
  _, new = transform(cfg).update(jnp.zeros(()), state, value=signed)
  return jax.tree.map(lambda o, n: jnp.where(frozen, o, n), state, new)
