"""How XLA:CPU runs the 2D CNN's training step, per convolution, XLA option and member layout.

    .venv/bin/python scripts/profile_conv.py [--steps 20] [--members 5] [--conv xla,patches]

One gradient step of `cnn2d` (conv32-avgpool-conv64-avgpool-dense256, dropout 0.2, Adam,
batch 128 of 28×28×1 images; random data: only shapes matter) is timed as
- `alone`: the jitted step, called from the host (what `epoch_loop=steps` runs);
- `in scan`: the same step as the body of a `lax.scan` over --steps steps;
- `vmap M`: M members' steps vmapped (per-member kernels: a grouped convolution);
- `unrolled M`: M members' steps side by side in one program (a Python loop at trace time);
- `vmap M in scan`: the M vmapped steps as the body of a `lax.scan` (genjax's scanned epoch);
for each convolution (`model.conv`: "xla", XLA's own; "patches", `genjax.models.patch_conv`),
under each XLA flag set of FLAG_SETS, each in its own process (XLA reads XLA_FLAGS once).
Prints ms per step and per member step (median of 5 timings of --steps steps, after a
compiling call), one row per flag set and layout.
"""

import argparse
import json
import os
import subprocess
import sys

FLAG_SETS = {
    "default": "",
    "xnnpack convolutions": "--xla_cpu_experimental_xnn_fusion_type="
                            "LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION",
    "ynnpack convolutions": "--xla_cpu_experimental_ynn_fusion_type="
                            "LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION",
    "onednn convolutions": "--xla_cpu_experimental_onednn_fusion_type="
                           "LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION",
}


def measure(steps: int, members: int, conv: str) -> dict:
  import time

  import jax
  import jax.numpy as jnp
  import numpy as np
  import optax

  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  sys.path.insert(0, root)
  from genjax import models

  cfg = models.default_config()
  cfg.name, cfg.dropout, cfg.conv = "cnn2d", 0.2, conv
  model = models.create(cfg, (28, 28, 1), 10)
  tx = optax.adam(1e-3)
  batch = 128

  def init(key):
    params = model.init(key)
    return params, tx.init(params)

  def step(state, x, y, key):
    params, opt = state

    def loss(p):
      keys = jax.random.split(key, batch)
      logits = model.apply(p, x, train=True, rng=keys)
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    g = jax.grad(loss)(params)
    updates, opt = tx.update(g, opt, params)
    return optax.apply_updates(params, updates), opt

  x = jax.random.normal(jax.random.key(1), (steps, batch, 28, 28, 1))
  y = jax.random.randint(jax.random.key(2), (steps, batch), 0, 10)
  keys = jax.random.split(jax.random.key(3), steps)

  def timed(fn, *args, per=1):
    out = fn(*args)
    jax.block_until_ready(out)
    ts = []
    for _ in range(5):
      t0 = time.perf_counter()
      jax.block_until_ready(fn(*args))
      ts.append(time.perf_counter() - t0)
    return 1000 * float(np.median(ts)) / per

  one = init(jax.random.key(0))
  alone = jax.jit(step)

  def host_loop(state):
    for i in range(steps):
      state = alone(state, x[i], y[i], keys[i])
    return state

  scan = jax.jit(lambda s: jax.lax.scan(lambda s, b: (step(s, *b), None), s, (x, y, keys))[0])
  many = jax.vmap(init)(jax.random.split(jax.random.key(0), members))
  vmapped = jax.jit(jax.vmap(step, in_axes=(0, None, None, None)))

  def vmap_loop(state):
    for i in range(steps):
      state = vmapped(state, x[i], y[i], keys[i])
    return state

  def side_by_side(states, x, y, key):
    outs = [step(jax.tree.map(lambda a: a[m], states), x, y, key) for m in range(members)]
    return jax.tree.map(lambda *a: jnp.stack(a), *outs)

  unrolled = jax.jit(side_by_side)

  def unrolled_loop(state):
    for i in range(steps):
      state = unrolled(state, x[i], y[i], keys[i])
    return state

  vmap_scan = jax.jit(lambda s: jax.lax.scan(
      lambda s, b: (jax.vmap(step, in_axes=(0, None, None, None))(s, *b), None), s,
      (x, y, keys))[0])
  return {"alone": timed(host_loop, one, per=steps), "in scan": timed(scan, one, per=steps),
          f"vmap {members}": timed(vmap_loop, many, per=steps * members),
          f"unrolled {members}": timed(unrolled_loop, many, per=steps * members),
          f"vmap {members} in scan": timed(vmap_scan, many, per=steps * members)}


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--members", type=int, default=5)
  parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("--only", default="", help="comma-separated flag-set names")
  parser.add_argument("--conv", default="xla,patches", help="comma-separated model.conv values")
  args = parser.parse_args()
  if args.child:
    print(json.dumps(measure(args.steps, args.members, args.conv)))
    return
  names = args.only.split(",") if args.only else list(FLAG_SETS)
  print("| convolution | XLA flags | layout | ms per member step |\n|---|---|---|---:|")
  for conv in args.conv.split(","):
    for name in names:
      env = {**os.environ, "XLA_FLAGS": FLAG_SETS[name]}
      run = subprocess.run([sys.executable, __file__, "--child", f"--steps={args.steps}",
                            f"--members={args.members}", f"--conv={conv}"], env=env,
                           capture_output=True, text=True)
      if run.returncode:
        print(f"| {conv} | {name} | failed: {run.stderr.strip().splitlines()[-1][:120]} | |")
        continue
      for layout, ms in json.loads(run.stdout.strip().splitlines()[-1]).items():
        print(f"| {conv} | {name} | {layout} | {ms:.1f} |", flush=True)


if __name__ == "__main__":
  main()
