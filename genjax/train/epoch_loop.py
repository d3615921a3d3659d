"""The epoch's formulation: one `lax.scan` (a single dispatch) or a host loop of steps.

* `resolve(choice, param_shapes, axis, conv)` -> "scan" | "steps" (`config.epoch_loop`);
* `member_layout(loop, num_members)` -> "vmap" | "side_by_side": how a stepped epoch's
  steps lay out members;
* `stepped_epoch(...)` -> `run_epoch(state, plan, x, y, epoch)` as a host loop of compiled
  training and evaluation steps, the same computation as `Program`'s scanned epoch;
* `has_conv(param_shapes)`: whether a model has convolution kernels.

Both formulations run the same operations on the same keys: the same numbers up to float
summation order (`tests/train/test_epoch_loop.py`). BENCHMARKS.md, "Epoch loop", measures them.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from genjax.errors import ConfigError
from genjax.train import parallel
from genjax.train.steps import Plan, steps_per_epoch

EPOCH_LOOPS = ("auto", "scan", "steps")


def resolve(choice: str, param_shapes, axis: str = "single", conv: str = "patches") -> str:
  """The epoch's formulation: "scan" (the whole epoch one `lax.scan`, one dispatch) or "steps"
  (a host loop of compiled steps, dispatched ahead). `auto`: "steps" for models with XLA
  convolutions (`conv="xla"`, i.e. `model.conv=xla`) on CPU, where XLA runs a convolution
  inside a loop body many times slower than outside one (jax-ml/jax#12868), else "scan"
  (convolutions as patches, `genjax.models.patch_conv`, run at full speed in the scan).

  Under the data-parallel layout (`axis="data"`) on CPU, every step is a program with an
  all-reduce, and XLA:CPU's collectives can deadlock when many such programs are in flight
  (a rendezvous that times out): there auto keeps the scan and "steps" is refused.
  """
  cpu = jax.default_backend() == "cpu"
  if choice == "steps" and cpu and axis == "data":
    raise ConfigError("epoch_loop=steps with the data-parallel layout on CPU can deadlock XLA's "
                      "collectives; use --config.epoch_loop=scan (or auto), or "
                      "--config.parallel.axis=members")
  if choice != "auto":
    return choice
  xla_conv = conv == "xla" and has_conv(param_shapes)
  return "steps" if xla_conv and cpu and axis != "data" else "scan"


def has_conv(param_shapes) -> bool:
  """Whether a model has convolution kernels (parameters of rank ≥ 3)."""
  return any(len(p.shape) >= 3 for p in jax.tree.leaves(param_shapes))


def member_layout(loop: str, num_members: int) -> str:
  """How a stepped epoch's training and evaluation steps lay out members: "side_by_side"
  on CPU (each member's convolutions its own: a vmapped convolution with per-member kernels
  is a grouped convolution, which XLA:CPU runs several times slower per member; see
  BENCHMARKS.md, "Convolutions on XLA:CPU"), else "vmap". Same numbers either way."""
  side = loop == "steps" and num_members > 1 and jax.default_backend() == "cpu"
  return "side_by_side" if side else "vmap"


def stepped_epoch(fns: dict, layout, member_finish, plan: Plan, batch_size: int,
                  unroll: bool, weights: Callable) -> Callable:
  """run_epoch(state, plan, x, y, epoch) as a host loop: the epoch's batches, one compiled
  (member-mapped, placed) training step per batch, one evaluation step per validation
  batch, then `member_finish`. Every call is dispatched asynchronously. `fns` are
  `genjax.train.steps.Steps`'s; `unroll`: the steps place members side by side
  (`parallel.side_by_side`) instead of vmapping them. `weights(train)` are the weights
  evaluated."""

  def begin(rs, mp, epoch):
    idx, w, example_key = fns.epoch_batches(mp, epoch)
    vidx, vw = fns.eval_batches(mp.val_idx, mp.val_weight)
    return idx, w, example_key, vidx, vw, fns.train_zero(), fns.eval_zero()

  def step(train, mp, x, y, idx, w, example_key, frozen, sums, b):
    y = y if mp.labels is None else mp.labels
    train, batch = fns.train_step(train, mp, x, y, idx[b], w[b], example_key, frozen)
    return train, jax.tree.map(jnp.add, sums, batch)

  def eval_step(params, mp, x, y, vidx, vw, totals, b):
    y = y if mp.labels is None else mp.labels
    return jax.tree.map(jnp.add, totals, fns.eval_sums(params, mp, x, y, vidx[b], vw[b]))

  def end(rs, mp, train, sums, totals, epoch):
    return member_finish(rs, mp, train, fns.running_means(*sums),
                         fns.eval_finalize(totals), epoch)

  begin = parallel.place(begin, layout, (True, True, False))
  step = parallel.place(step, layout, (True, True, False, False) + (True,) * 5 + (False,),
                        unroll=unroll)
  eval_step = parallel.place(eval_step, layout, (True, True, False, False, True, True, True,
                                                 False), unroll=unroll)
  end = parallel.place(end, layout, (True, True, True, True, True, False))
  num_batches = steps_per_epoch(plan.train_idx.shape[1], batch_size)
  val = jax.ShapeDtypeStruct(plan.val_idx.shape[1:], jnp.int32)
  num_val_batches = jax.eval_shape(fns.eval_batches, val, val)[0].shape[0]

  def run_epoch(rs, mp, x, y, epoch):
    idx, w, example_key, vidx, vw, sums, totals = begin(rs, mp, epoch)
    train, frozen = rs.train, rs.monitor.should_stop
    for b in range(num_batches):
      train, sums = step(train, mp, x, y, idx, w, example_key, frozen, sums, np.int32(b))
    for b in range(num_val_batches):
      totals = eval_step(weights(train), mp, x, y, vidx, vw, totals, np.int32(b))
    return end(rs, mp, train, sums, totals, epoch)

  return run_epoch
