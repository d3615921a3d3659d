"""The generated reference pages (docs/pages/reference/) are what scripts/gen_reference.py makes
of the code now, and the output tables they render (`genjax.workdir.outputs`) hold for the
code and for real runs: every name the code writes is described, every file a run leaves and
every key of its results.json / sweep.json is documented."""

import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REFERENCE = os.path.join(REPO, "docs", "pages", "reference")
FIX = "regenerate it: scripts/docs reference (.venv/bin/python scripts/gen_reference.py)"


def _generator():
  spec = importlib.util.spec_from_file_location(
      "gen_reference", os.path.join(REPO, "scripts", "gen_reference.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_reference_pages_are_current(tmp_path):
  """Regenerated in a fresh process (built-in registrations only; a random hash seed, so
  that an order depending on one would show), byte for byte."""
  gen = _generator()
  result = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "gen_reference.py"),
                           "--out", str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0, result.stderr[-4000:]
  stale = []
  for name in gen.PAGES:
    fresh = (tmp_path / name).read_text(encoding="utf-8")
    assert fresh.startswith(gen.NOTICE)
    path = os.path.join(REFERENCE, name)
    committed = open(path, encoding="utf-8").read() if os.path.exists(path) else None
    if committed != fresh:
      import difflib
      diff = "".join(list(difflib.unified_diff(
          (committed or "").splitlines(True), fresh.splitlines(True),
          f"docs/pages/reference/{name}", "generated", n=0))[:40])
      stale.append(f"docs/pages/reference/{name} is stale; {FIX}\n{diff}")
  assert not stale, "\n".join(stale)


def test_closed_sets_are_what_validation_refuses_outside():
  """Every key config.md lists with allowed values is checked against them by `validate`."""
  from genjax.config import defaults
  from genjax.errors import ConfigError
  gen = _generator()
  for key in gen.closed_sets():
    config = defaults.get_config()
    *path, leaf = key.split(".")
    node = config
    for part in path:
      node = node[part]
    node[leaf] = 7 if isinstance(node[leaf], int) else "no_such_value"
    with pytest.raises(ConfigError):
      defaults.validate(config)


def _code_names() -> set[str]:
  """Every top-level name the code says a run may write (checkpoint.subdir at its default)."""
  from genjax.config import defaults
  from genjax.run import driver
  from genjax.sweeps import cluster, group, nested, pruning, select
  from genjax.workdir import identity
  config = defaults.get_config()
  names = set(identity.RESERVED) | set(group.OUTPUTS) | set(nested.OUTPUTS) | set(pruning.OUTPUTS)
  names |= set(cluster.OUTPUTS) | set(select.OUTPUTS) | set(driver.outputs(config))
  config.cv.method = "kfold"
  names |= set(driver.outputs(config))
  subdir = config.checkpoint.subdir
  names |= {subdir + "_refit", subdir + "_nested_refit", "groupNN", "groupNN.config",
            "groupNN.log", "metrics_outerN.jsonl", subdir + "_outerN"}   # made from counters
  return names


def _documented(name: str) -> bool:
  from genjax.workdir import outputs
  name = re.sub(r"^group\d+", "groupNN", name)
  name = re.sub(r"_outer\d+", "_outerN", name)
  return name in {o.name.rstrip("/") for o in outputs.FILES}


def test_output_table_matches_the_code():
  from genjax.workdir import outputs
  names = _code_names()
  assert not [n for n in names if not _documented(n)], "names the code writes, undescribed"
  described = {o.name.rstrip("/") for o in outputs.FILES}
  assert described <= names, f"described, not written by the code: {described - names}"
  assert all(set(o.writers) <= set(outputs.WRITERS) for o in outputs.FILES)


def _paths(value, prefix=""):
  """jq paths of every key of a JSON value: `[]` for a list of objects, a key that is no
  identifier quoted (`."model.dropout"`)."""
  if isinstance(value, dict):
    for key, sub in value.items():
      path = f"{prefix}.{key}" if re.fullmatch(r"\w+", key) else f'{prefix}."{key}"'
      if isinstance(sub, list) and sub and all(isinstance(x, dict) for x in sub):
        yield path + "[]"
        for x in sub:
          yield from _paths(x, path + "[]")
      else:
        yield path
        yield from _paths(sub, path)


def _pattern(path: str) -> re.Pattern:
  """A documented path as a regex: `<name>` is any one key (a quoted one too)."""
  return re.compile(re.sub(r"<\w+>", r'(?:[^."\\[\\]]+|"[^"]*")', re.escape(path)) + "$")


def _check_schema(name: str, record: dict, keys, present: set[str]) -> None:
  """Every key of `record` is documented in `keys`; every documented key without a
  placeholder whose `when` is in `present` is there."""
  found = set(_paths(record))
  patterns = [(_pattern(k.path), k) for k in keys]
  undocumented = sorted(p for p in found if not any(rx.match(p) for rx, _ in patterns))
  assert not undocumented, f"{name}: keys not in genjax.workdir.outputs: {undocumented}"
  missing = sorted(k.path for k in keys if "<" not in k.path and k.when in present
                   and k.path not in found)
  assert not missing, f"{name}: documented keys it lacks: {missing}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """A hold-out run, a cross-validated run with a refit, and a sweep of two structural
  groups × two seeds × two dropout rates under 2-fold CV with a refit (2 epochs each)."""
  import genjax
  root = tmp_path_factory.mktemp("runs")
  holdout = genjax.load_config(None, overrides=["num_epochs=2"])
  genjax.fit(holdout, str(root / "holdout"))
  cv = genjax.load_config(None, overrides=["num_epochs=2", "cv.method=kfold", "cv.folds=2",
                                           "cv.refit=True"])
  genjax.fit(cv, str(root / "cv"))
  points = [{"model.widths": w, "model.dropout": d, "seed": s}
            for w in ((32,), (64,)) for d in (0.0, 0.2) for s in (0, 1)]
  genjax.sweep(cv, points, str(root / "sweep"))
  return root


@pytest.mark.slow
def test_every_file_a_run_writes_is_documented(runs):
  workdirs = [runs / "holdout", runs / "cv", runs / "sweep"]
  workdirs += sorted(p for p in (runs / "sweep").iterdir() if p.is_dir()
                     and re.fullmatch(r"group\d+", p.name))
  assert len(workdirs) == 5
  for workdir in workdirs:
    listed = json.loads((workdir / "manifest.json").read_text())["outputs"]
    names = set(os.listdir(workdir)) | set(listed)
    undocumented = sorted(n for n in names if not _documented(n))
    assert not undocumented, f"{workdir.name}: undocumented outputs {undocumented}"


@pytest.mark.slow
def test_results_json_keys_are_documented(runs):
  from genjax.workdir import outputs as o
  _check_schema("hold-out results.json", json.loads((runs / "holdout" / "results.json")
                                                   .read_text()), o.RESULTS_JSON, {"", o.HOLDOUT})
  _check_schema("cross-validation results.json", json.loads((runs / "cv" / "results.json")
                                                           .read_text()),
                o.RESULTS_JSON, {"", o.CV, o.REFIT})


@pytest.mark.slow
def test_sweep_json_keys_are_documented(runs):
  from genjax.workdir import outputs as o
  sweep = runs / "sweep"
  _check_schema("sweep.json", json.loads((sweep / "sweep.json").read_text()), o.SWEEP_JSON,
                {"", o.SELECTED, o.GROUPS, o.REFIT, o.NOT_BASELINE})
  _check_schema("a group's sweep.json", json.loads((sweep / "group00" / "sweep.json")
                                                   .read_text()),
                o.SWEEP_JSON, {"", o.ONE_GROUP, o.TEST_SHOWN, o.NOT_BASELINE, o.SEEDS})
  selected = json.loads((sweep / "selected.json").read_text())
  assert selected == json.loads((sweep / "sweep.json").read_text())["selected"]
