"""Datasets by name, as numpy arrays (`load`).

Arrays registered in memory (`genjax.data.arrays.register_arrays`) come first: they are
their own splits, nothing is read or prepared.
Offline names (`OFFLINE_DATASETS`, optionally `name/config`) are prepared on
first use with our TFDS builders in `data_dir` (default: $TFDS_DATA_DIR read at
call time, else TFDS's default) and cached as one `.npz` beside the prepared files, so a warm
load is a single file read. Any other name is read with
`tfds.data_source(name, data_dir=data_dir, download=False)`: it must already be
prepared there in a random-access format (array_record), which needs
TensorFlow (`pip install 'genjax-generalize[tf]'`). Nothing here touches the network.

In a multi-host run (`genjax.platform.distributed`) each process reads only its rows
of each split from the data source and the rows are all-gathered, so every
process ends with the arrays a single process loads (the cache is not used).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import zipfile
import zlib
import logging
import os
import shutil
import tempfile
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import tensorflow_datasets as tfds

from genjax.platform import distributed
from genjax.workdir import paths
from genjax.data import arrays as own_arrays
from genjax.data import builders
from genjax.data.array_splits import ArraySplits  # noqa: F401  (its home before)
from genjax.data.builders import fashion_mnist_local
from genjax.data.builders import mnist1d
from genjax.errors import ConfigError
from genjax.report.files import atomic

DATASETS = builders.DATASETS  # offline name -> TFDS builder class (a genjax Registry)


def offline_datasets() -> tuple[str, ...]:
  """Names of the registered offline datasets (builder classes), in registration order."""
  return tuple(name for name, entry in DATASETS.items() if isinstance(entry, type))


def __getattr__(attr):
  """`OFFLINE_DATASETS`: `offline_datasets()` at the time of access."""
  if attr == "OFFLINE_DATASETS":
    return offline_datasets()
  raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


_log = logging.getLogger(__name__)  # Not "absl": that one is muted in load().
_CACHE_NAME = "genjax_arrays.npz"
_CACHE_FORMAT = 2   # 2: with the arrays' digest (format 1 caches are rebuilt)
_CHUNK = 16384  # Examples per vectorized data-source read.


def load(name: str, *, data_dir: str | os.PathLike | None = None) -> ArraySplits:
  """Loads dataset `name` (e.g. `mnist1d`, `mnist1d/shuffled`, `mnist`, `my_arrays`).

  The one lookup of every `data.name`: arrays registered in memory
  (`genjax.data.arrays.register_arrays`), then genjax's offline builders (both in
  `DATASETS`), then a TFDS dataset prepared in `data_dir`.
  `data_dir` defaults to $TFDS_DATA_DIR (read at call time), else TFDS's default.

  Raises ConfigError for an unknown name, a bad config, missing source files
  (fashion_mnist_local) or a TFDS dataset not prepared in `data_dir`.
  """
  if not isinstance(name, str) or not name.strip():
    raise ConfigError(
        f"dataset name {name!r} is not a non-empty string; use one of "
        f"{', '.join(offline_datasets())} or a prepared TFDS name.")
  own = own_arrays.lookup(_parse_name(name)[0])
  if own is not None:   # in memory: data_dir plays no part
    return own.load(name)
  # TFDS freezes its default dir at import; read TFDS_DATA_DIR now instead.
  what = "data.data_dir" if data_dir else "$TFDS_DATA_DIR"
  data_dir = os.fspath(data_dir) if data_dir else os.environ.get("TFDS_DATA_DIR") or None
  paths.data_dir_path(data_dir, what)   # a file, a dangling link: one line
  base, config, version = _parse_name(name)
  try:
    with _quiet_tfds():
      if base in DATASETS:
        return _load_offline(name, base, config, version, data_dir)
      return _load_tfds(name, data_dir)
  except OSError as e:
    if e.errno not in _WRITE_FAULTS:
      raise
    where = data_dir or "TFDS's default data_dir (~/tensorflow_datasets)"
    raise ConfigError(f"cannot prepare dataset {name!r} in {what}={where}: {e.strerror}"
                      f"{f' ({e.filename})' if e.filename else ''}; make it writable, or "
                      "point --config.data.data_dir (or $TFDS_DATA_DIR) at a writable folder "
                      "(the data are prepared there once)") from None


# A data_dir the dataset cannot be prepared in (the workdir is not at fault).
_WRITE_FAULTS = (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT)


def _corrupt(error: BaseException) -> bool:
  """Whether `error` is array_record's (Riegeli's) report of a damaged file."""
  text = str(error)
  return "Riegeli" in text or "records file" in text or "array_record" in text.lower()


def _read_split(builder_dir: str, split: str, read: Callable[[], Any], fix: str):
  """`read()`, with a damaged prepared file of `split` one line naming it and `fix`."""
  try:
    return read()
  except (RuntimeError, ValueError, OSError) as e:
    if not _corrupt(e):
      raise
    files = sorted(f for f in os.listdir(builder_dir) if f"-{split}." in f) or ["?"]
    reason = " ".join(str(e).split()).split(";")[0][:200]
    raise ConfigError(f"the prepared {split} file {os.path.join(builder_dir, files[0])} is "
                      f"corrupt ({reason}); {fix}") from None


@contextlib.contextmanager
def _quiet_tfds() -> Iterator[None]:
  """Mutes TFDS's progress bars, stdout banners and absl warnings in the block.

  Keeps a CLI's output to its own lines (errors are one line); `load` logs
  what it prepares instead.
  """
  from tensorflow_datasets.core.utils import tqdm_utils  # pylint: disable=g-import-not-at-top

  was_active = getattr(tqdm_utils, "_active", True)
  absl_logger = logging.getLogger("absl")
  level = absl_logger.level
  tfds.display_progress_bar(False)
  absl_logger.setLevel(logging.ERROR)
  try:
    with contextlib.redirect_stdout(io.StringIO()):
      yield
  finally:
    tfds.display_progress_bar(was_active)
    absl_logger.setLevel(level)


@contextlib.contextmanager
def _contained_tempdir() -> Iterator[None]:
  """tempfile's directory pointed, in the block, at one removed afterwards: TFDS's
  `DatasetInfo.initialize_from_bucket` leaves an empty `mkdtemp("tfds")` directory in /tmp
  each time a builder is made before its data is prepared (never removed by TFDS)."""
  scratch, saved = tempfile.mkdtemp(prefix="genjax-tfds-"), tempfile.tempdir
  tempfile.tempdir = scratch
  try:
    yield
  finally:
    tempfile.tempdir = saved
    shutil.rmtree(scratch, ignore_errors=True)


def _parse_name(name: str) -> tuple[str, str | None, str | None]:
  """`base[/config][:version]` -> (base, config, version)."""
  base, _, version = name.partition(":")
  base, _, config = base.partition("/")
  return base, config or None, version or None


# ----------------------------------------------------------------- offline


def _make_builder(base: str, config: str | None, version: str | None,
                  data_dir: str | None) -> tfds.core.DatasetBuilder:
  cls = DATASETS.get(base)
  cfg: Any = config
  if base == mnist1d.NAME and config is not None:
    cfg = mnist1d.config_from_name(config)
  elif config is not None:
    available = [c.name for c in cls.BUILDER_CONFIGS]
    raise ConfigError(
        f"dataset {base!r} has no config {config!r}; "
        + (f"use one of {available}." if available else f"use plain {base!r}."))
  try:
    with _contained_tempdir():
      return cls(data_dir=data_dir, config=cfg, version=version)
  except (ValueError, AssertionError) as e:
    raise ConfigError(
        f"cannot build {base!r} (config={config!r}, version={version!r}): "
        f"{str(e).splitlines()[0]}; fix the name (e.g. {base!r}).") from e


def _prepare(builder, remake: Callable[[], tfds.core.DatasetBuilder]):
  """Prepares `builder` once; tolerates another process preparing it first."""
  if builder.is_prepared():
    return builder
  if isinstance(builder, builders.FashionMnistLocal):
    fashion_mnist_local.check_files(builder.source_dir)
  try:
    builder.download_and_prepare(file_format="array_record")
  except ConfigError:
    raise
  except Exception:  # pylint: disable=broad-except
    fresh = remake()
    if not fresh.is_prepared():
      raise
    return fresh  # A concurrent process finished first.
  return builder


def _load_offline(name, base, config, version, data_dir) -> ArraySplits:
  remake = lambda: _make_builder(base, config, version, data_dir)
  builder = remake()
  num_classes = builder.info.features["label"].num_classes
  cache = os.path.join(os.fspath(builder.data_path), _CACHE_NAME)
  sharded = distributed.process().count > 1
  if sharded:
    if not builder.is_prepared() and isinstance(builder, builders.FashionMnistLocal):
      fashion_mnist_local.check_files(builder.source_dir)   # every process fails alike
    if distributed.is_primary():
      builder = _prepare(builder, remake)
    distributed.barrier("genjax-dataset-prepared")
    builder = remake()
  arrays = _read_cache(cache, builder) if builder.is_prepared() and not sharded else None
  if arrays is None:
    if not builder.is_prepared():
      _log.info("preparing %s in %s", name, builder.data_dir_root)
    builder = _prepare(builder, remake)
    x_key = builder.X_KEY
    arrays = {}
    fix = (f"delete {builder.data_dir} (genjax prepares {name!r} there again on the next "
           "run), or point --config.data.data_dir at another folder")
    for split in ("train", "test"):
      source = builder.as_data_source(split)
      columns = _read_split(os.fspath(builder.data_dir), split, lambda: distributed.gather_rows(
          read_source(source, (x_key, "label", "index"), rows=distributed.shard(len(source)))),
          fix)
      order = np.argsort(columns["index"], kind="stable")  # Source order.
      arrays[f"{split}_x"] = columns[x_key][order]
      arrays[f"{split}_y"] = columns["label"][order].astype(np.int32)
    if not sharded:
      _write_cache(cache, arrays)
  return ArraySplits(name=name, num_classes=int(num_classes), **arrays)


def _read_cache(path: str, builder) -> dict[str, np.ndarray] | None:
  """The cached arrays if present and consistent with `builder.info`."""
  if not os.path.isfile(path):
    return None
  try:
    with np.load(path, allow_pickle=False) as f:
      fmt = int(f["format"])
      if fmt != _CACHE_FORMAT:
        return None
      arrays = {k: f[k] for k in _CACHE_KEYS}
      digest = str(f["digest"])
  except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as e:
    # Truncated or damaged (a full disk, a copy cut short): rebuilt from the prepared files.
    _log.warning("rebuilding unreadable cache %s: %s", path, e)
    return None
  if digest != _digest(arrays):   # changed since written (e.g. edited labels): rebuilt
    _log.warning("rebuilding cache %s: its arrays do not match the digest written with them",
                 path)
    return None
  splits = builder.info.splits
  if (len(arrays["train_y"]) != splits["train"].num_examples
      or len(arrays["test_y"]) != splits["test"].num_examples):
    return None
  return arrays


_CACHE_KEYS = ("train_x", "train_y", "test_x", "test_y")


def _digest(arrays: dict[str, np.ndarray]) -> str:
  """SHA-256 of the cached arrays: names, dtypes, shapes and bytes."""
  h = hashlib.sha256()
  for k in _CACHE_KEYS:
    a = np.ascontiguousarray(arrays[k])
    h.update(f"{k}:{a.dtype.str}:{a.shape};".encode())
    h.update(memoryview(a).cast("B"))
  return h.hexdigest()


def _write_cache(path: str, arrays: dict[str, np.ndarray]) -> None:
  """Writes atomically (a fresh temporary name: processes preparing the same data may write it
  at once); a read-only data_dir just means no cache."""
  try:
    with atomic(path, "wb", unique=True) as f:
      np.savez(f, format=np.int64(_CACHE_FORMAT), digest=np.str_(_digest(arrays)), **arrays)
  except OSError as e:
    _log.warning("not caching arrays in %s: %s", os.path.dirname(path), e)


# ------------------------------------------------------------- data sources


def read_source(source: Sequence[Any], keys: Sequence[str],
                rows: range | None = None) -> dict[str, np.ndarray]:
  """Stacks features `keys` of the records `rows` (default all) of a TFDS data source.

  Reads in vectorized chunks through `__getitems__` (about 4x faster than
  record by record); sequences without a working `__getitems__` (plain lists,
  TFDS's `mock_data`) are read record by record.
  """
  rows = range(len(source)) if rows is None else rows
  getitems = getattr(source, "__getitems__", None)
  parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
  for start in range(0, len(rows), _CHUNK):
    idx = list(rows[start:start + _CHUNK])
    chunk = None
    if getitems is not None:
      try:
        chunk = getitems(idx)
      except TypeError:
        if start:
          raise
        getitems = None  # TFDS's mock binds __getitems__ wrongly.
    if chunk is None:
      chunk = [source[i] for i in idx]
    for k in keys:
      parts[k].append(np.stack([np.asarray(ex[k]) for ex in chunk]))
  return {k: (np.concatenate(v) if v else np.zeros((0,))) for k, v in parts.items()}


# -------------------------------------------------------------- by TFDS name


def _unknown(name: str) -> ConfigError:
  own = own_arrays.registered()
  return ConfigError(
      f"unknown dataset {name!r}; offline datasets are "
      f"{', '.join(offline_datasets())} (e.g. 'mnist1d/shuffled'); your own numpy arrays "
      f"must be registered in this process first, with genjax.register_arrays({name!r}, "
      f"x_train, y_train, x_test, y_test) (registered: {', '.join(own) or 'none'}); other TFDS "
      "datasets must be prepared first in array_record format with TensorFlow "
      "(`pip install 'genjax-generalize[tf]'`) and then loaded by name with their data_dir.")


def _not_prepared(name: str, builder) -> ConfigError:
  return ConfigError(
      f"TFDS dataset {name!r} is not prepared in {builder.data_dir_root}; "
      "prepare it once with TensorFlow (`pip install 'genjax-generalize[tf]'`, then "
      f"`tfds build {builder.name} --file_format=array_record "
      f"--data_dir={builder.data_dir_root}`) or use an offline dataset "
      f"({', '.join(offline_datasets())}).")


def _load_tfds(name: str, data_dir: str | None) -> ArraySplits:
  try:
    with _contained_tempdir():
      builder = tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError as e:
    raise _unknown(name) from e
  except ValueError as e:  # Bad config/version of a known dataset.
    raise ConfigError(
        f"cannot open TFDS dataset {name!r}: {str(e).splitlines()[0]}; "
        "fix the config or version in the name.") from e
  features = builder.info.features
  if "label" not in features:
    raise ConfigError(
        f"TFDS dataset {name!r} has no 'label' feature (features: "
        f"{sorted(features)}); use a supervised classification dataset.")
  others = [k for k in features if k != "label"]
  x_key = "image" if "image" in features else (others[0] if len(others) == 1 else None)
  if x_key is None:
    raise ConfigError(
        f"TFDS dataset {name!r} has no 'image' and several other features "
        f"{others}; use a dataset with one input feature besides 'label'.")
  known = list(builder.info.splits)
  test_split = "validation" if known and "test" not in known and "validation" in known else "test"
  if known and ("train" not in known or test_split not in known):
    raise ConfigError(
        f"TFDS dataset {name!r} has splits {known}; genjax needs 'train' and "
        "'test' (or 'validation'): use another dataset.")
  try:
    with _contained_tempdir():
      train_src, test_src = tfds.data_source(
          name, split=["train", test_split], data_dir=data_dir, download=False)
  except Exception as e:  # pylint: disable=broad-except
    if not builder.is_prepared():
      raise _not_prepared(name, builder) from e
    if isinstance(e, NotImplementedError):
      raise ConfigError(
          f"TFDS dataset {name!r} in {builder.data_dir_root} is not in a "
          "random-access format; re-prepare it with --file_format=array_record "
          "(needs `pip install 'genjax-generalize[tf]'`).") from e
    raise
  arrays = {}
  fix = (f"prepare it again (`tfds build {builder.name} --file_format=array_record "
         f"--data_dir={builder.data_dir_root} --overwrite`, needs `pip install 'genjax-generalize[tf]'`)")
  for split, src in (("train", train_src), ("test", test_src)):
    columns = _read_split(
        os.fspath(builder.data_dir), split if split == "train" else test_split,
        lambda: distributed.gather_rows(
            read_source(src, (x_key, "label"), rows=distributed.shard(len(src)))), fix)
    x = columns[x_key]
    arrays[f"{split}_x"] = x[..., None] if x.ndim == 3 else x  # HW -> HWC.
    arrays[f"{split}_y"] = columns["label"].astype(np.int32)
  label = features["label"]
  if isinstance(label, tfds.features.ClassLabel) and label.num_classes:
    num_classes = label.num_classes
  else:
    num_classes = int(max(arrays["train_y"].max(initial=-1),
                          arrays["test_y"].max(initial=-1))) + 1
  return ArraySplits(name=name, num_classes=int(num_classes), **arrays)
