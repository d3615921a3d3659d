"""The hold-out driver: train on the training portion, select on validation, test once.

The validation set is a stratified, seeded fraction of the training split
(`data.validation_fraction`). The selected weights (best epoch when early
stopping restores them, else the last) are evaluated on train, validation and,
exactly once, on the test split. `results.json` is written last: a finished run has one.
"""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from genjax import report, run_identity
from genjax.data import validation
from genjax.train import loop
from genjax.train.members import MemberPlan

OUTPUTS = ("metrics.jsonl", "results.json", "learning_curves.png", "tensorboard")


def run(config, workdir: str, *, overwrite: bool = False, progress: bool = True) -> dict:
  """Trains `config` on a hold-out plan; writes config.json, metrics.jsonl, results.json, plots.

  A rerun of a finished run returns its stored results and writes nothing.
  """
  t_start = time.time()
  s = loop.setup(config, workdir)
  train_idx, val_idx = validation.holdout_split(s.splits.train_y, config.data.validation_fraction,
                                                config.seed)
  plans = [MemberPlan(0, train_idx, val_idx)]
  loop.validate_plans(s, plans)
  with loop.claim_workdir(workdir, config, kind="train", overwrite=overwrite,
                          outputs=OUTPUTS + (config.checkpoint.subdir,)) as claim:
    done = loop.completed(claim, "results.json")
    if done is not None:
      return done
    t = loop.train_members(s, plans, workdir, resume=claim.resume, progress=progress)
    results = _results(s, t, len(train_idx), len(val_idx))
    results["wall_time_s"] = time.time() - t_start
    report.write_json(os.path.join(workdir, "results.json"), results)
    report.plot_learning_curves(os.path.join(workdir, "learning_curves.png"), t.rows,
                                best_epoch=results["selected_epoch"],
                                title=f"{s.splits.name} / {config.model.name}")
  return results


def _results(s, t, n_train: int, n_val: int) -> dict:
  """The selected weights evaluated once on train, validation and test; run facts."""
  params = loop.member_slice(t.selected_params, 0)
  plan = loop.member_slice(t.plan, 0)
  evaluate = jax.jit(t.evaluate)
  x_test, y_test = s.x_test()
  n_test = len(s.splits.test_y)
  final = {
      "train": evaluate(params, plan, s.x_train, s.y_train, plan.train_idx, plan.train_weight),
      "val": evaluate(params, plan, s.x_train, s.y_train, plan.val_idx, plan.val_weight),
      # The test split: evaluated once, here, on the selected weights.
      "test": evaluate(params, plan, x_test, y_test, jnp.arange(n_test, dtype=jnp.int32),
                       jnp.ones(n_test, jnp.float32)),
  }
  final = {k: {m: float(v) for m, v in d.items()} for k, d in jax.device_get(final).items()}
  return {
      **final,
      "epochs_run": t.epochs_run,
      "selected_epoch": int(t.selected_epoch[0]),
      **loop.stop_info(s.es, t.monitor, 0),
      "monitor": s.monitor.monitor,
      "generalization_gap": {
          "accuracy": final["train"]["accuracy"] - final["val"]["accuracy"],
          "loss": final["val"]["loss"] - final["train"]["loss"],
      },
      "selected_weights": loop.weight_summary(params),
      "num_params": int(sum(np.size(p) for p in jax.tree.leaves(params))),
      "dataset": {"name": s.splits.name, "train": n_train, "val": n_val,
                  "test": n_test, "num_classes": s.splits.num_classes,
                  "input_shape": list(s.splits.input_shape)},
      "devices": jax.device_count(),
      "provenance": run_identity.provenance(s.config),
  }
