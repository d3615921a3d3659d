"""genjax command line.

    genjax train --config=experiments/FILE.py[:ARG] --workdir=DIR [--config.a.b=v ...]
    genjax sweep --config=... --workdir=DIR --sweep='model.dropout=0,0.2' [--sweep=...]
    python -m genjax.main train ...

Multi-host: start the same command on every host with
--coordinator_address=HOST:PORT --num_processes=N --process_id=I (or
--distributed on SLURM / Open MPI / Cloud TPU); see docs/pages/how-to/multi-host.md.

Bad input (flags, config values, data, files) prints one line naming the
problem and the fix, and exits with status 2 before anything compiles.
"""

from __future__ import annotations

import errno
import gc
import os
import re
import signal
import sys
import textwrap

from absl import app, flags, logging
from ml_collections import config_flags

from genjax.config import overrides
from genjax.errors import ConfigError, Interrupted, Terminated

COMMANDS = ("train", "sweep")
# What each command does (docs/pages/reference/cli.md is generated from it; "group" is
# genjax.sweeps.launch.GROUP_COMMAND).
COMMAND_HELP = {
    "train": "Trains one config in --workdir (hold-out, or cross-validation by cv.method), "
             "tests the selected weights once and prints the results table.",
    "sweep": "Trains every point of a grid (--sweep / --zip, or the config file's "
             "get_sweep()) or drawn at random or quasi-random (--sample, --samples, "
             "--sampler) and writes the sweep's tables: numeric keys are members of one "
             "program, structural keys run as groups.",
    "group": "A sweep's group process, started by genjax sweep (not by hand): `genjax group "
             "FILE` trains the points of one structural group.",
}

# The defaults' path, not the module: jax and flax are imported later, once run() has paused the GC.
_DEFAULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "config", "defaults.py")
_CONFIG_HELP = ("Experiment config: a Python file with get_config() (optionally FILE.py:ARG). "
                "Override any field with --config.a.b=value.")
_CONFIG = None  # the --config flag: defined by parse_flags once the file is loaded
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for config.json, metrics, "
                               "checkpoints, results.json and plots.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace a workdir run whose config differs "
                               "(its outputs are removed).")
_SWEEP = flags.DEFINE_multi_string("sweep", [], "sweep: an axis KEY=VALUES (comma list, "
                                   "logspace(a,b,n), linspace(a,b,n), range(a,b)); axes multiply.")
_ZIP = flags.DEFINE_multi_string("zip", [], "sweep: KEY=VALUES axes that advance together.")
_SAMPLE = flags.DEFINE_multi_string("sample", [], "sweep: a sampled axis KEY=DISTRIBUTION "
                                    "(uniform(a,b), loguniform(a,b), randint(a,b) in [a,b), "
                                    "or a list [v1,v2] for a choice); --samples points are "
                                    "drawn, times the --sweep grid.")
_SAMPLES = flags.DEFINE_integer("samples", None, "sweep: how many points to draw for the "
                                "--sample axes.")
_SAMPLER = flags.DEFINE_enum("sampler", "halton", ["random", "sobol", "halton"],
                             "sweep: how --sample points are drawn: random (independent "
                             "uniform), sobol (scrambled Sobol', --samples a power of 2) or "
                             "halton (scrambled Halton, any count); scipy.stats.qmc.")
_SAMPLE_SEED = flags.DEFINE_integer("sample_seed", None, "sweep: the seed of the --sample "
                                    "points (default: config.seed).")
_SAMPLE_SCRAMBLE = flags.DEFINE_bool("sample_scramble", True, "sweep: scramble the sobol / "
                                     "halton sequence (with --sample_seed).")
_JOBS = flags.DEFINE_integer("parallel_jobs", None, "sweep: structural groups run at once "
                             "(default 1 with --launcher=local, all with a job launcher; on "
                             "SLURM the job array's limit).")
_LAUNCHER = flags.DEFINE_enum("launcher", "local", ["local", "submitit_local", "slurm"],
                              "sweep: where structural groups run: processes here (local), "
                              "submitit jobs here (submitit_local: the cluster path, to check "
                              "a cluster sweep) or SLURM jobs (slurm); see "
                              "docs/pages/how-to/clusters.md.")
_DETACH = flags.DEFINE_bool("detach", False, "sweep: submit the group jobs and return; rerun "
                            "the same command to collect the tables.")
_SLURM = {name: define(f"slurm_{name}", default, f"sweep, --launcher=slurm: {text}")
          for name, define, default, text in (
              ("partition", flags.DEFINE_string, None, "the partition."),
              ("account", flags.DEFINE_string, None, "the account charged."),
              ("timeout_min", flags.DEFINE_integer, None, "each group job's time limit "
               "(minutes; required)."),
              ("nodes", flags.DEFINE_integer, 1, "nodes per group job; > 1: a multi-host "
               "group, started with --distributed."),
              ("tasks_per_node", flags.DEFINE_integer, 1, "processes per node (each one "
               "jax.distributed process)."),
              ("gpus_per_task", flags.DEFINE_integer, None, "GPUs per task."),
              ("gpus_per_node", flags.DEFINE_integer, None, "the nodes' GPU count, checked "
               "against tasks_per_node x gpus_per_task (not requested)."),
              ("cpus_per_task", flags.DEFINE_integer, None, "CPUs per task."),
              ("mem_gb", flags.DEFINE_float, None, "memory per node (GB)."))}
_BASELINE = flags.DEFINE_string("baseline", None, "sweep: the point every other is compared "
                                "with in sweep_compare.md (its name, e.g. 'dropout=0'; default: "
                                "the first point).")
_P_ADJUST = flags.DEFINE_enum("p_adjust", "holm", ["holm", "bh", "none"],
                               "sweep: how sweep_compare.md adjusts the p-values of every point "
                               "against the baseline for their number: holm (family-wise error), "
                               "bh (Benjamini-Hochberg false discovery rate) or none.")
_TEST_ALL = flags.DEFINE_bool("test_for_all_points", False, "sweep: report every point's test "
                              "metrics too (tables say 'test shown for all points: not for "
                              "selection'); by default only the point selected on validation's.")
_SEARCH = flags.DEFINE_enum("search", "grid", ["grid", "halving", "hyperband"],
                            "sweep: grid (every point trains to the end), halving (successive "
                            "halving: at rungs of min_epochs * factor^r epochs the best "
                            "1/factor of the points by validation accuracy, mean over seeds x "
                            "folds, go on; scikit-learn's HalvingGridSearchCV schedule) or "
                            "hyperband (Li et al. 2018 brackets of halvings; with --sample "
                            "axes it draws its own point count).")
_SEARCH_FACTOR = flags.DEFINE_integer("search_factor", 3, "sweep: --search's factor (eta) "
                                      ">= 2: 1/factor of the points go on at each rung.")
_SEARCH_MIN_EPOCHS = flags.DEFINE_string("search_min_epochs", "exhaust", "sweep: --search's "
                                         "first rung in epochs, or 'exhaust' (halving only: "
                                         "the largest minimum whose last rung fits "
                                         "num_epochs, as scikit-learn's).")
SEARCH_FLAGS = ("search", "search_factor", "search_min_epochs")
SAMPLE_FLAGS = ("sample", "samples", "sampler", "sample_seed", "sample_scramble")
SWEEP_FLAGS = ("sweep", "zip", *SAMPLE_FLAGS, *SEARCH_FLAGS, "parallel_jobs", "baseline", "p_adjust",
               "test_for_all_points", "launcher", "detach", *(f"slurm_{n}" for n in _SLURM))
_PROGRESS = flags.DEFINE_bool("progress", None, "Show a progress bar over epochs (default: "
                              "only when stderr is a terminal, so batch logs stay clean).")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "multi-host: HOST:PORT of "
                                   "process 0, which serves jax.distributed's coordinator.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "multi-host: how many processes.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "multi-host: this process, 0..N-1.")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False, "multi-host: take the three settings "
                                 "above from the cluster (SLURM, Open MPI, Cloud TPU, ...).")
_DISTRIBUTED_TIMEOUT = flags.DEFINE_float("distributed_timeout", 300.0, "multi-host: seconds "
                                          "to wait for the coordinator and every process.")
_CPU_DEVICES = flags.DEFINE_integer("cpu_devices", 0, "CPU devices to make of this machine, "
                                    "before JAX starts (0 = one per usable core, at most 8; "
                                    "1 = JAX's single CPU device); members are split over them, "
                                    "padded with copies to fill every device (models with "
                                    "convolutions: the most devices that divide them).")
_CACHE = flags.DEFINE_string("compilation_cache_dir", None, "Persistent XLA compilation cache "
                             "('' = off; default $GENJAX_COMPILATION_CACHE or ~/.cache/genjax/xla).")


_WORKDIR_PATH = None   # --workdir, absolute with ~ expanded (genjax.workdir.paths.workdir_path)


def workdir() -> str:
  """The absolute --workdir (checked by _main)."""
  return _WORKDIR_PATH or os.path.abspath(os.path.expanduser(_WORKDIR.value))


def fail(message: str) -> None:
  """One line on stderr, exit status 2."""
  print(f"genjax: error: {message}", file=sys.stderr, flush=True)
  sys.exit(2)


_CONFIG_ARG = re.compile(r"^-{1,2}config(=|$)")
_OVERRIDE_ARG = re.compile(r"^-{1,2}(?:no)?config\.([^=]+)")


def split_config_arg(argv: list[str]) -> tuple[str | None, list[str]]:
  """(the --config value or None, argv without it): `--config=FILE` and `--config FILE`."""
  spec, rest, i = None, list(argv[:1]), 1
  while i < len(argv):
    arg = argv[i]
    if arg == "--":  # absl: what follows is positional
      rest += argv[i:]
      break
    m = _CONFIG_ARG.match(arg)
    if not m:
      rest.append(arg)
    elif m.group(1):
      spec = arg.split("=", 1)[1]
    elif i + 1 < len(argv) and not argv[i + 1].startswith("-"):
      spec, i = argv[i + 1], i + 1
    else:
      raise ConfigError("--config needs a value; pass --config=FILE.py[:ARG], e.g. "
                        "--config=experiments/mnist1d_mlp.py")
    i += 1
  return spec, rest


def config_spec() -> str:
  """The loaded --config value ('FILE.py[:ARG]'; genjax/config/defaults.py when none was given)."""
  from genjax.config import files as config_file
  return config_file.loaded_spec() or _DEFAULTS


def _overrides(argv: list[str]) -> list[tuple[str, str]]:
  """(path, argument as given) of every --config.PATH override before a '--'."""
  found = []
  for arg in argv[1:]:
    if arg == "--":
      break
    m = _OVERRIDE_ARG.match(arg)
    if m:
      found.append((m.group(1), arg))
  return found


def _define_config(config, spec: str, argv: list[str]) -> None:
  """--config as an inline ConfigDict flag, so --config.a.b=v overrides it."""
  global _CONFIG
  for name in [n for n in flags.FLAGS if n == "config" or n.startswith("config.")]:
    delattr(flags.FLAGS, name)  # a second parse_flags in one process
  given = _overrides(argv)
  for path, text in given:
    overrides.check_key(config, path, text)
  try:
    _CONFIG = config_flags.DEFINE_config_dict("config", config, _CONFIG_HELP,
                                              lock_config=True, sys_argv=argv)
  except (flags.Error, KeyError, AttributeError, TypeError, ValueError) as e:
    reason = " ".join(str(e).replace("\\n", " ").replace("\\", "").replace("'", "").split())
    raise ConfigError(f"bad config override {' '.join(t for _, t in given)}: {reason}; "
                      "check it against genjax/config/defaults.py") from None
  flags.FLAGS["config"].default_as_str = repr(spec)
  for name in [n for n in flags.FLAGS if n.startswith("config.")]:
    overrides.guard(flags.FLAGS[name], config)


DOCS = "docs/pages/reference/cli.md (every flag), docs/pages/getting-started.md (a first run)"
HELP_ARGS = ("--help", "-h", "-?", "--help=true")


def usage() -> str:
  """What `genjax --help` and `genjax` alone print: the commands, an example, where to read on."""
  width = max(len(c) for c in COMMANDS)
  lines = ["genjax: train JAX/Flax models that generalize, and compare them fairly.", "",
           "usage: genjax COMMAND --config=FILE.py[:ARG] --workdir=DIR [--config.KEY=VALUE ...]",
           "", "commands:"]
  for c in COMMANDS:
    lines += textwrap.wrap(COMMAND_HELP[c], 88, initial_indent=f"  {c:<{width}}  ",
                           subsequent_indent=" " * (width + 4))
  lines += ["", "examples:",
            "  genjax train --config=experiments/mnist1d_mlp.py --workdir=runs/mlp",
            "  genjax sweep --config=experiments/mnist1d_kfold.py --workdir=runs/wd \\",
            "      --sweep='penalties.l2.strength=0,1e-4,1e-3' --sweep='seed=0,1,2'", "",
            "genjax --helpfull lists every flag. Docs: " + DOCS + "."]
  return "\n".join(lines)


def progress() -> bool:
  """--progress as given, else whether stderr is a terminal (no bars in a batch job's log)."""
  if _PROGRESS.value is not None:
    return bool(_PROGRESS.value)
  return sys.stderr.isatty()


def parse_flags(argv: list[str]) -> list[str]:
  """absl parsing where every bad flag, config file or override is one line and exit 2.
  `genjax` alone, or with --help / -h, prints `usage()` and exits 0.

  The config file is loaded here, once (`genjax.config.files`), then defined as
  the inline ConfigDict flag --config, so that --config.a.b=v overrides apply.
  """
  from genjax.config import files as config_file
  given = argv[1:argv.index("--")] if "--" in argv else argv[1:]
  if not given or any(a in HELP_ARGS for a in given):
    try:
      print(usage(), flush=True)
    except BrokenPipeError:   # `genjax --help | head`
      sys.stdout = open(os.devnull, "w")
    sys.exit(0)
  try:
    argv = [*argv[:1], *flags.FLAGS.read_flags_from_files(argv[1:], force_gnu=False)]
    spec, argv = split_config_arg(argv)
    config, _ = config_file.load(_DEFAULTS if spec is None else spec)
    _define_config(config, _DEFAULTS if spec is None else spec, argv)
    return flags.FLAGS(argv)
  except ConfigError as e:
    fail(str(e))
  except KeyboardInterrupt:
    stop(130, "interrupted while loading the config; nothing was started")
  except flags.Error as e:
    fail(" ".join(str(e).split()) + " (see genjax --helpfull)")
  except (KeyError, AttributeError, TypeError, ValueError) as e:
    given = [a for a in argv[1:] if _OVERRIDE_ARG.match(a)]
    if not given:
      raise   # not an override's fault: a genjax bug, shown with its traceback
    reason = " ".join(str(e).replace("\\n", " ").replace("\\", "").replace("'", "").split())
    fail(f"bad config override {' '.join(given)}: unknown key or wrong type ({reason}); "
         "check it against genjax/config/defaults.py")


def load_config():
  """The parsed --config with its overrides (parse_flags loaded and checked it)."""
  if _CONFIG is None:
    raise ConfigError("no config was loaded; run genjax through genjax.main.run() (the genjax "
                      "command)")
  config = _CONFIG.value
  from genjax.config import defaults
  missing = [k for k in defaults.get_config() if k not in config]
  if missing:
    raise ConfigError(f"--config={config_spec()}: get_config() returned a config without "
                      f"{', '.join('config.' + k for k in missing)}; build it from "
                      "genjax.config.defaults.get_config() and change what you need")
  return config


def _terminate(signum, frame) -> None:
  raise Terminated(signum)


def main(argv: list[str]) -> None:
  """Runs the command; every error is caught here, once: ConfigError (bad input) and a fault
  of the machine (disk full, read-only, ...) are one line and exit 2; Ctrl-C, SIGTERM and
  SIGHUP save what training has (a checkpoint at the epoch's end) and exit 128 + the signal
  (130, 143, 129) in one line; any other exception is a genjax bug and keeps its traceback."""
  for signum in (signal.SIGTERM, signal.SIGHUP):
    signal.signal(signum, _terminate)
  sys.unraisablehook = _unraisable
  if not flags.FLAGS["verbosity"].present:
    # orbax/tfds chatter off unless -v is given; genjax reports its own errors in one line.
    logging.set_verbosity(logging.FATAL)
  try:
    _main(argv)
  except ConfigError as e:
    stop(2, f"error: {e}")
  except Interrupted as e:
    name = signal.Signals(e.signum).name
    stop(128 + e.signum, f"{'interrupted' if name == 'SIGINT' else 'stopped by ' + name} at "
         f"epoch {e.epoch}; rerun the same command to resume")
  except KeyboardInterrupt as e:
    signum = getattr(e, "signum", signal.SIGINT)
    name = signal.Signals(signum).name
    stop(128 + signum, f"{'interrupted' if name == 'SIGINT' else 'stopped by ' + name} "
         "outside training; rerun the same command to resume from what was saved")
  except Exception as e:  # pylint: disable=broad-except
    fault = environment_fault(e)
    if fault is None:
      raise
    where = fault_path(e) or workdir()
    if fault.startswith(("No space left", "Disk quota")):
      stop(2, f"error: {fault.split(' (')[0]} writing {where}; free space or choose "
           "another --workdir, then rerun the same command to resume")
    stop(2, f"error: cannot write in --workdir={_WORKDIR.value}: {fault}; fix that (free "
         "space, permissions), then rerun the same command to resume")


def _main(argv: list[str]) -> None:
  from genjax.sweeps.launch import GROUP_COMMAND, read_group
  command = argv[1] if len(argv) > 1 else "train"
  group = command == GROUP_COMMAND and len(argv) == 3   # a sweep's group process
  if not group and (command not in COMMANDS or len(argv) > 2):
    raise ConfigError(f"unknown command {' '.join(argv[1:])!r}; usage: genjax train "
                      "--config=FILE.py --workdir=DIR")
  if command in ("train", GROUP_COMMAND):
    given = [f"--{n}" for n in SWEEP_FLAGS if flags.FLAGS[n].present]
    if given:
      raise ConfigError(f"{', '.join(given)} given to genjax {command}, which trains one "
                        "config (or one sweep group); run genjax sweep to sweep")
  config, points = read_group(argv[2]) if group else (load_config(), None)
  if not _WORKDIR.value:
    raise ConfigError("--workdir is required; e.g. --workdir=runs/my_experiment")
  global _WORKDIR_PATH
  from genjax.workdir import paths
  _WORKDIR_PATH = paths.workdir_path(_WORKDIR.value)   # ~ expanded; links and files checked
  if command == "sweep":   # the launch options, checked before anything heavy is imported
    from genjax.sweeps import launch as sweep_launch
    sweep_launch.check(_LAUNCHER.value, _slurm_options(), detach=_DETACH.value,
                       parallel_jobs=_JOBS.value,
                       multihost=_DISTRIBUTED.value or _COORDINATOR.value is not None)
  from genjax.platform import distributed, runtime
  multiprocess = distributed.validate_flags(_COORDINATOR.value, _NUM_PROCESSES.value,
                                            _PROCESS_ID.value, _DISTRIBUTED.value)
  runtime.use_cpu_devices(runtime.cpu_device_count(
      _CPU_DEVICES.value, explicit=flags.FLAGS["cpu_devices"].present,
      multiprocess=bool(multiprocess)))
  if multiprocess:
    if _DISTRIBUTED_TIMEOUT.value <= 0:
      raise ConfigError(f"--distributed_timeout={_DISTRIBUTED_TIMEOUT.value:g} must be > 0 "
                        "seconds")
    distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value,
                           timeout_s=_DISTRIBUTED_TIMEOUT.value)
  run_command(command, config, argv, points)


def run_command(command: str, config, argv, points=None) -> None:
  from genjax import api  # Heavy imports: the flags are good.
  from genjax.platform import distributed, runtime
  import tensorflow_datasets as tfds
  tfds.display_progress_bar(False)
  runtime.enable_compilation_cache(_CACHE.value)
  if command == "sweep":
    return run_sweep(config, argv)
  if points is not None:   # a sweep's group process: its group runner, directly
    from genjax.sweeps import driver as sweep_driver
    from genjax.sweeps.launch import group_names
    sweep_driver.run_one_group(config, workdir(), points, overwrite=_OVERWRITE.value,
                               names=group_names(argv[2]),
                               progress=progress())
    return
  results = api.train(config, workdir(), overwrite=_OVERWRITE.value,
                      progress=progress())
  if not distributed.is_primary():
    return
  from genjax.report.tables import results_table
  print(results_table(results))
  if "selected_epoch_median" in results:
    selected = f"median selected epoch {results['selected_epoch_median']:g} over folds"
  else:
    selected = f"selected epoch {results['selected_epoch']}"
  failed = diverged_message(results)
  if failed:
    stop(1, f"error: {failed}; outputs kept in {_WORKDIR.value}")
  print(f"{selected} ({results['stop_reason']}), {results['epochs_run']} epochs, "
        f"{results['wall_time_s']:.1f} s; outputs in {_WORKDIR.value}")


def diverged_message(results: dict) -> str | None:
  """The one line of a run whose monitored value was never finite (results.json's
  `diverged` / `diverged_folds`), else None. `genjax train` exits 1 with it (2 is bad input)."""
  monitor = results.get("monitor", "val_loss")
  fix = ("lower --config.optimizer.learning_rate (or add gradient clipping), then rerun "
         "with --overwrite")
  if results.get("diverged"):
    return (f"the run diverged: {monitor} is NaN or infinite from epoch 0 on (no finite "
            f"value in the {results.get('epochs_run', '?')} epoch(s) run, so no epoch can be "
            f"selected); {fix}")
  folds = results.get("diverged_folds") or []
  if folds:
    return (f"the run diverged: {monitor} is NaN or infinite at every epoch of fold(s) "
            f"{', '.join(map(str, folds))} of {len(results['cv']['per_fold'])}; {fix}")
  return None


def stop(status: int, message: str) -> None:
  """One line on stderr, then exit `status` at once (2: bad input or a fault of the machine,
  130: Ctrl-C). Background threads (orbax's writers, asyncio loops) that fail as the process
  ends would print tracebacks on a normal interpreter exit: stderr is closed first. In a
  multi-host run every process leaves together first (`distributed.leave`, at most
  --distributed_timeout), so none is aborted on its way to the same line."""
  sys.stdout.flush()
  print(f"genjax: {message}", file=sys.stderr, flush=True)
  devnull = os.open(os.devnull, os.O_WRONLY)
  os.dup2(devnull, 2)
  from genjax.platform import distributed   # light (no JAX); a multi-host run has initialized it
  if distributed.process().count > 1:
    distributed.leave(_DISTRIBUTED_TIMEOUT.value)
  os._exit(status)


_FAULTS = ("No space left on device", "Disk quota exceeded", "Read-only file system",
           "Permission denied", "Input/output error")


def _unraisable(info) -> None:
  """Drops what asyncio's closed loops raise in background callbacks (orbax's/tensorstore's
  writes completing after a fault closed their checkpointer: dozens of tracebacks before the
  one line); anything else goes to Python's default hook."""
  if isinstance(info.exc_value, RuntimeError) and "Event loop is closed" in str(info.exc_value):
    return
  sys.__unraisablehook__(info)


def fault_path(error: BaseException) -> str | None:
  """The file an OSError in `error`'s chain names, if any."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, OSError) and error.filename:
      return os.fspath(error.filename)
    error = error.__cause__ or error.__context__
  return None


def environment_fault(error: BaseException) -> str | None:
  """A short reason when `error` (or what caused it) is a fault of the machine, else None."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, OSError) and error.errno in (
        errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO):
      where = f" ({error.filename})" if error.filename else ""
      return f"{error.strerror}{where}"
    text = str(error)
    for phrase in _FAULTS:
      if phrase in text:
        return phrase
    error = error.__cause__ or error.__context__
  return None


def sweep_points(argv, config=None) -> list[dict]:
  """Points from --sweep/--zip flags (times the points drawn for --sample axes), or the
  config file's get_sweep(). The --sample points' seed is --sample_seed, else config.seed."""
  from genjax.sweeps import points as sweep_grid, sampling
  given = [f"--{n}" for n in SAMPLE_FLAGS[1:] if flags.FLAGS[n].present]
  if given and not _SAMPLE.value:
    raise ConfigError(f"{', '.join(given)} given without --sample; add the axes to draw, "
                      "e.g. --sample='optimizer.learning_rate=loguniform(1e-4,1e-1)'")
  if _SAMPLE.value:
    seed = _SAMPLE_SEED.value
    if seed is None:
      seed = config.seed if config is not None and "seed" in config else 0
    samples = _SAMPLES.value
    if samples is None and _SEARCH.value == "hyperband" and config is not None:
      samples = _hyperband_points(config)
    drawn = sampling.from_flags(_SAMPLE.value, samples, _SAMPLER.value, seed,
                                _SAMPLE_SCRAMBLE.value)
    return sampling.product(drawn, sweep_grid.grid(_SWEEP.value, _ZIP.value))
  if _SWEEP.value or _ZIP.value:
    return sweep_grid.grid(_SWEEP.value, _ZIP.value)
  return sweep_grid.config_sweep(config_spec()) or []


def search_spec() -> dict | None:
  """The --search flags as the sweep takes them (None: a grid); flags that do not apply to a
  grid are refused."""
  from genjax.sweeps import pruning
  given = [f"--{n}" for n in SEARCH_FLAGS[1:] if flags.FLAGS[n].present]
  if given and _SEARCH.value == "grid":
    raise ConfigError(f"{', '.join(given)} given without --search=halving or hyperband; add "
                      "--search=halving (or drop them)")
  return pruning.spec(_SEARCH.value, _SEARCH_FACTOR.value, _SEARCH_MIN_EPOCHS.value)


def _hyperband_points(config) -> int | None:
  """How many points --search=hyperband draws for --sample axes (its brackets' total), or
  None when its settings are invalid (the sweep refuses them in one line)."""
  from genjax.sweeps import pruning, search
  spec = search_spec()
  try:
    search.validate("hyperband", factor=spec["factor"], min_epochs=spec["min_epochs"],
                    max_epochs=config.num_epochs)
  except ConfigError:
    return None
  return search.total_points(pruning.schedule(spec, 0, config.num_epochs))


def _slurm_options() -> dict:
  """The --slurm_* flags given, by name without the prefix."""
  return {name: flag.value for name, flag in _SLURM.items() if flags.FLAGS[flag.name].present}


def run_sweep(config, argv) -> None:
  from genjax.config import files as config_file
  from genjax.sweeps import driver as sweep_driver
  spec = config_file.loaded_spec()
  rows = sweep_driver.run(config, workdir(), sweep_points(argv, config),
                   config_file=spec, parallel_jobs=_JOBS.value, baseline=_BASELINE.value,
                   p_adjust=_P_ADJUST.value, test_for_all_points=_TEST_ALL.value, search=search_spec(),
                   overwrite=_OVERWRITE.value, progress=progress(),
                   launcher=_LAUNCHER.value, slurm=_slurm_options(), detach=_DETACH.value)
  from genjax.platform import distributed
  if rows is None or not distributed.is_primary():   # detached: the jobs run on
    return
  table = "nested.md" if config.cv.get("outer_folds") else "sweep.md"
  with open(os.path.join(workdir(), table)) as f:
    print(f.read())
  what = "outer folds" if config.cv.get("outer_folds") else "points"
  print(f"{len(rows)} {what}; outputs in {_WORKDIR.value}")


def run() -> None:
  """Console-script entry point.

  Start-up (imports, the config file, data loading) allocates long-lived objects only, so
  Python's cyclic GC is paused until training, which runs with it on (`genjax.train.fit.fit`):
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
