"""One generic name -> object registry, used for every pluggable kind of thing.

    from genjax.registry import Registry

    MODELS = Registry("model", config_key="model.name")   # as genjax.models defines its own

    @MODELS.register("mlp")
    def mlp(cfg, input_shape, num_classes, rngs): ...

    MODELS.get("mlp")        # the object; ConfigError listing the known names if unknown
    MODELS.names()           # sorted names
    with MODELS.temporary("toy", mlp): ...   # registered inside the block only

genjax's own registries, each with its decorator: `genjax.models.register` (models),
`genjax.optim.penalties.register` (penalties), `genjax.optim.register` (optimizers; learning-rate
shapes in `genjax.optim.optimizers.LR_SCHEDULES`), `genjax.data.augment.register` (augmentation
ops), `genjax.train.metrics.register` (metrics), `genjax.train.callbacks.register` (callbacks)
and `genjax.data.builders.DATASETS` (offline datasets).

Contract of `register(name, obj)`:
* a new name is added;
* the same name again from *the same definition* replaces the entry: a new function or
  class object with the same source file and qualified name, as when a config file that
  registers it is executed again (a sweep's group process, a notebook cell run twice);
* anything else under a taken name — another definition, or the very same object twice —
  raises ValueError naming the holder, so two plugins never silently shadow each other.

Registered values may be wrapped (e.g. a `Penalty` record around its function): `register`
takes `origin=` (the function whose definition identifies the entry) for that case.
"""

from __future__ import annotations

import contextlib
import os
import weakref
from typing import Any, Generic, Iterator, TypeVar

from genjax.errors import ConfigError

T = TypeVar("T")
_REGISTRIES: weakref.WeakSet = weakref.WeakSet()   # every Registry: what the run identity hashes
_USER_FILES: dict[str, set[str]] = {}   # config file -> files of the modules its code imported


def note_user_files(config_path: str, files: set[str]) -> None:
  """Records that executing config file `config_path` (absolute) imported `files`
  (`genjax.config.files` calls it): user code a run's identity covers."""
  _USER_FILES.setdefault(config_path, set()).update(files)


def user_files() -> set[str]:
  """Every config file executed in this process and the modules its code first imported."""
  return {f for path, files in _USER_FILES.items() for f in (path, *files)}


def definition(obj: Any) -> tuple[str, str] | None:
  """(real source file, qualified name) of a function or class, or None when unknown.

  A lambda's qualified name is "<lambda>" for every lambda of its scope, so its first line
  number is appended ("f.<locals>.<lambda>@12"): two lambdas of one file stay distinct.
  """
  obj = getattr(obj, "__wrapped__", obj)
  code = getattr(obj, "__code__", None)
  filename = getattr(code, "co_filename", None)
  if filename is None and isinstance(obj, type):
    import inspect
    try:
      filename = inspect.getsourcefile(obj)
    except (TypeError, OSError):
      filename = None
  qualname = getattr(obj, "__qualname__", None)
  if not filename or not qualname or filename.startswith("<"):
    return None
  if qualname.endswith("<lambda>") and code is not None:
    qualname = f"{qualname}@{code.co_firstlineno}"
  return os.path.realpath(filename), qualname


HOW_TO = {"penalty": "add-a-penalty", "metric": "add-a-metric", "model": "add-a-model",
          "callback": "add-a-callback", "augmentation op": "add-an-augmentation",
          "optimizer": "add-an-optimizer", "dataset": "add-a-dataset"}


def by_config_key(config_key: str) -> "Registry | None":
  """The registry whose names a config key selects (e.g. "optimizer.schedule"), or None: for
  lower layers that must look an entry up without importing the layer that defines it."""
  return next((r for r in list(_REGISTRIES) if r.config_key == config_key), None)


def unregistered_hint(key: str) -> str | None:
  """For a config or sweep key under a registry's section that names nothing registered
  (`penalties.max_norm.strength` without a `max_norm` penalty): the sentence saying so and
  which module to import; None when `key` is not of that form. A user's penalty, metric, ...
  exists only once the module that registers it is imported, in this process: the --config
  file must import it (or define it), or a script must import it before calling genjax."""
  parts = key.split(".")
  for reg in list(_REGISTRIES):
    section = (reg.config_key or "").split(".")
    if (reg.config_key and len(parts) > len(section) and parts[:len(section)] == section
        and parts[len(section)] not in reg._entries):
      name = parts[len(section)]
      page = HOW_TO.get(reg.kind)
      return (f"no {reg.kind} {name!r} is registered (registered: "
              f"{', '.join(reg.names()) or 'none'}): import the module that registers it "
              f"(`register({name!r})`) in your --config file, or before calling genjax"
              + (f"; see docs/pages/how-to/{page}.md" if page else ""))
  return None


class Registry(Generic[T]):
  """Named objects of one kind (see the module docstring)."""

  def __init__(self, kind: str, *, config_key: str | None = None):
    self.kind = kind                # "model", "penalty", ... (for messages)
    self.config_key = config_key    # where a user names one, e.g. "model.name"
    self._entries: dict[str, T] = {}
    self._origins: dict[str, Any] = {}
    _REGISTRIES.add(self)

  def register(self, name: str, obj: Any = None, *, origin: Any = None):
    """Registers `obj` under `name`; without `obj`, a decorator that registers its argument."""
    if obj is None:
      def decorator(value):
        self.register(name, value, origin=origin)
        return value
      return decorator
    if not isinstance(name, str) or not name:
      raise ValueError(f"a {self.kind} name must be a non-empty string, got {name!r}")
    source = obj if origin is None else origin
    if name in self._entries:
      old = self._origins[name]
      where = definition(source)
      if source is old or where is None or where != definition(old):
        holder = definition(old)
        raise ValueError(f"{self.kind} {name!r} is already registered (by "
                         f"{holder[1] if holder else repr(old)}"
                         f"{' in ' + holder[0] if holder else ''}); register yours under "
                         "another name")
    self._entries[name] = obj
    self._origins[name] = source
    return obj

  def unregister(self, name: str) -> None:
    """Removes `name` if registered (tests, interactive use)."""
    self._entries.pop(name, None)
    self._origins.pop(name, None)

  def get(self, name: str) -> T:
    """The object registered as `name`; ConfigError listing the known names otherwise."""
    if name not in self._entries:
      where = f" (config.{self.config_key})" if self.config_key else ""
      raise ConfigError(f"unknown {self.kind} {name!r}{where}; registered: "
                        f"{', '.join(self.names()) or 'none'}")
    return self._entries[name]

  def names(self) -> list[str]:
    """Registered names, sorted."""
    return sorted(self._entries)

  def items(self) -> list[tuple[str, T]]:
    """(name, object) pairs in registration order."""
    return list(self._entries.items())

  def __contains__(self, name: object) -> bool:
    return name in self._entries

  def __len__(self) -> int:
    return len(self._entries)

  @contextlib.contextmanager
  def temporary(self, name: str, obj: Any, *, origin: Any = None) -> Iterator[Any]:
    """Registers `obj` as `name` inside the block only. On exit `name` is back as before:
    unregistered, or its previous entry in its previous place in registration order.
    Other names registered or removed inside the block stay so."""
    order = list(self._entries)
    had = name in self._entries
    saved = (self._entries.get(name), self._origins.get(name))
    self.unregister(name)
    try:
      self.register(name, obj, origin=origin)
      yield obj
    finally:
      self.unregister(name)
      if had:
        self._entries[name], self._origins[name] = saved
        rank = {n: i for i, n in enumerate(order)}
        keys = sorted(self._entries, key=lambda n: rank.get(n, len(order)))
        self._entries = {n: self._entries[n] for n in keys}
        self._origins = {n: self._origins[n] for n in keys}


def definition_files() -> set[str]:
  """The real source files of every registered entry of every registry (the code a config
  can name: models, penalties, metrics, optimizers, callbacks, ...)."""
  out = set()
  for registry in list(_REGISTRIES):
    for origin in list(registry._origins.values()):
      where = definition(origin)
      if where is not None:
        out.add(where[0])
  return out
