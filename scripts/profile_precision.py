"""One member's training step in float32 and in bfloat16 (`config.precision`), per model.

    .venv/bin/python scripts/profile_precision.py [--steps 10]

The jitted step (gradient with dropout 0.2, Adam) of the MNIST-1D MLP (batch 100 of 40
features) and of `cnn2d` (batch 128 of 28×28×1 images), random data: only shapes matter.
Prints CPU ms per step (process time, all threads: robust to other load; median of 5 timings
of --steps steps after a compiling call) for each
precision, the ratio bfloat16 ÷ float32, and whether this device has native bfloat16
(`genjax.models.precision.native_bfloat16`), which is what genjax's refusal rests on.
"""

import argparse
import os
import sys
import time

import jax
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from genjax import models  # noqa: E402
from genjax.models import precision  # noqa: E402

MODELS = {"mlp": ((40,), 100), "cnn2d": ((28, 28, 1), 128)}


def step_ms(name: str, prec: str, steps: int) -> float:
  shape, batch = MODELS[name]
  cfg = models.default_config()
  cfg.name, cfg.dropout = name, 0.2
  model = models.create(cfg, shape, 10, precision=prec)
  tx = optax.adam(1e-3)

  def step(state, xy_key):
    (params, opt), (x, y, key) = state, xy_key

    def loss(p):
      logits = model.apply(p, x, train=True, rng=jax.random.split(key, batch))
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    updates, opt = tx.update(jax.grad(loss)(params), opt, params)
    return (optax.apply_updates(params, updates), opt), None

  params = model.init(jax.random.key(0))
  state = (params, tx.init(params))
  x = jax.random.normal(jax.random.key(1), (steps, batch, *shape))
  y = jax.random.randint(jax.random.key(2), (steps, batch), 0, 10)
  keys = jax.random.split(jax.random.key(3), steps)
  one = jax.jit(step)

  def run():
    s = state
    for i in range(steps):
      s, _ = one(s, (x[i], y[i], keys[i]))
    return jax.block_until_ready(s)

  run()   # compiles
  times = []
  for _ in range(5):
    t0 = time.process_time()
    run()
    times.append(time.process_time() - t0)
  return 1000 * float(np.median(times)) / steps


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=10)
  args = parser.parse_args()
  device = jax.devices()[0]
  native, what = precision.native_bfloat16(device)
  print(f"device: {what}; native bfloat16: {native}")
  print("| model | float32 CPU ms/step | bfloat16 CPU ms/step | bfloat16 ÷ float32 |")
  print("|---|---:|---:|---:|")
  for name in MODELS:
    f32, bf16 = step_ms(name, "float32", args.steps), step_ms(name, "bfloat16", args.steps)
    print(f"| {name} | {f32:.2f} | {bf16:.2f} | {bf16 / f32:.2f}× |", flush=True)


if __name__ == "__main__":
  main()
