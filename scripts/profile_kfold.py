"""Where genjax's time goes on the K-fold benchmark task (`scripts/bench kfold`'s genjax side).

    .venv/bin/python scripts/profile_kfold.py

Prints, for one cold run (no persistent cache) of the 5-fold task: the XLA
compilations with their times (from `jax_log_compiles`), the total, and the
steady-state time per epoch (slope between the fastest of 3 20-epoch and of 3
40-epoch runs whose programs come from a fresh persistent cache filled by the
cold run), and the share of per-example dropout randomness in one epoch (its
program timed in turns with and without dropout, as scripts/profile_dropout.py).
"""

import logging
import os
import re
import sys
import tempfile
import time

import jax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import profile_dropout  # noqa: E402
from bench_genjax_kfold import task_config  # noqa: E402

from genjax.platform import runtime
from genjax.run import setup as experiment  # noqa: E402
from genjax.models import layers  # noqa: E402


REPEAT = 3  # steady-state timings: the fastest of 3 runs (a shared machine is noisy)


class Compiles(logging.Handler):
  def __init__(self):
    super().__init__()
    self.times = []

  def emit(self, record):
    m = re.search(r"Finished XLA compilation of (.*) in ([0-9.e-]+) sec", record.getMessage())
    if m:
      self.times.append((float(m.group(2)), m.group(1)))


def run(s, plans, epochs):
  s.config.num_epochs = epochs
  t0 = time.perf_counter()
  t = experiment.train(s, plans, tempfile.mkdtemp(), resume=False, progress=False)[1]
  jax.block_until_ready(t.selected_params)
  return time.perf_counter() - t0


def main():
  config = task_config()
  s = experiment.prepare(config, tempfile.mkdtemp())
  plans = experiment.fold_plans(config, s.splits.train_y)
  handler = Compiles()
  logging.getLogger("jax").addHandler(handler)
  jax.config.update("jax_log_compiles", True)
  runtime.enable_compilation_cache(tempfile.mkdtemp())
  cold = run(s, plans, 20)
  jax.config.update("jax_log_compiles", False)
  compile_s = sum(t for t, _ in handler.times)
  print(f"cold run, 20 epochs: {cold:.2f} s, of which XLA compilation {compile_s:.2f} s "
        f"({len(handler.times)} programs); the largest:")
  for t, name in sorted(handler.times, reverse=True)[:4]:
    print(f"  {t:6.2f} s  {name}")
  run(s, plans, 40)  # fills the cache for 40 epochs' schedule shapes
  warm20, warm40 = (min(run(s, plans, n) for _ in range(REPEAT)) for n in (20, 40))
  per_epoch = (warm40 - warm20) / 20
  print(f"cached programs: 20 epochs {warm20:.2f} s, 40 epochs {warm40:.2f} s -> "
        f"{1000 * per_epoch:.1f} ms per epoch for 5 folds; fixed cost "
        f"{warm20 - 20 * per_epoch:.2f} s (tracing, lowering, cache loads, set-up)")
  ms = profile_dropout.epoch_ms({"dropout 0.2": layers.keep_mask,
                                 "no dropout": layers.keep_mask})
  print(f"one epoch's program timed in turns with and without dropout (process CPU time, "
        f"scripts/profile_dropout.py): {ms['dropout 0.2']:.1f} ms against {ms['no dropout']:.1f} "
        f"ms -> per-example dropout randomness is "
        f"{100 * (1 - ms['no dropout'] / ms['dropout 0.2']):.0f}% of the epoch")


if __name__ == "__main__":
  main()
