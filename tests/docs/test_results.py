"""Every results page says where it came from: a provenance block whose command is a script of
this repository (the one that rewrites the page)."""

import glob
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAGES = sorted(p for p in glob.glob(os.path.join(REPO, "docs", "pages", "results", "*.md"))
               if os.path.basename(p) != "index.md")


@pytest.mark.parametrize("page", [os.path.basename(p) for p in PAGES])
def test_results_page_has_provenance(page):
  with open(os.path.join(REPO, "docs", "pages", "results", page)) as f:
    text = f.read()
  assert "\n## Provenance\n" in text, f"{page}: no provenance block"
  block = text.split("\n## Provenance\n", 1)[1]
  command = re.search(r"\| command \| `([^`]+)` \|", block).group(1)
  script = command.split()[0]
  assert os.path.isfile(os.path.join(REPO, script)), f"{page}: {script} does not exist"
  with open(os.path.join(REPO, script)) as f:
    assert f"docs/pages/results/{page}" in f.read(), f"{page}: {script} does not write it"
  commit = re.search(r"\| commit \| `([0-9a-f]{40})(-dirty)?` \|", block)
  assert commit, f"{page}: no commit in its provenance"
