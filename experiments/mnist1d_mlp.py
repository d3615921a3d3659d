"""Default experiment: MNIST-1D with the paper's reference MLP (40-100-100-10, residual).

A hold-out validation set (10% of the training split, stratified), MNIST-1D's
own augmentations applied on device (shift, slope, scale, noise), Adam 3e-3,
early stopping on the validation loss (patience 30) that restores the best
weights; the test split is evaluated once, at the end.

    scripts/train
    genjax train --config=experiments/mnist1d_mlp.py --workdir=runs/mnist1d_mlp
"""

from genjax.config import defaults

# MNIST-1D's own augmentations (mnist1d/transform.py): shift, shear (slope), scale, noise.
AUGMENT = "shift(max_shift=4)|slope(max_slope=0.375)|scale(lo=0.8,hi=1.2)|noise(std=0.05)"


def get_config():
  config = defaults.get_config()
  config.data.name = "mnist1d"
  config.data.augment = AUGMENT
  config.model.name = "mlp"
  config.model.widths = (100, 100)
  config.model.residual = True
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 3e-3
  config.batch_size = 100
  config.num_epochs = 300
  config.early_stopping.monitor = "val_loss"
  config.early_stopping.patience = 30
  return config
