"""Checkpointing a training run: best-k by a metric plus latest-k for resume.

A thin wrapper over `orbax.checkpoint.CheckpointManager` (orbax >= 0.12.8).

Retention uses orbax's preservation policies: a step survives when ANY of
`LatestN(keep_latest)` or `BestN(keep_best)` keeps it, so the newest
checkpoints (for resume) and the best ones (by `metric`, in `mode`) are kept
together. (`best_fn` + `max_to_keep` alone would keep only the best and delete
the latest.)

Saves are asynchronous by default: `save` returns once the state has been
copied off the accelerator; the write finishes in a background thread.
`wait()` blocks until it has; the restore methods call it themselves.

Crash safety (local disk): orbax writes a step into `<step>.orbax-checkpoint-tmp`
and renames it to `<step>` only when complete; unfinished tmp dirs are never
listed as steps and are deleted when a `Checkpointer` opens the directory
(`cleanup_tmp_directories`). Old steps are deleted only after the new step is
committed, so a process killed at any moment leaves the latest complete step
restorable. A kill during that deletion (a plain rmtree) can leave an old,
dominated step half-deleted; it never ranks as latest or best (its metrics are
gone or worse) and the next save deletes it again.

State: any pytree of jax/numpy arrays and Python scalars (nested dicts, int32,
uint32, bool, ...). Typed PRNG key arrays (`jax.random.key`) round-trip with
orbax 0.12.8, but the portable form is `jax.random.key_data(key)` (uint32),
rewrapped with `jax.random.wrap_key_data` after restore; prefer that.

Verification: each step holds, next to the state (orbax item `state`), a JSON
record (item `checksum`): every leaf's key path, dtype and shape, and a CRC-32
over every leaf's dtype, shape and bytes (tree-flatten order, from a host
copy). `restore` checks the target against the recorded structure (a mismatch
is a `ConfigError`), reads the state and recomputes the CRC; a step that fails
its checksum or that orbax/tensorstore cannot read (missing, truncated or
garbled files) raises `CorruptCheckpointError`, one line. `restore_latest`
then falls back to the next older kept step, printing one warning line per
skipped step, and deletes the skipped steps once an older one has restored
(when none does, it deletes nothing and raises `CorruptCheckpointError`).
Errors that say nothing about the data (out of memory, permission denied, a
device error) propagate unchanged. The CRC costs a host copy of the state and
about 4 ms per 10 MB, only when a save is actually started. Steps written
before verification existed (orbax item `default`) restore unverified.

Multi-host: orbax coordinates processes itself; every process constructs the
`Checkpointer` on the same directory and calls the same methods. Leaves that
span processes are not fully addressable; a state with such leaves is
checked for structure and orbax read errors only, not by CRC.
"""

from __future__ import annotations

import contextlib
import gc
import inspect
import itertools
import logging
import math
import os
import re
import sys
import threading
import time
import zlib
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as ocm

from genjax.errors import ConfigError

_MODES = ("min", "max")
_STATE, _CHECKSUM, _LEGACY = "state", "checksum", "default"  # orbax item names
_FORMAT = "genjax-crc32-v1"
# Errors about the machine or the storage service, not the data: never "corrupt".
# (Tensorstore errors are ValueErrors whose message starts with the status code.)
_NOT_DATA_ERRORS = (MemoryError, PermissionError, jax.errors.JaxRuntimeError)
_NOT_DATA_CODES = ("RESOURCE_EXHAUSTED", "PERMISSION_DENIED", "UNAVAILABLE",
                   "DEADLINE_EXCEEDED", "UNAUTHENTICATED")


class CorruptCheckpointError(ConfigError):
  """A checkpoint step that cannot be read or fails its checksum (one line).

  `reason` is the short cause (e.g. "checksum mismatch") without the location.
  """

  def __init__(self, message: str, reason: str = ""):
    super().__init__(message)
    self.reason = reason


def default_config() -> ml_collections.ConfigDict:
  """Defaults for checkpointing; `subdir` is relative to the run's workdir."""
  cfg = ml_collections.ConfigDict()
  cfg.enabled = True           # checkpoint the run to resume it; false: a killed run starts over
  cfg.subdir = "checkpoints"   # the folder, a plain name inside the workdir
  cfg.keep_best = 1            # best checkpoints kept, by the early-stopping monitor
  cfg.keep_latest = 1          # latest checkpoints kept (resume starts from the newest)
  cfg.save_every = 1           # save when epoch % save_every == 0
  cfg.min_interval_s = 10      # at most one save per this many seconds; 0 = no limit
  cfg.async_save = True        # write in a background thread while training goes on
  return cfg


def _check_count(name: str, value: Any) -> None:
  if isinstance(value, bool) or not isinstance(value, int) or value < 1:
    raise ConfigError(
        f"checkpoint.{name}={value!r} is invalid; set it to an integer >= 1.")


def _check_interval(value: Any) -> None:
  if isinstance(value, bool) or not isinstance(value, int) or value < 0:
    raise ConfigError(
        f"checkpoint.min_interval_s={value!r} is invalid; set it to an integer number of "
        "seconds >= 0 (0 saves every save_every epochs).")


def validate_config(cfg: ml_collections.ConfigDict) -> None:
  """Raises ConfigError (one line) for a bad checkpoint config."""
  for name in ("keep_best", "keep_latest", "save_every"):
    _check_count(name, cfg[name])
  _check_interval(cfg.min_interval_s)
  if not isinstance(cfg.subdir, str) or not cfg.subdir.strip():
    raise ConfigError(
        f"checkpoint.subdir={cfg.subdir!r} is invalid; set it to a non-empty "
        "directory name such as 'checkpoints'.")


def from_config(cfg: ml_collections.ConfigDict, workdir: str | os.PathLike,
                *, mode: str = "min", subdir: str | None = None) -> Checkpointer | None:
  """Builds a Checkpointer in `workdir/cfg.subdir` (or `workdir/subdir`), None if disabled."""
  validate_config(cfg)
  if not cfg.enabled:
    return None
  return Checkpointer(
      os.path.join(os.fspath(workdir), subdir or cfg.subdir), mode=mode,
      keep_best=cfg.keep_best, keep_latest=cfg.keep_latest,
      save_every=cfg.save_every, min_interval_s=cfg.min_interval_s, async_save=cfg.async_save)


def _finite(value: Any) -> bool:
  return isinstance(value, (int, float)) and math.isfinite(value)


def _ranking_key(mode: str):
  """Returns the orbax `best_fn`: a sort key, larger is better under `mode`.

  orbax only sorts by it, so a tuple is fine: ties between equal metrics go to
  the EARLIER epoch (Keras semantics). Non-finite or missing values rank worst.
  """
  if mode == "min":
    def key(metrics):
      value = metrics.get("metric")
      return (value if _finite(value) else math.inf,
              int(metrics.get("epoch", 0)))
  else:
    def key(metrics):
      value = metrics.get("metric")
      return (value if _finite(value) else -math.inf,
              -int(metrics.get("epoch", 0)))
  return key


def _abstract(leaf: Any) -> Any:
  """A restore template leaf: shape, dtype and (for arrays) sharding.

  Non-jax leaves (Python scalars, numpy arrays) get the dtype `jnp.asarray`
  would give them, without a device copy.
  """
  if isinstance(leaf, jax.ShapeDtypeStruct):
    return leaf
  if isinstance(leaf, jax.Array):
    return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=leaf.sharding)
  arr = np.asarray(leaf)
  return jax.ShapeDtypeStruct(arr.shape, jax.dtypes.canonicalize_dtype(arr.dtype))


def _as_array(leaf: Any) -> Any:
  return leaf if isinstance(leaf, jax.Array) else jnp.asarray(leaf)


def _one_line(err: Any, limit: int = 400) -> str:
  text = " ".join(str(err).split())
  return text if len(text) <= limit else text[:limit] + "..."


def _leaf_specs(tree: Any) -> list[list]:
  """`[key path, dtype, shape]` per leaf, in tree-flatten order, as restored."""
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  return [[jax.tree_util.keystr(path), str(a.dtype), list(a.shape)]
          for path, a in ((path, _abstract(x)) for path, x in flat)]


def _crc32(tree: Any) -> int | None:
  """CRC-32 over every leaf's dtype, shape and bytes (host copy, flatten order).

  Leaves are taken in the dtype a restore yields (`_abstract`); typed PRNG
  keys by their key data. None when a leaf is not fully addressable (it spans
  processes): such a state is not hashed.
  """
  leaves = []
  for x in jax.tree.leaves(tree):
    if isinstance(x, jax.Array):
      if not x.is_fully_addressable:
        return None
      if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
        x = jax.random.key_data(x)
    leaves.append(x)
  crc = 0
  for x in jax.device_get(leaves):
    x = np.asarray(x)
    x = np.ascontiguousarray(x, dtype=jax.dtypes.canonicalize_dtype(x.dtype))
    crc = zlib.crc32(f"{x.dtype}{x.shape}".encode(), crc)
    crc = zlib.crc32(x.reshape(-1).view(np.uint8), crc)
  return crc


def _device_count(tree: Any) -> int | None:
  """How many devices the first array leaf is placed on (None: no array leaf)."""
  for leaf in jax.tree.leaves(tree):
    sharding = getattr(leaf, "sharding", None)
    if sharding is not None:
      return len(sharding.device_set)
  return None


def _record(state: Any, devices: int | None = None) -> dict:
  """The JSON checksum record saved next to `state`, with the devices it trains on (`devices`,
  else those its arrays are placed on)."""
  return {"format": _FORMAT, "crc32": _crc32(state), "leaves": _leaf_specs(state),
          "devices": devices or _device_count(state)}


def _spec_text(spec: list | None) -> str:
  if spec is None:
    return "nothing"
  path, dtype, shape = spec
  return f"{path or '<root>'} {dtype}{tuple(shape)}"


def _first_difference(saved: list, wanted: list) -> str:
  for i, (s, w) in enumerate(itertools.zip_longest(saved, wanted)):
    if s != w:
      return (f"leaf {i}: saved {_spec_text(s)}, target {_spec_text(w)}; "
              f"{len(saved)} leaves saved, {len(wanted)} in the target")
  return "same leaves"


def _error_chain(err: BaseException) -> list[BaseException]:
  chain = [err]
  while True:
    nxt = chain[-1].__cause__
    if nxt is None and not chain[-1].__suppress_context__:
      nxt = chain[-1].__context__
    if nxt is None or nxt in chain:
      return chain
    chain.append(nxt)


def _is_data_error(err: Exception) -> bool:
  """False for errors about the machine or storage service rather than the data."""
  return not any(isinstance(e, _NOT_DATA_ERRORS) or str(e).startswith(_NOT_DATA_CODES)
                 for e in _error_chain(err))


def _short_reason(err: Exception, limit: int = 160) -> str:
  """The innermost cause of a read error, as one short line (no tensorstore spec
  or OCDBT location: the caller names the step)."""
  e = _error_chain(err)[-1]
  text = str(e.args[0] if isinstance(e, KeyError) and e.args else e)
  text = text.split(" [tensorstore_spec=")[0]
  text = re.sub(r' in OCDBT database at [^"]*"[^"]*"', "", text)
  return _one_line(text, limit) or type(e).__name__


class _DropAll(logging.Filter):
  def filter(self, record):
    return False


def _is_read_debris(unraisable) -> bool:
  """An abandoned orbax read coroutine, or a tensorstore callback into its closed loop."""
  return (inspect.iscoroutine(unraisable.object)
          or (isinstance(unraisable.exc_value, RuntimeError)
              and "Event loop is closed" in str(unraisable.exc_value)))


def _settle(wait_s: float = 0.1) -> None:
  """After a failed read: lets tensorstore's reads in flight finish, collects orbax's."""
  time.sleep(wait_s)
  gc.collect()


@contextlib.contextmanager
def _quiet_read_failures():
  """Hides what a failed orbax read leaves behind, so the error stays one line.

  When one array read fails, orbax abandons its other reads: their coroutines
  and tasks print tracebacks when collected ("Exception ignored in: <coroutine
  ...>", "Task exception was never retrieved", ~60 lines each), and tensorstore
  reads still in flight call back into the closed event loop ("Event loop is
  closed"). The block drops those; call `_settle()` in it after a failure.
  """
  previous, previous_excepthook = sys.unraisablehook, sys.excepthook
  asyncio_log, drop = logging.getLogger("asyncio"), _DropAll()

  def hook(unraisable):
    if not _is_read_debris(unraisable):
      previous(unraisable)

  def excepthook(kind, value, tb):   # tensorstore's C++ threads print through it
    if not (isinstance(value, RuntimeError) and "Event loop is closed" in str(value)):
      previous_excepthook(kind, value, tb)

  previous_thread_hook = threading.excepthook

  def thread_hook(args):
    if not (isinstance(args.exc_value, RuntimeError)
            and "Event loop is closed" in str(args.exc_value)):
      previous_thread_hook(args)

  sys.unraisablehook, sys.excepthook, threading.excepthook = hook, excepthook, thread_hook
  asyncio_log.addFilter(drop)
  try:
    yield
  except BaseException:
    _settle()
    raise
  finally:
    asyncio_log.removeFilter(drop)
    sys.unraisablehook, sys.excepthook = previous, previous_excepthook
    threading.excepthook = previous_thread_hook


class Checkpointer:
  """Keeps the best `keep_best` (by metric) and latest `keep_latest` epochs.

  Args:
    directory: where step directories `<epoch>/` live; created if missing.
    mode: "min" (e.g. a loss) or "max" (e.g. an accuracy) for the metric.
    keep_best: how many best-by-metric checkpoints to keep (>= 1).
    keep_latest: how many most recent checkpoints to keep (>= 1).
    save_every: `save` writes only when `epoch % save_every == 0` (or force).
    min_interval_s: and only when the previous save started at least this many seconds ago
      and has finished writing (orbax's `ContinuousCheckpointingPolicy`, which multi-host
      runs decide on process 0), unless forced; 0: no time limit. A save costs tens of
      milliseconds, more than a small model's epoch: every epoch saved made the default
      K-fold experiment take 28.8 s instead of 8.0 s.
    async_save: write in the background (orbax async checkpointing).

  Use as a context manager, or call `close()`: it waits for pending writes.
  """

  def __init__(self, directory: str | os.PathLike, *, mode: str = "min",
               keep_best: int = 1, keep_latest: int = 1, save_every: int = 1,
               min_interval_s: int = 0, async_save: bool = True):
    if mode not in _MODES:
      raise ConfigError(
          f"checkpoint mode={mode!r} is invalid; use 'min' or 'max'.")
    _check_count("keep_best", keep_best)
    _check_count("keep_latest", keep_latest)
    _check_count("save_every", save_every)
    _check_interval(min_interval_s)
    self._directory = os.path.abspath(os.fspath(directory))
    self._mode = mode
    self._save_every = save_every
    self._throttled = min_interval_s > 0
    key = _ranking_key(mode)
    policy = ocm.AnyPreservationPolicy([
        ocm.LatestN(n=keep_latest),
        ocm.BestN(get_metric_fn=key, reverse=(mode == "min"), n=keep_best,
                  keep_checkpoints_without_metrics=False),
    ])
    options = ocp.CheckpointManagerOptions(
        best_fn=key,  # Only for best_step(); retention is the policy above.
        best_mode=mode,
        preservation_policy=policy,
        enable_async_checkpointing=async_save,
        cleanup_tmp_directories=True,
        create=True,
        save_decision_policy=(ocm.ContinuousCheckpointingPolicy(
            minimum_interval_secs=min_interval_s) if self._throttled else None),
    )
    # Named items lock orbax into multi-item mode; left to infer it, orbax would take
    # a directory of pre-checksum steps (item "default") for single-item mode.
    self._manager = ocp.CheckpointManager(
        self._directory, options=options, item_names=(_STATE, _CHECKSUM, _LEGACY))
    self._closed = False

  @property
  def directory(self) -> str:
    return self._directory

  def save(self, epoch: int, state: Any, *, metric: float | None,
           force: bool = False, devices: int | None = None) -> bool:
    """Starts saving `state` as `epoch`; returns whether a save was started.

    Saves when `epoch % save_every == 0` and `min_interval_s` allows it, or when
    `force`. Never overwrites: an
    `epoch` <= the latest saved epoch returns False. `metric` (a scalar) ranks
    the checkpoint for best-k; None or a non-finite value (NaN/inf) makes it
    never "best" (it is still kept while among the latest). For vmapped
    members pass None and keep per-member best weights inside `state`. `devices`: how many
    devices the state trains on (default: those its arrays are placed on); a restore onto
    another count is refused.
    """
    self._check_open()
    if not force and epoch % self._save_every != 0:
      return False
    latest = self._manager.latest_step()
    if latest is not None and epoch <= latest:
      return False
    # Ask the time policy first: the checksum (a host copy) is only paid for a save.
    if self._throttled and not force and not self._manager.should_save(int(epoch)):
      return False
    metrics = None
    if metric is not None:
      value = float(metric)
      if math.isfinite(value):
        metrics = {"metric": value, "epoch": int(epoch)}
    args = ocp.args.Composite(**{_STATE: ocp.args.StandardSave(state),
                                 _CHECKSUM: ocp.args.JsonSave(_record(state, devices))})
    return bool(self._manager.save(int(epoch), args=args, metrics=metrics, force=True))

  def latest_epoch(self) -> int | None:
    """The newest saved epoch (including one still being written), or None."""
    return self._manager.latest_step()

  def best_epoch(self) -> int | None:
    """The best kept epoch by metric (earliest on ties), or None if none has a
    finite metric."""
    return self._manager.best_step()

  def all_epochs(self) -> list[int]:
    """Kept epochs, ascending."""
    return sorted(self._manager.all_steps())

  def restore(self, epoch: int, target: Any, *, devices: int | None = None) -> Any:
    """Restores `epoch` into the structure of `target`, verified by its checksum.

    `target`: a pytree with the saved state's structure whose leaves are arrays
    or `jax.ShapeDtypeStruct`s (their shape, dtype and sharding are used).
    Returns the same structure with jax array leaves.

    Raises:
      ConfigError: the epoch is missing, or its key paths, dtypes or shapes
        differ from `target`'s.
      CorruptCheckpointError: the step cannot be read (missing, truncated or
        garbled files) or its data fail the checksum.
    """
    self._check_open()
    self.wait()
    epoch = int(epoch)
    if epoch not in self._manager.all_steps():
      raise ConfigError(
          f"no checkpoint for epoch {epoch} in {self._directory} (have "
          f"{self.all_epochs()}); pass one of those epochs.")
    abstract = jax.tree.map(_abstract, target)
    if self._is_legacy(epoch):
      return self._restore_unverified(epoch, abstract)
    record = self._read(epoch, _CHECKSUM, ocp.args.JsonRestore())
    if not (isinstance(record, dict) and record.get("format") == _FORMAT
            and isinstance(record.get("leaves"), list)):
      raise self._corrupt(epoch, "malformed checksum record")
    saved, here = record.get("devices"), devices or _device_count(abstract)
    if None not in (saved, here) and saved != here:
      # Members or batches laid out over another device count round differently: the resumed
      # run would be neither run. (Records from before this field carry no count.) Checked
      # before the shapes: another device count can add padding members (train/program.py).
      raise ConfigError(
          f"checkpoint {self._directory}/{epoch} holds a state trained on {saved} device(s), "
          f"and this run places it on {here}; resume with the devices it ran on (the same "
          "--cpu_devices and parallel.devices, on a machine with as many cores), or rerun "
          "with --overwrite to start over")
    wanted = _leaf_specs(abstract)
    if record["leaves"] != wanted:
      raise self._mismatch(epoch, _first_difference(record["leaves"], wanted))
    state = jax.tree.map(
        _as_array, self._read(epoch, _STATE, ocp.args.StandardRestore(abstract)))
    saved_crc = record.get("crc32")
    if saved_crc is not None and _crc32(state) not in (None, saved_crc):
      raise self._corrupt(epoch, "checksum mismatch")
    return state

  def restore_latest(self, target: Any, *, devices: int | None = None
                     ) -> tuple[int, Any] | None:
    """Returns `(epoch, state)` for the newest kept epoch that restores, or None.

    Tries kept epochs newest first. A corrupt one (`CorruptCheckpointError`)
    is skipped with one line on stderr,
    `genjax: warning: checkpoint <dir>/<epoch> is unreadable (<reason>); skipped,
    resuming from epoch <older>` (`...; skipped` when none is older); once an
    older epoch restores, the skipped step directories are deleted (so later
    saves, which never go back, can reuse their epochs). Returns None when
    there are no checkpoints. Raises `CorruptCheckpointError` (deleting
    nothing) when every kept epoch is corrupt, and `ConfigError` when an
    epoch does not match `target`.
    """
    self._check_open()
    self.wait()
    epochs = sorted(self._manager.all_steps(), reverse=True)
    skipped = []
    for i, epoch in enumerate(epochs):
      try:
        state = self.restore(epoch, target, devices=devices)
      except CorruptCheckpointError as e:
        older = f", resuming from epoch {epochs[i + 1]}" if i + 1 < len(epochs) else ""
        self._warn(f"checkpoint {self._directory}/{epoch} is unreadable "
                   f"({e.reason}); skipped{older}")
        skipped.append(epoch)
        continue
      for bad in skipped:
        self._manager.delete(bad)
      return epoch, state
    if not epochs:
      return None
    raise CorruptCheckpointError(
        f"no usable checkpoint in {self._directory}: kept epochs {sorted(epochs)} are "
        "unreadable or fail their checksum; rerun with --overwrite to start from scratch",
        reason="every kept epoch is corrupt")

  def wait(self) -> None:
    """Blocks until pending asynchronous saves are written; re-raises errors."""
    if not self._closed:
      with _quiet_read_failures():   # a failed write (a full disk) leaves the same debris
        self._manager.wait_until_finished()

  def close(self) -> None:
    """Waits for pending saves and releases orbax's threads. Idempotent."""
    if not self._closed:
      self._closed = True
      with _quiet_read_failures():
        self._manager.close()

  def _read(self, epoch: int, item: str, args: Any, *, legacy: bool = False) -> Any:
    """Reads one orbax item of `epoch`; a read error -> CorruptCheckpointError.

    `legacy`: a ValueError means a target mismatch (ConfigError), as orbax
    raises for a step without a structure record.
    """
    with _quiet_read_failures():
      try:
        return self._manager.restore(epoch, args=ocp.args.Composite(**{item: args}))[item]
      except Exception as e:  # pylint: disable=broad-except
        if not _is_data_error(e):
          raise
        if legacy and isinstance(e, ValueError):
          error = self._mismatch(epoch, _one_line(e))
        else:
          error = self._corrupt(epoch, _short_reason(e))
      _settle()  # Only reached after a failure, once `e` (and orbax's frames) are gone.
    raise error

  def _is_legacy(self, epoch: int) -> bool:
    """Whether `epoch` was written before checksums (orbax item `default`)."""
    step = os.path.join(self._directory, str(epoch))
    return (os.path.isdir(os.path.join(step, _LEGACY))
            and not os.path.exists(os.path.join(step, _STATE)))

  def _restore_unverified(self, epoch: int, abstract: Any) -> Any:
    state = self._read(epoch, _LEGACY, ocp.args.StandardRestore(abstract), legacy=True)
    return jax.tree.map(_as_array, state)

  def _mismatch(self, epoch: int, detail: str) -> ConfigError:
    return ConfigError(
        f"checkpoint {self._directory}/{epoch} does not match the restore "
        f"target ({detail}); restore with the model/optimizer config "
        "the run was saved with.")

  def _corrupt(self, epoch: int, reason: str) -> CorruptCheckpointError:
    others = [e for e in self.all_epochs() if e != epoch]
    return CorruptCheckpointError(
        f"checkpoint {self._directory}/{epoch} is unreadable ({reason}); restore "
        f"another kept epoch {others} or rerun with --overwrite to start from scratch",
        reason=reason)

  @staticmethod
  def _warn(message: str) -> None:
    if jax.process_index() == 0:
      print(f"genjax: warning: {message}", file=sys.stderr, flush=True)

  def _check_open(self) -> None:
    if self._closed:
      raise RuntimeError(f"Checkpointer for {self._directory} is closed.")

  def __enter__(self) -> Checkpointer:
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  def __repr__(self) -> str:
    return (f"Checkpointer({self._directory!r}, mode={self._mode!r}, "
            f"epochs={self.all_epochs()})")
