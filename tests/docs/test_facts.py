"""Facts the docs state are facts the code holds: every `genjax.a.b` name resolves (and is not an
old, moved path), every repository path named exists, every backticked config key exists (or is
a sweepable key pattern). Checked over README.md, BENCHMARKS.md, the docs pages, the experiment
files and genjax's docstrings (CHANGELOG.md is history and names what moved)."""

import ast
import glob
import importlib
import os
import re
import warnings

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_NAME = re.compile(r"(?<![\w/.])genjax(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
_PATH = re.compile(r"(?<![\w/.~$-])((?:scripts|experiments|tests|genjax|docs)/[\w./-]*\w/?)")
_KEY = re.compile(r"`(?:--config\.)?([a-z_]+(?:\.[A-Za-z0-9_]+)+)(?:=[^`]*)?`")
_PLACEHOLDER = re.compile(r"(^|[./])(X|FILE|NAME|OP|PARAM|KEY|ARG|N|K)([./]|$)")
_FILE_SUFFIX = re.compile(r"\.(py|md|json|jsonl|csv|npz|png|tex|yml|yaml|cfg|toml|txt|config)$")


def _markdown_files():
  pages = glob.glob(os.path.join(REPO, "docs", "pages", "**", "*.md"), recursive=True)
  return [os.path.join(REPO, "README.md"), os.path.join(REPO, "BENCHMARKS.md")] + sorted(pages)


def _docstrings(path):
  with open(path) as f:
    tree = ast.parse(f.read())
  out = []
  for node in ast.walk(tree):
    if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
      doc = ast.get_docstring(node, clean=False)
      if doc:
        out.append(doc)
  return "\n".join(out)


def _texts():
  for path in _markdown_files():
    if os.path.exists(path):
      with open(path) as f:
        yield os.path.relpath(path, REPO), f.read()
  for path in sorted(glob.glob(os.path.join(REPO, "genjax", "**", "*.py"), recursive=True)
                     + glob.glob(os.path.join(REPO, "experiments", "*.py"))):
    yield os.path.relpath(path, REPO), _docstrings(path)


TEXTS = dict(_texts())


def _resolves(name):
  import genjax
  parts = name.split(".")
  for i in range(len(parts), 0, -1):
    module = ".".join(parts[:i])
    if module in genjax.MOVED:
      return f"{module} moved to {genjax.MOVED[module]}"
    try:
      with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        obj = importlib.import_module(module)
    except ImportError:
      continue
    try:
      for attr in parts[i:]:
        obj = getattr(obj, attr)
    except AttributeError:
      return f"{module} has no {'.'.join(parts[i:])}"
    return None
  return "no such module"


@pytest.mark.parametrize("source", sorted(TEXTS))
def test_genjax_names_resolve(source):
  bad = {}
  for name in set(_NAME.findall(TEXTS[source])):
    name = name.rstrip(".")
    if _FILE_SUFFIX.search(name) or _PLACEHOLDER.search(name):   # genjax.log; genjax.optim.X
      continue
    why = _resolves(name)
    if why:
      bad[name] = why
  assert not bad, f"{source}: {bad}"


@pytest.mark.parametrize("source", sorted(TEXTS))
def test_repository_paths_exist(source):
  missing = set()
  for path in set(_PATH.findall(TEXTS[source])):
    path = path.split(":")[0].rstrip(".")
    if _PLACEHOLDER.search(path):   # experiments/FILE.py
      continue
    if not os.path.exists(os.path.join(REPO, path)):
      missing.add(path)
  assert not missing, f"{source} names paths that do not exist: {sorted(missing)}"


def _config_keys():
  from genjax.config import defaults
  keys = set()

  def walk(prefix, node):
    for k, v in node.items():
      key = f"{prefix}{k}"
      keys.add(key)
      if hasattr(v, "items"):
        walk(key + ".", v)
  walk("", defaults.get_config())
  return keys


_PACKAGES = ("", "config.", "data.", "models.", "optim.", "train.", "run.", "sweeps.",
             "workdir.", "report.", "platform.")


def _names_code(token):
  """`parallel.place` in a docstring is genjax.train.parallel.place, not a config key."""
  return any(_resolves(f"genjax.{package}{token}") is None for package in _PACKAGES)


@pytest.mark.parametrize("source", sorted(TEXTS))
def test_config_keys_exist(source):
  from genjax.train import hparams
  keys = _config_keys()
  sections = {k for k in keys if "." not in k}
  bad = set()
  for key in set(_KEY.findall(TEXTS[source])):
    first = key.split(".")[0]
    if first not in sections or _FILE_SUFFIX.search(key) or any(c.isupper() for c in key):
      continue
    if key not in keys and hparams.lookup(key) is None and not _names_code(key):
      bad.add(key)
  assert not bad, f"{source} names config keys that do not exist: {sorted(bad)}"
