"""The docs site builds with `mkdocs build --strict` (a broken link, a page missing from the
navigation, a docstring mkdocstrings cannot render: each fails the build)."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_mkdocs_build_strict(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", "docs/mkdocs.yml",
       "-d", str(tmp_path / "site")], cwd=REPO, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-6000:]
  assert (tmp_path / "site" / "index.html").exists()
