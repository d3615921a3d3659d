"""User-given paths (a workdir, a data_dir), checked before anything is written or compiled.

`workdir_path` expands `~` (a shell leaves `--workdir=~/x` unexpanded: Python would make a
folder literally named `~`) and refuses, in one line (`ConfigError`), a dangling or looping
symbolic link and a path through a file. `data_dir_path` does the same for a TFDS data_dir.
"""

from __future__ import annotations

import errno
import os

from genjax.errors import ConfigError


def _check_links(path: str, what: str) -> None:
  """ConfigError when `path` or a folder above it is a dangling or looping symbolic link."""
  probe = path
  while True:
    if os.path.islink(probe):
      try:
        os.stat(probe)
      except OSError as e:
        kind = "loops" if e.errno == errno.ELOOP else "points to nothing"
        raise ConfigError(f"{what}={path} is a symbolic link that {kind} "
                          f"({probe} -> {os.readlink(probe)}); remove the link or point it "
                          "at an existing directory") from None
    parent = os.path.dirname(probe)
    if parent == probe:
      return
    probe = parent


def workdir_path(path: str, what: str = "--workdir") -> str:
  """`path` with `~` expanded, made absolute; ConfigError for a dangling or looping symbolic
  link on the way, or a regular file where a directory belongs."""
  path = os.path.abspath(os.path.expanduser(os.fspath(path)))
  _check_links(path, what)
  probe = path
  while probe and not os.path.exists(probe):
    probe = os.path.dirname(probe) if os.path.dirname(probe) != probe else ""
  if probe and not os.path.isdir(probe):
    raise ConfigError(f"{what}={path}: {probe} is a file, not a directory; choose another "
                      f"{what.lstrip('-')}")
  return path


def data_dir_path(path: str | None, what: str) -> str | None:
  """A TFDS data_dir (`what` names where it came from, e.g. "data.data_dir" or
  "$TFDS_DATA_DIR"): None stays None (TFDS's default); ConfigError for a file, a dangling or
  looping link."""
  if not path:
    return None
  if "://" in os.fspath(path):   # gs://, s3://: TFDS's own file systems
    return os.fspath(path)
  path = os.path.abspath(os.path.expanduser(os.fspath(path)))
  _check_links(path, what)
  probe = path
  while probe and not os.path.exists(probe):
    probe = os.path.dirname(probe) if os.path.dirname(probe) != probe else ""
  if probe and not os.path.isdir(probe):
    raise ConfigError(f"{what}={path}: {probe} is a file, not a directory; give TFDS's data "
                      "directory (a folder), or unset it for the default "
                      "(~/tensorflow_datasets)")
  return path
