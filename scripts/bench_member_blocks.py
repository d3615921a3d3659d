"""What member blocks (`parallel.member_block`) cost: the MNIST-1D MLP K-fold epoch
(`scripts/bench kfold`'s task, 5 fold plans repeated to M members) in blocks of B members
against one block per device ("all": every member of a device vmapped as one program, as genjax
compiled before blocks, whose bits changed with the member count), on one CPU device and on the host's cores made devices side by side.

    scripts/bench blocks            # or: .venv/bin/python scripts/bench_member_blocks.py
        [--members 1,5,20,60] [--blocks 1,4,8,all] [--devices 1,2] [--output FILE]

Each device count runs in its own process (`jax_num_cpu_devices` is fixed when JAX starts).
Per case: the fastest of 3 rounds of 3 epochs after a first epoch that compiles, wall ms per
epoch. Writes the table as JSON to --output (default BENCHMARKS.member_blocks.json) and
prints it; BENCHMARKS.md quotes that file.
"""

import argparse
import json
import os
import platform
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = """
import json, sys, tempfile, time
import jax
jax.config.update("jax_num_cpu_devices", {devices})
sys.path.insert(0, {scripts!r})
from bench_genjax_kfold import task_config
from genjax.run import setup as experiment
from genjax.train import program
out = []
for m, block in {cases!r}:
  config = task_config()
  # "all": one block per device, i.e. every member of a device vmapped as one program (before
  # blocks, the program's bits changed with that count).
  config.parallel.member_block = -(-m // {devices}) if block == "all" else int(block)
  s = experiment.prepare(config, tempfile.mkdtemp())
  plans = experiment.fold_plans(config, s.splits.train_y)
  plans = [p.__class__(**{{**p.__dict__, "member_id": i}}) for i, p in enumerate((plans * m)[:m])]
  p = program.build_program(s, plans)
  state = jax.block_until_ready(p.run_epoch(p.start(), 0)[0])
  best = None
  for r in range(3):
    t0 = time.perf_counter()
    for e in range(3):
      state = p.run_epoch(state, 1 + 3 * r + e)[0]
    jax.block_until_ready(state)
    wall = (time.perf_counter() - t0) / 3
    best = wall if best is None else min(best, wall)
  out.append({{"members": m, "block": block, "devices": p.placement["devices"],
              "padding": p.padding, "ms_per_epoch": round(1000 * best, 1)}})
print(json.dumps(out))
"""


def run(devices: int, cases: list) -> list:
  code = CHILD.format(devices=devices, scripts=os.path.join(ROOT, "scripts"), cases=cases)
  out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       check=False)
  if out.returncode:
    sys.exit(out.stderr[-3000:])
  return json.loads(out.stdout.strip().splitlines()[-1])


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--members", default="1,5,20,60")
  parser.add_argument("--blocks", default="1,4,8,all")
  parser.add_argument("--devices", default="1,2")
  parser.add_argument("--output", default=os.path.join(ROOT, "BENCHMARKS.member_blocks.json"))
  args = parser.parse_args()
  members = [int(m) for m in args.members.split(",")]
  blocks = args.blocks.split(",")
  rows = []
  for d in (int(x) for x in args.devices.split(",")):
    rows += [dict(r, cpu_devices=d) for r in run(d, [(m, b) for m in members for b in blocks])]
  for r in rows:
    one = next(x for x in rows if x["members"] == r["members"] and x["block"] == "all"
               and x["cpu_devices"] == r["cpu_devices"])
    r["vs_one_block"] = round(r["ms_per_epoch"] / one["ms_per_epoch"], 2)
  record = {"machine": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "rows": rows}
  with open(args.output, "w") as f:
    json.dump(record, f, indent=1)
  print(f"{'cpu devices':>11} {'members':>7} {'block':>5} {'padding':>7} {'ms/epoch':>9} "
        f"{'vs one block':>12}")
  for r in rows:
    print(f"{r['cpu_devices']:>11} {r['members']:>7} {r['block']:>5} {r['padding']:>7} "
          f"{r['ms_per_epoch']:>9} {r['vs_one_block']:>12}")


if __name__ == "__main__":
  main()
