"""Callbacks: what the host does around training, as a list handed to `fit`.

The protocol (flax/examples' hooks, CLU's periodic actions), every method optional:

    class Callback:
      def restore(self, state) -> (epoch, state) | None   # resuming: where to start from
      def on_train_start(self, info: FitInfo) -> None
      def on_epoch_end(self, info: FitInfo, logs: EpochLogs) -> None
      def on_train_end(self, info: FitInfo, state) -> None
      def on_interrupt(self, info: FitInfo) -> None       # Ctrl-C: finish what is under way

`FitInfo` holds the program (member names, plans), the epoch range and the rows so far;
`EpochLogs` one epoch's rows, metrics (M,), which members improved and stopped, and the
state. Callbacks observe: they never change the training, so adding one cannot change a
number. Built-ins: `MetricsLog` (metrics.jsonl), `TensorBoardLog`, `Progress` (tqdm),
`RunCheckpoint` (the whole vmapped state, for resume), `MemberBestCheckpoints` (each
member's own best weights).

A user callback is a class registered in the user's config module (or a module it
imports) and enabled by name:

    from genjax.train import callbacks               # in my_config.py

    @callbacks.register("print_val")                 # a new name: taken names are refused
    class PrintVal(callbacks.Callback):
      def __init__(self, config, workdir):
        pass
      def on_epoch_end(self, info, logs):
        print(logs.epoch, logs.metrics["val_loss"])  # one value per member, (M,)

    config.callbacks = "print_val"                   # in get_config(); comma-separated names

It is constructed as `cls(config, workdir)` (`workdir` None for in-memory runs) and runs
after the built-ins, on every process (check `genjax.platform.distributed.is_primary()` to write).
"""

from __future__ import annotations

import os

import jax
import numpy as np
from tqdm.auto import tqdm

from genjax.workdir import checkpoint
from genjax.platform import distributed
from genjax.report.files import json_line, read_metrics, write_metrics
from genjax.report.tensorboard import TensorBoard, name_parts, run_dirs
from genjax.errors import ConfigError
from genjax.registry import Registry

CALLBACKS = Registry("callback", config_key="callbacks")
# Members beyond this count (large sweeps) keep their best weights in the run checkpoint only.
MAX_MEMBER_CHECKPOINTS = 16


def register(name: str):
  """Decorator registering a callback class (constructed as `cls(config, workdir)`)."""
  return CALLBACKS.register(name)


class Callback:
  """No-op base: subclass and override what you need (see the module docstring)."""

  def on_train_start(self, info) -> None:
    pass

  def on_epoch_end(self, info, logs) -> None:
    pass

  def on_train_end(self, info, state) -> None:
    pass

  def on_interrupt(self, info) -> None:
    pass


def from_config(config, workdir: str | None) -> list[Callback]:
  """The user callbacks named in `config.callbacks` ("" = none), constructed."""
  out = []
  for name in validate(config):
    cls = CALLBACKS.get(name)
    try:
      out.append(cls(config, workdir))
    except ConfigError:
      raise
    except Exception as e:  # pylint: disable=broad-except
      raise ConfigError(f"callback {name!r} failed to start: {type(e).__name__}: {e}; fix "
                        "its __init__(config, workdir)") from None
  return out


def validate(config) -> list[str]:
  """The names in `config.callbacks`, each registered (ConfigError otherwise)."""
  spec = config.callbacks
  if not isinstance(spec, str):
    raise ConfigError(f"config.callbacks={spec!r} must be a comma-separated string of "
                      "registered callback names, e.g. --config.callbacks=print_val")
  names = [n.strip() for n in spec.split(",") if n.strip()]
  for name in names:
    CALLBACKS.get(name)
  return names


class MetricsLog(Callback):
  """`<workdir>/<name>`: one strict-JSON row per member and epoch (null for non-finite).

  Resuming at epoch e keeps the file's rows of epochs < e (they go into `info.rows`) and
  drops later ones (written after the checkpoint the run resumes from). Every epoch < e must
  have its rows (they are written before that epoch's checkpoint): a file cut or edited
  short is refused (ConfigError), never resumed into a shorter log.
  """

  def __init__(self, path: str):
    self.path, self._file = path, None

  def on_train_start(self, info) -> None:
    rows = [r for r in read_metrics(self.path) if r["epoch"] < info.start_epoch]
    missing = sorted(set(range(info.start_epoch)) - {r["epoch"] for r in rows})
    if distributed.broadcast_int(len(missing) if distributed.is_primary() else 0):
      missing = missing or [0]   # (another process's file: process 0's verdict holds)
      contiguous = missing[-1] - missing[0] + 1 == len(missing)
      span = (f"epoch {missing[0]}" if len(missing) == 1
              else f"epochs {missing[0]}..{missing[-1]}" if contiguous
              else f"{len(missing)} epochs ({missing[0]}, ...)")
      raise ConfigError(f"'{self.path}' lacks the rows of {span}, which the checkpoint this run "
                        "resumes from has trained (the file was cut or edited); they cannot be "
                        "rebuilt: restore the file, or pass --overwrite to rerun from scratch")
    write_metrics(self.path, rows)
    info.rows[:0] = rows
    self._file = open(self.path if distributed.is_primary() else os.devnull, "a")

  def on_epoch_end(self, info, logs) -> None:
    for row in logs.rows:
      self._file.write(json_line(row))
    self._file.flush()

  def on_train_end(self, info, state) -> None:
    self._file.close()

  def on_interrupt(self, info) -> None:
    if self._file is not None:
      self._file.close()


class TensorBoardLog(Callback):
  """TensorBoard event files, one run folder per member: `<root>/<run><suffix>`, the runs
  named by `runs` (each member's folder parts, e.g. (point name, 'fold0')), else by the
  member names (`report.tensorboard.name_parts`), made file-safe and distinct
  (`run_dirs`). Each run holds its scalars per epoch and, given the run's resolved `config`,
  that config as text and the HParams dashboard's data: the member's hyperparameters
  (`member_hparams`) at the start, its final metrics (`final_metrics`) at the end."""

  def __init__(self, root: str, suffix: str = "", config=None,
               runs: list[tuple[str, ...]] | None = None):
    self.root, self.suffix, self.config, self.runs, self._tb = root, suffix, config, runs, None

  def on_train_start(self, info) -> None:
    program = info.program
    parts = self.runs or [name_parts(n) for n in program.member_names]
    self._tb = TensorBoard(self.root, run_dirs(parts), prefix=self.suffix)
    self._tb.purge_from(info.start_epoch)
    if self.config is None:
      return
    text = self.config.to_json_best_effort(indent=2, sort_keys=True)
    for k in range(program.num_members):
      values = member_hparams(self.config, program, k)
      if self.runs:   # the point's display name, as the sweep's tables show it
        values = {"point": self.runs[k][0], **values}
      self._tb.start(k, values, config_markdown(values, text))

  def on_epoch_end(self, info, logs) -> None:
    for k, row in zip(logs.active, logs.rows):
      self._tb.write(k, logs.epoch, row)

  def on_train_end(self, info, state) -> None:
    if self.config is not None:
      epochs_run = max((r["epoch"] + 1 for r in info.rows), default=info.start_epoch)
      for k, metrics in enumerate(final_metrics(info, state, epochs_run)):
        self._tb.end(k, epochs_run, metrics)
    self._tb.close()

  def on_interrupt(self, info) -> None:
    if self._tb is not None:   # no session end: a resumed run writes it when it finishes
      self._tb.close()


# A run's main hyperparameters (config keys), shown with the swept ones in TensorBoard.
MAIN_HPARAMS = ("data.name", "data.augment", "data.label_noise", "model.name", "model.widths",
                "model.dropout", "optimizer.name", "optimizer.learning_rate",
                "optimizer.schedule", "optimizer.weight_decay", "batch_size", "num_epochs",
                "loss.label_smoothing", "ema.decay", "cv.method", "seed")


def member_hparams(config, program, k: int) -> dict:
  """Member k's hyperparameters: its name (`run`), the config's MAIN_HPARAMS and every
  penalty strength > 0, its own swept values (`MemberPlan.hparams`), its seed and, under
  cross-validation, its fold."""
  plan = program.plans[k]
  out = {"run": program.member_names[k]}
  for key in MAIN_HPARAMS:
    out[key] = _config_value(config, key)
  for name, penalty in (config.get("penalties") or {}).items():
    strength = penalty.get("strength") if hasattr(penalty, "get") else None
    if strength:
      out[f"penalties.{name}.strength"] = strength
  out.update(plan.hparams)
  out["seed"] = plan.seed if plan.seed is not None else _config_value(config, "seed")
  if _config_value(config, "cv.method") not in (None, "none"):
    out["fold"] = plan.member_id
  return {k: v for k, v in out.items() if v is not None}


def _config_value(config, key: str):
  """`config`'s value at dotted `key`, None where it has none."""
  node = config
  for part in key.split("."):
    if not hasattr(node, "get"):
      return None
    node = node.get(part)
  return node


def config_markdown(values: dict, config_json: str) -> str:
  """The text a run stores under `config`: its own values, then the resolved config (JSON,
  as a code block)."""
  own = ", ".join(f"{k}={v}" for k, v in values.items())
  return (f"**This run:** {own}\n\n**Resolved config:**\n\n"
          + "\n".join("    " + line for line in config_json.splitlines()))


def final_metrics(info, state, epochs_run: int) -> list[dict]:
  """Per member: the float metrics of its row at its selected epoch (`Program.
  selected_epoch`: best under restore_best_weights, else its last), `selected_epoch` and
  `epochs_trained` (its rows, a resumed run's earlier ones included)."""
  program = info.program
  monitor = program.real(distributed.to_host(state.monitor))   # a collective: every process
  selected = program.selected_epoch(monitor, epochs_run)
  rows: list[dict] = [{} for _ in range(program.num_members)]
  index = _member_index(program)
  for r in info.rows:
    rows[index(r)][r["epoch"]] = r
  out = []
  for k, by_epoch in enumerate(rows):
    row = by_epoch.get(int(selected[k]), {})
    out.append({**{key: v for key, v in row.items() if isinstance(v, float)},
                "selected_epoch": int(selected[k]), "epochs_trained": len(by_epoch)})
  return out


def _member_index(program):
  """row -> the index of the member it belongs to (`fit`'s rows: `member` names in sweeps,
  `fold` ids with several members, neither for one)."""
  if program.named_members:
    names = {n: k for k, n in enumerate(program.member_names)}
    return lambda r: names[r["member"]]
  if program.num_members > 1:
    ids = {p.member_id: k for k, p in enumerate(program.plans)}
    return lambda r: ids[r["fold"]]
  return lambda r: 0


class Progress(Callback):
  """A tqdm bar over epochs (primary process only): loss, validation and members training."""

  def __init__(self, label: str, enabled: bool = True):
    self.label, self.enabled, self._bar = label, enabled, None

  def on_train_start(self, info) -> None:
    self._bar = tqdm(total=info.num_epochs, initial=info.start_epoch, unit="epoch",
                     disable=not self.enabled or not distributed.is_primary(),
                     desc=self.label, dynamic_ncols=True)

  def on_epoch_end(self, info, logs) -> None:
    rows, m = logs.rows, info.program.num_members
    mean = lambda key: np.mean([r[key] for r in rows])  # noqa: E731
    shown = {"loss": f"{mean('train_loss_running'):.3f}"}
    if info.program.has_validation:
      shown.update(val_loss=f"{mean('val_loss'):.3f}", val_acc=f"{mean('val_accuracy'):.3f}")
    if m > 1:
      shown["training"] = f"{m - int(logs.stopped.sum())}/{m}"
    self._bar.set_postfix(shown)
    self._bar.update(1)

  def on_train_end(self, info, state) -> None:
    self._bar.close()

  def on_interrupt(self, info) -> None:
    if self._bar is not None:
      self._bar.close()


class MembersLeaving(Callback):
  """One line when the members still training first fall to half, a quarter, ... of the
  run's (primary process only): with `parallel.compaction` the stopped ones have left the
  epoch program, which computes only the member blocks still training."""

  def __init__(self):
    self._next = 0.5

  def on_train_start(self, info) -> None:
    self._next = 0.5

  def on_epoch_end(self, info, logs) -> None:
    m = info.program.num_members
    living = m - int(logs.stopped.sum())
    if m < 2 or living == 0 or living > self._next * m:
      return
    while living <= self._next * m:
      self._next /= 2
    if distributed.is_primary():
      how = ("the stopped ones left the epoch program" if info.program.compaction
             else "the stopped ones are still computed (parallel.compaction=False, or "
             "epoch_loop=steps)")
      tqdm.write(f"genjax: epoch {logs.epoch}: {living} of {m} members still train; {how}")


class RunCheckpoint(Callback):
  """The whole vmapped run state (orbax) after each epoch, ranked by the mean monitored
  value of the members trained; `restore` resumes from the latest verified step."""

  def __init__(self, ckpt: checkpoint.Checkpointer, devices: int | None = None):
    self.ckpt, self.devices = ckpt, devices   # devices: how many the program trains on
    self._last = None   # (epoch, state, monitored) of the last epoch that ended

  def restore(self, state):
    return self.ckpt.restore_latest(state, devices=self.devices)

  def on_epoch_end(self, info, logs) -> None:
    epoch = logs.epoch + 1
    self._last = (epoch, logs.state, logs.monitored)
    self.ckpt.save(epoch, logs.state, metric=logs.monitored, devices=self.devices,
                   force=epoch == info.num_epochs or bool(logs.stopped.all()))

  def on_train_end(self, info, state) -> None:
    self.ckpt.wait()
    self.ckpt.close()

  def on_interrupt(self, info) -> None:
    """Ctrl-C, SIGTERM, SIGHUP: the last epoch that ended is saved whatever
    `min_interval_s` says (a no-op when it is saved already), so the rerun loses nothing."""
    if self._last is not None:
      epoch, state, monitored = self._last
      self.ckpt.save(epoch, state, metric=monitored, devices=self.devices, force=True)
    self.ckpt.close()   # the saves under way complete


class MemberBestCheckpoints(Callback):
  """Each member's own best weights in its own orbax best-k, `<directory>/<member>`: saved
  when it improves (rate-limited by `min_interval_s`) and, at the end, its final best."""

  def __init__(self, directory: str, *, mode: str, keep_best: int, min_interval_s: float,
               async_save: bool):
    self.directory, self._settings = directory, dict(
        mode=mode, keep_best=keep_best, keep_latest=1, min_interval_s=min_interval_s,
        async_save=async_save)
    self._ckpts = []

  def on_train_start(self, info) -> None:
    self._ckpts = [checkpoint.Checkpointer(os.path.join(self.directory, n.replace("/", "_")),
                                           **self._settings)
                   for n in info.program.member_names]

  def on_epoch_end(self, info, logs) -> None:
    better = np.flatnonzero(logs.improved)
    if len(better):  # sliced on the host: a device slice would queue behind epoch e + 1
      params = jax.device_get(info.program.weights(logs.state.train))
      monitor = info.program.monitor.monitor
      for k in better:
        self._ckpts[k].save(logs.epoch, member_slice(params, k),
                            metric=float(logs.metrics[monitor][k]))

  def on_train_end(self, info, state) -> None:
    # Saves on improvement are rate-limited: each member's final best is written now if
    # that skipped it.
    mon, best_params = jax.device_get((state.monitor, state.best_params))
    for k, c in enumerate(self._ckpts):
      best_epoch = int(mon.best_epoch[k])
      if best_epoch >= 0 and c.latest_epoch() != best_epoch:
        c.save(best_epoch, member_slice(best_params, k), metric=float(mon.best[k]), force=True)
    for c in self._ckpts:
      c.wait()
      c.close()

  def on_interrupt(self, info) -> None:
    for c in self._ckpts:
      c.close()


def member_slice(tree, k: int):
  """Member `k`'s slice of a tree with a leading member axis."""
  return jax.tree.map(lambda a: a[k], tree)
