"""Per-epoch training logs: `train_grad_norm` (mean ‖∇L‖₂ over the epoch's active steps) and
`learning_rate` (mean over the same steps), checked against a logistic-regression gradient and
a cosine schedule coded in numpy; results.json's test ECE and confusion matrix against numpy and
scikit-learn computed separately."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.metrics import confusion_matrix

from genjax import models, optim
from genjax.config import defaults
from genjax.run import driver, results
from genjax.optim import penalties
from logreg_steps import logreg_steps


def _logreg_grad_norm(w, b, x, y, c):
  z = x @ w + b
  p = np.exp(z - z.max(1, keepdims=True))
  p /= p.sum(1, keepdims=True)
  dz = (p - np.eye(c)[y]) / len(y)
  return math.sqrt(np.sum((x.T @ dz) ** 2) + np.sum(dz.sum(0) ** 2))


def test_grad_norm_and_learning_rate_follow_their_formulas():
  rng = np.random.default_rng(0)
  n, d, c, epochs = 40, 6, 3, 3
  x = rng.normal(size=(n, d)).astype(np.float32)
  y = rng.integers(0, c, n).astype(np.int32)
  opt_cfg = optim.default_config()
  opt_cfg.name, opt_cfg.learning_rate, opt_cfg.schedule = "sgd", 0.2, "cosine"
  steps_per_epoch = 2
  cfg = models.default_config()
  cfg.name = "logreg"
  template = models.create(cfg, (d,), c).init(jax.random.key(0))
  tx = optim.make_optimizer(opt_cfg, penalties.default_config(), template,
                            steps_per_epoch=steps_per_epoch, num_epochs=epochs)
  lr_fn = optim.learning_rate_fn(opt_cfg, steps_per_epoch=steps_per_epoch, num_epochs=epochs)
  fns, state, plan = logreg_steps(n, d, c, batch_size=n // 2, lr_fn=lr_fn, tx=tx)
  total = steps_per_epoch * epochs
  step = jax.jit(fns.train_step)
  for epoch in range(epochs):
    idx, w, example_key = fns.epoch_batches(plan, epoch)
    sums, norms = fns.train_zero(), []
    for b in range(steps_per_epoch):
      params = jax.device_get(state.params["head"])
      norms.append(_logreg_grad_norm(np.asarray(params["kernel"], np.float64),
                                     np.asarray(params["bias"], np.float64),
                                     x[np.asarray(idx[b])], y[np.asarray(idx[b])], c))
      state, batch = step(state, plan, x, y, idx[b], w[b], example_key, False)
      sums = jax.tree.map(jnp.add, sums, batch)
    logs = fns.running_means(*sums)
    rates = [0.2 * 0.5 * (1 + math.cos(math.pi * t / total))
             for t in range(epoch * steps_per_epoch, (epoch + 1) * steps_per_epoch)]
    np.testing.assert_allclose(float(logs["learning_rate"]), np.mean(rates), rtol=1e-6)
    np.testing.assert_allclose(float(logs["train_grad_norm"]), np.mean(norms), rtol=1e-4)


def test_a_frozen_member_logs_no_steps():
  fns, state, plan = logreg_steps(20, 4, 2, batch_size=10, lr_fn=lambda s, t: jnp.float32(0.1))
  x = jnp.ones((20, 4))
  y = jnp.zeros(20, jnp.int32)
  idx, w, example_key = fns.epoch_batches(plan, 0)
  _, sums = fns.train_step(state, plan, x, y, idx[0], w[0], example_key, True)
  logs = fns.running_means(*sums)
  assert float(sums[-1]) == 0.0 and float(logs["train_grad_norm"]) == 0.0


def test_results_hold_the_test_ece_and_confusion_matrix(tmp_path):
  config = defaults.get_config()
  config.model.widths = (16,)
  config.num_epochs = 3
  config.checkpoint.enabled = False
  config.metrics = "ece"
  out = driver.train(config, str(tmp_path / "run"), progress=False)
  r = json.loads((tmp_path / "run" / "results.json").read_text())
  rows = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
  assert all(abs(row["learning_rate"] - 1e-3) < 1e-9 and row["train_grad_norm"] > 0 for row in rows)
  probs = results.test_probabilities(out.program, out.fitted, out.setup)[0]
  y = np.asarray(out.setup.splits.test_y)
  np.testing.assert_array_equal(r["test_confusion_matrix"],
                                confusion_matrix(y, probs.argmax(-1), labels=range(10)))
  assert sum(map(sum, r["test_confusion_matrix"])) == len(y)
  # ECE by its definition, one bin at a time (15 equal-width bins of the top probability).
  conf, correct = probs.max(-1), probs.argmax(-1) == y
  ece = sum(abs(np.sum(conf[m] - correct[m])) for m in
            [(conf >= lo) & (conf < lo + 1 / 15) for lo in np.arange(15) / 15])
  np.testing.assert_allclose(results.calibration_error(probs, y), ece / len(y), rtol=1e-5)
  np.testing.assert_allclose(r["test"]["ece"], ece / len(y), rtol=1e-3)   # the jnp metric
