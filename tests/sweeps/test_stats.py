"""genjax.sweeps.stats against independent computations on fixed numbers."""

import json
import math
import warnings

import numpy as np
import pytest
from scipy import stats as sps

from genjax.sweeps import stats

# 3 seeds × 5 folds of validation accuracies (fixed numbers); 5-fold CV of 1000 examples.
A = np.array([[0.912, 0.905, 0.921, 0.899, 0.915],
              [0.908, 0.917, 0.903, 0.911, 0.920],
              [0.915, 0.902, 0.918, 0.907, 0.913]])
B = np.array([[0.901, 0.903, 0.910, 0.897, 0.905],
              [0.902, 0.909, 0.904, 0.900, 0.911],
              [0.906, 0.900, 0.908, 0.905, 0.901]])
N_TRAIN, N_VAL = 800, 200


# scikit-learn example "Statistical comparison of models using grid search", coded from its
# formulas (its p is right-tailed; doubled here for the two-sided p of genjax.sweeps.stats).
def corrected_std(differences, n_train, n_test):
  kr = len(differences)
  corrected_var = np.var(differences, ddof=1) * (1 / kr + n_test / n_train)
  return np.sqrt(corrected_var)


def compute_corrected_ttest(differences, df, n_train, n_test):
  mean = np.mean(differences)
  t_stat = mean / corrected_std(differences, n_train, n_test)
  p_val = sps.t.sf(np.abs(t_stat), df) * 2
  return t_stat, p_val


def test_corrected_matches_sklearn_example_formulas():
  d = (A - B).ravel()
  t_ref, p_ref = compute_corrected_ttest(d, d.size - 1, N_TRAIN, N_VAL)
  res = stats.corrected_resampled_t(A, B, N_TRAIN, N_VAL)
  assert res["n"] == 15 and res["df"] == 14
  assert res["test"] == "corrected resampled t (Nadeau & Bengio 2003)"
  assert res["mean_difference"] == pytest.approx(d.mean(), rel=1e-12)
  assert res["std_difference"] == pytest.approx(np.std(d, ddof=1), rel=1e-12)
  assert res["t"] == pytest.approx(t_ref, rel=1e-12)
  assert res["p_value"] == pytest.approx(p_ref, rel=1e-10)
  half = sps.t.ppf(0.975, 14) * corrected_std(d, N_TRAIN, N_VAL)
  assert res["ci95"] == pytest.approx([d.mean() - half, d.mean() + half], rel=1e-12)
  assert "reason" not in res
  json.dumps(res)


def test_flat_and_2d_inputs_agree():
  assert stats.corrected_resampled_t(A.ravel(), B.ravel(), N_TRAIN, N_VAL) == \
      stats.corrected_resampled_t(A, B, N_TRAIN, N_VAL)


def test_hand_computed_tiny_example():
  # d = [0.01, 0.02, 0.03, 0.06]: d̄ = 0.03, Σ(d − d̄)² = (4 + 1 + 0 + 9)·1e-4, s² = 14/3·1e-4;
  # n_val/n_train = 20/80 = 1/4, J = 4: corrected factor 1/4 + 1/4 = 1/2, naive factor 1/4.
  a = [0.81, 0.82, 0.83, 0.86]
  b = [0.80, 0.80, 0.80, 0.80]
  t_corr = 0.03 / math.sqrt(0.5 * 14 / 3 * 1e-4)     # = 3·sqrt(3/7) = 1.9639610121...
  t_naive = 0.03 / math.sqrt(0.25 * 14 / 3 * 1e-4)   # = 3·sqrt(6/7) = 2.7774602993...
  assert t_corr == pytest.approx(1.9639610121, rel=1e-9)
  assert t_naive == pytest.approx(2.7774602993, rel=1e-9)

  def p_df3(t):  # two-sided p for df = 3 in closed form: 1 − (2/π)(x/(1 + x²) + atan x), x = |t|/√3
    x = abs(t) / math.sqrt(3)
    return 1 - 2 / math.pi * (x / (1 + x * x) + math.atan(x))

  t975_df3 = 3.182446305284263                       # t-table: t_{0.975, 3}
  corr = stats.corrected_resampled_t(a, b, n_train=80, n_val=20)
  assert corr["mean_difference"] == pytest.approx(0.03, rel=1e-9)
  assert corr["std_difference"] == pytest.approx(math.sqrt(14 / 3) * 0.01, rel=1e-9)
  assert corr["df"] == 3 and corr["n"] == 4
  assert corr["t"] == pytest.approx(t_corr, rel=1e-9)
  assert corr["p_value"] == pytest.approx(p_df3(t_corr), rel=1e-9)
  assert corr["p_value"] == pytest.approx(0.1442936128, rel=1e-8)
  half = t975_df3 * math.sqrt(7 / 3) * 0.01
  assert corr["ci95"] == pytest.approx([0.03 - half, 0.03 + half], rel=1e-9)
  naive = stats.naive_paired_t(a, b)
  assert naive["t"] == pytest.approx(t_naive, rel=1e-9)
  assert naive["p_value"] == pytest.approx(p_df3(t_naive), rel=1e-9)
  assert naive["p_value"] == pytest.approx(0.0691368693, rel=1e-8)


def test_naive_equals_scipy_ttest_rel():
  for a, b in [(A, B), (A[:1], B[:1]), (B, A), ([0.81, 0.82, 0.83, 0.86], [0.80, 0.80, 0.81, 0.79])]:
    ref = sps.ttest_rel(np.ravel(a), np.ravel(b))
    res = stats.naive_paired_t(a, b)
    assert res["test"] == "paired t (naive, ignores overlapping training sets)"
    assert res["t"] == pytest.approx(ref.statistic, rel=1e-12)
    assert res["p_value"] == pytest.approx(ref.pvalue, rel=1e-10)
    assert res["df"] == np.size(a) - 1
  ci = sps.ttest_rel(A.ravel(), B.ravel()).confidence_interval(0.95)
  assert stats.naive_paired_t(A, B)["ci95"] == pytest.approx([ci.low, ci.high], rel=1e-10)


def test_corrected_is_more_conservative():
  rng = np.random.default_rng(0)
  datasets = [(A, B)] + [(rng.normal(0.1, 1.0, (2, 5)), rng.normal(0.0, 1.0, (2, 5))) for _ in range(5)]
  for a, b in datasets:
    naive = stats.naive_paired_t(a, b)
    assert stats.corrected_resampled_t(a, b, 100, 0)["p_value"] == pytest.approx(naive["p_value"], rel=1e-12)
    for n_train, n_val in [(800, 200), (900, 100), (50, 50), (1000, 1)]:
      corr = stats.corrected_resampled_t(a, b, n_train, n_val)
      assert corr["p_value"] > naive["p_value"]
      assert abs(corr["t"]) < abs(naive["t"])
      assert corr["ci95"][1] - corr["ci95"][0] > naive["ci95"][1] - naive["ci95"][0]


def test_too_few_members_gives_reason():
  res = stats.corrected_resampled_t([0.9], [0.8], N_TRAIN, N_VAL)
  assert res["n"] == 1 and res["mean_difference"] == pytest.approx(0.1)
  assert res["p_value"] is None and res["ci95"] is None and res["t"] is None
  assert "at least 2" in res["reason"]
  assert stats.naive_paired_t([[0.9]], [[0.8]])["p_value"] is None


def test_zero_variance_without_warnings():
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    same = stats.corrected_resampled_t(A, A, N_TRAIN, N_VAL)
    shift = stats.corrected_resampled_t(np.full((2, 3), 0.75), np.full((2, 3), 0.5), N_TRAIN, N_VAL)
    down = stats.naive_paired_t(np.full(4, 0.5), np.full(4, 0.75))
  assert same["t"] == 0.0 and same["p_value"] == 1.0 and same["ci95"] == [0.0, 0.0]
  assert same["std_difference"] == 0.0 and "s² = 0" in same["reason"]
  assert shift["t"] == math.inf and shift["p_value"] == 0.0 and shift["ci95"] == [0.25, 0.25]
  assert down["t"] == -math.inf and down["p_value"] == 0.0


def test_bad_inputs_raise():
  with pytest.raises(ValueError, match="same shape"):
    stats.corrected_resampled_t(A, B[:, :4], N_TRAIN, N_VAL)
  with pytest.raises(ValueError, match="same shape"):
    stats.naive_paired_t(A, B.ravel())
  bad = A.copy()
  bad[1, 2] = np.nan
  with pytest.raises(ValueError, match=r"^a contains NaN"):
    stats.corrected_resampled_t(bad, B, N_TRAIN, N_VAL)
  with pytest.raises(ValueError, match=r"^b contains NaN"):
    stats.naive_paired_t(A, bad)
  with pytest.raises(ValueError, match=r"^b contains NaN"):
    stats.bootstrap_ci_over_seeds(A, bad)
  with pytest.raises(ValueError, match="n_train"):
    stats.corrected_resampled_t(A, B, 0, N_VAL)
  with pytest.raises(ValueError, match="n_val"):
    stats.corrected_resampled_t(A, B, N_TRAIN, -1)


def test_bootstrap_deterministic_and_covers_the_mean():
  first = stats.bootstrap_ci_over_seeds(A, B, n_boot=500, seed=3)
  assert first == stats.bootstrap_ci_over_seeds(A, B, n_boot=500, seed=3)
  assert first["ci"] != stats.bootstrap_ci_over_seeds(A, B, n_boot=500, seed=4)["ci"]
  lo, hi = first["ci"]
  assert lo <= first["mean_difference"] <= hi
  assert first["mean_difference"] == pytest.approx((A - B).mean(), rel=1e-12)
  assert (first["n_seeds"], first["n_folds"], first["n_boot"], first["level"]) == (3, 5, 500, 0.95)
  json.dumps(first)


def test_bootstrap_constant_shift_and_spread():
  rng = np.random.default_rng(1)
  b = rng.normal(0.9, 0.01, (6, 4))
  const = stats.bootstrap_ci_over_seeds(b + 0.05, b, n_boot=300)
  assert const["ci"] == pytest.approx([0.05, 0.05], abs=1e-12)
  assert const["ci"][0] - 1e-12 <= const["mean_difference"] <= const["ci"][1] + 1e-12
  noise = rng.normal(0.0, 1.0, (6, 4))
  widths = []
  for spread in (0.02, 0.01, 0.005):
    res = stats.bootstrap_ci_over_seeds(b + 0.05 + spread * noise, b, n_boot=300, seed=0)
    assert res["ci"][0] <= res["mean_difference"] <= res["ci"][1]
    widths.append(res["ci"][1] - res["ci"][0])
  assert widths[0] > widths[1] > widths[2] > 0
  assert widths[1] == pytest.approx(widths[0] / 2, rel=1e-6)  # same draws: width ∝ spread


def test_bootstrap_two_seeds_has_known_support():
  # r = 2: a replicate is m1, (m1 + m2)/2 or m2 with probability 1/4, 1/2, 1/4, so the
  # 2.5% / 97.5% quantiles of 2000 replicates are min and max of the seed means.
  a = np.array([[0.90, 0.92], [0.80, 0.84]])
  b = np.zeros((2, 2))
  res = stats.bootstrap_ci_over_seeds(a, b)
  assert res["ci"] == pytest.approx([0.82, 0.91], rel=1e-12)


def test_bootstrap_one_seed_gives_reason():
  res = stats.bootstrap_ci_over_seeds(A[:1], B[:1])
  assert res["ci"] is None and "at least 2 seeds" in res["reason"]
  assert res["mean_difference"] == pytest.approx((A[0] - B[0]).mean())
  with pytest.raises(ValueError, match=r"\(r, K\)"):
    stats.bootstrap_ci_over_seeds(A.ravel(), B.ravel())


def test_compare_applies_corrected_test_to_each_point():
  points = {"baseline": B, "wd=1e-4": A, "wd=1e-3": B + 0.01 * A}
  table = stats.compare(points, "baseline", n_train=N_TRAIN, n_val=N_VAL)
  assert list(table) == list(points) and table["baseline"] is None
  raw = []
  for name in ("wd=1e-4", "wd=1e-3"):    # fixed folds: the seeds' fold means are the pairs
    expected = stats.corrected_resampled_t(points[name].mean(0), B.mean(0), N_TRAIN, N_VAL)
    assert {k: table[name][k] for k in expected} == expected
    raw.append(expected["p_value"])
  holm = sorted(raw)
  holm = {min(1.0, 2 * holm[0]), max(min(1.0, 2 * holm[0]), holm[1])}
  assert {table[n]["p_adjusted"] for n in ("wd=1e-4", "wd=1e-3")} == holm
  with pytest.raises(KeyError, match="nope"):
    stats.compare(points, "nope", n_train=N_TRAIN, n_val=N_VAL)


def test_matches_mlxtend_kfold_paired_t():
  """mlxtend has no corrected test; its k-fold paired t must equal the naive one (fold scores fed in)."""
  from mlxtend import evaluate
  a, b, per_fold = A[0], B[0], 2                 # K = 5 contiguous folds of 2 rows each

  class Fixed:
    def __init__(self, scores):
      self.scores = scores

    def fit(self, x, y):
      return self

  def scorer(estimator, x_test, y_test):
    return estimator.scores[int(x_test[0, 0]) // per_fold]

  x = np.arange(5 * per_fold, dtype=float).reshape(-1, 1)
  t, p = evaluate.paired_ttest_kfold_cv(Fixed(a), Fixed(b), x, np.zeros(len(x)), cv=5,
                                        scoring=scorer, shuffle=False)
  res = stats.naive_paired_t(a, b)
  assert res["t"] == pytest.approx(t, rel=1e-9) and res["p_value"] == pytest.approx(p, rel=1e-9)


def test_matches_baycomp_correlated_t():
  """baycomp's CorrelatedTTest (Corani & Benavoli 2015) scales s² by 1/n + 1/(K − 1), the
  Nadeau-Bengio factor with n_val/n_train = 1/(K − 1) (here 200/800, K = 5): its posterior
  Student t has genjax's t statistic and df, and its tail probabilities give genjax's p."""
  from baycomp.single import CorrelatedTTest
  r, k = A.shape
  assert N_VAL / N_TRAIN == 1 / (k - 1)
  mean, var, df = CorrelatedTTest.compute_statistics(B.ravel(), A.ravel(), runs=r)
  res = stats.corrected_resampled_t(A, B, N_TRAIN, N_VAL)
  assert res["mean_difference"] == pytest.approx(mean, rel=1e-12)
  assert res["t"] == pytest.approx(mean / math.sqrt(var), rel=1e-12) and res["df"] == df
  p_left, p_right = CorrelatedTTest.probs(B.ravel(), A.ravel(), runs=r)
  assert res["p_value"] == pytest.approx(2 * min(p_left, p_right), rel=1e-9)
