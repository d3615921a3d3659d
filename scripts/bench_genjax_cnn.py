"""genjax's side of `scripts/bench cnn`: the 5-fold Fashion-MNIST CNN, folds vmapped or one by one.

    .venv/bin/python scripts/bench_genjax_cnn.py --mode=vmapped|sequential

The task (scripts/peers/cnn_common.py): experiments/fashion_mnist_regularization.py with
`cnn2d` (dropout 0.2), Adam 1e-3, batch 128, 5-fold stratified CV over the 60000 training
images, EPOCHS epochs, validation after every epoch, no early stopping, no checkpoints, no refit.
`epoch_loop=auto`, `model.conv=auto` (on CPU: convolutions as patches, the epoch one scan,
members vmapped; `genjax.models.patch_conv`). Prints one
JSON line last; `wall_s` runs from data ready to every fold trained and validated (compilation
included); `epoch_s` holds each program's epoch times (vmapped: one program of 5 folds).
"""

import gc

gc.disable()  # start-up with the GC paused, as `genjax train` runs (genjax/main.py run())

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts", "peers"))

import cnn_common as common  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402

from genjax.run import setup as experiment  # noqa: E402
from genjax.train import callbacks  # noqa: E402
from genjax.train.fit import fit  # noqa: E402
from genjax.train.program import build_program  # noqa: E402


def task_config():
  spec = importlib.util.spec_from_file_location(
      "fashion", os.path.join(ROOT, "experiments", "fashion_mnist_regularization.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  config.seed = 0
  config.model.name = "cnn2d"
  config.model.dropout = common.DROPOUT
  config.num_epochs = common.EPOCHS
  config.early_stopping.enabled = False
  config.cv.refit = False
  config.checkpoint.enabled = False
  return config


class EpochClock(callbacks.Callback):
  """A callback: the wall time of each epoch, from training start to its metrics on the host."""

  def __init__(self):
    self.times = []

  def on_train_start(self, info):
    self._last = time.perf_counter()

  def on_epoch_end(self, info, logs):
    now = time.perf_counter()
    self.times.append(now - self._last)
    self._last = now


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--mode", choices=("vmapped", "sequential"), default="vmapped")
  args = parser.parse_args()
  config = task_config()
  s = experiment.prepare(config, None)
  plans = experiment.fold_plans(config, s.splits.train_y)
  experiment.validate_plans(s, plans)
  _, y = common.load_fashion_mnist()
  if not (np.array_equal(np.asarray(s.splits.train_y), y) and all(
      np.array_equal(np.sort(p.val_idx), np.sort(v)) for p, (_, v) in zip(plans, common.folds(y)))):
    sys.exit("error: genjax's images or folds differ from the peers' (scripts/peers/cnn_common.py)")
  jax.block_until_ready(s.x_train)
  groups = [plans] if args.mode == "vmapped" else [[p] for p in plans]
  t0 = time.perf_counter()
  accuracies, epoch_s, loops = [], [], set()
  for group in groups:
    program = build_program(s, group)
    loops.add(f"{program.epoch_loop}, {program.member_layout}, {program.convolutions} convs")
    clock = EpochClock()
    fitted = fit(program, [clock], num_epochs=config.num_epochs)
    epoch_s.append(clock.times)
    last = config.num_epochs - 1
    for k, p in enumerate(group):
      rows = [r for r in fitted.rows if r.get("fold", p.member_id) == p.member_id]
      accuracies.append(next(r["val_accuracy"] for r in rows if r["epoch"] == last))
  wall = time.perf_counter() - t0
  common.emit(f"genjax ({args.mode} folds)", wall, accuracies, epoch_s,
              sum(len(p.train_idx) for p in plans),
              framework=f"jax {jax.__version__}, epoch loop {', '.join(sorted(loops))}",
              members_per_program=len(groups[0]))


if __name__ == "__main__":
  main()
