"""Your own arrays as a dataset: `register_arrays(name, x_train, y_train, x_test, y_test)`.

    import genjax
    genjax.register_arrays("my_arrays", x_train, y_train, x_test, y_test)
    config = genjax.load_config(overrides=["data.name=my_arrays"])
    run = genjax.fit(config, "runs/mine")

The arrays are checked once, here (one-line `ConfigError`s: shapes, dtypes, NaN/inf,
labels), copied, and registered in `genjax.data.builders.DATASETS` under `name`, the
registry every `data.name` is looked up in (`genjax.data.datasets.load`). From there they
are the dataset's `ArraySplits`, exactly as a TFDS dataset's arrays are: the same hold-out
and K-fold splitters, standardization, label noise and augmentations.

* Features `x`: (N, L) signals, (N, H, W, C) images, or (N, H, W) images (a channel axis is
  added); real numbers. uint8 images are kept as uint8 (as TFDS keeps them); any other dtype
  is stored as float32. Labels `y`: integers in [0, num_classes), shape (N,).
* Without `x_test`/`y_test`, a stratified `test_fraction` (default 0.2) of the given arrays,
  drawn with `test_seed` (default 0), is the test split; the rest is the training split.
  The test split is part of the dataset, as a TFDS dataset's is: fixed by the registration,
  the same for every seed, split seed and sweep point.
* Their digest (`RegisteredArrays.sha256`: SHA-256 over each split's dtype, shape and bytes,
  and the class count) is part of a run's identity (`genjax.workdir.identity`): a rerun in
  the same workdir with other arrays under the same name is refused in one line, and
  `genjax.load_run` needs the same arrays registered again in its process.
* The registration lives in this process. Processes genjax starts itself (a sweep's
  structural groups, `--launcher=local`) find the arrays in a private temporary folder this
  process writes when it first trains them with a workdir (`share_with_subprocesses`;
  removed when it exits); jobs on other machines (`slurm`) do not.
"""

from __future__ import annotations

import atexit
import dataclasses
import hashlib
import numbers
import os
import re
import shutil
import tempfile
import zipfile
import zlib

import numpy as np

from genjax.data import builders
from genjax.data.array_splits import ArraySplits
from genjax.errors import ConfigError
from genjax.workdir import identity as run_identity

DEFAULT_TEST_FRACTION = 0.2
ENV = "GENJAX_REGISTERED_ARRAYS"   # the folder a parent process shares its arrays in
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
_HOW = "genjax.register_arrays({name!r}, x_train, y_train, x_test, y_test)"


@dataclasses.dataclass(frozen=True, eq=False)
class RegisteredArrays:
  """A dataset held in memory: its checked splits, their digest, how its test split came."""
  splits: ArraySplits
  sha256: str
  test_fraction: float | None   # None: the test arrays were given
  test_seed: int | None

  def load(self, name: str) -> ArraySplits:
    """The splits, for `data.name=name` (no `/config` or `:version` suffix)."""
    if name != self.splits.name:
      raise ConfigError(f"dataset {name!r}: arrays registered as {self.splits.name!r} have no "
                        f"config or version; use data.name={self.splits.name!r}")
    return self.splits


def register_arrays(name: str, x_train, y_train, x_test=None, y_test=None, *,
                    num_classes: int | None = None, test_fraction: float | None = None,
                    test_seed: int = 0) -> str:
  """Registers in-memory arrays as dataset `name` (for `data.name`); returns `name`.

  `x_*`: (N, L), (N, H, W) or (N, H, W, C) real numbers; `y_*`: (N,) integer labels in
  [0, num_classes) (`num_classes` default: the largest label + 1). Without `x_test` and
  `y_test`, a stratified `test_fraction` (default 0.2) of the given examples, drawn with
  `test_seed`, is the test split. Registering `name` again replaces its arrays (a notebook
  cell run twice); genjax's own dataset names are refused. Bad arrays: one ConfigError line.
  """
  _check_name(name)
  x_train, y_train = _features(x_train, "x_train"), _labels(y_train, "y_train")
  _check_pair(x_train, y_train, "train")
  if (x_test is None) != (y_test is None):
    given, missing = ("x_test", "y_test") if y_test is None else ("y_test", "x_test")
    raise ConfigError(f"register_arrays({name!r}): {given} is given without {missing}; give "
                      f"both, or neither (then a test_fraction of the training arrays is cut)")
  if x_test is None:
    fraction = DEFAULT_TEST_FRACTION if test_fraction is None else test_fraction
    x_train, y_train, x_test, y_test = _cut_test(name, x_train, y_train, fraction, test_seed)
  else:
    if test_fraction is not None:
      raise ConfigError(f"register_arrays({name!r}): test_fraction={test_fraction!r} is only "
                        "used without x_test and y_test; drop it, or drop the test arrays")
    fraction = test_seed = None
    x_test, y_test = _features(x_test, "x_test"), _labels(y_test, "y_test")
    _check_pair(x_test, y_test, "test")
    if x_test.shape[1:] != x_train.shape[1:] or x_test.dtype != x_train.dtype:
      raise ConfigError(f"register_arrays({name!r}): test examples have shape "
                        f"{x_test.shape[1:]} ({x_test.dtype}), training examples "
                        f"{x_train.shape[1:]} ({x_train.dtype}); give the test split the "
                        "training split's example shape and dtype")
  num_classes = _num_classes(num_classes, y_train, y_test)
  splits = ArraySplits(name, x_train, y_train, x_test, y_test, num_classes)
  entry = RegisteredArrays(splits, digest(splits), fraction, test_seed)
  builders.DATASETS.unregister(name)   # the checks above refused a builder's name
  builders.DATASETS.register(name, entry)
  return name


def unregister_arrays(name: str) -> None:
  """Removes the arrays registered as `name`, if any (genjax's own datasets stay)."""
  if isinstance(_registered(name), RegisteredArrays):
    builders.DATASETS.unregister(name)
    _shared.pop(name, None)


def registered() -> tuple[str, ...]:
  """The names of the arrays registered in this process, in registration order."""
  return tuple(n for n, e in builders.DATASETS.items() if isinstance(e, RegisteredArrays))


def lookup(name) -> RegisteredArrays | None:
  """The arrays registered as `name` (in this process, or shared by the process that started
  this one), else None (a TFDS dataset's name)."""
  entry = _registered(name)
  if isinstance(entry, RegisteredArrays):
    return entry
  if entry is not None or not isinstance(name, str) or not _NAME.match(name):
    return None
  return _from_parent(name)


def sha256_of(name) -> str | None:
  """The digest of the arrays registered as `name`, None when it names none."""
  entry = lookup(name)
  return None if entry is None else entry.sha256


run_identity.register_data_digest(sha256_of)   # a run's identity records the arrays' digest


def check_recorded(inputs: dict, workdir: str) -> None:
  """The arrays a stored run trained on (its identity's `inputs`) are registered, the same;
  else one ConfigError line saying which name to register, with which function."""
  for key, stored in sorted((inputs or {}).items()):
    if not key.startswith(run_identity.ARRAYS_KEY):
      continue
    name = key[len(run_identity.ARRAYS_KEY):]
    entry = lookup(name)
    if entry is None:
      raise ConfigError(f"'{workdir}' was trained on arrays registered as {name!r}, which are "
                        f"not registered in this process; register the same arrays first: "
                        f"{_HOW.format(name=name)}")
    if entry.sha256 != stored:
      raise ConfigError(f"'{workdir}' was trained on other arrays than those registered as "
                        f"{name!r} now (sha256 {stored[:12]}… then, {entry.sha256[:12]}… now); "
                        f"register the arrays it trained on: {_HOW.format(name=name)}")


def digest(splits: ArraySplits) -> str:
  """SHA-256 over each split's dtype, shape and bytes, and the class count."""
  h = hashlib.sha256()
  for key in ("train_x", "train_y", "test_x", "test_y"):
    a = np.ascontiguousarray(getattr(splits, key))
    h.update(f"{key}:{a.dtype.str}:{a.shape};".encode())
    h.update(memoryview(a).cast("B"))
  h.update(f"num_classes:{splits.num_classes}".encode())
  return h.hexdigest()


# --------------------------------------------------------------------------------- checks


def _registered(name):
  return builders.DATASETS.get(name) if isinstance(name, str) and name in builders.DATASETS \
      else None


def _check_name(name) -> None:
  if not isinstance(name, str) or not _NAME.match(name):
    raise ConfigError(f"register_arrays: name {name!r} must be a plain name (letters, digits, "
                      "'_', '-', '.'; no '/' or ':'), e.g. 'my_arrays'")
  entry = _registered(name)
  if entry is not None and not isinstance(entry, RegisteredArrays):
    raise ConfigError(f"register_arrays: {name!r} is genjax's offline dataset; register your "
                      "arrays under another name, e.g. 'my_arrays'")


def _array(value, what: str) -> np.ndarray:
  try:
    a = np.asarray(value)
  except (TypeError, ValueError) as e:   # ragged lists
    raise ConfigError(f"register_arrays: {what} is not an array ({str(e).splitlines()[0]}); "
                      "give a numpy array") from None
  return a


def _features(value, what: str) -> np.ndarray:
  """`value` as a fresh (N, L) or (N, H, W, C) array: uint8 kept, other reals as float32."""
  x = _array(value, what)
  if x.dtype.kind not in "biuf":
    raise ConfigError(f"register_arrays: {what} has dtype {x.dtype}; features must be real "
                      "numbers (float, int or bool): convert them, e.g. x.astype(np.float32)")
  if x.ndim not in (2, 3, 4):
    raise ConfigError(f"register_arrays: {what} has shape {x.shape}; give (N, L) signals or "
                      "(N, H, W[, C]) images, one example per row"
                      + (" (one feature per example: x[:, None])" if x.ndim == 1 else ""))
  with np.errstate(over="ignore"):   # values beyond float32: inf, refused below
    x = np.array(x, dtype=np.uint8 if x.dtype == np.uint8 else np.float32)   # a copy: ours
  if x.ndim == 3:
    x = x[..., None]   # HW -> HWC
  if x.dtype.kind == "f":
    bad = ~np.isfinite(x)
    if bad.any():
      first = np.unravel_index(np.flatnonzero(bad)[0], x.shape)[0]
      raise ConfigError(f"register_arrays: {what} holds {int(bad.sum())} NaN or infinite "
                        f"value(s) (first in example {first}) as float32; give finite numbers "
                        "(impute or drop those examples)")
  return x


def _labels(value, what: str) -> np.ndarray:
  y = _array(value, what)
  if y.ndim != 1:
    raise ConfigError(f"register_arrays: {what} has shape {y.shape}; give one integer label "
                      "per example, shape (N,) (not one-hot: y.argmax(-1))")
  if y.dtype.kind not in "iu":
    raise ConfigError(f"register_arrays: {what} has dtype {y.dtype}; labels must be integers "
                      "0..num_classes-1 (class indices: y.astype(int) for whole numbers, "
                      "np.unique(y, return_inverse=True)[1] for names)")
  if y.size and y.min() < 0:
    raise ConfigError(f"register_arrays: {what} holds negative labels ({y.min()}); labels "
                      "must be class indices 0..num_classes-1")
  return np.array(y, dtype=np.int64)


def _check_pair(x: np.ndarray, y: np.ndarray, part: str) -> None:
  if len(x) != len(y):
    raise ConfigError(f"register_arrays: x_{part} has {len(x)} examples, y_{part} {len(y)} "
                      "labels; give one label per example")
  if len(y) == 0:
    raise ConfigError(f"register_arrays: the {part} arrays are empty; give examples")


def _num_classes(num_classes, y_train: np.ndarray, y_test: np.ndarray) -> int:
  top = int(max(y_train.max(), y_test.max()))
  if num_classes is None:
    if top < 1:
      raise ConfigError("register_arrays: every label is 0, one class; a classifier needs "
                        ">= 2 classes (labels 0..num_classes-1)")
    return top + 1
  if (isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral)
      or num_classes < 2):
    raise ConfigError(f"register_arrays: num_classes must be an integer >= 2, got "
                      f"{num_classes!r}; or None (the largest label + 1)")
  if top >= num_classes:
    part = "y_train" if y_train.max() >= num_classes else "y_test"
    raise ConfigError(f"register_arrays: {part} holds label {top}, outside [0, "
                      f"num_classes={num_classes}); raise num_classes, or fix the labels")
  return int(num_classes)


def _cut_test(name, x, y, fraction, seed):
  """(x_train, y_train, x_test, y_test): a stratified, seeded `fraction` of (x, y) is the test
  split (scikit-learn's `train_test_split`); each part keeps the given order."""
  if (isinstance(fraction, bool) or not isinstance(fraction, numbers.Real)
      or not 0.0 < float(fraction) < 1.0):
    raise ConfigError(f"register_arrays({name!r}): test_fraction must be in (0, 1), got "
                      f"{fraction!r}; e.g. 0.2")
  if (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
      or not 0 <= seed < 2**32):
    raise ConfigError(f"register_arrays({name!r}): test_seed must be an integer in "
                      f"[0, 2**32), got {seed!r}")
  classes, counts = np.unique(y, return_counts=True)
  if counts.min() < 2:
    raise ConfigError(f"register_arrays({name!r}): class {classes[counts.argmin()]} has "
                      f"{counts.min()} example; a stratified test split needs >= 2 per class: "
                      "give x_test and y_test, or more examples of it")
  from sklearn import model_selection   # slow to import: only when cutting
  try:
    train_idx, test_idx = model_selection.train_test_split(
        np.arange(len(y)), test_size=float(fraction), stratify=y, random_state=int(seed))
  except ValueError as e:
    raise ConfigError(f"register_arrays({name!r}): cannot cut a stratified test_fraction="
                      f"{fraction} of {len(y)} examples ({str(e).splitlines()[0]}); change "
                      "test_fraction, or give x_test and y_test") from None
  train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
  return x[train_idx], y[train_idx], x[test_idx], y[test_idx]


# ------------------------------------------------------ processes genjax starts itself

_shared: dict[str, str] = {}   # name -> the digest written to this process's shared folder
_own_dir: list[str] = []       # the folder this process made (removed at exit)


def share_with_subprocesses(name) -> None:
  """Writes the arrays registered as `name` (if any) to a private temporary folder named in
  $GENJAX_REGISTERED_ARRAYS, which the processes this one starts inherit (a sweep's
  structural groups); once per name and digest. Removed when this process exits."""
  entry = lookup(name)
  if entry is None or _shared.get(name) == entry.sha256:
    return
  if not _own_dir:
    folder = tempfile.mkdtemp(prefix="genjax-arrays-")
    atexit.register(shutil.rmtree, folder, True)
    _own_dir.append(folder)
    os.environ[ENV] = folder
  s = entry.splits
  path = os.path.join(_own_dir[0], f"{name}.npz")
  with tempfile.NamedTemporaryFile(dir=_own_dir[0], suffix=".tmp", delete=False) as f:
    np.savez(f, train_x=s.train_x, train_y=s.train_y, test_x=s.test_x, test_y=s.test_y,
             num_classes=np.int64(s.num_classes), sha256=np.str_(entry.sha256),
             test_fraction=np.float64(np.nan if entry.test_fraction is None
                                      else entry.test_fraction),
             test_seed=np.int64(-1 if entry.test_seed is None else entry.test_seed))
  os.replace(f.name, path)
  _shared[name] = entry.sha256


def _from_parent(name: str) -> RegisteredArrays | None:
  """The arrays the process that started this one shared as `name`, registered here too."""
  folder = os.environ.get(ENV)
  if not folder or folder in _own_dir:   # this process's own folder: not a parent's arrays
    return None
  path = os.path.join(folder, f"{name}.npz")
  if not os.path.isfile(path):
    return None
  try:
    with np.load(path, allow_pickle=False) as f:
      arrays = {k: f[k] for k in ("train_x", "train_y", "test_x", "test_y")}
      num_classes, sha = int(f["num_classes"]), str(f["sha256"])
      fraction, seed = float(f["test_fraction"]), int(f["test_seed"])
  except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error):
    return None
  splits = ArraySplits(name, num_classes=num_classes, **arrays)
  if digest(splits) != sha:
    return None
  entry = RegisteredArrays(splits, sha, None if np.isnan(fraction) else fraction,
                           None if seed < 0 else seed)
  builders.DATASETS.register(name, entry)
  _shared[name] = sha   # already in the shared folder: not written again
  return entry
