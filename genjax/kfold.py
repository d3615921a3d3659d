"""The vmapped K-fold driver: all folds trained at once, as one compiled program.

Folds come from `sklearn.model_selection` over the training split (identical to
scikit-learn's); the test split is untouched until the end. Every fold is a
member of `train.loop.train_members`: its own parameters, optimizer state,
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

import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from genjax import report, run_identity
from genjax.data import validation
from genjax.errors import ConfigError
from genjax.train import loop, parallel
from genjax.train.members import MemberPlan

OUTPUTS = ("metrics.jsonl", "metrics_refit.jsonl", "results.json", "learning_curves.png",
           "cv_folds.png", "oof_predictions.npz", "tensorboard")


def _groups(config, n: int):
  if config.cv.method != "group_kfold":
    return None
  path = config.cv.groups
  if not path:
    return None  # kfold_splits raises the one-line error
  if not os.path.isfile(path):
    raise ConfigError(f"cv.groups file '{path}' does not exist; give a .npy file with one "
                      "group id per training example")
  try:
    groups = np.load(path, allow_pickle=False)
  except (OSError, ValueError) as e:
    raise ConfigError(f"cv.groups file '{path}' is not a readable .npy array ({e})") from None
  return groups


def fold_plans(config, labels: np.ndarray) -> list[MemberPlan]:
  splits = validation.kfold_splits(
      labels, method=config.cv.method, folds=config.cv.folds, shuffle=config.cv.shuffle,
      seed=config.seed, repeats=config.cv.repeats, groups=_groups(config, len(labels)))
  return [MemberPlan(k, tr, va) for k, (tr, va) in enumerate(splits)]


def summary(values) -> dict:
  """mean, std (ddof 1) and the 95% t-interval of the mean across folds."""
  from scipy import stats  # slow to import: only here
  v = np.asarray(values, np.float64)
  mean, std = float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0
  half = float(stats.t.ppf(0.975, len(v) - 1) * std / np.sqrt(len(v))) if len(v) > 1 else 0.0
  return {"mean": mean, "std": std, "ci95": [mean - half, mean + half]}


def run(config, workdir: str, *, overwrite: bool = False, progress: bool = True) -> dict:
  """Cross-validates `config`; writes results.json (with `cv`), OOF predictions, plots.

  A rerun of a finished run returns its stored results and writes nothing.
  """
  t_start = time.time()
  s = loop.setup(config, workdir)
  plans = fold_plans(config, s.splits.train_y)
  loop.validate_plans(s, plans)
  if config.cv.refit:   # the refit's one member and its device layout, checked now too
    parallel.resolve(config.parallel, num_members=1, batch_size=config.batch_size)
  outputs = OUTPUTS + (config.checkpoint.subdir, config.checkpoint.subdir + "_refit")
  with loop.claim_workdir(workdir, config, kind="train", overwrite=overwrite,
                          outputs=outputs) as claim:
    done = loop.completed(claim, "results.json")
    if done is not None:
      return done
    t = loop.train_members(s, plans, workdir, resume=claim.resume, progress=progress,
                           label=f"{config.cv.method} x{len(plans)}")
    results = _results(s, t, plans, workdir)
    if config.cv.refit:
      results["test_refit"] = _refit(s, t, workdir, resume=claim.resume, progress=progress)
    results["wall_time_s"] = time.time() - t_start
    report.write_json(os.path.join(workdir, "results.json"), results)
    val_acc = [f["val"]["accuracy"] for f in results["cv"]["per_fold"]]
    report.plot_fold_curves(os.path.join(workdir, "learning_curves.png"), t.rows,
                            title=f"{s.splits.name} / {config.model.name}: {len(plans)} folds")
    report.plot_fold_accuracy(os.path.join(workdir, "cv_folds.png"), val_acc,
                              title=f"{config.cv.method}: validation accuracy per fold")
  return results


def _per_fold(s, t, plans, val, train) -> list[dict]:
  per_fold = []
  for k, p in enumerate(plans):
    fold_val = {"loss": float(val["loss"][k]), "accuracy": float(val["accuracy"][k])}
    fold_train = {"loss": float(train["loss"][k]), "accuracy": float(train["accuracy"][k])}
    per_fold.append({
        "fold": k, "train_size": len(p.train_idx), "val_size": len(p.val_idx),
        "val": fold_val, "train": fold_train,
        "generalization_gap": {"accuracy": fold_train["accuracy"] - fold_val["accuracy"],
                               "loss": fold_val["loss"] - fold_train["loss"]},
        "selected_epoch": int(t.selected_epoch[k]),
        "selected_weights": loop.weight_summary(loop.member_slice(t.selected_params, k)),
        **loop.stop_info(s.es, t.monitor, k),
    })
  return per_fold


def _results(s, t, plans, workdir: str) -> dict:
  """Per-fold metrics at each fold's selected epoch, OOF predictions, the ensemble's test."""
  config, m = s.config, len(plans)
  in_axes = (0, 0, None, None, 0, 0)
  evaluate = jax.jit(jax.vmap(t.evaluate, in_axes=in_axes))
  predict = jax.jit(jax.vmap(t.predict, in_axes=(0, 0, None, 0)))
  params, plan = t.selected_params, t.plan
  val = jax.device_get(evaluate(params, plan, s.x_train, s.y_train, plan.val_idx, plan.val_weight))
  train = jax.device_get(evaluate(params, plan, s.x_train, s.y_train, plan.train_idx,
                                  plan.train_weight))
  per_fold = _per_fold(s, t, plans, val, train)

  # Out-of-fold predictions: each fold's selected model on its own validation part.
  logits = np.asarray(jax.device_get(predict(params, plan, s.x_train, plan.val_idx)))
  oof_idx = np.concatenate([p.val_idx for p in plans])
  report.primary_only(np.savez)(
      os.path.join(workdir, "oof_predictions.npz"), indices=oof_idx,
      labels=np.asarray(s.splits.train_y)[oof_idx],
      logits=np.concatenate([logits[k, :len(p.val_idx)] for k, p in enumerate(plans)]),
      fold=np.concatenate([np.full(len(p.val_idx), k) for k, p in enumerate(plans)]))

  # The test split, once: the fold ensemble (mean of predicted probabilities).
  x_test, y_test = s.x_test()
  n_test = len(s.splits.test_y)
  test_idx = jnp.broadcast_to(jnp.arange(n_test, dtype=jnp.int32), (m, n_test))
  probs = jax.nn.softmax(predict(params, plan, x_test, test_idx), axis=-1).mean(axis=0)
  test = {"loss": float(-jnp.mean(jnp.log(probs[jnp.arange(n_test), y_test] + 1e-12))),
          "accuracy": float(jnp.mean(probs.argmax(-1) == y_test))}
  val_acc = [f["val"]["accuracy"] for f in per_fold]
  mean = lambda split, key: float(np.mean([f[split][key] for f in per_fold]))  # noqa: E731
  results = {
      "cv": {
          "method": config.cv.method, "folds": config.cv.folds, "members": m,
          "per_fold": per_fold,
          "val_accuracy": summary(val_acc),
          "val_loss": summary([f["val"]["loss"] for f in per_fold]),
          "generalization_gap_accuracy": summary(
              [f["generalization_gap"]["accuracy"] for f in per_fold]),
      },
      # Means over folds, each fold's model at its selected epoch.
      "val": {"accuracy": mean("val", "accuracy"), "loss": mean("val", "loss")},
      "train": {"accuracy": mean("train", "accuracy"), "loss": mean("train", "loss")},
      "test": test,
      "test_ensemble": test,
      "epochs_run": t.epochs_run,
      # The folds' selected epochs differ: their median, labelled as such.
      "selected_epoch_median": float(np.median(t.selected_epoch)),
      "stop_reason": ",".join(sorted({f["stop_reason"] for f in per_fold})),
      "monitor": s.monitor.monitor,
      "selected_weights": {k: float(np.mean([f["selected_weights"][k] for f in per_fold]))
                           for k in per_fold[0]["selected_weights"]},
      "num_params": int(sum(np.size(p) for p in jax.tree.leaves(loop.member_slice(params, 0)))),
      "dataset": {"name": s.splits.name, "train": len(s.splits.train_y), "test": n_test,
                  "num_classes": s.splits.num_classes, "input_shape": list(s.splits.input_shape)},
      "devices": jax.device_count(),
      "provenance": run_identity.provenance(config),
  }
  results["generalization_gap"] = {"accuracy": results["train"]["accuracy"] - results["val"]["accuracy"],
                                   "loss": results["val"]["loss"] - results["train"]["loss"]}
  return results


def _refit(s, t, workdir: str, *, resume: bool, progress: bool) -> dict:
  """One model retrained on the whole training split for the folds' median selected epoch
  count (+1: epochs count from 0), on the folds' schedule; evaluated once on the test split."""
  config = s.config
  epochs = int(np.median(t.selected_epoch)) + 1
  everything = np.arange(len(s.splits.train_y), dtype=np.int32)
  refit = loop.train_members(
      s, [MemberPlan(len(t.selected_epoch), everything, np.zeros(0, np.int32))], workdir,
      resume=resume, progress=progress, ckpt_subdir=config.checkpoint.subdir + "_refit",
      use_early_stopping=False, num_epochs=epochs, label="refit",
      metrics_name="metrics_refit.jsonl")
  x_test, y_test = s.x_test()
  n_test = len(s.splits.test_y)
  rp, rplan = loop.member_slice(refit.selected_params, 0), loop.member_slice(refit.plan, 0)
  r = jax.device_get(refit.evaluate(rp, rplan, x_test, y_test,
                                    jnp.arange(n_test, dtype=jnp.int32),
                                    jnp.ones(n_test, jnp.float32)))
  return {"loss": float(r["loss"]), "accuracy": float(r["accuracy"]), "epochs": epochs,
          "selected_weights": loop.weight_summary(rp)}
