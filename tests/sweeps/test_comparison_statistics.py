"""The comparison table's statistics against independent implementations: the multiplicity
adjustment (statsmodels), the fixed-folds design (baycomp, and a null simulation of its
false-positive rate), the robust summaries (rliable)."""

import math

import numpy as np
import pytest

from genjax.sweeps import compare, robust, stats

RNG = np.random.default_rng(7)


# --- adjusted p-values: statsmodels' multipletests ----------------------------------------

@pytest.mark.parametrize("method,oracle", [("holm", "holm"), ("bh", "fdr_bh")])
@pytest.mark.parametrize("m", [1, 2, 5, 12])
def test_adjusted_p_values_equal_statsmodels(method, oracle, m):
  from statsmodels.stats.multitest import multipletests
  for trial in range(20):
    p = RNG.uniform(0, 0.2, size=m)
    if m > 2 and trial % 2:
      p[1] = p[0]                                  # ties
    expected = multipletests(p, alpha=0.05, method=oracle)[1]
    assert stats.adjust_p(list(p), method) == pytest.approx(list(expected), rel=1e-12)


def test_entries_without_a_p_value_are_not_in_the_family():
  from statsmodels.stats.multitest import multipletests
  p = [0.01, None, 0.04, 0.03, None]
  got = stats.adjust_p(p, "holm")
  assert got[1] is None and got[4] is None
  assert [got[i] for i in (0, 2, 3)] == pytest.approx(
      list(multipletests([0.01, 0.04, 0.03], method="holm")[1]))
  assert stats.adjust_p(p, "none") == p


@pytest.mark.parametrize("bad", [[1.2], [-0.1], [float("nan")]])
def test_a_p_value_outside_0_1_is_refused(bad):
  with pytest.raises(ValueError, match=r"in \[0, 1\]"):
    stats.adjust_p(bad, "holm")


def test_an_unknown_adjustment_is_refused():
  with pytest.raises(ValueError, match="holm, bh, none"):
    stats.adjust_p([0.1], "bonferroni")


# --- the fixed-folds design: baycomp ------------------------------------------------------

@pytest.mark.parametrize("seeds,folds,repeats", [(3, 5, 1), (2, 10, 1), (4, 6, 2)])
def test_fixed_folds_test_equals_baycomp_on_the_fold_means(seeds, folds, repeats):
  """baycomp's CorrelatedTTest with runs = cv repeats on the seeds' fold means: the
  folds axis holds repeats × K folds, baycomp's ρ = 1/K gives n_val/n_train = 1/(K − 1)."""
  from baycomp.single import CorrelatedTTest
  k = folds // repeats
  a = RNG.normal(0.80, 0.02, size=(seeds, folds))
  b = a - RNG.normal(0.004, 0.01, size=(seeds, folds))
  n_train, n_val = 100.0 * (k - 1), 100.0
  res = stats.fixed_folds_t(a, b, n_train, n_val)
  mean, var, df = CorrelatedTTest.compute_statistics(b.mean(0), a.mean(0), runs=repeats)
  assert res["mean_difference"] == pytest.approx(mean, rel=1e-12)
  assert res["t"] == pytest.approx(mean / math.sqrt(var), rel=1e-12) and res["df"] == df
  p_left, p_right = CorrelatedTTest.probs(b.mean(0), a.mean(0), runs=repeats)
  assert res["p_value"] == pytest.approx(2 * min(p_left, p_right), rel=1e-9)
  assert res["design"] == stats.FIXED_FOLDS and res["seeds"] == seeds


def test_one_fixed_split_gives_no_p_value_and_says_why():
  a = RNG.normal(0.8, 0.02, size=(5, 1))
  res = stats.fixed_folds_t(a, a - 0.01, 900.0, 100.0)
  assert res["p_value"] is None and "cross-validation" in res["reason"]


def _members(acc: np.ndarray, n_train: int, n_val: int, reasons=None) -> list[dict]:
  """Member rows for points A (acc[0]) and B (acc[1]), each (seeds, folds)."""
  return [{"point": name, "seed": s, "fold": k, "val_accuracy": float(acc[p, s, k]),
           "train_size": n_train, "val_size": n_val,
           "stop_reason": (reasons or {}).get((name, s, k), "patience")}
          for p, name in enumerate(("B", "A")) for s in range(acc.shape[1])
          for k in range(acc.shape[2])]


def _null_ablations(n: int, seeds: int, folds: int):
  """`n` ablations with equal population means: A and B are the same linear classifier on two
  halves of the features, whose weights are equal, so neither is better on average, but either
  can be on one data set; a seed changes the classifier's SGD order only (little). Each draws
  its own data set; its folds come from genjax's splitter with a seed of its own, fixed across
  the seeds. Yields (members, the naive r×K p-value of the design genjax used before)."""
  from sklearn.linear_model import SGDClassifier
  from genjax.data.splits import kfold_splits
  rng = np.random.default_rng(0)
  d, size = 10, 200
  for i in range(n):
    x = rng.normal(size=(size, d))
    y = (x.sum(axis=1) + rng.normal(scale=2.0, size=size) > 0).astype(np.int32)
    splits = kfold_splits(y, method="stratified_kfold", folds=folds, shuffle=True, seed=i)
    acc = np.zeros((2, seeds, folds))
    for p, cols in enumerate((slice(0, d // 2), slice(d // 2, d))):
      for s in range(seeds):
        for k, (tr, va) in enumerate(splits):
          clf = SGDClassifier(max_iter=100, tol=None, average=True, random_state=1000 * i + s)
          acc[p, s, k] = clf.fit(x[tr][:, cols], y[tr]).score(x[va][:, cols], y[va])
    n_train, n_val = len(splits[0][0]), len(splits[0][1])
    diff = (acc[1] - acc[0]).ravel()
    naive = diff.mean() / math.sqrt(diff.var(ddof=1) * (1 / diff.size + n_val / n_train))
    from scipy import stats as scipy_stats
    yield _members(acc, n_train, n_val), 2 * scipy_stats.t.sf(abs(naive), diff.size - 1)


@pytest.mark.slow
def test_null_ablations_are_significant_at_most_5_percent_of_the_time():
  """400 ablations of two points with equal means, 5 seeds × 2 folds: genjax's p < 0.05 in at
  most 5% of them, within 2 Monte-Carlo standard errors (√(0.05·0.95/400) = 1.1 pt). The
  design genjax used before (all 10 members as repetitions) is over that bound on the same
  ablations: the check can fail."""
  n = 400
  hits = naive_hits = 0
  for members, naive_p in _null_ablations(n, seeds=5, folds=2):
    diff = compare.comparisons(members, "B", show_test=False)[1]["val_accuracy_difference"]
    hits += diff["p_value"] is not None and diff["p_value"] < 0.05
    naive_hits += naive_p < 0.05
  bound = 0.05 + 2 * math.sqrt(0.05 * 0.95 / n)
  assert hits / n <= bound, (hits / n, naive_hits / n)
  assert naive_hits / n > bound, (hits / n, naive_hits / n)


# --- robust summaries: rliable ------------------------------------------------------------

@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (10, 1)])
def test_iqm_and_its_interval_equal_rliable(shape):
  from rliable import library, metrics
  scores = RNG.normal(0.8, 0.03, size=shape)
  np.random.seed(11)                      # rliable draws from numpy's global state
  point, interval = library.get_interval_estimates(
      {"a": scores}, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=3000)
  mine = robust.iqm_interval(scores, reps=3000, seed=11)
  assert mine["iqm"] == pytest.approx(float(point["a"][0]), rel=1e-12)
  assert mine["ci"] == pytest.approx(list(interval["a"].ravel()), rel=1e-12)


def test_probability_of_improvement_equals_rliable():
  from rliable import metrics
  for shape in [(5, 3), (1, 5), (4, 1)]:
    a = np.round(RNG.normal(0.8, 0.02, size=shape), 2)    # rounded: ties happen
    b = np.round(RNG.normal(0.8, 0.02, size=shape), 2)
    assert robust.probability_of_improvement(a, b) == pytest.approx(
        float(metrics.probability_of_improvement(a, b)), rel=1e-12)


def test_one_seed_has_an_iqm_but_no_interval():
  from rliable import metrics
  scores = RNG.normal(size=(1, 8))
  out = robust.iqm_interval(scores, reps=100)
  assert out["ci"] is None and "seed" in out["reason"]
  assert out["iqm"] == pytest.approx(float(metrics.aggregate_iqm(scores)), rel=1e-12)


# --- the table ----------------------------------------------------------------------------

def _ablation(points=4, seeds=3, folds=4):
  acc = RNG.normal(0.8, 0.02, size=(points, seeds, folds))
  acc[1:] += np.linspace(0.0, 0.03, points - 1)[:, None, None]
  return [{"point": f"p{p}", "seed": s, "fold": k, "val_accuracy": float(acc[p, s, k]),
           "val_loss": 0.5, "selected_epoch": 3, "stop_reason": "patience",
           "train_size": 300, "val_size": 100}
          for p in range(points) for s in range(seeds) for k in range(folds)]


@pytest.mark.parametrize("method,column,oracle", [("holm", "p (Holm)", "holm"),
                                                  ("bh", "p (BH)", "fdr_bh")])
def test_the_table_adjusts_over_the_family_and_says_so(tmp_path, method, column, oracle):
  from statsmodels.stats.multitest import multipletests
  members = _ablation()
  compare.write(str(tmp_path), members, "p0", show_test=False, p_adjust=method)
  rows = compare.comparisons(members, "p0", show_test=False, p_adjust=method)
  raw = [r["val_accuracy_difference"]["p_value"] for r in rows[1:]]
  expected = multipletests(raw, method=oracle)[1]
  assert [r["val_accuracy_difference"]["p_adjusted"] for r in rows[1:]] == pytest.approx(
      list(expected), rel=1e-12)
  table = (tmp_path / "sweep_compare.md").read_text()
  assert f"| {column} |" in table.splitlines()[0]
  assert "adjusted for the 3 comparison(s) with the baseline" in table
  assert stats.P_ADJUST[method] in table and stats.FIXED_FOLDS in table
  for r, q in zip(rows[1:], expected):
    line = next(x for x in table.splitlines() if x.startswith(f"| {r['point']} |"))
    assert f"{q:.3g}" in line.split("|")[7]
    assert (" *" in line.split("|")[7]) == (q < 0.05)
  import csv
  with open(tmp_path / "sweep_compare.csv") as f:
    records = list(csv.DictReader(f))
  assert [float(r["p_adjusted"]) for r in records[1:]] == pytest.approx(list(expected))
  assert float(records[1]["probability_of_improvement"]) == pytest.approx(
      rows[1]["probability_of_improvement"])


def test_no_adjustment_drops_the_column_and_says_unadjusted(tmp_path):
  compare.write(str(tmp_path), _ablation(), "p0", show_test=False, p_adjust="none")
  table = (tmp_path / "sweep_compare.md").read_text()
  assert "p (Holm)" not in table and "unadjusted" in table


def test_a_diverged_member_is_marked(tmp_path):
  members = _ablation()
  members[-1]["stop_reason"] = "non_finite"
  compare.write(str(tmp_path), members, "p0", show_test=False)
  table = (tmp_path / "sweep_compare.md").read_text()
  assert "| p3 † |" in table and "p3: 1 member(s) diverged" in table
  assert r"\dag{}" in (tmp_path / "sweep_compare.tex").read_text()


def test_a_hold_out_seed_sweep_has_no_p_value_and_the_footnote_says_why(tmp_path):
  members = [m for m in _ablation(folds=1)]
  compare.write(str(tmp_path), members, "p0", show_test=False)
  table = (tmp_path / "sweep_compare.md").read_text()
  assert "none with one fixed split: use cross-validation" in table
  line = next(x for x in table.splitlines() if x.startswith("| p1 |"))
  assert line.split("|")[6].strip() == "–"


# --- the CLI: a bad value, and a rerun that differs, each one line with exit 2 --------------

import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SWEEP = ["sweep", "--config=experiments/mnist1d_mlp.py", "--progress=false",
         "--config.num_epochs=2", "--config.model.widths=(16,)",
         "--config.cv.method=stratified_kfold", "--config.cv.folds=2",
         "--config.checkpoint.enabled=false", "--sweep=model.dropout=0,0.2,0.4"]


def _genjax(workdir, extra=()):
  return subprocess.run([sys.executable, "-m", "genjax.main", *SWEEP, *extra,
                         f"--workdir={workdir}"], cwd=ROOT, capture_output=True, text=True,
                        timeout=600)


def test_an_unknown_p_adjust_is_one_line_exit_2(tmp_path):
  out = _genjax(tmp_path / "w", ["--p_adjust=bonferroni"])
  assert out.returncode == 2, out.stderr[-2000:]
  lines = out.stderr.strip().splitlines()
  assert len(lines) == 1 and "p_adjust" in lines[0] and "holm" in lines[0], lines
  assert not (tmp_path / "w").exists()


@pytest.mark.slow
def test_a_rerun_with_another_adjustment_or_baseline_is_refused(tmp_path):
  workdir = tmp_path / "w"
  first = _genjax(workdir, ["--p_adjust=bh"])
  assert first.returncode == 0, first.stderr[-3000:]
  table = (workdir / "sweep_compare.md").read_text()
  assert "| p (BH) |" in table and "Benjamini" in table
  before = {p: (workdir / p).read_bytes() for p in ("sweep_compare.md", "sweep.json")}
  for extra, named in ((["--p_adjust=holm"], "p_adjust"),
                       (["--p_adjust=bh", "--baseline=dropout=0.2"], "baseline")):
    out = _genjax(workdir, extra)
    assert out.returncode == 2, (extra, out.stderr[-2000:])
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "--overwrite" in lines[0] and named in lines[0], lines
  assert {p: (workdir / p).read_bytes() for p in before} == before
  again = _genjax(workdir, ["--p_adjust=bh"])          # the identical run: its stored rows
  assert again.returncode == 0, again.stderr[-2000:]
