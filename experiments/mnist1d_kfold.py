"""5-fold stratified cross-validation on MNIST-1D, all folds trained as one vmapped program.

The reference MLP (40-100-100-10, residual) with dropout 0.2, AdamW (lr 1e-3,
decoupled weight decay 1e-4 on kernels), batch 100, early stopping on each
fold's validation loss (patience 20, best weights restored). The test split is
evaluated once, by the 5-fold ensemble and by a model refit on all 4000
training examples for the folds' median selected epoch + 1 epochs.

    genjax train --config=experiments/mnist1d_kfold.py --workdir=runs/mnist1d_kfold
"""

from genjax.config import defaults


def get_config():
  config = defaults.get_config()
  config.data.name = "mnist1d"
  config.model.name = "mlp"
  config.model.widths = (100, 100)
  config.model.residual = True
  config.model.dropout = 0.2
  config.optimizer.name = "adamw"
  config.optimizer.learning_rate = 1e-3
  config.optimizer.weight_decay = 1e-4
  config.batch_size = 100
  config.num_epochs = 200
  config.early_stopping.monitor = "val_loss"
  config.early_stopping.patience = 20
  config.cv.method = "stratified_kfold"
  config.cv.folds = 5
  config.cv.refit = True
  return config
