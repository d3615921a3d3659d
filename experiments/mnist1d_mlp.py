"""Default experiment: MNIST-1D with the paper's reference MLP (40-100-100-10, residual).

A hold-out validation set (10% of the training split, stratified), Adam, early
stopping on the validation loss that restores the best weights; the test split
is evaluated once, at the end.

    scripts/train
    genjax train --config=experiments/mnist1d_mlp.py --workdir=runs/mnist1d_mlp
"""

from genjax import defaults


def get_config():
  config = defaults.get_config()
  config.data.name = "mnist1d"
  config.model.name = "mlp"
  config.model.widths = (100, 100)
  config.model.residual = True
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 1e-3
  config.batch_size = 100
  config.num_epochs = 200
  config.early_stopping.monitor = "val_loss"
  config.early_stopping.patience = 20
  return config
