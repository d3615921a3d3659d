"""Random-label memorization (Zhang et al., 2017) on MNIST-1D.

A wide MLP (40-512-512-10) trained for 200 epochs with Adam 1e-3 on true labels
or on random labels (`data.label_noise=1`: every training label redrawn
uniformly), without and with regularization (decoupled weight decay 1e-2 +
dropout 0.2). No early stopping: the final weights are measured. The network
fits random labels far above chance on the training set while test accuracy
stays at chance; regularization slows memorization but does not prevent it.

    genjax train --config=experiments/mnist1d_memorization.py:true         --workdir=runs/memo_true
    genjax train --config=experiments/mnist1d_memorization.py:random       --workdir=runs/memo_random
    genjax train --config=experiments/mnist1d_memorization.py:true_reg     --workdir=runs/memo_true_reg
    genjax train --config=experiments/mnist1d_memorization.py:random_reg   --workdir=runs/memo_random_reg

`scripts/paper_tables memorization` runs all four into docs/pages/results/memorization.md.
"""

from genjax.config import defaults

ARGS = ("true", "random", "true_reg", "random_reg")


def get_config(arg: str = "random"):
  if arg not in ARGS:
    raise ValueError(f"unknown variant '{arg}'; choose one of {', '.join(ARGS)}")
  config = defaults.get_config()
  config.data.name = "mnist1d"
  config.data.label_noise = 1.0 if arg.startswith("random") else 0.0
  config.model.name = "mlp"
  config.model.widths = (512, 512)
  config.model.residual = False
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 1e-3
  config.batch_size = 100
  config.num_epochs = 200
  config.early_stopping.enabled = False
  if arg.endswith("_reg"):
    config.penalties.weight_decay.strength = 1e-2
    config.model.dropout = 0.2
  return config
