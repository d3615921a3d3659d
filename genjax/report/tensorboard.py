"""A run's TensorBoard event files (tensorboardX, no TensorFlow); written by process 0 only."""

from __future__ import annotations

import os

from genjax.platform import distributed


class TensorBoard:
  """TensorBoard event files (tensorboardX, no TensorFlow): one directory per member, one event
  per member and epoch holding all of its scalars (tag `train/loss` for the row's `train_loss`)."""

  def __init__(self, root: str, names: list[str], prefix: str = ""):
    self._writers = []
    if distributed.is_primary():
      from tensorboardX import FileWriter
      self._writers = [FileWriter(os.path.join(root, n + prefix), flush_secs=30)
                       for n in names]

  def write(self, member: int, epoch: int, row: dict) -> None:
    if not self._writers:
      return
    from tensorboardX.proto.summary_pb2 import Summary
    values = [Summary.Value(tag=key.replace("_", "/", 1), simple_value=value)
              for key, value in row.items() if isinstance(value, float)]
    if values:
      self._writers[member].add_summary(Summary(value=values), epoch)

  def close(self) -> None:
    for w in self._writers:
      w.close()
