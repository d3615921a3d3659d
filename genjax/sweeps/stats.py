"""Paired statistics for ablation tables: is point A better than baseline B?

Member results form an array over (seed or repetition r, fold k); A and B are paired
over the same J = r·K (seed, fold) members, with differences d_j = a_j − b_j,
mean d̄ = Σ d_j / J and sample variance s² = Σ (d_j − d̄)² / (J − 1).

Corrected resampled t (Nadeau & Bengio 2003; the r×K-fold form of Bouckaert & Frank
2004): the members' training sets overlap, so the d_j are correlated and s²/J
understates Var(d̄); with n_val / n_train the held-out / training set sizes of one fold,

    t = d̄ / sqrt((1/J + n_val/n_train) · s²),   df = J − 1,
    p = 2 · (1 − T_df(|t|)),   ci95 = d̄ ± t_{0.975,df} · sqrt((1/J + n_val/n_train) · s²).

Fixed folds (`fixed_folds_t`, what sweep tables use): a seed sweep shares its folds across
seeds, so members (s, k) and (s′, k) see the same data; the seeds are averaged within each
fold and the J folds are the pairs (one fold, a hold-out: no test). `adjust_p` adjusts a
family of p-values (Holm 1979; Benjamini & Hochberg 1995).

The naive paired t (factor 1/J alone, = scipy.stats.ttest_rel) is kept for comparison;
it is anti-conservative here. `bootstrap_ci_over_seeds` resamples whole seeds (rows),
keeping each seed's folds paired, and reports a percentile interval for d̄.

numpy only at import; scipy is imported inside the functions that need it.
"""

from __future__ import annotations

import math

import numpy as np

CORRECTED_TEST = "corrected resampled t (Nadeau & Bengio 2003)"
NAIVE_TEST = "paired t (naive, ignores overlapping training sets)"


def _as_float(x, name: str) -> np.ndarray:
  """`x` as a float64 array; ValueError naming `name` if it holds NaN (or ±inf)."""
  arr = np.asarray(x, dtype=np.float64)
  if np.isnan(arr).any():
    raise ValueError(f"{name} contains NaN at {np.argwhere(np.isnan(arr)).tolist()}")
  if np.isinf(arr).any():
    raise ValueError(f"{name} contains ±inf at {np.argwhere(np.isinf(arr)).tolist()}")
  return arr


def paired_differences(a, b) -> np.ndarray:
  """d = a − b over the same members; a, b of one shape, (r, K) or flat (J,). Returns d, shape kept.

  ValueError on different shapes, an empty array, or NaN/inf in either (named).
  """
  a, b = _as_float(a, "a"), _as_float(b, "b")
  if a.shape != b.shape:
    raise ValueError(f"a and b must have the same shape (paired members); got {a.shape} and {b.shape}")
  if a.size == 0:
    raise ValueError("a and b are empty")
  return a - b


def _t_test(d: np.ndarray, factor: float, test: str) -> dict:
  """Paired t on differences d with Var(d̄) estimated as factor · s² (factor = 1/J naive).

  t = d̄ / sqrt(factor · s²), df = J − 1, two-sided p, ci95 = d̄ ± t_{0.975,df} · se.
  J < 2: t, df, p_value, ci95 None with a "reason". s² == 0 (all d_j equal): t = 0, p = 1
  when d̄ == 0, else t = ±inf, p = 0, ci95 = [d̄, d̄], with a "reason"; no warnings either way.
  """
  d = d.ravel()
  n = int(d.size)
  mean = float(d.mean())
  out = {"mean_difference": mean, "std_difference": None, "t": None, "df": None,
         "p_value": None, "ci95": None, "test": test, "n": n}
  if n < 2:
    out["reason"] = f"need at least 2 paired members for a variance; got J={n}"
    return out
  constant = bool(np.all(d == d[0]))     # exact test: var() of equal floats can be ~1e-34
  var = 0.0 if constant else float(d.var(ddof=1))
  out["std_difference"] = math.sqrt(var)
  out["df"] = n - 1
  if var == 0.0:
    if mean == 0.0:
      out.update(t=0.0, p_value=1.0)
    else:
      out.update(t=math.copysign(math.inf, mean), p_value=0.0)
    out["ci95"] = [mean, mean]
    out["reason"] = "all paired differences are equal (s² = 0): the t statistic is degenerate"
    return out
  from scipy import stats
  se = math.sqrt(factor * var)
  t = mean / se
  half = float(stats.t.ppf(0.975, n - 1)) * se
  out.update(t=t, p_value=float(2.0 * stats.t.sf(abs(t), n - 1)), ci95=[mean - half, mean + half])
  return out


def corrected_resampled_t(a, b, n_train: float, n_val: float) -> dict:
  """Nadeau & Bengio corrected resampled t of A against baseline B over J paired members.

  a, b: same shape, (r, K) or flat (J,); n_train, n_val: one fold's training and
  held-out set sizes (n_train > 0, n_val ≥ 0). Var(d̄) ≈ (1/J + n_val/n_train) · s².
  Returns {"mean_difference", "std_difference" (s), "t", "df", "p_value" (two-sided),
  "ci95": [lo, hi], "test", "n": J} (+ "reason" when J < 2 or s² == 0; see `_t_test`).
  """
  if not n_train > 0:
    raise ValueError(f"n_train must be > 0; got {n_train}")
  if not n_val >= 0:
    raise ValueError(f"n_val must be >= 0; got {n_val}")
  d = paired_differences(a, b)
  return _t_test(d, 1.0 / d.size + n_val / n_train, CORRECTED_TEST)


CORRECTED_INTERVAL = "corrected resampled t interval (Nadeau & Bengio 2003)"


def corrected_mean_ci(values, n_train: float, n_test: float) -> dict:
  """The mean of J cross-validated scores (e.g. nested CV's outer folds) with a 95% interval
  that allows for their overlapping training sets:

      mean ± t_{0.975, J−1} · sqrt((1/J + n_test/n_train) · s²),

  (`corrected_resampled_t` of the scores against 0). Returns {"mean", "std" (s), "ci95",
  "df", "n": J, "factor", "test"}; J < 2: "ci95" None with a "reason".
  """
  if not n_train > 0:
    raise ValueError(f"n_train must be > 0; got {n_train}")
  v = _as_float(values, "values").ravel()
  if v.size == 0:
    raise ValueError("values is empty")
  factor = 1.0 / v.size + n_test / n_train
  t = _t_test(v, factor, CORRECTED_INTERVAL)
  out = {"mean": t["mean_difference"], "std": t["std_difference"], "ci95": t["ci95"],
         "df": t["df"], "n": t["n"], "factor": factor, "test": CORRECTED_INTERVAL}
  if "reason" in t and t["ci95"] is None:
    out["reason"] = t["reason"]
  return out


def naive_paired_t(a, b) -> dict:
  """Uncorrected paired t (Var(d̄) ≈ s²/J), equal to scipy.stats.ttest_rel on the flattened members.

  Same contract and keys as `corrected_resampled_t`; anti-conservative when the members'
  training sets overlap (cross-validation), so report it only beside the corrected test.
  """
  d = paired_differences(a, b)
  return _t_test(d, 1.0 / d.size, NAIVE_TEST)


def bootstrap_ci_over_seeds(a, b, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
  """Percentile bootstrap interval for d̄, resampling seeds (rows) with replacement.

  a, b: same shape (r, K) (use x.reshape(-1, 1) for one value per seed). Each replicate
  draws r row indices uniformly with replacement (numpy Generator seeded by `seed`, so
  deterministic) and takes the mean difference over the drawn rows, each row's K folds kept
  together; ci = the (1−level)/2 and (1+level)/2 quantiles of the n_boot replicates.
  Returns {"mean_difference", "ci": [lo, hi], "level", "n_boot", "seed", "n_seeds": r,
  "n_folds": K, "method"}; r < 2: "ci" None with a "reason".
  """
  d = paired_differences(a, b)
  if d.ndim != 2:
    raise ValueError(f"bootstrap over seeds needs (r, K) arrays; got shape {d.shape}")
  if not 0.0 < level < 1.0:
    raise ValueError(f"level must be in (0, 1); got {level}")
  if int(n_boot) < 1:
    raise ValueError(f"n_boot must be >= 1; got {n_boot}")
  r, k = d.shape
  out = {"mean_difference": float(d.mean()), "ci": None, "level": float(level), "n_boot": int(n_boot),
         "seed": seed, "n_seeds": int(r), "n_folds": int(k),
         "method": "percentile bootstrap over seeds (rows), folds kept paired"}
  if r < 2:
    out["reason"] = f"need at least 2 seeds to resample; got r={r}"
    return out
  row_means = d.mean(axis=1)                       # equal K per row: mean of rows = mean of members
  rng = np.random.default_rng(seed)
  idx = rng.integers(0, r, size=(int(n_boot), r))
  replicates = row_means[idx].mean(axis=1)
  lo, hi = np.quantile(replicates, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
  out["ci"] = [float(lo), float(hi)]
  return out


def compare(points: dict, baseline: str, *, n_train: float, n_val: float,
            p_adjust: str = "holm") -> dict:
  """`fixed_folds_t(points[name], points[baseline], n_train, n_val)` for every name, the
  p-values adjusted together (`adjust_p(..., p_adjust)`: "p_adjusted", "p_adjust", "family").

  points: name -> (seeds, folds) array of member results, all of one shape; the baseline's
  own entry is None. Keeps the order of `points`. KeyError if `baseline` is not a point.
  """
  if baseline not in points:
    raise KeyError(f"baseline {baseline!r} not among points {list(points)}")
  base = points[baseline]
  out = {name: None if name == baseline else fixed_folds_t(value, base, n_train, n_val)
         for name, value in points.items()}
  tested = [r for r in out.values() if r is not None]
  adjusted = adjust_p([r["p_value"] for r in tested], p_adjust)
  for r, p in zip(tested, adjusted):
    r.update(p_adjusted=p, p_adjust=p_adjust, family=sum(q is not None for q in adjusted))
  return out

FIXED_FOLDS = "fixed folds, seeds averaged within each fold"


def fold_means(grid) -> np.ndarray:
  """(seeds, folds) member results → the J fold means over seeds, shape (folds,).

  With the folds fixed (`data.split_seed` shared by every seed), members (s, k) and (s′, k)
  train and validate on the same data: their results are not independent repetitions of the
  data's randomness. The seeds are averaged within each fold, and the folds (× cv repeats,
  which re-draw them) are the J repetitions the corrected test was derived for."""
  arr = _as_float(grid, "grid")
  if arr.ndim != 2:
    raise ValueError(f"fold_means needs a (seeds, folds) array; got shape {arr.shape}")
  return arr.mean(axis=0)


def fixed_folds_t(a, b, n_train: float, n_val: float, *, repeats: int = 1) -> dict:
  """The corrected resampled t of A against baseline B for (seeds, folds) member grids on
  fixed folds: `corrected_resampled_t` of their fold means (`fold_means`), J = folds,

      t = d̄ / sqrt((1/J + n_val/n_train) · s²),   df = J − 1,

  d_k the difference of fold k's means. `repeats` (the cv repeats inside the folds axis) is
  recorded. Keys of `corrected_resampled_t` plus "design" and "seeds"; with one fold (a
  hold-out split) there is no repetition of the data: p_value None with a "reason"."""
  a, b = _as_float(a, "a"), _as_float(b, "b")
  if a.shape != b.shape or a.ndim != 2:
    raise ValueError(f"a and b must be (seeds, folds) arrays of one shape; got {a.shape} "
                     f"and {b.shape}")
  out = corrected_resampled_t(fold_means(a), fold_means(b), n_train, n_val)
  out.update(design=FIXED_FOLDS, seeds=int(a.shape[0]), repeats=int(repeats))
  if a.shape[1] < 2:
    out["reason"] = ("one fixed split: seeds vary the model's randomness only, not the data, "
                     "so no test of the difference is valid; use cross-validation "
                     "(--config.cv.method=stratified_kfold) for a p-value")
  return out


P_ADJUST = {"holm": "Holm (1979) step-down, family-wise error",
            "bh": "Benjamini–Hochberg (1995), false discovery rate",
            "none": "unadjusted"}


def adjust_p(p_values, method: str = "holm") -> list:
  """Multiplicity-adjusted p-values of one family of m tests (None entries are not tests and
  stay None; m counts the others). With p_(1) ≤ … ≤ p_(m) sorted,

      Holm: p̃_(i) = max_{j ≤ i} min(1, (m − j + 1) · p_(j)),
      BH:   p̃_(i) = min_{j ≥ i} min(1, m / j · p_(j)),
      none: p̃ = p.

  Returned in the input's order. ValueError for an unknown method or a p outside [0, 1]."""
  if method not in P_ADJUST:
    raise ValueError(f"unknown p-value adjustment {method!r}; use one of {', '.join(P_ADJUST)}")
  where = [i for i, p in enumerate(p_values) if p is not None]
  p = np.array([float(p_values[i]) for i in where], dtype=np.float64)
  if np.any(~(p >= 0) | ~(p <= 1)):
    raise ValueError(f"p-values must be in [0, 1]; got {p.tolist()}")
  m = p.size
  adjusted = p.copy()
  if m and method != "none":
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    if method == "holm":
      steps = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * ranked))
    else:
      steps = np.minimum.accumulate(np.minimum(1.0, m / np.arange(1, m + 1) * ranked)[::-1])[::-1]
    adjusted[order] = steps
  out: list = [None] * len(p_values)
  for i, value in zip(where, adjusted):
    out[i] = float(value)
  return out
