"""GPU check: the default K-fold experiment and the K-fold benchmark's genjax part on an accelerator.

    scripts/gpu_check [OUT_DIR]

Prints and writes OUT_DIR/gpu_check.json: the device, the default K-fold
experiment's wall time and accuracy, and for the benchmark task (5-fold
MNIST-1D MLP, 20 epochs) the time of 5 vmapped folds against 1 fold alone, in
throughput (training examples/s, folds/s), with and without compilation.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

from bench_genjax_kfold import task_config  # noqa: E402

from genjax.platform import runtime
from genjax.run import setup as experiment  # noqa: E402


def timed_train(s, plans, epochs):
  """(seconds with compilation, seconds of an identical run whose programs come from the
  persistent compilation cache) of train_members."""
  s.config.num_epochs = epochs
  out = []
  for _ in range(2):
    workdir = tempfile.mkdtemp()
    t0 = time.perf_counter()
    t = experiment.train(s, plans, workdir, resume=False, progress=False)[1]
    jax.block_until_ready(t.selected_params)
    out.append(time.perf_counter() - t0)
  return out


def main():
  out_dir = sys.argv[1] if len(sys.argv) > 1 else "."
  os.makedirs(out_dir, exist_ok=True)
  dev = jax.devices()[0]
  report = {"device": f"{dev.platform}: {dev.device_kind}", "device_count": jax.device_count(),
            "jax": jax.__version__}
  print(report, flush=True)

  # 1. The default K-fold experiment, as a user runs it (fresh process, cold compile).
  workdir = tempfile.mkdtemp()
  t0 = time.perf_counter()
  proc = subprocess.run([sys.executable, "-m", "genjax.main", "train",
                         "--config=experiments/mnist1d_kfold.py", f"--workdir={workdir}",
                         "--progress=false", "--compilation_cache_dir="],
                        cwd=ROOT, capture_output=True, text=True)
  print(proc.stdout[-1500:], proc.stderr[-1500:], flush=True)
  results = json.load(open(os.path.join(workdir, "results.json")))
  report["default_kfold_experiment"] = {
      "process_s": time.perf_counter() - t0, "wall_time_s": results["wall_time_s"],
      "epochs_run": results["epochs_run"], "val_accuracy": results["cv"]["val_accuracy"],
      "test_ensemble_accuracy": results["test"]["accuracy"],
      "test_refit_accuracy": results.get("test_refit", {}).get("accuracy")}

  # 2. The benchmark task: 5 vmapped folds against 1 fold alone.
  runtime.enable_compilation_cache(tempfile.mkdtemp())
  config = task_config()
  s = experiment.prepare(config, tempfile.mkdtemp())
  plans = experiment.fold_plans(config, s.splits.train_y)
  epochs = config.num_epochs
  one_cold, one_warm = timed_train(s, plans[:1], epochs)
  five_cold, five_warm = timed_train(s, plans, epochs)
  n = sum(len(p.train_idx) for p in plans)
  report["bench_task"] = {
      "epochs": epochs,
      "one_fold_s": {"with_compile": one_cold, "cached_compile": one_warm},
      "five_folds_vmapped_s": {"with_compile": five_cold, "cached_compile": five_warm},
      "ratio_five_to_one": {"with_compile": five_cold / one_cold, "cached_compile": five_warm / one_warm},
      "train_examples_per_s_five_folds": n * epochs / five_warm,
      "train_examples_per_s_one_fold": len(plans[0].train_idx) * epochs / one_warm,
      "folds_per_s": 5 / five_warm,
  }
  # 3. scripts/bench's genjax contenders, each a fresh process as in scripts/bench.
  for mode in ("vmapped", "sequential"):
    proc = subprocess.run([sys.executable, "scripts/bench_genjax_kfold.py", f"--mode={mode}"],
                          cwd=ROOT, capture_output=True, text=True)
    line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-800:]
    report[f"bench_genjax_{mode}"] = json.loads(line) if line.startswith("{") else line
  # 4. Mixed precision: one member's step in float32 and bfloat16 (scripts/profile_precision.py).
  proc = subprocess.run([sys.executable, "scripts/profile_precision.py"], cwd=ROOT,
                        capture_output=True, text=True)
  report["profile_precision"] = (proc.stdout or proc.stderr[-800:]).strip().splitlines()
  print(json.dumps(report, indent=2), flush=True)
  with open(os.path.join(out_dir, "gpu_check.json"), "w") as f:
    json.dump(report, f, indent=2)
  return 0


if __name__ == "__main__":
  sys.exit(main())
