"""The memory estimate against measured memory (`genjax.sweeps.memory`).

For configurations whose train states differ (Adam; SGD without momentum: no optimizer
moments; AdamW with an EMA of the weights and BatchNorm statistics; a swept, injected learning
rate with reduce-on-plateau; a wide MLP whose state outweighs its activations), a real program
of M members is built (`build_program`) and started:

* the state's bytes per member (the started state's arrays' nbytes / M) equal
  `memory.state_bytes` exactly, which traces the state and allocates nothing;
* XLA's memory analysis of the compiled epoch program (argument + output + temporaries) is
  never above the estimate for M members (per member × M + per program: the data once and
  one member block's working set) — the safe direction — and the estimate is at most 3 × it.
  3 ×: the per-member buffers are the whole step's temporaries counted for every member,
  while the compiled program, which trains one member block at a time (1 member on CPU),
  holds them for one block; for the small default MLP (activations ~6 × its state) that gives
  2.1–2.5 ×, for a state-dominated model ~1.2 ×.

The old formula (4 float32 copies of the parameters, n·16 bytes) is shown below the real state
with an EMA, and its estimate below XLA's analysis for a state-dominated model.
"""

import dataclasses
import functools

import jax
import numpy as np
import pytest

from genjax.config import defaults
from genjax.run import setup as experiment
from genjax.sweeps import memory
from genjax.train import program as train_program

M = 4


def _config(kind: str):
  config = defaults.get_config()
  config.checkpoint.enabled = False
  config.cv.method, config.cv.folds = "kfold", M
  if kind == "sgd":
    config.optimizer.name, config.optimizer.momentum = "sgd", 0.0
  elif kind == "adamw_ema_batchnorm":
    config.optimizer.name, config.ema.decay, config.model.norm = "adamw", 0.99, "batch"
  elif kind == "swept_lr_plateau":
    config.reduce_on_plateau.factor = 0.5
  elif kind == "wide_ema":
    config.model.widths, config.batch_size, config.eval_batch_size = (400, 400), 16, 16
    config.optimizer.name, config.ema.decay = "adamw", 0.99
  return config


def _plans(kind, config, s):
  plans = experiment.fold_plans(config, s.splits.train_y)
  if kind == "swept_lr_plateau":   # an injected hyperparameter, one value per member
    plans = [dataclasses.replace(p, hparams={"optimizer.learning_rate": 1e-3 * (i + 1)})
             for i, p in enumerate(plans)]
  return plans


def _nbytes(tree) -> int:
  return sum(int(np.prod(a.shape)) * np.dtype(a.dtype).itemsize for a in jax.tree.leaves(tree))


def _params(s) -> int:
  return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(s.model.param_shapes))


@functools.lru_cache(maxsize=None)
def _measure(kind):
  """(setup, plans, real state bytes per member, XLA's bytes of the compiled epoch, members)."""
  config = _config(kind)
  s = experiment.prepare(config, None)
  plans = _plans(kind, config, s)
  program = train_program.build_program(s, plans)
  state = program.start()   # compiles the epoch program
  members = len(plans) + program.padding
  real = _nbytes(state)
  assert real % members == 0
  analysis = program._run_epoch.memory_analysis()
  compiled = (analysis.argument_size_in_bytes + analysis.output_size_in_bytes
              + analysis.temp_size_in_bytes)
  return s, plans, real // members, compiled, members


@pytest.mark.parametrize("kind", ["adamw_ema_batchnorm"] + [
    pytest.param(k, marks=pytest.mark.slow)
    for k in ("adam", "sgd", "swept_lr_plateau", "wide_ema")])
def test_estimate_against_the_built_program(kind):
  s, plans, real_state, compiled, members = _measure(kind)
  estimated_state = memory.state_bytes(s)
  assert estimated_state == real_state, (estimated_state, real_state)
  # The plans' swept values never change the state's shapes.
  assert _nbytes(train_program.member_state_shapes(s, plans)) == real_state
  per_member, per_program = memory.member_bytes(s)
  estimate = per_member * members + per_program
  print(f"\n{kind}: state {real_state} B/member (estimated {estimated_state}, old n*16 "
        f"{_params(s) * 16}); XLA epoch {compiled} B for {members} members; estimate "
        f"{estimate} B ({per_member} B/member + {per_program} B/program), "
        f"{estimate / compiled:.2f} x")
  assert compiled <= estimate <= 3 * compiled, (compiled, estimate)
  # The traced bound (no compiling) is above the compiled estimate, never below.
  assert memory.member_bytes(s, traced=True)[0] >= per_member


def test_the_old_four_copies_formula_was_below_the_real_state_and_xla():
  """Before: a member's state was n·16 bytes (params, two Adam moments, best params). With an
  EMA the state holds a fifth copy (and BatchNorm statistics, the monitor), and the estimate
  (n·16 + plans + buffers per member, the data once) fell below XLA's own analysis of the
  epoch program for a model whose state outweighs its activations."""
  s, _, real_state, _, _ = _measure("adamw_ema_batchnorm")
  assert _params(s) * 16 < real_state
  s, _, real_state, compiled, members = _measure("wide_ema")
  old = ((_params(s) * 16 + 24 * len(s.splits.train_y) + memory._activation_bytes(s)) * members
         + s.splits.train_x.size * 4)
  assert _params(s) * 16 < real_state and old < compiled, (old, compiled)


def test_member_capacity_counts_the_real_state(monkeypatch):
  """member_capacity divides the usable memory by the per-member estimate, after the
  per-program bytes."""
  s = experiment.prepare(_config("adamw_ema_batchnorm"), None)
  monkeypatch.setattr(memory, "_available_bytes", lambda: 2**30)
  per_member, per_program = memory.member_bytes(s)
  fit, how = memory.member_capacity(s)
  assert fit == int(memory.MEMORY_FRACTION * 2**30 - per_program) // per_member
  assert "MiB per member, its state" in how
