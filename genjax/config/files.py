"""Config files: `--config=FILE.py[:ARG]` executed once, every failure one line.

    config, module = config_file.load("experiments/mnist1d_mlp.py")
    config, module = config_file.load("experiments/mnist1d_baselines.py:cnn")

`load` puts the file's folder at the front of `sys.path` (so the file can
`import my_penalties` from a module beside it), executes the file once as a
module (registered in `sys.modules` under a name derived from its path; later
`load` / `module_for` calls reuse it, so a penalty it registers is registered
once), calls `get_config()` or `get_config(ARG)` and requires an
`ml_collections.ConfigDict` back. Files inside the genjax package (the default,
`genjax/config/defaults.py`) are imported as the package modules they are.

Every failure raises `ConfigError` with one line. An exception raised inside
the config file, or inside a module beside it that it imports, reads
`my_config.py:12: NameError: name 'x' is not defined`: the file and line of
the innermost frame in the user's files, then the exception's type and message.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import os
import re
import sys
import traceback
import types
from typing import Any, Callable

from genjax import registry
from genjax.errors import ConfigError

EXAMPLE = "experiments/mnist1d_mlp.py"
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # genjax/

_MODULES: dict[str, types.ModuleType] = {}   # absolute path -> its executed module
_LOADED: dict[str, Any] = {"path": None, "spec": None, "arg": None}


def user_files() -> set[str]:
  """Every config file executed in this process (outside genjax) and the files of the modules
  first imported while its code ran (`import my_penalties` beside it): part of a run's
  identity (`genjax.registry.user_files`, read by `genjax.workdir.identity.user_modules`)."""
  return registry.user_files()


class _Imports:
  """Records (`registry.note_user_files`) the modules first imported inside the block."""

  def __init__(self, abspath: str):
    self.abspath = abspath

  def __enter__(self):
    self.before = set(sys.modules)

  def __exit__(self, *exc):
    files = set()
    for name in set(sys.modules) - self.before:
      path = getattr(sys.modules.get(name), "__file__", None)
      if isinstance(path, str) and path.endswith(".py"):
        files.add(os.path.realpath(path))
    registry.note_user_files(self.abspath, files)


def split_spec(spec: str) -> tuple[str, str | None]:
  """'dir/exp.py:ARG' -> ('dir/exp.py', 'ARG'); 'dir/exp.py' -> ('dir/exp.py', None).

  The argument starts after the first '.py:' (so a path may hold ':' and an
  argument may hold ':'); without '.py:', after the first ':' unless the whole
  spec is an existing file.
  """
  spec = os.path.expanduser(spec) if spec.startswith("~") else spec
  i = spec.find(".py:")
  if i >= 0:
    return spec[:i + 3], spec[i + 4:]
  if ":" in spec and not os.path.isfile(spec):
    path, _, arg = spec.partition(":")
    return path, arg
  return spec, None


def loaded_path() -> str | None:
  """The absolute path of the config file `load` last loaded, or None."""
  return _LOADED["path"]


def loaded_spec() -> str | None:
  """The `--config` value `load` last loaded ('FILE.py' or 'FILE.py:ARG'), or None."""
  return _LOADED["spec"]


def loaded_arg() -> str | None:
  """The ':ARG' part of the last loaded spec (None when there was none)."""
  return _LOADED["arg"]


def load(spec: str):
  """(config, module) for `--config=spec`; ConfigError (one line) on any failure."""
  path, arg = split_spec(spec)
  module = module_for(spec)
  get_config = getattr(module, "get_config", None)
  name = _label(_abspath(path))
  if get_config is None:
    close = difflib.get_close_matches(
        "get_config", [k for k, v in vars(module).items() if callable(v)], n=1)
    hint = f" (it has {close[0]}(): a typo?)" if close else ""
    raise ConfigError(f"{name} has no get_config(){hint}; define get_config() returning an "
                      f"ml_collections.ConfigDict, e.g. as {EXAMPLE} does")
  if not callable(get_config):
    raise ConfigError(f"{name}: get_config is a {type(get_config).__name__}, not a function; "
                      "define def get_config(): ... returning an ml_collections.ConfigDict")
  args = _arguments(get_config, arg, name, spec, required=True)
  with _Imports(os.path.realpath(module.__file__)):
    config = call(get_config, *args, path=module.__file__)
  import ml_collections  # After the user's code: it may set up what ml_collections imports.
  if not isinstance(config, ml_collections.ConfigDict):
    what = "None" if config is None else f"a {type(config).__name__}"
    fix = ("did you forget `return config`?" if config is None else
           "return an ml_collections.ConfigDict, e.g. start from genjax.config.defaults.get_config()"
           + (" or wrap it: ml_collections.ConfigDict(d)" if isinstance(config, dict) else ""))
    raise ConfigError(f"{name}: get_config() returned {what}, not an "
                      f"ml_collections.ConfigDict; {fix}")
  if isinstance(config, ml_collections.FrozenConfigDict):  # overridable, like any config
    config = ml_collections.ConfigDict(config)
  _LOADED.update(path=module.__file__, spec=spec, arg=arg)
  return config, module


def module_for(spec: str) -> types.ModuleType:
  """The module of config file `spec` ('FILE.py[:ARG]'), executed on first use only."""
  path, _ = split_spec(spec)
  if not path:
    raise ConfigError(f"--config is empty; pass a config file, e.g. --config={EXAMPLE}")
  abspath = _abspath(path)
  if abspath in _MODULES:
    return _MODULES[abspath]
  if not os.path.exists(abspath):
    raise ConfigError(f"cannot load --config={spec}: {path} does not exist; pass an "
                      f"existing file, e.g. --config={EXAMPLE}")
  if os.path.isdir(abspath):
    raise ConfigError(f"cannot load --config={spec}: {path} is a directory; pass a .py file "
                      f"in it, e.g. --config={EXAMPLE}")
  if not abspath.endswith(".py"):
    raise ConfigError(f"cannot load --config={spec}: {path} is not a Python file; a config "
                      f"is a .py file defining get_config(), e.g. {EXAMPLE}")
  package_module = _package_module(abspath)
  if package_module:  # genjax/config/defaults.py: the package's own module, never a second copy
    module = call(importlib.import_module, package_module, path=abspath)
  else:
    with _Imports(os.path.realpath(abspath)):
      module = _execute(abspath)
  _MODULES[abspath] = module
  return module


def call(fn: Callable, *args, path: str) -> Any:
  """`fn(*args)` with any exception turned into a one-line ConfigError.

  `path` is the config file: the line reported is that of the innermost frame
  in it or in a module of the user's beside it.
  """
  try:
    return fn(*args)
  except (Exception, SystemExit) as e:  # the user's code: anything at all, ConfigError too
    raise ConfigError(_describe(e, path)) from e


def optional_call(module: types.ModuleType, name: str, arg: str | None):
  """`module.NAME(arg)` / `module.NAME()` like `get_config`, or None without NAME.

  The argument is passed when NAME takes one; a NAME with no parameters is
  called without it (a config may take an ARG its get_sweep ignores).
  """
  fn = getattr(module, name, None)
  if fn is None:
    return None
  label = _label(module.__file__)
  if not callable(fn):
    raise ConfigError(f"{label}: {name} is a {type(fn).__name__}, not a function; "
                      f"define def {name}(): ...")
  args = _arguments(fn, arg, label, None, required=False)
  return call(fn, *args, path=module.__file__)


# ------------------------------------------------------------- helpers ---

def _abspath(path: str) -> str:
  return os.path.abspath(os.path.expanduser(path))


def _label(abspath: str, base: str | None = None) -> str:
  """A user file as reported: relative to the config's folder when inside it."""
  if base:
    rel = os.path.relpath(abspath, base)
    if not rel.startswith(os.pardir):
      return rel
  return os.path.basename(abspath)


def _package_module(abspath: str) -> str | None:
  """'genjax.config.defaults' for a file inside the genjax package, else None."""
  if os.path.dirname(abspath) != _PACKAGE_DIR and not abspath.startswith(_PACKAGE_DIR + os.sep):
    return None
  rel = os.path.relpath(abspath, os.path.dirname(_PACKAGE_DIR))[:-3]
  return ".".join(rel.split(os.sep))


def _module_name(abspath: str) -> str:
  stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(abspath))[0])
  return f"genjax_config_{stem}_{hashlib.sha1(abspath.encode()).hexdigest()[:10]}"


def _execute(abspath: str) -> types.ModuleType:
  """Executes the file once as module `_module_name(abspath)`, its folder first on sys.path."""
  folder = os.path.dirname(abspath)
  if not sys.path or sys.path[0] != folder:
    sys.path.insert(0, folder)
    importlib.invalidate_caches()
  try:
    with open(abspath, "rb") as f:
      source = importlib.util.decode_source(f.read())
  except OSError as e:
    raise ConfigError(f"cannot read --config file {abspath}: {e.strerror or e}; check the "
                      "file's permissions") from None
  except (UnicodeDecodeError, SyntaxError) as e:
    raise ConfigError(f"{_label(abspath)} is not a Python text file ({type(e).__name__}: "
                      f"{_one_line(str(e))}); a config is a .py file defining get_config()"
                      ) from None
  name = _module_name(abspath)
  loader = importlib.machinery.SourceFileLoader(name, abspath)
  spec = importlib.util.spec_from_file_location(name, abspath, loader=loader)
  module = importlib.util.module_from_spec(spec)
  sys.modules[name] = module  # dataclasses, pickle and typing look the module up by name
  try:
    code = call(compile, source, abspath, "exec", 0, True, path=abspath)
    call(exec, code, module.__dict__, path=abspath)  # no .pyc next to the user's file
  except ConfigError:
    sys.modules.pop(name, None)
    raise
  return module


def _arguments(fn: Callable, arg: str | None, label: str, spec: str | None,
               required: bool) -> tuple:
  """The arguments to call `fn` (get_config / get_sweep) with for the spec's ':ARG'."""
  try:
    signature = inspect.signature(fn)
  except (TypeError, ValueError):
    return () if arg is None else (arg,)
  fname = getattr(fn, "__name__", "get_config")
  try:
    signature.bind()
    takes_none = True
  except TypeError:
    takes_none = False
  try:
    signature.bind("x")
    takes_one = True
  except TypeError:
    takes_one = False
  if arg is None:
    if takes_none:
      return ()
    where = spec.split(":", 1)[0] if spec else label
    raise ConfigError(f"{label}: {fname}{signature} needs an argument; pass it as "
                      f"--config={where}:ARG")
  if takes_one:
    return (arg,)
  if not required and takes_none:
    return ()
  raise ConfigError(f"{label}: {fname}{signature} takes no argument, but --config "
                    f"passes ':{arg}'; drop ':{arg}' or define {fname}(arg)")


def _one_line(text: str) -> str:
  return " ".join(text.split())


def _is_user_file(filename: str, config_path: str) -> bool:
  """The config file, or a file under its folder that is neither genjax nor installed."""
  if filename == config_path:
    return True
  if not os.path.isabs(filename):  # '<frozen importlib._bootstrap>', '<string>'
    return False
  folder = os.path.dirname(config_path)
  if not filename.startswith(folder + os.sep):
    return False
  excluded = {_PACKAGE_DIR, sys.prefix, sys.base_prefix, sys.exec_prefix}
  return not any(filename.startswith(os.path.abspath(p) + os.sep) for p in excluded if p)


def _describe(e: BaseException, config_path: str) -> str:
  """'my_config.py:12: NameError: name 'x' is not defined' (one line)."""
  config_path = _abspath(config_path)
  base = os.path.dirname(config_path)
  kind = type(e).__name__
  if isinstance(e, SyntaxError) and e.filename:
    where = _label(_abspath(e.filename), base)
    line = f":{e.lineno}" if e.lineno else ""
    return f"{where}{line}: {kind}: {_one_line(e.msg or '')}"
  location = None
  for frame, lineno in traceback.walk_tb(e.__traceback__):
    filename = frame.f_code.co_filename
    filename = _abspath(filename) if os.path.isabs(filename) else filename
    if _is_user_file(filename, config_path):
      location = (filename, lineno)
  if location:
    where = f"{_label(location[0], base)}:{location[1]}"
  else:
    where = _label(config_path)
  if isinstance(e, SystemExit):
    message = f"the config called sys.exit({e.code!r}); raise an exception instead"
  else:
    message = _one_line(str(e))
  if isinstance(e, ModuleNotFoundError) and e.name:
    top = e.name.split(".")[0]
    message += (f"; put {top}.py next to {_label(config_path)}, or install it")
  elif isinstance(e, (AttributeError, KeyError)) and not message:
    message = repr(e)
  return f"{where}: {kind}: {message}" if message else f"{where}: {kind}"



def reimport(recorded: dict[str, str]) -> list[tuple[str, str]]:
  """Imports the user modules a run recorded (`{path: sha256}`, its identity's
  `code.user_modules`: config files and the modules that register its penalties, models,
  metrics, ...) that this process has not imported, so that a stored config naming them
  loads again (`genjax.load_run`). A module is imported only when its file is there with the
  recorded content; returns [(path, "missing" | "changed")] for the others, so that a failure
  can name them. Executing a module again is safe: a registration from the same definition
  replaces itself (`genjax.registry`)."""
  loaded = {os.path.realpath(m.__file__) for m in list(sys.modules.values())
            if isinstance(getattr(m, "__file__", None), str)}
  loaded |= {os.path.realpath(p) for p in _MODULES}
  left = []
  for path, digest in sorted(recorded.items()):
    if os.path.realpath(path) in loaded:
      continue
    if not os.path.isfile(path):
      left.append((path, "missing"))
      continue
    with open(path, "rb") as f:
      if hashlib.sha256(f.read()).hexdigest() != digest:
        left.append((path, "changed"))
        continue
    module_for(path)
  return left


def changed_definitions(recorded: dict[str, str]) -> list[str]:
  """The recorded user modules (`{path: sha256}`) that define a registered model, penalty,
  metric, ... now (`registry.definition_files`) and whose content differs from the record:
  loading a run's weights with such code would not be the run that trained."""
  defined = {os.path.realpath(p) for p in registry.definition_files()}
  out = []
  for path, digest in sorted(recorded.items()):
    if os.path.realpath(path) in defined and os.path.isfile(path):
      with open(path, "rb") as f:
        if hashlib.sha256(f.read()).hexdigest() != digest:
          out.append(path)
  return out
