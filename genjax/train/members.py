"""Members: the models one compiled program trains at once (folds, sweep points).

A member is described on the host by its training and validation indices into
the one training split. `stack_plans` turns M of them into one `Plan` pytree
with a leading member axis: index arrays padded to the longest member with
weight-0 entries, each member's own standardization statistics (from its own
training indices only) and its own root key fold_in(key(seed), member_id), where seed is the
member's own (`MemberPlan.seed`, a swept seed) or else the config's.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from genjax.data import standardize
from genjax.train.steps import Plan

# Streams folded into a member's root key.
INIT, TRAIN = 0, 1


@dataclasses.dataclass(frozen=True)
class MemberPlan:
  """Host-side plan of one member: sorted int32 indices into the training split."""
  member_id: int
  train_idx: np.ndarray
  val_idx: np.ndarray
  hparams: dict = dataclasses.field(default_factory=dict)  # swept values, e.g. {"model.dropout": 0.2}
  labels: np.ndarray | None = None  # its own training labels (a swept label-noise fraction)
  seed: int | None = None           # its own model seed (a swept seed); None = the config's


def member_key(seed: int, member_id: int) -> jax.Array:
  return jax.random.fold_in(jax.random.key(seed), member_id)


def _pad(arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
  n = max(max(len(a) for a in arrays), 1)
  idx = np.zeros((len(arrays), n), np.int32)
  weight = np.zeros((len(arrays), n), np.float32)
  for m, a in enumerate(arrays):
    idx[m, :len(a)] = a
    weight[m, :len(a)] = 1.0
  return idx, weight


def stack_plans(plans: list[MemberPlan], x_train: np.ndarray, *, mode: str, seed: int,
                epoch_limits: list[int] | None = None) -> Plan:
  """One `Plan` with a leading member axis (see module docstring); `epoch_limits`: each
  member's own number of epochs (it freezes after them), None for the run's."""
  train_idx, train_w = _pad([p.train_idx for p in plans])
  val_idx, val_w = _pad([p.val_idx for p in plans])
  stats = [standardize.fit(x_train, p.train_idx, mode) for p in plans]
  keys = _stack_keys([jax.random.fold_in(member_key(_seed(p, seed), p.member_id), TRAIN)
                      for p in plans])
  names = sorted(plans[0].hparams)
  if any(sorted(p.hparams) != names for p in plans):
    raise ValueError("every member must sweep the same hyperparameters")
  hparams = {n: np.asarray([float(p.hparams[n]) for p in plans], np.float32) for n in names}
  if any((p.labels is None) != (plans[0].labels is None) for p in plans):
    raise ValueError("either every member has its own labels or none has")
  labels = (None if plans[0].labels is None
            else np.stack([p.labels for p in plans]).astype(np.int32))
  # One host-to-device transfer (jnp.asarray of a numpy array compiles a small program per
  # shape; device_put does not).
  arrays = jax.device_put(dict(
      train_idx=train_idx, train_weight=train_w, val_idx=val_idx, val_weight=val_w,
      mean=np.stack([s[0] for s in stats]), std=np.stack([s[1] for s in stats]),
      hparams=hparams, labels=labels,
      epoch_limit=None if epoch_limits is None else np.asarray(epoch_limits, np.int32)))
  return Plan(key=keys, **arrays)


def pad_members(plan: Plan, padding: int) -> Plan:
  """`plan` (member axis first) with `padding` copies of its last member appended, built on
  the host (no program to compile): a program's padding members (`genjax.train.program`)."""
  def pad(a):
    if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
      data = np.asarray(jax.random.key_data(a))
      return jax.random.wrap_key_data(np.concatenate([data, np.repeat(data[-1:], padding, 0)]),
                                      impl=jax.random.key_impl(a))
    host = np.asarray(a)
    return jax.device_put(np.concatenate([host, np.repeat(host[-1:], padding, 0)]))
  return plan if not padding else jax.tree.map(pad, plan)


def init_keys(plans: list[MemberPlan], seed: int) -> jax.Array:
  """(M,) keys for parameter initialization, one per member."""
  return _stack_keys([jax.random.fold_in(member_key(_seed(p, seed), p.member_id), INIT)
                      for p in plans])


def _seed(plan: MemberPlan, seed: int) -> int:
  return seed if plan.seed is None else plan.seed


def _stack_keys(keys: list[jax.Array]) -> jax.Array:
  """(M,) typed keys from M scalar keys, through the host (no program to compile)."""
  return jax.random.wrap_key_data(np.stack([np.asarray(jax.random.key_data(k)) for k in keys]))
