"""Runs the code blocks of a Markdown page, in order, as a reader following it would.

    python tests/docs/examples.py README.md docs/pages/how-to/add-a-penalty.md

A page's blocks run in one fresh Python process in a scratch directory (holding a link to the
repository's `experiments/`), sharing one namespace like a notebook's cells:

- every ```python block runs;
- a block right after `<!-- file: NAME -->` is not run but written to NAME (a config file, a
  user's penalty module) for the blocks after it;
- a ```bash block runs only right after `<!-- runnable -->`, or `<!-- runnable: ARGS -->`,
  which appends ARGS (e.g. `--config.num_epochs=2`) to each `genjax train|sweep` command in it.

A failure names the page and the block's line; tracebacks carry the page's own line numbers.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_FENCE = re.compile(r"^(\s*)(`{3,})\s*([\w+-]*)")
_MARKER = re.compile(r"^\s*<!--\s*(file|runnable)\s*(?::\s*(.*?))?\s*-->\s*$")


@dataclasses.dataclass
class Block:
  page: str
  line: int          # 1-based line of the block's first code line
  lang: str
  code: str
  marker: str | None = None     # "file" | "runnable" | None
  argument: str | None = None   # the marker's value


def parse(path: str) -> list[Block]:
  """The fenced code blocks of a Markdown file, with the marker comment just before each."""
  with open(path) as f:
    lines = f.read().splitlines()
  blocks, i, page = [], 0, os.path.relpath(path, REPO)
  while i < len(lines):
    m = _FENCE.match(lines[i])
    if not m:
      i += 1
      continue
    indent, fence, lang = m.group(1), m.group(2), m.group(3).lower()
    j = i + 1
    while j < len(lines) and not lines[j].strip().startswith(fence):
      j += 1
    body = [l[len(indent):] if l.startswith(indent) else l for l in lines[i + 1:j]]
    k = i - 1
    while k >= 0 and not lines[k].strip():
      k -= 1
    marker = _MARKER.match(lines[k]) if k >= 0 else None
    blocks.append(Block(page, i + 2, lang, "\n".join(body) + "\n",
                        marker.group(1) if marker else None,
                        marker.group(2) if marker else None))
    i = j + 1
  return blocks


def with_args(code: str, args: str) -> str:
  """`code` with `args` appended to every `genjax train` / `genjax sweep` command (continuation
  lines joined; a trailing `# comment` kept after the arguments)."""
  out = []
  for line in code.replace("\\\n", " ").splitlines():
    if re.match(r"\s*genjax\s+(train|sweep)\b", line):
      command, sep, comment = line.partition("  #")
      line = f"{command.rstrip()} {args}" + (f"  #{comment}" if sep else "")
    out.append(line)
  return "\n".join(out) + "\n"


def runnable(blocks: list[Block]) -> list[dict]:
  """What the page's driver executes, in order."""
  steps = []
  for b in blocks:
    if b.marker == "file":
      steps.append({"kind": "file", "name": b.argument, "code": b.code, "where": f"{b.page}:{b.line}"})
    elif b.lang in ("python", "py"):
      steps.append({"kind": "python", "code": b.code, "line": b.line, "page": b.page,
                    "where": f"{b.page}:{b.line}"})
    elif b.lang in ("bash", "sh", "shell") and b.marker == "runnable":
      code = with_args(b.code, b.argument) if b.argument else b.code
      steps.append({"kind": "bash", "code": code, "where": f"{b.page}:{b.line}"})
  return steps


_DRIVER = r'''
import json, subprocess, sys, traceback
steps = json.load(open(sys.argv[1]))
ns = {"__name__": "__main__"}
for step in steps:
  try:
    if step["kind"] == "file":
      with open(step["name"], "w") as f:
        f.write(step["code"])
    elif step["kind"] == "python":
      code = "\n" * (step["line"] - 1) + step["code"]
      exec(compile(code, step["page"], "exec"), ns)
    else:
      subprocess.run(["bash", "-euo", "pipefail", "-c", step["code"]], check=True)
  except BaseException:
    traceback.print_exc()
    print(f"docs example failed: the block at {step['where']}", file=sys.stderr)
    sys.exit(1)
'''


def run_page(path: str, scratch: str | None = None, timeout: float = 1500) -> subprocess.CompletedProcess:
  """Runs the page's blocks in `scratch` (a new temporary directory if None)."""
  steps = runnable(parse(path))
  scratch = scratch or tempfile.mkdtemp(prefix="genjax-docs-")
  link = os.path.join(scratch, "experiments")
  if not os.path.exists(link):
    os.symlink(os.path.join(REPO, "experiments"), link)
  with open(os.path.join(scratch, ".steps.json"), "w") as f:
    json.dump(steps, f)
  with open(os.path.join(scratch, ".driver.py"), "w") as f:
    f.write(_DRIVER)
  env = dict(os.environ)
  env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
  env.setdefault("MPLBACKEND", "Agg")
  return subprocess.run([sys.executable, ".driver.py", ".steps.json"], cwd=scratch, env=env,
                        capture_output=True, text=True, timeout=timeout)


if __name__ == "__main__":
  status = 0
  for page in sys.argv[1:]:
    result = run_page(page)
    print(f"{page}: {'ok' if result.returncode == 0 else 'FAILED'}")
    if result.returncode:
      print(result.stdout[-4000:], result.stderr[-8000:], sep="\n")
      status = 1
  sys.exit(status)
