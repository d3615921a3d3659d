"""The command line end to end, in real subprocesses: outputs, resume guard, bad input."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = ["--config.num_epochs=3", "--config.model.widths=(32,32)", "--progress=false"]


def genjax(*args, cwd=ROOT, timeout=240):
  env = dict(os.environ, PYTHONUNBUFFERED="1")
  return subprocess.run([sys.executable, "-m", "genjax.main", *args], cwd=cwd, env=env,
                        capture_output=True, text=True, timeout=timeout)


def test_train_end_to_end_writes_all_outputs(tmp_path):
  workdir = tmp_path / "run"
  out = genjax("train", "--config=experiments/mnist1d_mlp.py", f"--workdir={workdir}", *FAST)
  assert out.returncode == 0, out.stderr[-2000:]
  assert "| test |" in out.stdout
  for name in ("config.json", "metrics.jsonl", "results.json", "learning_curves.png"):
    assert (workdir / name).stat().st_size > 0, name
  rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert [r["epoch"] for r in rows] == [0, 1, 2]
  assert {"train_loss_running", "train_accuracy_running", "val_loss", "val_accuracy"} <= set(rows[0])
  results = json.loads((workdir / "results.json").read_text())
  for split in ("val", "test"):
    assert 0.0 <= results[split]["accuracy"] <= 1.0 and results[split]["loss"] > 0
  assert results["epochs_run"] == 3 and results["wall_time_s"] > 0
  config = json.loads((workdir / "config.json").read_text())
  assert config["num_epochs"] == 3 and config["model"]["widths"] == [32, 32]

  # Same workdir, another config: refused, nothing lost; --overwrite replaces it.
  before = sorted(os.listdir(workdir))
  out = genjax("train", "--config=experiments/mnist1d_mlp.py", f"--workdir={workdir}", *FAST,
               "--config.optimizer.learning_rate=0.01")
  assert out.returncode == 2 and "--overwrite" in out.stderr
  assert sorted(os.listdir(workdir)) == before
  out = genjax("train", "--config=experiments/mnist1d_mlp.py", f"--workdir={workdir}", *FAST,
               "--config.optimizer.learning_rate=0.01", "--overwrite")
  assert out.returncode == 0, out.stderr[-2000:]
  assert json.loads((workdir / "config.json").read_text())["optimizer"]["learning_rate"] == 0.01


BAD_INPUT = [
    (["--config.data.name=no_such_dataset"], "no_such_dataset"),
    (["--config.model.name=resnet9000"], "unknown model"),
    (["--config.optimizer.name=adamax9"], "adamax9"),
    (["--config=experiments/does_not_exist.py"], "does_not_exist"),
    (["--config.no_such_key=1"], "no_such_key"),
    (["--config.model.nme=mlp"], "Did you mean"),
    (["--config.batch_size=abc"], "batch_size"),
    (["--config=experiments/mnist1d_baselines.py:bogus"], "unknown baseline"),
    (["--config.batch_size=0"], "batch_size"),
    (["--config.num_epochs=-1"], "num_epochs"),
    (["--config.optimizer.learning_rate=0"], "learning_rate"),
    (["--config.data.validation_fraction=1.5"], "validation_fraction"),
    (["--config.data.validation_fraction=0"], "validation_fraction"),
    (["--config.batch_size=100000"], "batch_size"),
    (["--config.model.dropout=1.0"], "dropout"),
    (["--config.model.name=cnn1d", "--config.model.conv=fft"], "model.conv"),
    (["--config.loss.label_smoothing=1.0"], "loss.label_smoothing"),
    (["--config.ema.decay=1.0"], "ema.decay"),
    (["--config.precision=float16"], "unknown precision"),
    (["--config.model.name=logreg", "--config.model.norm=batch"], "has no norm layers"),
    (["--config.reduce_on_plateau.factor=0.5", "--config.reduce_on_plateau.patience=0"],
     "reduce_on_plateau.patience"),
    (["--config.optimizer.name=rmsprop", "--config.optimizer.rms_decay=1.5"], "rms_decay"),
    (["--config.cv.method=kfold", "--config.cv.folds=1"], "cv.folds"),
    (["--config.cv.method=stratified_kfold", "--config.cv.folds=500"], "smallest class"),
    (["--config.cv.method=group_kfold"], "needs groups"),
    (["--config.cv.method=group_kfold", "--config.cv.groups=/nonexistent.npy"], "does not exist"),
    (["--config.cv.method=bootstrap"], "cv.method"),
    (["--config.early_stopping.monitor=val_f1"], "val_f1"),
    (["--config.early_stopping.mode=sideways"], "mode"),
    (["--config.early_stopping.patience=-1"], "patience"),
    (["--config.early_stopping.min_delta=-0.1"], "min_delta"),
    (["--config.penalties.l2.strength=-1"], "strength"),
    (["--config.penalties.l1.strength=0.1", "--config.penalties.l1.mask=nomatch_xyz"], "nomatch_xyz"),
    (["--config.data.augment=warp(k=1)"], "warp"),
    (["--config.data.augment=crop(pad=2)"], "crop"),
    (["--config.checkpoint.min_interval_s=-3"], "min_interval_s"),
    (["--config.checkpoint.min_interval_s=2.5"], "min_interval_s"),
]


@pytest.mark.parametrize("extra,needle", BAD_INPUT, ids=[" ".join(e[0]) for e in BAD_INPUT])
def test_bad_input_is_one_line_and_exit_2(tmp_path, extra, needle):
  workdir = tmp_path / "run"
  workdir.mkdir()
  (workdir / "keep.txt").write_text("precious")
  args = ["train", "--config=experiments/mnist1d_mlp.py", f"--workdir={workdir}", "--progress=false"]
  out = genjax(*args, *extra)
  assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
  lines = out.stderr.strip().splitlines()
  assert len(lines) == 1, out.stderr
  assert lines[0].startswith("genjax: error:") and needle in lines[0], lines[0]
  assert os.listdir(workdir) == ["keep.txt"]          # nothing written, nothing lost
  assert (workdir / "keep.txt").read_text() == "precious"


def test_workdir_that_is_a_file(tmp_path):
  path = tmp_path / "afile"
  path.write_text("x")
  out = genjax("train", "--config=experiments/mnist1d_mlp.py", f"--workdir={path}", "--progress=false")
  assert out.returncode == 2 and "is a file" in out.stderr
  assert len(out.stderr.strip().splitlines()) == 1
  assert path.read_text() == "x"


@pytest.mark.parametrize("args", [(), ("--help",)] + [
    pytest.param(a, marks=pytest.mark.slow)
    for a in (("-h",), ("train", "--help"), ("sweep", "-h", "--workdir=x"))])
def test_help_lists_the_commands_and_points_to_the_docs(args):
  """`genjax` alone and `genjax --help` introduce the CLI (absl's own said only 'Try
  --helpfull'); exit 0, nothing run."""
  from genjax.main import COMMANDS
  out = genjax(*args, timeout=60)
  assert out.returncode == 0, out.stderr[-2000:]
  assert "usage: genjax COMMAND" in out.stdout and "--helpfull" in out.stdout
  for command in COMMANDS:
    assert f"\n  {command}  " in out.stdout, out.stdout
  assert "docs/pages/reference/cli.md" in out.stdout
  assert not os.path.exists(os.path.join(ROOT, "x"))


def _bars(stderr: str) -> bool:
  return "epoch/s" in stderr or "s/epoch" in stderr


@pytest.mark.slow
def test_progress_bars_only_on_a_terminal_unless_asked(tmp_path):
  """Under sbatch stderr is a file: no carriage-return bars there by default; --progress=true
  forces them; on a terminal (a real pseudo-terminal here) they are on by default."""
  import pty
  base = ["train", "--config=experiments/mnist1d_mlp.py", "--config.num_epochs=2",
          "--config.model.widths=(16,)", "--config.checkpoint.enabled=false"]
  out = genjax(*base, f"--workdir={tmp_path / 'file'}")
  assert out.returncode == 0, out.stderr[-2000:]
  assert not _bars(out.stderr), out.stderr[-2000:]
  out = genjax(*base, f"--workdir={tmp_path / 'forced'}", "--progress=true")
  assert out.returncode == 0 and _bars(out.stderr), out.stderr[-2000:]
  import fcntl
  import struct
  import termios
  leader, follower = pty.openpty()
  fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a new pty is 0×0
  proc = subprocess.Popen([sys.executable, "-m", "genjax.main", *base,
                           f"--workdir={tmp_path / 'tty'}"], cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=follower)
  os.close(follower)
  seen = b""
  while True:
    try:
      chunk = os.read(leader, 4096)
    except OSError:        # the terminal closed: the process ended
      break
    if not chunk:
      break
    seen += chunk
  assert proc.wait(timeout=240) == 0, seen[-2000:]
  assert _bars(seen.decode(errors="replace")), seen[-2000:]
