"""Evaluation metrics as registered functions, computed inside the compiled evaluation.

Loss and accuracy are always computed. `config.metrics` names more (comma-separated, e.g.
"top5_accuracy,ece"); each is evaluated wherever the model is (validation every epoch, and
train / validation / test in results.json), logged as `val_<output>` in metrics.jsonl and
TensorBoard, and can be monitored by early stopping (`early_stopping.monitor="val_ece"`).

A metric is additive: `sums(logits, labels, weight, num_classes)` returns arrays that are
summed over batches (and over devices under data parallelism: `psum`), and
`finalize(sums, num_classes)` turns the totals into named scalars. So a metric is exact
whatever the batch size or device count, and padded examples (weight 0) never count.

    import jax, jax.numpy as jnp
    from genjax.train import metrics

    @metrics.register("top3_accuracy")        # a new name: built-in ones are refused
    def top3(logits, labels, w, num_classes):
      hit = jnp.any(jax.lax.top_k(logits, 3)[1] == labels[:, None], axis=-1)
      return {"numerator": jnp.sum(w * hit), "count": jnp.sum(w)}

Without `finalize` a metric is `numerator / count`; `outputs` (regexes) name what it logs
when that is not just its name (e.g. ``per_class_accuracy``'s ``class_accuracy_\\d+``).

Built-ins:
* ``top5_accuracy``: Σ_i w_i·[y_i ∈ top-5(logits_i)] / Σ_i w_i (top-k with k = min(5, C));
* ``ece``: expected calibration error with 15 equal-width confidence bins,
  ECE = Σ_b |Σ_{i∈b} w_i (conf_i − correct_i)| / Σ_i w_i, conf_i = max softmax;
* ``per_class_accuracy``: for each class c, Σ_{i: y_i=c} w_i·correct_i / Σ_{i: y_i=c} w_i, logged
  as ``class_accuracy_<c>`` (0 for a class absent from the split).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Callable

import jax
import jax.numpy as jnp

from genjax.errors import ConfigError
from genjax.registry import Registry

ECE_BINS = 15


@dataclasses.dataclass(frozen=True)
class Metric:
  """A registered metric (see the module docstring); `outputs` are regexes of its names."""
  name: str
  sums: Callable
  finalize: Callable
  outputs: tuple[str, ...]


METRICS: Registry[Metric] = Registry("metric", config_key="metrics")


def register(name: str, *, outputs: tuple[str, ...] | None = None, finalize: Callable | None = None):
  """Decorator: `sums(logits, labels, weight, num_classes) -> {name: array}` becomes metric
  `name`. Without `finalize`, the metric is `sums["numerator"] / max(sums["count"], 1)`."""

  def decorator(sums):
    fin = finalize or (lambda s, c: {name: s["numerator"] / jnp.maximum(s["count"], 1.0)})
    METRICS.register(name, Metric(name, sums, fin, tuple(outputs or (re.escape(name),))),
                     origin=sums)
    return sums
  return decorator


def parse(spec: str) -> tuple[Metric, ...]:
  """The metrics named in `config.metrics` ("" = none); ConfigError for an unknown name."""
  if not isinstance(spec, str):
    raise ConfigError(f"config.metrics={spec!r} must be a comma-separated string of metric "
                      f"names, e.g. --config.metrics=top5_accuracy,ece")
  names = [n.strip() for n in spec.split(",") if n.strip()]
  if len(set(names)) != len(names):
    raise ConfigError(f"config.metrics={spec!r} names a metric twice; name each once")
  return tuple(METRICS.get(n) for n in names)


def produces(metric: Metric, output: str) -> bool:
  """Whether `output` (without the `val_` prefix) is one of the names `metric` logs."""
  return any(re.fullmatch(p, output) for p in metric.outputs)


def monitorable(name: str) -> bool:
  """Whether `val_<output>` names an output of some registered metric."""
  return name.startswith("val_") and any(produces(m, name[4:]) for _, m in METRICS.items())


def _top_k(logits, labels, w, num_classes):
  k = min(5, num_classes)
  top = jax.lax.top_k(logits, k)[1]
  hit = jnp.any(top == labels[:, None], axis=-1).astype(jnp.float32)
  return {"numerator": jnp.sum(w * hit), "count": jnp.sum(w)}


register("top5_accuracy")(_top_k)


def _ece_finalize(s, num_classes):
  return {"ece": jnp.sum(jnp.abs(s["gap"])) / jnp.maximum(s["count"], 1.0)}


def _ece(logits, labels, w, num_classes):
  probs = jax.nn.softmax(logits, axis=-1)
  conf = jnp.max(probs, axis=-1)
  correct = (jnp.argmax(logits, -1) == labels).astype(jnp.float32)
  bins = jnp.clip((conf * ECE_BINS).astype(jnp.int32), 0, ECE_BINS - 1)
  one_hot = jax.nn.one_hot(bins, ECE_BINS) * w[:, None]
  return {"gap": one_hot.T @ (conf - correct), "count": jnp.sum(w)}


register("ece", finalize=_ece_finalize)(_ece)


def _per_class_finalize(s, num_classes):
  acc = s["correct"] / jnp.maximum(s["count"], 1.0)
  return {f"class_accuracy_{c}": acc[c] for c in range(num_classes)}


def _per_class(logits, labels, w, num_classes):
  correct = (jnp.argmax(logits, -1) == labels).astype(jnp.float32)
  by_class = jax.nn.one_hot(labels, num_classes) * w[:, None]
  return {"correct": by_class.T @ correct, "count": jnp.sum(by_class, axis=0)}


register("per_class_accuracy", outputs=(r"class_accuracy_\d+",),
         finalize=_per_class_finalize)(_per_class)
