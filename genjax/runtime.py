"""Process-level JAX set-up: the persistent compilation cache (and, later, multi-host).

The cache stores compiled XLA programs on disk keyed by the program and the
JAX/XLA versions, so a rerun, a resumed run or another sweep point with the
same shapes skips compilation. It never changes numbers.
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
