"""Result assembly shared by every driver: members evaluated at their selected epoch, the
test split's ensembles, gaps, stop facts, dataset facts.

* `evaluate_members(program, fitted, split)` -> {metric: (M,)} of each member's selected
  weights on its own `"train"` or `"val"` part (its own labels under swept label noise);
* `test_probabilities(program, fitted, setup)` -> (M, N_test, C) softmax of each member's
  selected model on the test split (device array);
* `ensemble_test(probs, y)`: loss, accuracy and calibration of the mean p̄ of the members'
  probabilities, NLL = −(1/N) Σ_i log(p̄_{i, y_i} + 1e-12), accuracy = (1/N) Σ_i [argmax p̄_i =
  y_i], `calibration_error` (ECE);
* `calibration_error(p, y)`: ECE = Σ_b |Σ_{i∈b} (conf_i − correct_i)| / N over
  `metrics.ECE_BINS` equal-width bins of conf_i = max_c p_ic (as the `ece` metric);
* `confusion_matrix(p, y, C)`: counts, row = true class, column = predicted (scikit-learn's);
* `diverged(rows, monitor)`: the members whose monitored value was never finite;
* `stop_info`, `weight_summary`, `gap`, `dataset_facts`, `summary` (mean, std, 95% t-CI).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from genjax.train import early_stopping, metrics
from genjax.optim import penalties


def evaluate_members(program, fitted, split: str) -> dict[str, np.ndarray]:
  """{metric: (M,)} of every member's selected weights on its `split` ("train" | "val")."""
  plan = program.plan
  y, y_axis = (program.y_train, None) if plan.labels is None else (plan.labels, 0)
  evaluate = program.members_map(program.evaluate, (0, 0, None, y_axis, 0, 0))
  idx, weight = ((plan.train_idx, plan.train_weight) if split == "train"
                 else (plan.val_idx, plan.val_weight))
  return jax.device_get(evaluate(fitted.selected_params, plan, program.x_train, y, idx, weight))


def test_probabilities(program, fitted, setup) -> np.ndarray:
  """(M, N_test, C) predicted probabilities of every member's selected model on the test split."""
  predict = program.members_map(program.predict, (0, 0, None, 0))
  x_test, _ = setup.x_test()
  m, n = program.num_members, len(setup.splits.test_y)
  idx = jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32), (m, n))
  return np.asarray(jax.nn.softmax(predict(fitted.selected_params, program.plan, x_test, idx),
                                   axis=-1))


def ensemble_test(probs: np.ndarray, y) -> dict[str, float]:
  """Loss and accuracy of the mean of `probs` (k, N, C) over its first axis (module doc), in
  numpy: the accuracy is an exact fraction of the N test examples."""
  y = np.asarray(y)
  mean = probs.mean(0)
  n = mean.shape[0]
  return {"loss": float(-np.mean(np.log(mean[np.arange(n), y] + 1e-12))),
          "accuracy": float(np.mean(mean.argmax(-1) == y)),
          "ece": calibration_error(mean, y)}


def calibration_error(probs: np.ndarray, y) -> float:
  """Expected calibration error of probabilities (N, C) (module doc), in float64 numpy."""
  probs, y = np.asarray(probs, np.float64), np.asarray(y)
  conf, correct = probs.max(-1), (probs.argmax(-1) == y).astype(np.float64)
  if not np.isfinite(conf).all():   # a diverged model's NaN probabilities: no calibration
    return float("nan")
  bins = np.clip((conf * metrics.ECE_BINS).astype(np.int64), 0, metrics.ECE_BINS - 1)
  gaps = np.bincount(bins, weights=conf - correct, minlength=metrics.ECE_BINS)
  return float(np.abs(gaps).sum() / max(len(y), 1))


def confusion_matrix(probs: np.ndarray, y, num_classes: int) -> list[list[int]]:
  """Counts [true class][predicted class] of argmax predictions (sklearn.metrics)."""
  from sklearn.metrics import confusion_matrix as sk_confusion
  pred = np.asarray(probs).argmax(-1)
  return sk_confusion(np.asarray(y), pred, labels=list(range(num_classes))).tolist()


def stop_info(es, mon, k: int) -> dict:
  """best_epoch / stopped_epoch / stop_reason / best monitored value of member k."""
  stopped = bool(np.asarray(mon.should_stop)[k])
  best_epoch = int(np.asarray(mon.best_epoch)[k])
  return {
      # None when early stopping is off or no epoch was ever recorded (e.g. a NaN loss).
      "best_epoch": best_epoch if es is not None and best_epoch >= 0 else None,
      "stopped_epoch": int(np.asarray(mon.stopped_epoch)[k]) if stopped else None,
      "stop_reason": (early_stopping.STOP_REASONS[int(np.asarray(mon.stop_reason)[k])]
                      if stopped else "max_epochs"),
      "best_monitor_value": float(np.asarray(mon.best)[k]) if es is not None else None,
  }


def diverged(rows: list[dict], monitor: str) -> list[int]:
  """The members (their `fold` id; 0 for a single member) whose monitored value was never
  finite: NaN or infinite (null in metrics.jsonl) at every epoch they trained. Their
  "selected" epoch is no model at all: the run diverged."""
  finite, seen = {}, set()
  for r in rows:
    if monitor not in r:
      continue
    k = int(r.get("fold", 0))
    seen.add(k)
    v = r[monitor]
    if v is not None and np.isfinite(v):
      finite[k] = True
  return sorted(k for k in seen if not finite.get(k))


def weight_summary(params) -> dict:
  """Kernel L2 norm, L1 norm and sparsity of one member's (selected) parameters, as
  `penalties.weight_stats(params, "")` defines them, computed in numpy on the host (eager jnp
  would compile a small program per operation: ~1 s at the end of every run)."""
  mask = penalties.make_mask(params, "")
  leaves = [np.asarray(w, np.float64) for w, keep in zip(jax.tree.leaves(params),
                                                          jax.tree.leaves(mask)) if keep]
  if not leaves:
    return {"l2_norm": 0.0, "l1_norm": 0.0, "sparsity": 0.0}
  return {"l2_norm": float(np.sqrt(sum(np.sum(w * w) for w in leaves))),
          "l1_norm": float(sum(np.sum(np.abs(w)) for w in leaves)),
          "sparsity": float(sum(np.sum(w == 0) for w in leaves) / sum(w.size for w in leaves))}


def gap(train: dict, val: dict) -> dict:
  """Generalization gap: accuracy train − val, loss val − train."""
  return {"accuracy": train["accuracy"] - val["accuracy"], "loss": val["loss"] - train["loss"]}


def dataset_facts(setup, **sizes) -> dict:
  """The dataset's name, split sizes (`sizes` override `train`), classes and input shape."""
  s = setup.splits
  return {"name": s.name, "train": len(s.train_y), **sizes, "test": len(s.test_y),
          "num_classes": s.num_classes, "input_shape": list(s.input_shape)}


def num_params(params) -> int:
  """Parameter count of one member's tree (no member axis)."""
  return int(sum(np.size(p) for p in jax.tree.leaves(params)))


def member_slice(tree, k: int):
  """Member `k`'s slice of a tree with a leading member axis."""
  return jax.tree.map(lambda a: a[k], tree)


def summary(values) -> dict:
  """mean, std (ddof 1) and the 95% t-interval of the mean: mean ± t_{0.975, n−1}·s/√n."""
  from scipy import stats  # slow to import: only here
  v = np.asarray(values, np.float64)
  mean, std = float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0
  half = float(stats.t.ppf(0.975, len(v) - 1) * std / np.sqrt(len(v))) if len(v) > 1 else 0.0
  return {"mean": mean, "std": std, "ci95": [mean - half, mean + half]}
