"""A member's numbers do not depend on the program it trains in (member blocks).

At the settings where the vmapped program's rounding used to show (learning rate 1e-2, 60
epochs, early stopping on, dropout): a fold alone ≡ inside its K-fold program ≡ inside a
sweep, at any position; a sweep point ≡ itself after two points join the grid, and ≡ the
same point swept alone. Equality is exact: rows, selected epochs and selected weights.
"""

import os
import re

import jax
import numpy as np
import pytest

from genjax.config import defaults
from genjax.run import setup as experiment
from genjax.sweeps import group as sweep_run
from genjax.run import results as results_lib
from genjax.train import parallel
from genjax.train.members import MemberPlan


def _config():
  config = defaults.get_config()
  config.model.widths = (48, 48)
  config.model.dropout = 0.1
  config.optimizer.learning_rate = 1e-2
  config.num_epochs = 60
  config.early_stopping.patience = 5
  config.cv.method = "stratified_kfold"
  config.cv.folds = 5
  config.checkpoint.enabled = False
  return config


def _train(setup, plans, path, member_names=None):
  os.makedirs(path)
  return experiment.train(setup, plans, str(path), resume=False, progress=False,
                          member_names=member_names)[1]


def _rows(fitted, fold):
  """The rows of the member whose `fold` field (or, in a sweep, `member` name) is `fold` (all
  rows when it is None)."""
  return [r for r in fitted.rows if fold is None or r.get("member", r.get("fold")) == fold]


def _assert_same_member(a, ia, b, ib, fold_a, fold_b):
  """Member `ia` of fitted `a` (rows of fold id `fold_a`) and member `ib` of `b`: identical
  rows, selected epoch and selected weights."""
  rows_a, rows_b = _rows(a, fold_a), _rows(b, fold_b)
  assert len(rows_a) == len(rows_b) > 0
  for x, y in zip(rows_a, rows_b):
    for key in ("train_loss_running", "val_loss", "val_accuracy", "train_grad_norm"):
      assert x[key] == y[key], (key, x["epoch"], x[key], y[key])
  assert int(a.selected_epoch[ia]) == int(b.selected_epoch[ib])
  for x, y in zip(jax.tree.leaves(results_lib.member_slice(a.selected_params, ia)),
                  jax.tree.leaves(results_lib.member_slice(b.selected_params, ib))):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.slow
def test_a_fold_alone_equals_the_fold_in_its_kfold_run_and_in_a_sweep(tmp_path):
  config = _config()
  setup = experiment.prepare(config, str(tmp_path))
  folds = experiment.fold_plans(config, setup.splits.train_y)
  together = _train(setup, folds, tmp_path / "all")
  stops = np.asarray(together.monitor.stopped_epoch)
  assert (stops >= 0).any(), f"early stopping should fire at these settings: {stops}"
  alone = _train(setup, [folds[3]], tmp_path / "alone")
  _assert_same_member(together, 3, alone, 0, 3, None)
  # The fold as the last of 3 members, behind two other folds (another count, position).
  three = _train(setup, [folds[0], folds[1], folds[3]], tmp_path / "three")
  _assert_same_member(together, 3, three, 2, 3, 3)
  _assert_same_member(together, 0, three, 0, 0, 0)
  # Inside a 15-member sweep of the L2 strength: the point whose strength is the config's (0)
  # holds the fold as member 5 + 3; the other points' folds are other members.
  strengths = [1e-3, 0.0, 1e-2]
  names = [f"l2={s}/fold{k}" for s in strengths for k in range(5)]
  swept = _train(setup, _sweep_plans(config, setup, strengths), tmp_path / "sweep", names)
  # The l2=0.0 point's fold 3 in the sweep is that fold of the point swept alone. (Against the
  # K-fold run above it differs in the last bits: a swept value is a traced per-member value,
  # a config's value a compiled constant; README says so.)
  plan = _sweep_plans(config, setup, [0.0])[3]
  alone_swept = _train(setup, [plan], tmp_path / "point_alone", ["l2=0.0/fold3"])
  _assert_same_member(swept, 8, alone_swept, 0, "l2=0.0/fold3", "l2=0.0/fold3")


def _sweep_plans(config, setup, strengths):
  folds = experiment.fold_plans(config, setup.splits.train_y)
  return [MemberPlan(member_id=f.member_id, train_idx=f.train_idx, val_idx=f.val_idx,
                     hparams={"penalties.l2.strength": s})   # as sweep_run plans a point's folds
          for s in strengths for f in folds]


def test_blocked_map_equals_the_block_alone():
  """`parallel.blocked`: member i of a 3-block map has the bits of its block run alone."""
  w = np.random.default_rng(0).normal(size=(12, 40, 40)).astype(np.float32)
  x = np.random.default_rng(1).normal(size=(128, 40)).astype(np.float32)

  def member(wi, x):
    h = x
    for _ in range(4):
      h = jax.numpy.tanh(h @ wi)
    return h.sum(0)
  for block in (1, 4):
    every = jax.jit(parallel.blocked(member, (0, None), block))(w, x)
    for start in range(0, 12, block):
      alone = jax.jit(parallel.blocked(member, (0, None), block))(w[start:start + block], x)
      np.testing.assert_array_equal(np.asarray(every[start:start + block]), np.asarray(alone))
    padded = parallel.members_map(member, (0, None), block)(w[:5], x)
    np.testing.assert_array_equal(np.asarray(padded), np.asarray(every[:5]))


def _loop_body(compiled_text: str) -> list[str]:
  """The computations the entry's outermost while loop runs (its body and everything it
  calls), names and metadata stripped: what XLA compiled for one iteration."""
  comps, name = {}, None
  for line in compiled_text.splitlines():
    head = re.match(r"^(?:ENTRY )?%(\S+) ", line)
    if head and line.rstrip().endswith("{"):
      name = head.group(1) if not line.startswith("ENTRY") else "ENTRY"
      comps[name] = []
    elif name and line.strip() != "}":
      comps[name].append(line)
  whiles = [re.search(r"body=%([\w.\-]+)", l) for l in comps["ENTRY"] if " while(" in l]
  assert whiles, "no loop over the blocks: XLA inlined it"
  seen, todo = [], [whiles[0].group(1)]
  while todo:
    c = todo.pop()
    if c in seen:
      continue
    seen.append(c)
    for line in comps[c]:
      todo += re.findall(r"(?:calls|body|condition|to_apply)=%([\w.\-]+)", line)
  strip = lambda l: re.sub(r"\.\d+|, metadata=\{[^}]*\}|%[\w\-]+", "", l).strip()  # noqa: E731
  return sorted(strip(l) for c in seen for l in comps[c])


def test_one_block_compiles_the_loop_body_of_many():
  """A member alone runs the same compiled loop body as among others: XLA inlines a loop it
  knows runs once (and simplifies an axis of one), which fused and rounded a lone member
  differently (a sweep point ≠ the point alone, seen on CI's CPU)."""
  x = np.ones((5, 8, 4), np.float32)

  def member(w, x):
    def step(w, xb):
      g = jax.grad(lambda w: jax.numpy.mean(jax.numpy.tanh(xb @ w) ** 2))(w)
      return w - 0.1 * g, g.sum()
    return jax.lax.scan(step, w, x)
  bodies = [_loop_body(jax.jit(parallel.blocked(member, (0, None), 1))
                       .lower(np.ones((m, 4, 3), np.float32), x).compile().as_text())
            for m in (1, 2)]
  assert bodies[0] == bodies[1]


def _sweep_config():
  config = _config()
  config.cv.method = "none"
  config.seed = 1
  return config


@pytest.mark.slow
def test_a_point_keeps_its_numbers_when_points_join_the_grid(tmp_path):
  config = _sweep_config()
  base = [{"penalties.l2.strength": 0.0, "model.dropout": 0.0, "seed": s} for s in (0, 1)]
  base += [{"penalties.l2.strength": 1e-3, "model.dropout": 0.2, "seed": s} for s in (0, 1)]
  more = base + [{"penalties.l2.strength": 1e-2, "model.dropout": 0.4, "seed": s}
                 for s in (0, 1)]
  small = sweep_run.run_group(config, str(tmp_path / "small"), base, structural={},
                              progress=False, test_for_all_points=True)
  large = sweep_run.run_group(config, str(tmp_path / "large"), more, structural={},
                              progress=False, test_for_all_points=True)
  assert len(small) == 4 and len(large) == 6   # a row per point and seed
  assert any(r["best_epoch_median"] < 59 for r in large), "early stopping should fire"
  for a, b in zip(small, large):
    assert a["name"] == b["name"]
    for key in ("val_accuracy_mean", "val_loss_mean", "val_accuracy_std", "test_accuracy",
                "best_epoch_median", "gap_accuracy"):
      assert a[key] == b[key], (a["name"], key, a[key], b[key])
  # The second point swept alone (its two seeds): the same numbers again.
  alone = sweep_run.run_group(config, str(tmp_path / "alone"), base[2:], structural={},
                              progress=False, test_for_all_points=True)
  for a, b in zip(alone, small[2:]):
    for key in ("val_accuracy_mean", "val_loss_mean", "test_accuracy", "best_epoch_median"):
      assert a[key] == b[key], (key, a[key], b[key])
