"""Search schedules (`genjax.sweeps.search`): successive halving equals scikit-learn's
HalvingGridSearchCV run on a tiny estimator with an `epochs` parameter (candidates, epochs,
and which points survive), Hyperband equals a separate float transcription of Li et al.'s
Algorithm 1 and the paper's R=81, η=3 table, the pruning rule (ties, NaN, order), the
replay and its table, and every refusal in one line."""

import itertools
import math
import random
import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import HalvingGridSearchCV, PredefinedSplit

from genjax.errors import ConfigError
from genjax.sweeps import search


class _Epochs(ClassifierMixin, BaseEstimator):
  """Trains nothing; its score is its grid parameter `c`, so the ranks are known."""

  def __init__(self, c=0, epochs=1):
    self.c = c
    self.epochs = epochs

  def fit(self, X, y):
    self.classes_ = np.unique(y)
    return self

  def predict(self, X):
    return np.zeros(len(X), dtype=int)

  def score(self, X, y):
    return float(self.c)


def _accepted(n, factor, min_epochs, max_epochs) -> bool:
  try:
    search.validate("halving", factor=factor, min_epochs=min_epochs, max_epochs=max_epochs,
                    n_candidates=n)
  except ConfigError:
    return False
  return True


_ALL = [c for c in itertools.product(range(2, 41), (2, 3, 4), (1, 2, 3, "exhaust"),
                                     (5, 9, 27, 30, 81)) if _accepted(*c)]
# ~40 of them, and two on purpose: 243 with factor 3 (scikit-learn's float log(243, 3) is
# 4.999..., one rung fewer than exact) and 30 epochs stopping at 27.
_CASES = random.Random(0).sample(_ALL, 40) + [(243, 3, 1, 243), (9, 3, 1, 30)]


def _sklearn(n, factor, min_epochs, max_epochs):
  X, y = np.zeros((4, 1)), np.array([0, 1, 0, 1])
  cv = PredefinedSplit([-1, -1, 0, 0])            # one split: train on 2, test on 2
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    return HalvingGridSearchCV(_Epochs(), {"c": list(range(n))}, resource="epochs",
                               max_resources=max_epochs, min_resources=min_epochs,
                               factor=factor, cv=cv, refit=False).fit(X, y)


@pytest.mark.parametrize("n,factor,min_epochs,max_epochs", _CASES)
def test_halving_schedule_equals_sklearn(n, factor, min_epochs, max_epochs):
  sk = _sklearn(n, factor, min_epochs, max_epochs)
  rungs = search.halving_schedule(n, factor, min_epochs, max_epochs)
  assert [r.candidates for r in rungs] == sk.n_candidates_
  assert [r.epochs for r in rungs] == sk.n_resources_
  assert [r.rung for r in rungs] == list(range(sk.n_iterations_))
  assert {r.bracket for r in rungs} == {0}
  assert [r.keep for r in rungs] == sk.n_candidates_[1:] + sk.n_candidates_[-1:]
  res = sk.cv_results_
  for i, r in enumerate(rungs):            # the rows of each iteration: its epochs, and
    rows = np.flatnonzero(res["iter"] == i)  # the points that survived (score = c)
    assert len(rows) == r.candidates
    assert set(res["n_resources"][rows]) == {r.epochs}
    assert all(res["params"][j]["epochs"] == r.epochs for j in rows)
  names = [str(c) for c in range(n)]
  alive = search.replay(rungs, lambda epochs: {s: float(s) for s in names}, names)
  for i, points in enumerate(alive):
    rows = np.flatnonzero(res["iter"] == i)
    assert sorted(int(p) for p in points) == sorted(res["params"][j]["c"] for j in rows)


def test_halving_quirks():
  """scikit-learn's float logs (243 points, factor 3: five rungs, not six) and its last rung
  short of the maximum (30 epochs: 1, 3, 9, 27), written out."""
  rungs = search.halving_schedule(243, 3, 1, 243)
  assert [(r.candidates, r.epochs) for r in rungs] == [(243, 1), (81, 3), (27, 9), (9, 27),
                                                       (3, 81)]
  assert [r.epochs for r in search.halving_schedule(27, 3, 1, 30)] == [1, 3, 9, 27]
  assert [r.epochs for r in search.halving_schedule(9, 3, "exhaust", 30)] == [3, 9, 27]


def test_halving_rungs_are_consistent():
  """Over every accepted setting: epochs strictly increase up to max_epochs (never two rungs
  at one epoch count), each rung keeps ⌈candidates / f⌉ = the next rung's candidates."""
  for n, factor, min_epochs, max_epochs in _ALL:
    rungs = search.halving_schedule(n, factor, min_epochs, max_epochs)
    epochs = [r.epochs for r in rungs]
    assert len(rungs) >= 2 and epochs == sorted(set(epochs)) and epochs[-1] <= max_epochs
    for a, b in zip(rungs, rungs[1:]):
      assert a.keep == b.candidates == math.ceil(a.candidates / factor)
    assert rungs[-1].keep == rungs[-1].candidates


def _algorithm1(max_epochs, min_epochs, eta):
  """Li et al. (2018), Algorithm 1, in floats in units of the minimum: [(n_i, epochs_i,
  keep_i)] per bracket, r_i · min_epochs the epochs (ε guards the floors)."""
  R = max_epochs / min_epochs
  s_max = math.floor(math.log(R, eta) + 1e-9)
  B = (s_max + 1) * R
  brackets = []
  for s in range(s_max, -1, -1):
    n, r = math.ceil(B / R * eta**s / (s + 1) - 1e-9), R * eta**-s
    rows = []
    for i in range(s + 1):
      n_i, r_i = math.floor(n * eta**-i + 1e-9), r * eta**i
      keep = n_i if i == s else math.floor(n_i / eta + 1e-9)
      rows.append((n_i, math.floor(r_i * min_epochs + 1e-9), keep))
    brackets.append(rows)
  return brackets


@pytest.mark.parametrize("max_epochs,min_epochs,eta", [
    (81, 1, 3), (27, 1, 3), (30, 1, 3), (243, 3, 3), (30, 4, 3), (100, 1, 2), (64, 2, 4),
    (10, 1, 2), (50, 7, 2), (9, 3, 3), (1000, 1, 10)])
def test_hyperband_equals_algorithm1(max_epochs, min_epochs, eta):
  got = search.hyperband_brackets(max_epochs, min_epochs, eta)
  assert [[(r.candidates, r.epochs, r.keep) for r in b] for b in got] == \
      _algorithm1(max_epochs, min_epochs, eta)
  for b, rungs in enumerate(got):
    assert [(r.bracket, r.rung) for r in rungs] == [(b, i) for i in range(len(rungs))]
    assert min_epochs <= rungs[0].epochs and rungs[-1].epochs <= max_epochs
  assert search.total_points(got) == sum(b[0][0] for b in _algorithm1(max_epochs,
                                                                       min_epochs, eta))


def test_hyperband_paper_table():
  """Li et al. (2018), Table 1: R = 81, η = 3, (n_i, r_i) per bracket s = 4..0."""
  table = [[(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
           [(34, 3), (11, 9), (3, 27), (1, 81)],
           [(15, 9), (5, 27), (1, 81)],
           [(8, 27), (2, 81)],
           [(5, 81)]]
  got = search.hyperband_brackets(81, 1, 3)
  assert [[(r.candidates, r.epochs) for r in b] for b in got] == table
  assert search.total_points(got) == 81 + 34 + 15 + 8 + 5
  # the same in units of a 2-epoch minimum: every r_i doubles
  got = search.hyperband_brackets(162, 2, 3)
  assert [[(r.candidates, r.epochs) for r in b] for b in got] == \
      [[(n, 2 * r) for n, r in b] for b in table]


def test_keep_top():
  order = ["a", "b", "c", "d", "e"]
  scores = {"a": 0.5, "b": 0.9, "c": float("nan"), "d": 0.9, "e": 0.7}
  assert search.keep_top(scores, 1, order) == ["b"]               # tie: the earlier
  assert search.keep_top(scores, 2, order) == ["b", "d"]
  assert search.keep_top(scores, 3, order) == ["b", "d", "e"]
  assert search.keep_top(scores, 4, order) == ["a", "b", "d", "e"]  # NaN last
  assert search.keep_top(scores, 5, order) == order
  assert search.keep_top(scores, 2, ["d", "c", "b"]) == ["d", "b"]
  assert search.keep_top(scores, 1, ["d", "c", "b"]) == ["d"]      # tie: d given first
  assert search.keep_top({"a": 1.0}, 2, ["c", "a"]) == ["c", "a"]  # missing = NaN, last
  assert search.keep_top({"a": 1.0, "c": 2.0}, 1, ["c", "a"]) == ["c"]
  assert search.keep_top(scores, 0, order) == []


def test_replay_and_table():
  rungs = search.halving_schedule(6, 2, 1, 4)       # 6 points at 1, 3 at 2, 2 at 4 epochs
  assert [(r.candidates, r.epochs, r.keep) for r in rungs] == [(6, 1, 3), (3, 2, 2),
                                                               (2, 4, 2)]
  order = ["p0", "p1", "p2", "p3", "p4", "p5"]
  table = {1: {"p0": 0.1, "p1": 0.4, "p2": 0.4, "p3": float("nan"), "p4": 0.3, "p5": 0.2},
           2: {"p0": 0.9, "p1": 0.5, "p2": 0.6, "p3": 0.9, "p4": 0.6, "p5": 0.9},
           4: {"p0": 0.0, "p1": 0.7, "p2": 0.8, "p3": 0.0, "p4": 0.75, "p5": 0.0}}
  asked = []
  alive = search.replay(rungs, lambda e: asked.append(e) or table[e], order)
  # rung 0: best three of 0.1 .4 .4 nan .3 .2 -> p1 p2 p4; rung 1: .5 .6 .6 -> p2, p4 (tie
  # broken by order: p2 before p4 both kept); nothing pruned after the last rung
  assert alive == [order, ["p1", "p2", "p4"], ["p2", "p4"]]
  assert asked == [1, 2]
  rows = search.rung_table(rungs, alive, [table[r.epochs] for r in rungs])
  assert [(r["rung"], r["epochs"], r["candidates"], r["kept"]) for r in rows] == \
      [(0, 1, 6, 3), (1, 2, 3, 2), (2, 4, 2, 2)]
  assert [r["kept_points"] for r in rows] == [["p1", "p2", "p4"], ["p2", "p4"],
                                              ["p2", "p4"]]
  assert [r["points"] for r in rows] == alive
  assert [r["best_score"] for r in rows] == [0.4, 0.6, 0.8]
  assert {r["bracket"] for r in rows} == {0}
  with pytest.raises(ValueError):
    search.replay(rungs, table.get, order[:5])
  nan_rows = search.rung_table(rungs[:1], [["x"]], [{"x": float("nan")}])
  assert math.isnan(nan_rows[0]["best_score"])


def test_accepted():
  search.validate("grid", factor=None, min_epochs=None, max_epochs=1)
  search.validate("halving", factor=3, min_epochs="exhaust", max_epochs=27, n_candidates=9)
  search.validate("halving", factor=np.int64(2), min_epochs=1, max_epochs=2)
  search.validate("halving", factor=3, min_epochs=9, max_epochs=27)
  search.validate("halving", factor=3, min_epochs="exhaust", max_epochs=2)  # n unknown yet
  search.validate("hyperband", factor=3, min_epochs=1, max_epochs=3)


@pytest.mark.parametrize("method,kw,says", [
    ("random", {}, "unknown search method"),
    ("halving", {"factor": 1}, "search factor must be an integer >= 2, got 1"),
    ("halving", {"factor": True}, "search factor"),
    ("hyperband", {"factor": 2.0}, "search factor"),
    ("halving", {"max_epochs": 0}, "num_epochs an integer >= 1"),
    ("halving", {"min_epochs": 0}, "min_epochs must be an integer >= 1 or 'exhaust'"),
    ("halving", {"min_epochs": "smallest"}, "min_epochs must be"),
    ("halving", {"min_epochs": 1.5}, "min_epochs must be"),
    ("hyperband", {"min_epochs": "exhaust"}, "hyperband needs an explicit minimum"),
    ("halving", {"min_epochs": 28}, "min_epochs=28 exceeds num_epochs=27"),
    ("hyperband", {"min_epochs": 28}, "min_epochs=28 exceeds"),
    ("halving", {"n_candidates": 1}, "halving needs at least 2 points, got 1"),
    ("halving", {"n_candidates": 2}, "halving 2 points with factor 3 is a single rung"),
    ("halving", {"min_epochs": 10}, "halving from 10 to 27 epochs with factor 3 is a single"),
    ("halving", {"max_epochs": 2, "min_epochs": "exhaust"}, "halving from 1 to 2 epochs"),
    ("halving", {"min_epochs": 10, "n_candidates": None}, "halving from 10 to 27 epochs"),
    ("hyperband", {"min_epochs": 10}, "one bracket of one rung"),
    ("hyperband", {"max_epochs": 2, "min_epochs": 1}, "one bracket of one rung"),
])
def test_refusals_are_one_line(method, kw, says):
  settings = {"factor": 3, "min_epochs": 1, "max_epochs": 27, "n_candidates": 9, **kw}
  with pytest.raises(ConfigError) as err:
    search.validate(method, **settings)
  message = str(err.value)
  assert says in message and "\n" not in message and "; " in message
