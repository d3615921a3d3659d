"""Tests for genjax.workdir.checkpoint: round-trips, retention on disk, crash safety, verification."""

import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from absl import logging as absl_logging

from genjax.workdir import checkpoint
from genjax.workdir.checkpoint import Checkpointer, CorruptCheckpointError
from genjax.errors import ConfigError

NAN = float("nan")
INF = float("inf")


def _steps_on_disk(directory):
  """Finalized step dirs (orbax names them by the bare step number)."""
  return sorted(int(n) for n in os.listdir(directory) if n.isdigit())


def _tmp_dirs(directory):
  return [n for n in os.listdir(directory) if ".orbax-checkpoint-tmp" in n]


def _mixed_state(seed=0):
  key = jax.random.key(seed)
  return {
      "params": {
          "dense": {"kernel": jnp.arange(6.0).reshape(2, 3) + seed,
                    "bias": jnp.full((3,), -1.5, jnp.float32)},
      },
      "step": jnp.asarray(7 + seed, jnp.int32),
      "rng": jax.random.key_data(key),  # uint32 (2,)
      "mask": jnp.array([True, False, True]),
      "counts": jnp.array([1, 2, 3], jnp.uint32),
      "lr": 0.25,
      "epoch": 3,
  }


def _assert_tree_equal(got, want):
  assert jax.tree.structure(got) == jax.tree.structure(want)
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    assert isinstance(g, jax.Array)
    w = jnp.asarray(w)
    assert g.shape == w.shape and g.dtype == w.dtype, (g, w)
    np.testing.assert_array_equal(np.asarray(g), np.asarray(w))


def _save_all(ck, metrics, start=0):
  for i, m in enumerate(metrics):
    assert ck.save(start + i, _mixed_state(start + i), metric=m)
  ck.wait()


def test_round_trip_mixed_pytree_with_arrays_and_abstract_target(tmp_path):
  state = _mixed_state(1)
  with Checkpointer(tmp_path / "ck") as ck:
    assert ck.save(0, state, metric=1.0)
    got = ck.restore(0, _mixed_state(5))  # concrete target, other values
    _assert_tree_equal(got, state)
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(jnp.shape(x), jnp.asarray(x).dtype),
        state)
    _assert_tree_equal(ck.restore(0, abstract), state)
    key = jax.random.wrap_key_data(got["rng"])
    np.testing.assert_array_equal(
        jax.random.key_data(key), jax.random.key_data(jax.random.key(1)))


def test_typed_prng_key_round_trips(tmp_path):
  key = jax.random.split(jax.random.key(3), 2)
  with Checkpointer(tmp_path, async_save=False) as ck:
    ck.save(0, {"key": key}, metric=None)
    got = ck.restore(0, {"key": jax.random.split(jax.random.key(0), 2)})["key"]
    assert jnp.issubdtype(got.dtype, jax.dtypes.prng_key)
    np.testing.assert_array_equal(
        jax.random.key_data(got), jax.random.key_data(key))


def test_keeps_best_and_latest_on_disk(tmp_path):
  with Checkpointer(tmp_path, keep_best=1, keep_latest=1) as ck:
    _save_all(ck, [3.0, 1.0, 2.0, 4.0, 5.0])
    assert ck.best_epoch() == 1 and ck.latest_epoch() == 4
    assert ck.all_epochs() == [1, 4]
  assert _steps_on_disk(tmp_path) == [1, 4]


def test_keeps_k_best_and_k_latest(tmp_path):
  with Checkpointer(tmp_path, keep_best=2, keep_latest=2) as ck:
    _save_all(ck, [5.0, 1.0, 4.0, 2.0, 6.0, 7.0, 8.0])
  assert _steps_on_disk(tmp_path) == [1, 3, 5, 6]


def test_mode_max(tmp_path):
  with Checkpointer(tmp_path, mode="max") as ck:
    _save_all(ck, [0.1, 0.9, 0.5, 0.3])
    assert ck.best_epoch() == 1
  assert _steps_on_disk(tmp_path) == [1, 3]


def test_ties_go_to_the_earliest_epoch(tmp_path):
  for mode in ("min", "max"):
    with Checkpointer(tmp_path / mode, mode=mode) as ck:
      _save_all(ck, [2.0, 1.0, 1.0, 1.0] if mode == "min" else [0, 3, 3, 3])
      assert ck.best_epoch() == 1
    assert _steps_on_disk(tmp_path / mode) == [1, 3]


def test_save_every_and_force(tmp_path):
  with Checkpointer(tmp_path, save_every=2, keep_latest=10) as ck:
    saved = [ck.save(e, _mixed_state(e), metric=float(e)) for e in range(6)]
    assert saved == [True, False, True, False, True, False]
    assert ck.save(5, _mixed_state(5), metric=9.0, force=True)
    ck.wait()
    assert ck.all_epochs() == [0, 2, 4, 5]


def test_min_interval_skips_saves_until_the_interval_has_passed(tmp_path):
  """min_interval_s: after a save, the next ones are skipped until the interval has passed
  (orbax's ContinuousCheckpointingPolicy); forced saves always go through."""
  with Checkpointer(tmp_path, min_interval_s=1, keep_latest=10) as ck:
    assert ck.save(0, _mixed_state(0), metric=1.0)           # the first one is saved
    assert [ck.save(e, _mixed_state(e), metric=1.0) for e in (1, 2, 3)] == [False] * 3
    assert ck.save(4, _mixed_state(4), metric=9.0, force=True)
    ck.wait()
    time.sleep(1.1)
    assert ck.save(5, _mixed_state(5), metric=0.5)
    ck.wait()
    assert ck.all_epochs() == [0, 4, 5]
    _assert_tree_equal(ck.restore(5, _mixed_state()), _mixed_state(5))
  with Checkpointer(tmp_path / "every", min_interval_s=0, keep_latest=10) as ck:
    assert all(ck.save(e, _mixed_state(e), metric=1.0) for e in range(4))


def test_never_overwrites_or_goes_back(tmp_path):
  with Checkpointer(tmp_path, keep_latest=3) as ck:
    _save_all(ck, [1.0, 2.0])
    assert not ck.save(1, _mixed_state(9), metric=0.0)
    assert not ck.save(0, _mixed_state(9), metric=0.0, force=True)
    _assert_tree_equal(ck.restore(1, _mixed_state()), _mixed_state(1))


@pytest.mark.parametrize("mode", ["min", "max"])
def test_non_finite_metrics_are_never_best(tmp_path, mode):
  good = 2.0
  metrics = [NAN, good, INF, -INF, NAN]
  with Checkpointer(tmp_path, mode=mode) as ck:
    _save_all(ck, metrics)
    assert ck.best_epoch() == 1
    assert ck.latest_epoch() == 4
  assert _steps_on_disk(tmp_path) == [1, 4]


def test_all_nan_metrics_keep_latest_and_no_best(tmp_path):
  with Checkpointer(tmp_path, keep_latest=2) as ck:
    _save_all(ck, [NAN, NAN, None, NAN])
    assert ck.best_epoch() is None
    assert ck.all_epochs() == [2, 3]


def test_reopen_existing_directory_and_resume(tmp_path):
  with Checkpointer(tmp_path) as ck:
    _save_all(ck, [3.0, 1.0, 2.0])
  with Checkpointer(tmp_path) as ck:
    assert ck.all_epochs() == [1, 2]
    assert ck.best_epoch() == 1  # metrics survive the reopen
    epoch, state = ck.restore_latest(_mixed_state())
    assert epoch == 2
    _assert_tree_equal(state, _mixed_state(2))
    _save_all(ck, [0.5, 7.0], start=3)
    assert ck.best_epoch() == 3
  assert _steps_on_disk(tmp_path) == [3, 4]


def test_sync_mode_and_empty_directory(tmp_path):
  with Checkpointer(tmp_path, async_save=False) as ck:
    assert ck.latest_epoch() is None and ck.best_epoch() is None
    assert ck.restore_latest(_mixed_state()) is None
    ck.save(0, _mixed_state(0), metric=1.0)
    assert _steps_on_disk(tmp_path) == [0]  # written before save returned


def test_bad_restore_raises_one_line_config_error(tmp_path):
  with Checkpointer(tmp_path) as ck:
    _save_all(ck, [1.0])
    with pytest.raises(ConfigError, match="no checkpoint for epoch 5") as e:
      ck.restore(5, _mixed_state())
    assert "\n" not in str(e.value)
    wrong = dict(_mixed_state(), extra=jnp.ones(2))
    with pytest.raises(ConfigError, match="does not match") as e:
      ck.restore(0, wrong)
    assert "\n" not in str(e.value)
  with pytest.raises(RuntimeError, match="closed"):
    ck.save(1, _mixed_state(), metric=1.0)


def test_config_defaults_and_validation(tmp_path):
  cfg = checkpoint.default_config()
  assert dict(cfg) == dict(enabled=True, subdir="checkpoints", keep_best=1,
                           keep_latest=1, save_every=1, min_interval_s=10, async_save=True)
  checkpoint.validate_config(cfg)
  for name, value in (("keep_best", 0), ("keep_latest", 0), ("save_every", 0),
                      ("min_interval_s", -1)):
    bad = checkpoint.default_config()
    bad[name] = value
    with pytest.raises(ConfigError, match=name) as e:
      checkpoint.validate_config(bad)
    assert "\n" not in str(e.value)
  with pytest.raises(ConfigError, match="mode"):
    Checkpointer(tmp_path, mode="best")
  with pytest.raises(ConfigError, match="keep_latest"):
    Checkpointer(tmp_path, keep_latest=0)
  cfg.enabled = False
  assert checkpoint.from_config(cfg, tmp_path) is None
  cfg.enabled = True
  with checkpoint.from_config(cfg, tmp_path, mode="max") as ck:
    assert ck.directory == str(tmp_path / "checkpoints")


def test_stale_tmp_dirs_and_half_deleted_steps_are_tolerated(tmp_path):
  """What a kill leaves: a tmp dir mid-write, an old step mid-rmtree."""
  with Checkpointer(tmp_path, keep_latest=3) as ck:
    _save_all(ck, [3.0, 1.0, 2.0])
  stale = tmp_path / "3.orbax-checkpoint-tmp"
  (stale / "default").mkdir(parents=True)
  (stale / "default" / "junk").write_bytes(b"\0" * 100)
  # An interrupted rmtree of step 0 (a dominated step): its metrics and part
  # of its data are gone, the directory itself is still there.
  for root, _, files in os.walk(tmp_path / "0"):
    for i, f in enumerate(sorted(files)):
      if i % 2 == 0 or f == "metrics":
        os.remove(os.path.join(root, f))
  with Checkpointer(tmp_path, keep_latest=1) as ck:
    epoch, state = ck.restore_latest(_mixed_state())
    assert epoch == 2
    _assert_tree_equal(state, _mixed_state(2))
    assert ck.best_epoch() == 1
    _save_all(ck, [5.0], start=3)
  assert _tmp_dirs(tmp_path) == []
  assert _steps_on_disk(tmp_path) == [1, 3]


_CHILD = textwrap.dedent("""
    import sys
    import jax, jax.numpy as jnp
    from genjax.workdir.checkpoint import Checkpointer

    def state(e):
      return {"w": jnp.full((1_000_000,), e, jnp.float32),
              "nested": {"i": jnp.full((64, 64), e, jnp.int32),
                         "u": jnp.full((2,), e, jnp.uint32),
                         "b": jnp.full((8,), e % 2 == 1)},
              "epoch": jnp.asarray(e, jnp.int32)}

    ck = Checkpointer(sys.argv[1], keep_best=1, keep_latest=2)
    abstract = jax.eval_shape(lambda: state(0))
    got = ck.restore_latest(abstract)
    start = 1 if got is None else got[0] + 1
    for e in range(start, start + 10_000):
      metric = float("nan") if e % 7 == 0 else float((e * 37) % 11)
      ck.save(e, state(e), metric=metric)
      print("started", e, flush=True)
      if e % 3 == 0:
        ck.wait()
        print("committed", e, flush=True)
""")


def _expected_state(e):
  return {"w": jnp.full((1_000_000,), e, jnp.float32),
          "nested": {"i": jnp.full((64, 64), e, jnp.int32),
                     "u": jnp.full((2,), e, jnp.uint32),
                     "b": jnp.full((8,), e % 2 == 1)},
          "epoch": jnp.asarray(e, jnp.int32)}


def _run_and_kill(script, directory, kill_after_epochs, delay_s):
  """Starts the child, SIGKILLs it `delay_s` after it started N more saves.

  Returns (last epoch started, last epoch known committed).
  """
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  proc = subprocess.Popen(
      [sys.executable, str(script), str(directory)], stdout=subprocess.PIPE,
      stderr=subprocess.DEVNULL, text=True, env=env)
  started, committed, seen = None, None, 0
  try:
    for line in proc.stdout:
      kind, epoch = line.split()
      if kind == "committed":
        committed = int(epoch)
        continue
      started, seen = int(epoch), seen + 1
      if seen >= kill_after_epochs:
        break
    else:
      pytest.fail(f"child exited early with {proc.wait()}")
    if delay_s:
      time.sleep(delay_s)
  finally:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
  return started, committed


@pytest.mark.slow
def test_sigkill_mid_save_leaves_latest_complete_checkpoint(tmp_path):
  script = tmp_path / "child.py"
  script.write_text(_CHILD)
  directory = tmp_path / "ck"
  rng = random.Random(0)
  # (saves before the kill, delay after the last "started" line): 0 s kills
  # inside the async write; the others land at random points of later saves.
  moments = [(1, 0.0), (2, 0.0), (4, rng.uniform(0.001, 0.02)),
             (5, rng.uniform(0.0, 0.005))]
  prev_latest, stale_tmp_seen = 0, 0
  for n, delay in moments:
    started, committed = _run_and_kill(script, directory, n, delay)
    stale_tmp_seen += bool(_tmp_dirs(directory))
    with Checkpointer(directory, keep_best=1, keep_latest=2) as ck:
      got = ck.restore_latest(jax.eval_shape(lambda: _expected_state(0)))
      if got is None:  # Killed before the first save was committed.
        assert committed is None and prev_latest == 0
        continue
      epoch, state = got
      # Latest is a complete checkpoint at or after the last one known
      # committed and not beyond the last one started.
      assert max(prev_latest, committed or 0) <= epoch <= started
      _assert_tree_equal(state, _expected_state(epoch))
      best = ck.best_epoch()
      if best is not None:
        _assert_tree_equal(
            ck.restore(best, _expected_state(0)), _expected_state(best))
      prev_latest = epoch
  # Some kill should have landed inside a write (not asserted: timing-based).
  assert prev_latest > 0
  print(f"kills that left a tmp dir: {stale_tmp_seen}/{len(moments)}")


# Verification: real orbax steps on disk, corrupted the ways disks and kills corrupt them.

_WARNING = "genjax: warning: checkpoint {d}/{epoch} is unreadable ({reason}); skipped{older}\n"


@pytest.fixture
def cli_verbosity():
  """absl at ERROR, as `genjax.main` sets it unless -v is given."""
  old = absl_logging.get_verbosity()
  absl_logging.set_verbosity(absl_logging.ERROR)
  yield
  absl_logging.set_verbosity(old)


def _random_state(seed):
  rng = np.random.default_rng(seed)
  return {"w": jnp.asarray(rng.standard_normal(4096), jnp.float32),  # incompressible: stored raw
          "i": jnp.arange(5, dtype=jnp.int32) + seed,
          "u": jnp.array([1, 2], jnp.uint32) * seed,
          "b": jnp.array([True, seed % 2 == 1]),
          "lr": 0.1, "n": seed}


def _saved(tmp_path, epochs=(0, 1)):
  directory = tmp_path / "ck"
  with Checkpointer(directory, keep_latest=len(epochs)) as ck:
    for e in epochs:
      assert ck.save(e, _random_state(e), metric=float(e))
  return directory


def _data_files(step):
  """The step's tensorstore data files, largest (the array "w") first."""
  d = step / "state" / "ocdbt.process_0" / "d"
  return sorted(d.iterdir(), key=lambda p: -p.stat().st_size)


def _flip_bytes(path, n=4):
  data = bytearray(path.read_bytes())
  for k in range(len(data) // 2, len(data) // 2 + n):
    data[k] ^= 0xFF
  path.write_bytes(bytes(data))


def _orbax_read(directory, epoch):
  """The state item read by orbax alone, without genjax's verification."""
  abstract = jax.eval_shape(lambda: jax.tree.map(jnp.asarray, _random_state(0)))
  mgr = ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(read_only=True))
  try:
    args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract))
    return mgr.restore(epoch, args=args).state
  finally:
    mgr.close()


def test_checksum_record_is_saved_and_verified_on_a_clean_round_trip(tmp_path, capfd):
  d = _saved(tmp_path)
  record = json.loads((d / "1" / "checksum" / "metadata").read_text())
  assert record["format"] == "genjax-crc32-v1"
  assert record["crc32"] == checkpoint._crc32(_random_state(1))
  assert record["leaves"][-1] == ["['w']", "float32", [4096]]
  assert [leaf[0] for leaf in record["leaves"]] == ["['b']", "['i']", "['lr']", "['n']", "['u']",
                                                    "['w']"]
  with Checkpointer(d, keep_latest=2) as ck:
    _assert_tree_equal(ck.restore(0, _random_state(5)), _random_state(0))
    epoch, state = ck.restore_latest(jax.eval_shape(lambda: jax.tree.map(jnp.asarray,
                                                                         _random_state(5))))
    assert epoch == 1
    _assert_tree_equal(state, _random_state(1))
  assert capfd.readouterr().err == ""


def test_flipped_bytes_read_fine_by_orbax_fail_the_checksum_and_fall_back(tmp_path, capfd,
                                                                          cli_verbosity):
  d = _saved(tmp_path)
  _flip_bytes(_data_files(d / "1")[0])
  raw = _orbax_read(d, 1)  # orbax reads it without an error, with wrong values ...
  assert not np.array_equal(np.asarray(raw["w"]), np.asarray(_random_state(1)["w"]))
  np.testing.assert_array_equal(np.asarray(raw["i"]), np.asarray(_random_state(1)["i"]))
  with Checkpointer(d, keep_latest=2) as ck:
    with pytest.raises(CorruptCheckpointError, match="checksum mismatch") as e:
      ck.restore(1, _random_state(0))  # ... only the checksum catches it
    assert isinstance(e.value, ConfigError) and "\n" not in str(e.value)
    assert str(e.value).startswith(f"checkpoint {d}/1 is unreadable (checksum mismatch)")
    capfd.readouterr()
    epoch, state = ck.restore_latest(_random_state(0))
    assert epoch == 0
    _assert_tree_equal(state, _random_state(0))
    assert ck.all_epochs() == [0]
    assert ck.save(1, _random_state(1), metric=1.0)  # the deleted epoch can be saved again
  assert capfd.readouterr().err == _WARNING.format(
      d=d, epoch=1, reason="checksum mismatch", older=", resuming from epoch 0")
  assert _steps_on_disk(d) == [0, 1]


def _truncate(path):
  path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])


_READ_ERRORS = {  # name: (corrupt step dir, a word of the reason)
    "truncated_data_file": (lambda s: _truncate(_data_files(s)[0]), "OUT_OF_RANGE"),
    "deleted_data_file": (lambda s: _data_files(s)[0].unlink(), "Error reading"),
    "deleted_all_data_files": (lambda s: [p.unlink() for p in _data_files(s)], "Error reading"),
    "deleted_state_metadata": (lambda s: (s / "state" / "_METADATA").unlink(), "_METADATA"),
    "deleted_ocdbt_manifest": (lambda s: (s / "state" / "manifest.ocdbt").unlink(), "NOT_FOUND"),
    "deleted_checksum_record": (lambda s: (s / "checksum" / "metadata").unlink(), "not found"),
    "deleted_checksum_item": (lambda s: shutil.rmtree(s / "checksum"),
                              '"checksum" was not found'),
    "garbled_checksum_record": (lambda s: (s / "checksum" / "metadata").write_text("{\"crc"),
                                "Unterminated string"),
    "garbled_state_metadata": (lambda s: (s / "state" / "_METADATA").write_bytes(b"\x00\x17"),
                               "char 0"),
}


@pytest.mark.parametrize("kind", sorted(_READ_ERRORS))
def test_unreadable_latest_step_falls_back_to_the_older_one(tmp_path, capfd, cli_verbosity, kind):
  corrupt, word = _READ_ERRORS[kind]
  d = _saved(tmp_path)
  corrupt(d / "1")
  with Checkpointer(d, keep_latest=2) as ck:
    epoch, state = ck.restore_latest(_random_state(0))
    assert epoch == 0
    _assert_tree_equal(state, _random_state(0))
    assert ck.all_epochs() == [0]
  assert _steps_on_disk(d) == [0]
  err = capfd.readouterr().err  # exactly one line: no traceback, no orbax chatter
  prefix = f"genjax: warning: checkpoint {d}/1 is unreadable ("
  suffix = "); skipped, resuming from epoch 0\n"
  assert err.startswith(prefix) and err.endswith(suffix) and err.count("\n") == 1, err
  assert word in err[len(prefix):-len(suffix)], err


def test_every_kept_step_corrupt_is_one_line_error_and_deletes_nothing(tmp_path, capfd,
                                                                       cli_verbosity):
  d = _saved(tmp_path)
  _flip_bytes(_data_files(d / "1")[0])
  _truncate(_data_files(d / "0")[0])
  with Checkpointer(d, keep_latest=2) as ck:
    with pytest.raises(CorruptCheckpointError) as e:
      ck.restore_latest(_random_state(0))
  assert str(e.value) == (
      f"no usable checkpoint in {d}: kept epochs [0, 1] are unreadable or fail their checksum; "
      "rerun with --overwrite to start from scratch")
  assert isinstance(e.value, ConfigError)
  lines = capfd.readouterr().err.splitlines()
  assert lines[0] == _WARNING.format(d=d, epoch=1, reason="checksum mismatch",
                                     older=", resuming from epoch 0").rstrip("\n")
  assert lines[1].startswith(f"genjax: warning: checkpoint {d}/0 is unreadable (OUT_OF_RANGE")
  assert lines[1].endswith("); skipped") and len(lines) == 2
  assert _steps_on_disk(d) == [0, 1]  # nothing is lost if the verdict is wrong


def test_structure_mismatch_stays_a_config_error_and_deletes_nothing(tmp_path):
  d = _saved(tmp_path)
  with Checkpointer(d, keep_latest=2) as ck:
    for target, detail in ((dict(_random_state(0), extra=jnp.ones(2)), "target ['extra']"),
                           (dict(_random_state(0), w=jnp.ones(3)), "target ['w'] float32(3,)"),
                           (dict(_random_state(0), i=jnp.ones(5, jnp.float32)), "['i'] float32")):
      with pytest.raises(ConfigError, match="does not match the restore target") as e:
        ck.restore_latest(target)
      assert not isinstance(e.value, CorruptCheckpointError)
      assert detail in str(e.value) and "\n" not in str(e.value)
  assert _steps_on_disk(d) == [0, 1]


def test_errors_about_the_machine_are_not_corruption(tmp_path, monkeypatch):
  d = _saved(tmp_path)
  with Checkpointer(d, keep_latest=2) as ck:
    def restore(*args, **kwargs):
      raise ValueError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 4 GiB")
    monkeypatch.setattr(ck._manager, "restore", restore)
    with pytest.raises(ValueError, match="RESOURCE_EXHAUSTED") as e:
      ck.restore_latest(_random_state(0))
    assert not isinstance(e.value, ConfigError)
  assert _steps_on_disk(d) == [0, 1]


def test_steps_written_before_checksums_restore_unverified(tmp_path):
  d = tmp_path / "ck"
  mgr = ocp.CheckpointManager(d, options=ocp.CheckpointManagerOptions(create=True))
  mgr.save(0, args=ocp.args.StandardSave(_random_state(0)))  # the old layout: item "default"
  mgr.wait_until_finished()
  mgr.close()
  with Checkpointer(d) as ck:
    epoch, state = ck.restore_latest(_random_state(9))
    assert epoch == 0
    _assert_tree_equal(state, _random_state(0))
    with pytest.raises(ConfigError, match="does not match"):
      ck.restore(0, dict(_random_state(0), extra=jnp.ones(2)))
    assert ck.save(1, _random_state(1), metric=None)
    _assert_tree_equal(ck.restore_latest(_random_state(9))[1], _random_state(1))


def test_checksum_is_computed_only_for_saves_that_start(tmp_path, monkeypatch):
  """A time-throttled save that orbax would skip costs no host copy or CRC."""
  calls = []
  record = checkpoint._record
  monkeypatch.setattr(checkpoint, "_record",
                      lambda state, *a: calls.append(1) or record(state, *a))
  with Checkpointer(tmp_path, min_interval_s=100, keep_latest=5) as ck:
    assert [ck.save(e, _random_state(e), metric=1.0) for e in range(4)] == [True] + [False] * 3
    assert ck.save(4, _random_state(4), metric=1.0, force=True)
    assert ck.all_epochs() == [0, 4]
    _assert_tree_equal(ck.restore(4, _random_state(0)), _random_state(4))
  assert len(calls) == 2
