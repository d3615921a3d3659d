"""Optimization: the optimizer built from config (`optimizers`: one optax chain, hyperparameters
injectable per member), the penalties (`penalties`: loss terms and optax transforms) and the
plateau rule (`reduce_on_plateau`).

`genjax.optim.X` is `genjax.optim.optimizers.X` (e.g. `make_optimizer`, `register`,
`default_config`, `NAMES`), as when `genjax.optim` was one module."""

from genjax.optim import optimizers


def __getattr__(attr):
  return getattr(optimizers, attr)
