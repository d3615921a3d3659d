"""`scripts/bench sweep`: one vmapped `genjax sweep` against separate `genjax train` processes.

The work: a 16-point grid, L2 strength {0, 1e-4, 1e-3, 1e-2} × dropout {0, 0.1, 0.2, 0.3},
each point 5-fold stratified cross-validation of the MNIST-1D reference MLP, 20 epochs
(experiments/mnist1d_kfold.py without refit, patience 20 so every member runs all epochs).
(a) one `genjax sweep` process: 80 members in one compiled program; (b) 16 `genjax train`
processes, one per point, one after another (each vmaps its own 5 folds). Both run genjax's
defaults: the CPU's cores as devices (`--cpu_devices`), so the sweep's 80 members split over
them and each 5-fold process runs its folds padded over them (3 + 3 members on 2 cores). The
persistent compilation cache is off in both, so every process compiles cold; the dataset is
prepared once before either is timed (the first run on a fresh machine builds MNIST-1D's TFDS
files). Writes the
`## Sweep (scripts/bench sweep)` section of BENCHMARKS.md with the ratio from this run.
"""

import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_kfold import replace_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Sweep (scripts/bench sweep)"
L2 = ["0", "1e-4", "1e-3", "1e-2"]
DROPOUT = ["0", "0.1", "0.2", "0.3"]
COMMON = ["--config=experiments/mnist1d_kfold.py", "--config.num_epochs=20",
          "--config.cv.refit=false", "--config.early_stopping.patience=20",
          "--compilation_cache_dir=", "--progress=false"]


def children_cpu() -> float:
  usage = resource.getrusage(resource.RUSAGE_CHILDREN)
  return usage.ru_utime + usage.ru_stime


def genjax(*args):
  t0 = time.perf_counter()
  out = subprocess.run([str(ROOT / ".venv/bin/genjax"), *args], cwd=ROOT, capture_output=True,
                       text=True)
  if out.returncode:
    sys.exit(f"bench sweep: genjax {' '.join(args)} failed:\n{out.stderr[-2000:]}")
  return time.perf_counter() - t0




def where(layout: dict) -> str:
  """results.json's `parallel` in words."""
  if layout["axis"] == "single":
    return "one device"
  return f"{layout['axis']} over {layout['devices']} CPU devices"


def main():
  import argparse
  argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args()  # --help; no options
  work = Path(tempfile.mkdtemp(prefix="genjax_bench_sweep_"))
  print("== preparing the dataset (untimed)", flush=True)
  genjax("train", *COMMON, f"--workdir={work / 'prepare'}", "--config.num_epochs=1",
         "--config.cv.method=none")
  load_before, started = os.getloadavg(), datetime.datetime.now(datetime.timezone.utc)
  cpu0 = children_cpu()
  sweep_s = genjax("sweep", *COMMON, f"--workdir={work / 'sweep'}",
                   f"--sweep=penalties.l2.strength={','.join(L2)}",
                   f"--sweep=model.dropout={','.join(DROPOUT)}")
  record = json.load(open(work / "sweep" / "sweep.json"))
  rows = {(r["point"]["penalties.l2.strength"], r["point"]["model.dropout"]): r
          for r in record["rows"]}
  layouts = {"sweep": record["parallel"]}
  sweep_cpu, cpu0 = children_cpu() - cpu0, children_cpu()
  train_s, diffs = 0.0, []
  for l2 in L2:
    for p in DROPOUT:
      wd = work / f"train_l2={l2}_dropout={p}"
      train_s += genjax("train", *COMMON, f"--workdir={wd}",
                        f"--config.penalties.l2.strength={l2}", f"--config.model.dropout={p}")
      res = json.load(open(wd / "results.json"))
      layouts["train"] = res["parallel"]
      diffs.append(abs(res["cv"]["val_accuracy"]["mean"]
                       - rows[(float(l2), float(p))]["val_accuracy_mean"]))
  train_cpu, load_after = children_cpu() - cpu0, os.getloadavg()
  cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
              if l.startswith("model name")), platform.machine())
  section = "\n".join([
      SECTION, "",
      f"Run {started:%Y-%m-%d %H:%M} UTC on {cpu} ({os.cpu_count()} cores), "
      f"`scripts/bench sweep`: 16 points (L2 strength {{{', '.join(L2)}}} × dropout "
      f"{{{', '.join(DROPOUT)}}}) × 5 folds, MNIST-1D reference MLP, 20 epochs, cold compiles. "
      f"Load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min).", "",
      "| contender | wall time | CPU (user+sys) | ratio |", "|---|---:|---:|---:|",
      f"| one `genjax sweep` (80 members, one program; {where(layouts['sweep'])}) "
      f"| {sweep_s:.1f} s | {sweep_cpu:.1f} s | 1.00 |",
      f"| 16 `genjax train` processes, one per point ({where(layouts['train'])}) "
      f"| {train_s:.1f} s | {train_cpu:.1f} s | {train_s / sweep_s:.2f} |",
      "",
      f"Speed-up of the vmapped sweep: **{train_s / sweep_s:.1f}×** (target ≥ 8×). Same work: the "
      f"largest difference between a point's mean validation accuracy in the sweep and in its "
      f"own process is {100 * max(diffs):.2f} points.", ""])
  print(section)
  replace_section(ROOT / "BENCHMARKS.md", section)
  return 0


if __name__ == "__main__":
  sys.exit(main())
