"""The host loop: `fit(program, callbacks, num_epochs=..., resume=...)`.

    state = program.start()                    # or a callback's `restore` when resuming
    for epoch in range(start, num_epochs):     # dispatched one epoch ahead
      state, metrics, improved = program.run_epoch(state, epoch)
      rows = one row per member still training
      for cb in callbacks: cb.on_epoch_end(logs)
      stop when every member's early stopping fired

Epoch e + 1 is dispatched before the host handles epoch e (its callbacks: metric rows,
TensorBoard, checkpoints), so that work overlaps the device's. When epoch e stops every
member, the speculative epoch e + 1 is waited for and dropped unread: results never depend on
it. Ctrl-C raises `Interrupted(epoch)` after every callback's `on_interrupt` (a checkpoint
save under way completes, so the rerun resumes from it).

Callbacks observe; they never change the training (see `genjax.train.callbacks`).
"""

from __future__ import annotations

import dataclasses
import gc
import functools
import signal
import threading
from typing import Any, Callable, Sequence

import jax
import numpy as np

from genjax.platform import distributed
from genjax.errors import STOP_SIGNALS, Interrupted
from genjax.train.program import Program, RunState


@dataclasses.dataclass
class FitInfo:
  """What callbacks see of a fit: the program, the epoch range, the rows so far."""
  program: Program
  start_epoch: int
  num_epochs: int
  rows: list[dict]   # every member's row of every epoch so far (callbacks may add earlier ones)


@dataclasses.dataclass
class EpochLogs:
  """One finished epoch, on the host (arrays have the member axis first)."""
  epoch: int
  rows: list[dict]               # one per member trained this epoch
  metrics: dict[str, np.ndarray] # every logged metric, (M,)
  improved: np.ndarray           # (M,) bool: the member's monitored value improved
  active: np.ndarray             # indices of the members trained this epoch
  stopped: np.ndarray            # (M,) bool: stopped after this epoch
  state: RunState                # the state after this epoch (on device; with the program's
                                 # padding members, `Program.padding`, after the M real ones)
  monitored: float               # the mean monitored value over the members trained


@dataclasses.dataclass
class Fitted:
  """The outcome of `fit` (host arrays, member axis first)."""
  state: RunState             # the last state, with any padding members (`Program.padding`)
  rows: list[dict]
  epochs_run: int
  selected_params: Any        # best (restore_best_weights) or final, per member
  selected_epoch: np.ndarray  # (M,)
  monitor: Any                # host copy of the early-stopping state


def _gc_frozen(fn: Callable) -> Callable:
  """Runs `fn` with the objects alive at its start frozen out of Python's cyclic GC, and the
  GC on (the CLI pauses it during start-up); both restored after.

  Tracing allocates many objects, and each full collection would otherwise walk the
  millions that jax, flax, orbax and TFDS hold from import (measured: ~0.15 s of a 1.2 s
  run). `gc.unfreeze` afterwards hands them back to the collector: nothing leaks.
  """

  @functools.wraps(fn)
  def wrapper(*args, **kwargs):
    gc.freeze()
    enabled = gc.isenabled()
    gc.enable()
    try:
      return fn(*args, **kwargs)
    finally:
      gc.unfreeze()
      if not enabled:
        gc.disable()

  return wrapper


def _rows(program: Program, epoch: int, host: dict, active) -> list[dict]:
  """Strict per-member rows: `fold` with several members, `member` names for sweeps."""
  m, ids = program.num_members, [p.member_id for p in program.plans]
  if not program.has_validation:   # no validation part: no placeholder validation metrics
    host = {k: v for k, v in host.items() if not k.startswith("val_")}
  return [{"epoch": epoch, **({"fold": ids[k]} if m > 1 else {}),
           **({"member": program.member_names[k]} if program.named_members else {}),
           **{name: float(v[k]) for name, v in host.items()}} for k in active]


class _CtrlC:
  """Ctrl-C, SIGTERM or SIGHUP during training, seen at the next epoch's end: a
  KeyboardInterrupt raised inside a library's own handler (orbax's checkpoint writer, say)
  could be swallowed there and the run would go on, and SIGTERM's default would end it with
  no checkpoint. A second signal acts at once (its previous handler). Main thread only
  (elsewhere: Python's own)."""

  def __init__(self):
    self.pressed, self.signum, self._previous = False, signal.SIGINT, {}
    if threading.current_thread() is threading.main_thread():
      for name in STOP_SIGNALS:
        signum = getattr(signal, name)
        previous = signal.signal(signum, self._press)
        self._previous[signum] = previous if previous is not None else signal.SIG_DFL
      if self._previous.get(signal.SIGINT) == signal.SIG_DFL:
        self._previous[signal.SIGINT] = signal.default_int_handler

  def _press(self, signum, frame):
    self.pressed, self.signum = True, signum
    self.release()

  def release(self):
    for signum, previous in self._previous.items():
      signal.signal(signum, previous)
    self._previous = {}


def _hooks(callbacks: Sequence[Any], name: str) -> list:
  """Each callback's method `name`, where it has one: every hook of the protocol is optional."""
  return [getattr(cb, name) for cb in callbacks if hasattr(cb, name)]


@_gc_frozen
def fit(program: Program, callbacks: Sequence[Any] = (), *, num_epochs: int,
        resume: bool = False, pruner: Any = None) -> Fitted:
  """Trains `program`'s members for up to `num_epochs` epochs (see the module docstring).

  `pruner` (a search, `genjax.sweeps.search`): after each epoch e with
  `pruner.is_rung(e + 1)`, the next epoch is not dispatched ahead; `pruner.prune(info,
  state, e)` returns the state with the members it stops (`Program.stop_members`), before
  any callback sees the epoch (its checkpoint holds the pruned state: a rerun resumes after
  the decision)."""
  state, start_epoch = program.start(), 0
  if resume:
    for cb in callbacks:
      restored = cb.restore(state) if hasattr(cb, "restore") else None
      if restored is not None:
        start_epoch, state = restored[0], program.placed(restored[1])
  info = FitInfo(program, start_epoch, num_epochs, rows=[])
  for hook in _hooks(callbacks, "on_train_start"):
    hook(info)
  if pruner is not None:
    pruner.start(info, state)
  epoch = start_epoch
  stopped = program.real(np.asarray(distributed.to_host(state.monitor.should_stop)))
  ahead = lambda st, e: program.run_epoch(st, e) if e < num_epochs else None  # noqa: E731
  pending = None if stopped.all() else ahead(state, epoch)
  ctrl_c = _CtrlC()
  try:
    while pending is not None:
      state, metrics, improved = pending
      rung = pruner is not None and pruner.is_rung(epoch + 1)
      pending = None if rung else ahead(state, epoch + 1)
      host, improved = program.real(distributed.to_host((metrics, improved)))
      active = np.flatnonzero(~stopped)
      rows = _rows(program, epoch, host, active)
      info.rows.extend(rows)
      if rung:
        state = pruner.prune(info, state, epoch)
      stopped = program.real(np.asarray(distributed.to_host(state.monitor.should_stop)))
      if rung and not stopped.all():
        pending = ahead(state, epoch + 1)
      if stopped.all() and pending is not None:  # drop the speculative epoch, but never
        jax.block_until_ready(pending)           # leave it running (exit, reuse)
        pending = None
      host = {k: np.asarray(v) for k, v in host.items()}
      logs = EpochLogs(epoch, rows, host, np.asarray(improved), active, stopped, state,
                       monitored=float(np.mean(host[program.monitor.monitor][active])))
      for hook in _hooks(callbacks, "on_epoch_end"):
        hook(info, logs)
      epoch += 1
      if ctrl_c.pressed:
        raise KeyboardInterrupt
  except KeyboardInterrupt:
    for hook in _hooks(callbacks, "on_interrupt"):
      hook(info)
    raise Interrupted(epoch, ctrl_c.signum) from None
  finally:
    ctrl_c.release()
  for hook in _hooks(callbacks, "on_train_end"):
    hook(info, state)
  if distributed.process().count > 1:
    # Arrays spanning processes cannot meet the local test arrays: continue from host copies.
    state = distributed.to_host(state)
  selected, selected_epoch = program.select(state, epoch)
  return Fitted(state=state, rows=info.rows, epochs_run=epoch, selected_params=selected,
                selected_epoch=selected_epoch, monitor=program.real(jax.device_get(state.monitor)))
