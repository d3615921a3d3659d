"""Imports flow one way: no cycle among genjax's modules (imports inside functions count too),
and the layers of README's Layout hold (main -> api -> drivers -> train -> techniques)."""

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


LAYERS = [  # a module may import only from its own layer's later modules or lower layers
    ["genjax.main"],
    ["genjax.api"],
    ["genjax.sweep_driver", "genjax.nested_cv", "genjax.sweep_jobs", "genjax.sweep_launch",
     "genjax.sweep_run", "genjax.sweep_select", "genjax.kfold", "genjax.holdout",
     "genjax.member_memory"],
    ["genjax.experiment", "genjax.defaults", "genjax.results", "genjax.workdir"],
    ["genjax.train.fit", "genjax.train.callbacks", "genjax.train.program",
     "genjax.train.epoch_loop"],
]


def test_layers_import_downwards_only():
  edges = graph()
  rank = {m: i for i, layer in enumerate(LAYERS) for m in layer}
  for module, imported in edges.items():
    for other in imported:
      if module in rank and other in rank:
        assert rank[other] >= rank[module], f"{module} imports {other}, a layer above it"
  techniques = [m for m in edges if m not in rank and m not in ("genjax", "genjax.__main__")]
  for module in techniques:   # techniques never import drivers, the API or the CLI
    upper = {m for m in edges[module] if m in rank and rank[m] <= 3}
    assert not upper, f"{module} imports {sorted(upper)}"
