"""`scripts/bench seeds`: seeds as members of one program, and how many members fit in memory.

The work (issue #14 point 8): 5 seeds × 5 folds × 8 points (L2 strength {0, 1e-4, 1e-3, 1e-2}
× dropout {0, 0.2}), 5-fold stratified cross-validation of the MNIST-1D reference MLP, 20 epochs
(experiments/mnist1d_kfold.py without refit, patience 20 so every member runs all epochs), cold
compiles (no persistent compilation cache).
(a) one `genjax sweep --sweep='seed=range(0,5)'` process: 200 members in one program; the
    split seed stays the base config's (seed 0);
(b) 5 `genjax sweep` processes one after another, `--config.seed=S --config.data.split_seed=0`
    for S = 0..4, 40 members each: the same members, so the per-member validation results of
    (a) and (b) are compared for every (point, seed, fold).
Memory: a grid too large for this machine is refused by genjax's estimate (sweep_run's
`_check_memory`) with one line naming the largest member count; the line is recorded, then
1-epoch sweeps of growing size measure the peak RSS (ru_maxrss of each child, from wait4) per
member, and the largest of them (up to ~90% of the suggested count, if that stays under ~5 minutes
and 60% of the RAM) checks the estimate. A watchdog kills any child above 60% of the RAM.
Writes the `## Seeds as members (scripts/bench seeds)` section of BENCHMARKS.md (or --output).
"""

import argparse
import datetime
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_kfold import replace_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Seeds as members (scripts/bench seeds)"
L2 = ["0", "1e-4", "1e-3", "1e-2"]
DROPOUT = ["0", "0.2"]
SEEDS = range(5)
FOLDS = 5
COMMON = ["--config=experiments/mnist1d_kfold.py", "--config.num_epochs=20",
          "--config.cv.refit=false", "--config.early_stopping.patience=20",
          "--compilation_cache_dir=", "--progress=false"]
GRID = [f"--sweep=penalties.l2.strength={','.join(L2)}",
        f"--sweep=model.dropout={','.join(DROPOUT)}"]
ONE_EPOCH = [a if a != "--config.num_epochs=20" else "--config.num_epochs=1" for a in COMMON]
# The reference MLP 40-100-100-10: 40·100+100 + 100·100+100 + 100·10+10 parameters. Used only to
# size a grid that genjax must refuse (the refusal line itself is what gets reported).
MLP_PARAMS = 15_210
ESTIMATE_FRACTION = 0.5   # genjax.sweeps.memory.MEMORY_FRACTION, same use
RAM_FRACTION = 0.6        # no child may go above this fraction of the RAM (watchdog)
CALIBRATION = (250, 1000)  # members of the 1-epoch sweeps that measure RSS and time per member
VERIFY_BUDGET_S = 300     # the verification sweep is sized to finish in about this time


def meminfo(field: str) -> int:
  """Bytes of /proc/meminfo's `field` (MemTotal, MemAvailable)."""
  kb = re.search(rf"{field}:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)
  return int(kb) * 1024


def tree_rss(pid: int) -> int:
  """Resident bytes of `pid` and its descendants, now."""
  total, stack = 0, [pid]
  while stack:
    p = stack.pop()
    try:
      total += int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{p}/status").read_text())
                   .group(1)) * 1024
      for t in os.listdir(f"/proc/{p}/task"):
        stack += [int(c) for c in Path(f"/proc/{p}/task/{t}/children").read_text().split()]
    except (OSError, AttributeError, ValueError):
      pass
  return total


class Run:
  """One finished (or killed) genjax process: wall, CPU, peak RSS, exit status, stderr."""

  def __init__(self, wall, cpu, maxrss, rc, stderr, killed):
    self.wall, self.cpu, self.maxrss, self.rc = wall, cpu, maxrss, rc
    self.stderr, self.killed = stderr, killed

  def error_line(self) -> str:
    lines = [l for l in self.stderr.splitlines() if l.startswith("genjax: error:")]
    return lines[-1] if lines else ""


def genjax(*args, mem_limit: int, time_limit: float) -> Run:
  """Runs `genjax ARGS` from the repository root under a watchdog: the process group is killed
  when its resident memory passes `mem_limit` bytes or it runs past `time_limit` seconds."""
  with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(ROOT / ".venv/bin/genjax"), *args], cwd=ROOT, stdout=out,
                            stderr=err, text=True, start_new_session=True)
    killed = ""
    try:
      while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
          break
        elapsed = time.perf_counter() - t0
        rss = tree_rss(proc.pid)
        if not killed and (rss > mem_limit or elapsed > time_limit):
          killed = (f"killed at {gib(rss)} resident (limit {gib(mem_limit)})" if rss > mem_limit
                    else f"killed after {elapsed:.0f} s (limit {time_limit:.0f} s)")
          os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(0.2)
    except BaseException:  # Ctrl-C or SIGTERM of this script: its genjax process goes too
      os.killpg(proc.pid, signal.SIGKILL)
      os.wait4(proc.pid, 0)
      raise
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, not by Popen
    wall = time.perf_counter() - t0
    print(f"bench seeds: genjax {' '.join(a for a in args if a not in COMMON + ONE_EPOCH)}: "
          f"{wall:.1f} s, peak RSS {usage.ru_maxrss / 2**20:.2f} GiB, exit status "
          f"{proc.returncode}{', ' + killed if killed else ''}", file=sys.stderr, flush=True)
    err.seek(0)
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, proc.returncode,
               err.read(), killed)


def checked(run: Run, what: str) -> Run:
  if run.rc or run.killed:
    sys.exit(f"bench seeds: {what} failed ({run.killed or f'exit status {run.rc}'}):\n"
             f"{run.stderr[-2000:]}")
  return run


def member_results(workdir: Path) -> dict:
  """(point, seed, fold) → that member's row of sweep.json's member_results."""
  return {(m["point"], m["seed"], m["fold"]): m
          for m in json.load(open(workdir / "sweep.json"))["member_results"]}


def first_epoch_diffs(work: Path):
  """(max |Δ val loss|, identical, count) at epoch 0 between (a) and (b), from metrics.jsonl:
  where the members start, before rounding differences compound over the epochs."""
  def losses(path: Path, rename) -> dict:
    out = {}
    for line in open(path):
      r = json.loads(line)
      if r.get("epoch") == 0 and "member" in r and "val_loss" in r:
        out[rename(r["member"])] = r["val_loss"]
    return out
  one = losses(work / "seeds_one" / "metrics.jsonl", lambda name: name)
  apart = {}
  for s in SEEDS:  # member "POINT/foldK" of seed s is "POINT,seed=s/foldK" in (a)
    apart.update(losses(work / f"seed{s}" / "metrics.jsonl",
                        lambda name, s=s: name.replace("/", f",seed={s}/", 1)))
  common = set(one) & set(apart)
  if not common:
    return None
  d = [abs(one[k] - apart[k]) for k in common]
  return max(d), sum(x == 0 for x in d), len(d)




def fit_line(xs, ys):
  """Least squares y = a + b·x."""
  n, mx, my = len(xs), sum(xs) / len(xs), sum(ys) / len(ys)
  sxx = sum((x - mx) ** 2 for x in xs)
  b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if n > 1 and sxx else 0.0
  return my - b * mx, b


def gib(x: float) -> str:
  return f"{x / 2**30:.2f} GiB"


def seeds_part(work: Path, mem_limit: int) -> dict:
  """(a) one program of 200 members against (b) 5 seed processes; their members compared."""
  limit = 20 * 60
  a = checked(genjax("sweep", *COMMON, f"--workdir={work / 'seeds_one'}", *GRID,
                     f"--sweep=seed=range({SEEDS.start},{SEEDS.stop})",
                     mem_limit=mem_limit, time_limit=limit), "(a) the one-program sweep")
  one = member_results(work / "seeds_one")
  b_runs, apart = [], {}
  for s in SEEDS:
    wd = work / f"seed{s}"
    b_runs.append(checked(genjax("sweep", *COMMON, f"--workdir={wd}", *GRID,
                                 f"--config.seed={s}", "--config.data.split_seed=0",
                                 mem_limit=mem_limit, time_limit=limit), f"(b) seed {s}"))
    apart.update(member_results(wd))
  if set(one) != set(apart):
    sys.exit(f"bench seeds: (a) and (b) trained different members: only in (a) "
             f"{sorted(set(one) - set(apart))[:5]}, "
             f"only in (b) {sorted(set(apart) - set(one))[:5]}")
  keys = sorted(one)
  d_acc = [abs(one[k]["val_accuracy"] - apart[k]["val_accuracy"]) for k in keys]
  d_loss = [abs(one[k]["val_loss"] - apart[k]["val_loss"]) for k in keys]
  first = first_epoch_diffs(work)
  provenance = json.load(open(work / "seeds_one" / "sweep.json"))["provenance"]
  return {"a": a, "b": b_runs, "members": len(keys), "max_acc": max(d_acc),
          "max_loss": max(d_loss), "same_acc": sum(d == 0 for d in d_acc),
          "same_epoch": sum(one[k]["selected_epoch"] == apart[k]["selected_epoch"] for k in keys),
          "first": first, "provenance": provenance}


def one_epoch_sweep(work: Path, members: int, mem_limit: int, time_limit: float) -> Run:
  wd = work / f"mem_{members}"
  run = genjax("sweep", *ONE_EPOCH, f"--workdir={wd}",
               f"--sweep=penalties.l2.strength=linspace(0,1e-3,{members // FOLDS})",
               mem_limit=mem_limit, time_limit=time_limit)
  shutil.rmtree(wd, ignore_errors=True)  # checkpoints of thousands of members: GiBs on disk
  return run


def memory_part(work: Path, mem_limit: int) -> dict:
  """genjax's refusal line for a too-large grid, then 1-epoch sweeps that measure it."""
  total = meminfo("MemTotal")
  # A grid ~15% above what genjax's estimate allows even with all of the RAM free.
  points = math.ceil(1.15 * ESTIMATE_FRACTION * total / (16 * MLP_PARAMS) / FOLDS)
  refused = genjax("sweep", *ONE_EPOCH, f"--workdir={work / 'mem_refused'}",
                   f"--sweep=penalties.l2.strength=linspace(0,1e-3,{points})",
                   mem_limit=mem_limit, time_limit=300)
  line = refused.error_line()
  m = re.search(r"use at most ~(\d+) members", line)
  suggested = int(m.group(1)) if m else None
  m = re.search(r"([\d.]+) MiB per member", line)  # or, in older versions, the total:
  estimate_per_member = float(m.group(1)) * 2**20 if m else None
  m = re.search(r"need about ([\d.]+) GiB", line)
  if estimate_per_member is None and m:
    estimate_per_member = float(m.group(1)) * 2**30 / (points * FOLDS)
  runs = []
  for members in CALIBRATION:
    runs.append((members, checked(one_epoch_sweep(work, members, mem_limit, VERIFY_BUDGET_S),
                                  f"the {members}-member 1-epoch sweep"), "calibration"))
  xs = [r[0] for r in runs]
  rss_a, rss_b = fit_line(xs, [r[1].maxrss for r in runs])
  # The budget is sized at the largest calibration run's time per member, not by a line through
  # both runs: the marginal cost per member rose with the count (51 ms from 250 to 1000 members,
  # 81 ms from 1000 to 5300 in one run), so a line would overshoot.
  per_member_s = runs[-1][1].wall / xs[-1]
  target = (int(0.9 * suggested) // FOLDS * FOLDS) if suggested else None
  by_time = int(VERIFY_BUDGET_S / per_member_s)
  by_memory = int((0.85 * mem_limit - rss_a) / rss_b) if rss_b > 0 else 10**9
  verify = min(v for v in (target, by_time, by_memory) if v is not None) // FOLDS * FOLDS
  note = []
  if target is not None and verify < target:
    why = [w for w, v in (("the 5-minute budget", by_time), ("60% of the RAM", by_memory))
           if v < target]
    note.append(f"~90% of the suggested count ({target} members) would need about "
                f"{gib(rss_a + rss_b * target)} and at least {per_member_s * target / 60:.0f} min "
                f"by the calibration runs, past {' and '.join(why)}, so it was not run; "
                + (f"the verification used {verify} members instead."
                   if verify > max(CALIBRATION) else
                   "no sweep larger than the calibration ones fits those limits."))
  if verify > max(CALIBRATION):
    run = one_epoch_sweep(work, verify, mem_limit, 1.5 * VERIFY_BUDGET_S)
    runs.append((verify, run, "verification"))
  ok = [(n, r) for n, r, _ in runs if not r.rc and not r.killed]
  rss_a, rss_b = fit_line([n for n, _ in ok], [r.maxrss for _, r in ok])
  largest = max(ok, key=lambda x: x[0])
  available = meminfo("MemAvailable")
  return {"points": points, "refused": refused, "line": line, "suggested": suggested,
          "estimate_per_member": estimate_per_member, "runs": runs, "rss_a": rss_a,
          "rss_b": rss_b, "per_member_s": largest[1].wall / largest[0], "note": note,
          "total": total, "available": available,
          "fit_available": int((available - rss_a) / rss_b) if rss_b > 0 else None,
          "fit_limit": int((mem_limit - rss_a) / rss_b) if rss_b > 0 else None}


def section_text(started, load_before, load_after, elapsed, others, s, m, mem_limit) -> str:
  cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
              if l.startswith("model name")), platform.machine())
  prov = s["provenance"]
  pk = prov.get("packages", {})
  a, b = s["a"], s["b"]
  b_wall, b_cpu = sum(r.wall for r in b), sum(r.cpu for r in b)
  lines = [
      SECTION, "",
      f"Run {started:%Y-%m-%d %H:%M} UTC on {cpu} ({os.cpu_count()} cores, "
      f"{m['total'] / 2**30:.0f} GiB memory), `scripts/bench seeds`, from commit "
      f"{prov.get('git_commit', '?')[:7]}; Python {prov.get('python', '?')}, jax "
      f"{pk.get('jax', '?')}, flax {pk.get('flax', '?')}, optax {pk.get('optax', '?')}. "
      f"Load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min)"
      + (f"; other processes kept {others:.2f} cores busy on average during the run"
         if others is not None else "")
      + f"; the whole benchmark took {elapsed / 60:.1f} min.", "",
      f"**One program against one process per seed.** 5 seeds × 5 folds × 8 points (L2 strength "
      f"{{{', '.join(L2)}}} × dropout {{{', '.join(DROPOUT)}}}), MNIST-1D reference MLP, 20 "
      "epochs, no refit, patience 20 (every member runs every epoch), cold compiles.", "",
      "| contender | members per process | wall time | CPU (user+sys) | peak RSS | ratio |",
      "|---|---:|---:|---:|---:|---:|",
      f"| (a) one `genjax sweep ... --sweep='seed=range(0,5)'` | {s['members']} | {a.wall:.1f} s "
      f"| {a.cpu:.1f} s | {gib(a.maxrss)} | 1.00 |",
      f"| (b) 5 `genjax sweep` processes, `--config.seed=S --config.data.split_seed=0`, one after "
      f"another | {s['members'] // len(b)} | {b_wall:.1f} s | {b_cpu:.1f} s | "
      f"{gib(max(r.maxrss for r in b))} (largest) | {b_wall / a.wall:.2f} |", "",
      f"Speed-up of seeds as members: **{b_wall / a.wall:.1f}×** ((b)/(a), wall time, same run). "
      f"Same members: each of the {s['members']} (point, seed, fold) members of (a) is in (b); the "
      f"largest difference of a member's validation accuracy between (a) and (b) is "
      f"{s['max_acc']:.3g} ({s['same_acc']}/{s['members']} identical), of its validation loss "
      f"{s['max_loss']:.3g}; the selected epoch agrees in {s['same_epoch']}/{s['members']}"
      + (f". After the first epoch the largest validation-loss difference is {s['first'][0]:.2g} "
         f"({s['first'][1]}/{s['first'][2]} identical), float32 rounding (the two programs vmap "
         "200 and 40 members) that compounds over the 20 epochs" if s["first"] else "")
      + f". CPU time (b)/(a): {b_cpu / a.cpu:.2f}.", "",
      f"**How many members fit.** A grid of {m['points']} L2 strengths × {FOLDS} folds "
      f"({m['points'] * FOLDS} members, `--sweep='penalties.l2.strength=linspace(0,1e-3,"
      f"{m['points']})'`, 1 epoch) was "
      + (f"refused after {m['refused'].wall:.0f} s (exit status {m['refused'].rc}; the time is "
         "the per-point checks that run before the estimate) with:" if m["line"] else
         f"not refused with a memory line (exit status {m['refused'].rc}"
         f"{', ' + m['refused'].killed if m['refused'].killed else ''}).")]
  if m["line"]:
    lines += ["", "```", m["line"], "```"]
  if m["estimate_per_member"]:
    lines += ["", "The estimate counts the train state only: "
              f"{m['estimate_per_member'] / 2**20:.2f} MiB per member (16 bytes per parameter: "
              "parameters, two Adam moments, best parameters)."]
  lines += ["", "1-epoch sweeps with the same flags (`--config.num_epochs=1`), each a fresh "
            "process, peak RSS from its `ru_maxrss`:", "",
            "| sweep | members | wall time | per member | CPU (user+sys) | peak RSS "
            "| RSS per member | result |", "|---|---:|---:|---:|---:|---:|---:|---|"]
  for n, r, kind in m["runs"]:
    result = r.killed or ("ran" if not r.rc else f"failed: {r.error_line() or r.rc}")
    lines.append(f"| {kind} | {n} | {r.wall:.1f} s | {1000 * r.wall / n:.0f} ms | {r.cpu:.1f} s "
                 f"| {gib(r.maxrss)} | {r.maxrss / n / 2**20:.2f} MiB | {result} |")
  est = m["estimate_per_member"]
  fit = (f"Peak RSS ≈ {gib(m['rss_a'])} + {m['rss_b'] / 2**20:.2f} MiB × members (least squares "
         "over the runs that finished)")
  if est:
    fit += f", {m['rss_b'] / est:.1f}× the estimate's per-member bytes"
  lines += ["", fit + "."]
  if m["suggested"]:
    n = m["suggested"]
    need = m["rss_a"] + m["rss_b"] * n
    lines.append(f"At the suggested ~{n} members that predicts {gib(need)} resident (of "
                 f"{gib(m['total'])}) and at least {m['per_member_s'] * n / 60:.0f} min per epoch "
                 "(at the largest run's time per member)"
                 + (": the suggestion does not fit this machine." if need > m["total"] else "."))
  lines += m["note"]
  if m["fit_available"]:
    lines += ["", f"Largest member count that fits this machine's memory for the default MLP, by "
              f"the measured fit: **~{m['fit_available']} members** (all of the "
              f"{gib(m['available'])} available at the end of the run), ~{m['fit_limit']} "
              f"within {RAM_FRACTION:.0%} of the RAM ({gib(mem_limit)}), the limit of a watchdog "
              "that kills any of these processes above it."]
  return "\n".join(lines) + "\n"


def proc_stat() -> tuple[float, float] | None:
  """(total, busy) CPU seconds of the whole machine since boot, all cores, from /proc/stat."""
  try:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
  except (OSError, ValueError):
    return None
  hz = os.sysconf("SC_CLK_TCK")
  return sum(fields) / hz, (sum(fields) - fields[3] - fields[4]) / hz  # idle, iowait


def children_cpu() -> float:
  usage = resource.getrusage(resource.RUSAGE_CHILDREN)
  return usage.ru_utime + usage.ru_stime


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
  parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md",
                      help="Markdown file whose section this run replaces (default: BENCHMARKS.md)")
  parser.add_argument("--keep", action="store_true", help="keep the sweeps' workdirs")
  args = parser.parse_args(argv)
  signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # cleans up like Ctrl-C
  work = Path(tempfile.mkdtemp(prefix="genjax_bench_seeds_"))
  load_before, started = os.getloadavg(), datetime.datetime.now(datetime.timezone.utc)
  t0, stat0, cpu0 = time.perf_counter(), proc_stat(), children_cpu()
  mem_limit = int(RAM_FRACTION * meminfo("MemTotal"))
  try:
    s = seeds_part(work, mem_limit)
    m = memory_part(work, mem_limit)
  finally:
    if not args.keep:
      shutil.rmtree(work, ignore_errors=True)
  elapsed, stat1 = time.perf_counter() - t0, proc_stat()
  others = None  # cores other processes kept busy during the run, on average
  if stat0 and stat1:
    others = max(0.0, (stat1[1] - stat0[1]) - (children_cpu() - cpu0)) / elapsed
  section = section_text(started, load_before, os.getloadavg(), elapsed, others, s, m,
                         mem_limit)
  print(section)
  replace_section(args.output, section)
  return 0


if __name__ == "__main__":
  sys.exit(main())
