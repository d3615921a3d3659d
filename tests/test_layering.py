"""Imports flow one way: no cycle among genjax's modules (imports inside functions count too),
and the packages' layers hold (main -> api -> sweeps -> run -> config -> train -> data, models,
optim -> workdir -> report -> platform -> registry -> errors); few top-level modules, no long
function."""

import ast
import os

import genjax

ROOT = os.path.dirname(genjax.__file__)


def _modules() -> dict[str, str]:
  out = {}
  for folder, _, files in os.walk(ROOT):
    for name in files:
      if name.endswith(".py"):
        path = os.path.join(folder, name)
        rel = os.path.relpath(path, os.path.dirname(ROOT))[:-3].replace(os.sep, ".")
        out[rel.removesuffix(".__init__")] = path
  return out


def _imports(path: str, module: str, known: set[str]) -> set[str]:
  """genjax modules that `module` imports anywhere in its file (the package itself aside)."""
  tree = ast.parse(open(path).read())
  package = module if path.endswith("__init__.py") else module.rsplit(".", 1)[0]
  found = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] +
                        ([base] if base else []))
      # `from package import submodule` needs the submodule (the package is being imported
      # already); `from module import name` needs the module.
      subs = [f"{base}.{a.name}" for a in node.names]
      names = subs if all(n in known for n in subs) else [base] + [n for n in subs if n in known]
    else:
      continue
    for name in names:
      while name and name not in known:
        name = name.rpartition(".")[0]
      if name and name != module:
        found.add(name)
  return found


def graph() -> dict[str, set[str]]:
  """module -> the genjax modules it imports (`import genjax` is an edge to the package, whose
  __init__ imports the API lazily: a module below the API must not import the package)."""
  modules = _modules()
  return {m: _imports(p, m, set(modules)) for m, p in modules.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
  """One import cycle as [a, b, ..., a], or None."""
  state: dict[str, int] = {}
  stack: list[str] = []

  def visit(node):
    state[node] = 1
    stack.append(node)
    for nxt in sorted(edges.get(node, ())):
      if state.get(nxt) == 1:
        return stack[stack.index(nxt):] + [nxt]
      if nxt not in state:
        cycle = visit(nxt)
        if cycle:
          return cycle
    stack.pop()
    state[node] = 2
    return None

  for node in sorted(edges):
    if node not in state:
      cycle = visit(node)
      if cycle:
        return cycle
  return None


def test_the_cycle_finder_finds_a_cycle():
  assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
  assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_genjax_has_no_import_cycle():
  cycle = find_cycle(graph())
  assert cycle is None, " -> ".join(cycle)


# Packages from the top down: a module may import modules of its own package, of a package in
# its own layer, or of a lower layer; never upwards. (config.defaults assembles every section's
# defaults and checks, so config sits above the engine; workdir, report and platform serve
# every layer above them.)
LAYERS = [
    ["genjax.main", "genjax.__main__"],
    ["genjax.api", "genjax"],
    ["genjax.sweeps"],
    ["genjax.run"],
    ["genjax.config"],
    ["genjax.train"],
    ["genjax.data", "genjax.models", "genjax.optim"],
    ["genjax.workdir"],
    ["genjax.report"],
    ["genjax.platform"],
    ["genjax.registry"],
    ["genjax.errors", "genjax.version"],
]
TOP_LEVEL_MODULES = 8   # files directly in genjax/ (the public API, the CLI and the basics)
LONGEST_FUNCTION = 80   # lines


def package(module: str) -> str:
  """'genjax.sweeps.group' -> 'genjax.sweeps'; a top-level module is its own package."""
  return ".".join(module.split(".")[:2])


def test_layers_import_downwards_only():
  rank = {p: i for i, layer in enumerate(LAYERS) for p in layer}
  edges = graph()
  for module in edges:
    assert package(module) in rank, f"{module}: its package is in no layer of LAYERS"
  for module, imported in edges.items():
    for other in imported:
      a, b = package(module), package(other)
      assert a == b or rank[b] >= rank[a], f"{module} imports {other}, a layer above it"


def test_the_layer_check_finds_an_upward_import():
  rank = {p: i for i, layer in enumerate(LAYERS) for p in layer}
  assert rank[package("genjax.train.program")] > rank[package("genjax.sweeps.group")]


def test_few_modules_sit_directly_in_genjax():
  top = sorted(f for f in os.listdir(ROOT) if f.endswith(".py"))
  assert len(top) <= TOP_LEVEL_MODULES, top


def test_no_function_is_longer_than_80_lines():
  long = []
  for module, path in _modules().items():
    for node in ast.walk(ast.parse(open(path).read())):
      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        lines = node.end_lineno - node.lineno + 1
        if lines > LONGEST_FUNCTION:
          long.append(f"{module}.{node.name}: {lines} lines")
  assert not long, long
