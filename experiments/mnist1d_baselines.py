"""MNIST-1D baselines (Greydanus, 2020): logistic regression, MLP, CNN.

The paper's setup: Adam, learning rate 1e-2, batch 100, 6000 steps, no weight
decay; it reports test accuracy 32% (logistic), 68% (MLP), 94% (CNN). genjax
holds out 10% of the 4000 training examples for validation, so 6000 steps are
ceil(6000 / 36) = 167 epochs of 36 batches. No early stopping: the final
weights are tested, as in the paper.

    genjax train --config=experiments/mnist1d_baselines.py:logreg --workdir=runs/baseline_logreg
    genjax train --config=experiments/mnist1d_baselines.py:mlp --workdir=runs/baseline_mlp
    genjax train --config=experiments/mnist1d_baselines.py:cnn --workdir=runs/baseline_cnn
    genjax train --config=experiments/mnist1d_baselines.py:cnn_shuffled --workdir=runs/baseline_cnn_shuffled

`ARG_shuffled` trains on the spatially shuffled variant (`mnist1d/shuffled`: one fixed
permutation of the 40 positions), where the paper's CNN falls to ~56%.
"""

from genjax.config import defaults

MODELS = {"logreg": "logreg", "mlp": "mlp", "cnn": "cnn1d"}
PAPER_TEST_ACCURACY = {"logreg": 0.32, "mlp": 0.68, "cnn": 0.94, "cnn_shuffled": 0.56}


def get_config(arg: str = "mlp"):
  model, _, variant = arg.partition("_")
  if model not in MODELS or variant not in ("", "shuffled"):
    raise ValueError(f"unknown baseline '{arg}'; choose one of {', '.join(MODELS)}, "
                     "optionally with _shuffled")
  config = defaults.get_config()
  config.data.name = "mnist1d/shuffled" if variant else "mnist1d"
  config.model.name = MODELS[model]
  config.model.widths = (100, 100)
  config.model.residual = True
  config.model.channels = 25
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 1e-2
  config.optimizer.weight_decay = 0.0
  config.batch_size = 100
  config.num_epochs = 167            # 167 * 36 = 6012 steps
  config.early_stopping.enabled = False
  return config
