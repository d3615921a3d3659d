"""Pre-activation ResNets (He et al. 2016) for small images: ResNet-18/34 with a width k
(Nakkiran et al. 2019's deep double descent: stage widths k, 2k, 4k, 8k; k = 64 is the standard
ResNet-18) and WideResNet-d-k (Zagoruyko & Komodakis 2016: stages 16k, 32k, 64k of (d − 4)/6
blocks each).

A block: h = act(norm(x)); shortcut = x, or conv1x1(h) with stride s where the shape changes;
y = conv3x3(act(norm(conv3x3_s(h)))) + shortcut. The stem is conv3x3 (no pooling: 28×28 and
32×32 inputs keep their resolution in stage 1); the head is act(norm(·)), global average pool,
[dropout], dense(C). Convolutions run as `model.conv` says (`patch_conv`); `norm` is one of
`batch_norm.NORMS` ("batch" by default: weighted, device-summed statistics).
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
from flax import nnx

from genjax.models import patch_conv
from genjax.models.batch_norm import Norm
from genjax.models.layers import Dropout

RESNET_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


class PreActBlock(nnx.Module):
  """The module docstring's block, `c_in` → `c_out` channels at `stride`."""

  def __init__(self, c_in: int, c_out: int, stride: int, *, norm: str, conv_fn: Callable,
               rngs: nnx.Rngs):
    conv = lambda a, b, k, s: nnx.Conv(a, b, (k, k), strides=(s, s), padding="SAME",  # noqa: E731
                                       use_bias=False, conv_general_dilated=conv_fn, rngs=rngs)
    self.norm1, self.conv1 = Norm(norm, c_in, rngs=rngs), conv(c_in, c_out, 3, stride)
    self.norm2, self.conv2 = Norm(norm, c_out, rngs=rngs), conv(c_out, c_out, 3, 1)
    self.shortcut = conv(c_in, c_out, 1, stride) if (stride != 1 or c_in != c_out) else None

  def __call__(self, x, *, train: bool, weight=None, axis_name=None):
    h = jax.nn.relu(self.norm1(x, train=train, weight=weight, axis_name=axis_name))
    shortcut = x if self.shortcut is None else self.shortcut(h)
    h = self.conv1(h)
    h = jax.nn.relu(self.norm2(h, train=train, weight=weight, axis_name=axis_name))
    return self.conv2(h) + shortcut


class PreActResNet(nnx.Module):
  """Stages of `blocks` blocks with widths `widths` and first strides `strides`."""

  def __init__(self, input_shape: Sequence[int], num_classes: int, *, stem: int,
               widths: Sequence[int], blocks: Sequence[int], strides: Sequence[int],
               norm: str = "batch", dropout: float = 0.0, conv: str = "auto", rngs: nnx.Rngs):
    if len(input_shape) != 3:
      raise ValueError(f"a ResNet needs images (H, W, C), got examples of shape "
                       f"{tuple(input_shape)}")
    conv_fn = patch_conv.conv_fn(patch_conv.resolve(conv))
    self.stem = nnx.Conv(input_shape[-1], stem, (3, 3), padding="SAME", use_bias=False,
                         conv_general_dilated=conv_fn, rngs=rngs)
    layers, c = [], stem
    for width, n, stride in zip(widths, blocks, strides):
      for b in range(n):
        layers.append(PreActBlock(c, width, stride if b == 0 else 1, norm=norm,
                                  conv_fn=conv_fn, rngs=rngs))
        c = width
    self.blocks = nnx.List(layers)
    self.norm = Norm(norm, c, rngs=rngs)
    self.dropout = Dropout(float(dropout), layer_id=0)
    self.head = nnx.Linear(c, num_classes, rngs=rngs)

  def __call__(self, x, *, train: bool = False, rng=None, dropout=None, weight=None,
               axis_name=None):
    h = self.stem(x)
    for block in self.blocks:
      h = block(h, train=train, weight=weight, axis_name=axis_name)
    h = jax.nn.relu(self.norm(h, train=train, weight=weight, axis_name=axis_name))
    h = h.mean(axis=(1, 2))
    h = self.dropout(h, train=train, rng=rng, rate=dropout)
    return self.head(h)


def resnet(input_shape, num_classes, *, depth: int = 18, width: int = 64, **kwargs):
  """Pre-activation ResNet-`depth` (18 or 34) with stage widths k, 2k, 4k, 8k (k = `width`)."""
  if depth not in RESNET_BLOCKS:
    raise ValueError(f"ResNet depth must be one of {sorted(RESNET_BLOCKS)}, got {depth}")
  return PreActResNet(input_shape, num_classes, stem=width,
                      widths=[width * m for m in (1, 2, 4, 8)], blocks=RESNET_BLOCKS[depth],
                      strides=(1, 2, 2, 2), **kwargs)


def wide_resnet(input_shape, num_classes, *, depth: int = 28, width: int = 10, **kwargs):
  """WideResNet-`depth`-`width`: 3 stages of (depth − 4)/6 blocks, 16k, 32k, 64k channels."""
  if depth < 10 or (depth - 4) % 6:
    raise ValueError(f"WideResNet depth must be 6n + 4 (10, 16, 22, 28, ...), got {depth}")
  n = (depth - 4) // 6
  return PreActResNet(input_shape, num_classes, stem=16,
                      widths=[16 * width, 32 * width, 64 * width], blocks=(n, n, n),
                      strides=(1, 2, 2), **kwargs)
