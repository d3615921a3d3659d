"""Bad input (issue #30, item 4): every case is one line naming the problem and the fix
(`ConfigError` from the Python API; `genjax: error: ...` from the CLI), before anything
compiles, with nothing in the workdir lost. In-process checks of validation where they suffice;
a few real CLI processes for what only the command line shows (exit status, stderr)."""

import errno
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import genjax
from genjax import api, models
from genjax.config import defaults
from genjax.run import setup as experiment
from genjax.workdir import paths
from genjax.data import datasets
from genjax.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENT = os.path.join(ROOT, "experiments", "mnist1d_mlp.py")
SMALL = ["--config=experiments/mnist1d_mlp.py", "--progress=false", "--config.num_epochs=2",
         "--config.model.widths=(8,)"]


def _genjax(*args, env=None, timeout=300):
  return subprocess.run([sys.executable, "-m", "genjax.main", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=timeout,
                        env={**os.environ, **(env or {})})


def _one_line(out, status=2):
  lines = out.stderr.strip().splitlines()
  assert out.returncode == status, out.stderr[-3000:]
  assert len(lines) == 1, out.stderr[-3000:]
  assert lines[0].startswith("genjax: error: "), lines[0]
  return lines[0]


# --------------------------------------------------------------------- the Python API


def test_load_config_takes_one_override_as_a_string_and_refuses_other_types():
  assert api.load_config(EXPERIMENT, overrides="num_epochs=2").num_epochs == 2
  with pytest.raises(ConfigError, match="overrides must be a list"):
    api.load_config(EXPERIMENT, overrides=5)
  with pytest.raises(ConfigError, match="overrides must be a list"):
    api.load_config(EXPERIMENT, overrides=["num_epochs=2", 3])


def test_fit_refuses_a_plain_dict_and_a_workdir_that_is_no_path():
  config = api.load_config(EXPERIMENT, overrides=["num_epochs=1"])
  with pytest.raises(ConfigError, match="must be an ml_collections.ConfigDict, got dict"):
    api.fit(config.to_dict())
  with pytest.raises(ConfigError, match="workdir must be a directory path"):
    api.fit(config, 123)
  with pytest.raises(ConfigError, match="workdir must be a directory path"):
    api.train(config, None)
  with pytest.raises(ConfigError, match="points must be a list of dicts"):
    api.sweep(config, "model.dropout=0,0.2", workdir="/nonexistent/never")


def test_load_run_refuses_none():
  with pytest.raises(ConfigError, match="workdir must be a directory path"):
    api.load_run(None)


@pytest.fixture(scope="module")
def run():
  config = api.load_config(EXPERIMENT, overrides=["num_epochs=1", "model.widths=(8,)"])
  config.checkpoint.enabled, config.data.augment = False, ""
  return api.fit(config)


@pytest.mark.parametrize("x,match", [
    (np.zeros((0, 40), np.float32), "inputs are empty"),
    ("abc", "dtype <U3"),
    (np.zeros((2, 40), np.complex64), "dtype complex64"),
    (np.zeros((2, 39), np.float32), r"shape \(2, 39\), the model takes \(N, 40\)"),
    (np.zeros(40, np.float32), r"one example: x\[None\]"),
    ([[0.0] * 40, [0.0] * 39], "not an array|dtype object"),
    (np.full((2, 40), np.nan, np.float32), "NaN or infinite"),
])
def test_predict_refuses_what_the_model_cannot_take(run, x, match):
  with pytest.raises(ConfigError, match=match):
    run.predict(x)


def test_predict_refuses_a_member_it_does_not_have(run):
  assert run.predict(np.zeros((3, 40)), member=0).shape == (3, 10)
  with pytest.raises(ConfigError, match="member=5 is not one of the run's 1 member"):
    run.predict(np.zeros((3, 40)), member=5)
  with pytest.raises(ConfigError, match="split 5 is unknown"):
    run.evaluate(5)


# --------------------------------------------------------------------- workdir paths


def test_a_workdir_with_a_tilde_is_the_home_folder(monkeypatch, tmp_path):
  monkeypatch.setenv("HOME", str(tmp_path / "home"))
  assert paths.workdir_path("~/runs/x") == str(tmp_path / "home" / "runs" / "x")


@pytest.mark.parametrize("kind", ["dangling", "loop"])
def test_a_broken_symlink_as_workdir_is_one_line(tmp_path, kind):
  link = tmp_path / "link"
  if kind == "dangling":
    os.symlink(tmp_path / "nowhere", link)
    match = "points to nothing"
  else:
    os.symlink(link, link)
    match = "loops"
  with pytest.raises(ConfigError, match=match):
    paths.workdir_path(str(link / "run"))
  with pytest.raises(ConfigError, match=match):
    api.fit(api.load_config(EXPERIMENT), str(link))


def test_cli_expands_the_tilde_and_refuses_a_dangling_link_in_one_line(tmp_path):
  home = tmp_path / "home"
  home.mkdir()
  os.symlink(tmp_path / "nowhere", home / "runs")
  out = _genjax("train", *SMALL, "--workdir=~/runs", env={"HOME": str(home)})
  line = _one_line(out)
  assert f"--workdir={home / 'runs'} is a symbolic link that points to nothing" in line, line
  assert not os.path.exists(os.path.join(ROOT, "~"))


# --------------------------------------------------------------------- data_dir, dataset files


def test_tfds_data_dir_that_is_a_file_is_one_line(monkeypatch, tmp_path):
  file = tmp_path / "a_file"
  file.write_text("x")
  monkeypatch.setenv("TFDS_DATA_DIR", str(file))
  with pytest.raises(ConfigError, match=r"\$TFDS_DATA_DIR=.*is a file, not a directory"):
    datasets.load("mnist1d")
  with pytest.raises(ConfigError, match=r"\$TFDS_DATA_DIR=.*is a file"):
    defaults.validate(defaults.get_config())
  with pytest.raises(ConfigError, match=r"data.data_dir=.*is a file"):
    datasets.load("mnist1d", data_dir=str(file / "sub"))


def test_a_read_only_data_dir_is_named_not_the_workdir(tmp_path):
  ro = tmp_path / "ro"
  ro.mkdir()
  out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(ro)],
                       capture_output=True, text=True)
  if out.returncode != 0:
    pytest.skip(f"cannot mount a read-only tmpfs here ({out.stderr.strip() or 'needs root'})")
  try:
    with pytest.raises(ConfigError, match=rf"data.data_dir={ro}: Read-only file system.*"
                                          "point --config.data.data_dir"):
      datasets.load("mnist1d", data_dir=str(ro))
  finally:
    subprocess.run(["umount", "-l", str(ro)], capture_output=True)


@pytest.fixture
def data_dir(tfds_data_dir, tmp_path):
  """A private copy of the session's prepared MNIST-1D (prepared there once)."""
  reference = datasets.load("mnist1d", data_dir=tfds_data_dir)
  copy = tmp_path / "tfds"
  shutil.copytree(os.path.join(tfds_data_dir, "mnist1d"), copy / "mnist1d")
  version = copy / "mnist1d" / "standard" / "1.0.0"
  datasets.load("mnist1d", data_dir=str(copy))   # the copy's cache, with its digest
  return str(copy), version, reference


def _same(a, b):
  return all(np.array_equal(getattr(a, k), getattr(b, k))
             for k in ("train_x", "train_y", "test_x", "test_y"))


@pytest.mark.parametrize("damage", ["truncated", "garbage", "labels_zeroed"])
def test_a_damaged_cache_is_rebuilt(data_dir, damage):
  path, version, reference = data_dir
  cache = version / "genjax_arrays.npz"
  if damage == "truncated":
    raw = cache.read_bytes()
    cache.write_bytes(raw[:len(raw) // 2])
  elif damage == "garbage":
    cache.write_bytes(b"\0" * 1000)
  else:   # a cache whose labels were edited: read as it is, it trains to chance
    arrays = dict(np.load(cache))
    arrays["train_y"] = np.zeros_like(arrays["train_y"])
    np.savez(cache, **arrays)
  assert _same(datasets.load("mnist1d", data_dir=path), reference)
  assert _same(datasets.load("mnist1d", data_dir=path), reference)   # the rebuilt cache


def test_a_corrupt_prepared_file_is_one_line_naming_it(data_dir):
  path, version, _ = data_dir
  (version / "genjax_arrays.npz").unlink()
  record = version / "mnist1d-train.array_record-00000-of-00001"
  raw = bytearray(record.read_bytes())
  raw[len(raw) // 3:len(raw) // 3 + 2000] = bytes(b ^ 0x5A for b in raw[len(raw) // 3:
                                                                          len(raw) // 3 + 2000])
  record.write_bytes(bytes(raw))
  with pytest.raises(ConfigError) as e:
    datasets.load("mnist1d", data_dir=path)
  line = str(e.value)
  assert "\n" not in line and f"{record} is corrupt" in line and f"delete {version}" in line


# --------------------------------------------------------------------- config values


def test_nan_in_cv_groups_is_one_line(tmp_path):
  groups = tmp_path / "groups.npy"
  np.save(groups, np.array([0.0, 1.0, np.nan, 2.0]))
  config = defaults.get_config()
  config.cv.method, config.cv.groups = "group_kfold", str(groups)
  with pytest.raises(ConfigError, match="1 NaN or infinite group id.*example 2"):
    experiment.cv_groups(config, 4)


def test_cnn2d_on_signals_names_the_real_problem():
  cfg = models.default_config()
  cfg.name = "cnn2d"
  with pytest.raises(ConfigError) as e:
    models.create(cfg, (40,), 10)
  assert "needs images" in str(e.value) and "cnn1d or mlp" in str(e.value)
  assert "layer_dropout" not in str(e.value)


@pytest.mark.parametrize("settings,match", [
    ({"model.name": "logreg", "model.dropout": 0.2}, "model 'logreg' has no use for model.dropout"),
    ({"model.name": "logreg", "model.layer_dropout": (0.1,)}, "no use for model.layer_dropout"),
    ({"model.name": "logreg", "model.widths": (16,)}, "no use for model.widths"),
    ({"model.name": "cnn1d", "model.widths": (16,)}, "model 'cnn1d' has no use for model.widths"),
    ({"model.name": "mlp", "model.channels": 8}, "model 'mlp' has no use for model.channels"),
    ({"model.name": "mlp", "model.resnet_width": 8}, "no use for model.resnet_width"),
    ({"model.name": "resnet", "model.wrn_width": 2}, "no use for model.wrn_width"),
    ({"cv.groups": "groups.npy"}, "cv.groups=.* is only read by cv.method=group_kfold"),
    ({"cv.method": "kfold", "cv.repeats": 5}, "cv.repeats=5 is only read by the repeated"),
])
def test_settings_that_would_change_nothing_are_refused(settings, match):
  config = defaults.get_config()
  for key, value in settings.items():
    *path, last = key.split(".")
    node = config
    for p in path:
      node = node[p]
    node[last] = value
  with pytest.raises(ConfigError, match=match):
    defaults.validate(config)


def test_settings_a_model_reads_are_taken():
  for name, key, value in (("mlp", "dropout", 0.2), ("cnn1d", "channels", 8),
                           ("logreg", "dropout", 0.0), ("resnet", "resnet_width", 8)):
    config = defaults.get_config()
    config.model.name = name
    config.model[key] = value
    defaults.validate(config)


def test_a_dropout_sweep_on_logreg_is_refused(tmp_path):
  config = api.load_config(EXPERIMENT, overrides=["model.name=logreg", "num_epochs=1"])
  with pytest.raises(ConfigError, match="model 'logreg' has no use for model.dropout"):
    api.sweep(config, [{"model.dropout": 0.0}, {"model.dropout": 0.2}],
              workdir=str(tmp_path / "grid"))


# --------------------------------------------------------------------- resources


def test_more_writers_than_open_files_is_refused_before_anything_is_made(monkeypatch):
  import resource
  monkeypatch.setattr(resource, "getrlimit", lambda _: (1024, 1024))

  def refuse(*_):
    raise ValueError("not allowed")
  monkeypatch.setattr(resource, "setrlimit", refuse)
  experiment.check_open_files(100)   # fits
  with pytest.raises(ConfigError, match=r"400 members each keep a TensorBoard writer open.*"
                                        r"may open 1024 \(ulimit -n"):
    experiment.check_open_files(400)


def test_the_soft_open_file_limit_is_raised_when_the_hard_one_allows(monkeypatch):
  import resource
  calls = []
  monkeypatch.setattr(resource, "getrlimit", lambda _: (1024, 1 << 20))
  monkeypatch.setattr(resource, "setrlimit", lambda kind, limits: calls.append(limits))
  experiment.check_open_files(400)
  assert calls and calls[0][0] >= 3 * 400 and calls[0][1] == 1 << 20


# --------------------------------------------------------------------- CLI: outcomes


@pytest.mark.slow
def test_a_diverged_run_exits_1_saying_so_and_keeps_its_outputs(tmp_path):
  workdir = tmp_path / "run"
  out = _genjax("train", *SMALL, "--config.optimizer.name=sgd",
                "--config.optimizer.learning_rate=1e3", "--config.checkpoint.enabled=false",
                f"--workdir={workdir}")
  line = _one_line(out, status=1)
  assert "the run diverged: val_loss is NaN or infinite from epoch 0" in line, line
  assert "lower --config.optimizer.learning_rate" in line, line
  results = json.load(open(workdir / "results.json"))
  assert results["diverged"] is True
  assert (workdir / "metrics.jsonl").exists() and (workdir / "config.json").exists()


_ENOSPC_AFTER = """
import builtins, errno, io, os
_open, _budget = builtins.open, [int(os.environ["BI_BYTES"])]
root = os.environ["BI_ROOT"]
class _Full(io.TextIOWrapper):
  pass
def _write_guard(f, path):
  write = f.write
  def guarded(data):
    _budget[0] -= len(data)
    if _budget[0] < 0:
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
    return write(data)
  try:
    f.write = guarded
  except AttributeError:
    pass
  return f
def _guarded_open(file, mode="r", *a, **k):
  f = _open(file, mode, *a, **k)
  if isinstance(file, (str, os.PathLike)) and str(file).startswith(root) and set(mode) & set("wa+"):
    return _write_guard(f, str(file))
  return f
builtins.open = _guarded_open
"""


@pytest.mark.slow
def test_full_disk_is_one_line_naming_the_file(tmp_path):
  """ENOSPC simulated (no tmpfs needed): Python-level writes under the workdir fail once a
  byte budget is spent; the run stops in one line naming what it was writing."""
  site = tmp_path / "site"
  site.mkdir()
  (site / "sitecustomize.py").write_text(_ENOSPC_AFTER)
  workdir = tmp_path / "run"
  out = _genjax("train", *SMALL, "--config.checkpoint.enabled=false", f"--workdir={workdir}",
                env={"PYTHONPATH": str(site), "BI_ROOT": str(workdir), "BI_BYTES": "20000"})
  line = _one_line(out)
  assert "No space left on device writing " + str(workdir) in line, line
  assert "free space or choose another --workdir" in line, line
  json.load(open(workdir / "config.json"))   # what was written before is intact


@pytest.mark.slow
def test_full_disk_under_kfold_is_one_line_without_background_tracebacks(tmp_path):
  """A real full disk (a 1.2 MB tmpfs; needs root to mount) under K-fold, whose per-member
  asynchronous checkpoint writers printed dozens of `RuntimeError: Event loop is closed`
  tracebacks before the one line."""
  disk = tmp_path / "disk"
  disk.mkdir()
  out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(disk)],
                       capture_output=True, text=True)
  if out.returncode != 0:
    pytest.skip(f"cannot mount a tmpfs here ({out.stderr.strip() or 'needs root'})")
  try:
    out = _genjax("train", "--config=experiments/mnist1d_kfold.py", "--progress=false",
                  "--config.num_epochs=3", f"--workdir={disk / 'run'}")
    line = _one_line(out)
    assert "No space left on device writing" in line, line
    json.load(open(disk / "run" / "config.json"))
  finally:
    subprocess.run(["umount", "-l", str(disk)], capture_output=True)
