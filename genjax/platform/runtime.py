"""Process-level JAX set-up: the persistent compilation cache and the CPU's device count.

The cache stores compiled XLA programs on disk keyed by the program and the
JAX/XLA versions, so a rerun, a resumed run or another sweep point with the
same shapes skips compilation. It never changes numbers.

On CPU, one XLA device keeps about 1.2–1.3 of this machine's 2 cores busy on a vmapped MLP epoch
(BENCHMARKS.md, "CPU devices"); `genjax train`/`sweep` therefore make the host CPU one device
per usable core (`--cpu_devices`, applied before JAX starts) and `genjax.train.parallel` splits
the members over them, padded with copies of the last member to fill every device (models with
convolutions: over the most devices that divide them).
"""

from __future__ import annotations

import os

import jax

from genjax.errors import ConfigError

DEFAULT_CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "genjax", "xla")


def enable_compilation_cache(path: str | None = None) -> str | None:
  """Turns on JAX's persistent compilation cache at `path` ("" = off). Returns the path used.

  Default: $GENJAX_COMPILATION_CACHE if set, else ~/.cache/genjax/xla.
  """
  if path is None:
    path = os.environ.get("GENJAX_COMPILATION_CACHE", DEFAULT_CACHE_DIR)
  if not path:
    return None
  if os.path.exists(path) and not os.path.isdir(path):
    raise ConfigError(f"compilation cache '{path}' is a file, not a directory; pass a directory "
                      "to --compilation_cache_dir (or '' to turn the cache off)")
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    raise ConfigError(f"cannot create the compilation cache '{path}' ({e.strerror}); pass "
                      "another --compilation_cache_dir, or '' to turn the cache off") from None
  jax.config.update("jax_compilation_cache_dir", path)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.05)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  return path


# At most this many CPU devices by default: a cap, not a measurement (only 2 cores were measured).
MAX_AUTO_CPU_DEVICES = 8
_FORCE_FLAG = "xla_force_host_platform_device_count"


def usable_cores() -> int:
  """The cores this process may run on (its CPU affinity, which taskset and SLURM set)."""
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:   # not Linux
    return os.cpu_count() or 1


def cpu_device_count(requested: int, *, explicit: bool, multiprocess: bool) -> int | None:
  """How many CPU devices this process should make (None: leave JAX's choice alone).

  `requested` = `--cpu_devices` (0 = auto: the usable cores, at most MAX_AUTO_CPU_DEVICES).
  Left alone: XLA_FLAGS already forces a count, or the run spans processes
  (`jax.distributed`); an explicit `--cpu_devices` there is refused, never ignored.
  """
  if requested < 0:
    raise ConfigError(f"--cpu_devices={requested} must be >= 0 (0 = one per usable core, "
                      f"at most {MAX_AUTO_CPU_DEVICES}; 1 = one CPU device)")
  forced = _FORCE_FLAG in os.environ.get("XLA_FLAGS", "")
  if explicit and forced:
    raise ConfigError(f"--cpu_devices={requested} and XLA_FLAGS={os.environ['XLA_FLAGS']} both "
                      "set the CPU device count; drop one of them")
  if explicit and multiprocess:
    raise ConfigError(f"--cpu_devices={requested} is for one process; a jax.distributed run "
                      "keeps each process's devices (set XLA_FLAGS=--xla_force_host_platform_"
                      "device_count=N per process instead)")
  if forced or multiprocess:
    return None
  return requested or min(usable_cores(), MAX_AUTO_CPU_DEVICES)


def use_cpu_devices(count: int | None) -> None:
  """Makes JAX's CPU backend `count` devices (`jax_num_cpu_devices`); before JAX starts."""
  if count is None:
    return
  try:
    jax.config.update("jax_num_cpu_devices", count)
  except RuntimeError:
    raise ConfigError(f"cannot make {count} CPU devices: JAX's backends already started in "
                      "this process; set jax_num_cpu_devices before using JAX") from None
