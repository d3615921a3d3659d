"""Tests for genjax.train.early_stopping: Keras 3 / Lightning semantics, jit and vmap."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from genjax.train import early_stopping as es_lib
from genjax.train.early_stopping import EarlyStopping
from genjax.errors import ConfigError


def reference(values, *, monitor="val_loss", mode="auto", min_delta=0.0,
              patience=0, baseline=None, start_from_epoch=0, check_finite=True,
              stopping_threshold=None, divergence_threshold=None, **unused):
  """Plain-Python transcription of Keras 3 + Lightning, one dict per epoch.

  Keras: keras/src/callbacks/monitor_callback.py (`_set_monitor_op`,
  `_is_improvement`) and keras/src/callbacks/early_stopping.py
  (`on_train_begin`, `on_epoch_end`). Lightning:
  src/lightning/pytorch/callbacks/early_stopping.py
  (`_evaluate_stopping_criteria`). Arithmetic in float32, like the state.
  The driver stops feeding values once a stop is reported.
  """
  f32 = np.float32
  if mode == "auto":
    mode = "max" if ("acc" in monitor or "auc" in monitor) else "min"
  # MonitorCallback.__init__: `self.min_delta = abs(min_delta)`;
  # _set_monitor_op: `if self.monitor_op == ops.less: self.min_delta *= -1`.
  delta = f32(abs(min_delta)) * (f32(-1) if mode == "min" else f32(1))
  op = (lambda a, b: a < b) if mode == "min" else (lambda a, b: a > b)

  def is_improvement(value, reference_value):
    # MonitorCallback._is_improvement.
    if reference_value is None:
      return True
    return op(value - delta, f32(reference_value))

  best, best_epoch, wait = None, -1, 0  # EarlyStopping.on_train_begin
  out = []
  for epoch, value in enumerate(values):
    value = f32(value)
    row = dict(stop=False, reason="none", improved=False)
    # on_epoch_end: `if current is None or epoch < self.start_from_epoch: return`
    if epoch >= start_from_epoch:
      # Lightning `_evaluate_stopping_criteria`: if / elif chain, in order.
      if check_finite and not np.isfinite(value):
        row["reason"] = "non_finite"
      elif stopping_threshold is not None and op(value, f32(stopping_threshold)):
        row["reason"] = "stopping_threshold"
      elif divergence_threshold is not None and op(
          -value, -f32(divergence_threshold)):
        row["reason"] = "divergence_threshold"
      if row["reason"] != "non_finite":
        wait += 1  # on_epoch_end: `self.wait += 1`
        if is_improvement(value, best):
          best, best_epoch = value, epoch
          row["improved"] = True
          # `if self.baseline is None or self._is_improvement(current, baseline)`
          if baseline is None or is_improvement(value, baseline):
            wait = 0
        # `if self.wait >= self.patience and epoch > 0:` (after the return)
        elif wait >= patience and epoch > 0 and row["reason"] == "none":
          row["reason"] = "patience"
    row.update(stop=row["reason"] != "none", best_epoch=best_epoch, wait=wait)
    out.append(row)
    if row["stop"]:
      break
  return out


def run_batched(es, values):
  """Eager updates of a batched state (no vmap); values: [members, epochs]."""
  state = es.init(batch_shape=(values.shape[0],))
  states = []
  for epoch in range(values.shape[1]):
    state = es.update(state, values[:, epoch], epoch)
    states.append(jax.device_get(state))
  return states


def assert_matches_reference(es, values, states):
  settings = {f: getattr(es, f) for f in es.__dataclass_fields__}
  for m in range(values.shape[0]):
    ref = reference(values[m], **settings)
    for epoch, row in enumerate(ref):
      s = jax.tree.map(lambda x: x[m], states[epoch])
      got = dict(stop=bool(s.should_stop),
                 reason=es_lib.stop_reason_name(s.stop_reason),
                 improved=bool(s.improved), best_epoch=int(s.best_epoch),
                 wait=int(s.wait))
      assert got == row, (settings, values[m].tolist(), epoch)
    last = jax.tree.map(lambda x: x[m], states[-1])
    if ref[-1]["stop"]:  # frozen: later epochs change nothing
      assert int(last.stopped_epoch) == len(ref) - 1
      assert int(last.best_epoch) == ref[-1]["best_epoch"]
      assert len(ref) == values.shape[1] or not bool(last.improved)
    else:
      assert int(last.stopped_epoch) == -1


def feed(es, values):
  """Per-epoch Python driver: returns (epochs trained, final state)."""
  state = es.init()
  update = jax.jit(es.update)
  for epoch, value in enumerate(values):
    state = update(state, value, epoch)
    if state.should_stop:
      return epoch + 1, state
  return len(values), state


# Known answers from keras/src/callbacks/early_stopping_test.py.


def test_keras_restore_best_weights_case():
  es = EarlyStopping(monitor="val_loss", patience=2)
  trained, state = feed(es, [0.2, 0.15, 0.1, 0.11, 0.12])
  assert trained == 5 and int(state.stopped_epoch) == 4
  assert int(state.best_epoch) == 2
  assert es_lib.stop_reason_name(state.stop_reason) == "patience"


def test_keras_baseline_case():
  es = EarlyStopping(monitor="val_loss", patience=5, baseline=0.5)
  trained, state = feed(es, [0.9, 0.8, 0.7, 0.71, 0.72, 0.73])
  assert trained == 5 and int(state.stopped_epoch) == 4
  assert int(state.best_epoch) == 2


def test_keras_baseline_case_other_stop_keeps_best():
  # Keras: another callback stops at epoch 3; the best is still epoch 2.
  es = EarlyStopping(monitor="val_loss", patience=5, baseline=0.5)
  trained, state = feed(es, [0.9, 0.8, 0.7, 0.71])
  assert trained == 4 and not bool(state.should_stop)
  assert int(state.best_epoch) == 2 and bool(state.has_best)


@pytest.mark.parametrize("patience", [0, 1, 2, 3])
def test_keras_patience_case(patience):
  losses = [10.0, 9.0, 8.0, 9.0, 8.9, 8.8, 8.7, 8.6, 8.5]
  _, state = feed(EarlyStopping(monitor="train_loss_running", patience=patience), losses)
  assert int(state.stopped_epoch) == max(patience, 1) + 2


def test_start_from_epoch_warm_up_is_ignored():
  es = EarlyStopping(patience=0, start_from_epoch=2)
  trained, state = feed(es, [5.0, 6.0, 7.0, 8.0, 9.0])
  assert trained == 4 and int(state.best_epoch) == 2


def test_lightning_checks():
  es = EarlyStopping(patience=10, stopping_threshold=0.1)
  _, state = feed(es, [0.5, 0.3, 0.05, 0.01])
  assert int(state.stopped_epoch) == 2 and int(state.best_epoch) == 2
  assert es_lib.stop_reason_name(state.stop_reason) == "stopping_threshold"
  es = EarlyStopping(monitor="val_accuracy", patience=10,
                     divergence_threshold=0.2)
  _, state = feed(es, [0.5, 0.6, 0.1, 0.7])
  assert int(state.stopped_epoch) == 2 and int(state.best_epoch) == 1
  _, state = feed(EarlyStopping(patience=10), [0.5, float("nan"), 0.1])
  assert es_lib.stop_reason_name(state.stop_reason) == "non_finite"
  assert int(state.best_epoch) == 0 and float(state.best) == 0.5
  # check_finite=False: Keras treats NaN as "no improvement".
  es = EarlyStopping(patience=2, check_finite=False)
  _, state = feed(es, [0.5, float("nan"), 0.4, float("nan"), float("nan")])
  assert int(state.stopped_epoch) == 4 and int(state.best_epoch) == 2


def _random_case(rng):
  """Random settings and a [members, epochs] float32 array of monitored values."""
  monitor = str(rng.choice(es_lib.KNOWN_MONITORS))
  mode = str(rng.choice(["auto", "min", "max"]))
  grid = rng.random() < 0.6  # multiples of 1/8: many exact ties
  members, epochs = 16, int(rng.integers(1, 25))
  if grid:
    values = rng.integers(-6, 7, (members, epochs)).cumsum(1) / 8.0
  else:
    values = rng.normal(0, 1, (members, epochs)).cumsum(1)
  bad = rng.random((members, epochs)) < rng.choice([0.0, 0.05, 0.2])
  values[bad] = rng.choice([np.nan, np.inf, -np.inf], bad.sum())
  pick = lambda p, v: v if rng.random() < p else None
  number = lambda: float(rng.integers(-12, 13) / 8.0)
  settings = dict(
      monitor=monitor, mode=mode, patience=int(rng.integers(0, 6)),
      min_delta=float(rng.choice([0.0, 0.125, 0.25, rng.random() / 4])),
      baseline=pick(0.4, number()), start_from_epoch=int(rng.integers(0, 5)),
      check_finite=bool(rng.random() < 0.5),
      stopping_threshold=pick(0.25, number() * 2),
      divergence_threshold=pick(0.25, number() * 2))
  return EarlyStopping(**settings), values.astype(np.float32)


def test_matches_reference_on_random_sequences():
  rng = np.random.default_rng(0)
  for _ in range(60):  # 60 settings x 16 members
    es, values = _random_case(rng)
    assert_matches_reference(es, values, run_batched(es, values))


def test_vmap_jit_equals_per_member_and_reference():
  rng = np.random.default_rng(1)
  for _ in range(4):
    es, values = _random_case(rng)
    update = jax.vmap(jax.jit(es.update), in_axes=(0, 0, None))
    state = jax.vmap(lambda _: es.init())(jnp.arange(values.shape[0]))
    states = []
    for epoch in range(values.shape[1]):
      state = update(state, jnp.asarray(values[:, epoch]), jnp.int32(epoch))
      states.append(jax.device_get(state))
    assert_matches_reference(es, values, states)
    for m in range(3):  # a few members alone, unbatched
      alone = es.init()
      for epoch in range(values.shape[1]):
        alone = es.update(alone, values[m, epoch], epoch)
      member = jax.tree.map(lambda x: x[m], states[-1])
      jax.tree.map(np.testing.assert_array_equal, alone, member)


def test_update_in_scan_with_traced_epoch():
  es = EarlyStopping(patience=2)
  values = jnp.array([[0.2, 0.15, 0.1, 0.11, 0.12, 0.05],
                      [0.3, 0.2, 0.1, 0.05, 0.01, 0.001]])

  @jax.jit
  def run(values):
    def step(state, xs):
      value, epoch = xs
      state = jax.vmap(es.update, in_axes=(0, 0, None))(state, value, epoch)
      return state, state.improved
    init = es.init(batch_shape=(values.shape[0],))
    return jax.lax.scan(step, init, (values.T, jnp.arange(values.shape[1])))

  state, improved = run(values)
  np.testing.assert_array_equal(state.should_stop, [True, False])
  np.testing.assert_array_equal(state.stopped_epoch, [4, -1])
  np.testing.assert_array_equal(state.best_epoch, [2, 5])
  assert not improved[5, 0]  # frozen member: its later better value is ignored


def test_keep_best_and_restore():
  es = EarlyStopping(patience=1)
  state = es.init(batch_shape=(2,))
  best = {"w": jnp.zeros((2, 3))}
  for epoch, vals in enumerate([[1.0, 1.0], [0.5, 2.0], [0.7, 3.0]]):
    state = es.update(state, jnp.array(vals), epoch)
    params = {"w": jnp.full((2, 3), float(epoch))}
    best = es.keep_best(state, best, params)
  np.testing.assert_array_equal(best["w"][:, 0], [1.0, 0.0])
  np.testing.assert_array_equal(es.restore(state, best, params)["w"][:, 0],
                                [1.0, 0.0])
  keep_last = EarlyStopping(patience=1, restore_best_weights=False)
  assert keep_last.restore(state, best, params) is params
  fresh = es.init()  # no best yet: keep the current weights
  np.testing.assert_array_equal(
      es.restore(fresh, {"w": jnp.zeros(3)}, {"w": jnp.ones(3)})["w"], 1.0)


def test_auto_mode_and_hashable():
  assert EarlyStopping(monitor="val_loss").resolved_mode == "min"
  assert EarlyStopping(monitor="train_accuracy_running").resolved_mode == "max"
  assert EarlyStopping(monitor="val_loss", mode="max").resolved_mode == "max"
  assert hash(EarlyStopping()) == hash(EarlyStopping())
  assert EarlyStopping(patience=np.int64(3)).patience == 3
  assert es_lib.STOP_REASONS[0] == "none" and "max_epochs" in es_lib.STOP_REASONS


@pytest.mark.parametrize("kwargs, needle", [
    (dict(mode="best"), "mode"),
    (dict(monitor="val_f1"), "val_accuracy"),
    (dict(patience=-1), "patience"),
    (dict(patience=1.5), "patience"),
    (dict(patience=True), "patience"),
    (dict(min_delta=-0.1), "min_delta"),
    (dict(start_from_epoch=-2), "start_from_epoch"),
    (dict(baseline=float("nan")), "baseline"),
    (dict(stopping_threshold="low"), "stopping_threshold"),
    (dict(check_finite=1), "check_finite"),
])
def test_bad_settings_raise_config_error(kwargs, needle):
  with pytest.raises(ConfigError, match=needle) as info:
    EarlyStopping(**kwargs)
  assert "\n" not in str(info.value)


def test_config_round_trip():
  cfg = es_lib.default_config()
  es = es_lib.from_config(cfg)
  assert es == EarlyStopping(patience=10)
  cfg.baseline = 0.5
  cfg.patience = 3
  assert es_lib.from_config(cfg).baseline == 0.5
  cfg.enabled = False
  assert es_lib.from_config(cfg) is None
  partial = ml_collections.ConfigDict({"monitor": "val_accuracy"})
  assert es_lib.from_config(partial).resolved_mode == "max"
  with pytest.raises(ConfigError, match="patince"):
    es_lib.from_config(ml_collections.ConfigDict({"patince": 3}))
  cfg = es_lib.default_config()
  cfg.mode = "largest"
  with pytest.raises(ConfigError, match="mode"):
    es_lib.from_config(cfg)
  assert es_lib.default_config().stopping_threshold is None
