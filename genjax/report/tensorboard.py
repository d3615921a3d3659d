"""A run's TensorBoard event files (tensorboardX, no TensorFlow); written by process 0 only.

Each member is one TensorBoard *run* (a folder under `tensorboard/`) holding its scalars per
epoch, its resolved config as text (tag `config`) and, for TensorBoard's HParams dashboard,
its hyperparameters (a session-start summary) and final metrics (`final/...` scalars and a
session-end summary). No experiment summary is written: TensorBoard reads one experiment
from an arbitrary run when several carry one, so runs with different hyperparameter sets
(a sweep's structural groups, a resumed run) would show a partial table; without it the
HParams dashboard builds its experiment from every run's session start.
"""

from __future__ import annotations

import hashlib
import os
import re
import time

from genjax.platform import distributed

_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+()\-]")
_STRUCTURE = re.compile(r"(outer|seed|fold)\d+")   # the folders a member name nests in
MAX_PART = 100   # characters of one folder name


def safe_part(text: str) -> str:
  """`text` as one folder name that every file system takes: characters other than letters,
  digits and `._=,+()-` become '_', no leading '.' or '-', at most MAX_PART characters (a
  longer one keeps its head and a hash of the whole)."""
  out = _UNSAFE.sub("_", text)
  if not out or out[0] in ".-":
    out = "_" + out
  if len(out) > MAX_PART:
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    out = out[:MAX_PART - 9] + "~" + digest
  return out


def name_parts(name: str) -> tuple[str, ...]:
  """A member name's folders: 'outerN', 'seedN' and 'foldN' parts apart, what lies between
  them one part (a point's name may hold '/': 'a/b/fold0' -> ('a/b', 'fold0'))."""
  parts: list[str] = []
  loose: list[str] = []
  for token in name.split("/"):
    if _STRUCTURE.fullmatch(token):
      parts += ["/".join(loose)] if loose else []
      parts.append(token)
      loose = []
    else:
      loose.append(token)
  return tuple(parts + (["/".join(loose)] if loose else []))


def run_dirs(members: list[tuple[str, ...]]) -> list[str]:
  """Each member's run folder (relative, '/'-joined): every part made safe (`safe_part`),
  and parts that differ but would read alike under the same parent numbered apart ('~2',
  '~3', in order of first appearance), so that distinct members get distinct folders. A
  function of `members` alone: a resumed run finds the same folders."""
  safe: dict[tuple[str, ...], tuple[str, ...]] = {(): ()}
  taken: set[tuple[str, ...]] = set()
  for parts in members:
    for d in range(1, len(parts) + 1):
      key = tuple(parts[:d])
      if key in safe:
        continue
      parent, base = safe[key[:-1]], safe_part(key[-1])
      name, n = base, 1
      while parent + (name,) in taken:
        n += 1
        name = f"{base}~{n}"
      safe[key] = parent + (name,)
      taken.add(safe[key])
  dirs = ["/".join(safe[tuple(p)]) for p in members]
  if len(set(dirs)) != len(dirs):
    raise ValueError(f"two members share a TensorBoard run folder: {members!r:.200}")
  return dirs


def has_events(directory: str) -> bool:
  """Whether `directory` already holds an event file (a resumed run's earlier part)."""
  return os.path.isdir(directory) and any(
      f.startswith("events.out.tfevents.") for f in os.listdir(directory))


def hparam_value(value):
  """A value as the HParams dashboard takes it: str, bool or float; None stays None (not
  shown); anything else (tuples, lists) as its text."""
  if value is None or isinstance(value, (str, bool)):
    return value
  if isinstance(value, (int, float)):
    return float(value)
  if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
    return hparam_value(value.item())
  return str(value)


class TensorBoard:
  """TensorBoard event files (tensorboardX, no TensorFlow): one run folder per member, one
  event per member and epoch holding all of its scalars (tag `train/loss` for the row's
  `train_loss`). `runs`: each member's folder relative to `root` (`run_dirs`), `prefix`
  appended to each. Every method is a no-op off the primary process."""

  def __init__(self, root: str, runs: list[str], prefix: str = ""):
    self.paths = [os.path.join(root, n + prefix) for n in runs]
    self.fresh: list[bool] = []   # per member: no event file before this writer
    self._writers = []
    if distributed.is_primary():
      from tensorboardX import FileWriter
      self.fresh = [not has_events(p) for p in self.paths]
      # tensorboardX names a file by the second and the host only: a resume within the same
      # second would truncate the earlier file. A nanosecond stamp keeps them apart, in order.
      suffix = f".{time.time_ns():020d}.{os.getpid()}"
      self._writers = [FileWriter(p, flush_secs=30, filename_suffix=suffix) for p in self.paths]

  def start(self, member: int, hparams: dict, text: str) -> None:
    """Member `member`'s session start (its `hparams`, for the HParams dashboard) and its
    config `text` (markdown, tag `config`), at step 0, flushed at once. Written once per run
    folder: a member whose folder held event files before (a resume) is skipped, so a resumed
    run holds one session start."""
    if not self._writers or not self.fresh[member]:
      return
    from tensorboardX import summary
    values = {k: hparam_value(v) for k, v in hparams.items()}
    _, session_start, _ = summary.hparams(values, {})
    session_start.value[0].metadata.plugin_data.content = _with_start_time(
        session_start.value[0].metadata.plugin_data.content)
    writer = self._writers[member]
    writer.add_summary(session_start, 0)
    writer.add_summary(summary.text("config", text), 0)
    writer.flush()

  def purge_from(self, step: int) -> None:
    """A session-log START at `step` in every run folder, when training starts or resumes.
    TensorBoard's readers take a run's second and later STARTs as restarts and drop the
    events from that step on that the earlier part had logged: a resumed run replays the
    epochs after its checkpoint, and each epoch is read once."""
    if not self._writers:
      return
    from tensorboardX.proto.event_pb2 import Event, SessionLog
    for writer in self._writers:
      writer.add_event(Event(step=int(step), wall_time=time.time(),
                             session_log=SessionLog(status=SessionLog.START)))

  def write(self, member: int, epoch: int, row: dict) -> None:
    """One epoch's scalars: every float of `row` (`val_accuracy` as `val/accuracy`)."""
    if not self._writers:
      return
    from tensorboardX.proto.summary_pb2 import Summary
    values = [Summary.Value(tag=key.replace("_", "/", 1), simple_value=value)
              for key, value in row.items() if isinstance(value, float)]
    if values:
      self._writers[member].add_summary(Summary(value=values), epoch)

  def end(self, member: int, step: int, metrics: dict) -> None:
    """Member `member`'s final `metrics` (scalars tagged `final/<key>`, the HParams
    dashboard's metric columns) and its session end (status success), at `step`."""
    if not self._writers:
      return
    from tensorboardX import summary
    from tensorboardX.proto.summary_pb2 import Summary
    values = [Summary.Value(tag=f"final/{k}", simple_value=float(v))
              for k, v in metrics.items() if v is not None]
    writer = self._writers[member]
    if values:
      writer.add_summary(Summary(value=values), step)
    writer.add_summary(summary.hparams({}, {})[2], step)

  def close(self) -> None:
    for w in self._writers:
      w.close()


def _with_start_time(content: bytes) -> bytes:
  """A session-start plugin content with its start time set (the dashboard shows it)."""
  from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData
  data = HParamsPluginData.FromString(content)
  data.session_start_info.start_time_secs = time.time()
  return data.SerializeToString()
