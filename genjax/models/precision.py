"""Mixed precision: bfloat16 compute, float32 master weights (`config.precision`).

With `precision="bfloat16"` a model's forward pass (and so its backward pass) runs on

    θ_c = bf16(θ)  for every floating parameter θ (batch statistics excepted),  x_c = bf16(x),
    logits = f32(f(θ_c, x_c)),

while the optimizer, its state, the penalties, EMA and checkpoints keep the float32 θ: the
gradient of the cast is the identity cast back, so ∂L/∂θ arrives in float32 and an update
smaller than bf16's resolution (2⁻⁸ relative) is not lost. Losses and metrics are computed on
float32 logits; BatchNorm computes its statistics in float32 and keeps its running averages in
float32 (`batch_norm.BatchNorm`). bfloat16 has float32's exponent range, so no loss scaling.

bfloat16 is refused (`check_backend`) on a device without native bfloat16 arithmetic, where XLA
emulates it more slowly than float32: a CPU without AVX512-BF16 or AMX, an NVIDIA GPU below
compute capability 8.0 (Ampere). `config.allow_emulated_bfloat16=True` runs it there anyway
(to check a bfloat16 config's numbers on a laptop before an accelerator run).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from genjax.errors import ConfigError

PRECISIONS = ("float32", "bfloat16")
_CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def compute_dtype(precision: str):
  """The dtype a model computes in under `precision` (None: float32, nothing cast)."""
  if precision not in PRECISIONS:
    raise ConfigError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
  return jnp.bfloat16 if precision == "bfloat16" else None


def _cpu_flags(path: str = "/proc/cpuinfo") -> set[str]:
  try:
    with open(path) as f:
      return {flag for line in f if line.startswith("flags") for flag in line.split()[2:]}
  except OSError:
    return set()


def native_bfloat16(device) -> tuple[bool, str]:
  """(whether `device` computes in bfloat16 natively, what was found)."""
  platform = device.platform
  if platform == "tpu":
    return True, "TPU"
  if platform == "gpu":
    capability = getattr(device, "compute_capability", None)
    if capability is None:   # ROCm: CDNA2 and later have bfloat16 matrix units
      return True, f"GPU {device.device_kind}"
    major = int(str(capability).split(".")[0])
    return major >= 8, f"GPU {device.device_kind} (compute capability {capability})"
  if platform == "cpu":
    found = sorted(_cpu_flags() & set(_CPU_BF16_FLAGS))
    return bool(found), ("CPU with " + ", ".join(found) if found else
                         "CPU without AVX512-BF16 or AMX")
  return False, platform


def check_backend(precision: str, allow_emulated: bool, devices=None) -> None:
  """Refuses bfloat16 on devices that would emulate it (ConfigError, one line)."""
  if compute_dtype(precision) is None or allow_emulated:
    return
  device = (devices or jax.devices())[0]
  native, what = native_bfloat16(device)
  if not native:
    raise ConfigError(f"precision=bfloat16 needs native bfloat16 arithmetic, which this {what} "
                      "lacks (XLA would emulate it, slower than float32); use "
                      "--config.precision=float32, a GPU of compute capability >= 8.0 or a TPU, "
                      "or --config.allow_emulated_bfloat16=true to run it emulated anyway")


def cast_params(params, stat_mask, dtype):
  """`params` with every floating leaf cast to `dtype`, except the batch statistics that
  `stat_mask` marks (None: the model has none)."""
  def cast(leaf, is_stat=False):
    if is_stat or not jnp.issubdtype(leaf.dtype, jnp.floating):
      return leaf
    return leaf.astype(dtype)
  if stat_mask is None:
    return jax.tree.map(cast, params)
  return jax.tree.map(cast, params, stat_mask)
