"""What dropout randomness costs in the K-fold benchmark's MLP epoch, per mask generator.

    .venv/bin/python scripts/profile_dropout.py

The task is `scripts/bench kfold`'s (5 folds vmapped, MLP 40-100-100-10, dropout 0.2,
batch 100). Each generator below replaces `genjax.models.layers.keep_mask` before its
program is traced; the programs are compiled first, then timed in turns (ROUNDS × EPOCHS
epochs each, the fastest round kept) in process CPU time, steadier than wall time on a shared
machine. Prints ms per epoch (training and validation) and dropout's share of it:
1 − (no dropout) / (with dropout).

- `threefry_f32`: jax.random.bernoulli per example and layer (one threefry block and a
  32-bit float per unit): genjax before this change.
- `threefry_16bit`: threefry blocks split into four 16-bit lanes (a quarter of the blocks).
- `fmix_16bit`: genjax's `keep_mask` (one threefry draw per example and layer, MurmurHash3's
  finalizer per pair of units).
"""

import os
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.random import threefry2x32_p

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_genjax_kfold import task_config  # noqa: E402

from genjax.run import setup as experiment  # noqa: E402
from genjax.models import layers  # noqa: E402
from genjax.train import program  # noqa: E402

ROUNDS, EPOCHS = 8, 5


def threefry_f32(key, shape, keep):
  return jax.random.bernoulli(key, keep, shape)


def threefry_16bit(key, shape, keep):
  n = int(np.prod(shape))
  blocks = -(-n // 4)
  k0, k1 = jax.random.key_data(key)
  c = jnp.arange(blocks, dtype=jnp.uint32)
  b0, b1 = threefry2x32_p.bind(k0, k1, c, c + np.uint32(blocks))
  lanes = jnp.concatenate([b0 & np.uint32(0xFFFF), b0 >> 16, b1 & np.uint32(0xFFFF), b1 >> 16])
  return (lanes[:n] < layers.keep_threshold(keep)).reshape(shape)


GENERATORS = {"threefry_f32": threefry_f32, "threefry_16bit": threefry_16bit,
              "fmix_16bit": layers.keep_mask, "no dropout": layers.keep_mask}


def compiled(name, generator):
  """(program, state after one epoch) with `generator` traced into the program."""
  config = task_config()
  if name == "no dropout":
    config.model.dropout = 0.0
  s = experiment.prepare(config, tempfile.mkdtemp())
  plans = experiment.fold_plans(config, s.splits.train_y)
  original, layers.keep_mask = layers.keep_mask, generator
  try:
    p = program.build_program(s, plans)
    state = p.start()
    state = jax.block_until_ready(p.run_epoch(state, 0)[0])
  finally:
    layers.keep_mask = original
  return p, state


def epoch_ms(generators: dict) -> dict:
  """{name: fastest ms per epoch} for each generator, timed in turns."""
  runs = {name: list(compiled(name, g)) for name, g in generators.items()}
  best = dict.fromkeys(runs, float("inf"))
  for r in range(ROUNDS):
    for name, run in runs.items():
      p, state = run
      t0 = time.process_time()
      for e in range(EPOCHS):
        state = p.run_epoch(state, 1 + r * EPOCHS + e)[0]
      jax.block_until_ready(state)
      best[name] = min(best[name], 1000 * (time.process_time() - t0) / EPOCHS)
      run[1] = state
  return best


def main():
  ms = epoch_ms(GENERATORS)
  base = ms["no dropout"]
  for name, t in ms.items():
    share = "" if name == "no dropout" else f"  dropout {100 * (1 - base / t):4.0f}% of the epoch"
    print(f"{name:15s} {t:6.1f} ms per epoch (5 folds){share}")


if __name__ == "__main__":
  main()
