"""Deep double descent (Nakkiran et al., 2019) on MNIST-1D: test error against hidden width.

A one-hidden-layer MLP of width w ∈ {2, 4, ..., 1024}, 15% of the training
labels replaced at random (`data.label_noise=0.15`), Adam 1e-3, batch 100, 300
epochs, no early stopping, no regularization: the final weights are tested on
the clean test split. Width is structural (each width is its own program), so
the sweep runs one process per width, `--parallel_jobs` at a time.

    genjax sweep --config=experiments/mnist1d_double_descent.py --workdir=runs/double_descent \\
        --parallel_jobs=2 --test_for_all_points

`scripts/paper_tables double_descent` runs it and writes docs/pages/results/double_descent.md.
"""

from genjax.config import defaults

WIDTHS = (2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def get_config():
  config = defaults.get_config()
  config.data.name = "mnist1d"
  config.data.label_noise = 0.15
  config.model.name = "mlp"
  config.model.widths = (64,)
  config.model.residual = False
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 1e-3
  config.batch_size = 100
  config.num_epochs = 300
  config.early_stopping.enabled = False
  config.checkpoint.save_every = 50
  return config


def get_sweep():
  return [{"model.widths": (w,)} for w in WIDTHS]
