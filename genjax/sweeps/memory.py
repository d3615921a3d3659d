"""How many members one program may hold: the memory estimate behind the sweep's and nested
CV's refusals and program chunks.

Per member: its params, Adam's two moments and the best params (4 float32 copies), its index
plans, and XLA's temporary buffers for its training step and evaluation batch; plus the
training data once; at most MEMORY_FRACTION of the available memory. The buffers come from a
traced bound (no compiling) when that already admits the members asked for, else from XLA's
compiled memory analysis. The bound is used on CPU only, where its tests check it against the
compiled analysis; an accelerator's convolutions may take workspace buffers that no traced
value shows, so there every estimate is compiled.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

# Refuse a program whose train states would need more than this fraction of memory.
MEMORY_FRACTION = 0.5


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

  Per member: its params, Adam's two moments and the best params (4 copies, float32), its
  index plans (6 int32/float32 arrays the length of the training split), and XLA's
  temporary buffers for its training step and evaluation batch; plus the training data once.
  Capped at MEMORY_FRACTION of the available memory (`_available_bytes`). None when nothing
  can be measured. The buffers are XLA's compiled memory analysis (`_activation_bytes`); with
  `needed` on CPU, the traced bound (`_activation_bound`, no compiling) is tried first and answers
  when it admits `needed` members. Any answer below `needed` is the compiled estimate's.
  """
  available = _available_bytes()
  if available is None:
    return None, "no memory estimate on this system"
  params = s.model.param_shapes
  n = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))
  data_bytes = s.splits.train_x.size * 4
  usable = int(MEMORY_FRACTION * available - data_bytes)
  how = f"{available / 2**30:.1f} GiB available, {MEMORY_FRACTION:.0%} of it usable"
  if needed is not None and jax.default_backend() == "cpu":
    per_member = n * 16 + 24 * len(s.splits.train_y) + _activation_bound(s)
    if max(0, usable // per_member) >= needed:
      return max(0, usable // per_member), (
          f"at most {per_member / 2**20:.2f} MiB per member (traced bound), {how}")
  per_member = n * 16 + 24 * len(s.splits.train_y) + _activation_bytes(s)
  return max(0, usable // per_member), f"{per_member / 2**20:.2f} MiB per member, {how}"


