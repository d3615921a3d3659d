"""How many members one program may hold: the memory estimate behind the sweep's and nested
CV's refusals and program chunks.

A member's state is measured, not assumed: the bytes of its real initial `RunState`
(`genjax.train.program.member_state_shapes`: `jax.eval_shape` of the `init_member` that
`build_program` compiles, so whatever the state holds is counted — params, the optimizer's
moments (none for plain SGD) and injected hyperparameters, the EMA, BatchNorm statistics, best
params, the early-stopping monitor, reduce-on-plateau). The epoch program does not donate its
state: it holds a member's state three times (its argument, its output, and the member-block
loop's buffer; XLA's analysis grows by exactly that per member).

Per member: 3 × its state, its index plans, and XLA's temporary buffers for its training step
and evaluation batch. Per program: the training data once, and one member block's training
working set (4 × the state per member of the block: the scanned epoch's carry and its
update, the EMA and best-weights select; XLA's part that does not grow with the members
measured 3.6 × the state for a 40-1000-1000-10 MLP with AdamW and an EMA, blocks of 1). At most MEMORY_FRACTION of the available memory. tests/sweeps/test_member_memory.py
checks the state bytes against a built program's and the estimate against XLA's analysis of
the compiled epoch program (never below it, at most 3 × it).

The buffers come from a traced bound (no compiling) when that already admits the members asked
for, else from XLA's compiled memory analysis. The bound is used on CPU only, where its tests
check it against the compiled analysis; an accelerator's convolutions may take workspace
buffers that no traced value shows, so there every estimate is compiled.
"""

from __future__ import annotations

import os
import types

import jax
import jax.numpy as jnp
import numpy as np

from genjax.train import early_stopping, parallel
from genjax.train import program as train_program

# Refuse a program whose train states would need more than this fraction of memory.
MEMORY_FRACTION = 0.5
# Copies of a member's state the epoch program holds: argument, output, member-block loop.
STATE_COPIES = 3
# Copies of the state per member of the block being trained (the scanned epoch's working set).
BLOCK_STATE_COPIES = 4


def state_bytes(s) -> int:
  """The bytes of one member's initial train state (`member_state_shapes`: traced, nothing
  compiled or allocated). `s` is a `Setup`, or any object with its `config`, `model` and
  `splits` (the monitor's state does not depend on its settings)."""
  if not hasattr(s, "monitor"):
    s = types.SimpleNamespace(config=s.config, model=s.model, splits=s.splits,
                              monitor=early_stopping.never_stopping(
                                  s.config.early_stopping.monitor))
  shapes = train_program.member_state_shapes(s)
  return sum(int(np.prod(a.shape)) * np.dtype(a.dtype).itemsize for a in jax.tree.leaves(shapes))


def _member_fns(s):
  """(fn, args) of one member's gradient at `batch_size` and its forward pass at
  `eval_batch_size`: what XLA holds temporary buffers for."""
  import optax
  params, cfg = s.model.param_shapes, s.config

  def loss(p, x, y):
    logits = s.model.apply(p, x, train=False)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  def batch(n):
    return (jax.ShapeDtypeStruct((n, *s.splits.input_shape), jnp.float32),
            jax.ShapeDtypeStruct((n,), jnp.int32))

  return ((jax.grad(loss), (params, *batch(cfg.batch_size))),
          (lambda p, x, y: s.model.apply(p, x, train=False), (params, *batch(cfg.eval_batch_size))))


def _activation_bytes(s) -> int:
  """XLA's temporary buffers for one member: its gradient at `batch_size` plus its forward
  pass at `eval_batch_size` (compiled memory analysis of one member alone; 0 when the
  backend reports none)."""
  total = 0
  for fn, args in _member_fns(s):
    analysis = jax.jit(fn).lower(*args).compile().memory_analysis()
    if analysis is not None:
      total += analysis.temp_size_in_bytes + analysis.output_size_in_bytes
  return total


def _traced_bytes(jaxpr) -> int:
  """The bytes of every value `jaxpr` computes, those of its inner jaxprs included."""
  from jax.extend.core import ClosedJaxpr, Jaxpr
  total = 0
  for eqn in jaxpr.eqns:
    total += sum(int(np.prod(v.aval.shape)) * np.dtype(v.aval.dtype).itemsize
                 for v in eqn.outvars if hasattr(v.aval, "shape"))
    for value in eqn.params.values():
      for inner in value if isinstance(value, (tuple, list)) else (value,):
        if isinstance(inner, ClosedJaxpr):
          total += _traced_bytes(inner.jaxpr)
        elif isinstance(inner, Jaxpr):
          total += _traced_bytes(inner)
  return total


def _activation_bound(s) -> int:
  """An upper bound of `_activation_bytes` without compiling: twice the bytes of every value
  the traced programs compute (XLA reuses and fuses buffers; it holds fewer bytes than
  the program computes). Tracing the reference MLP took 0.02 s where compiling it took 0.36 s
  (CHANGELOG.md, Performance); tests/sweeps/test_sweep.py checks the bound against the compiled analysis of every
  model."""
  return 2 * sum(_traced_bytes(jax.make_jaxpr(fn)(*args).jaxpr) for fn, args in _member_fns(s))


def _available_bytes() -> int | None:
  """The device's free memory when it reports a limit, else the host's free RAM; None when
  neither can be read."""
  try:
    available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
  except (ValueError, OSError):
    return None
  stats = jax.devices()[0].memory_stats() or {}
  if "bytes_limit" in stats:
    available = stats["bytes_limit"] - stats.get("bytes_in_use", 0)
  return available


def member_capacity(s, *, needed: int | None = None) -> tuple[int | None, str]:
  """(the most members one program of `s`'s model may hold, how that was estimated).

  Per member: STATE_COPIES × its real train state's bytes (`state_bytes`: whatever the
  optimizer, EMA, BatchNorm statistics, monitor and reduce-on-plateau hold), its index plans
  (6 int32/float32 arrays the length of the training split), and XLA's temporary buffers for
  its training step and evaluation batch. Per program: the training data once and one member
  block's working set (BLOCK_STATE_COPIES × the state × `parallel.block_size`). Capped at
  MEMORY_FRACTION of the available memory (`_available_bytes`). None when nothing can be
  measured. The buffers are XLA's compiled memory analysis (`_activation_bytes`); with
  `needed` on CPU, the traced bound (`_activation_bound`, no compiling) is tried first and
  answers when it admits `needed` members. Any answer below `needed` is the compiled
  estimate's. The estimate is never below XLA's analysis of the compiled epoch program
  (tests/sweeps/test_member_memory.py).
  """
  available = _available_bytes()
  if available is None:
    return None, "no memory estimate on this system"
  state = state_bytes(s)
  how = (f"its state {state / 2**20:.2f} MiB, {available / 2**30:.1f} GiB available, "
         f"{MEMORY_FRACTION:.0%} of it usable")

  def fit(buffers):
    per_member, per_program = _estimate(s, state, buffers)
    return max(0, int(MEMORY_FRACTION * available - per_program) // per_member), per_member

  if needed is not None and jax.default_backend() == "cpu":
    members, per_member = fit(_activation_bound(s))
    if members >= needed:
      return members, f"at most {per_member / 2**20:.2f} MiB per member (traced bound), {how}"
  members, per_member = fit(_activation_bytes(s))
  return members, f"{per_member / 2**20:.2f} MiB per member, {how}"


def _estimate(s, state: int, buffers: int) -> tuple[int, int]:
  """(bytes per member, bytes per program) for a member state of `state` bytes and `buffers`
  bytes of XLA temporaries per member (`member_capacity`)."""
  per_member = STATE_COPIES * state + 24 * len(s.splits.train_y) + buffers
  per_program = (s.splits.train_x.size * 4
                 + BLOCK_STATE_COPIES * state * parallel.block_size(s.config.parallel))
  return per_member, per_program


def member_bytes(s, *, traced: bool = False) -> tuple[int, int]:
  """(bytes per member, bytes per program) of `member_capacity`'s estimate: M members need
  per_member × M + per_program. `traced`: the buffers' traced bound, else XLA's compiled
  analysis."""
  return _estimate(s, state_bytes(s), _activation_bound(s) if traced else _activation_bytes(s))
