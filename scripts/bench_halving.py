"""`scripts/bench halving`: successive halving (`--search=halving`) against the full grid.

The work: a 27-point grid, learning rate {1e-3, 3e-3, 1e-2} × L2 strength {0, 1e-4, 1e-3} ×
dropout {0, 0.1, 0.2}, each point 5-fold stratified cross-validation of the MNIST-1D reference
MLP (experiments/mnist1d_kfold.py: AdamW, early stopping on val_loss with patience 20, refit
of the selected point), 81 epochs:

  grid     `genjax sweep ... --search=grid` (the default): every point trains to the end (or
           until its early stopping fires);
  halving  `genjax sweep ... --search=halving --search_factor=3` (min_epochs 'exhaust'): rungs
           at 3, 9, 27 and 81 epochs keep the best third of the points (27 → 9 → 3 → 1); the
           pruned points' members leave the program (compaction).

Both run as one `genjax sweep` process each, one after the other (grid first), with the
persistent compilation cache off (every process compiles cold, as `scripts/bench sweep`); the
dataset is prepared by an untimed 1-epoch run first. Recorded for each: process wall time
(time.perf_counter around the subprocess), sweep.json's `wall_time_s`, member-epochs trained
(`compaction.trained_member_epochs`) and computed (`computed_member_epochs`, padding included),
and the selected point with its validation mean. Then: does halving select the grid's point?
If not, is the halving pick's validation mean IN THE GRID'S RUN within the 95% interval of the
grid-selected point (mean ± t_{0.975,n-1} · sd/√n over that point's n members in the grid's
member_results, sd with ddof 1)? And the ratios grid/halving of wall time and member-epochs.
The halving pick trains its full 81 epochs in both runs: its members' numbers are compared.

    scripts/bench halving         # or: .venv/bin/python scripts/bench_halving.py [--output F]

Writes BENCHMARKS.halving.json (next to BENCHMARKS.md) and prints a markdown section to paste
into BENCHMARKS.md. Smoke runs (a shrinking variable set) write their JSON to a temp file:

  GENJAX_BENCH_EPOCHS=N   --config.num_epochs=N (e.g. 9: rungs at 1, 3, 9 epochs)
  GENJAX_BENCH_FOLDS=K    --config.cv.folds=K
"""

import argparse
import datetime
import functools
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common  # noqa: E402
from bench_common import cpu_model, env_int  # noqa: E402,F401

genjax = functools.partial(bench_common.genjax, who="bench halving")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "BENCHMARKS.halving.json"
EPOCHS, FOLDS, FACTOR = 81, 5, 3
GRID = {"optimizer.learning_rate": ["1e-3", "3e-3", "1e-2"],
        "penalties.l2.strength": ["0", "1e-4", "1e-3"],
        "model.dropout": ["0", "0.1", "0.2"]}
SHRINK = ("GENJAX_BENCH_EPOCHS", "GENJAX_BENCH_FOLDS")


def members_of(record: dict, point: str) -> list[dict]:
  """sweep.json's member_results of `point`, in (seed, fold) order."""
  return sorted((m for m in record["member_results"] if m["point"] == point),
                key=lambda m: (m.get("seed", 0), m["fold"]))


def interval(values: list[float]) -> dict:
  """Mean, sd (ddof 1) and the 95% t interval of the mean."""
  from scipy import stats
  n = len(values)
  mean = statistics.fmean(values)
  sd = statistics.stdev(values) if n > 1 else float("nan")
  t = float(stats.t.ppf(0.975, n - 1)) if n > 1 else float("nan")
  half = t * sd / math.sqrt(n)
  return {"n": n, "mean": mean, "sd": sd, "t": t, "lo": mean - half, "hi": mean + half}


def summary(name: str, wall: float, cpu: float, record: dict) -> dict:
  c = record["compaction"]
  sel = record["selected"]
  out = {"wall_s": wall, "cpu_s": cpu, "wall_time_s": record["wall_time_s"],
         "members": record["members"], "epochs_run": record["epochs_run"],
         "parallel": record["parallel"], "compaction": c,
         "trained_member_epochs": c["trained_member_epochs"],
         "computed_member_epochs": c["computed_member_epochs"],
         "selected": {"name": sel["name"], "point": sel["point"],
                      "accuracy_mean": sel["validation"]["accuracy_mean"],
                      "accuracy_std": sel["validation"]["accuracy_std"],
                      "members": sel["validation"]["members"]},
         "genjax_source": record["provenance"].get("code", {}).get("genjax_source")}
  if record.get("search"):
    s = record["search"]
    out["search"] = {"method": s["method"], "factor": s["factor"], "min_epochs": s["min_epochs"],
                     "rungs": [{k: r[k] for k in ("bracket", "rung", "epochs", "candidates",
                                                  "kept", "kept_points")} for r in s["rungs"]],
                     "survivors": s["survivors"]}
  print(f"bench halving: {name}: {wall:.1f} s (wall_time_s {record['wall_time_s']:.1f}), "
        f"member-epochs trained {c['trained_member_epochs']} of {c['member_epochs']}, computed "
        f"{c['computed_member_epochs']}; selected {sel['name']} "
        f"({100 * sel['validation']['accuracy_mean']:.2f}%)", flush=True)
  return out


def compare(grid: dict, halving: dict) -> dict:
  """Does halving pick the grid's point; else is its pick within the grid pick's 95% interval
  (both means from the grid's run)."""
  g_name, h_name = grid["selected"]["name"], halving["selected"]["name"]
  g_members, h_in_grid = members_of(grid, g_name), members_of(grid, h_name)
  ci = interval([m["val_accuracy"] for m in g_members])
  h_mean = statistics.fmean(m["val_accuracy"] for m in h_in_grid) if h_in_grid else None
  h_in_halving = members_of(halving, h_name)
  same_members = ([(m.get("seed", 0), m["fold"], m["val_accuracy"], m["val_loss"],
                    m["selected_epoch"]) for m in h_in_halving]
                  == [(m.get("seed", 0), m["fold"], m["val_accuracy"], m["val_loss"],
                       m["selected_epoch"]) for m in h_in_grid])
  means = {}
  for m in grid["member_results"]:
    means.setdefault(m["point"], []).append(m["val_accuracy"])
  ranked = sorted(means, key=lambda p: -statistics.fmean(means[p]))
  rank = ranked.index(h_name) + 1 if h_name in ranked else None
  fate = "not in the halving run's rungs"
  for rung in (halving.get("search") or {}).get("rungs", []):
    if g_name not in rung["points"]:
      continue
    if g_name in rung["kept_points"]:
      fate = "survived every rung"
      continue
    scores = rung["scores"] or []
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    place = order.index(rung["points"].index(g_name)) + 1 if scores else None
    fate = (f"pruned at rung {rung['rung']} ({rung['epochs']} epochs), ranked {place} of "
            f"{rung['candidates']} (kept {rung['kept']})")
    break
  return {"same_point": g_name == h_name,
          "grid_pick_in_halving": fate,
          "grid_selected": g_name, "halving_selected": h_name,
          "grid_selected_interval": ci,
          "halving_pick_mean_in_grid": h_mean,
          "halving_pick_within_interval": bool(h_mean is not None
                                              and ci["lo"] <= h_mean <= ci["hi"]),
          "halving_pick_rank_in_grid": rank,
          "halving_pick_members_identical_in_both_runs": same_members}


def pct(x) -> str:
  return "–" if x is None else f"{100 * x:.2f}%"


VARIANTS = (   # (name, --search_min_epochs, compilation cache warm)
    ("halving, factor 3, cold", "exhaust", False),
    ("halving, factor 3", "exhaust", True),
    ("halving, factor 3, first rung 9 epochs", "9", True),
)


def markdown(r: dict) -> str:
  prov = r["provenance"]
  grid_desc = " × ".join(f"{k} {{{', '.join(v)}}}" for k, v in GRID.items())
  lines = [
      "## Successive halving (scripts/bench halving)", "",
      f"Run {r['started']} on {r['machine']['cpu']} ({r['machine']['cores']} cores), "
      f"`{r['command']}`, from commit {prov.get('git_commit', '?')} (genjax source "
      f"{(prov.get('genjax_source') or '?')[:12]}); jax {prov.get('jax', '?')}. Load average "
      f"before {r['load_before']:.2f}, after {r['load_after']:.2f} (1 min). "
      f"{r['points']} points ({grid_desc}) × {r['folds']} folds, MNIST-1D reference MLP "
      f"(experiments/mnist1d_kfold.py, patience {r['patience']}), {r['epochs']} epochs, one "
      "`genjax sweep` process each. Cold: no compilation cache, every process compiles; warm: "
      "the persistent compilation cache (genjax's default) holds the programs, as on a "
      "researcher's second sweep of a config (grid and halving compile the same programs).", "",
      "| run | wall time | `wall_time_s` | member-epochs trained | computed "
      "| selected point | val acc (mean ± sd) | grid / this: wall time |",
      "|---|---:|---:|---:|---:|---|---:|---:|"]
  for name, s in r["runs"].items():
    sel = s["selected"]
    base = r["runs"]["grid, warm" if s.get("warm") else "grid, cold"]
    lines.append(f"| {name} | {s['wall_s']:.1f} s | {s['wall_time_s']:.1f} s "
                 f"| {s['trained_member_epochs']} | {s['computed_member_epochs']} "
                 f"| {sel['name']} | {pct(sel['accuracy_mean'])} ± "
                 f"{100 * sel['accuracy_std']:.2f} | {base['wall_s'] / s['wall_s']:.2f}× |")
  lines.append("")
  for name, c in r["comparisons"].items():
    ci = c["grid_selected_interval"]
    if c["same_point"]:
      lines.append(f"- {name}: selects the grid's point.")
    else:
      lines.append(
          f"- {name}: selects {c['halving_selected']} (the grid: {c['grid_selected']}); in the "
          f"grid's run it scores {pct(c['halving_pick_mean_in_grid'])} (rank "
          f"{c['halving_pick_rank_in_grid']} of {r['points']}), "
          + ("within" if c["halving_pick_within_interval"] else "outside")
          + f" the grid pick's 95% interval {pct(ci['lo'])}–{pct(ci['hi'])} (mean ± "
          f"t_0.975,{ci['n'] - 1} · sd/√{ci['n']}). The grid's pick: {c['grid_pick_in_halving']}."
          + (" The pick's members have identical numbers in both runs."
             if c["halving_pick_members_identical_in_both_runs"] else
             " The pick's members have DIFFERENT numbers in the two runs."))
  for name, s in r["runs"].items():
    if s.get("search"):
      lines += ["", f"Rungs of {name}:", "", "| rung | epochs | candidates | kept |",
                "|---:|---:|---:|---:|"]
      lines += [f"| {x['rung']} | {x['epochs']} | {x['candidates']} | {x['kept']} |"
                for x in s["search"]["rungs"]]
  if len({s["genjax_source"] for s in r["runs"].values()}) > 1:
    lines += ["", "WARNING: genjax's source changed between the runs (the tree was edited "
              "during the benchmark): rerun on a quiet tree."]
  if r["shrunk"]:
    lines += ["", f"SMOKE RUN ({r['shrunk']}): not the benchmark's sizes."]
  return "\n".join(lines) + "\n"


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                      help="JSON results file (default BENCHMARKS.halving.json; a smoke run "
                           "writes to a temp file instead)")
  parser.add_argument("--keep", action="store_true", help="keep the runs' workdirs")
  args = parser.parse_args(argv)
  epochs = env_int("GENJAX_BENCH_EPOCHS") or EPOCHS
  folds = env_int("GENJAX_BENCH_FOLDS") or FOLDS
  shrunk = " ".join(f"{v}={os.environ[v]}" for v in SHRINK if os.environ.get(v, "").strip())
  work = Path(tempfile.mkdtemp(prefix="genjax_bench_halving_"))
  output = args.output
  if shrunk and output.resolve() == DEFAULT_OUTPUT.resolve():
    output = work.parent / f"{work.name}.json"
  command = " ".join([*(f"{v}={os.environ[v]}" for v in SHRINK if os.environ.get(v, "").strip()),
                      "scripts/bench halving"])
  common = ["sweep", "--config=experiments/mnist1d_kfold.py", f"--config.num_epochs={epochs}",
            f"--config.cv.folds={folds}", "--progress=false",
            *(f"--sweep={k}={','.join(v)}" for k, v in GRID.items())]
  cold, warm = ["--compilation_cache_dir="], [f"--compilation_cache_dir={work / 'cache'}"]
  halving = lambda m: ["--search=halving", f"--search_factor={FACTOR}",  # noqa: E731
                       f"--search_min_epochs={m}"]
  # The grid runs first with an empty cache (a cold compile, filling it), then the halvings,
  # then the grid again, warm.
  plan = [("grid, cold", common + warm, False)]
  variants = [v for v in VARIANTS if v[1] == "exhaust" or int(v[1]) <= epochs]   # (smoke runs)
  plan += [(name, common + halving(m) + (warm if w else cold), w) for name, m, w in variants]
  plan += [("grid, warm", common + warm, True)]
  print(f"== {command}  (work in {work})", flush=True)
  load_before, started = os.getloadavg(), datetime.datetime.now(datetime.timezone.utc)
  runs, records = {}, {}
  try:
    print("== preparing the dataset (untimed)", flush=True)
    genjax(["train", "--config=experiments/mnist1d_kfold.py", "--progress=false",
            f"--workdir={work / 'prepare'}", "--config.num_epochs=1", "--config.cv.method=none",
            "--compilation_cache_dir="], work / "prepare.log")
    for i, (name, flags, is_warm) in enumerate(plan):
      print(f"== {name}: genjax {' '.join(flags)}", flush=True)
      wall, cpu = genjax([*flags, f"--workdir={work / f'run{i}'}"], work / f"run{i}.log")
      records[name] = json.load(open(work / f"run{i}" / "sweep.json"))
      runs[name] = {**summary(name, wall, cpu, records[name]), "warm": is_warm,
                    "command": "genjax " + " ".join(flags)}
    config = json.load(open(work / "run0" / "config.json"))
  finally:
    if not args.keep:
      shutil.rmtree(work, ignore_errors=True)
  grid = records["grid, warm"]
  comparisons = {name: compare(grid, records[name]) for name, _, _ in variants}
  prov = grid["provenance"]
  record = {
      "benchmark": "halving", "command": command,
      "started": f"{started:%Y-%m-%d %H:%M} UTC", "shrunk": shrunk or None,
      "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "platform": platform.platform()},
      "load_before": load_before[0], "load_after": os.getloadavg()[0],
      "provenance": {"git_commit": prov.get("git_commit"),
                     "genjax_source": prov.get("code", {}).get("genjax_source"),
                     "python": prov.get("python"), **prov.get("packages", {}),
                     "device_kind": prov.get("device_kind"),
                     "device_count": prov.get("device_count")},
      "points": len({m["point"] for m in grid["member_results"]}), "folds": folds,
      "epochs": epochs, "factor": FACTOR, "patience": config["early_stopping"]["patience"],
      "runs": runs, "comparisons": comparisons}
  with open(output, "w") as f:
    json.dump(record, f, indent=1)
  print()
  print(markdown(record))
  print(f"(JSON: {output})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
