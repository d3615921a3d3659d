"""Robust summaries of a point's member results, as rliable defines them (Agarwal et al. 2021).

A point's members form a (seeds, folds) array: seeds are the random runs, folds the fixed
conditions (rliable's "tasks"; the folds do not change with the seed).

* Interquartile mean: the mean of the middle 50% of all members' scores,
  IQM = scipy.stats.trim_mean(x, 0.25) over the flattened array.
* Stratified bootstrap interval: each replicate draws, for every fold, `seeds` seeds with
  replacement (`numpy.random.RandomState(seed).choice`, one (seeds, folds) index array per
  replicate, as `rliable.library.StratifiedBootstrap` draws them) and takes the IQM; the
  interval is the (1 − level)/2 and (1 + level)/2 percentiles of the replicates.
* Probability of improvement of A over B: per fold, P(X > Y) = U / (n·m) with U the
  Mann–Whitney statistic of A's seeds against B's (ties count ½), averaged over folds.

numpy at import; scipy inside the functions.
"""

from __future__ import annotations

import numpy as np

REPS = 50_000          # rliable's default resample count
LEVEL = 0.95


def _grid(scores) -> np.ndarray:
  arr = np.asarray(scores, dtype=np.float64)
  if arr.ndim != 2 or arr.size == 0:
    raise ValueError(f"scores must be a non-empty (seeds, folds) array; got shape {arr.shape}")
  if not np.isfinite(arr).all():
    raise ValueError("scores hold NaN or ±inf (a diverged member?); robust summaries need "
                     "finite results")
  return arr


def iqm(scores) -> float:
  """The interquartile mean (25% trimmed on each side) of all entries of `scores`."""
  from scipy import stats
  return float(stats.trim_mean(_grid(scores), 0.25, axis=None))


def iqm_interval(scores, *, reps: int = REPS, seed: int = 0, level: float = LEVEL) -> dict:
  """{"iqm", "ci": [lo, hi], "level", "reps", "seed", "method"} with the stratified bootstrap
  of the module docstring; one seed per fold cannot be resampled: "ci" None, a "reason"."""
  from scipy import stats
  arr = _grid(scores)
  if not 0.0 < level < 1.0:
    raise ValueError(f"level must be in (0, 1); got {level}")
  if int(reps) < 1:
    raise ValueError(f"reps must be >= 1; got {reps}")
  runs, folds = arr.shape
  out = {"iqm": iqm(arr), "ci": None, "level": float(level), "reps": int(reps), "seed": int(seed),
         "method": "stratified bootstrap over seeds within each fold (rliable), percentile"}
  if runs < 2:
    out["reason"] = "one seed per fold: nothing to resample; sweep seeds for an interval"
    return out
  idx = np.random.RandomState(seed).choice(runs, (int(reps), runs, folds), replace=True)
  replicates = stats.trim_mean(arr[idx, np.arange(folds)].reshape(int(reps), -1), 0.25, axis=1)
  alpha = (1.0 - level) / 2.0
  lo, hi = np.percentile(replicates, [100 * alpha, 100 * (1.0 - alpha)])
  out["ci"] = [float(lo), float(hi)]
  return out


def probability_of_improvement(a, b) -> float:
  """P(A > B): per fold, U / (n·m) of A's seeds against B's (Mann–Whitney U, ties ½), averaged
  over the folds. a, b: (seeds, folds) arrays with the same folds."""
  from scipy import stats
  a, b = _grid(a), _grid(b)
  if a.shape[1] != b.shape[1]:
    raise ValueError(f"a and b need the same folds; got shapes {a.shape} and {b.shape}")
  per_fold = [stats.mannwhitneyu(a[:, k], b[:, k], alternative="greater").statistic
              / (a.shape[0] * b.shape[0]) for k in range(a.shape[1])]
  return float(np.mean(per_fold))
