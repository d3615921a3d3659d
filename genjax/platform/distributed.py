"""Multi-host runs: `jax.distributed` start-up, each process's data shard, who writes.

Every process runs the same command (same config, same shared workdir) plus

    --coordinator_address=HOST:PORT --num_processes=N --process_id=I

or `--distributed` to take them from the cluster's environment (SLURM, Open MPI,
Cloud TPU, ... as `jax.distributed.initialize()` detects). Then

* the device mesh spans every process's devices (`jax.devices()`), so the
  data-parallel step's `psum` and the member axis cross hosts;
* each process reads only rows `shard(n)` of each split from its TFDS data
  source; the rows are exchanged once (`gather_rows`, an all-gather) so every
  process holds the same device-resident arrays as a single process would, and
  the run's numbers equal a single process's with the same device count;
* only process 0 (`is_primary`) writes config.json, metrics, TensorBoard
  events, results, predictions and plots; orbax writes checkpoints itself,
  coordinating the processes (the workdir must be on a filesystem all hosts share).

Start-up never hangs: a worker that cannot reach the coordinator, or a
coordinator whose workers do not all join, fails with one line within
`timeout_s` (JAX itself would abort the process with a stack trace).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
import threading
import time

import numpy as np

from genjax.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Process:
  index: int = 0
  count: int = 1


_PROCESS = Process()


def process() -> Process:
  """This process's index and the process count (0 and 1 unless `initialize` ran)."""
  return _PROCESS


def is_primary() -> bool:
  """True on the process that writes results (process 0; the only one by default)."""
  return _PROCESS.index == 0


def validate_flags(coordinator_address: str | None, num_processes: int | None,
                   process_id: int | None, from_environment: bool) -> bool:
  """Checks the multi-host flags; True when this is a multi-host run. Never touches JAX."""
  given = {"--coordinator_address": coordinator_address, "--num_processes": num_processes,
           "--process_id": process_id}
  named = [k for k, v in given.items() if v is not None]
  if from_environment:
    if named:
      raise ConfigError(f"--distributed reads the cluster's settings; drop {', '.join(named)} "
                        "or drop --distributed")
    return True
  if not named:
    return False
  if len(named) < 3:
    missing = [k for k in given if k not in named]
    raise ConfigError(f"multi-host runs need --coordinator_address, --num_processes and "
                      f"--process_id together; add {', '.join(missing)}")
  host, _, port = coordinator_address.rpartition(":")
  if not host or not port.isdigit() or not 0 < int(port) < 65536:
    raise ConfigError(f"--coordinator_address={coordinator_address!r} is not HOST:PORT; "
                      "e.g. --coordinator_address=10.0.0.1:1234")
  if num_processes < 1:
    raise ConfigError(f"--num_processes={num_processes} must be >= 1")
  if not 0 <= process_id < num_processes:
    raise ConfigError(f"--process_id={process_id} is outside [0, {num_processes}); "
                      f"number the processes 0..{num_processes - 1}")
  return True


def _wait_for_coordinator(address: str, timeout_s: float) -> None:
  """Retries a TCP connect to the coordinator until it answers or `timeout_s` passes."""
  host, _, port = address.rpartition(":")
  deadline = time.monotonic() + timeout_s
  while True:
    try:
      with socket.create_connection((host.strip("[]"), int(port)), timeout=2):
        return
    except OSError as e:
      if time.monotonic() >= deadline:
        raise ConfigError(
            f"cannot reach the coordinator at {address} within {timeout_s:g} s ({e.strerror or e}); "
            "start process 0 there first, check the address and that the port is open, or "
            "raise --distributed_timeout") from None
      time.sleep(0.5)


def _check_port_free(address: str) -> None:
  port = int(address.rpartition(":")[2])
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
      s.bind(("", port))
    except OSError as e:
      raise ConfigError(f"process 0 cannot serve the coordinator on port {port} ({e.strerror}); "
                        "choose a free port in --coordinator_address") from None


def initialize(coordinator_address: str | None, num_processes: int | None,
               process_id: int | None, *, timeout_s: float = 300.0) -> Process:
  """`jax.distributed.initialize`, failing with ConfigError or one line instead of hanging.

  Call before anything else touches JAX. With all three arguments None, the
  settings come from the cluster's environment.
  """
  global _PROCESS
  if coordinator_address is not None:
    if process_id == 0:
      _check_port_free(coordinator_address)
    else:
      _wait_for_coordinator(coordinator_address, timeout_s)
  # JAX aborts the process (SIGABRT and a C++ stack trace) when start-up times out: fire first.
  watchdog = threading.Timer(timeout_s, _start_up_timed_out, args=(coordinator_address,
                                                                  num_processes, timeout_s))
  watchdog.daemon = True
  watchdog.start()
  import jax
  try:
    jax.distributed.initialize(coordinator_address, num_processes, process_id,
                               initialization_timeout=int(timeout_s) + 30)
  except (ValueError, RuntimeError) as e:
    raise ConfigError(f"jax.distributed could not start ({' '.join(str(e).split())[:300]}); "
                      "pass --coordinator_address, --num_processes and --process_id") from None
  finally:
    watchdog.cancel()
  _PROCESS = Process(jax.process_index(), jax.process_count())
  return _PROCESS


def leave(timeout_s: float) -> None:
  """Leaves a multi-host run that is ending early (one-line errors, Ctrl-C): waits, at most
  `timeout_s`, until every process leaves too (`jax.distributed.shutdown`). Without it the
  first process to exit takes the coordination service down with it (it lives in process 0),
  and JAX aborts every process still on its way to the same error with a C++ stack trace.
  No-op in a single process."""
  if _PROCESS.count == 1:
    return
  import jax
  done = threading.Thread(target=jax.distributed.shutdown, daemon=True)
  done.start()
  done.join(timeout_s)


def _start_up_timed_out(address, num_processes, timeout_s) -> None:
  print(f"genjax: error: not all {num_processes or 'the'} processes joined the coordinator at "
        f"{address or '(from the environment)'} within {timeout_s:g} s; start every process "
        "with the same --coordinator_address and --num_processes, or raise "
        "--distributed_timeout", file=sys.stderr, flush=True)
  os._exit(2)


def shard(n: int, proc: Process | None = None) -> range:
  """Rows [start, stop) of n that this process reads: contiguous, sizes differ by at most 1."""
  proc = proc or _PROCESS
  bounds = np.linspace(0, n, proc.count + 1).round().astype(int)
  return range(int(bounds[proc.index]), int(bounds[proc.index + 1]))


def gather_rows(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """Concatenates every process's rows of each array, in process order (an all-gather)."""
  if _PROCESS.count == 1:
    return arrays
  from jax.experimental import multihost_utils
  lengths = multihost_utils.process_allgather(
      np.array([len(a) for a in arrays.values()], np.int64))   # [P, num arrays]
  longest = lengths.max(axis=0)
  out = {}
  for j, (key, a) in enumerate(arrays.items()):
    padded = np.zeros((int(longest[j]),) + a.shape[1:], a.dtype)
    padded[:len(a)] = a
    stacked = np.asarray(multihost_utils.process_allgather(padded))   # [P, longest, ...]
    out[key] = np.concatenate([stacked[p, :lengths[p, j]] for p in range(_PROCESS.count)])
  return out


def to_host(tree):
  """Host numpy copies of a pytree's arrays, also of arrays sharded across processes.

  Like `jax.device_get`; in a multi-host run every process calls it (it is a collective).
  """
  import jax
  if _PROCESS.count == 1:
    return jax.device_get(tree)
  from jax.experimental import multihost_utils
  return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))


def broadcast_int(value: int) -> int:
  """Process 0's `value` on every process (a collective; the value itself in one process)."""
  if _PROCESS.count == 1:
    return int(value)
  from jax.experimental import multihost_utils
  return int(multihost_utils.broadcast_one_to_all(np.int32(value)))


def barrier(name: str) -> None:
  """Waits until every process reaches `name` (no-op in a single process)."""
  if _PROCESS.count > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)
