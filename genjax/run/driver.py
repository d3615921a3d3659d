"""The driver of `genjax train` and `genjax.fit`: one config -> one workdir.

Every member of the run is a member of one `genjax.train.program.Program`: its own parameters,
optimizer state, keys, padded index plan, standardization statistics and early-stopping state
on a leading axis; a member that stopped is frozen while the others go on.

* Hold-out (`cv.method="none"`) is the one-member case: the validation set is a stratified,
  seeded fraction of the training split (`data.validation_fraction`). The selected weights
  (best epoch when early stopping restores them, else the last) are evaluated on train,
  validation and, exactly once, on the test split.
* Cross-validation: folds from `sklearn.model_selection` over the training split (identical
  to scikit-learn's), all trained at once. Per fold at its selected epoch: validation and
  training metrics, the generalization gap; across folds mean ± std and a 95% confidence
  interval (mean ± t_{0.975, K-1}·s/√K); out-of-fold logits; and one test evaluation of
  (a) the fold ensemble (mean of the K models' predicted probabilities) and (b) with
  `cv.refit`, a model retrained on the whole training split for the median number of epochs
  the folds selected (`genjax.run.refit`).

The test split is untouched until the end. `results.json` is written last: a finished run has
one, and a rerun of it returns its stored results and writes nothing.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from genjax.run import refit as refit_lib, results as results_lib, setup as experiment
from genjax.report.files import primary_only, write_json
from genjax.report.plots import plot_fold_accuracy, plot_fold_curves, plot_learning_curves
from genjax.workdir import claims as wd, identity as run_identity
from genjax.errors import ConfigError
from genjax.train import parallel


def outputs(config) -> tuple[str, ...]:
  """The files and folders a run of `config` writes at its workdir's top level."""
  subdir = config.checkpoint.subdir
  if config.cv.method == "none":
    return ("metrics.jsonl", "results.json", "learning_curves.png", "tensorboard",
            experiment.SELECTED, subdir)
  return ("metrics.jsonl", "metrics_refit.jsonl", "results.json", "learning_curves.png",
          "cv_folds.png", "oof_predictions.npz", "tensorboard", experiment.SELECTED, subdir,
          subdir + "_refit")


def train(config, workdir: str | None, *, overwrite: bool = False,
          progress: bool = True) -> experiment.Outcome:
  """Trains `config` (hold-out or cross-validation). With a workdir: writes config.json,
  metrics.jsonl, results.json (with `cv` under cross-validation), OOF predictions, the selected
  weights and plots, and a rerun of a finished run returns its stored results
  (`Outcome.program` None) and writes nothing. Without a workdir: writes nothing."""
  t_start = time.time()
  holdout = config.cv.method == "none"
  if not holdout and config.cv.get("outer_folds"):
    raise ConfigError("cv.outer_folds (nested cross-validation) selects among a sweep's "
                      "points: run it with `genjax sweep --sweep=...`, or set "
                      "--config.cv.outer_folds=0")
  s = experiment.prepare(config, workdir)
  plans = experiment.member_plans(config, s.splits.train_y)
  experiment.validate_plans(s, plans)
  refit = not holdout and config.cv.refit
  if refit:   # the refit's one member and its device layout, checked now too
    parallel.resolve(config.parallel, num_members=1, batch_size=config.batch_size)
  with wd.claim_workdir(workdir, config, kind="train", overwrite=overwrite,
                        outputs=outputs(config)) as claim:
    done = wd.completed(claim, "results.json")
    if done is not None:
      return experiment.Outcome(done, s)
    program, fitted = experiment.train(s, plans, workdir, resume=claim.resume,
                                       progress=progress,
                                       label="" if holdout else f"{config.cv.method} x{len(plans)}")
    results = (_holdout_results(s, program, fitted) if holdout
               else _cv_results(s, program, fitted, workdir))
    if refit:   # member id K, after the K folds
      member = refit_lib.on_training_split(s, fitted.selected_epoch, member_id=len(plans))
      results["test_refit"] = refit_lib.refit(s, [member], workdir, resume=claim.resume,
                                              progress=progress)[0].record()
    results["wall_time_s"] = time.time() - t_start
    if workdir is not None:
      experiment.save_selected(workdir, program, fitted)
      write_json(wd.path(workdir, "results.json"), results)
      _plot(s, workdir, fitted, results)
  return experiment.Outcome(results, s, program, fitted)


def run(config, workdir: str, *, overwrite: bool = False, progress: bool = True) -> dict:
  """`train` with a workdir; returns results.json's content."""
  return train(config, workdir, overwrite=overwrite, progress=progress).results


def _plot(s, workdir: str, fitted, results: dict) -> None:
  """learning_curves.png; under cross-validation, cv_folds.png too."""
  config = s.config
  title = f"{s.splits.name} / {config.model.name}"
  if "cv" not in results:
    plot_learning_curves(wd.path(workdir, "learning_curves.png"), fitted.rows,
                         best_epoch=results["selected_epoch"], title=title)
    return
  per_fold = results["cv"]["per_fold"]
  plot_fold_curves(wd.path(workdir, "learning_curves.png"), fitted.rows,
                   title=f"{title}: {len(per_fold)} folds")
  plot_fold_accuracy(wd.path(workdir, "cv_folds.png"), [f["val"]["accuracy"] for f in per_fold],
                     title=f"{config.cv.method}: validation accuracy per fold",
                     diverged=results.get("diverged_folds") or [])


def _run_facts(s, program, fitted) -> dict:
  """How the run was computed: devices, epoch loop, layouts, member-epochs (compaction),
  precision, provenance."""
  return {
      "devices": jax.device_count(),
      "epoch_loop": program.epoch_loop,   # "scan" or "steps" (genjax.train.epoch_loop.resolve)
      "member_layout": program.member_layout,   # "vmap" or "side_by_side" (epoch_loop.member_layout)
      "convolutions": program.convolutions,     # "patches", "xla" or None (model.conv)
      "parallel": program.placement,   # {"axis": single|members|data, "devices": n} (parallel.py)
      "compaction": program.member_epochs(fitted.monitor, fitted.epochs_run),
      "precision": s.config.get("precision", "float32"),   # compute dtype (models/precision.py)
      "provenance": run_identity.provenance(s.config),
  }


def _holdout_results(s, program, fitted) -> dict:
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
      **_run_facts(s, program, fitted),
  }


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


def _cv_results(s, program, fitted, workdir: str | None) -> dict:
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
          "val_accuracy": results_lib.summary([f["val"]["accuracy"] for f in per_fold]),
          "val_loss": results_lib.summary([f["val"]["loss"] for f in per_fold]),
          "generalization_gap_accuracy": results_lib.summary(
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
      **_run_facts(s, program, fitted),
  }
  results["generalization_gap"] = results_lib.gap(results["train"], results["val"])
  return results
