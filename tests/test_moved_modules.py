"""Modules moved into packages (issue #31) keep their old import paths, with a warning."""

import importlib
import subprocess
import sys

import pytest

import genjax


@pytest.mark.parametrize("old", sorted(genjax.MOVED))
def test_an_old_import_path_is_the_moved_module_with_a_warning(old):
  code = ("import importlib, warnings\n"
          "warnings.simplefilter('error', DeprecationWarning)\n"
          f"try:\n  importlib.import_module({old!r})\n"
          "except DeprecationWarning as e:\n  print(e)\n")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.strip() == f"{old} moved to {genjax.MOVED[old]}; import it from there"


def test_the_old_and_new_paths_are_one_module():
  with pytest.warns(DeprecationWarning):
    old = importlib.import_module("genjax.penalties")
  assert old is importlib.import_module("genjax.optim.penalties")
  with pytest.warns(DeprecationWarning):
    from genjax.sweep_grid import point_name   # noqa: F401 (a name from an old path)
  assert importlib.import_module("genjax.sweeps.points").point_name is point_name


def test_every_new_path_exists():
  for new in genjax.MOVED.values():
    importlib.import_module(new)
