"""`patch_conv`: a convolution as one matrix product over shifted slices, checked against a
direct numpy loop over output positions (the definition), against `lax.conv_general_dilated`
(values and gradients, vmapped over per-member kernels), and inside the model zoo."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from genjax import models
from genjax.models import patch_conv as pc

CASES = [  # input shape, kernel window, strides, padding
    ((2, 9, 9, 3), (3, 3), (1, 1), "SAME"),
    ((2, 8, 7, 2), (3, 2), (2, 1), "VALID"),
    ((2, 10, 3), (5,), (2,), ((1, 1),)),          # cnn1d's first layer
    ((3, 6, 6, 1), (1, 1), (1, 1), "SAME"),
    ((1, 7, 8, 2), (4, 4), (3, 2), ((2, 0), (1, 3))),
]


def _direct(x, w, strides, padding):
  """y[b, o] = Σ_t x̃[b, o·s + t] · w[t]: the definition, one output position at a time."""
  nd = w.ndim - 2
  if isinstance(padding, str):
    padding = lax.padtype_to_pads(x.shape[1:1 + nd], w.shape[:nd], strides, padding)
  xp = np.pad(x, [(0, 0), *padding, (0, 0)])
  out_shape = [(xp.shape[1 + d] - w.shape[d]) // strides[d] + 1 for d in range(nd)]
  y = np.zeros((x.shape[0], *out_shape, w.shape[-1]), np.float64)
  for o in np.ndindex(*out_shape):
    window = tuple(slice(i * s, i * s + k) for i, s, k in zip(o, strides, w.shape[:nd]))
    patch = xp[(slice(None), *window, slice(None))]          # (B, *k, C_in)
    y[(slice(None), *o, slice(None))] = np.tensordot(patch, w, axes=nd + 1)
  return y


def _dn(x, w):
  specs = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC")}[w.ndim - 2]
  return lax.conv_dimension_numbers(x.shape, w.shape, specs)


@pytest.mark.parametrize("shape,window,strides,padding", CASES)
def test_equals_the_definition_and_xla(shape, window, strides, padding):
  rng = np.random.default_rng(0)
  x = rng.normal(size=shape).astype(np.float32)
  w = rng.normal(size=(*window, shape[-1], 5)).astype(np.float32)
  got = pc.patch_conv(x, w, strides, padding, dimension_numbers=_dn(x, w), precision="highest")
  np.testing.assert_allclose(got, _direct(x, w, strides, padding), rtol=1e-5, atol=1e-5)
  xla = lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=_dn(x, w),
                                 precision="highest")
  np.testing.assert_allclose(got, xla, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("shape,window,strides,padding", CASES[:3])
def test_gradients_and_vmapped_kernels_equal_xla(shape, window, strides, padding):
  rng = np.random.default_rng(1)
  x = rng.normal(size=shape).astype(np.float32)
  ws = rng.normal(size=(3, *window, shape[-1], 4)).astype(np.float32)    # 3 members' kernels
  dn = _dn(x, ws[0])

  def loss(conv):
    return lambda x, w: jnp.sum(jnp.sin(conv(x, w, strides, padding, dimension_numbers=dn,
                                             precision="highest")))

  for f in (jax.grad, lambda f: jax.grad(f, argnums=1)):
    got = jax.vmap(f(loss(pc.patch_conv)), in_axes=(None, 0))(x, ws)
    want = jax.vmap(f(loss(lax.conv_general_dilated)), in_axes=(None, 0))(x, ws)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_unsupported_arguments_are_refused():
  x, w = np.zeros((1, 5, 5, 2), np.float32), np.zeros((3, 3, 2, 2), np.float32)
  with pytest.raises(ValueError, match="rhs_dilation"):
    pc.patch_conv(x, w, (1, 1), "SAME", rhs_dilation=(2, 2))
  with pytest.raises(ValueError, match="feature_group_count"):
    pc.patch_conv(x, w[..., :1, :], (1, 1), "SAME", feature_group_count=2)


def test_auto_is_patches_on_cpu_and_xla_elsewhere():
  assert pc.resolve("auto", "cpu") == "patches"
  assert pc.resolve("auto", "gpu") == pc.resolve("auto", "tpu") == "xla"
  assert pc.resolve("xla", "cpu") == "xla" and pc.resolve("patches", "gpu") == "patches"


@pytest.mark.slow
@pytest.mark.parametrize("name,shape", [("cnn1d", (40,)), ("cnn2d", (12, 12, 1))])
def test_models_with_either_convolution_share_parameters_and_logits(name, shape):
  built = {}
  for conv in ("xla", "patches"):
    cfg = models.default_config()
    cfg.name, cfg.conv, cfg.channels = name, conv, 6
    built[conv] = models.create(cfg, shape, 10)
    assert built[conv].conv == conv
  params = built["xla"].init(jax.random.key(0))
  same = built["patches"].init(jax.random.key(0))
  jax.tree.map(np.testing.assert_array_equal, params, same)
  x = jax.random.normal(jax.random.key(1), (4, *shape))
  np.testing.assert_allclose(built["patches"].apply(params, x, train=False),
                             built["xla"].apply(params, x, train=False), rtol=1e-4, atol=1e-5)
