"""Pure training and evaluation steps, and one epoch as a single `lax.scan`.

Contracts (one *member* = one model being trained; later drivers vmap over members):

* `Plan` says which examples a member trains and validates on: index arrays into
  the device-resident training split, padded to a fixed length with weight-0
  entries, plus the member's standardization statistics and root key.
* A batch loss is the weighted mean  L = Σ_b w_b·ℓ_b / max(Σ_b w_b, 1) + R(θ, t),
  so padding never changes a member's loss or gradient.
* A step whose batch holds no real example, or of a frozen member, changes
  nothing: new = where(active, new, old) over the whole state (a zero gradient
  is not a no-op for Adam).
* Batch statistics (BatchNorm) are weighted by w and reduced over devices inside the layer,
  so pads never move them and D devices ≡ one; a step that is a no-op keeps them too.
* Randomness depends only on (seed, member, epoch, example index): the shuffle
  sorts examples by u_i = U(fold_in(k_shuffle, i)), and example i's dropout and
  augmentation keys are fold_ins of fold_in(k_example, i).
* Data parallel (`axis_name` set, run under `shard_map` or `pmap` over D
  devices): device d takes slice d of every global batch; the gradient of
  Σ_local w·ℓ / C (C = the global Σ w, a `psum`) is summed over devices with
  `psum`, which equals the single-device gradient up to float summation order.
  The penalty's gradient enters once (divided by D on each device).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
import optax

# Streams folded into a member's epoch key.
_SHUFFLE, _EXAMPLE = 0, 1
# Streams folded into an example key.
_DROPOUT, _AUGMENT = 0, 1


def steps_per_epoch(n: int, batch_size: int) -> int:
  """Optimizer steps (batches) of an epoch over `n` training examples: ⌈n / batch_size⌉, the
  last batch padded."""
  return -(-n // batch_size)


@flax.struct.dataclass
class Plan:
  """One member's data plan (see module docstring)."""
  train_idx: jax.Array     # (N,) int32 into the training split
  train_weight: jax.Array  # (N,) float32, 1 real / 0 pad
  val_idx: jax.Array       # (M,) int32
  val_weight: jax.Array    # (M,) float32
  mean: jax.Array          # input_shape, float32
  std: jax.Array           # input_shape, float32
  key: jax.Array           # the member's root key (typed)
  hparams: Any = flax.struct.field(default_factory=dict)  # swept values: name -> scalar
  labels: Any = None       # (N_train,) int32 labels of this member (swept label noise), or None
  epoch_limit: Any = None  # int32: the member trains this many epochs, then freezes; None: all


@flax.struct.dataclass
class TrainState:
  step: jax.Array          # int32: optimizer steps taken (active ones only)
  params: Any
  opt_state: Any
  ema: Any = None          # the weights' moving average (`ema_fn`), or None when off


def epoch_key(plan_key: jax.Array, epoch) -> jax.Array:
  return jax.random.fold_in(plan_key, epoch)


def shuffled_order(key: jax.Array, idx: jax.Array, weight: jax.Array) -> jax.Array:
  """Positions of (idx, weight) in epoch order: real examples shuffled, pads last.

  Each example's sort key depends only on (key, example index), so a member's
  order is the same whatever padding length surrounds it.
  """
  u = jax.vmap(lambda i: jax.random.uniform(jax.random.fold_in(key, i)))(idx)
  u = jnp.where(weight > 0, u, 2.0)
  return jnp.argsort(u, stable=True)


def _weighted_sums(logits, y_soft, labels, w):
  ce = optax.softmax_cross_entropy(logits, y_soft)
  correct = (jnp.argmax(logits, -1) == labels).astype(jnp.float32)
  return jnp.sum(w * ce), jnp.sum(w * correct), jnp.sum(w)


@dataclasses.dataclass(frozen=True, eq=False)   # eq=False: hashed by identity (jit)
class Steps:
  """Pure `train_epoch(state, plan, x, y, epoch, frozen)`, `evaluate(params, ...)`,
  `predict`, and the pieces they are made of, for a host loop over batches:
  `epoch_batches(plan, epoch)` -> (idx, w, example_key); `train_step(state, plan, x, y, idx,
  w, example_key, frozen)` -> (state, sums); `train_zero()`; `running_means(*sums)` (sums added
  over the epoch's steps); `eval_batches(idx, w)`;
  `eval_sums(params, plan, x, y, idx, w)`; `eval_zero()`; `eval_finalize(totals)`.
  A scanned epoch and a host loop of these pieces run the same operations on the same keys.

  `apply_fn(params, x, *, train, rng, hparams)` -> logits; `penalty_fn(params, step,
  hparams)` -> scalar (`hparams` is the member's `plan.hparams`);
  `augmenter(keys, x, y_soft, hparams)` -> (x, y_soft) or None; `targets_fn(y_soft, hparams)`
  -> the training targets (label smoothing) or None; `lr_fn(opt_state, step)` -> the learning
  rate of that step (logged as `learning_rate`) or None; `ema_fn(ema, params, hparams)` -> the
  moving average after an active step (`TrainState.ema`) or None; `train_apply_fn(params, x, *,
  rng, hparams, weight, axis_name)` -> (logits, params with updated batch statistics) for models
  with batch statistics, whose leaves `stat_mask` marks (after each step they are the forward
  pass's, not the optimizer's), or None. All are closed over (static).
  With `axis_name`, the functions must run under a `shard_map`/`pmap` whose axis
  `axis_name` has `num_shards` devices; `batch_size` must divide by it. `extra_metrics`
  (`genjax.train.metrics.Metric`s) are added to what `evaluate` returns.
  """
  apply_fn: Callable
  tx: optax.GradientTransformation
  penalty_fn: Callable
  augmenter: Callable | None
  num_classes: int
  batch_size: int
  eval_batch_size: int
  axis_name: str | None = None
  num_shards: int = 1
  extra_metrics: tuple = ()
  targets_fn: Callable | None = None
  lr_fn: Callable | None = None
  ema_fn: Callable | None = None
  train_apply_fn: Callable | None = None
  stat_mask: Any = None

  def __post_init__(self):
    if self.batch_size % self.num_shards:
      raise ValueError(f"batch_size {self.batch_size} is not divisible by {self.num_shards} "
                       "devices")
    object.__setattr__(self, "eval_batch_size",   # whole shards
                       -(-self.eval_batch_size // self.num_shards) * self.num_shards)

  def _psum(self, x):
    return jax.lax.psum(x, self.axis_name) if self.axis_name else x

  def _local(self, batch):
    """This device's slice of a global batch (the whole batch on one device)."""
    if not self.axis_name:
      return batch
    size = batch.shape[0] // self.num_shards
    return jax.lax.dynamic_slice_in_dim(batch, jax.lax.axis_index(self.axis_name) * size, size)

  def _standardize(self, x, plan):
    return (x - plan.mean) / plan.std

  def _loss_fn(self, params, step, x, labels, w, keys, total, hparams):
    """Σ_local w·ℓ / max(total, 1) + R(θ, t) / D; `total` is the global Σ w."""
    y_soft = jax.nn.one_hot(labels, self.num_classes)
    if self.augmenter is not None:
      aug_keys = jax.vmap(lambda k: jax.random.fold_in(k, _AUGMENT))(keys)
      x, y_soft = self.augmenter(aug_keys, x, y_soft, hparams)
    if self.targets_fn is not None:
      y_soft = self.targets_fn(y_soft, hparams)
    drop_keys = jax.vmap(lambda k: jax.random.fold_in(k, _DROPOUT))(keys)
    if self.train_apply_fn is None:
      logits = self.apply_fn(params, x, train=True, rng=drop_keys, hparams=hparams)
      new_vars = None
    else:   # batch statistics of this batch's real examples, over all devices
      logits, new_vars = self.train_apply_fn(params, x, rng=drop_keys, hparams=hparams,
                                             weight=w, axis_name=self.axis_name)
    loss_sum, correct_sum, count = _weighted_sums(logits, y_soft, labels, w)
    penalty = self.penalty_fn(params, step, hparams) / self.num_shards
    loss = loss_sum / jnp.maximum(total, 1.0) + penalty
    return loss, ((loss_sum, correct_sum, count), new_vars)

  def train_step(self, state: TrainState, plan: Plan, x_all, y_all, idx, w, example_key,
                 frozen):
    """One optimizer step on the batch `idx` (weights `w`); a no-op when inactive."""
    total = jnp.sum(w)
    idx, w = self._local(idx), self._local(w)
    x = self._standardize(x_all[idx].astype(jnp.float32), plan)
    keys = jax.vmap(lambda i: jax.random.fold_in(example_key, i))(idx)
    grad_fn = jax.grad(self._loss_fn, has_aux=True)
    grads, (sums, new_vars) = grad_fn(state.params, state.step, x, y_all[idx], w, keys, total,
                                      plan.hparams)
    grads, sums = self._psum((grads, sums))
    updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    if self.stat_mask is not None:   # batch statistics: the forward pass's, not the optimizer's
      params = jax.tree.map(lambda is_stat, p, v: v if is_stat else p, self.stat_mask, params,
                            new_vars)
    ema = state.ema if self.ema_fn is None else self.ema_fn(state.ema, params, plan.hparams)
    new = TrainState(step=state.step + 1, params=params, opt_state=opt_state, ema=ema)
    active = jnp.logical_and(sums[2] > 0, jnp.logical_not(frozen))
    on = active.astype(jnp.float32)
    lr = self.lr_fn(state.opt_state, state.step) if self.lr_fn is not None else jnp.zeros(())
    state = jax.tree.map(lambda n, o: jnp.where(active, n, o), new, state)
    return state, (*sums, on * optax.tree.norm(grads), on * lr, on)

  def epoch_batches(self, plan: Plan, epoch):
    """(idx, w) (num_batches, batch_size) in the epoch's shuffled order, and its example key."""
    key = epoch_key(plan.key, epoch)
    order = shuffled_order(jax.random.fold_in(key, _SHUFFLE), plan.train_idx, plan.train_weight)
    n = plan.train_idx.shape[0]
    num_batches = steps_per_epoch(n, self.batch_size)
    pad = num_batches * self.batch_size - n
    idx = jnp.pad(plan.train_idx[order], (0, pad)).reshape(num_batches, self.batch_size)
    w = jnp.pad(plan.train_weight[order], (0, pad)).reshape(num_batches, self.batch_size)
    return idx, w, jax.random.fold_in(key, _EXAMPLE)

  def train_zero(self):
    """The epoch's training sums before its first step (see `running_means`)."""
    return (jnp.zeros((), jnp.float32),) * 6

  def running_means(self, loss_sum, correct_sum, count, grad_norm_sum, lr_sum, steps):
    """Σ over the epoch's steps -> the weighted training means, and over its active steps the
    mean gradient norm ‖∇L‖₂ (all parameters, before clipping) and learning rate."""
    count, steps_ = jnp.maximum(count, 1.0), jnp.maximum(steps, 1.0)
    out = {"train_loss_running": loss_sum / count, "train_accuracy_running": correct_sum / count,
           "train_grad_norm": grad_norm_sum / steps_}
    if self.lr_fn is not None:
      out["learning_rate"] = lr_sum / steps_
    return out

  def train_epoch(self, state: TrainState, plan: Plan, x_all, y_all, epoch, frozen=False):
    """One epoch: shuffle, then `lax.scan` of `train_step` over all batches.

    Returns (state, {"train_loss_running", "train_accuracy_running"}): the weighted means
    over the epoch's training-mode predictions (dropout, augmentation on; the weights
    change between batches), as Keras reports them. Not a clean evaluation of any one model.
    """
    idx, w, example_key = self.epoch_batches(plan, epoch)

    def body(s, batch):
      return self.train_step(s, plan, x_all, y_all, batch[0], batch[1], example_key, frozen)

    state, sums = jax.lax.scan(body, state, (idx, w))
    return state, self.running_means(*(v.sum() for v in sums))

  def eval_batches(self, idx, weight):
    """(idx, weight) padded and reshaped to (num_batches, eval batch size)."""
    n = idx.shape[0]
    bs = -(-min(self.eval_batch_size, n) // self.num_shards) * self.num_shards
    num_batches = -(-n // bs)
    pad = num_batches * bs - n
    return (jnp.pad(idx, (0, pad)).reshape(num_batches, bs),
            jnp.pad(weight, (0, pad)).reshape(num_batches, bs))

  def eval_sums(self, params, plan: Plan, x_all, y_all, i, w):
    """One evaluation batch's additive sums: ((loss, correct, count), extra metrics')."""
    i, w = self._local(i), self._local(w)
    x = self._standardize(x_all[i].astype(jnp.float32), plan)
    logits = self.apply_fn(params, x, train=False, rng=None, hparams=plan.hparams)
    labels = y_all[i]
    sums = _weighted_sums(logits, jax.nn.one_hot(labels, self.num_classes), labels, w)
    extra = tuple(m.sums(logits, labels, w, self.num_classes) for m in self.extra_metrics)
    return self._psum((sums, extra))

  def eval_zero(self):
    zero = jnp.zeros((), jnp.float32)
    shapes = (jax.ShapeDtypeStruct((1, self.num_classes), jnp.float32),
              jax.ShapeDtypeStruct((1,), jnp.int32), jax.ShapeDtypeStruct((1,), jnp.float32))
    extra_zero = tuple(jax.tree.map(jnp.zeros_like, jax.eval_shape(
        lambda lg, lb, w, m=m: m.sums(lg, lb, w, self.num_classes), *shapes))
        for m in self.extra_metrics)
    return (zero, zero, zero), extra_zero

  def eval_finalize(self, totals):
    (loss_sum, correct_sum, count), extra = totals
    count = jnp.maximum(count, 1.0)
    out = {"loss": loss_sum / count, "accuracy": correct_sum / count}
    for m, sums in zip(self.extra_metrics, extra):
      out.update(m.finalize(sums, self.num_classes))
    return out

  def evaluate(self, params, plan: Plan, x_all, y_all, idx, weight):
    """Weighted mean loss and accuracy (evaluation mode) over `idx`, scanned in batches."""
    idx, weight = self.eval_batches(idx, weight)

    def body(carry, batch):
      sums = self.eval_sums(params, plan, x_all, y_all, *batch)
      return jax.tree.map(jnp.add, carry, sums), None

    totals, _ = jax.lax.scan(body, self.eval_zero(), (idx, weight))
    return self.eval_finalize(totals)

  def predict(self, params, plan: Plan, x_all, idx):
    """Logits (evaluation mode) for the examples `idx`, scanned in batches."""
    n = idx.shape[0]
    bs = min(self.eval_batch_size, n)
    num_batches = -(-n // bs)
    pad = num_batches * bs - n
    batches = jnp.pad(idx, (0, pad)).reshape(num_batches, bs)

    def body(_, i):
      x = self._standardize(x_all[i].astype(jnp.float32), plan)
      return None, self.apply_fn(params, x, train=False, rng=None, hparams=plan.hparams)

    _, logits = jax.lax.scan(body, None, batches)
    return logits.reshape(num_batches * bs, -1)[:n]


def make_epoch_fns(**kwargs):
  """(train_epoch, evaluate, predict): `Steps`'s scanned epoch and evaluation."""
  steps = Steps(**kwargs)
  return steps.train_epoch, steps.evaluate, steps.predict
