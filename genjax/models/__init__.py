"""Models by name, seen by training code only as pure functions.

    model = genjax.models.create(config.model, input_shape, num_classes)
    params = model.init(key)                      # nested dict of arrays
    logits = model.apply(params, x, train=True, rng=per_example_keys)

A new architecture is one NNX module plus one `@register("name")` factory
`(model_cfg, input_shape, num_classes, rngs) -> nnx.Module`, kept in `MODELS`
(a `genjax.registry.Registry`: a different definition under a taken name is refused).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx, traverse_util

from genjax.errors import ConfigError
from genjax.models import patch_conv, precision as precision_lib, resnet
from genjax.models.batch_norm import NORMS
from genjax.models.layers import ACTIVATIONS, LANE_BITS
from genjax.models.zoo import CNN1D, CNN2D, MLP, LogisticRegression
from genjax.registry import Registry

MAX_DROPOUT = 1.0 - 2.0 ** -LANE_BITS   # the largest rate a 16-bit keep threshold resolves

MODELS: Registry[Callable[..., nnx.Module]] = Registry("model", config_key="model.name")
NORM_MODELS = ("mlp", "cnn2d", "resnet", "wide_resnet")   # built-ins that take model.norm


def register(name: str):
  """Decorator registering `factory(model_cfg, input_shape, num_classes, rngs) -> nnx.Module`
  as `name` in `MODELS` (ValueError if another definition holds the name)."""
  return MODELS.register(name)


def names() -> tuple[str, ...]:
  """Registered model names, sorted."""
  return tuple(MODELS.names())


def _plain_norm(cfg) -> str:
  """model.norm for the MLP and the small CNNs: auto is none."""
  return "none" if cfg.norm == "auto" else cfg.norm


@register("logreg")
def _logreg(cfg, input_shape, num_classes, rngs):
  """Multinomial logistic regression on the flattened input (`LogisticRegression`)."""
  return LogisticRegression(math.prod(input_shape), num_classes, rngs=rngs)


@register("mlp")
def _mlp(cfg, input_shape, num_classes, rngs):
  """A multilayer perceptron (`MLP`): model.widths, activation, residual, dropout, norm."""
  return MLP(math.prod(input_shape), num_classes, widths=tuple(cfg.widths),
             activation=cfg.activation, dropout=dropout_rates(cfg), residual=cfg.residual,
             norm=_plain_norm(cfg), rngs=rngs)


@register("cnn1d")
def _cnn1d(cfg, input_shape, num_classes, rngs):
  """MNIST-1D's reference 1D CNN (`CNN1D`) for signals: model.channels, dropout, conv."""
  if len(input_shape) not in (1, 2):
    raise ConfigError(f"model 'cnn1d' needs 1D signals, got examples of shape {input_shape}; "
                      "use model.name=cnn2d or mlp for images")
  return CNN1D(input_shape, num_classes, channels=cfg.channels, dropout=dropout_rates(cfg),
               conv=cfg.conv, rngs=rngs)


@register("cnn2d")
def _cnn2d(cfg, input_shape, num_classes, rngs):
  """A small 2D CNN for images (`CNN2D`, as flax/examples/mnist's): dropout, conv, norm."""
  if len(input_shape) != 3:
    raise ConfigError(f"model 'cnn2d' needs images (H, W, C), got examples of shape "
                      f"{input_shape}; use model.name=cnn1d or mlp for signals")
  return CNN2D(input_shape, num_classes, dropout=dropout_rates(cfg), conv=cfg.conv,
               norm=_plain_norm(cfg), rngs=rngs)


def _resnet_kwargs(cfg, input_shape, name):
  if len(input_shape) != 3:
    raise ConfigError(f"model '{name}' needs images (H, W, C), got examples of shape "
                      f"{input_shape}; use model.name=cnn1d or mlp for signals")
  rates = dropout_rates(cfg)
  if not isinstance(rates, float):
    raise ConfigError(f"model '{name}' has one dropout layer (before its head): use "
                      "model.dropout, not model.layer_dropout")
  return dict(dropout=rates, conv=cfg.conv, norm="batch" if cfg.norm == "auto" else cfg.norm)


@register("resnet")
def _resnet(cfg, input_shape, num_classes, rngs):
  """Pre-activation ResNet-18/34 for images: model.resnet_depth, resnet_width (k)."""
  return resnet.resnet(input_shape, num_classes, depth=cfg.resnet_depth, width=cfg.resnet_width,
                       rngs=rngs, **_resnet_kwargs(cfg, input_shape, "resnet"))


@register("wide_resnet")
def _wide_resnet(cfg, input_shape, num_classes, rngs):
  """WideResNet-d-k for images: model.wrn_depth (d), wrn_width (k)."""
  return resnet.wide_resnet(input_shape, num_classes, depth=cfg.wrn_depth, width=cfg.wrn_width,
                            rngs=rngs, **_resnet_kwargs(cfg, input_shape, "wide_resnet"))


def default_config() -> ml_collections.ConfigDict:
  """Fields every model reads from (each factory uses those it needs)."""
  return ml_collections.ConfigDict({
      "name": "mlp",             # a registered model (genjax.models.MODELS)
      "widths": (100, 100),      # mlp hidden widths
      "activation": "relu",      # mlp: the hidden layers' activation
      "residual": True,          # mlp: add h_{i-1} where widths match
      "channels": 25,            # cnn1d filters per conv
      "conv": "auto",            # cnn1d/cnn2d convolutions: auto (patches on CPU), xla, patches
      # none | batch | layer | group (models/batch_norm.py); auto: batch for the ResNets, else
      # none. mlp, cnn2d and the ResNets have norm layers.
      "norm": "auto",
      "resnet_depth": 18,        # resnet: pre-activation ResNet-18 or -34 (models/resnet.py)
      "resnet_width": 64,        # resnet: k, stage widths k, 2k, 4k, 8k (Nakkiran et al. 2019)
      "wrn_depth": 28,           # wide_resnet: WRN-d-k, d = 6n + 4
      "wrn_width": 10,           # wide_resnet: k, stage widths 16k, 32k, 64k
      "dropout": 0.0,            # dropout rate after every hidden layer
      "layer_dropout": (),       # optional: one rate per hidden layer, overrides dropout
  })


def validate_config(cfg: ml_collections.ConfigDict) -> None:
  if cfg.name not in MODELS:
    raise ConfigError(f"unknown model '{cfg.name}'; choose model.name from {', '.join(names())}")
  if cfg.activation not in ACTIVATIONS:
    raise ConfigError(f"unknown model.activation '{cfg.activation}'; choose from "
                      f"{', '.join(sorted(ACTIVATIONS))}")
  if cfg.norm not in ("auto",) + NORMS:
    raise ConfigError(f"unknown model.norm '{cfg.norm}'; choose from auto, {', '.join(NORMS)}")
  if cfg.norm not in ("auto", "none") and cfg.name not in NORM_MODELS:
    raise ConfigError(f"model '{cfg.name}' has no norm layers; model.norm={cfg.norm} needs one "
                      f"of {', '.join(NORM_MODELS)}, or model.norm=none")
  if cfg.conv not in patch_conv.CONV_IMPLS:
    raise ConfigError(f"unknown model.conv '{cfg.conv}'; choose from "
                      f"{', '.join(patch_conv.CONV_IMPLS)}")
  for name in ("resnet_width", "wrn_width"):
    if int(cfg[name]) < 1:
      raise ConfigError(f"model.{name} must be >= 1, got {cfg[name]}")
  if int(cfg.resnet_depth) not in resnet.RESNET_BLOCKS:
    raise ConfigError(f"model.resnet_depth must be one of {sorted(resnet.RESNET_BLOCKS)}, got "
                      f"{cfg.resnet_depth}")
  if int(cfg.wrn_depth) < 10 or (int(cfg.wrn_depth) - 4) % 6:
    raise ConfigError(f"model.wrn_depth must be 6n + 4 (10, 16, 22, 28, ...), got "
                      f"{cfg.wrn_depth}")
  if any(int(w) <= 0 for w in cfg.widths):
    raise ConfigError(f"model.widths must be positive, got {tuple(cfg.widths)}")
  for r in [cfg.dropout, *cfg.layer_dropout]:
    if not 0.0 <= float(r) <= MAX_DROPOUT:   # masks resolve a keep probability to 2^-16
      raise ConfigError(f"model.dropout and model.layer_dropout must be in [0, 1 - 2^-16], got "
                        f"{r}; e.g. --config.model.dropout=0.2")


# The model.* settings each built-in model reads (model.name aside); a registered user model
# may read any of them, so only the built-ins are checked (`check_settings_used`).
_READS = {
    "logreg": (),
    "mlp": ("widths", "activation", "residual", "norm", "dropout", "layer_dropout"),
    "cnn1d": ("channels", "conv", "dropout", "layer_dropout"),
    "cnn2d": ("conv", "norm", "dropout", "layer_dropout"),
    "resnet": ("resnet_depth", "resnet_width", "conv", "norm", "dropout"),
    "wide_resnet": ("wrn_depth", "wrn_width", "conv", "norm", "dropout"),
}
_USE = {"widths": "mlp", "activation": "mlp", "residual": "mlp", "channels": "cnn1d",
        "conv": "cnn1d, cnn2d or the ResNets", "norm": ", ".join(NORM_MODELS),
        "dropout": "mlp, cnn1d, cnn2d or the ResNets", "layer_dropout": "mlp, cnn1d or cnn2d",
        "resnet_depth": "resnet", "resnet_width": "resnet", "wrn_depth": "wide_resnet",
        "wrn_width": "wide_resnet"}


def check_settings_used(cfg: ml_collections.ConfigDict) -> None:
  """ConfigError for a model.* setting changed from its default that the built-in model
  `cfg.name` never reads (it would be taken without a word: e.g. model.dropout on logreg, a
  dropout sweep whose rows are all the same model)."""
  reads = _READS.get(cfg.name)
  if reads is None:   # a user model: it may read anything
    return
  ref = default_config()
  for key in ref:
    if key == "name" or key in reads or key not in cfg:
      continue
    value, default = cfg[key], ref[key]
    same = (tuple(value) == tuple(default) if isinstance(default, tuple)
            else value == default)
    if key == "dropout" and float(value) == 0.0:
      same = True
    if key == "layer_dropout" and not any(float(r) for r in value):
      same = True
    if not same:
      shown = tuple(value) if isinstance(value, (list, tuple)) else value
      raise ConfigError(f"model '{cfg.name}' has no use for model.{key}={shown!r} (only "
                        f"{_USE[key]} read it): it would change nothing; remove it (default "
                        f"{default!r}) or choose a model that has it")


def dropout_rates(cfg: ml_collections.ConfigDict):
  """`layer_dropout` when given (one rate per hidden layer), else `dropout`."""
  return tuple(float(r) for r in cfg.layer_dropout) if len(cfg.layer_dropout) else float(cfg.dropout)


@dataclasses.dataclass(frozen=True)
class Model:
  """A model as pure functions of a parameter pytree (a nested dict of arrays)."""

  name: str
  graphdef: Any
  input_shape: tuple[int, ...]
  num_classes: int
  _init: Callable[[jax.Array], Any]
  conv: str = "xla"   # how its convolutions run: "xla" or "patches" (`patch_conv`)
  # True at the leaves of `init`'s tree that are batch statistics (`nnx.BatchStat`): state
  # the forward pass updates in training mode, not parameters. None: the model has none.
  stat_mask: Any = None
  # What the forward pass computes in (`precision`): None = float32; jnp.bfloat16 casts the
  # weights (batch statistics excepted) and inputs, and returns float32 logits.
  compute_dtype: Any = None

  @property
  def has_batch_stats(self) -> bool:
    return self.stat_mask is not None

  def init(self, key: jax.Array) -> dict:
    """Fresh parameters from a PRNG key (deterministic for the key)."""
    return self._init(key)

  @functools.cached_property
  def param_shapes(self) -> dict:
    """The parameters' shapes and dtypes (`jax.ShapeDtypeStruct`s), traced once per model."""
    return jax.eval_shape(self._init, jax.random.key(0))

  def apply(self, params: dict, x: jax.Array, *, train: bool, rng: jax.Array | None = None,
            dropout: jax.Array | float | None = None):
    """Logits (B, C) for inputs (B, *input_shape); `rng` is (B,) keys, read when train;
    `dropout` (a scalar, possibly traced) overrides every dropout layer's rate."""
    params, x = self._for_compute(params, x)
    logits = nnx.merge(self.graphdef, params)(x, train=train, rng=rng, dropout=dropout)
    return logits.astype(jnp.float32)

  def apply_train(self, params: dict, x: jax.Array, *, rng: jax.Array | None = None,
                  dropout: jax.Array | float | None = None, weight: jax.Array | None = None,
                  axis_name: str | None = None):
    """Training-mode (logits, params with updated batch statistics): the statistics of the
    examples weighted by `weight` (B,), reduced over the devices of `axis_name`
    (`batch_norm.BatchNorm`). Only for models with batch statistics."""
    params, x = self._for_compute(params, x)
    module = nnx.merge(self.graphdef, params)
    logits = module(x, train=True, rng=rng, dropout=dropout, weight=weight, axis_name=axis_name)
    return logits.astype(jnp.float32), nnx.to_pure_dict(nnx.state(module))

  def _for_compute(self, params, x):
    """(params, x) cast to `compute_dtype` (batch statistics stay float32)."""
    if self.compute_dtype is None:
      return params, x
    return (precision_lib.cast_params(params, self.stat_mask, self.compute_dtype),
            x.astype(self.compute_dtype))


def create(cfg: ml_collections.ConfigDict, input_shape, num_classes: int, *,
           precision: str = "float32") -> Model:
  """Builds the registered model `cfg.name` for the dataset's shapes, computing in
  `precision` ("float32" or "bfloat16", `genjax.models.precision`)."""
  validate_config(cfg)
  input_shape = tuple(int(d) for d in input_shape)
  factory = MODELS.get(cfg.name)
  try:
    abstract = nnx.eval_shape(lambda: factory(cfg, input_shape, num_classes, nnx.Rngs(0)))
  except ConfigError:   # the factory's own one line (e.g. cnn2d given 1D signals)
    raise
  except ValueError as e:
    raise ConfigError(f"model '{cfg.name}': {e}; fix model.layer_dropout") from None
  graphdef, _ = nnx.split(abstract)

  def init(key):
    module = factory(cfg, input_shape, num_classes, nnx.Rngs(params=key))
    return nnx.to_pure_dict(nnx.split(module)[1])

  return Model(cfg.name, graphdef, input_shape, int(num_classes), init,
               conv=patch_conv.resolve(cfg.conv), stat_mask=_stat_mask(abstract),
               compute_dtype=precision_lib.compute_dtype(precision))


def _stat_mask(module):
  """The pure-dict tree of `module`'s variables, True at batch statistics; None if none."""
  stats = traverse_util.flatten_dict(nnx.to_pure_dict(nnx.state(module, nnx.BatchStat)))
  if not stats:
    return None
  full = traverse_util.flatten_dict(nnx.to_pure_dict(nnx.state(module)))
  return traverse_util.unflatten_dict({k: k in stats for k in full})
