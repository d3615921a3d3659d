"""Placing the member-vmapped epoch on devices.

Layouts (`config.parallel`):

* `data`: every device holds the (replicated) train state and data; each global
  batch is split across devices and gradients are summed with `psum` (see
  `steps`). Results do not depend on the device count beyond float summation
  order; the global batch size stays `batch_size`.
* `members`: the member axis (folds × sweep points) is split across devices,
  with no communication; needs members divisible by devices.
* `auto`: `members` when the members divide evenly over ≥ 1 devices each, else `data`. On
  the host's cores made devices (`cores_as_devices`: `--cpu_devices`, one process,
  `devices=0`): `members`, ⌈M / D⌉ members per device (the fewest there can be on D
  devices) on the fewest devices that reach it, never `data` — they share the same cores,
  and a data-parallel MLP epoch ran 2.4× slower on 2 of them. When the members do not divide
  evenly, `Layout.padding` says how many padding members the program adds (copies of the
  last member, trained alongside and never reported; see `genjax.train.program`) so that
  every device holds the same count: 5 folds on 2 devices are 3 + 3, on 4 devices 2 + 2 + 2.
  Without padding (`resolve(pad=False)`, the pmap backend): the most devices that divide the
  members, one when none does.

Backends: `shard_map` over a 1-D device mesh (JAX's successor of `pmap`), or
`pmap` itself, which runs the same per-device function and gives the same numbers.

Multi-host (`genjax.distributed`): the mesh holds every process's devices,
`parallel.devices` counts devices across all processes and takes the same
number from each; only the `shard_map` backend spans processes.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import Mesh, PartitionSpec as P

from genjax import distributed
from genjax.errors import ConfigError

BACKENDS = ("shard_map", "pmap")
AXES = ("data", "members", "auto")
DATA_AXIS = "data"


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      "backend": "shard_map",   # shard_map | pmap
      "axis": "auto",           # data | members | auto
      "devices": 0,             # how many local devices to use; 0 = all
  })


@dataclasses.dataclass(frozen=True)
class Layout:
  axis: str          # "single", "data" or "members"
  backend: str
  devices: tuple
  padding: int = 0   # members added to divide over the devices (`genjax.train.program`)

  @property
  def num_devices(self) -> int:
    return len(self.devices)

  @property
  def mesh(self) -> Mesh:
    return Mesh(np.array(self.devices), (DATA_AXIS if self.axis == "data" else "members",))

  def state_sharding(self):
    """Where the initial train state goes, as the epoch program takes it: replicated
    (`data`) or split on the member axis (`members`); None on one device. Born there, it
    needs no resharding before the first epoch (a device-to-device copy compiles a small
    program per array shape: ~0.3 s for the MLP's state), and arrays committed to one local
    device could not enter a program spanning processes."""
    if self.axis == "single":
      return None
    return jax.sharding.NamedSharding(self.mesh, P("members") if self.axis == "members" else P())


def validate_config(cfg) -> None:
  if cfg.backend not in BACKENDS:
    raise ConfigError(f"unknown parallel.backend '{cfg.backend}'; choose from {', '.join(BACKENDS)}")
  if cfg.axis not in AXES:
    raise ConfigError(f"unknown parallel.axis '{cfg.axis}'; choose from {', '.join(AXES)}")
  if not isinstance(cfg.devices, int) or cfg.devices < 0:
    raise ConfigError(f"parallel.devices must be an integer >= 0 (0 = all), got {cfg.devices!r}")


def check_devices(cfg) -> None:
  """`cfg` against this process's devices and the process count (`resolve` calls it; a
  sweep's parent leaves it to a cluster job, whose devices it cannot see)."""
  processes = distributed.process().count
  if processes == 1:
    available = jax.local_device_count()
    if cfg.devices > available:
      raise ConfigError(f"parallel.devices={cfg.devices} but only {available} local devices "
                        "exist; lower --config.parallel.devices (0 = all)")
    return
  if cfg.backend == "pmap":
    raise ConfigError("parallel.backend=pmap runs within one process; multi-host runs need "
                      "--config.parallel.backend=shard_map (the default)")
  if cfg.devices and cfg.devices < processes:
    raise ConfigError(f"{processes} processes but parallel.devices={cfg.devices}: more processes "
                      "than devices (each process needs one of the run's devices); set "
                      f"--config.parallel.devices=0 (all) or a multiple of {processes}, or "
                      "launch fewer processes")
  if cfg.devices % processes or cfg.devices > jax.device_count():
    raise ConfigError(f"parallel.devices={cfg.devices} must be a multiple of the {processes} "
                      f"processes and at most the {jax.device_count()} devices; set "
                      "--config.parallel.devices=0 (all)")


def run_devices(cfg) -> tuple:
  """The devices a run uses: the first `devices` local ones, or the same number per process."""
  processes = distributed.process().count
  if processes == 1:
    return tuple(jax.local_devices()[:cfg.devices or jax.local_device_count()])
  per_process = (cfg.devices // processes) if cfg.devices else jax.local_device_count()
  by_process: dict = {}
  for d in jax.devices():
    by_process.setdefault(d.process_index, []).append(d)
  return tuple(d for p in sorted(by_process) for d in by_process[p][:per_process])


def cores_as_devices(devices) -> bool:
  """Whether `devices` are the host's cores made devices by `jax_num_cpu_devices` (what
  `genjax --cpu_devices` sets), in one process. Devices forced with XLA_FLAGS'
  --xla_force_host_platform_device_count stand for a multi-device machine (as in the tests,
  and as each process of a multi-host run on CPU): they keep the general `auto` rule."""
  return (devices[0].platform == "cpu" and jax.config.jax_num_cpu_devices > 0
          and distributed.process().count == 1)


def resolve(cfg, *, num_members: int, batch_size: int, pad: bool = True) -> Layout:
  """Chooses the layout for `num_members` members; ConfigError when it cannot work.
  `pad=False`: no padding members on cores made devices (the most devices that divide the
  members), for models whose one-device epoch already keeps the cores busy (`program`)."""
  validate_config(cfg)
  check_devices(cfg)
  devices = run_devices(cfg)
  if cfg.axis == "auto" and not cfg.devices and cores_as_devices(devices):
    # CPU devices share the host's cores: members split over all of them (padded to a
    # multiple), never a data-parallel batch (its all-reduces made an MLP epoch 2.4x slower).
    if cfg.backend == "pmap" or not pad:   # no padding: the most devices that divide them
      devices = devices[:max(k for k in range(1, len(devices) + 1) if num_members % k == 0)]
    # The fewest members per device there can be, on the fewest devices that reach it.
    per_device = -(-num_members // len(devices))
    devices = devices[:-(-num_members // per_device)]
    if len(devices) == 1:
      return Layout("single", cfg.backend, devices)
    return Layout("members", cfg.backend, devices,
                  padding=len(devices) * per_device - num_members)
  d = len(devices)
  if d == 1:
    return Layout("single", cfg.backend, devices)
  axis = cfg.axis
  if axis == "auto":
    axis = "members" if num_members >= d and num_members % d == 0 else "data"
  if axis == "members" and num_members % d:
    raise ConfigError(f"parallel.axis=members needs the {num_members} members to divide over "
                      f"{d} devices; use --config.parallel.axis=data or "
                      f"--config.parallel.devices={max(k for k in range(1, d + 1) if num_members % k == 0)}")
  if axis == "data" and batch_size % d:
    lower, upper = batch_size - batch_size % d, batch_size + d - batch_size % d
    raise ConfigError(f"batch_size {batch_size} is not divisible by the {d} devices; use "
                      f"--config.batch_size={lower or upper} or {upper}, or "
                      "--config.parallel.devices=1")
  return Layout(axis, cfg.backend, devices)


def place_epoch(member_epoch: Callable, layout: Layout) -> Callable:
  """jit(run_epoch)(state, plan, x, y, epoch) with the member axis vmapped and placed.

  `member_epoch(state, plan, x, y, epoch)` works on one member; under the
  `data` layout it must have been built with axis name `DATA_AXIS`.
  """
  return place(member_epoch, layout, (True, True, False, False, False))


def side_by_side(member_fn: Callable, in_axes: tuple) -> Callable:
  """`jax.vmap(member_fn, in_axes)` as M separate calls in one program (a loop at trace time),
  stacked: each member's operations stay its own (no batched or grouped convolution), and
  XLA may run members concurrently."""

  def mapped(*args):
    m = next(jax.tree.leaves(a)[0].shape[0] for a, ax in zip(args, in_axes) if ax == 0)
    take = lambda t, i: jax.tree.map(lambda v: v[i], t)  # noqa: E731
    outs = [member_fn(*[take(a, i) if ax == 0 else a for a, ax in zip(args, in_axes)])
            for i in range(m)]
    return jax.tree.map(lambda *xs: jnp.stack(xs), *outs)

  return mapped


def place(member_fn: Callable, layout: Layout, mapped: tuple[bool, ...],
          unroll: bool = False) -> Callable:
  """jit(fn)(*args): `member_fn` vmapped over the member axis of the arguments flagged in
  `mapped` (the others are shared by every member), placed as the layout says. Every output
  has the member axis. Under `data`, `member_fn` must use axis name `DATA_AXIS`.
  `unroll`: members side by side (`side_by_side`) instead of vmapped; same numbers.
  The member count must divide over the devices: `Layout.padding` members are the caller's
  to add (`genjax.train.program` does)."""
  in_axes = tuple(0 if m else None for m in mapped)
  vmapped = (side_by_side if unroll else jax.vmap)(member_fn, in_axes)
  if layout.axis == "single":
    return jax.jit(vmapped)
  d = layout.num_devices
  if layout.backend == "pmap":
    if layout.axis == "data":
      # pmap needs one mapped argument: the device index, otherwise unused.
      pmapped = jax.pmap(lambda _, *args: vmapped(*args), axis_name=DATA_AXIS,
                         in_axes=(0,) + (None,) * len(mapped), devices=layout.devices)
      index = np.arange(d)
      return lambda *args: jax.tree.map(lambda a: a[0], pmapped(index, *args))
    pmapped = jax.pmap(vmapped, in_axes=in_axes, devices=layout.devices)
    split = lambda t: jax.tree.map(lambda a: a.reshape((d, a.shape[0] // d) + a.shape[1:]), t)  # noqa: E731
    merge = lambda t: jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:]), t)  # noqa: E731
    return lambda *args: merge(pmapped(*[split(a) if m else a for a, m in zip(args, mapped)]))
  if layout.axis == "data":
    shmapped = jax.shard_map(vmapped, mesh=layout.mesh, in_specs=(P(),) * len(mapped),
                             out_specs=P(), check_vma=False)
    return jax.jit(shmapped)
  m = P("members")
  shmapped = jax.shard_map(vmapped, mesh=layout.mesh,
                           in_specs=tuple(m if x else P() for x in mapped), out_specs=m,
                           check_vma=False)
  return jax.jit(shmapped)
