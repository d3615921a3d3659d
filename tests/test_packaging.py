"""Packaging: one version everywhere, a valid citation, a changelog that names the version, the
Apache-2.0 license, and a distribution name that is not PyPI's other `genjax`.

`genjax/version.py` holds the version; setup.cfg reads it (`attr:`), and the installed
metadata, CITATION.cff and CHANGELOG.md must agree with it. After changing the version,
reinstall (`pip install -e .`, or `scripts/setup`) so the installed metadata follows.
"""

import configparser
import hashlib
import importlib.metadata
import os
import re
import tomllib

import yaml

import genjax
from genjax import version

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DISTRIBUTION = "genjax-generalize"
VERSION_ATTR = "attr: genjax.version.__version__"
# SHA-256 of the Apache License 2.0 text (https://www.apache.org/licenses/LICENSE-2.0.txt, whose
# file's own SHA-256 is cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30) with its
# whitespace collapsed to single spaces: the words must be the license's, the layout may vary.
APACHE_2_0_WORDS_SHA256 = "0ffddef9e48f8a09aed5caf2d44f7ba1c1be2d9b8e0a6f693b1635b2d5566645"


def _read(name: str) -> str:
  with open(os.path.join(ROOT, name), encoding="utf-8") as f:
    return f.read()


def _setup_cfg() -> configparser.ConfigParser:
  cfg = configparser.ConfigParser(interpolation=None)
  cfg.read(os.path.join(ROOT, "setup.cfg"), encoding="utf-8")
  return cfg


def _released_versions(changelog: str) -> list[tuple[str, str]]:
  """(version, date) of each released section, newest first: `## 0.1.0 - 2026-12-06` or
  Keep a Changelog's `## [0.1.0] - 2026-12-06` (Unreleased is not a version)."""
  return re.findall(r"^## \[?(\d+\.\d+\.\d+[^\]\s]*)\]? - (\d{4}-\d{2}-\d{2})\s*$", changelog,
                    flags=re.MULTILINE)


def test_the_version_is_a_version_string():
  assert genjax.__version__ == version.__version__
  assert re.fullmatch(r"\d+\.\d+\.\d+", version.__version__), version.__version__


def test_installed_metadata_has_the_package_version():
  installed = importlib.metadata.version(DISTRIBUTION)
  assert installed == genjax.__version__, (
      f"installed {DISTRIBUTION} {installed} but genjax/version.py says {genjax.__version__}: "
      "reinstall (pip install -e .)")


def test_setup_cfg_reads_the_version_from_genjax_version_and_holds_no_second_literal():
  cfg = _setup_cfg()
  assert cfg["metadata"]["version"].strip() == VERSION_ATTR
  # No other metadata field spells the version out (dependency pins elsewhere may look alike).
  literal = re.compile(r"(?<![\w.])" + re.escape(genjax.__version__) + r"(?![\w.])")
  for key, value in cfg["metadata"].items():
    assert key == "version" or not literal.search(value), f"setup.cfg [metadata] {key} = {value}"
  pyproject = tomllib.loads(_read("pyproject.toml"))
  assert "version" not in pyproject.get("project", {}), "pyproject.toml sets a second version"


def test_the_distribution_is_not_named_genjax():
  # The PyPI project "genjax" is another package: ours must never publish or install as it.
  name = _setup_cfg()["metadata"]["name"].strip()
  assert name == DISTRIBUTION
  assert re.sub(r"[-_.]+", "-", name).lower() != "genjax"
  meta = importlib.metadata.metadata(DISTRIBUTION)
  assert meta["Name"] == DISTRIBUTION
  assert DISTRIBUTION in importlib.metadata.packages_distributions().get("genjax", [])


def test_citation_cff_parses_and_matches_the_version_and_license():
  cff = yaml.safe_load(_read("CITATION.cff"))
  assert cff["cff-version"] == "1.2.0"
  for key in ("message", "title", "version", "date-released", "license", "authors", "abstract",
              "keywords"):
    assert cff.get(key), f"CITATION.cff lacks {key}"
  assert str(cff["version"]) == genjax.__version__
  assert cff["license"] == "Apache-2.0"
  assert all(a.get("name") or a.get("family-names") for a in cff["authors"])


def test_changelog_latest_release_is_the_package_version():
  changelog = _read("CHANGELOG.md")
  released = _released_versions(changelog)
  assert released, "CHANGELOG.md names no released version (## X.Y.Z - YYYY-MM-DD)"
  latest, date = released[0]
  assert latest == genjax.__version__
  assert len({v for v, _ in released}) == len(released), "a version is listed twice"
  # Unreleased, when present, comes first.
  first = re.search(r"^## .*$", changelog, flags=re.MULTILINE).group(0)
  assert "Unreleased" in first or latest in first
  # The citation's release date is that version's.
  cff = yaml.safe_load(_read("CITATION.cff"))
  assert str(cff["date-released"]) == date


def test_license_is_the_apache_2_0_text():
  text = _read("LICENSE")
  for phrase in ("Apache License", "Version 2.0, January 2004",
                 "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
                 "END OF TERMS AND CONDITIONS",
                 'Licensed under the Apache License, Version 2.0 (the "License");'):
    assert phrase in text, phrase
  words = " ".join(text.split())
  assert hashlib.sha256(words.encode()).hexdigest() == APACHE_2_0_WORDS_SHA256
  assert _setup_cfg()["metadata"]["license"].strip() == "Apache-2.0"


def _test_imports() -> dict[str, str]:
  """{top-level module: a test file importing it} over tests/ (module level or inside tests)."""
  import ast
  found = {}
  for dirpath, _, files in os.walk(os.path.join(ROOT, "tests")):
    for name in files:
      if not name.endswith(".py"):
        continue
      path = os.path.join(dirpath, name)
      for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.Import):
          mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
          mods = [node.module]
        else:
          continue
        for mod in mods:
          found.setdefault(mod.split(".")[0], os.path.relpath(path, ROOT))
  return found


def test_every_oracle_a_test_imports_is_installed_and_none_is_skipped():
  """An independent check that cannot run is no check: every module a test imports resolves
  here (the test extra installs the oracles), and no test skips on a missing module."""
  import importlib.util
  local = {"genjax", "cube_penalty", "my_penalties"} | {   # genjax, files tests write, tests/
      n[:-3] for _, _, files in os.walk(os.path.join(ROOT, "tests")) for n in files
      if n.endswith(".py")}
  missing = {m: f for m, f in _test_imports().items()
             if m not in local and importlib.util.find_spec(m) is None}
  assert not missing, missing
  for dirpath, _, files in os.walk(os.path.join(ROOT, "tests")):
    for name in files:
      if name.endswith(".py"):
        assert "importorskip" not in open(os.path.join(dirpath, name), encoding="utf-8").read() \
            or name == "test_packaging.py", name
