"""The vmapped K-fold driver: all folds trained at once, as one compiled program.

Folds come from `sklearn.model_selection` over the training split (identical to
scikit-learn's); the test split is untouched until the end. Every fold is a
member of one `genjax.train.Program`: its own parameters, optimizer state,
keys, padded index plan, standardization statistics and early-stopping state
on a leading axis; a fold that stopped is frozen while the others go on.

At the end, per fold at its selected epoch: validation and training metrics,
the generalization gap; across folds mean ± std and a 95% confidence interval
(mean ± t_{0.975, K-1}·s/√K); out-of-fold logits; and one test evaluation of
(a) the fold ensemble (mean of the K models' predicted probabilities) and (b)
with `cv.refit`, a model retrained on the whole training split for the median
number of epochs the folds selected.
"""

from __future__ import annotations

import time

import jax
import numpy as np

from genjax.run import results as results_lib, setup as experiment
from genjax.report.files import primary_only, write_json
from genjax.report.plots import plot_fold_accuracy, plot_fold_curves
from genjax.workdir import claims as wd, identity as run_identity
from genjax.errors import ConfigError
from genjax.train import parallel

OUTPUTS = ("metrics.jsonl", "metrics_refit.jsonl", "results.json", "learning_curves.png",
           "cv_folds.png", "oof_predictions.npz", "tensorboard", experiment.SELECTED)

fold_plans = experiment.fold_plans   # the folds of config.cv (scikit-learn's indices)
summary = results_lib.summary        # mean, std and 95% t-interval across folds


def train(config, workdir: str | None, *, overwrite: bool = False,
          progress: bool = True) -> experiment.Outcome:
  """Cross-validates `config`. With a workdir: writes results.json (with `cv`), OOF
  predictions, the selected weights and plots; a rerun of a finished run returns its stored
  results and writes nothing. Without a workdir: writes nothing."""
  t_start = time.time()
  if config.cv.get("outer_folds"):
    raise ConfigError("cv.outer_folds (nested cross-validation) selects among a sweep's "
                      "points: run it with `genjax sweep --sweep=...`, or set "
                      "--config.cv.outer_folds=0")
  s = experiment.prepare(config, workdir)
  plans = fold_plans(config, s.splits.train_y)
  experiment.validate_plans(s, plans)
  if config.cv.refit:   # the refit's one member and its device layout, checked now too
    parallel.resolve(config.parallel, num_members=1, batch_size=config.batch_size)
  outputs = OUTPUTS + (config.checkpoint.subdir, config.checkpoint.subdir + "_refit")
  with wd.claim_workdir(workdir, config, kind="train", overwrite=overwrite,
                        outputs=outputs) as claim:
    done = wd.completed(claim, "results.json")
    if done is not None:
      return experiment.Outcome(done, s)
    program, fitted = experiment.train(s, plans, workdir, resume=claim.resume,
                                       progress=progress,
                                       label=f"{config.cv.method} x{len(plans)}")
    results = _results(s, program, fitted, workdir)
    if config.cv.refit:
      results["test_refit"] = _refit(s, fitted, workdir, resume=claim.resume, progress=progress)
    results["wall_time_s"] = time.time() - t_start
    if workdir is not None:
      experiment.save_selected(workdir, program, fitted)
      write_json(wd.path(workdir, "results.json"), results)
      val_acc = [f["val"]["accuracy"] for f in results["cv"]["per_fold"]]
      plot_fold_curves(wd.path(workdir, "learning_curves.png"), fitted.rows,
                       title=f"{s.splits.name} / {config.model.name}: {len(plans)} folds")
      plot_fold_accuracy(wd.path(workdir, "cv_folds.png"), val_acc,
                         title=f"{config.cv.method}: validation accuracy per fold")
  return experiment.Outcome(results, s, program, fitted)


def run(config, workdir: str, *, overwrite: bool = False, progress: bool = True) -> dict:
  """`train` with a workdir; returns results.json's content."""
  return train(config, workdir, overwrite=overwrite, progress=progress).results


def _per_fold(program, fitted, val, train, probs, y_test, seed: int) -> list[dict]:
  """One entry per fold: sizes, seed, validation and training metrics at its selected epoch,
  gap, selected epoch, weights, stop facts, and the fold's own model on the test split."""
  per_fold = []
  for k, p in enumerate(program.plans):
    fold_val = {name: float(v[k]) for name, v in val.items()}
    fold_train = {name: float(v[k]) for name, v in train.items()}
    per_fold.append({
        "fold": k, "seed": int(seed if p.seed is None else p.seed),
        "train_size": len(p.train_idx), "val_size": len(p.val_idx),
        "val": fold_val, "train": fold_train,
        "test": results_lib.ensemble_test(probs[k:k + 1], y_test),
        "generalization_gap": results_lib.gap(fold_train, fold_val),
        "selected_epoch": int(fitted.selected_epoch[k]),
        "selected_weights": results_lib.weight_summary(
            results_lib.member_slice(fitted.selected_params, k)),
        **results_lib.stop_info(program.early_stopping, fitted.monitor, k),
    })
  return per_fold


def _write_oof(s, program, fitted, workdir: str | None) -> None:
  """Out-of-fold predictions: each fold's selected model on its own validation part."""
  if workdir is None:
    return
  plans, plan = program.plans, program.plan
  predict = jax.jit(jax.vmap(program.predict, in_axes=(0, 0, None, 0)))
  logits = np.asarray(jax.device_get(predict(fitted.selected_params, plan, s.x_train,
                                             plan.val_idx)))
  oof_idx = np.concatenate([p.val_idx for p in plans])
  primary_only(np.savez)(
      wd.path(workdir, "oof_predictions.npz"), indices=oof_idx,
      labels=np.asarray(s.splits.train_y)[oof_idx],
      logits=np.concatenate([logits[k, :len(p.val_idx)] for k, p in enumerate(plans)]),
      fold=np.concatenate([np.full(len(p.val_idx), k) for k, p in enumerate(plans)]))


def _results(s, program, fitted, workdir: str | None) -> dict:
  """Per-fold metrics at each fold's selected epoch, OOF predictions, the ensemble's test."""
  config, m = s.config, program.num_members
  val = results_lib.evaluate_members(program, fitted, "val")
  train = results_lib.evaluate_members(program, fitted, "train")
  # The test split, once: the fold ensemble (mean of predicted probabilities); each fold's
  # own model's test metrics are in per_fold.
  probs = results_lib.test_probabilities(program, fitted, s)
  test = results_lib.ensemble_test(probs, s.x_test()[1])
  per_fold = _per_fold(program, fitted, val, train, probs, s.x_test()[1], config.seed)
  _write_oof(s, program, fitted, workdir)
  mean = lambda split, key: float(np.mean([f[split][key] for f in per_fold]))  # noqa: E731
  metric_names = list(per_fold[0]["val"])
  results = {
      "cv": {
          "method": config.cv.method, "folds": config.cv.folds, "members": m,
          "per_fold": per_fold,
          "val_accuracy": summary([f["val"]["accuracy"] for f in per_fold]),
          "val_loss": summary([f["val"]["loss"] for f in per_fold]),
          "generalization_gap_accuracy": summary(
              [f["generalization_gap"]["accuracy"] for f in per_fold]),
      },
      # Means over folds, each fold's model at its selected epoch.
      "val": {k: mean("val", k) for k in metric_names},
      "train": {k: mean("train", k) for k in metric_names},
      "test": test,
      "test_ensemble": test,
      # The fold ensemble's predictions: row = true class, column = predicted.
      "test_confusion_matrix": results_lib.confusion_matrix(probs.mean(0), s.x_test()[1],
                                                            s.splits.num_classes),
      "epochs_run": fitted.epochs_run,
      # The folds' selected epochs differ: their median, labelled as such.
      "selected_epoch_median": float(np.median(fitted.selected_epoch)),
      "stop_reason": ",".join(sorted({f["stop_reason"] for f in per_fold})),
      "monitor": s.monitor.monitor,
      # The folds whose monitored value was NaN/inf at every epoch (`genjax train` exits 1).
      "diverged_folds": results_lib.diverged(fitted.rows, s.monitor.monitor),
      "selected_weights": {k: float(np.mean([f["selected_weights"][k] for f in per_fold]))
                           for k in per_fold[0]["selected_weights"]},
      "num_params": results_lib.num_params(results_lib.member_slice(fitted.selected_params, 0)),
      "dataset": results_lib.dataset_facts(s),
      "devices": jax.device_count(),
      "epoch_loop": program.epoch_loop,   # "scan" or "steps" (genjax.train.epoch_loop.resolve)
      "member_layout": program.member_layout,   # "vmap" or "side_by_side" (epoch_loop.member_layout)
      "convolutions": program.convolutions,     # "patches", "xla" or None (model.conv)
      "parallel": program.placement,   # {"axis": single|members|data, "devices": n} (parallel.py)
      "precision": config.get("precision", "float32"),   # compute dtype (models/precision.py)
      "provenance": run_identity.provenance(config),
  }
  results["generalization_gap"] = results_lib.gap(results["train"], results["val"])
  return results


def _refit(s, fitted, workdir: str | None, *, resume: bool, progress: bool) -> dict:
  """`experiment.refit` for the folds' selected epochs (member id K, after the K folds)."""
  return experiment.refit(s, fitted.selected_epoch, workdir, member_id=len(fitted.selected_epoch),
                          resume=resume, progress=progress)
