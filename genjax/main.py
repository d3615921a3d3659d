"""genjax command line.

    genjax train --config=experiments/FILE.py[:ARG] --workdir=DIR [--config.a.b=v ...]
    genjax sweep --config=... --workdir=DIR --sweep='model.dropout=0,0.2' [--sweep=...]
    python -m genjax.main train ...

Multi-host: start the same command on every host with
--coordinator_address=HOST:PORT --num_processes=N --process_id=I (or
--distributed on SLURM / Open MPI / Cloud TPU); see README "Multi-host".

Bad input (flags, config values, data, files) prints one line naming the
problem and the fix, and exits with status 2 before anything compiles.
"""

from __future__ import annotations

import gc
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from genjax.errors import ConfigError

COMMANDS = ("train", "sweep")

# The defaults' path, not the module: jax and flax are imported later, once run() has paused the GC.
_DEFAULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "defaults.py")
_CONFIG = config_flags.DEFINE_config_file(
    "config", _DEFAULTS,
    "Experiment config: a Python file with get_config() (optionally FILE.py:ARG). "
    "Override any field with --config.a.b=value.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for config.json, metrics, "
                               "checkpoints, results.json and plots.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace a workdir run whose config differs "
                               "(its outputs are removed).")
_SWEEP = flags.DEFINE_multi_string("sweep", [], "sweep: an axis KEY=VALUES (comma list, "
                                   "logspace(a,b,n), linspace(a,b,n), range(a,b)); axes multiply.")
_ZIP = flags.DEFINE_multi_string("zip", [], "sweep: KEY=VALUES axes that advance together.")
_ZIP_POINTS = flags.DEFINE_string("zip_points", None, "sweep (internal): this process is one "
                                  "structural group of exactly these points 'k=v,k=v;k=v' "
                                  "('' = one point, the config itself).")
_JOBS = flags.DEFINE_integer("parallel_jobs", 1, "sweep: structural groups run at once.")
_PROGRESS = flags.DEFINE_bool("progress", True, "Show a progress bar over epochs.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "multi-host: HOST:PORT of "
                                   "process 0, which serves jax.distributed's coordinator.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "multi-host: how many processes.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "multi-host: this process, 0..N-1.")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False, "multi-host: take the three settings "
                                 "above from the cluster (SLURM, Open MPI, Cloud TPU, ...).")
_DISTRIBUTED_TIMEOUT = flags.DEFINE_float("distributed_timeout", 300.0, "multi-host: seconds "
                                          "to wait for the coordinator and every process.")
_CACHE = flags.DEFINE_string("compilation_cache_dir", None, "Persistent XLA compilation cache "
                             "('' = off; default $GENJAX_COMPILATION_CACHE or ~/.cache/genjax/xla).")


def fail(message: str) -> None:
  """One line on stderr, exit status 2."""
  print(f"genjax: error: {message}", file=sys.stderr, flush=True)
  sys.exit(2)


def parse_flags(argv: list[str]) -> list[str]:
  """absl parsing where every bad flag or config file is one line and exit 2."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    text = str(e)
    if "Traceback" in text:  # a config file's get_config raised: keep its own message
      text = f"{text.split(':', 1)[0]}: {text.strip().splitlines()[-1].strip()}"
    fail(" ".join(text.split()) + " (see genjax --helpfull)")
  except (KeyError, AttributeError, TypeError, ValueError) as e:
    reason = " ".join(str(e).replace("\\n", " ").replace("\\", "").replace("'", "").split())
    overrides = [a for a in argv[1:] if a.startswith("--config.")]
    fail(f"bad config override {' '.join(overrides)}: unknown key or wrong type ({reason}); "
         "check it against genjax/defaults.py")


def load_config():
  """The parsed --config with its overrides; config files load lazily, here."""
  try:
    config = _CONFIG.value
    config.keys()  # a file that failed to load raises here
    return config
  except OSError as e:
    reason = str(e).strip().splitlines()[-1].strip()
    fail(f"cannot load --config={flags.FLAGS['config'].serialize().split('=', 1)[-1]}: {reason}; "
         "pass an existing file, e.g. --config=experiments/mnist1d_mlp.py")
  except (KeyError, AttributeError, TypeError, ValueError) as e:
    fail(f"bad --config: {' '.join(str(e).split())}; check the key against genjax/defaults.py")


def main(argv: list[str]) -> None:
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.ERROR)  # orbax/tfds chatter off unless -v is given
  command = argv[1] if len(argv) > 1 else "train"
  if command not in COMMANDS or len(argv) > 2:
    fail(f"unknown command {' '.join(argv[1:])!r}; usage: genjax train --config=FILE.py --workdir=DIR")
  config = load_config()
  if not _WORKDIR.value:
    fail("--workdir is required; e.g. --workdir=runs/my_experiment")
  from genjax import distributed
  try:
    if distributed.validate_flags(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value,
                                  _DISTRIBUTED.value):
      if _DISTRIBUTED_TIMEOUT.value <= 0:
        fail(f"--distributed_timeout={_DISTRIBUTED_TIMEOUT.value:g} must be > 0 seconds")
      distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value,
                             timeout_s=_DISTRIBUTED_TIMEOUT.value)
  except ConfigError as e:
    fail(str(e))
  from genjax import holdout, kfold, runtime  # Heavy imports after the flags are known good.
  import tensorflow_datasets as tfds
  tfds.display_progress_bar(False)
  runtime.enable_compilation_cache(_CACHE.value)
  try:
    if command == "sweep":
      return run_sweep(config, argv)
    driver = holdout if config.cv.method == "none" else kfold
    results = driver.run(config, os.path.abspath(_WORKDIR.value),
                       overwrite=_OVERWRITE.value, progress=_PROGRESS.value)
  except ConfigError as e:
    fail(str(e))
  if not distributed.is_primary():
    return
  from genjax import report
  print(report.results_table(results))
  print(f"selected epoch {results['selected_epoch']} ({results['stop_reason']}), "
        f"{results['epochs_run']} epochs, {results['wall_time_s']:.1f} s; "
        f"outputs in {_WORKDIR.value}")


def sweep_points(argv) -> list[dict]:
  """Points from --zip_points, --sweep/--zip flags, or the config file's get_sweep()."""
  from genjax import sweep
  if _ZIP_POINTS.value is not None:  # a group process: never expand get_sweep() again
    if not _ZIP_POINTS.value:
      return [{}]
    return [dict((kv.split("=", 1)[0], sweep.parse_values(kv.split("=", 1)[1], kv)[0])
                 for kv in point.split(",")) for point in _ZIP_POINTS.value.split(";")]
  if _SWEEP.value or _ZIP.value:
    return sweep.grid(_SWEEP.value, _ZIP.value)
  path = flags.FLAGS["config"].serialize().split("=", 1)[-1]
  return sweep.config_sweep(path) or []


def run_sweep(config, argv) -> None:
  from genjax import sweep
  base_args = [a for a in sys.argv[1:] if a.startswith("--config")]
  try:
    rows = sweep.run(config, os.path.abspath(_WORKDIR.value), sweep_points(argv),
                     base_args=base_args, parallel_jobs=_JOBS.value,
                     overwrite=_OVERWRITE.value, progress=_PROGRESS.value)
  except ConfigError as e:
    fail(str(e))
  from genjax import distributed
  if not distributed.is_primary():
    return
  with open(os.path.join(_WORKDIR.value, "sweep.md")) as f:
    print(f.read())
  print(f"{len(rows)} points; outputs in {_WORKDIR.value}")


def run() -> None:
  """Console-script entry point.

  Start-up (imports, the config file, data loading) allocates long-lived objects only, so
  Python's cyclic GC is paused until training, which runs with it on (`loop.train_members`):
  a short run takes ~15% less time.
  """
  enabled = gc.isenabled()
  gc.disable()
  try:
    app.run(main, flags_parser=parse_flags)
  finally:
    if enabled:
      gc.enable()


if __name__ == "__main__":
  run()
