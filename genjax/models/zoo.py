"""The model zoo: Flax NNX modules called as `model(x, train=..., rng=...)`.

Every module maps a batch `x` of shape (B, *input_shape) to logits (B, C).
`rng` holds one key per example (see `layers.Dropout`); it is only read in
training mode by layers that draw randomness. `dropout`, when given, is one
rate (possibly a traced array) that overrides every dropout layer's rate. Convolutional
modules take `conv` ("auto", "xla" or "patches"; `patch_conv.CONV_IMPLS`): how their
convolutions are computed, with the same parameters and numbers up to summation order.
Modules with a `norm` ("none", "batch", "layer", "group"; `batch_norm.NORMS`) also take, in
training mode, `weight` (B,) example weights and `axis_name` (data-parallel devices) for batch
statistics (`batch_norm.BatchNorm`).
"""

from __future__ import annotations

from typing import Sequence

import jax
from flax import nnx

from genjax.models import patch_conv
from genjax.models.batch_norm import Norm
from genjax.models.layers import ACTIVATIONS, Dropout


def _rates(dropout, n: int) -> list[float]:
  """One dropout rate per hidden layer from a float or a per-layer sequence."""
  if isinstance(dropout, (int, float)):
    return [float(dropout)] * n
  rates = [float(r) for r in dropout]
  if len(rates) != n:
    raise ValueError(f"model.layer_dropout has {len(rates)} rates for {n} hidden layers")
  return rates


class LogisticRegression(nnx.Module):
  """Multinomial logistic regression: logits = flatten(x) W + b."""

  def __init__(self, in_features: int, num_classes: int, *, rngs: nnx.Rngs):
    self.head = nnx.Linear(in_features, num_classes, rngs=rngs)

  def __call__(self, x, *, train: bool = False, rng=None, dropout=None):
    return self.head(x.reshape(x.shape[0], -1))


class MLP(nnx.Module):
  """Multilayer perceptron with optional residual connections.

  h_0 = act(x W_0); h_i = [h_{i-1} +] act(h_{i-1} W_i) (the residual is added
  where widths match); dropout after each hidden activation; logits = h W_out.
  MNIST-1D's reference MLP is widths (100, 100) with the residual.
  """

  def __init__(self, in_features: int, num_classes: int, *, widths: Sequence[int],
               activation: str = "relu", dropout=0.0, residual: bool = False,
               norm: str = "none", rngs: nnx.Rngs):
    self.act = ACTIVATIONS[activation]
    self.residual = residual
    rates = _rates(dropout, len(widths))
    sizes = [in_features, *widths]
    self.num_hidden = len(widths)
    self.norm = norm
    for i in range(len(widths)):
      # BatchNorm subtracts the batch mean: a bias before it would cancel, and Adam would
      # still move it on the float noise of its zero gradient, so the layer has none.
      setattr(self, f"dense{i}", nnx.Linear(sizes[i], sizes[i + 1], use_bias=norm != "batch",
                                            rngs=rngs))
      if norm != "none":   # dense -> norm -> activation
        setattr(self, f"norm{i}", Norm(norm, sizes[i + 1], rngs=rngs))
      setattr(self, f"dropout{i}", Dropout(rates[i], layer_id=i))
    self.head = nnx.Linear(sizes[-1], num_classes, rngs=rngs)

  def __call__(self, x, *, train: bool = False, rng=None, dropout=None, weight=None,
               axis_name=None):
    h = x.reshape(x.shape[0], -1)
    for i in range(self.num_hidden):
      z = getattr(self, f"dense{i}")(h)
      if self.norm != "none":
        z = getattr(self, f"norm{i}")(z, train=train, weight=weight, axis_name=axis_name)
      z = self.act(z)
      z = getattr(self, f"dropout{i}")(z, train=train, rng=rng, rate=dropout)
      h = h + z if (self.residual and z.shape == h.shape) else z
    return self.head(h)


class CNN1D(nnx.Module):
  """MNIST-1D's reference 1D CNN.

  Three convolutions of `channels` filters (kernel 5 stride 2, then 3 stride 2,
  3 stride 2, padding 1), ReLU after each, then a linear layer on the
  flattened features. Input (B, L) or (B, L, C).
  """

  def __init__(self, input_shape: Sequence[int], num_classes: int, *, channels: int = 25,
               dropout=0.0, conv: str = "auto", rngs: nnx.Rngs):
    conv_fn = patch_conv.conv_fn(patch_conv.resolve(conv))
    length = input_shape[0]
    c_in = input_shape[1] if len(input_shape) > 1 else 1
    specs = [(5, 2), (3, 2), (3, 2)]
    rates = _rates(dropout, len(specs))
    for i, (k, s) in enumerate(specs):
      setattr(self, f"conv{i}", nnx.Conv(c_in if i == 0 else channels, channels, (k,),
                                         strides=(s,), padding=((1, 1),),
                                         conv_general_dilated=conv_fn, rngs=rngs))
      setattr(self, f"dropout{i}", Dropout(rates[i], layer_id=i))
      length = (length + 2 - k) // s + 1
    self.head = nnx.Linear(length * channels, num_classes, rngs=rngs)

  def __call__(self, x, *, train: bool = False, rng=None, dropout=None):
    h = x[..., None] if x.ndim == 2 else x
    for i in range(3):
      h = jax.nn.relu(getattr(self, f"conv{i}")(h))
      h = getattr(self, f"dropout{i}")(h, train=train, rng=rng, rate=dropout)
    return self.head(h.reshape(h.shape[0], -1))


class CNN2D(nnx.Module):
  """A small 2D CNN for 28x28 (or smaller) images, as in flax/examples/mnist.

  conv(32, 3x3) -> [norm] -> relu -> avgpool 2 -> conv(64, 3x3) -> [norm] -> relu ->
  avgpool 2 -> dense(256) -> relu -> dropout -> dense(C). Pools are skipped on maps < 2x2.
  """

  def __init__(self, input_shape: Sequence[int], num_classes: int, *,
               channels: Sequence[int] = (32, 64), hidden: int = 256, dropout=0.0,
               conv: str = "auto", norm: str = "none", rngs: nnx.Rngs):
    h, w, c = input_shape
    conv_fn = patch_conv.conv_fn(patch_conv.resolve(conv))
    bias = norm != "batch"   # a bias before BatchNorm cancels (see MLP)
    self.conv0 = nnx.Conv(c, channels[0], (3, 3), conv_general_dilated=conv_fn, use_bias=bias,
                          rngs=rngs)
    self.conv1 = nnx.Conv(channels[0], channels[1], (3, 3), conv_general_dilated=conv_fn,
                          use_bias=bias, rngs=rngs)
    self.norm = norm
    if norm != "none":
      self.norm0 = Norm(norm, channels[0], rngs=rngs)
      self.norm1 = Norm(norm, channels[1], rngs=rngs)
    self.pools = []
    for _ in range(2):
      pool = h >= 2 and w >= 2
      self.pools.append(pool)
      if pool:
        h, w = h // 2, w // 2
    self.pools = tuple(self.pools)
    self.dense = nnx.Linear(h * w * channels[1], hidden, rngs=rngs)
    self.dropout0 = Dropout(_rates(dropout, 1)[0], layer_id=0)
    self.head = nnx.Linear(hidden, num_classes, rngs=rngs)

  def __call__(self, x, *, train: bool = False, rng=None, dropout=None, weight=None,
               axis_name=None):
    h = x
    for i, (conv, pool) in enumerate(((self.conv0, self.pools[0]), (self.conv1, self.pools[1]))):
      h = conv(h)
      if self.norm != "none":
        h = getattr(self, f"norm{i}")(h, train=train, weight=weight, axis_name=axis_name)
      h = jax.nn.relu(h)
      if pool:
        h = nnx.avg_pool(h, (2, 2), strides=(2, 2))
    h = jax.nn.relu(self.dense(h.reshape(h.shape[0], -1)))
    h = self.dropout0(h, train=train, rng=rng, rate=dropout)
    return self.head(h)
