"""Where a convolutional epoch's time goes: the scanned epoch against the host loop of steps.

    .venv/bin/python scripts/profile_epoch_loop.py [--epochs 3] [--members 1,5]

For each model (MLP and 1D CNN on MNIST-1D; the 2D CNN on Fashion-MNIST's first 3000
training images when Debian's files are installed) and member count, trains with
`epoch_loop=scan` and `epoch_loop=steps` and prints the steady-state time per epoch (the
median after the first, compiling, epoch) and the ratio. Same keys, same numbers (checked:
the largest difference of the validation loss is printed).
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from genjax.config import defaults  # noqa: E402
from genjax.run import setup as experiment
from genjax.data import datasets  # noqa: E402
from genjax.train.fit import fit  # noqa: E402
from genjax.train.program import build_program  # noqa: E402


class Timer:
  """A callback recording when each epoch's metrics arrive on the host."""

  def __init__(self):
    self.times = []

  def restore(self, *_):
    return None

  def on_train_start(self, info):
    self.times.append(time.perf_counter())

  def on_epoch_end(self, info, logs):
    self.times.append(time.perf_counter())

  def on_train_end(self, info, state):
    pass

  def on_interrupt(self, info):
    pass


def config_for(model: str, members: int, loop: str):
  c = defaults.get_config()
  c.checkpoint.enabled = False
  c.early_stopping.enabled = False
  c.epoch_loop = loop
  c.model.name = model
  if model == "cnn2d":
    c.data.name = "fashion_mnist_local"
    c.data.standardize = "channel"
    c.batch_size = 128
    c.model.dropout = 0.2
  else:
    c.model.dropout = 0.1
  if members > 1:
    c.cv.method, c.cv.folds = "stratified_kfold", members
  return c


def measure(model: str, members: int, loop: str, epochs: int, subset: int | None):
  c = config_for(model, members, loop)
  s = experiment.prepare(c, None)
  plans = experiment.member_plans(c, s.splits.train_y)
  if subset:   # a fixed slice of each member's indices keeps the 2D CNN's epochs short
    plans = [type(p)(p.member_id, p.train_idx[:subset], p.val_idx[:subset // 5]) for p in plans]
  program = build_program(s, plans)
  timer = Timer()
  fitted = fit(program, [timer], num_epochs=epochs)
  steady = np.diff(timer.times)[1:]
  return float(np.median(steady)), float(timer.times[1] - timer.times[0]), fitted.rows


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--epochs", type=int, default=3)
  ap.add_argument("--members", default="1,5")
  args = ap.parse_args()
  models = [("mlp", None), ("cnn1d", None)]
  try:
    datasets.load("fashion_mnist_local")
    models.append(("cnn2d", 3000))
  except Exception as e:  # noqa: BLE001
    print(f"cnn2d skipped: {e}")
  print("| model | members | scan: s/epoch (first) | steps: s/epoch (first) | scan / steps | max |Δ val loss| |")
  print("|---|---:|---:|---:|---:|---:|")
  for model, subset in models:
    for m in [int(x) for x in args.members.split(",")] if model != "cnn2d" else [1]:
      scan, scan_first, rows_a = measure(model, m, "scan", args.epochs, subset)
      steps, steps_first, rows_b = measure(model, m, "steps", args.epochs, subset)
      diff = max(abs(a["val_loss"] - b["val_loss"]) for a, b in zip(rows_a, rows_b))
      print(f"| {model} | {m} | {scan:.3f} ({scan_first:.1f}) | {steps:.3f} ({steps_first:.1f}) | "
            f"{scan / steps:.2f} | {diff:.1e} |", flush=True)


if __name__ == "__main__":
  main()
