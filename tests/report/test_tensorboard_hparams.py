"""TensorBoard HParams: every member's run carries its hyperparameters, config text and final
metrics, read back by TensorBoard's own backend (its WSGI app and EventAccumulator), never by
tensorboardX."""

import json
import os

import pytest

from genjax.config import defaults
from genjax.report import tensorboard as tb

STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]
START_TAG = "_hparams_/session_start_info"


def _app(logdir):
  """TensorBoard's application over `logdir`, loaded once (as `tensorboard --logdir`)."""
  from tensorboard import default, program
  from tensorboard.backend import application
  from werkzeug.test import Client
  board = program.TensorBoard(default.get_plugins())
  board.configure(argv=[None, "--logdir", str(logdir), "--load_fast=false",
                        "--reload_task=blocking", "--reload_interval=0"])
  provider, mux = board._make_data_provider()
  return Client(application.TensorBoardWSGIApp(board.flags, board.plugin_loaders, provider,
                                               board.assets_zip_provider, mux))


def _sessions(logdir) -> dict:
  """{run: session} from the HParams dashboard's session groups (one session per group)."""
  client = _app(logdir)
  listing = json.loads(client.get("/data/plugins_listing").get_data())
  assert listing["hparams"]["enabled"], listing["hparams"]
  body = {"experimentName": "", "allowedStatuses": STATUSES, "colParams": [],
          "startIndex": 0, "sliceSize": 1000}
  reply = client.post("/data/plugin/hparams/session_groups", data=json.dumps(body))
  assert reply.status_code == 200, reply.get_data(as_text=True)
  groups = json.loads(reply.get_data())["sessionGroups"]
  assert all(len(g["sessions"]) == 1 for g in groups)
  out = {}
  for g in groups:
    session = g["sessions"][0]
    out[session["name"]] = {"hparams": g["hparams"], "status": session["status"],
                            "metrics": {m["name"]["tag"]: m["value"]
                                        for m in session["metricValues"]}}
  return out


def _accumulator(run_dir):
  from tensorboard.backend.event_processing import plugin_event_accumulator
  acc = plugin_event_accumulator.EventAccumulator(str(run_dir), size_guidance={"tensors": 0})
  acc.Reload()
  return acc


def _config_text(run_dir) -> str:
  events = _accumulator(run_dir).Tensors("config/text_summary")
  assert len(events) == 1
  return events[0].tensor_proto.string_val[0].decode()


def _session_starts(run_dir) -> int:
  from tensorboard.plugins.hparams import metadata
  acc = _accumulator(run_dir)
  content = acc.PluginTagToContent(metadata.PLUGIN_NAME)[START_TAG]
  assert metadata.parse_session_start_info_plugin_data(content).hparams
  return len(acc.Tensors(START_TAG))


def _runs(logdir) -> list[str]:
  return sorted(os.path.relpath(root, logdir) for root, _, files in os.walk(logdir)
                if any(f.startswith("events.out.tfevents.") for f in files))


def test_run_folders_are_file_safe_and_distinct():
  members = [("a b", "fold0"), ("a b", "fold1"), ("a_b", "fold0"), ("x/y", "fold0"),
             (".hidden",), ("l2=0.001,dropout=0.2", "fold0"), ("é" * 300,), ("é" * 301,)]
  dirs = tb.run_dirs(members)
  assert len(set(dirs)) == len(dirs)
  assert dirs[:6] == ["a_b/fold0", "a_b/fold1", "a_b~2/fold0", "x_y/fold0", "_.hidden",
                      "l2=0.001,dropout=0.2/fold0"]
  assert all(len(part) <= tb.MAX_PART for d in dirs for part in d.split("/"))
  assert tb.run_dirs(members) == dirs   # a function of the members: a resume finds them
  assert tb.name_parts("outer1/my/name/seed2/fold0") == ("outer1", "my/name", "seed2", "fold0")


def test_hparams_config_text_and_final_metrics_read_back_by_tensorboard(tmp_path):
  board = tb.TensorBoard(str(tmp_path), tb.run_dirs([("base line", "fold0"), ("l2", "fold0")]))
  for k, l2 in enumerate((0.0, 1e-3)):
    board.start(k, {"run": f"p{k}", "penalties.l2.strength": l2, "model.widths": (16,),
                    "data.augment": ""}, f"config {k}")
    board.write(k, 0, {"epoch": 0, "val_accuracy": 0.5 + k / 10})
    board.end(k, 1, {"val_accuracy": 0.5 + k / 10, "selected_epoch": 0})
  board.close()
  sessions = _sessions(tmp_path)
  assert sorted(sessions) == ["base_line/fold0", "l2/fold0"]
  s = sessions["l2/fold0"]
  assert s["status"] == "STATUS_SUCCESS"
  assert s["hparams"] == {"run": "p1", "penalties.l2.strength": 1e-3, "model.widths": "(16,)",
                          "data.augment": ""}
  assert s["metrics"]["final/val_accuracy"] == pytest.approx(0.6)
  assert s["metrics"]["val/accuracy"] == pytest.approx(0.6)
  assert _config_text(tmp_path / "l2" / "fold0") == "config 1"


def _tiny(config=None):
  config = config or defaults.get_config()
  config.model.widths = (16,)
  config.num_epochs = 3
  config.checkpoint.enabled = False
  return config


def _metric_rows(workdir):
  return [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]


@pytest.mark.slow
def test_a_kfold_run_has_each_folds_hyperparameters_config_and_selected_metrics(tmp_path):
  from genjax.run import driver
  config = _tiny()
  config.cv.method, config.cv.folds = "kfold", 2
  config.optimizer.learning_rate = 3e-3
  results = driver.run(config, str(tmp_path / "run"), progress=False)
  logdir = tmp_path / "run" / "tensorboard"
  sessions = _sessions(logdir)
  assert sorted(sessions) == ["fold0", "fold1"] == _runs(logdir)
  rows = _metric_rows(tmp_path / "run")
  for fold in (0, 1):
    s = sessions[f"fold{fold}"]
    assert s["status"] == "STATUS_SUCCESS"
    assert {k: s["hparams"][k] for k in ("fold", "seed", "cv.method", "model.widths",
                                          "optimizer.learning_rate", "num_epochs")} == {
        "fold": fold, "seed": 0, "cv.method": "kfold", "model.widths": "(16,)",
        "optimizer.learning_rate": 3e-3, "num_epochs": 3}
    epoch = int(s["metrics"]["final/selected_epoch"])
    row = next(r for r in rows if r["fold"] == fold and r["epoch"] == epoch)
    assert s["metrics"]["final/val_accuracy"] == pytest.approx(row["val_accuracy"])
    assert s["metrics"]["final/val_loss"] == pytest.approx(row["val_loss"])
    text = _config_text(logdir / f"fold{fold}")
    assert f"fold={fold}" in text and '"learning_rate": 0.003' in text
    assert results["cv"]["per_fold"][fold]["selected_epoch"] == epoch


@pytest.mark.slow
def test_a_sweeps_members_carry_their_swept_values_and_seed(tmp_path):
  import genjax
  config = _tiny()
  points = [{"model.dropout": d, "seed": s} for d in (0.0, 0.2) for s in (0, 1)]
  genjax.sweep(config, points, workdir=str(tmp_path / "sw"), progress=False)
  logdir = tmp_path / "sw" / "tensorboard"
  sessions = _sessions(logdir)
  assert sorted(sessions) == _runs(logdir) and len(sessions) == 4
  got = sorted((s["hparams"]["model.dropout"], s["hparams"]["seed"]) for s in sessions.values())
  assert got == [(0.0, 0.0), (0.0, 1.0), (0.2, 0.0), (0.2, 1.0)]
  for run, s in sessions.items():   # folders: the point's name, its seed, its fold
    assert run == f"{s['hparams']['point']}/seed{s['hparams']['seed']:g}/fold0"
    assert s["hparams"]["point"] == f"dropout={s['hparams']['model.dropout']:g}"
    assert {"final/val_accuracy", "final/val_loss", "final/selected_epoch"} <= set(s["metrics"])
    assert f"model.dropout={s['hparams']['model.dropout']:g}" in _config_text(logdir / run) \
        or f"model.dropout={s['hparams']['model.dropout']}" in _config_text(logdir / run)


@pytest.mark.slow
def test_a_resumed_run_holds_one_session_per_member(tmp_path, monkeypatch):
  from genjax.run import driver
  from genjax.train import callbacks
  config = _tiny()
  config.cv.method, config.cv.folds = "kfold", 2
  config.checkpoint.enabled, config.checkpoint.min_interval_s = True, 0
  config.checkpoint.async_save = False
  workdir = str(tmp_path / "run")

  def interrupt(self, info, logs):
    if logs.epoch == 1:
      raise KeyboardInterrupt

  with monkeypatch.context() as patch:
    patch.setattr(callbacks.MembersLeaving, "on_epoch_end", interrupt)
    with pytest.raises(BaseException):
      driver.run(config, workdir, progress=False)
  assert "final/val_accuracy" not in _accumulator(tmp_path / "run/tensorboard/fold0").Tags()[
      "tensors"]
  driver.run(config, workdir, progress=False)
  logdir = tmp_path / "run" / "tensorboard"
  sessions = _sessions(logdir)
  assert sorted(sessions) == ["fold0", "fold1"]
  for run, s in sessions.items():
    assert _session_starts(logdir / run) == 1
    assert len(_accumulator(logdir / run).Tensors("config/text_summary")) == 1
    assert s["status"] == "STATUS_SUCCESS"
    assert s["metrics"]["final/epochs_trained"] == 3
    # epoch 1 was logged before the interrupt and again after the resume; the resume's
    # session-log START at its first epoch makes TensorBoard's reader drop the first copy
    assert [e.step for e in _accumulator(logdir / run).Tensors("val/accuracy")] == [0, 1, 2]
    assert len(os.listdir(logdir / run)) == 2     # two event files, none overwritten


@pytest.mark.slow
def test_structural_groups_name_their_runs_by_the_users_point_names(tmp_path):
  """Two named points that differ in a structural key run as two group processes; each
  group's runs are named by the user's names (passed in the group file), not by values."""
  import genjax
  points = [{"name": "narrow net", "model.widths": (8,)}, {"name": "wide", "model.widths": (16,)}]
  genjax.sweep(_tiny(), points, workdir=str(tmp_path / "sw"), progress=False)
  found = {}
  for group in ("group00", "group01"):
    logdir = tmp_path / "sw" / group / "tensorboard"
    for run, s in _sessions(logdir).items():
      found[run] = s["hparams"]["point"]
  assert found == {"narrow_net/fold0": "narrow net", "wide/fold0": "wide"}
