"""P2: the 5-fold Fashion-MNIST CNN in genjax and its peers; writes BENCHMARKS.md's CNN section.

Usually run through `scripts/bench cnn` (which makes .bench/venv first). Contenders, each a
fresh subprocess (imports and compilation count in its process time):
  genjax (vmapped folds)              scripts/bench_genjax_cnn.py --mode=vmapped
  genjax (folds one after another)    scripts/bench_genjax_cnn.py --mode=sequential
  PyTorch CPU, 2 threads (fold loop)  scripts/peers/torch_cnn.py
  Keras 3, JAX backend (fit per fold) scripts/peers/keras_cnn.py
The task is in scripts/peers/cnn_common.py (EPOCHS epochs: GENJAX_BENCH_CNN_EPOCHS, default 2).

Per contender: training time (data ready → every fold trained and validated), process time and
images/s over the training time (`images_per_s`). Targets (issue #15): genjax's 5 folds ≤ 1.0×
PyTorch's time; one member's step ≤ 1.3× PyTorch's (genjax's sequential folds against PyTorch's,
per image).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_kfold import (Contender, cpu_busy, fmt_busy, machine, replace_section,  # noqa: E402
                         run_one, versions)

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## CNN: 5-fold Fashion-MNIST (scripts/bench cnn)"
FOLDS = 5
EPOCHS = int(os.environ.get("GENJAX_BENCH_CNN_EPOCHS", "2"))
TARGET_FOLDS, TARGET_STEP = 1.0, 1.3


def contenders(threads: int) -> list[Contender]:
  peers = ROOT / "scripts" / "peers"
  genjax = str(ROOT / "scripts" / "bench_genjax_cnn.py")
  return [
      Contender("genjax", "genjax (vmapped folds)", "genjax", [genjax, "--mode=vmapped"], False),
      Contender("genjax-sequential", "genjax (folds one after another)", "genjax",
                [genjax, "--mode=sequential"], False),
      Contender("torch", f"PyTorch, CPU, {threads} threads (fold loop)", "peer",
                [str(peers / "torch_cnn.py"), f"--threads={threads}"], True),
      Contender("keras", "Keras 3, JAX backend (one fit per fold)", "peer",
                [str(peers / "keras_cnn.py")], True),
  ]


def check(r: dict) -> str:
  if r.get("epochs") != EPOCHS or r.get("folds") != FOLDS or len(r["fold_val_accuracy"]) != FOLDS:
    return f"unequal work: {r.get('folds')} folds x {r.get('epochs')} epochs, want {FOLDS} x {EPOCHS}"
  if any(len(e) != EPOCHS for e in r.get("epoch_s", [])) or not r.get("epoch_s"):
    return f"epoch times missing or incomplete: {r.get('epoch_s')}"
  return ""


def images_per_s(r: dict) -> float:
  """Training images of every epoch of every fold ÷ the training time (compilation included).

  Per-epoch times cannot be compared across contenders: genjax dispatches epoch e + 1 before
  it hands epoch e's metrics to its callbacks, so its first epoch's clock also holds most of
  the second's compute (`epoch_s` is kept in .bench/cnn-last.json, not used here)."""
  return r["train_images"] * r["epochs"] / r["wall_s"]


def build_section(rows, meta) -> str:
  by = {c.key: run for c, run, _ in rows if run is not None}
  m = meta["machine"]
  gv, pv = meta["genjax_versions"], meta["peer_versions"]
  out = [SECTION, "",
         f"Run {meta['date']} with `{meta['command']}` ({EPOCHS} epochs; one run each).", "",
         f"- Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), {m['memory']}; "
         f"before the run {fmt_busy(meta['busy_before'])} of the CPU was busy (load average "
         f"{meta['load_before']}).",
         f"- genjax venv: jax {gv.get('jax', '?')}, flax {gv.get('flax', '?')}; peer venv: torch "
         f"{pv.get('torch', '?')}, keras {pv.get('keras', '?')} on jax {pv.get('jax', '?')}.",
         "- Task (scripts/peers/cnn_common.py): Fashion-MNIST's 60000 training images, 5-fold "
         "StratifiedKFold(shuffle, seed 0) (genjax's folds checked equal), per-fold "
         "standardization, conv32-avgpool-conv64-avgpool-dense256 (dropout 0.2), Adam 1e-3, "
         "batch 128, validation after every epoch; accuracy = last epoch's validation accuracy.",
         "- *images/s*: 5 × 48000 training images × the epochs ÷ the training time (compilation "
         "included; genjax's compilation is a few seconds of it: its sequential folds, the first "
         "compiling, each took about as long). Ratios are training times.", "",
         "| contender | training time | process time | images/s | ratio to PyTorch | "
         "mean val accuracy | epoch formulation |",
         "|---|---:|---:|---:|---:|---:|---|"]
  torch = by.get("torch")
  for c, run, err in rows:
    if run is None:
      out.append(f"| {c.label} | failed: {err.splitlines()[0] if err else ''} | | | | | |")
      continue
    r = run.result
    ratio = f"{r['wall_s'] / torch.result['wall_s']:.2f}×" if torch else "—"
    out.append(f"| {c.label} | {r['wall_s']:.1f} s | {run.process_s:.1f} s | "
               f"{images_per_s(r):,.0f} | {ratio} | "
               f"{100 * r['mean_val_accuracy']:.2f}% | {r.get('framework', '')} |")
  out.append("")
  if torch and "genjax" in by and "genjax-sequential" in by:
    folds = by["genjax"].result["wall_s"] / torch.result["wall_s"]
    step = images_per_s(torch.result) / images_per_s(by["genjax-sequential"].result)
    mark = lambda v, t: "met" if v <= t else "NOT met"  # noqa: E731
    out += ["| target (issue #15) | target | measured |", "|---|---:|---:|",
            f"| genjax's 5 folds (vmapped) ÷ PyTorch's, training time | ≤ {TARGET_FOLDS}× | "
            f"{folds:.2f}× ({mark(folds, TARGET_FOLDS)}) |",
            f"| one member's step (genjax sequential ÷ PyTorch, per image) | ≤ {TARGET_STEP}× | "
            f"{step:.2f}× ({mark(step, TARGET_STEP)}) |", ""]
  return "\n".join(out)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--only", default="", help="comma-separated: genjax, genjax-sequential, torch, keras")
  p.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
  p.add_argument("--no-write", action="store_true", help="print the section, write nothing")
  p.add_argument("--genjax-python", default=str(ROOT / ".venv" / "bin" / "python"))
  p.add_argument("--peer-python", default=str(ROOT / ".bench" / "venv" / "bin" / "python"))
  p.add_argument("--torch-threads", type=int, default=2)
  p.add_argument("--timeout", type=float, default=3600, help="seconds per contender")
  p.add_argument("-v", "--verbose", action="store_true")
  args = p.parse_args(argv)
  chosen = [c for c in contenders(args.torch_threads)
            if not args.only or c.key in args.only.split(",")]
  busy_before, load_before = cpu_busy(), "%.2f %.2f %.2f" % os.getloadavg()
  rows = []
  for c in chosen:
    print(f"== {c.label} ...", end=" ", flush=True)
    python = args.genjax_python if c.venv == "genjax" else args.peer_python
    run = run_one(python, c, args.timeout, args.verbose, check=check)
    print(f"training {run.result['wall_s']:.1f} s, process {run.process_s:.1f} s" if run.ok
          else f"FAILED\n{run.error}", flush=True)
    rows.append((c, run if run.ok else None, run.error))
    (ROOT / ".bench").mkdir(exist_ok=True)   # each result as it comes (a long benchmark)
    (ROOT / ".bench" / "cnn-partial.json").write_text(json.dumps(
        {c.key: {"result": run.result, "process_s": run.process_s} for c, run, _ in rows
         if run is not None}, indent=1))
  meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
          "command": "scripts/bench cnn" + (f" --only {args.only}" if args.only else ""),
          "machine": machine(), "busy_before": busy_before, "load_before": load_before,
          "genjax_versions": versions(args.genjax_python, ["jax", "flax"]),
          "peer_versions": versions(args.peer_python, ["jax", "keras", "torch"])}
  section = build_section(rows, meta)
  print("\n" + section)
  (ROOT / ".bench").mkdir(exist_ok=True)
  (ROOT / ".bench" / "cnn-last.json").write_text(json.dumps(
      {"meta": meta, "runs": {c.key: run.result for c, run, _ in rows if run}}, indent=1))
  if any(run is None for _, run, _ in rows):
    print(f"bench: a contender failed; {args.output} left unchanged", file=sys.stderr)
    return 1
  if not args.no_write and not args.only:
    replace_section(Path(args.output), section)
    print(f"== wrote the CNN section of {args.output}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
