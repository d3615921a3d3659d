"""Where a published number came from: `python -m genjax.report.provenance COMMAND`.

Prints a Markdown block, `## Provenance`, that the scripts writing docs/pages/results/*.md append
to each table: the command that makes it, the commit (`-dirty` when tracked files other than the tables differed), the
date (UTC), the CPU model and core count, the accelerator, and the versions of genjax, jax,
jaxlib, flax and optax. `GENJAX_PROVENANCE_DATE` fixes the date (for tests)."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
import sys

PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint")
HEADING = "## Provenance"


# What the scripts write (the tables themselves): changed there, the tree is not dirty.
OUTPUTS = ("docs/pages/results",)


def git_commit(path: str, outputs: tuple[str, ...] = ()) -> str | None:
  """HEAD of the repository holding `path`, `-dirty` if tracked files differ outside `outputs`
  (paths from the repository's root); None outside git."""
  try:
    out = subprocess.run(["git", "-C", path, "rev-parse", "HEAD"], capture_output=True,
                         text=True, timeout=5)
    dirty = subprocess.run(["git", "-C", path, "status", "--porcelain", "--untracked-files=no",
                            "--", ":/", *(f":(top,exclude){o}" for o in outputs)],
                           capture_output=True, text=True, timeout=5)
  except (OSError, subprocess.SubprocessError):
    return None
  if out.returncode != 0:
    return None
  return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def cpu_model() -> str:
  """The CPU's model name (/proc/cpuinfo on Linux, else the platform's) and its core count."""
  name = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          name = line.split(":", 1)[1].strip()
          break
  except OSError:
    pass
  cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  return f"{name}, {cores} cores"


def collect(command: str) -> dict:
  """What made a result, measured now in this process."""
  import jax  # pylint: disable=import-outside-toplevel
  from genjax.version import __version__  # pylint: disable=import-outside-toplevel
  versions = {"genjax": __version__}
  for name in PACKAGES:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      pass
  date = os.environ.get("GENJAX_PROVENANCE_DATE") or (
      datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
  return {"command": command,
          "commit": git_commit(os.path.dirname(os.path.abspath(__file__)), OUTPUTS),
          "date": date, "cpu": cpu_model(), "backend": jax.default_backend(),
          "python": sys.version.split()[0], "versions": versions}


def markdown(info: dict) -> str:
  """`info` as the block appended to a results page."""
  versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
  rows = [("command", f"`{info['command']}`"), ("commit", f"`{info['commit'] or 'not in git'}`"),
          ("date", info["date"]), ("CPU", info["cpu"]), ("backend", info["backend"]),
          ("versions", f"Python {info['python']}, {versions}" if versions else info["python"])]
  lines = ["", HEADING, "", "| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
  return "\n".join(lines) + "\n"


def from_git(path: str, command: str) -> dict:
  """For a table made before provenance was recorded: the commit that last changed `path` and
  its date, from git history; CPU and versions were not recorded and are said to be unknown."""
  out = subprocess.run(["git", "log", "--follow", "--diff-filter=AM", "-1", "--format=%H %ad", "--date=format:%Y-%m-%d",
                        "--", path], capture_output=True, text=True, check=True,
                       cwd=os.path.dirname(os.path.abspath(path)) or ".")
  commit, date = out.stdout.split()
  unknown = "not recorded (the table predates recorded provenance; rerun its command)"
  return {"command": command, "commit": commit, "date": f"{date} (the commit that wrote it)",
          "cpu": unknown, "backend": "cpu", "python": unknown, "versions": {}}


if __name__ == "__main__":
  args = sys.argv[1:]
  if len(args) == 3 and args[0] == "--from-git":
    sys.stdout.write(markdown(from_git(args[1], args[2])))
  elif len(args) == 1:
    sys.stdout.write(markdown(collect(args[0])))
  else:
    sys.exit("usage: python -m genjax.report.provenance 'COMMAND THAT MADE THE TABLE'\n"
             "       python -m genjax.report.provenance --from-git TABLE.md 'COMMAND'")
