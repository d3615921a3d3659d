"""The experiment config: defaults assembled from each technique, and validation.

Every experiment in `experiments/` starts from `get_config()` and changes what
it needs. `validate(config)` checks the whole config in one pass, before any
data is loaded or anything compiles, and raises `ConfigError` (one line: the
problem and the fix). `validate_against_data` adds the checks that need the
dataset's sizes.
"""

from __future__ import annotations

import os

import ml_collections
from ml_collections import config_dict

from genjax import models, optim
from genjax.workdir import checkpoint, claims as workdir, paths
from genjax.train import early_stopping, metrics
from genjax.optim import penalties, reduce_on_plateau
from genjax.data import augment, standardize
from genjax.data import splits as validation
from genjax.errors import ConfigError
from genjax.models import precision
from genjax.train import callbacks, parallel


def get_config() -> ml_collections.ConfigDict:
  """Defaults: MNIST-1D, the reference MLP (40-100-100-10, residual), Adam."""
  config = ml_collections.ConfigDict()
  config.seed = 0   # the model's randomness (initialization, dropout, augmentation, shuffling)
  config.data = ml_collections.ConfigDict({
      "name": "mnist1d",          # an offline builder (mnist1d, digits, fashion_mnist_local), arrays registered with genjax.register_arrays, or any TFDS name
      "data_dir": "",             # TFDS data_dir; "" = TFDS's default (honours TFDS_DATA_DIR)
      "validation_fraction": 0.1, # hold-out carved from the training split, stratified
      "standardize": "feature",   # feature | channel | none; statistics from the training portion only
      "augment": "",              # e.g. "shift(max_shift=5)|noise(std=0.05)"; see genjax.data.augment
      "label_noise": 0.0,         # fraction of training labels replaced at random (1 = random labels)
      # The data's randomness (hold-out, folds, label noise); None = config.seed. config.seed
      # alone is then the model's (initialization, dropout, augmentation, shuffling).
      "split_seed": config_dict.placeholder(int),
  })
  config.cv = ml_collections.ConfigDict({
      "method": "none",           # none (hold-out) | kfold | stratified_kfold | group_kfold
                                  # | repeated_kfold | repeated_stratified_kfold
      "folds": 5,                 # K of the k-fold methods
      "repeats": 2,               # repeated_* methods only
      "shuffle": True,            # seeded by data.split_seed (default: config.seed)
      "groups": "",               # group_kfold: .npy file, one group id per training example
      "refit": False,             # also retrain on the whole training split, test it once
      "outer_folds": 0,           # > 1: nested CV in `genjax sweep` (genjax/sweeps/nested.py); 0: off
  })
  config.model = models.default_config()
  config.optimizer = optim.default_config()
  config.penalties = penalties.default_config()
  config.loss = ml_collections.ConfigDict({
      # Training targets (1 − α)·one_hot(y) + α/C (optax.smooth_labels); 0 = off. Evaluation
      # losses always use the true labels.
      "label_smoothing": 0.0,
  })
  config.ema = ml_collections.ConfigDict({
      # > 0: a moving average of the weights, θ̄ ← d·θ̄ + (1 − d)·θ after every step (θ̄₀ = θ₀),
      # is what is validated, monitored by early stopping, selected, checkpointed as best and
      # tested; the optimizer still steps θ. 0 = off.
      "decay": 0.0,
  })
  # Each member's learning rate × factor after `patience` epochs without improvement of its
  # early_stopping.monitor (optax.contrib.reduce_on_plateau; genjax/optim/reduce_on_plateau.py).
  config.reduce_on_plateau = reduce_on_plateau.default_config()
  config.early_stopping = early_stopping.default_config()
  config.checkpoint = checkpoint.default_config()
  config.parallel = parallel.default_config()
  config.batch_size = 100         # training examples per step
  config.eval_batch_size = 1000   # examples per evaluation step (a memory setting)
  config.num_epochs = 100         # the most epochs a member trains (early stopping may stop it)
  # How an epoch runs: "scan" (one lax.scan), "steps" (a host loop of compiled steps), or
  # "auto" (steps for XLA convolutions on CPU, else scan; genjax.train.epoch_loop.resolve).
  config.epoch_loop = "auto"
  # "float32", or "bfloat16": bf16 compute with float32 master weights, optimizer state and
  # checkpoints (genjax/models/precision.py). Refused on devices that would emulate bf16
  # (CPUs without AVX512-BF16/AMX, GPUs below compute capability 8.0) unless
  # allow_emulated_bfloat16.
  config.precision = "float32"
  config.allow_emulated_bfloat16 = False   # run bfloat16 even where the device emulates it
  config.metrics = ""             # extra evaluation metrics, e.g. "top5_accuracy,ece" (genjax.train.metrics)
  config.callbacks = ""           # registered user callbacks, e.g. "my_logger" (genjax.train.callbacks)
  return config


# One line per key whose default is set without a comment beside it (the optimizer's and the
# penalties' fields; NAME: every penalty). Every other key's description is the comment next
# to its default: scripts/gen_reference.py reads both into docs/pages/reference/config.md.
DESCRIPTIONS = {
    "optimizer.name": "a registered optimizer (genjax.optim.optimizers.OPTIMIZERS)",
    "optimizer.learning_rate": "the peak learning rate",
    "optimizer.momentum": "momentum: the momentum coefficient",
    "optimizer.nesterov": "momentum: Nesterov's variant",
    "optimizer.b1": "adam, adamw, nadam, lion: the first moment's decay",
    "optimizer.b2": "adam, adamw, nadam, lion: the second moment's decay",
    "optimizer.eps": "adam, adamw, nadam, rmsprop, adagrad: the denominator's epsilon",
    "optimizer.rms_decay": "rmsprop: the squared gradients' decay",
    "optimizer.weight_decay": "adamw's decoupled weight decay on kernels (optimizers "
                              "without decoupled decay refuse a value other than 0 or the "
                              "default; penalties.weight_decay works with any)",
    "optimizer.schedule": "the learning rate's shape over training "
                          "(genjax.optim.optimizers.LR_SCHEDULES)",
    "optimizer.warmup_epochs": "epochs of linear warmup from 0 (the warmup_* schedules)",
    "optimizer.final_lr_fraction": "the cosine schedules' end value, a fraction of the peak",
    "optimizer.grad_clip_norm": "clip the gradients' global norm to this; 0 = off",
    "penalties.NAME.strength": "λ, the penalty's strength; 0 = off",
    "penalties.NAME.mask": "regex over '/'-joined parameter paths the penalty applies to; "
                           "'' = every kernel",
    "penalties.NAME.schedule": "λ's shape over steps, λ_t = λ·shape(t) "
                               "(genjax.optim.penalties.STRENGTH_SCHEDULES)",
    "penalties.NAME.schedule_steps": "steps the schedule spans (> 0 unless constant)",
    "penalties.elastic_net.l1_ratio": "α in R(w) = α‖w‖₁ + (1 − α)·½‖w‖₂², in [0, 1]",
}


def _unknown_keys(cfg, ref, prefix=""):
  for key in cfg.keys():
    path = f"{prefix}{key}"
    if key not in ref:
      yield path
    elif isinstance(cfg[key], ml_collections.ConfigDict) and isinstance(ref[key], ml_collections.ConfigDict):
      yield from _unknown_keys(cfg[key], ref[key], path + ".")


def validate(config: ml_collections.ConfigDict) -> None:
  """Checks names, ranges and keys; raises ConfigError on the first problem."""
  unknown = list(_unknown_keys(config, get_config()))
  if unknown:
    from genjax import registry
    hint = registry.unregistered_hint(unknown[0])
    raise ConfigError(f"unknown config key '{unknown[0]}'; " + (hint or "see "
                      "genjax/config/defaults.py for the available keys (check the spelling)"))
  for name, value in (("seed", config.seed), ("data.split_seed", config.data.get("split_seed"))):
    if value is None and name != "seed":
      continue
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
      raise ConfigError(f"{name} must be an integer in [0, 2**32), got {value!r}; e.g. "
                        f"--config.{name}=0")
  for name in ("batch_size", "eval_batch_size", "num_epochs"):
    value = config[name]
    if not isinstance(value, int) or value <= 0:
      raise ConfigError(f"{name} must be a positive integer, got {value!r}; "
                        f"e.g. --config.{name}={get_config()[name]}")
  _check_values(config)
  _check_cv(config)
  models.validate_config(config.model)
  models.check_settings_used(config.model)
  optim.validate_config(config.optimizer, num_epochs=config.num_epochs)
  optim.check_settings_used(config.optimizer)
  penalties.validate_config(config.penalties)
  early_stopping.from_config(config.early_stopping)   # raises on bad settings
  reduce_on_plateau.validate_config(config.reduce_on_plateau)
  checkpoint.validate_config(config.checkpoint)
  workdir.check_output_name("checkpoint.subdir", config.checkpoint.subdir)
  data_dir = config.data.data_dir
  if data_dir and os.path.exists(data_dir) and not os.path.isdir(data_dir):
    raise ConfigError(f"data.data_dir='{data_dir}' is a file, not a directory; pass TFDS's data "
                      "directory, or '' for the default (~/tensorflow_datasets or $TFDS_DATA_DIR)")
  if data_dir:
    paths.data_dir_path(data_dir, "data.data_dir")
  else:
    paths.data_dir_path(os.environ.get("TFDS_DATA_DIR"), "$TFDS_DATA_DIR")
  parallel.validate_config(config.parallel)
  metrics.parse(config.metrics)
  callbacks.validate(config)



def _check_values(config) -> None:
  """Fractions, rates and option names of the top-level and data/loss/ema settings."""
  fraction = config.data.validation_fraction
  if not 0.0 < float(fraction) < 1.0:
    raise ConfigError(f"data.validation_fraction must be in (0, 1), got {fraction}; "
                      "e.g. --config.data.validation_fraction=0.1")
  if not 0.0 <= float(config.data.label_noise) <= 1.0:
    raise ConfigError(f"data.label_noise must be in [0, 1], got {config.data.label_noise}; "
                      "e.g. --config.data.label_noise=0.15")
  alpha = config.loss.label_smoothing
  if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha < 1.0:
    raise ConfigError(f"loss.label_smoothing must be in [0, 1), got {alpha!r}; e.g. "
                      "--config.loss.label_smoothing=0.1")
  decay = config.ema.decay
  if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0.0 <= decay < 1.0:
    raise ConfigError(f"ema.decay must be in [0, 1) (0 = off), got {decay!r}; e.g. "
                      "--config.ema.decay=0.999")
  if config.data.standardize not in standardize.MODES:
    raise ConfigError(f"unknown data.standardize '{config.data.standardize}'; choose from "
                      f"{', '.join(standardize.MODES)}")
  if config.cv.method not in ("none",) + validation.CV_METHODS:
    raise ConfigError(f"unknown cv.method '{config.cv.method}'; choose from none, "
                      f"{', '.join(validation.CV_METHODS)}")
  if config.get("precision", "float32") not in precision.PRECISIONS:
    raise ConfigError(f"unknown precision {config.precision!r}; choose from "
                      f"{', '.join(precision.PRECISIONS)}, e.g. --config.precision=bfloat16")
  if not isinstance(config.get("allow_emulated_bfloat16", False), bool):
    raise ConfigError(f"allow_emulated_bfloat16 must be true or false, got "
                      f"{config.allow_emulated_bfloat16!r}")
  if config.get("epoch_loop", "auto") not in ("auto", "scan", "steps"):
    raise ConfigError(f"unknown epoch_loop {config.epoch_loop!r}; choose auto, scan or steps")

def _check_cv(config) -> None:
  """cv.outer_folds, and cv settings the chosen cv.method would never read."""
  outer = config.cv.get("outer_folds", 0)
  if isinstance(outer, bool) or not isinstance(outer, int) or outer < 0 or outer == 1:
    raise ConfigError(f"cv.outer_folds must be 0 (no nested CV) or an integer >= 2, got "
                      f"{outer!r}; e.g. --config.cv.outer_folds=5")
  if outer and config.cv.method == "none":
    raise ConfigError("cv.outer_folds (nested cross-validation) needs inner folds, but "
                      "cv.method=none is a hold-out split; set --config.cv.method="
                      "stratified_kfold (or kfold), or cv.outer_folds=0")
  if config.cv.groups and config.cv.method != "group_kfold":
    raise ConfigError(f"cv.groups={config.cv.groups!r} is only read by cv.method=group_kfold, "
                      f"not cv.method={config.cv.method}: it would change nothing; set "
                      "--config.cv.method=group_kfold, or remove cv.groups")
  if config.cv.repeats != get_config().cv.repeats and not config.cv.method.startswith("repeated"):
    raise ConfigError(f"cv.repeats={config.cv.repeats!r} is only read by the repeated_* "
                      f"methods, not cv.method={config.cv.method}: it would change nothing; "
                      "set --config.cv.method=repeated_stratified_kfold (or repeated_kfold), "
                      "or remove cv.repeats")

def validate_against_data(config, splits, num_train: int) -> None:
  """Checks that need the dataset: batch vs split size, augmentation vs input kind."""
  if config.batch_size > num_train:
    raise ConfigError(f"batch_size {config.batch_size} is larger than the training portion "
                      f"({num_train} examples of '{splits.name}'); lower --config.batch_size")
  augment.validate(config.data.augment, splits.input_shape)
