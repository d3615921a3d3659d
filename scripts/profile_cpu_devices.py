"""How the member-vmapped MLP epoch uses this CPU's cores, per CPU device count and layout.

    .venv/bin/python scripts/profile_cpu_devices.py [--task mlp|cnn] [--members 5,10,80]
        [--devices 1,2]

`--task mlp` (default) is `scripts/bench kfold`'s epoch (MNIST-1D MLP 40-100-100-10, dropout
0.2, batch 100, training and validation); `--task cnn` is `scripts/bench cnn`'s (Fashion-MNIST
`cnn2d`, batch 128, convolutions as patches) on each fold's first 2560 training and 1000
validation images. The 5 fold plans are repeated to M members. Each device count runs
in its own process (the count is fixed when JAX starts: `jax_num_cpu_devices`, what
`genjax --cpu_devices` sets), with genjax's layout for it (`parallel.axis=auto`: ⌈M / D⌉
members per device on the fewest devices that reach it, with padding members where they do
not divide, for models without convolutions; see genjax/train/parallel.py) and, for counts
that do not divide M, the data-parallel layout. Prints the fastest of 3 rounds of 3 epochs, after a first epoch
that compiles: wall ms per epoch, and process CPU time per wall time (the cores kept busy).
"""

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = """
import json, os, sys, tempfile, time
import jax
jax.config.update("jax_num_cpu_devices", {devices})
sys.path.insert(0, {scripts!r})
from bench_genjax_{task} import task_config
from genjax.run import setup as experiment
from genjax.train import program
from genjax.train.members import MemberPlan
out = []
for m, axis in {cases!r}:
  config = task_config()
  config.parallel.axis = axis
  s = experiment.prepare(config, tempfile.mkdtemp())
  plans = experiment.fold_plans(config, s.splits.train_y)
  if {task!r} == "cnn":
    plans = [MemberPlan(p.member_id, p.train_idx[:2560], p.val_idx[:1000]) for p in plans]
  p = program.build_program(s, (plans * m)[:m])
  state = jax.block_until_ready(p.run_epoch(p.start(), 0)[0])
  best = None
  for r in range(3):
    t0, c0 = time.perf_counter(), time.process_time()
    for e in range(3):
      state = p.run_epoch(state, 1 + 3 * r + e)[0]
    jax.block_until_ready(state)
    wall, cpu = (time.perf_counter() - t0) / 3, (time.process_time() - c0) / 3
    best = min(best or (wall, cpu), (wall, cpu))
  out.append([m, p.placement["axis"], p.placement["devices"], p.padding, 1000 * best[0],
              best[1] / best[0]])
print(json.dumps(out))
"""


def run(task: str, devices: int, cases: list) -> list:
  code = CHILD.format(devices=devices, scripts=os.path.join(ROOT, "scripts"), cases=cases,
                      task={"mlp": "kfold", "cnn": "cnn"}[task])
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                       text=True)
  if out.returncode:
    sys.exit(f"profile_cpu_devices: {devices} device(s) failed:\n{out.stderr[-2000:]}")
  return json.loads(out.stdout.strip().splitlines()[-1])


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--task", choices=("mlp", "cnn"), default="mlp")
  parser.add_argument("--members", default="5,10,80")
  parser.add_argument("--devices", default="1,2")
  args = parser.parse_args()
  members = [int(m) for m in args.members.split(",")]
  print(f"{'members':>7} {'CPU devices':>11} {'layout':>30} {'ms/epoch':>9} {'per member':>10} "
        f"{'cores busy':>10}")
  for d in [int(x) for x in args.devices.split(",")]:
    cases = [(m, "auto") for m in members]
    cases += [(m, "data") for m in members if d > 1 and m % d and 100 % d == 0
              and args.task == "mlp"]
    for m, axis, used, padding, ms, busy in run(args.task, d, cases):
      layout = "one device" if axis == "single" else f"{axis} over {used}"
      layout += f" (+{padding} padding)" if padding else ""
      print(f"{m:7d} {d:11d} {layout:>30} {ms:9.1f} {ms / m:10.2f} {busy:10.2f}", flush=True)


if __name__ == "__main__":
  main()
