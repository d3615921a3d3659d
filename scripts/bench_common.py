"""What the `scripts/bench` runners share: running genjax as a timed subprocess, reading
shrinking variables, naming the CPU."""

import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def env_int(name: str) -> int | None:
  """The integer in environment variable `name`, or None when unset or empty."""
  value = os.environ.get(name, "").strip()
  return int(value) if value else None


def children_cpu() -> float:
  """CPU seconds (user + system) of the finished child processes so far."""
  usage = resource.getrusage(resource.RUSAGE_CHILDREN)
  return usage.ru_utime + usage.ru_stime


def genjax(args: list[str], log: Path, who: str) -> tuple[float, float]:
  """Runs `genjax ARGS` from the repository root, output to `log`: (process wall s, CPU
  user+sys s). A failure ends the benchmark `who` with the log's tail."""
  cpu0 = children_cpu()
  t0 = time.perf_counter()
  with open(log, "w") as out:
    proc = subprocess.run([str(ROOT / ".venv/bin/genjax"), *args], cwd=ROOT, stdout=out,
                          stderr=subprocess.STDOUT, text=True)
  wall = time.perf_counter() - t0
  if proc.returncode:
    sys.exit(f"{who}: genjax {' '.join(args)} failed (exit status {proc.returncode}):"
             f"\n{log.read_text()[-3000:]}")
  return wall, children_cpu() - cpu0


def cpu_model() -> str:
  """The CPU's model name (/proc/cpuinfo), else what platform knows."""
  try:
    return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name"))
  except (OSError, StopIteration):
    return platform.processor() or platform.machine()
