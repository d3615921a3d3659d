"""Convolution as one matrix product over shifted slices ("patches"), for XLA:CPU.

For a channels-last input x (B, *S, C_in), a kernel K (*k, C_in, C_out), strides s and
zero padding p, with x̃ the padded input,

    y[b, o, :] = Σ_{t ∈ window} x̃[b, o·s + t, :] @ K[t, :, :]
               = P[b, o, :] @ reshape(K, (Π k · C_in, C_out)),

where P concatenates, along channels, the Π k slices x̃[:, t : t + (O-1)·s + 1 : s, :], one
per kernel offset t in row-major order (the order in which `reshape(K)` lays out K's rows).
This is `lax.conv_general_dilated` up to float summation order. Its gradients are slices,
pads and matrix products, which XLA:CPU runs at full speed inside a `lax.scan` and under
`vmap` (a batched matrix product), where it runs a native convolution many times slower
(jax-ml/jax#12868; a vmapped per-member kernel becomes a grouped convolution). See
BENCHMARKS.md, "Convolutions on XLA:CPU".

`CONV_IMPLS`: "xla" (`lax.conv_general_dilated`), "patches" (this), "auto" (patches on
CPU, XLA's convolution on other backends, where it is a cuDNN/TPU kernel).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

CONV_IMPLS = ("auto", "xla", "patches")


def resolve(choice: str, backend: str | None = None) -> str:
  """The convolution `choice` ("auto", "xla" or "patches") resolves to on `backend`."""
  if choice != "auto":
    return choice
  return "patches" if (backend or jax.default_backend()) == "cpu" else "xla"


def patch_conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
               dimension_numbers=None, feature_group_count=1, precision=None,
               preferred_element_type=None, **unused):
  """`lax.conv_general_dilated`'s signature for channels-last inputs (B, *S, C) and kernels
  (*k, C_in, C_out): the convolution as one matrix product over the input's patches.
  Supports any strides and padding ("SAME", "VALID" or (lo, hi) pairs); dilations and
  feature groups must be 1 (ValueError otherwise)."""
  spatial = tuple(rhs.shape[:-2])
  nd = len(spatial)
  for name, value in (("lhs_dilation", lhs_dilation), ("rhs_dilation", rhs_dilation)):
    if value is not None and any(int(d) != 1 for d in value):
      raise ValueError(f"patch_conv needs {name}=1, got {tuple(value)}; use model.conv=xla")
  if feature_group_count != 1:
    raise ValueError(f"patch_conv needs feature_group_count=1, got {feature_group_count}; "
                     "use model.conv=xla")
  strides = tuple(int(s) for s in window_strides)
  if isinstance(padding, str):
    padding = lax.padtype_to_pads(lhs.shape[1:1 + nd], spatial, strides, padding)
  x = jnp.pad(lhs, [(0, 0), *[(int(lo), int(hi)) for lo, hi in padding], (0, 0)])
  out = [(x.shape[1 + d] - spatial[d]) // strides[d] + 1 for d in range(nd)]
  slices = []
  for offset in np.ndindex(*spatial):
    window = tuple(slice(t, t + (o - 1) * s + 1, s) for t, o, s in zip(offset, out, strides))
    slices.append(x[(slice(None), *window, slice(None))])
  patches = slices[0] if len(slices) == 1 else jnp.concatenate(slices, axis=-1)
  return jnp.matmul(patches, rhs.reshape(-1, rhs.shape[-1]), precision=precision,
                    preferred_element_type=preferred_element_type)


def conv_fn(impl: str):
  """The function `nnx.Conv(conv_general_dilated=...)` calls for a resolved `impl`."""
  return {"xla": lax.conv_general_dilated, "patches": patch_conv}[impl]
