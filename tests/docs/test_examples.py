"""Every ```python block of README.md and of the docs site runs (tests/docs/examples.py), and so
does every bash block marked `<!-- runnable -->`: an example a reader copies cannot rot.

Running the pages trains models (minutes in all): `slow`. The fast tier compiles every block."""

import glob
import os

import pytest

import examples

PAGES = ["README.md"] + sorted(
    os.path.relpath(p, examples.REPO)
    for p in glob.glob(os.path.join(examples.REPO, "docs", "pages", "**", "*.md"), recursive=True))


def _executable(page):
  return examples.runnable(examples.parse(os.path.join(examples.REPO, page)))


@pytest.mark.parametrize("page", PAGES)
def test_python_blocks_compile(page):
  """Fast, on every page: each python block is valid Python and each marker is well formed."""
  for block in examples.parse(os.path.join(examples.REPO, page)):
    if block.marker == "file":
      assert block.argument and "/" not in block.argument, f"{page}:{block.line}: file: NAME"
    if block.lang in ("python", "py") and block.marker != "file":
      compile(block.code, f"{page}:{block.line}", "exec")


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in PAGES if any(s["kind"] != "file" for s in _executable(p))])
def test_page_examples_run(page, tmp_path):
  result = examples.run_page(os.path.join(examples.REPO, page), str(tmp_path))
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
