"""User callbacks (genjax.train.callbacks), registered metrics (genjax.train.metrics, config.metrics)
and the table of sweepable keys (genjax.train.hparams), checked against numpy computations."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import genjax
from genjax.train import hparams, metrics
from genjax.data import datasets
from genjax.errors import ConfigError
from genjax.train import callbacks

if all(callable(getattr(genjax, n, None)) for n in ("load_config", "fit")):
  from genjax import fit, load_config
else:   # not exported from genjax/__init__.py (yet)
  from genjax.api import fit, load_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXPERIMENT = os.path.join(ROOT, "experiments", "mnist1d_mlp.py")
EXTRA = "top5_accuracy,ece,per_class_accuracy"
CLASS_KEYS = [f"class_accuracy_{c}" for c in range(10)]
EXTRA_KEYS = ["top5_accuracy", "ece", *CLASS_KEYS]


def _config(epochs=3, **settings):
  """The experiment file's config, small, with dotted keys set directly."""
  config = load_config(EXPERIMENT)
  config.num_epochs = epochs
  config.model.widths = (32,)
  config.checkpoint.enabled = False
  config.data.augment = ""   # MNIST-1D's four augmentations double the compile time
  for key, value in settings.items():
    *path, last = key.split(".")
    node = config
    for p in path:
      node = node[p]
    node[last] = value
  return config


def _metric_rows(path):
  """metrics.jsonl read with json alone (null: NaN)."""
  with open(path) as f:
    return [{k: float("nan") if v is None else v for k, v in json.loads(line).items()}
            for line in f if line.strip()]


def _no_training(*args, **kwargs):
  raise AssertionError("training started although the config is invalid")


@pytest.fixture(scope="module")
def mnist1d():
  return datasets.load("mnist1d")


# --- numpy references of genjax/train/metrics.py's definitions ------------------------------------

def _softmax(logits):
  z = np.asarray(logits, np.float64)
  p = np.exp(z - z.max(-1, keepdims=True))
  return p / p.sum(-1, keepdims=True)


def np_top5(logits, y):
  top = np.argsort(-np.asarray(logits), axis=-1, kind="stable")[:, :min(5, logits.shape[-1])]
  return float(np.mean((top == y[:, None]).any(-1)))


def np_ece(logits, y, bins=15):
  """Σ_b |Σ_{i∈b} (conf_i − correct_i)| / N over 15 equal-width bins of conf = max softmax."""
  p = _softmax(logits)
  conf = p.max(-1)
  correct = (np.asarray(logits).argmax(-1) == y).astype(np.float64)
  b = np.clip(np.floor(conf * bins).astype(int), 0, bins - 1)
  return float(sum(abs(np.sum((conf - correct)[b == k])) for k in range(bins)) / len(y))


def np_per_class(logits, y, num_classes=10):
  correct = np.asarray(logits).argmax(-1) == y
  return {f"class_accuracy_{c}": float(correct[y == c].mean()) if (y == c).any() else 0.0
          for c in range(num_classes)}


def np_extra(logits, y):
  return {"top5_accuracy": np_top5(logits, y), "ece": np_ece(logits, y),
          **np_per_class(logits, y)}


def _close(got, want, what):
  for k, v in want.items():
    assert got[k] == pytest.approx(v, rel=1e-5, abs=1e-6), (what, k, got[k], v)


# --- callbacks ------------------------------------------------------------------------------

class Recorder(callbacks.Callback):
  """Records every call it gets (the class keeps the instances: they are built by fit)."""
  instances = []

  def __init__(self, config, workdir):
    self.config, self.workdir, self.events = config, workdir, []
    Recorder.instances.append(self)

  def on_train_start(self, info):
    self.events.append(("start", info.start_epoch, info.num_epochs))

  def on_epoch_end(self, info, logs):
    self.events.append(("epoch", logs.epoch, [dict(r) for r in logs.rows]))

  def on_train_end(self, info, state):
    self.events.append(("end", len(info.rows), None))


def test_user_callback_sees_every_epoch_row_of_metrics_jsonl(tmp_path):
  Recorder.instances.clear()
  config = _config()
  config.callbacks = "recorder"
  with callbacks.CALLBACKS.temporary("recorder", Recorder):
    run = fit(config, str(tmp_path / "run"))
  assert "recorder" not in callbacks.CALLBACKS
  rec, = Recorder.instances
  assert rec.workdir == str(tmp_path / "run") and rec.config.callbacks == "recorder"
  rows = _metric_rows(tmp_path / "run" / "metrics.jsonl")
  epochs = run.results["epochs_run"]
  assert epochs == 3 == len(rows)
  kinds = [e[0] for e in rec.events]
  assert kinds == ["start"] + ["epoch"] * epochs + ["end"]
  assert rec.events[0][1:] == (0, 3)
  assert [e[1] for e in rec.events[1:-1]] == list(range(epochs))
  seen = [r for e in rec.events[1:-1] for r in e[2]]
  assert seen == rows
  assert rec.events[-1][1] == len(rows)


class EpochsOnly:
  """A user callback with one hook: the protocol's other hooks are optional."""
  instances = []

  def __init__(self, config, workdir):
    self.epochs = []
    EpochsOnly.instances.append(self)

  def on_epoch_end(self, info, logs):
    self.epochs.append(logs.epoch)


def test_a_callback_with_only_some_hooks_is_called_for_those(tmp_path):
  EpochsOnly.instances.clear()
  config = _config(epochs=2)
  config.callbacks = "epochs_only"
  with callbacks.CALLBACKS.temporary("epochs_only", EpochsOnly):
    run = fit(config, str(tmp_path / "run"))
  rec, = EpochsOnly.instances
  assert rec.epochs == list(range(run.results["epochs_run"])) == [0, 1]


def test_unknown_callback_is_a_config_error_before_training(tmp_path, monkeypatch):
  monkeypatch.setattr(genjax.run.setup, "train", _no_training)
  config = _config()
  config.callbacks = "recorder,no_such_callback"
  with callbacks.CALLBACKS.temporary("recorder", Recorder):
    with pytest.raises(ConfigError) as e:
      fit(config, str(tmp_path / "run"))
  message = str(e.value)
  assert "\n" not in message.strip(), message
  assert "no_such_callback" in message and "recorder" in message, message
  assert not (tmp_path / "run").exists()


# --- metrics --------------------------------------------------------------------------------

@pytest.mark.slow
def test_extra_metrics_are_logged_equal_numpy_and_leave_training_unchanged(tmp_path, mnist1d):
  base = fit(_config())
  run = fit(_config(metrics=EXTRA), str(tmp_path / "run"))
  results = run.results
  with open(tmp_path / "run" / "results.json") as f:
    assert json.load(f)["val"] == json.loads(json.dumps(results["val"]))
  for split in ("train", "val", "test"):
    assert set(EXTRA_KEYS) <= set(results[split]), (split, sorted(results[split]))
  rows = _metric_rows(tmp_path / "run" / "metrics.jsonl")
  for r in rows:
    assert {f"val_{k}" for k in EXTRA_KEYS} <= set(r), sorted(r)

  # The selected model on the validation and test splits, in numpy from predict's logits.
  x, y = np.asarray(mnist1d.train_x), np.asarray(mnist1d.train_y)
  val_idx = run.plans[0].val_idx
  want_val = np_extra(run.predict(x[val_idx], member=0), y[val_idx])
  want_test = np_extra(run.predict(mnist1d.test_x, member=0), np.asarray(mnist1d.test_y))
  _close(results["val"], want_val, "results.json val")
  _close(results["test"], want_test, "results.json test")
  selected, = [r for r in rows if r["epoch"] == results["selected_epoch"]]
  _close({k[4:]: v for k, v in selected.items() if k.startswith("val_")}, want_val,
         "metrics.jsonl at the selected epoch")
  evaluated = run.evaluate("val")
  _close({k: float(v[0]) for k, v in evaluated.items()}, want_val, "Run.evaluate('val')")

  # Extra metrics only observe: every training number is the run's without them.
  base_keys = [k for k in base.history if k in run.history]
  assert {"val_loss", "val_accuracy", "train_loss_running"} <= set(base_keys)
  assert not set(base.history) - set(run.history)
  for k in base_keys:
    np.testing.assert_array_equal(run.history[k], base.history[k], err_msg=k)
  np.testing.assert_array_equal([r["val_loss"] for r in rows], base.history["val_loss"][0])
  for a, b in zip(jax.tree.leaves(run.params), jax.tree.leaves(base.params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_early_stopping_can_monitor_val_ece(mnist1d):
  run = fit(_config(epochs=4, **{"metrics": "ece", "early_stopping.monitor": "val_ece"}))
  assert run.results["monitor"] == "val_ece"
  ece = run.history["val_ece"][0]
  assert ece.shape == (4,) and np.isfinite(ece).all()
  # mode "auto" is "min" for val_ece: the selected (restored) epoch is the lowest ECE's.
  assert run.results["selected_epoch"] == int(np.argmin(ece))
  assert run.results["best_monitor_value"] == pytest.approx(float(ece.min()), rel=1e-6)
  x, y = np.asarray(mnist1d.train_x), np.asarray(mnist1d.train_y)
  val_idx = run.plans[0].val_idx
  assert float(ece.min()) == pytest.approx(np_ece(run.predict(x[val_idx], member=0), y[val_idx]),
                                           rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("settings,needles", [
    ({"early_stopping.monitor": "val_ece"}, ["val_ece", "config.metrics", "ece"]),
    ({"metrics": "top5_accuracy", "early_stopping.monitor": "val_ece"},
     ["val_ece", "config.metrics"]),
    ({"metrics": "top7_accuracy"}, ["top7_accuracy", "config.metrics"]),
    ({"metrics": "ece,ece"}, ["ece"]),
])
def test_bad_metric_settings_are_config_errors_before_training(tmp_path, monkeypatch,
                                                               settings, needles):
  monkeypatch.setattr(genjax.run.setup, "train", _no_training)
  with pytest.raises(ConfigError) as e:
    fit(_config(**settings), str(tmp_path / "run"))
  message = str(e.value)
  assert "\n" not in message.strip(), message
  for needle in needles:
    assert needle in message, (needle, message)
  assert not (tmp_path / "run").exists()


def _brier(logits, labels, w, num_classes):
  p = jax.nn.softmax(logits, axis=-1)
  sq = jnp.sum((p - jax.nn.one_hot(labels, num_classes)) ** 2, axis=-1)
  return {"numerator": jnp.sum(w * sq), "count": jnp.sum(w)}


def test_a_metric_registered_by_the_user_is_computed_and_logged(tmp_path, mnist1d):
  assert "test_brier" not in metrics.METRICS
  metrics.register("test_brier")(_brier)
  try:
    run = fit(_config(epochs=2, metrics="test_brier"), str(tmp_path / "run"))
  finally:
    metrics.METRICS.unregister("test_brier")
  assert "test_brier" not in metrics.METRICS
  rows = _metric_rows(tmp_path / "run" / "metrics.jsonl")
  assert len(rows) == 2 and all(np.isfinite(r["val_test_brier"]) for r in rows)
  x, y = np.asarray(mnist1d.train_x), np.asarray(mnist1d.train_y)
  for split, (xs, ys) in {"val": (x[run.plans[0].val_idx], y[run.plans[0].val_idx]),
                          "test": (mnist1d.test_x, np.asarray(mnist1d.test_y))}.items():
    p = _softmax(run.predict(xs, member=0))
    want = float(np.mean(np.sum((p - np.eye(10)[ys]) ** 2, -1)))
    assert run.results[split]["test_brier"] == pytest.approx(want, rel=1e-5), split
  selected, = [r for r in rows if r["epoch"] == run.results["selected_epoch"]]
  assert selected["val_test_brier"] == pytest.approx(run.results["val"]["test_brier"], rel=1e-5)


def test_metrics_registry_temporary_restores_the_registry():
  before = metrics.METRICS.names()
  record = metrics.Metric("test_tmp", _brier, lambda s, c: {"test_tmp": s["numerator"]},
                          ("test_tmp",))
  with metrics.METRICS.temporary("test_tmp", record, origin=_brier):
    assert metrics.METRICS.get("test_tmp") is record
    assert metrics.parse("test_tmp,ece")[0] is record
    assert metrics.monitorable("val_test_tmp")
  assert metrics.METRICS.names() == before
  assert not metrics.monitorable("val_test_tmp")
  assert metrics.monitorable("val_ece") and metrics.monitorable("val_class_accuracy_3")


# --- hparams: the table of sweepable keys ---------------------------------------------------

@pytest.mark.parametrize("key,route", [
    ("optimizer.learning_rate", ("optimizer", "learning_rate")),
    ("optimizer.weight_decay", ("optimizer", "weight_decay")),
    ("penalties.l2.strength", ("loss", "l2")),
    ("penalties.l1.strength", ("loss", "l1")),
    ("penalties.weight_decay.strength", ("optimizer", "weight_decay_strength")),
    ("model.dropout", ("model", "dropout")),
    ("data.augment.noise.std", ("augment", "noise.std")),
    ("data.augment.shift.max_shift", ("augment", "shift.max_shift")),
    ("data.label_noise", ("labels", "label_noise")),
    ("seed", ("seed", "seed")),          # seeds are members too (the model's seed)
])
def test_numeric_keys_and_their_routes(key, route):
  assert hparams.is_numeric(key)
  assert hparams.route(key) == route
  assert route[0] in hparams.ROUTES


@pytest.mark.parametrize("key", ["model.widths", "optimizer.name", "data.augment.crop.pad",
                                 "model.name", "data.split_seed", "data.augment.shift.mode"])
def test_structural_keys(key):
  assert not hparams.is_numeric(key)
  with pytest.raises(ValueError, match="cannot vary"):
    hparams.route(key)


def test_routes_groups_keys_by_route():
  out = hparams.routes(["model.dropout", "penalties.l2.strength", "data.label_noise",
                        "loss.label_smoothing", "ema.decay"])
  assert out == {"loss": {"l2": "penalties.l2.strength"}, "optimizer": {},
                 "model": {"dropout": "model.dropout"}, "augment": {},
                 "labels": {"label_noise": "data.label_noise"},
                 "targets": {"label_smoothing": "loss.label_smoothing"},
                 "ema": {"decay": "ema.decay"}, "seed": {}}
