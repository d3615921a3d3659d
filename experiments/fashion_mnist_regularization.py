"""Regularization ablation under 5-fold cross-validation on Fashion-MNIST (Debian's files).

MLP 784-128-10, Adam 1e-3, batch 128, 10 epochs, 5-fold stratified CV over the
60000 training images; one point per technique (none, L2, decoupled weight
decay, L1, proximal L1, dropout, augmentation, early stopping, all). The
techniques that differ only in numbers train as one vmapped program of 6 points
× 5 folds; augmentation, early stopping and all are their own processes.

    genjax sweep --config=experiments/fashion_mnist_regularization.py \\
        --workdir=runs/fashion_cv_reg --parallel_jobs=2

`scripts/paper_tables fashion_cv_regularization` runs it into docs/pages/results/fashion_cv_regularization.md.
Needs `apt-get install dataset-fashion-mnist`.
"""

from genjax.config import defaults

AUGMENT = "crop(pad=2,mode=zero)|flip(p=0.5)"
TECHNIQUES = {
    "none": {},
    "l2": {"penalties.l2.strength": 1e-4},
    "wd": {"penalties.weight_decay.strength": 5e-2},
    "l1": {"penalties.l1.strength": 1e-5},
    "l1_prox": {"penalties.l1_prox.strength": 1e-2},
    "dropout": {"model.dropout": 0.2},
    "augment": {"data.augment": AUGMENT},
    "early_stopping": {"early_stopping.enabled": True},
    "all": {"penalties.weight_decay.strength": 5e-2, "model.dropout": 0.2,
            "data.augment": AUGMENT, "early_stopping.enabled": True},
}
NUMERIC = ("penalties.l2.strength", "penalties.weight_decay.strength", "penalties.l1.strength",
           "penalties.l1_prox.strength", "model.dropout")


def get_config():
  config = defaults.get_config()
  config.data.name = "fashion_mnist_local"
  config.data.standardize = "channel"
  config.model.name = "mlp"
  config.model.widths = (128,)
  config.model.residual = False
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 1e-3
  config.batch_size = 128
  config.eval_batch_size = 2000
  config.num_epochs = 10
  config.early_stopping.enabled = False
  config.early_stopping.patience = 2
  config.cv.method = "stratified_kfold"
  config.cv.folds = 5
  config.checkpoint.save_every = 5
  return config


def get_sweep():
  """One named point per technique; every point sets every key, so numeric ones share a
  program."""
  points = []
  for name, values in TECHNIQUES.items():
    point = {"name": name, **{k: float(values.get(k, 0.0)) for k in NUMERIC}}
    point["data.augment"] = values.get("data.augment", "")
    point["early_stopping.enabled"] = values.get("early_stopping.enabled", False)
    points.append(point)
  return points
