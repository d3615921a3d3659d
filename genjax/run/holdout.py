"""The hold-out driver: train on the training portion, select on validation, test once.

The validation set is a stratified, seeded fraction of the training split
(`data.validation_fraction`). The selected weights (best epoch when early
stopping restores them, else the last) are evaluated on train, validation and,
exactly once, on the test split. `results.json` is written last: a finished run has one.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

from genjax.run import results as results_lib, setup as experiment
from genjax.report.files import write_json
from genjax.report.plots import plot_learning_curves
from genjax.workdir import claims as wd, identity as run_identity

OUTPUTS = ("metrics.jsonl", "results.json", "learning_curves.png", "tensorboard",
           experiment.SELECTED)


def train(config, workdir: str | None, *, overwrite: bool = False,
          progress: bool = True) -> experiment.Outcome:
  """Trains `config` on a hold-out plan. With a workdir: writes config.json, metrics.jsonl,
  results.json, the selected weights and plots, and a rerun of a finished run returns its
  stored results (`Outcome.program` None) and writes nothing. Without: writes nothing."""
  t_start = time.time()
  s = experiment.prepare(config, workdir)
  plans = experiment.member_plans(config, s.splits.train_y)
  experiment.validate_plans(s, plans)
  with wd.claim_workdir(workdir, config, kind="train", overwrite=overwrite,
                        outputs=OUTPUTS + (config.checkpoint.subdir,)) as claim:
    done = wd.completed(claim, "results.json")
    if done is not None:
      return experiment.Outcome(done, s)
    program, fitted = experiment.train(s, plans, workdir, resume=claim.resume,
                                       progress=progress)
    results = _results(s, program, fitted)
    results["wall_time_s"] = time.time() - t_start
    if workdir is not None:
      experiment.save_selected(workdir, program, fitted)
      write_json(wd.path(workdir, "results.json"), results)
      plot_learning_curves(wd.path(workdir, "learning_curves.png"), fitted.rows,
                           best_epoch=results["selected_epoch"],
                           title=f"{s.splits.name} / {config.model.name}")
  return experiment.Outcome(results, s, program, fitted)


def run(config, workdir: str, *, overwrite: bool = False, progress: bool = True) -> dict:
  """`train` with a workdir; returns results.json's content."""
  return train(config, workdir, overwrite=overwrite, progress=progress).results


def _results(s, program, fitted) -> dict:
  """The selected weights evaluated once on train, validation and test; run facts."""
  params = results_lib.member_slice(fitted.selected_params, 0)
  plan = results_lib.member_slice(program.plan, 0)
  evaluate = jax.jit(program.evaluate)
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
  probs = results_lib.test_probabilities(program, fitted, s)[0]
  final["test"].setdefault("ece", results_lib.calibration_error(probs, s.splits.test_y))
  member = program.plans[0]
  return {
      **final,
      "test_confusion_matrix": results_lib.confusion_matrix(probs, s.splits.test_y,
                                                            s.splits.num_classes),
      "epochs_run": fitted.epochs_run,
      "selected_epoch": int(fitted.selected_epoch[0]),
      **results_lib.stop_info(program.early_stopping, fitted.monitor, 0),
      "monitor": s.monitor.monitor,
      # True when the monitored value was NaN/inf at every epoch: no epoch is a model to
      # select (`genjax train` exits 1 saying so; lower the learning rate).
      "diverged": bool(results_lib.diverged(fitted.rows, s.monitor.monitor)),
      "generalization_gap": results_lib.gap(final["train"], final["val"]),
      "selected_weights": results_lib.weight_summary(params),
      "num_params": results_lib.num_params(params),
      "dataset": results_lib.dataset_facts(s, train=len(member.train_idx),
                                           val=len(member.val_idx)),
      "devices": jax.device_count(),
      "epoch_loop": program.epoch_loop,   # "scan" or "steps" (genjax.train.epoch_loop.resolve)
      "member_layout": program.member_layout,   # "vmap" or "side_by_side" (epoch_loop.member_layout)
      "convolutions": program.convolutions,     # "patches", "xla" or None (model.conv)
      "parallel": program.placement,   # {"axis": single|members|data, "devices": n} (parallel.py)
      "precision": s.config.get("precision", "float32"),   # compute dtype (models/precision.py)
      "provenance": run_identity.provenance(s.config),
  }
