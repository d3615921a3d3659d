"""What a run leaves in its workdir, written whole or not at all.

    config.json          the resolved config
    metrics.jsonl        one JSON object per epoch
    results.json         final validation/test metrics and run facts

`atomic` is genjax's one writer of a whole file (the workdir's records, a sweep's launch.json,
the dataset cache use it too): a temporary file in the same directory, flushed and fsynced,
renamed onto the path; on any error (a full disk) no temporary file is left behind, the path
keeps its old content and the error names the path.

In a multi-host run only process 0 writes (`genjax.platform.distributed.is_primary`);
the writers here marked `primary_only` are no-ops on the other processes.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import tempfile
from typing import Iterable

from genjax.platform import distributed


def primary_only(write):
  """`write` runs on process 0 only (it is every process in a single-process run)."""
  @functools.wraps(write)
  def wrapper(*args, **kwargs):
    if distributed.is_primary():
      return write(*args, **kwargs)
    return None
  return wrapper


def _jsonable(x):
  """Plain Python for json; a non-finite float becomes None (strict JSON has no NaN)."""
  if hasattr(x, "item"):
    x = x.item()
  if isinstance(x, float) and not math.isfinite(x):
    return None
  if isinstance(x, dict):
    return {k: _jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_jsonable(v) for v in x]
  return x


@contextlib.contextmanager
def atomic(path: str, mode: str = "w", *, unique: bool = False):
  """A file object (opened with `mode`, "w" or "wb") whose content replaces `path` when the
  block completes: written to `path.tmp` (with `unique`, a fresh `path.XXXX.tmp`, for files
  that several processes may write at once), flushed, fsynced and renamed onto `path`.

  On any error (a full disk) the temporary file is removed, `path` keeps its old content, and
  an OSError that names no file (or the temporary one) is raised again naming `path`, so the
  one-line report says which file could not be written.
  """
  tmp = None
  try:
    if unique:
      directory, name = os.path.split(path)
      fd, tmp = tempfile.mkstemp(prefix=name + ".", suffix=".tmp", dir=directory or ".")
      f = os.fdopen(fd, mode)
    else:
      tmp = path + ".tmp"
      f = open(tmp, mode)
    with f:
      yield f
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except OSError as e:
    if e.errno is not None and (e.filename is None or e.filename == tmp):
      raise OSError(e.errno, e.strerror, path) from e
    raise
  finally:
    if tmp is not None:
      with contextlib.suppress(OSError):
        os.remove(tmp)   # absent once renamed


def write_bytes(path: str, data: bytes) -> None:
  """`data` as the whole of `path`, atomically (`atomic`), on every process that calls it."""
  with atomic(path, "wb") as f:
    f.write(data)


@primary_only
def write_json(path: str, obj) -> None:
  """Writes atomically (temp file + rename), so a kill never leaves half a file."""
  with atomic(path) as f:
    json.dump(_jsonable(obj), f, indent=2, sort_keys=True, allow_nan=False)
    f.write("\n")


@primary_only
def write_metrics(path: str, rows: Iterable[dict]) -> None:
  """Rewrites metrics.jsonl with `rows` (one JSON object per line), atomically."""
  with atomic(path) as f:
    for row in rows:
      f.write(json_line(row))


def json_line(row: dict) -> str:
  """One metrics.jsonl line: strict JSON (null for a non-finite value), keys sorted."""
  return json.dumps(_jsonable(row), sort_keys=True, allow_nan=False) + "\n"


def read_metrics(path: str) -> list[dict]:
  """metrics.jsonl's rows; null (a non-finite value when written) reads back as NaN."""
  if not os.path.exists(path):
    return []
  rows = []
  with open(path) as f:
    for line in f:
      try:
        rows.append({k: float("nan") if v is None else v for k, v in json.loads(line).items()})
      except json.JSONDecodeError:  # a line cut short by a kill: the epoch reruns on resume
        break
  return rows
