"""Pre-activation ResNet-18 on Fashion-MNIST (Debian's files) under 5-fold stratified CV, the
5 folds as one program: width k (`model.resnet_width`, 64 = the standard ResNet-18), BatchNorm,
random crops (pad 4) and horizontal flips, SGD with Nesterov momentum 0.9, peak learning rate
0.1 with cosine decay, decoupled weight decay 5e-4, label smoothing 0.1, batch 128, 30 epochs,
early stopping on the validation loss with the best weights restored, the folds' ensemble tested
once.

    genjax train --config=experiments/fashion_mnist_resnet.py --workdir=runs/fashion_resnet

GPU-sized at k = 64 (add `--config.precision=bfloat16` on a GPU of compute capability >= 8.0);
on a CPU start with `--config.model.resnet_width=8 --config.num_epochs=3`. `get_config("k=16")`
sets the width.
Needs `apt-get install dataset-fashion-mnist`.
"""

from genjax.config import defaults


def get_config(arg: str = ""):
  config = defaults.get_config()
  config.data.name = "fashion_mnist_local"
  config.data.standardize = "channel"
  config.data.augment = "crop(pad=4,mode=zero)|flip(p=0.5)"
  config.model.name = "resnet"
  config.model.resnet_depth = 18
  config.model.resnet_width = int(arg.partition("k=")[2]) if arg else 64
  config.model.norm = "batch"
  config.optimizer.name = "momentum"
  config.optimizer.momentum = 0.9
  config.optimizer.nesterov = True
  config.optimizer.learning_rate = 0.1
  config.optimizer.schedule = "cosine"
  config.penalties.weight_decay.strength = 5e-4
  config.loss.label_smoothing = 0.1
  config.batch_size = 128
  config.eval_batch_size = 500
  config.num_epochs = 30
  config.early_stopping.enabled = True
  config.early_stopping.patience = 8
  config.cv.method = "stratified_kfold"
  config.cv.folds = 5
  return config
