"""Deep double descent over ResNet width (Nakkiran et al., 2019, their ResNet-18 width sweep,
here on Fashion-MNIST): pre-activation ResNet-18 of width k ∈ {1, 2, 4, ..., 64}, 15% of the
training labels replaced at random, Adam 1e-4, batch 128, 500 epochs (the paper trains CIFAR for
4K), no early stopping, no augmentation, no regularization: each width's final weights are
tested on the clean test split. Width is structural (one program per width, each a
job); `data.label_noise` and `seed` could be swept numerically inside each.

    genjax sweep --config=experiments/deep_double_descent.py --workdir=runs/deep_dd \\
        --parallel_jobs=1 --test_for_all_points

GPU-sized: k = 64 is the standard ResNet-18; on a GPU of compute capability >= 8.0 add
`--config.precision=bfloat16` (bf16 compute, float32 weights) and `--launcher=slurm` to run each
width as a cluster job (docs/pages/how-to/clusters.md). `get_config("smoke")` is the CPU smoke
version (digits, k ∈ {1, 2}, 1 epoch):

    genjax sweep --config=experiments/deep_double_descent.py:smoke --workdir=/tmp/dd_smoke \\
        --launcher=submitit_local

tests/integration/test_resnet.py runs exactly that (114 s on this project's 2-core CPU: ResNet-18 compiles
per width); 1 epoch is a smoke test of the pipeline, not a result (its accuracy is chance).
"""

from genjax.config import defaults

WIDTHS = (1, 2, 4, 8, 16, 32, 64)
SMOKE_WIDTHS = (1, 2)


def get_config(arg: str = ""):
  config = defaults.get_config()
  smoke = arg == "smoke"
  config.data.name = "digits" if smoke else "fashion_mnist_local"
  config.data.standardize = "channel"
  config.data.label_noise = 0.15
  config.model.name = "resnet"
  config.model.resnet_depth = 18
  config.model.resnet_width = SMOKE_WIDTHS[0] if smoke else 64
  config.model.norm = "batch"
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 1e-4
  config.batch_size = 64 if smoke else 128
  config.num_epochs = 1 if smoke else 500
  config.early_stopping.enabled = False
  config.checkpoint.save_every = 50
  return config


def get_sweep(arg: str = ""):
  widths = SMOKE_WIDTHS if arg == "smoke" else WIDTHS
  return [{"model.resnet_width": k} for k in widths]
