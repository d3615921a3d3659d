"""genjax.report.provenance: the block appended to every results table."""

import os
import subprocess
import sys

from genjax.report import provenance

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _git(cwd, *args):
  subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                 env={**os.environ, "GIT_AUTHOR_DATE": "2025-03-04T05:06:07",
                      "GIT_COMMITTER_DATE": "2025-03-04T05:06:07", "GIT_AUTHOR_NAME": "t",
                      "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                      "GIT_COMMITTER_EMAIL": "t@t"})


def test_git_commit_marks_a_dirty_tree(tmp_path):
  _git(tmp_path, "init", "-q")
  (tmp_path / "table.md").write_text("a\n")
  _git(tmp_path, "add", "table.md")
  _git(tmp_path, "commit", "-qm", "table")
  head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True,
                        text=True).stdout.strip()
  assert provenance.git_commit(str(tmp_path)) == head
  (tmp_path / "table.md").write_text("b\n")
  assert provenance.git_commit(str(tmp_path)) == head + "-dirty"
  # The table a script is writing is its output, not a change to what made it.
  (tmp_path / "results").mkdir()
  (tmp_path / "results" / "t.md").write_text("a\n")
  _git(tmp_path, "add", "results/t.md")
  _git(tmp_path, "commit", "-qam", "tables")
  head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True,
                        text=True).stdout.strip()
  (tmp_path / "results" / "t.md").write_text("b\n")
  assert provenance.git_commit(str(tmp_path), ("results",)) == head
  assert provenance.git_commit(str(tmp_path / "results"), ("results",)) == head
  assert provenance.git_commit(str(tmp_path)) == head + "-dirty"
  (tmp_path / "table.md").write_text("c\n")
  assert provenance.git_commit(str(tmp_path), ("results",)) == head + "-dirty"
  assert provenance.git_commit("/") is None


def test_from_git_names_the_commit_that_wrote_the_table_not_a_rename(tmp_path):
  _git(tmp_path, "init", "-q")
  (tmp_path / "t.md").write_text("numbers\n")
  _git(tmp_path, "add", "t.md")
  _git(tmp_path, "commit", "-qm", "table")
  wrote = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True,
                         text=True).stdout.strip()
  (tmp_path / "results").mkdir()
  _git(tmp_path, "mv", "t.md", "results/t.md")
  _git(tmp_path, "commit", "-qm", "move")
  info = provenance.from_git(str(tmp_path / "results" / "t.md"), "scripts/x")
  assert info["commit"] == wrote
  assert info["date"].startswith("2025-03-04")
  assert "not recorded" in info["cpu"]


def test_the_command_line_prints_the_block_with_what_it_measured():
  env = {**os.environ, "GENJAX_PROVENANCE_DATE": "2026-01-02 03:04 UTC"}
  out = subprocess.run([sys.executable, "-m", "genjax.report.provenance", "scripts/paper_tables x"],
                       capture_output=True, text=True, check=True, env=env, cwd=REPO).stdout
  import jax
  assert provenance.HEADING in out
  assert "| command | `scripts/paper_tables x` |" in out
  assert "| date | 2026-01-02 03:04 UTC |" in out
  assert f"jax {jax.__version__}" in out
  assert f"{len(os.sched_getaffinity(0))} cores" in out
  bad = subprocess.run([sys.executable, "-m", "genjax.report.provenance"], capture_output=True,
                       text=True, cwd=REPO)
  assert bad.returncode != 0 and "usage" in bad.stderr
