"""genjax's side of `scripts/bench kfold`: the 5-fold MNIST-1D task, folds vmapped or one by one.

    .venv/bin/python scripts/bench_genjax_kfold.py --mode=vmapped|sequential

The task (identical for every contender): MNIST-1D, StratifiedKFold(5, shuffle, seed 0) over the
4000 training examples, per-fold standardization, MLP 40-100-100-10 with residual, dropout 0.2,
AdamW lr 1e-3 with decoupled weight decay 1e-4 on kernels, batch 100, 20 epochs, validation after
every epoch, best weights restored (early stopping with patience 20 never fires, as in the Keras
peer). Checkpointing is off, as in the peers. Prints one JSON line last; `wall_s` runs from data
ready to every fold trained and validated (compilation included).
"""

import gc

gc.disable()  # start-up with the GC paused, as `genjax train` runs (genjax/main.py run())

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from genjax.platform import runtime
from genjax.run import setup as experiment  # noqa: E402


def task_config():
  """experiments/mnist1d_kfold.py for the benchmark: 20 epochs, no refit, patience 20."""
  spec = importlib.util.spec_from_file_location(
      "mnist1d_kfold", os.path.join(ROOT, "experiments", "mnist1d_kfold.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  config.seed = 0
  config.num_epochs = 20
  config.early_stopping.patience = 20      # never fires in 20 epochs: every fold runs them all
  config.early_stopping.restore_best_weights = True
  config.cv.refit = False
  config.checkpoint.enabled = False
  return config


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--mode", choices=("vmapped", "sequential"), default="vmapped")
  parser.add_argument("--compilation_cache_dir", default="",
                      help="persistent XLA cache ('' = off: every program compiled cold)")
  parser.add_argument("--cpu_devices", type=int, default=0,
                      help="CPU devices, as `genjax train --cpu_devices` (0 = one per core)")
  args = parser.parse_args()
  runtime.use_cpu_devices(runtime.cpu_device_count(args.cpu_devices, explicit=True,
                                                   multiprocess=False))
  runtime.enable_compilation_cache(args.compilation_cache_dir)
  config = task_config()
  workdir = tempfile.mkdtemp(prefix="genjax_bench_")
  s = experiment.prepare(config, workdir)
  plans = experiment.fold_plans(config, s.splits.train_y)
  experiment.validate_plans(s, plans)
  jax.block_until_ready(s.x_train)
  groups = [plans] if args.mode == "vmapped" else [[p] for p in plans]

  t0 = time.perf_counter()
  accuracies = []
  for i, group in enumerate(groups):
    sub = os.path.join(workdir, str(i))
    os.makedirs(sub)
    program, t = experiment.train(s, group, sub, resume=False, progress=False)
    # Validation accuracy of the restored (best-epoch) weights: the epoch's row holds it.
    for k, p in enumerate(group):
      rows = [r for r in t.rows if r.get("fold", p.member_id) == p.member_id]
      accuracies.append(next(r["val_accuracy"] for r in rows
                             if r["epoch"] == int(t.selected_epoch[k])))
  wall = time.perf_counter() - t0
  cache = ", compile cache" if args.compilation_cache_dir else ""
  print(json.dumps({"name": f"genjax ({args.mode} folds{cache})", "wall_s": wall,
                    "mean_val_accuracy": float(np.mean(accuracies)),
                    "fold_val_accuracy": accuracies, "epochs": config.num_epochs,
                    "folds": len(plans), "devices": jax.device_count(),
                    "parallel": program.placement}))
  return 0


if __name__ == "__main__":
  sys.exit(main())
