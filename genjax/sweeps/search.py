"""Schedules of successive halving and Hyperband, with epochs as the resource: which points
train to how many epochs, and how many of them go on (`--search=grid|halving|hyperband`).

A schedule is a list of `Rung`s: at rung i of a bracket, `candidates` points train to
`epochs` epochs, are ranked by their score (validation accuracy, mean over seeds x folds),
and the best `keep` go on to rung i + 1 (at a bracket's last rung nobody is pruned: keep =
candidates).

* `halving`: successive halving exactly as scikit-learn's `HalvingGridSearchCV` schedules
  it (`_search_successive_halving.py`, aggressive_elimination=False), for n points, factor
  f, min_epochs m, max_epochs M:

      n_required = 1 + ⌊log_f n⌋;  m = max(1, M // f^(n_required − 1)) if m is 'exhaust';
      n_possible = 1 + ⌊log_f (M // m)⌋;  iterations = min(n_possible, n_required);
      epochs_i = min(int(f^i · m), M);  candidates_0 = n, candidates_{i+1} = ⌈candidates_i / f⌉.

  The logs are scikit-learn's `math.log(x, f)` in floats, so they inherit its rounding:
  log(243, 3) = 4.999…, one rung fewer than exact arithmetic gives (as scikit-learn runs).
  As scikit-learn documents, the last rung may stop short of M (M=30, m=1, f=3: 1, 3, 9, 27).
  The rung count is capped by n_possible, so f^i · m <= M at every rung: epochs strictly
  increase and never collapse onto M.
* `hyperband`: Li et al. (2018), Algorithm 1, with R = M / m (the maximum in units of the
  minimum), exactly in integers and fractions: s_max = ⌊log_η R⌋ (the largest s with
  η^s <= R), B = (s_max + 1) R; bracket b = 0, 1, …, s_max runs s = s_max − b with
  n = ⌈B/R · η^s / (s + 1)⌉ points; its rung i = 0..s has n_i = ⌊n η^−i⌋ candidates trained to
  r_i = R η^(i−s) minimums, i.e. ⌊M · η^(i−s)⌋ epochs, and keeps ⌊n_i / η⌋ = n_{i+1}.

`keep_top` is the pruning rule (the k best, ties to the earlier point, NaN last); `replay`
applies it offline to known scores, `rung_table` lays the result out one row per rung.
Pure: nothing here trains or writes.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from fractions import Fraction
from typing import Callable

from genjax.errors import ConfigError

METHODS = ("grid", "halving", "hyperband")


@dataclasses.dataclass(frozen=True)
class Rung:
  """One rung: `candidates` points train to `epochs` epochs; `keep` of them go on."""
  bracket: int      # 0 for halving; Hyperband: 0 = the most aggressive bracket (s = s_max)
  rung: int         # iteration within the bracket, from 0 (scikit-learn's `iter`)
  epochs: int       # train the surviving points to this many epochs (`n_resources`)
  candidates: int   # points entering this rung (`n_candidates`)
  keep: int         # points that go on; at the bracket's last rung = candidates


def _sk_floor_log(x: int, base: int) -> int:
  """⌊log_base x⌋ as scikit-learn computes it (floats: 243, 3 -> 4)."""
  return math.floor(math.log(x, base))


def _halving_counts(n: int, factor: int, min_epochs, max_epochs: int) -> tuple[int, int, int]:
  """(min_epochs resolved, n_required, n_possible), scikit-learn's numbers."""
  n_required = 1 + _sk_floor_log(n, factor)
  if min_epochs == "exhaust":
    min_epochs = max(1, max_epochs // factor**(n_required - 1))
  n_possible = 1 + _sk_floor_log(max_epochs // min_epochs, factor)
  return min_epochs, n_required, n_possible


def halving_schedule(n_candidates: int, factor: int, min_epochs: int | str,
                     max_epochs: int) -> list[Rung]:
  """The rungs of successive halving of `n_candidates` points (bracket 0), as scikit-learn's
  HalvingGridSearchCV with resource='epochs' schedules them (module docstring)."""
  m, n_required, n_possible = _halving_counts(n_candidates, factor, min_epochs, max_epochs)
  n_iterations = min(n_possible, n_required)
  rungs, candidates = [], n_candidates
  for i in range(n_iterations):
    last = i == n_iterations - 1
    keep = candidates if last else math.ceil(candidates / factor)
    epochs = min(int(factor**i * m), max_epochs)
    rungs.append(Rung(0, i, epochs, candidates, keep))
    candidates = keep
  return rungs


def _s_max(max_epochs: int, min_epochs: int, factor: int) -> int:
  """⌊log_η R⌋ with R = max_epochs / min_epochs, exactly: the largest s with η^s m <= M."""
  s = 0
  while factor**(s + 1) * min_epochs <= max_epochs:
    s += 1
  return s


def hyperband_brackets(max_epochs: int, min_epochs: int, factor: int) -> list[list[Rung]]:
  """Hyperband's brackets (Li et al. 2018, Algorithm 1), the most aggressive first."""
  s_max = _s_max(max_epochs, min_epochs, factor)
  brackets = []
  for s in range(s_max, -1, -1):
    n = math.ceil(Fraction((s_max + 1) * factor**s, s + 1))
    rungs = []
    for i in range(s + 1):
      n_i = n // factor**i
      epochs = math.floor(max_epochs * Fraction(factor)**(i - s))
      rungs.append(Rung(s_max - s, i, epochs, n_i, n_i if i == s else n_i // factor))
    brackets.append(rungs)
  return brackets


def total_points(brackets: list[list[Rung]]) -> int:
  """How many points all the brackets start with together."""
  return sum(rungs[0].candidates for rungs in brackets)


def _is_int(x, least: int) -> bool:
  return isinstance(x, numbers.Integral) and not isinstance(x, bool) and x >= least


def validate(method: str, *, factor, min_epochs, max_epochs: int,
             n_candidates: int | None = None) -> None:
  """ConfigError in one line for a search that cannot run or would prune nothing ('grid'
  takes no search settings, so only its name is checked)."""
  if method not in METHODS:
    raise ConfigError(f"unknown search method {method!r}; use one of {', '.join(METHODS)}, "
                      "e.g. --search=halving")
  if method == "grid":
    return
  if not _is_int(factor, 2):
    raise ConfigError(f"search factor must be an integer >= 2, got {factor!r}; "
                      "e.g. --search_factor=3")
  if not _is_int(max_epochs, 1):
    raise ConfigError(f"{method} needs num_epochs an integer >= 1, got {max_epochs!r}; "
                      "e.g. num_epochs=27")
  if method == "hyperband" and min_epochs == "exhaust":
    raise ConfigError("hyperband needs an explicit minimum of epochs, not 'exhaust' "
                      "(that is for halving only); e.g. --search_min_epochs=1")
  if min_epochs != "exhaust" and not _is_int(min_epochs, 1):
    raise ConfigError(f"search min_epochs must be an integer >= 1 or 'exhaust', got "
                      f"{min_epochs!r}; e.g. --search_min_epochs=1")
  if min_epochs != "exhaust" and min_epochs > max_epochs:
    raise ConfigError(f"search min_epochs={min_epochs} exceeds num_epochs={max_epochs}; "
                      f"lower --search_min_epochs to at most {max_epochs}")
  if method == "halving":
    _validate_halving(factor, min_epochs, max_epochs, n_candidates)
  elif max_epochs < factor * min_epochs:
    raise ConfigError(f"hyperband from {min_epochs} to {max_epochs} epochs with factor "
                      f"{factor} is one bracket of one rung, so nothing is halved; "
                      + _widen(min_epochs, max_epochs, factor))


def _validate_halving(factor: int, min_epochs, max_epochs: int, n: int | None) -> None:
  """Halving's own refusals; without n, only what the epochs alone decide."""
  if n is None:
    if min_epochs != "exhaust" and max_epochs // min_epochs < factor:
      _one_rung(min_epochs, max_epochs, factor)
    return
  if n < 2:
    raise ConfigError(f"halving needs at least 2 points, got {n}; sweep more points "
                      "(e.g. a --sweep axis with several values) or use --search=grid")
  m, n_required, n_possible = _halving_counts(n, factor, min_epochs, max_epochs)
  if n_required == 1:
    raise ConfigError(f"halving {n} points with factor {factor} is a single rung, so "
                      f"nothing is pruned; sweep at least {factor} points or lower "
                      f"--search_factor to at most {n}")
  if n_possible == 1:
    _one_rung(m, max_epochs, factor)


def _one_rung(min_epochs: int, max_epochs: int, factor: int):
  raise ConfigError(f"halving from {min_epochs} to {max_epochs} epochs with factor {factor} "
                    "is a single rung, so nothing is pruned; "
                    + _widen(min_epochs, max_epochs, factor))


def _widen(min_epochs: int, max_epochs: int, factor: int) -> str:
  """The fix for max_epochs < factor · min_epochs: a larger maximum or a smaller minimum."""
  fix = f"raise num_epochs to at least {factor * min_epochs}"
  if max_epochs >= factor:
    fix += f" or lower --search_min_epochs to at most {max_epochs // factor}"
  return fix


def keep_top(scores: dict[str, float], k: int, order: list[str]) -> list[str]:
  """The k points of `order` with the highest score, ties to the earlier point in `order`,
  NaN (or a missing score) last; returned in `order`'s order."""
  def rank(i: int) -> tuple[bool, float, int]:
    s = scores.get(order[i], math.nan)
    return (math.isnan(s), -s if not math.isnan(s) else 0.0, i)

  best = sorted(range(len(order)), key=rank)[:max(k, 0)]
  return [order[i] for i in sorted(best)]


def replay(rungs: list[Rung], scores_at: Callable[[int], dict[str, float]],
           order: list[str]) -> list[list[str]]:
  """The points alive entering each rung of one bracket when `keep_top` prunes by the scores
  `scores_at(epochs)` (every point's score after that many epochs, e.g. an unpruned run's);
  alive[0] is `order`. ValueError if `order` is not the bracket's number of points."""
  if rungs and len(order) != rungs[0].candidates:
    raise ValueError(f"the bracket starts with {rungs[0].candidates} points, got "
                     f"{len(order)}")
  alive = [list(order)]
  for rung in rungs[:-1]:
    alive.append(keep_top(scores_at(rung.epochs), rung.keep, alive[-1]))
  return alive


def rung_table(rungs: list[Rung], alive: list[list[str]],
               scores: list[dict[str, float]]) -> list[dict]:
  """One row per rung that has an alive list: its place, the points entering and kept
  (alive[i + 1], or at the last rung those `keep_top` keeps), and the best score entering
  (NaN if none). `scores[i]` holds the scores at rung i's epochs."""
  rows = []
  for i, (rung, points) in enumerate(zip(rungs, alive)):
    kept = alive[i + 1] if i + 1 < len(alive) else keep_top(scores[i], rung.keep, points)
    valid = [s for s in (scores[i].get(p, math.nan) for p in points) if not math.isnan(s)]
    rows.append({"bracket": rung.bracket, "rung": rung.rung, "epochs": rung.epochs,
                 "candidates": rung.candidates, "kept": len(kept), "points": list(points),
                 "kept_points": list(kept), "best_score": max(valid, default=math.nan)})
  return rows
