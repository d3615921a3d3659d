"""Runs the reference experiments and writes a digest of every number they produce.

    python scripts/same_numbers.py OUT_DIR          # runs, writes OUT_DIR/digest.json
    python scripts/same_numbers.py --compare A B    # digests A/digest.json and B/digest.json

The runs: the default experiment (experiments/mnist1d_mlp.py), the K-fold experiment
(experiments/mnist1d_kfold.py, with its refit), a 4-point numeric sweep (2 strengths x 2
dropout rates, 3 folds) and a 2-group structural sweep. The digest keeps every file's bytes
(sha256) except for results.json / sweep.json, where it keeps the parsed content without what
changes from run to run (wall times, provenance): a refactoring that keeps the numbers keeps the
digest. Run it on the code before and after a change, with the same machine and device count.
"""

import hashlib
import json
import os
import subprocess
import sys

RUNS = {
    "default": ["train", "--config=experiments/mnist1d_mlp.py"],
    "kfold": ["train", "--config=experiments/mnist1d_kfold.py", "--config.num_epochs=60"],
    "sweep4": ["sweep", "--config=experiments/mnist1d_kfold.py", "--config.num_epochs=25",
               "--config.cv.folds=3", "--config.cv.refit=false",
               "--sweep=penalties.l2.strength=0,1e-3", "--sweep=model.dropout=0,0.2"],
    "structural": ["sweep", "--config=experiments/mnist1d_mlp.py", "--config.num_epochs=15",
                   "--sweep=model.widths=(32,),(64,)", "--sweep=optimizer.learning_rate=1e-3,3e-3"],
}
VOLATILE = ("wall_time_s", "provenance")


def _strip(obj):
  if isinstance(obj, dict):
    return {k: _strip(v) for k, v in obj.items() if k not in VOLATILE}
  if isinstance(obj, list):
    return [_strip(v) for v in obj]
  return obj


def _differences(x, y, path=""):
  """(path, old, new) of every leaf that differs between two parsed JSON values."""
  if isinstance(x, dict) and isinstance(y, dict):
    for k in sorted(set(x) | set(y)):
      yield from _differences(x.get(k), y.get(k), f"{path}.{k}" if path else k)
  elif isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
    for i, (u, v) in enumerate(zip(x, y)):
      yield from _differences(u, v, f"{path}[{i}]")
  elif x != y:
    yield path, x, y


def digest(workdir: str) -> dict:
  out = {}
  for root, dirs, files in os.walk(workdir):
    dirs[:] = sorted(d for d in dirs if d not in ("checkpoints", "tensorboard", "selected"))
    for name in sorted(files):
      path = os.path.join(root, name)
      rel = os.path.relpath(path, workdir)
      if name in ("results.json", "sweep.json"):
        with open(path) as f:
          out[rel] = _strip(json.load(f))
      elif name.endswith((".jsonl", ".npz", ".csv", ".md", ".tex")):
        with open(path, "rb") as f:
          out[rel] = hashlib.sha256(f.read()).hexdigest()
  return out


def main(argv):
  if argv[1] == "--compare":
    a, b = (json.load(open(os.path.join(d, "digest.json"))) for d in argv[2:4])
    same = True
    for run in sorted(set(a) | set(b)):
      for rel in sorted(set(a.get(run, {})) | set(b.get(run, {}))):
        x, y = a.get(run, {}).get(rel), b.get(run, {}).get(rel)
        if x != y:
          same = False
          print(f"DIFFERS {run}/{rel}")
          for path, u, v in _differences(x, y):
            print(f"  {path}: {u!r} -> {v!r}")
    print("identical" if same else "different")
    return 0 if same else 1
  out_dir = os.path.abspath(argv[1])
  os.makedirs(out_dir, exist_ok=True)
  result = {}
  for run, args in RUNS.items():
    workdir = os.path.join(out_dir, run)
    cmd = [sys.executable, "-m", "genjax.main", *args, f"--workdir={workdir}", "--overwrite",
           "--progress=false"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    result[run] = digest(workdir)
    print(run, "done", flush=True)
  with open(os.path.join(out_dir, "digest.json"), "w") as f:
    json.dump(result, f, indent=1, sort_keys=True)
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
