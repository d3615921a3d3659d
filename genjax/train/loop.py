"""`fit`: one model trained on a hold-out plan, epoch by epoch, from a config.

Python only drives epochs. Each epoch is one jit-compiled program
(`run_epoch`): a `lax.scan` of training steps, the validation pass, weight
statistics and the early-stopping update with its best-weights select, all on
device. After each epoch the host appends a metrics row and saves the run
state (orbax, async) so a killed run resumes where it was.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from genjax import checkpoint, defaults, early_stopping, models, optim, penalties, report
from genjax.data import augment, datasets, standardize, validation
from genjax.errors import ConfigError
from genjax.train.steps import Plan, TrainState, make_epoch_fns

# Streams folded into a member's root key.
_INIT, _TRAIN = 0, 1


@flax.struct.dataclass
class RunState:
  """Everything an epoch changes, checkpointed as one pytree."""
  train: TrainState
  monitor: Any        # EarlyStopping state (pytree)
  best_params: Any    # params at the monitor's best epoch (on device)


def member_key(seed: int, member: int) -> jax.Array:
  return jax.random.fold_in(jax.random.key(seed), member)


def _config_json(config) -> str:
  return json.dumps(json.loads(config.to_json_best_effort()), indent=2, sort_keys=True)


def prepare_workdir(workdir: str, config, *, overwrite: bool) -> bool:
  """Creates/checks the workdir; returns True when it holds a run of this config to resume.

  A workdir whose config.json differs is refused (ConfigError) unless
  `overwrite`, which removes that run's outputs explicitly (and says so).
  """
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, "config.json")
  new = _config_json(config)
  if os.path.exists(path):
    with open(path) as f:
      old = f.read()
    if old.strip() != new.strip():
      if not overwrite:
        raise ConfigError(f"workdir '{workdir}' holds a run with a different config; "
                          "pass --overwrite to replace it, or choose another --workdir")
      for name in ("metrics.jsonl", "results.json", "learning_curves.png", config.checkpoint.subdir):
        target = os.path.join(workdir, name)
        if os.path.isdir(target):
          shutil.rmtree(target)
        elif os.path.exists(target):
          os.remove(target)
      print(f"--overwrite: removed the previous run's outputs in {workdir}", flush=True)
    else:
      return True
  with open(path, "w") as f:
    f.write(new + "\n")
  return False


def fit(config, workdir: str, *, overwrite: bool = False, progress: bool = True) -> dict:
  """Trains `config` and writes config.json, metrics.jsonl, results.json, learning_curves.png.

  Raises ConfigError for bad input before anything compiles. Returns results.
  """
  t_start = time.time()
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise ConfigError(f"--workdir '{workdir}' is a file, not a directory; pass a directory path")
  defaults.validate(config)
  es = early_stopping.from_config(config.early_stopping)
  splits = datasets.load(config.data.name, data_dir=config.data.data_dir or None)
  train_idx, val_idx = validation.holdout_split(splits.train_y, config.data.validation_fraction,
                                                config.seed)
  defaults.validate_against_data(config, splits, len(train_idx))
  model = models.create(config.model, splits.input_shape, splits.num_classes)
  key = member_key(config.seed, 0)
  params = model.init(jax.random.fold_in(key, _INIT))
  penalties.validate_config(config.penalties, params)
  resume = prepare_workdir(workdir, config, overwrite=overwrite)

  steps_per_epoch = -(-len(train_idx) // config.batch_size)
  tx = optim.make_optimizer(config.optimizer, config.penalties, params,
                            steps_per_epoch=steps_per_epoch, num_epochs=config.num_epochs)
  penalty_fn = penalties.penalty_loss_fn(config.penalties, params)
  augmenter = augment.build(config.data.augment, splits.input_shape, splits.num_classes)
  train_epoch, evaluate, _ = make_epoch_fns(
      apply_fn=model.apply, tx=tx, penalty_fn=lambda p, s: penalty_fn(p, s),
      augmenter=augmenter, num_classes=splits.num_classes,
      batch_size=config.batch_size, eval_batch_size=config.eval_batch_size)

  mean, std = standardize.fit(splits.train_x, train_idx, config.data.standardize)
  plan = Plan(train_idx=jnp.asarray(train_idx, jnp.int32),
              train_weight=jnp.ones(len(train_idx), jnp.float32),
              val_idx=jnp.asarray(val_idx, jnp.int32),
              val_weight=jnp.ones(len(val_idx), jnp.float32),
              mean=jnp.asarray(mean), std=jnp.asarray(std),
              key=jax.random.fold_in(key, _TRAIN))
  x_train, y_train = jnp.asarray(splits.train_x), jnp.asarray(splits.train_y, jnp.int32)
  monitor_es = es or early_stopping.EarlyStopping(monitor="val_loss", patience=10**9)

  def run_epoch(rs: RunState, epoch):
    frozen = rs.monitor.should_stop
    train, train_metrics = train_epoch(rs.train, plan, x_train, y_train, epoch, frozen)
    val = evaluate(train.params, plan, x_train, y_train, plan.val_idx, plan.val_weight)
    metrics = {**train_metrics, "val_loss": val["loss"], "val_accuracy": val["accuracy"]}
    metrics.update({f"weight_{k}": v for k, v in penalties.weight_stats(train.params).items()})
    monitor = monitor_es.update(rs.monitor, metrics[monitor_es.monitor], epoch)
    improved = jnp.logical_and(monitor.improved, jnp.logical_not(frozen))
    best = jax.tree.map(lambda n, o: jnp.where(improved, n, o), train.params, rs.best_params)
    return RunState(train=train, monitor=monitor, best_params=best), metrics

  run_epoch = jax.jit(run_epoch)
  state = RunState(train=TrainState(step=jnp.zeros((), jnp.int32), params=params,
                                    opt_state=tx.init(params)),
                   monitor=monitor_es.init(), best_params=params)

  metrics_path = os.path.join(workdir, "metrics.jsonl")
  ckpt = None
  start_epoch = 0
  if config.checkpoint.enabled:
    ckpt = checkpoint.Checkpointer(
        os.path.join(workdir, config.checkpoint.subdir),
        mode=monitor_es.resolved_mode, keep_best=config.checkpoint.keep_best,
        keep_latest=config.checkpoint.keep_latest, save_every=config.checkpoint.save_every,
        async_save=config.checkpoint.async_save)
    if resume:
      restored = ckpt.restore_latest(state)
      if restored is not None:
        start_epoch, state = restored
  rows = [r for r in report.read_metrics(metrics_path) if r["epoch"] < start_epoch]
  report.write_metrics(metrics_path, rows)

  bar = tqdm(total=config.num_epochs, initial=start_epoch, disable=not progress,
             desc=f"{config.data.name}/{config.model.name}", unit="epoch", dynamic_ncols=True)
  epoch = start_epoch
  with open(metrics_path, "a") as metrics_file:
    while epoch < config.num_epochs and not bool(state.monitor.should_stop):
      state, metrics = run_epoch(state, epoch)
      row = {"epoch": epoch, **{k: float(v) for k, v in jax.device_get(metrics).items()}}
      rows.append(row)
      metrics_file.write(json.dumps(row, sort_keys=True) + "\n")
      metrics_file.flush()
      epoch += 1
      if ckpt is not None:
        done = epoch == config.num_epochs or bool(state.monitor.should_stop)
        ckpt.save(epoch, state, metric=row[monitor_es.monitor], force=done)
      bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_loss=f"{row['val_loss']:.3f}",
                      val_acc=f"{row['val_accuracy']:.3f}")
      bar.update(1)
  bar.close()
  if ckpt is not None:
    ckpt.wait()
    ckpt.close()

  mon = jax.device_get(state.monitor)
  restore_best = es is not None and es.restore_best_weights and int(mon.best_epoch) >= 0
  selected = state.best_params if restore_best else state.train.params
  selected_epoch = int(mon.best_epoch) if restore_best else epoch - 1

  test_plan = plan.replace(val_idx=jnp.arange(len(splits.test_y), dtype=jnp.int32),
                           val_weight=jnp.ones(len(splits.test_y), jnp.float32))
  x_test, y_test = jnp.asarray(splits.test_x), jnp.asarray(splits.test_y, jnp.int32)
  final = {
      "train": evaluate(selected, plan, x_train, y_train, plan.train_idx, plan.train_weight),
      "val": evaluate(selected, plan, x_train, y_train, plan.val_idx, plan.val_weight),
      # The test split: evaluated once, here, on the selected weights.
      "test": evaluate(selected, test_plan, x_test, y_test, test_plan.val_idx, test_plan.val_weight),
  }
  final = {k: {m: float(v) for m, v in d.items()} for k, d in jax.device_get(final).items()}
  results = {
      **final,
      "epochs_run": epoch,
      "selected_epoch": selected_epoch,
      "best_epoch": int(mon.best_epoch) if es is not None else None,
      "stopped_epoch": int(mon.stopped_epoch) if es is not None and bool(mon.should_stop) else None,
      "stop_reason": (early_stopping.STOP_REASONS[int(mon.stop_reason)]
                      if es is not None and bool(mon.should_stop) else "max_epochs"),
      "monitor": monitor_es.monitor,
      "best_monitor_value": float(mon.best) if es is not None else None,
      "generalization_gap": {
          "accuracy": final["train"]["accuracy"] - final["val"]["accuracy"],
          "loss": final["val"]["loss"] - final["train"]["loss"],
      },
      "num_params": int(sum(np.size(p) for p in jax.tree.leaves(params))),
      "dataset": {"name": splits.name, "train": len(train_idx), "val": len(val_idx),
                  "test": len(splits.test_y), "num_classes": splits.num_classes,
                  "input_shape": list(splits.input_shape)},
      "devices": jax.device_count(),
      "wall_time_s": time.time() - t_start,
  }
  report.write_json(os.path.join(workdir, "results.json"), results)
  report.plot_learning_curves(os.path.join(workdir, "learning_curves.png"), rows,
                              best_epoch=selected_epoch,
                              title=f"{splits.name} / {config.model.name}")
  return results
