"""Shared test set-up: a per-session TFDS data_dir, so tests never touch ~/tensorflow_datasets."""

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def compilation_cache(tmp_path_factory):
  """A per-session XLA compilation cache (never the user's ~/.cache) for CLI subprocesses and
  for this process: tests that build the same programs compile them once."""
  from genjax.platform import runtime
  path = str(tmp_path_factory.mktemp("xla_cache"))
  os.environ["GENJAX_COMPILATION_CACHE"] = path
  runtime.enable_compilation_cache(path)
  yield


@pytest.fixture(scope="session", autouse=True)
def tfds_data_dir(tmp_path_factory):
  """Points TFDS (and subprocesses, via the environment) at a fresh per-worker directory."""
  path = tmp_path_factory.mktemp("tfds")
  old = os.environ.get("TFDS_DATA_DIR")
  os.environ["TFDS_DATA_DIR"] = str(path)
  yield str(path)
  if old is None:
    os.environ.pop("TFDS_DATA_DIR", None)
  else:
    os.environ["TFDS_DATA_DIR"] = old


def pytest_collection_modifyitems(config, items):
  """Everything under tests/integration/ (CLI subprocesses, kill/resume, multi-host, launchers,
  faults) is beyond the fast tier: marked `slow` (scripts/test runs -m "not slow")."""
  for item in items:
    if "integration" in item.path.parts:
      item.add_marker(pytest.mark.slow)
