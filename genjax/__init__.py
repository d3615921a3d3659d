"""genjax: a JAX/Flax framework for training models that generalize.

The Python API (`genjax.api`; the `genjax` command is a thin layer over it):

    config = genjax.load_config("experiments/mnist1d_kfold.py", overrides=["num_epochs=20"])
    run = genjax.fit(config)                      # in memory; or workdir="runs/cv"
    run.predict(x), run.evaluate("test"), run.history["val_loss"], run.results
    rows = genjax.sweep(config, points, workdir="runs/grid")
    points = genjax.sample_points({"optimizer.learning_rate": "loguniform(1e-4,1e-1)"}, 16)
    run = genjax.load_run("runs/cv")
    genjax.register_arrays("my_arrays", x_train, y_train, x_test, y_test)   # data.name=my_arrays

Imported on first use: `import genjax` alone stays light (the CLI parses flags first).
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

from genjax.version import __version__  # noqa: F401

_API = ("load_config", "fit", "sweep", "sample_points", "load_run", "Run")
_DATA = ("register_arrays", "unregister_arrays")   # genjax.data.arrays: your own arrays
__all__ = list(_API + _DATA)


def __getattr__(name: str):
  if name in _API:
    from genjax import api
    return getattr(api, name)
  if name in _DATA:
    from genjax.data import arrays
    return getattr(arrays, name)
  raise AttributeError(f"module 'genjax' has no attribute {name!r}")


# Modules that moved into packages (issue #31): their old import paths still work, with a
# DeprecationWarning naming the new one (`import genjax.penalties` is genjax.optim.penalties).
MOVED = {
    "genjax.defaults": "genjax.config.defaults",
    "genjax.config_file": "genjax.config.files",
    "genjax.overrides": "genjax.config.overrides",
    "genjax.data.validation": "genjax.data.splits",
    "genjax.penalties": "genjax.optim.penalties",
    "genjax.reduce_on_plateau": "genjax.optim.reduce_on_plateau",
    "genjax.early_stopping": "genjax.train.early_stopping",
    "genjax.metrics": "genjax.train.metrics",
    "genjax.hparams": "genjax.train.hparams",
    "genjax.experiment": "genjax.run.setup",
    "genjax.holdout": "genjax.run.driver",
    "genjax.kfold": "genjax.run.driver",
    "genjax.results": "genjax.run.results",
    "genjax.sweep_grid": "genjax.sweeps.points",
    "genjax.sweep_run": "genjax.sweeps.group",
    "genjax.sweep_launch": "genjax.sweeps.launch",
    "genjax.sweep_jobs": "genjax.sweeps.cluster",
    "genjax.sweep_select": "genjax.sweeps.select",
    "genjax.sweep_compare": "genjax.sweeps.compare",
    "genjax.sweep_driver": "genjax.sweeps.driver",
    "genjax.nested_cv": "genjax.sweeps.nested",
    "genjax.member_memory": "genjax.sweeps.memory",
    "genjax.stats": "genjax.sweeps.stats",
    "genjax.run_identity": "genjax.workdir.identity",
    "genjax.record": "genjax.workdir.record",
    "genjax.checkpoint": "genjax.workdir.checkpoint",
    "genjax.paths": "genjax.workdir.paths",
    "genjax.tables": "genjax.report.tables",
    "genjax.runtime": "genjax.platform.runtime",
    "genjax.distributed": "genjax.platform.distributed",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
  """Imports an old path in `MOVED` as the module at its new path (the same module object)."""

  def find_spec(self, name, path=None, target=None):
    return importlib.util.spec_from_loader(name, self) if name in MOVED else None

  def create_module(self, spec):
    warnings.warn(f"{spec.name} moved to {MOVED[spec.name]}; import it from there",
                  DeprecationWarning, stacklevel=3)
    return importlib.import_module(MOVED[spec.name])

  def exec_module(self, module):
    pass


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
  sys.meta_path.append(_MovedModules())
