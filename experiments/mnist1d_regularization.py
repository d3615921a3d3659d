"""Regularization ablation on MNIST-1D with the reference MLP (40-100-100-10, residual).

One row per technique, everything else fixed: the MNIST-1D baseline setup
(Adam 1e-2, batch 100, 167 epochs = 6012 steps, no early stopping, the final
weights tested once), so each row shows what that technique alone changes.

    genjax train --config=experiments/mnist1d_regularization.py:none    --workdir=runs/reg_none
    genjax train --config=experiments/mnist1d_regularization.py:l2      --workdir=runs/reg_l2
    genjax train --config=experiments/mnist1d_regularization.py:wd      --workdir=runs/reg_wd
    genjax train --config=experiments/mnist1d_regularization.py:l1      --workdir=runs/reg_l1
    genjax train --config=experiments/mnist1d_regularization.py:l1_prox --workdir=runs/reg_l1_prox
    genjax train --config=experiments/mnist1d_regularization.py:dropout --workdir=runs/reg_dropout
    genjax train --config=experiments/mnist1d_regularization.py:augment --workdir=runs/reg_augment
    genjax train --config=experiments/mnist1d_regularization.py:all     --workdir=runs/reg_all

`scripts/ablation` runs all eight and writes the table to docs/pages/results/regularization.md.

With ARG `cv`, the same ablation under 5-fold stratified cross-validation, plus
early stopping, as one sweep (`get_sweep`): the techniques that differ only in
numbers (none, l2, wd, l1, l1_prox, dropout) train as one vmapped program of
6 points × 5 folds; augmentation, early stopping and all are their own processes.

    genjax sweep --config=experiments/mnist1d_regularization.py:cv --workdir=runs/cv_reg --parallel_jobs=2
"""

from genjax.config import defaults

# MNIST-1D's own augmentations (mnist1d/transform.py): shift, shear (slope), scale, noise.
AUGMENT = "shift(max_shift=4)|slope(max_slope=0.375)|scale(lo=0.8,hi=1.2)|noise(std=0.05)"

TECHNIQUES = {
    "none": {},
    "l2": {"penalties.l2.strength": 1e-3},                # + λ/2 ‖W‖² in the loss
    "wd": {"penalties.weight_decay.strength": 1e-1},      # decoupled: w -= lr·wd·w (AdamW)
    "l1": {"penalties.l1.strength": 1e-4},                # + λ ‖W‖₁ in the loss
    "l1_prox": {"penalties.l1_prox.strength": 1e-2},      # w ← S_{lr·λ}(w + u): exact zeros
    "dropout": {"model.dropout": 0.2},
    "augment": {"data.augment": AUGMENT},
    "all": {"penalties.weight_decay.strength": 1e-1, "model.dropout": 0.2,
            "data.augment": AUGMENT},
}


NUMERIC = ("penalties.l2.strength", "penalties.weight_decay.strength", "penalties.l1.strength",
           "penalties.l1_prox.strength", "model.dropout")


def get_sweep(arg: str = "cv"):
  """One named point per technique; every point sets every key, so numeric ones share a
  program."""
  points = []
  for name in ("none", "l2", "wd", "l1", "l1_prox", "dropout", "augment", "early_stopping", "all"):
    values = dict(TECHNIQUES.get(name, {}))
    point = {"name": name, **{k: float(values.get(k, 0.0)) for k in NUMERIC}}
    point["data.augment"] = values.get("data.augment", "")
    point["early_stopping.enabled"] = name in ("early_stopping", "all")
    points.append(point)
  return points


def get_config(arg: str = "none"):
  if arg == "cv":
    config = get_config("none")
    config.cv.method = "stratified_kfold"
    config.cv.folds = 5
    config.early_stopping.patience = 20
    return config
  if arg not in TECHNIQUES:
    raise ValueError(f"unknown technique '{arg}'; choose one of {', '.join(TECHNIQUES)}")
  config = defaults.get_config()
  config.data.name = "mnist1d"
  config.model.name = "mlp"
  config.model.widths = (100, 100)
  config.model.residual = True
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 1e-2
  config.batch_size = 100
  config.num_epochs = 167
  config.early_stopping.enabled = False
  for path, value in TECHNIQUES[arg].items():
    section, *rest = path.split(".")
    node = config[section]
    for key in rest[:-1]:
      node = node[key]
    node[rest[-1]] = value
  return config
