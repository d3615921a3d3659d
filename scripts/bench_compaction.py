"""`scripts/bench compaction`: what `parallel.compaction` saves when early stopping fires.

With compaction (the default, `--config.parallel.compaction=True`) members whose early stopping
fired leave the compiled epoch program; without it they stay in it, frozen, and are still
computed every epoch. Both runs must give the same numbers. Workloads, each run by the genjax
CLI as a subprocess in a fresh workdir:

  kfold     `genjax train --config=experiments/mnist1d_kfold.py`: 5-fold MNIST-1D MLP,
            200 epochs, early stopping on val_loss with the experiment's patience (20), refit.
  ablation  `genjax sweep --config=experiments/mnist1d_ablation.py
            --config.early_stopping.enabled=True`: the published ablation's numeric group
            (none, l2, wd, l1, dropout × 5 seeds × 5 folds = 125 members in one program,
            167 epochs) with early stopping on at early_stopping's default settings (the
            experiment sets none but `enabled`, which it turns off: patience 10 from
            genjax/train/early_stopping.py's default_config). The "augment" technique is its
            own structural group (another process) and is left out: the script writes a
            config file into its temp dir whose get_sweep() returns the experiment's points
            minus the augment ones.

Timing: the settings alternate on, off, on, off, ... (GENJAX_BENCH_ROUNDS rounds, default 2)
and each setting's time is the min over its rounds. All runs share one persistent compilation
cache, private to this benchmark (in its temp dir): round 1 of each setting compiles cold and
fills it, so the min is a warm-cache run for both settings (the two settings compile different
programs, so one warm-up run would warm only one of them). The dataset is prepared by an
untimed 1-epoch run first. Wall time is the process's (time.perf_counter around the
subprocess); results.json's / sweep.json's `wall_time_s` (genjax's own clock, after start-up)
is recorded too. speedup = off / on.

Same numbers: every run's results.json (train) or sweep.json (sweep) is compared with the
first compaction-on run's, with `wall_time_s`, `provenance`, `compaction` and `group_config`
(sweep.json's hash of the resolved config, parallel.compaction included) removed at any depth,
and its metrics.jsonl (and metrics_refit.jsonl) byte for byte. Each run's provenance records
the genjax source hash: a change between runs (the tree edited during the benchmark) is
reported.

    scripts/bench compaction      # or: .venv/bin/python scripts/bench_compaction.py [--output F]

Writes BENCHMARKS.compaction.json (next to BENCHMARKS.md) and prints a markdown section to
paste into BENCHMARKS.md. Smoke runs (any of the shrinking variables below set) write their
JSON to a temp file instead, never to the repository's.

  GENJAX_BENCH_EPOCHS=N      --config.num_epochs=N for every workload
  GENJAX_BENCH_FOLDS=K       --config.cv.folds=K
  GENJAX_BENCH_SEEDS=S       the ablation's first S seeds only (of 5)
  GENJAX_BENCH_PATIENCE=P    --config.early_stopping.patience=P (so that a few-epoch smoke
                             run has stopped members to compact)
  GENJAX_BENCH_WORKLOADS=kfold,ablation   which workloads (default both)
  GENJAX_BENCH_ROUNDS=R      rounds of on/off (default 2; not a shrinking variable)
"""

import argparse
import datetime
import functools
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common  # noqa: E402
from bench_common import cpu_model, env_int  # noqa: E402,F401

genjax = functools.partial(bench_common.genjax, who="bench compaction")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "BENCHMARKS.compaction.json"
WORKLOADS = ("kfold", "ablation")
# Left out of the comparison: times, provenance, the compaction record itself, and sweep.json's
# `group_config` (sha256 of the resolved config, which holds parallel.compaction).
VOLATILE = ("wall_time_s", "provenance", "compaction", "group_config")
SHRINK = ("GENJAX_BENCH_EPOCHS", "GENJAX_BENCH_FOLDS", "GENJAX_BENCH_SEEDS",
          "GENJAX_BENCH_PATIENCE", "GENJAX_BENCH_WORKLOADS")

ABLATION_CONFIG = '''"""experiments/mnist1d_ablation.py's numeric group: its points minus "augment"."""
import importlib.util

_spec = importlib.util.spec_from_file_location("mnist1d_ablation", {path!r})
_ablation = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_ablation)


def get_config(arg: str = "ablation"):
  return _ablation.get_config(arg)


def get_sweep(arg: str = "ablation"):
  return [p for p in _ablation.get_sweep(arg)
          if p["name"] != "augment" and p.get("seed", 0) < {seeds}]
'''


def strip(record):
  """`record` without the keys that differ between otherwise identical runs."""
  if isinstance(record, dict):
    return {k: strip(v) for k, v in record.items() if k not in VOLATILE}
  if isinstance(record, list):
    return [strip(v) for v in record]
  return record


def diff_paths(a, b, path="") -> list[str]:
  """Where two JSON values differ (first few paths)."""
  if isinstance(a, dict) and isinstance(b, dict):
    out = []
    for k in sorted(set(a) | set(b)):
      if k not in a or k not in b:
        out.append(f"{path}.{k} (only in one)")
      else:
        out += diff_paths(a[k], b[k], f"{path}.{k}")
    return out
  if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
    return [p for i, (x, y) in enumerate(zip(a, b)) for p in diff_paths(x, y, f"{path}[{i}]")]
  return [] if a == b else [path or "."]


def workloads(work: Path, epochs, folds, seeds, patience) -> dict:
  """{name: (genjax subcommand + flags without workdir, record file)}."""
  shrink = ([f"--config.num_epochs={epochs}"] if epochs else []) + \
           ([f"--config.cv.folds={folds}"] if folds else []) + \
           ([f"--config.early_stopping.patience={patience}"] if patience else [])
  config = work / "ablation_numeric.py"
  config.write_text(ABLATION_CONFIG.format(path=str(ROOT / "experiments/mnist1d_ablation.py"),
                                           seeds=seeds if seeds else 5))
  return {
      "kfold": (["train", "--config=experiments/mnist1d_kfold.py", "--progress=false",
                 *shrink], "results.json"),
      "ablation": (["sweep", f"--config={config}", "--progress=false",
                    "--config.early_stopping.enabled=True", *shrink], "sweep.json"),
  }


def bench(name: str, args: list[str], record_file: str, work: Path, cache: Path,
          rounds: int) -> dict:
  runs = []
  for r in range(rounds):
    for enabled in (True, False):
      wd = work / f"{name}_{'on' if enabled else 'off'}_{r}"
      wall, cpu = genjax([*args, f"--workdir={wd}", f"--compilation_cache_dir={cache}",
                          f"--config.parallel.compaction={enabled}"], work / f"{wd.name}.log")
      record = json.load(open(wd / record_file))
      runs.append({"round": r, "enabled": enabled, "workdir": wd, "wall_s": wall, "cpu_s": cpu,
                   "wall_time_s": record["wall_time_s"], "compaction": record["compaction"],
                   "genjax_source": record["provenance"].get("code", {}).get("genjax_source"),
                   "record": record})
      print(f"bench compaction: {name} round {r} compaction={enabled}: {wall:.1f} s "
            f"(wall_time_s {record['wall_time_s']:.1f}); member-epochs "
            f"{record['compaction']['member_epochs']}, trained "
            f"{record['compaction']['trained_member_epochs']}, computed "
            f"{record['compaction']['computed_member_epochs']} (padding included)", flush=True)
  ref = runs[0]
  ref_record = strip(ref["record"])
  files = [f for f in ("metrics.jsonl", "metrics_refit.jsonl") if (ref["workdir"] / f).exists()]
  mismatches = []
  for run in runs[1:]:
    where = diff_paths(ref_record, strip(run["record"]))
    for f in files:
      if (run["workdir"] / f).read_bytes() != (ref["workdir"] / f).read_bytes():
        where.append(f)
    if where:
      mismatches.append({"round": run["round"], "enabled": run["enabled"], "differs": where[:10]})
  config = json.load(open(ref["workdir"] / "config.json"))
  es = config["early_stopping"]
  on = [r for r in runs if r["enabled"]]
  off = [r for r in runs if not r["enabled"]]
  c_on, c_off = on[0]["compaction"], off[0]["compaction"]
  best_on, best_off = min(r["wall_s"] for r in on), min(r["wall_s"] for r in off)
  own_on, own_off = min(r["wall_time_s"] for r in on), min(r["wall_time_s"] for r in off)
  members = ref["record"].get("members") or \
      c_on["member_epochs"] // max(1, ref["record"]["epochs_run"])
  return {
      "command": " ".join(["genjax", *args, "--config.parallel.compaction=True|False"]),
      "members": members,
      "num_epochs": config["num_epochs"],
      "epochs_run": ref["record"]["epochs_run"],
      "early_stopping": {"enabled": es["enabled"], "monitor": es["monitor"],
                         "patience": es["patience"], "min_delta": es["min_delta"],
                         "restore_best_weights": es["restore_best_weights"]},
      "parallel": ref["record"]["parallel"],
      "member_epochs": c_on["member_epochs"],
      "trained_member_epochs": c_on["trained_member_epochs"],
      "frozen_fraction": c_on["frozen_fraction"],
      "computed_member_epochs": {"on": c_on["computed_member_epochs"],
                                 "off": c_off["computed_member_epochs"]},
      "member_block": c_on["member_block"],
      "compaction_records_agree": all(
          {k: v for k, v in r["compaction"].items() if k not in ("enabled",
                                                                  "computed_member_epochs")}
          == {k: v for k, v in c_on.items() if k not in ("enabled", "computed_member_epochs")}
          for r in runs),
      "wall_s": {"on": best_on, "off": best_off},
      "wall_time_s": {"on": own_on, "off": own_off},
      "speedup": best_off / best_on,
      "speedup_wall_time_s": own_off / own_on,
      "runs": [{k: (str(v) if k == "workdir" else v) for k, v in r.items()
                if k not in ("record", "workdir")} for r in runs],
      "identical": not mismatches,
      "genjax_source_changed": len({r["genjax_source"] for r in runs}) > 1,
      "compared": [record_file + " (less " + ", ".join(VOLATILE) + ")", *files],
      "mismatches": mismatches,
  }


def markdown(record: dict) -> str:
  prov = record["provenance"]
  lines = [
      "## Compaction (scripts/bench compaction)", "",
      f"Run {record['started']} on {record['machine']['cpu']} ({record['machine']['cores']} "
      f"cores), `{record['command']}`, from commit {prov.get('git_commit', '?')} (genjax source "
      f"{prov.get('genjax_source', '?')[:12]}); jax {prov.get('jax', '?')}. Load average before "
      f"{record['load_before']:.2f}, after {record['load_after']:.2f} (1 min). "
      f"Min of {record['rounds']} alternating rounds per setting, warm private compilation cache "
      "(round 1 of each compiles); process wall time.", "",
      "| workload | members | epochs run | patience | member-epochs | trained | frozen "
      "| computed on / off | wall on | wall off | speedup | same numbers |",
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
  for name, w in record["workloads"].items():
    c = w["computed_member_epochs"]
    lines.append(
        f"| {name} | {w['members']} | {w['epochs_run']} | {w['early_stopping']['patience']} "
        f"| {w['member_epochs']} | {w['trained_member_epochs']} "
        f"| {100 * w['frozen_fraction']:.1f}% | {c['on']} / {c['off']} "
        f"| {w['wall_s']['on']:.1f} s | {w['wall_s']['off']:.1f} s | {w['speedup']:.2f}× "
        f"| {'yes' if w['identical'] else 'NO'} |")
  lines += ["", "genjax's own `wall_time_s` (after start-up), on / off: " + "; ".join(
      f"{name} {w['wall_time_s']['on']:.1f} / {w['wall_time_s']['off']:.1f} s "
      f"({w['speedup_wall_time_s']:.2f}×)" for name, w in record["workloads"].items()) + "."]
  changed = [n for n, w in record["workloads"].items() if w["genjax_source_changed"]]
  if changed:
    lines += ["", f"WARNING: genjax's source changed between the runs of {', '.join(changed)} "
              "(the tree was edited during the benchmark): rerun on a quiet tree."]
  if record["shrunk"]:
    lines += ["", f"SMOKE RUN ({record['shrunk']}): not the benchmark's sizes."]
  return "\n".join(lines) + "\n"


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                      help="JSON results file (default BENCHMARKS.compaction.json; a smoke run "
                           "writes to a temp file instead)")
  parser.add_argument("--keep", action="store_true", help="keep the runs' workdirs")
  args = parser.parse_args(argv)
  epochs, folds, seeds, patience = (
      env_int("GENJAX_BENCH_EPOCHS"), env_int("GENJAX_BENCH_FOLDS"),
      env_int("GENJAX_BENCH_SEEDS"), env_int("GENJAX_BENCH_PATIENCE"))
  rounds = env_int("GENJAX_BENCH_ROUNDS") or 2
  chosen = [w.strip() for w in os.environ.get("GENJAX_BENCH_WORKLOADS", "").split(",")
            if w.strip()] or list(WORKLOADS)
  unknown = [w for w in chosen if w not in WORKLOADS]
  if unknown:
    sys.exit(f"bench compaction: unknown workload(s) {unknown}; known: {', '.join(WORKLOADS)}")
  shrunk = " ".join(f"{v}={os.environ[v]}" for v in SHRINK if os.environ.get(v, "").strip())
  work = Path(tempfile.mkdtemp(prefix="genjax_bench_compaction_"))
  output = args.output
  if shrunk and output.resolve() == DEFAULT_OUTPUT.resolve():
    output = work.parent / f"{work.name}.json"
  command = " ".join([*(f"{v}={os.environ[v]}" for v in (*SHRINK, "GENJAX_BENCH_ROUNDS")
                        if os.environ.get(v, "").strip()), "scripts/bench compaction"])
  print(f"== {command}  (work in {work})", flush=True)
  cache = work / "xla"
  load_before, started = os.getloadavg(), datetime.datetime.now(datetime.timezone.utc)
  results = {}
  try:
    print("== preparing the dataset (untimed)", flush=True)
    genjax(["train", "--config=experiments/mnist1d_kfold.py", "--progress=false",
            f"--workdir={work / 'prepare'}", "--config.num_epochs=1", "--config.cv.method=none",
            f"--compilation_cache_dir={cache}"], work / "prepare.log")
    table = workloads(work, epochs, folds, seeds, patience)
    provenance = {}
    for name in chosen:
      sub, record_file = table[name]
      results[name] = bench(name, sub, record_file, work, cache, rounds)
      prov = json.load(open(work / f"{name}_on_0" / record_file))["provenance"]
      provenance = {"git_commit": prov.get("git_commit"),
                    "genjax_source": prov.get("code", {}).get("genjax_source"),
                    "python": prov.get("python"), **prov.get("packages", {}),
                    "device_kind": prov.get("device_kind"),
                    "device_count": prov.get("device_count")}
  finally:
    if not args.keep:
      shutil.rmtree(work, ignore_errors=True)
  record = {"benchmark": "compaction", "command": command,
            "started": f"{started:%Y-%m-%d %H:%M} UTC", "shrunk": shrunk or None,
            "machine": {"cpu": cpu_model(), "cores": os.cpu_count(),
                        "platform": platform.platform()},
            "load_before": load_before[0], "load_after": os.getloadavg()[0],
            "rounds": rounds, "provenance": provenance, "workloads": results}
  with open(output, "w") as f:
    json.dump(record, f, indent=1)
  print()
  print(markdown(record))
  print(f"(JSON: {output})")
  if not all(w["identical"] for w in results.values()):
    print("bench compaction: compaction on and off gave DIFFERENT numbers: "
          + json.dumps({n: w["mismatches"] for n, w in results.items() if w["mismatches"]}),
          file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
