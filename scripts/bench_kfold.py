"""Runs the 5-fold benchmark in every contender and writes the results into BENCHMARKS.md.

Usually run through `scripts/bench kfold`, which makes the two venvs first:
  .venv          genjax:  scripts/bench_genjax_kfold.py --mode=vmapped|sequential
                 floor:   scripts/peers/jax_floor.py (the leanest hand-written JAX program)
  .bench/venv    peers:   scripts/peers/{keras,torch,sklearn}_kfold.py

The task is the same everywhere (see scripts/peers/common.py): MNIST-1D, 5-fold stratified
K-fold, MLP 40-100-100-10 (residual, dropout 0.2), AdamW 1e-3 / weight decay 1e-4, batch 100,
20 epochs, validation after every epoch.

Each contender runs as a fresh subprocess (imports and compilation count in its process time)
and prints, last, one JSON line:
  {"name": ..., "wall_s": <data ready -> all folds trained and validated>,
   "mean_val_accuracy": ..., "fold_val_accuracy": [...], "epochs": 20, "folds": 5}
Two times are recorded per contender: `wall_s` as the contender reports it (training time) and
the subprocess's wall time from start to exit (process time). With --repeat N each is the
minimum over N rounds (rounds interleave the contenders).

The `## K-fold (scripts/bench kfold)` section of BENCHMARKS.md is replaced (other sections are
kept) after a full, successful run; a run with --only prints the section and writes nothing
unless --write is given. The raw results also go to .bench/kfold-last.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## K-fold (scripts/bench kfold)"
EPOCHS, FOLDS = 20, 5
# Target ratios from the issue: genjax (vmapped) time / a peer's time.
TARGET_FASTEST_PEER = 0.4
TARGET_KERAS = 0.15


@dataclasses.dataclass
class Contender:
  key: str  # for --only
  label: str  # in the table
  venv: str  # "genjax" or "peer"
  argv: list[str]  # after the python executable
  peer: bool  # compared against genjax in the target ratios


def contenders(genjax_script: str, torch_threads: int = 2) -> list[Contender]:
  peers = ROOT / "scripts" / "peers"
  return [
      Contender("genjax", "genjax (vmapped folds)", "genjax",
                [genjax_script, "--mode=vmapped"], False),
      Contender("genjax-cached", "genjax (vmapped folds, warm compilation cache)", "genjax",
                [genjax_script, "--mode=vmapped",
                 f"--compilation_cache_dir={ROOT / '.bench' / 'xla_cache'}"], False),
      Contender("genjax-sequential", "genjax (folds one after another)", "genjax",
                [genjax_script, "--mode=sequential"], False),
      Contender("jax-floor", "hand-written JAX, one program (floor, not a peer)", "genjax",
                [str(peers / "jax_floor.py")], False),
      Contender("jax-floor-cached", "hand-written JAX, one program, warm compilation cache",
                "genjax", [str(peers / "jax_floor.py"),
                           f"--compilation_cache_dir={ROOT / '.bench' / 'xla_cache_floor'}"],
                False),
      Contender("keras", "Keras 3, JAX backend (one fit per fold)", "peer",
                [str(peers / "keras_kfold.py")], True),
      Contender("torch", f"PyTorch, CPU, {torch_threads} thread{'s' * (torch_threads != 1)} "
                "(fold loop)", "peer",
                [str(peers / "torch_kfold.py"), f"--threads={torch_threads}"], True),
      Contender("sklearn", "scikit-learn MLPClassifier (cross_validate)", "peer",
                [str(peers / "sklearn_kfold.py")], True),
  ]


@dataclasses.dataclass
class Run:
  ok: bool
  process_s: float
  cpu_s: float  # user + system CPU of the subprocess and its children
  result: dict | None
  error: str = ""


def run_one(python: str, c: Contender, timeout: float, verbose: bool, check=None) -> Run:
  """Runs one contender in a fresh subprocess; `check(result)` -> problem ('' if none)."""
  env = dict(os.environ, PYTHONUNBUFFERED="1", KERAS_BACKEND="jax")
  before = resource.getrusage(resource.RUSAGE_CHILDREN)
  start = time.perf_counter()
  try:
    proc = subprocess.run([python, *c.argv], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
  except subprocess.TimeoutExpired:
    return Run(False, time.perf_counter() - start, 0.0, None, f"timed out after {timeout:.0f} s")
  except OSError as e:
    return Run(False, 0.0, 0.0, None, f"cannot start {python}: {e}")
  process_s = time.perf_counter() - start
  after = resource.getrusage(resource.RUSAGE_CHILDREN)
  cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
  if verbose:
    sys.stderr.write(proc.stderr)
  tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
  if proc.returncode != 0:
    return Run(False, process_s, cpu_s, None, f"exit status {proc.returncode}:\n{tail}")
  result = parse_result(proc.stdout)
  if result is None:
    return Run(False, process_s, cpu_s, None, f"no JSON result line on stdout:\n{tail}")
  problem = (check or check_result)(result)
  if problem:
    return Run(False, process_s, cpu_s, result, problem)
  return Run(True, process_s, cpu_s, result)


def parse_result(stdout: str) -> dict | None:
  """The last line of stdout that is a JSON object."""
  for line in reversed(stdout.strip().splitlines()):
    line = line.strip()
    if line.startswith("{"):
      try:
        obj = json.loads(line)
      except json.JSONDecodeError:
        continue
      if isinstance(obj, dict):
        return obj
  return None


def check_result(r: dict) -> str:
  for k in ("wall_s", "mean_val_accuracy", "fold_val_accuracy"):
    if k not in r:
      return f"result line lacks '{k}': {r}"
  if r.get("epochs", EPOCHS) != EPOCHS or r.get("folds", FOLDS) != FOLDS:
    return f"unequal work: {r.get('folds')} folds x {r.get('epochs')} epochs, want {FOLDS} x {EPOCHS}"
  if len(r["fold_val_accuracy"]) != FOLDS:
    return f"{len(r['fold_val_accuracy'])} fold accuracies, want {FOLDS}"
  return ""


def python_of(venv: str, args) -> str:
  return args.genjax_python if venv == "genjax" else args.peer_python


def versions(python: str, modules: list[str]) -> dict[str, str]:
  code = ("import importlib, json, os, sys\nos.environ['KERAS_BACKEND'] = 'jax'\nout = {}\n"
          f"for m in {modules!r}:\n"
          "  try: out[m] = importlib.import_module(m).__version__\n"
          "  except Exception: pass\n"
          "out['python'] = sys.version.split()[0]\nprint(json.dumps(out))")
  try:
    p = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=300)
    return json.loads(p.stdout.strip().splitlines()[-1])
  except Exception:  # noqa: BLE001 - versions are informative only
    return {}


def machine() -> dict:
  cpu = platform.processor() or platform.machine()
  try:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
  except OSError:
    pass
  mem = ""
  try:
    kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    mem = f"{kb / 2**20:.0f} GiB"
  except (OSError, AttributeError):
    pass
  usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  return {"cpu": cpu, "cores": os.cpu_count(), "usable_cores": usable, "memory": mem,
          "os": f"{platform.system()} {platform.release()}"}


def proc_stat() -> tuple[float, float] | None:
  """(total, busy) CPU seconds of the whole machine since boot, all cores, from /proc/stat."""
  try:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
  except (OSError, ValueError):
    return None
  hz = os.sysconf("SC_CLK_TCK")
  return sum(fields) / hz, (sum(fields) - fields[3] - fields[4]) / hz  # idle, iowait


def cpu_busy(seconds: float = 2.0) -> float | None:
  """Fraction of all cores busy over the next `seconds` (measured before the run)."""
  a = proc_stat()
  time.sleep(seconds)
  b = proc_stat()
  if a is None or b is None or b[0] <= a[0]:
    return None
  return (b[1] - a[1]) / (b[0] - a[0])


BUSY_WARNING = 0.25  # fraction of the cores busy before the run above which times are suspect
OTHER_CORES_WARNING = 0.3  # cores used by other processes during the run, on average


def fmt_s(x: float | None) -> str:
  return "—" if x is None else f"{x:.2f} s"


def fmt_busy(x: float | None) -> str:
  return "?" if x is None else f"{100 * x:.0f}%"


def fmt_cores(x: float | None) -> str:
  return "?" if x is None else f"{x:.2f} cores"


def fmt_ratio(x: float | None) -> str:
  return "—" if x is None else f"{x:.3f}×"


def build_section(rows, meta) -> str:
  """rows: [(Contender, best dict or None, error)]; meta: date, machine, versions, command..."""
  by_key = {c.key: (c, best) for c, best, _ in rows}
  base = by_key.get("genjax", (None, None))[1]
  out = [SECTION, ""]
  m = meta["machine"]
  out.append(f"Run {meta['date']} with `{meta['command']}`"
             + (f" (min over {meta['repeat']} rounds)" if meta["repeat"] > 1 else "") + ".")
  out.append("")
  if meta["busy_warning"]:
    out.append(f"**Warning:** {meta['busy_warning']}")
    out.append("")
  out.append(f"- Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), "
             f"{m['memory']} memory, {m['os']}; before the run "
             f"{fmt_busy(meta['busy_before'])} of the CPU was busy (load average "
             f"{meta['load_before']}; after the run {meta['load_after']}); during the run "
             f"other processes used {fmt_cores(meta['other_cores'])} on average.")
  if meta.get("xla_flags"):
    out.append(f"- XLA_FLAGS (inherited by every contender): `{meta['xla_flags']}`.")
  gv, pv = meta["genjax_versions"], meta["peer_versions"]
  out.append(f"- genjax venv: Python {gv.get('python', '?')}, jax {gv.get('jax', '?')}, "
             f"flax {gv.get('flax', '?')}, optax {gv.get('optax', '?')}.")
  out.append(f"- Peer venv (.bench/venv): Python {pv.get('python', '?')}, "
             f"keras {pv.get('keras', '?')} on jax {pv.get('jax', '?')}, "
             f"torch {pv.get('torch', '?')}, scikit-learn {pv.get('sklearn', '?')}.")
  out.append("- Task, identical in every contender: MNIST-1D (4000 training examples, generated "
             "offline), 5-fold StratifiedKFold(shuffle, seed 0), per-fold standardization, MLP "
             "40-100-100-10 (residual, dropout 0.2), AdamW lr 1e-3, weight decay 1e-4 on "
             "kernels, batch 100, 20 epochs, validation after every epoch, best-val-loss "
             "weights restored.")
  out.append("- *Training time*: data ready → all folds trained and validated, as the contender "
             "reports it. *Process time*: the fresh subprocess from start to exit (interpreter "
             "start, imports, compilation included). *CPU*: user+system seconds of the process. "
             "Ratios are to genjax (vmapped folds), training time.")
  out.append("")
  out.append("| contender | training time | process time | CPU | ratio to genjax | "
             "mean val accuracy | fold val accuracies |")
  out.append("|---|---:|---:|---:|---:|---:|---|")
  for c, best, err in rows:
    if best is None:
      lines = err.splitlines() or [""]
      why = (lines[0] + (" … " + lines[-1] if len(lines) > 1 else "")).replace("|", "\\|")
      out.append(f"| {c.label} | failed | | | | | {why} |")
      continue
    r = best["result"]
    ratio = r["wall_s"] / base["result"]["wall_s"] if base else None
    folds = ", ".join(f"{a:.3f}" for a in r["fold_val_accuracy"])
    out.append(f"| {c.label} | {fmt_s(r['wall_s'])} | {fmt_s(best['process_s'])} | "
               f"{best['cpu_s']:.1f} s | {fmt_ratio(ratio)} | "
               f"{100 * r['mean_val_accuracy']:.2f}% | {folds} |")
  out.append("")
  # Targets: genjax (vmapped) / fastest peer, genjax / Keras; on both times.
  peers_ok = [(c, best) for c, best, _ in rows if c.peer and best is not None]
  if base and peers_ok:
    out.append("| target (genjax vmapped ÷ peer) | target | on training time | on process time |")
    out.append("|---|---:|---:|---:|")

    def line(what, target, peer_best_train, peer_best_proc, b=base):
      rt = b["result"]["wall_s"] / peer_best_train[1]
      rp = b["process_s"] / peer_best_proc[1]
      mark = lambda r: "met" if r <= target else "NOT met"  # noqa: E731
      out.append(f"| {what} | ≤ {target}× | {rt:.3f}× vs {peer_best_train[0]} ({mark(rt)}) | "
                 f"{rp:.3f}× vs {peer_best_proc[0]} ({mark(rp)}) |")

    fastest_t = min(((c.key, b["result"]["wall_s"]) for c, b in peers_ok), key=lambda t: t[1])
    fastest_p = min(((c.key, b["process_s"]) for c, b in peers_ok), key=lambda t: t[1])
    line("genjax / fastest peer", TARGET_FASTEST_PEER, fastest_t, fastest_p)
    if "keras" in by_key and by_key["keras"][1] is not None:
      k = by_key["keras"][1]
      line("genjax / Keras", TARGET_KERAS, ("keras", k["result"]["wall_s"]),
           ("keras", k["process_s"]))
    # The same targets for genjax's warm cache, and for the hand-written JAX floor: whether any
    # JAX program of the task reaches them on this machine.
    for key, what in (("genjax-cached", "genjax, warm compilation cache"),
                      ("jax-floor", "hand-written JAX floor"),
                      ("jax-floor-cached", "hand-written JAX floor, warm cache")):
      other = by_key.get(key, (None, None))[1]
      if other is None:
        continue
      line(f"{what} / fastest peer", TARGET_FASTEST_PEER, fastest_t, fastest_p, other)
      if "keras" in by_key and by_key["keras"][1] is not None:
        line(f"{what} / Keras", TARGET_KERAS, ("keras", k["result"]["wall_s"]),
             ("keras", k["process_s"]), other)
    out.append("")
  notes = [f"- {c.label}: {best['result']['note']}" for c, best, _ in rows
           if best is not None and best["result"].get("note")]
  if notes:
    out.append("Notes:")
    out.extend(notes)
    out.append("")
  out.append("Peers run from `.bench/venv` (not genjax dependencies); their code is in "
             "`scripts/peers/`. The hand-written JAX floor (`scripts/peers/jax_floor.py`, run "
             "from genjax's venv) is the task as one lean jit-compiled program with nothing "
             "else: what any JAX implementation can reach here. Numbers from one machine: "
             "rerun `scripts/bench` to reproduce.")
  out.append("")
  return "\n".join(out)


def replace_section(path: Path, section: str) -> None:
  text = path.read_text() if path.exists() else (
      "# Benchmarks\n\nProduced by `scripts/bench`; each section is rewritten by its "
      "subcommand.\n\n")
  lines = text.splitlines(keepends=True)
  heading = section.split("\n", 1)[0]
  start = next((i for i, l in enumerate(lines) if l.rstrip("\n") == heading), None)
  if start is None:
    new = text.rstrip("\n") + "\n\n" + section
  else:
    end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith("## ")),
               len(lines))
    tail = "".join(lines[end:])
    new = "".join(lines[:start]) + section + ("\n" + tail if tail else "")
  path.write_text(new.rstrip("\n") + "\n")


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--only", default="",
                 help="comma-separated contenders: genjax, genjax-cached, genjax-sequential, "
                      "jax-floor, jax-floor-cached, keras, torch, sklearn (default: all)")
  p.add_argument("--repeat", type=int, default=1, help="rounds; each time is the min over them")
  p.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
  p.add_argument("--write", action="store_true",
                 help="write BENCHMARKS.md even for an --only run")
  p.add_argument("--no-write", action="store_true", help="print the section, write nothing")
  p.add_argument("--genjax-python", default=str(ROOT / ".venv" / "bin" / "python"))
  p.add_argument("--peer-python", default=str(ROOT / ".bench" / "venv" / "bin" / "python"))
  p.add_argument("--genjax-script", default=str(ROOT / "scripts" / "bench_genjax_kfold.py"))
  p.add_argument("--torch-threads", type=int, default=2,
                 help="PyTorch intra-op threads (torch.set_num_threads); default 2")
  p.add_argument("--timeout", type=float, default=1800, help="seconds per contender run")
  p.add_argument("-v", "--verbose", action="store_true", help="pass contenders' stderr through")
  args = p.parse_args(argv)

  every = contenders(args.genjax_script, args.torch_threads)
  keys = [k.strip() for k in args.only.split(",") if k.strip()]
  unknown = [k for k in keys if k not in {c.key for c in every}]
  if unknown:
    p.error(f"unknown contender(s) {', '.join(unknown)}; choose from "
            f"{', '.join(c.key for c in every)}")
  chosen = [c for c in every if not keys or c.key in keys]
  if args.repeat < 1:
    p.error("--repeat must be >= 1")
  if any(c.venv == "genjax" for c in chosen) and not Path(args.genjax_script).exists():
    print(f"bench: error: {args.genjax_script} not found (to run the peers alone: "
          "--only keras,torch,sklearn)", file=sys.stderr)
    return 2

  busy_before = cpu_busy()
  load_before = "%.2f %.2f %.2f" % os.getloadavg()
  if busy_before is not None and busy_before > BUSY_WARNING:
    print(f"bench: warning: {fmt_busy(busy_before)} of the CPU is already busy (load average "
          f"{load_before}); the times will not be representative", file=sys.stderr)
  for c in chosen:
    if c.key.endswith("-cached"):  # "warm cache" means warm from the first round on
      print(f"== warming the compilation cache: {c.label} (untimed)", flush=True)
      run_one(python_of(c.venv, args), c, args.timeout, args.verbose)
  runs: dict[str, list[Run]] = {c.key: [] for c in chosen}
  stat0, usage0, t0 = proc_stat(), resource.getrusage(resource.RUSAGE_CHILDREN), time.time()
  for rnd in range(args.repeat):
    for c in chosen:
      tag = f"[{rnd + 1}/{args.repeat}] " if args.repeat > 1 else ""
      print(f"== {tag}{c.label} ...", end=" ", flush=True)
      r = run_one(python_of(c.venv, args), c, args.timeout, args.verbose)
      runs[c.key].append(r)
      if r.ok:
        print(f"training {r.result['wall_s']:.2f} s, process {r.process_s:.2f} s, "
              f"val accuracy {100 * r.result['mean_val_accuracy']:.2f}%", flush=True)
      else:
        print("FAILED", flush=True)
        print(r.error, file=sys.stderr)
  load_after = "%.2f %.2f %.2f" % os.getloadavg()
  # CPU that other processes used while the contenders ran, in cores on average.
  stat1, usage1, t1 = proc_stat(), resource.getrusage(resource.RUSAGE_CHILDREN), time.time()
  other_cores = None
  if stat0 and stat1 and t1 > t0:
    ours = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    other_cores = max(0.0, (stat1[1] - stat0[1] - ours) / (t1 - t0))
  busy_warning = ""
  if ((busy_before is not None and busy_before > BUSY_WARNING)
      or (other_cores is not None and other_cores > OTHER_CORES_WARNING)):
    busy_warning = (f"the machine was not quiet ({fmt_busy(busy_before)} of the CPU busy before "
                    f"the run, other processes using {fmt_cores(other_cores)} during it): "
                    "times are not representative, PyTorch's 2-thread ops especially; "
                    "rerun on a quiet machine.")
    print(f"bench: warning: {busy_warning}", file=sys.stderr)

  rows, raw = [], []
  for c in chosen:
    ok = [r for r in runs[c.key] if r.ok]
    best = None
    if ok:
      fastest = min(ok, key=lambda r: r.result["wall_s"])
      best = {"result": fastest.result, "process_s": min(r.process_s for r in ok),
              "cpu_s": min(r.cpu_s for r in ok)}
    err = next((r.error for r in runs[c.key] if not r.ok), "")
    rows.append((c, best, err))
    raw.append({"key": c.key, "label": c.label,
                "runs": [dataclasses.asdict(r) for r in runs[c.key]], "best": best})

  cmd = "scripts/bench kfold" + (f" --only {args.only}" if keys else "") + (
      f" --repeat {args.repeat}" if args.repeat > 1 else "") + (
      f" --torch-threads {args.torch_threads}" if args.torch_threads != 2 else "")
  meta = {
      "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
      "command": cmd, "repeat": args.repeat, "machine": machine(),
      "busy_before": busy_before, "busy_warning": busy_warning, "other_cores": other_cores,
      "load_before": load_before, "load_after": load_after,
      "xla_flags": os.environ.get("XLA_FLAGS", ""),
      "genjax_versions": versions(args.genjax_python, ["jax", "flax", "optax", "genjax"]),
      "peer_versions": versions(args.peer_python, ["jax", "keras", "torch", "sklearn"]),
  }
  section = build_section(rows, meta)
  print()
  print(section)

  bench_dir = ROOT / ".bench"
  bench_dir.mkdir(exist_ok=True)
  (bench_dir / "kfold-last.json").write_text(json.dumps({"meta": meta, "contenders": raw},
                                                        indent=1))
  failed = [c.key for c, best, _ in rows if best is None]
  full = not keys
  if failed:
    print(f"bench: {', '.join(failed)} failed; {args.output} left unchanged", file=sys.stderr)
    return 1
  if not args.no_write and (full or args.write):
    replace_section(Path(args.output), section)
    print(f"== wrote the k-fold section of {args.output}")
  elif not args.no_write:
    print(f"== --only run: {args.output} left unchanged (pass --write to write it)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
