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
  and a data-parallel epoch of 5 MLP members on 2 of them took 116.3 ms against 76.1 ms on one
  device (BENCHMARKS.md, "CPU devices"). When the members do not divide evenly,
  `Layout.padding` says how many padding members the program adds (copies of the last member,
  trained alongside and never reported; see `genjax.train.program`) so that every device holds
  the same count: 5 folds on 2 devices are 3 + 3, on 4 devices 2 + 2 + 2.
  Without padding (`resolve(pad=False)`, the pmap backend): the most devices that divide the
  members, one when none does.

Member blocks (`parallel.member_block`, B): XLA compiles a vmapped program by its member
count, and on CPU a member's last bits changed with it (2-3 members, 5-64 members and one
member gave three different results, ~3e-8 after 3 epochs; chaotic training turns that into
points of accuracy). So members never run in a program of another count: the member axis is
compiled as a loop over blocks of exactly B members (`blocked`), each block `vmap`ped, the
member count padded to a multiple of B (`Layout.padding`), and the loop over blocks has a
trip count XLA cannot see (`_loop_over_blocks`: a loop known to run once is inlined and
compiled differently). A member's numbers are then those of its B-member block, whatever else
trains: alone, in its K-fold run, in any sweep, at any position. `auto` (0): 1 on CPU (where
vmapping more members saves little: BENCHMARKS.md, "Member blocks"), 8 on accelerators.

Devices side by side: a program partitioned over several devices (`shard_map`, `pmap`) is
compiled through other passes than a one-device program, and rounds differently (measured on
CPU: an SPMD-partitioned epoch moved a member's weights by ~5e-8 against the same blocks on
one device). So the `members` layout runs the one-device block program on each device, on that
device's members (`SideBySide`; in a multi-host run each process runs its own devices): the same
bits on 1, 2 or 4 devices (tested), in one process or several. The `pmap` backend keeps one partitioned
program: a member's numbers are then those of its device count. The `data` layout sums gradients across
devices: its numbers depend on the device count (float summation order). `member_bits`
records which holds in the run's results.

Backends: `shard_map` over a 1-D device mesh (JAX's successor of `pmap`), or
`pmap` itself, which runs the same per-device function and gives the same numbers.

Multi-host (`genjax.platform.distributed`): the mesh holds every process's devices,
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

from genjax.platform import distributed
from genjax.errors import ConfigError

BACKENDS = ("shard_map", "pmap")
AXES = ("data", "members", "auto")
DATA_AXIS = "data"


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      "backend": "shard_map",   # shard_map | pmap
      "axis": "auto",           # data | members | auto
      "devices": 0,             # how many local devices to use; 0 = all
      # Members per compiled block (module docstring); 0 = auto: 1 on CPU, 8 on accelerators.
      "member_block": 0,
      # Stopped members (early stopping, pruning) leave the epoch program: an epoch computes
      # only the member blocks that still train. Same bits either way (`blocked`).
      "compaction": True,
  })


@dataclasses.dataclass(frozen=True)
class Layout:
  axis: str          # "single", "data" or "members"
  backend: str
  devices: tuple
  padding: int = 0   # members added to fill blocks and devices (`genjax.train.program`)
  block: int = 1     # members per compiled block (`blocked`)

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
  if not isinstance(cfg.devices, int) or isinstance(cfg.devices, bool) or cfg.devices < 0:
    raise ConfigError(f"parallel.devices must be an integer >= 0 (0 = all), got {cfg.devices!r}")
  if not isinstance(cfg.get("compaction", True), bool):
    raise ConfigError(f"parallel.compaction must be True or False, got {cfg.compaction!r}; "
                      "e.g. --config.parallel.compaction=False")
  block = cfg.get("member_block", 0)
  if not isinstance(block, int) or isinstance(block, bool) or block < 0:
    raise ConfigError(f"parallel.member_block must be an integer >= 0 (0 = auto), got {block!r}; "
                      "e.g. --config.parallel.member_block=8")


def block_size(cfg) -> int:
  """Members per compiled block: `parallel.member_block`, or for 0 (auto) 1 on CPU and 8 on
  accelerators."""
  block = cfg.get("member_block", 0)
  return block or (1 if jax.default_backend() == "cpu" else 8)


def member_bits(layout: "Layout", unroll: bool = False) -> str:
  """What a member's numbers depend on, for the run's record: "independent" (of the other
  members, their count and the device count: only its B-member block's program), or why not."""
  if layout.axis == "data":
    return (f"depend on the device count ({layout.num_devices} data-parallel devices sum "
            "gradients; float summation order)")
  if layout.axis == "members" and not side_by_side_devices(layout):
    return (f"depend on the device count (one {layout.backend} program partitioned over "
            f"{layout.num_devices} devices rounds otherwise than one device)")
  if unroll:
    return ("may depend on the member count (epoch_loop=steps: members side by side in one "
            "program)")
  return "independent"


def _round_up(n: int, unit: int) -> int:
  return -(-n // unit) * unit


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
  `pad=False`: no padding members beyond the block on cores made devices (the most devices
  that divide the members), for models whose one-device epoch already keeps the cores busy
  (`program`). The members are padded to whole blocks of `block_size(cfg)` on every device."""
  validate_config(cfg)
  check_devices(cfg)
  devices = run_devices(cfg)
  block = block_size(cfg)
  blocks = -(-num_members // block)
  if cfg.axis == "auto" and not cfg.devices and cores_as_devices(devices):
    # CPU devices share the host's cores: members split over all of them (padded to a
    # multiple), never a data-parallel batch (its all-reduces made an MLP epoch
    # 1.5x slower: BENCHMARKS.md, "CPU devices").
    if cfg.backend == "pmap" or not pad:   # no padding: the most devices that divide them
      devices = devices[:max(k for k in range(1, len(devices) + 1) if blocks % k == 0)]
    # The fewest blocks per device there can be, on the fewest devices that reach it.
    per_device = -(-blocks // len(devices))
    devices = devices[:-(-blocks // per_device)]
    padding = len(devices) * per_device * block - num_members
    if len(devices) == 1:
      return Layout("single", cfg.backend, devices, padding=padding, block=block)
    return Layout("members", cfg.backend, devices, padding=padding, block=block)
  d = len(devices)
  if d == 1:
    return Layout("single", cfg.backend, devices, padding=blocks * block - num_members,
                  block=block)
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
  unit = block * (d if axis == "members" else 1)
  return Layout(axis, cfg.backend, devices, padding=_round_up(num_members, unit) - num_members,
                block=block)


def place_epoch(member_epoch: Callable, layout: Layout, live: Callable | None = None,
                idle: Callable | None = None) -> Callable:
  """jit(run_epoch)(state, plan, x, y, epoch) with the member axis vmapped and placed.

  `member_epoch(state, plan, x, y, epoch)` works on one member; under the
  `data` layout it must have been built with axis name `DATA_AXIS`. `live`, `idle`: members
  that leave the program (`blocked`).
  """
  return place(member_epoch, layout, (True, True, False, False, False), live=live, idle=idle)


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


def blocked(member_fn: Callable, in_axes: tuple, block: int, live: Callable | None = None,
            idle: Callable | None = None) -> Callable:
  """`jax.vmap(member_fn, in_axes)` compiled as a loop over blocks of `block` members, each
  block vmapped: XLA sees `block` members whatever the count (module docstring), so a
  member's numbers are its block program's. The mapped arguments' member count must be a
  multiple of `block` (`members_map` pads).

  Members leave the program (`live`, `idle`): `live(*args)` -> (M,) bool, the members to
  compute; a block none of whose members lives is not run, and its members' outputs are
  `idle(*member_args)` (what `member_fn` returns for a member that no longer trains, e.g. its
  unchanged state). The loop runs over the living blocks only, so the work of an epoch is
  that of its living blocks: the same compiled program whatever lives (no recompile), the
  same block program for every member (no member's bits change)."""
  vmapped = jax.vmap(member_fn, in_axes)

  def mapped(*args):
    m = next(jax.tree.leaves(a)[0].shape[0] for a, ax in zip(args, in_axes) if ax == 0)
    if m % block:
      raise ValueError(f"{m} members do not fill blocks of {block}; pad them (members_map)")
    split = lambda t: jax.tree.map(lambda v: v.reshape((m // block, block) + v.shape[1:]), t)  # noqa: E731
    blocks = tuple(split(a) for a, ax in zip(args, in_axes) if ax == 0)
    shared = [a for a, ax in zip(args, in_axes) if ax != 0]

    def one_block(block_args):
      it, sh = iter(block_args), iter(shared)
      return vmapped(*[next(it) if ax == 0 else next(sh) for ax in in_axes])
    if live is None:
      out = _loop_over_blocks(one_block, blocks, m // block)
    else:
      alive = jnp.asarray(live(*args)).reshape(m // block, block).any(axis=1)
      out = _loop_over_blocks(one_block, blocks, m // block, alive=alive,
                              idle=split(jax.vmap(idle, in_axes)(*args)))
    return jax.tree.map(lambda v: v.reshape((m,) + v.shape[2:]), out)

  return mapped


def _loop_over_blocks(one_block: Callable, blocks, count: int, alive=None, idle=None):
  """`lax.map(one_block, blocks)` over `count` blocks, with the trip count hidden from XLA
  (behind an optimization barrier): XLA inlines a loop it knows runs once, and the inlined
  block fuses and rounds differently from the body of a loop of several blocks, so a member
  alone differed from the same member among others. With the count unknown, one block and
  many compile the same loop body.

  `alive` ((count,) bool): only the living blocks run (living first, in order), the others'
  outputs are `idle`'s (blocks, member axis first). The body is the same either way."""
  first = jax.tree.map(lambda v: v[0], blocks)
  slots = max(count, 2)   # an axis of one would be simplified away as well (index always 0)
  double = lambda t: jax.tree.map(lambda v: jnp.concatenate([v, v]), t)  # noqa: E731
  if slots > count:
    blocks = double(blocks)
  if alive is None:
    out = jax.tree.map(lambda s: jnp.zeros((slots,) + s.shape, s.dtype),
                       jax.eval_shape(one_block, first))
    order, trips = jnp.arange(slots, dtype=jnp.int32), jnp.asarray(count, jnp.int32)
  else:
    out = idle if slots == count else double(idle)
    alive = jnp.concatenate([alive, jnp.zeros((slots - count,), bool)])
    order = jnp.argsort(jnp.logical_not(alive), stable=True).astype(jnp.int32)
    trips = jnp.sum(alive, dtype=jnp.int32)
  blocks, order, trips = jax.lax.optimization_barrier((blocks, order, trips))

  def body(carry):
    i, out = carry
    j = order[i]
    result = one_block(jax.tree.map(
        lambda v: jax.lax.dynamic_index_in_dim(v, j, keepdims=False), blocks))
    return i + 1, jax.tree.map(
        lambda o, r: jax.lax.dynamic_update_index_in_dim(o, r, j, 0), out, result)

  out = jax.lax.while_loop(lambda carry: carry[0] < trips, body, (jnp.int32(0), out))[1]
  return out if slots == count else jax.tree.map(lambda v: v[:count], out)


def side_by_side_devices(layout: Layout) -> bool:
  """Whether `place` runs the layout's devices side by side (`SideBySide`): the `members`
  layout with the shard_map backend (in one process or several: each runs its own devices)."""
  return layout.axis == "members" and layout.backend == "shard_map"


class SideBySide:
  """jit(fn)(*args) for the `members` layout: the one-device program of `blocked(member_fn)`
  runs on each of this process's devices with that device's members (dispatched
  asynchronously, one call per device), and the outputs are assembled into (global) arrays
  split on the member axis over every process's devices. Each device's program is compiled exactly as on one device:
  the bits do not depend on the device count (module docstring). `input_shardings` say where
  the arguments are best placed (members split, shared arguments replicated), as a compiled
  program's do."""

  def __init__(self, member_fn: Callable, layout: Layout, mapped: tuple[bool, ...],
               live: Callable | None = None, idle: Callable | None = None, **jit_kwargs):
    in_axes = tuple(0 if m else None for m in mapped)
    self._fn = jax.jit(blocked(member_fn, in_axes, layout.block, live, idle), **jit_kwargs)
    self._devices, self._mapped = layout.devices, mapped
    self._here = [i for i, d in enumerate(layout.devices)
                  if d.process_index == jax.process_index()]   # this process's devices
    self._split = jax.sharding.NamedSharding(layout.mesh, P("members"))
    self.input_shardings = (tuple(self._split if m else
                                  jax.sharding.NamedSharding(layout.mesh, P())
                                  for m in mapped), {})

  def _local(self, tree, i: int, mapped: bool):
    d, n = self._devices[i], len(self._devices)

    def leaf(a):
      if not hasattr(a, "shape") or not hasattr(a, "dtype"):
        return a   # a Python scalar (the epoch)
      rows = a.shape[0] // n if mapped else None
      if isinstance(a, jax.Array):
        for shard in a.addressable_shards:
          if shard.device == d and (not mapped or shard.data.shape[0] == rows):
            if mapped or shard.data.shape == a.shape:
              return shard.data
      part = a[i * rows:(i + 1) * rows] if mapped else a
      return jax.device_put(part if isinstance(part, jax.Array) else np.asarray(part), d)
    return jax.tree.map(leaf, tree)

  def __call__(self, *args):
    outs = [self._fn(*[self._local(a, i, m) for a, m in zip(args, self._mapped)])
            for i in self._here]

    def assemble(*parts):
      shape = (parts[0].shape[0] * len(self._devices),) + parts[0].shape[1:]
      return jax.make_array_from_single_device_arrays(shape, self._split, list(parts))
    return jax.tree.map(assemble, *outs)


def members_map(member_fn: Callable, in_axes: tuple, block: int) -> Callable:
  """jit(fn)(*args): `member_fn` over any number of members in `block`-member blocks
  (`blocked`): the mapped arguments are padded with copies of their last member to whole
  blocks, and the outputs cut back. For evaluation and prediction outside the epoch."""
  run = jax.jit(blocked(member_fn, in_axes, block))

  def call(*args):
    m = next(jax.tree.leaves(a)[0].shape[0] for a, ax in zip(args, in_axes) if ax == 0)
    extra = _round_up(m, block) - m
    if extra:
      pad = lambda v: jnp.concatenate([v, jnp.repeat(v[-1:], extra, 0)])  # noqa: E731
      args = [jax.tree.map(pad, a) if ax == 0 else a for a, ax in zip(args, in_axes)]
    out = run(*args)
    return out if not extra else jax.tree.map(lambda v: v[:m], out)

  return call


def place(member_fn: Callable, layout: Layout, mapped: tuple[bool, ...],
          unroll: bool = False, live: Callable | None = None,
          idle: Callable | None = None) -> Callable:
  """jit(fn)(*args): `member_fn` vmapped over the member axis of the arguments flagged in
  `mapped` (the others are shared by every member), placed as the layout says. Every output
  has the member axis. Under `data`, `member_fn` must use axis name `DATA_AXIS`.
  `unroll`: members side by side (`side_by_side`) instead of vmapped; same numbers up to
  float rounding. Otherwise members run in blocks of `layout.block` (`blocked`), the blocks
  none of whose members `live` skipped (`idle` gives their outputs; not with `unroll`).
  The member count must fill the devices' blocks: `Layout.padding` members are the caller's
  to add (`genjax.train.program` does)."""
  in_axes = tuple(0 if m else None for m in mapped)
  vmapped = (side_by_side(member_fn, in_axes) if unroll
             else blocked(member_fn, in_axes, layout.block, live, idle))
  if layout.axis == "single":
    return jax.jit(vmapped)
  d = layout.num_devices
  if side_by_side_devices(layout) and not unroll:
    return SideBySide(member_fn, layout, mapped, live, idle)
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
