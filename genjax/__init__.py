"""genjax: a JAX/Flax framework for training models that generalize.

The Python API (`genjax.api`; the `genjax` command is a thin layer over it):

    config = genjax.load_config("experiments/mnist1d_kfold.py", overrides=["num_epochs=20"])
    run = genjax.fit(config)                      # in memory; or workdir="runs/cv"
    run.predict(x), run.evaluate("test"), run.history["val_loss"], run.results
    rows = genjax.sweep(config, points, workdir="runs/grid")
    run = genjax.load_run("runs/cv")

Imported on first use: `import genjax` alone stays light (the CLI parses flags first).
"""

from genjax.version import __version__  # noqa: F401

_API = ("load_config", "fit", "sweep", "load_run", "Run")
__all__ = list(_API)


def __getattr__(name: str):
  if name in _API:
    from genjax import api
    return getattr(api, name)
  raise AttributeError(f"module 'genjax' has no attribute {name!r}")
