"""Every number README and the docs pages quote is read from a file a script wrote: the quick start's from
docs/pages/results/quickstart.json (scripts/paper_tables quickstart), any other measured number
from a results page or BENCHMARKS.md."""

import glob
import json
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _read(path):
  with open(os.path.join(REPO, path)) as f:
    return f.read()


def _prose(markdown):
  """README without its code blocks, inline code and links' targets."""
  text = re.sub(r"```.*?```", "", markdown, flags=re.S)
  text = re.sub(r"`[^`]*`", "", text)
  return re.sub(r"https?://\S+", "", text)


def test_quick_start_numbers_are_the_recorded_ones():
  q = json.loads(_read("docs/pages/results/quickstart.json"))
  readme = " ".join(_read("README.md").split())
  seeds = list(q["seeds_test_accuracy"].values())
  quotes = [
      f"{100 * q['test_accuracy']:.1f}% test accuracy",
      f"selected epoch {q['selected_epoch']}",
      f"({q['stop_reason']}) after {q['epochs_run']} epochs",
      f"{q['cold_process_s']} s with a cold compilation cache",
      f"{q['warm_process_s']} s warm",
      f"{100 * min(seeds):.1f}–{100 * max(seeds):.1f}% test",
      f"mean {100 * q['seeds_test_accuracy_mean']:.1f}% ± {100 * q['seeds_test_accuracy_std']:.1f}",
  ]
  missing = [quote for quote in quotes if quote not in readme]
  assert not missing, f"README does not quote quickstart.json: {missing} (scripts/paper_tables quickstart)"


def _prose_pages():
  """README and every docs page that quotes numbers (not the results pages, which are the
  sources, nor the generated reference)."""
  pages = ["README.md"] + sorted(
      os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "docs", "pages", "**", "*.md"),
                                                  recursive=True)
      if os.sep + "results" + os.sep not in p and os.sep + "reference" + os.sep not in p)
  return pages


@pytest.mark.parametrize("page", _prose_pages())
def test_every_measured_number_comes_from_a_results_file(page):
  sources = "\n".join(_read(os.path.relpath(p, REPO)) for p in
                      glob.glob(os.path.join(REPO, "docs", "pages", "results", "**", "*.*"),
                                recursive=True)
                      + [os.path.join(REPO, "BENCHMARKS.md")] if not p.endswith(".png"))
  prose = _prose(_read(page))
  prose = re.sub(r"Python \d+\.\d+", "", prose)
  numbers = set(re.findall(r"\d+\.\d+", prose)) | set(re.findall(r"(\d+)\s?(?:%|×)", prose))
  unsourced = sorted(n for n in numbers if n not in sources)
  assert not unsourced, f"{page} quotes numbers no results file holds: {unsourced}"
