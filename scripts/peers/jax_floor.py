"""The k-fold benchmark task as the leanest hand-written JAX program: a floor, not a peer.

What an expert writes when only speed counts, in one file: the 5 folds vmapped, all 20 epochs
in ONE jit-compiled program (`lax.scan` over epochs, `lax.scan` over batches inside), validation
after every epoch, best-val-loss weights kept by a select, AdamW (optax) with decay on kernels
only. Dropout masks are drawn per batch from one key (the cheapest standard way; genjax draws
them per example so results do not depend on batch or device layout). Nothing else: no
checkpoints, metrics files, early-stopping logic, progress bar or configuration.

It bounds what any JAX implementation of the task can reach on this machine, with the same
compiler: scripts/bench reports it beside genjax and the peers, and checks the issue's target
ratios on it too. It needs optax, so it runs from genjax's venv:
    .venv/bin/python scripts/peers/jax_floor.py [--compilation_cache_dir=DIR]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def main():
  import argparse

  parser = argparse.ArgumentParser()
  parser.add_argument("--compilation_cache_dir", default="",
                      help="JAX's persistent compilation cache ('' = off: compiled cold)")
  args = parser.parse_args()
  import jax
  if args.compilation_cache_dir:
    jax.config.update("jax_compilation_cache_dir", args.compilation_cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  import jax.numpy as jnp
  import numpy as np
  import optax

  x, y = common.load_mnist1d()
  folds = common.folds(y)
  parts = [common.standardize(x[t], x[v]) for t, v in folds]
  n_train = min(len(t) for t, _ in folds)  # 3200 for every fold of this task
  n_val = min(len(v) for _, v in folds)
  xt = np.stack([p[0][:n_train] for p in parts])
  yt = np.stack([y[t][:n_train] for t, _ in folds]).astype(np.int32)
  xv = np.stack([p[1][:n_val] for p in parts])
  yv = np.stack([y[v][:n_val] for _, v in folds]).astype(np.int32)
  steps = n_train // common.BATCH_SIZE
  keep = 1.0 - common.DROPOUT

  def init(key):
    k0, k1, k2 = jax.random.split(key, 3)
    glorot = jax.nn.initializers.glorot_uniform()
    return {"w0": glorot(k0, (40, common.HIDDEN)), "b0": jnp.zeros(common.HIDDEN),
            "w1": glorot(k1, (common.HIDDEN, common.HIDDEN)), "b1": jnp.zeros(common.HIDDEN),
            "w2": glorot(k2, (common.HIDDEN, common.NUM_CLASSES)),
            "b2": jnp.zeros(common.NUM_CLASSES)}

  tx = optax.adamw(common.LEARNING_RATE, weight_decay=common.WEIGHT_DECAY,
                   mask=lambda p: {k: k.startswith("w") for k in p})

  def logits_fn(p, xb, key=None):
    h1 = jax.nn.relu(xb @ p["w0"] + p["b0"])
    if key is not None:  # both layers' masks in one draw (the layers have equal widths)
      masks = jax.random.bernoulli(key, keep, (2,) + h1.shape)
      h1 = jnp.where(masks[0], h1 / keep, 0.0)
    h = jax.nn.relu(h1 @ p["w1"] + p["b1"])
    if key is not None:
      h = jnp.where(masks[1], h / keep, 0.0)
    return (h1 + h) @ p["w2"] + p["b2"]

  def loss_fn(p, xb, yb, key):
    return optax.softmax_cross_entropy_with_integer_labels(logits_fn(p, xb, key), yb).mean()

  def train_fold(key, xt, yt, xv, yv):
    k_init, k_run = jax.random.split(key)
    params = init(k_init)
    state = (params, tx.init(params), params, jnp.inf)

    def epoch(state, k_epoch):
      params, opt, best, best_loss = state
      k_perm, k_drop = jax.random.split(k_epoch)
      order = jnp.argsort(jax.random.uniform(k_perm, (n_train,))).reshape(steps, common.BATCH_SIZE)

      def step(carry, inputs):
        p, o = carry
        idx, k = inputs
        g = jax.grad(loss_fn)(p, xt[idx], yt[idx], k)
        u, o = tx.update(g, o, p)
        return (optax.apply_updates(p, u), o), None

      (params, opt), _ = jax.lax.scan(step, (params, opt),
                                      (order, jax.random.split(k_drop, steps)))
      val_logits = logits_fn(params, xv)
      val_loss = optax.softmax_cross_entropy_with_integer_labels(val_logits, yv).mean()
      val_acc = jnp.mean(jnp.argmax(val_logits, -1) == yv)
      better = val_loss < best_loss
      best = jax.tree.map(lambda n, b: jnp.where(better, n, b), params, best)
      return (params, opt, best, jnp.minimum(val_loss, best_loss)), val_acc

    (_, _, best, _), _ = jax.lax.scan(epoch, state, jax.random.split(k_run, common.EPOCHS))
    return jnp.mean(jnp.argmax(logits_fn(best, xv), -1) == yv)

  run = jax.jit(jax.vmap(train_fold))
  keys = jax.random.split(jax.random.key(common.SEED), common.N_SPLITS)
  with common.Timer() as timer:
    accs = np.asarray(run(keys, xt, yt, xv, yv))
  common.emit("jax_floor", timer.seconds, accs, framework=f"jax {jax.__version__}")


if __name__ == "__main__":
  main()
