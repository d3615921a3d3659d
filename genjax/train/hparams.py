"""The one table of sweepable keys: which config values can vary across the members of one
compiled program, and where each member's value goes.

A sweep key that matches a row of `TABLE` is *numeric*: its values become a per-member array
(`MemberPlan.hparams`) and every point × fold trains in one program. Any other key is
*structural* (model, width, optimizer name, dataset...): one program per value.

Routes (where a member's value `v` goes):

* ``loss``      — a loss penalty's strength λ: the penalty term is λ·R(θ) with this member's λ;
* ``optimizer`` — an optax hyperparameter injected with `optax.inject_hyperparams`
                  (`genjax.optim.set_hyperparams` per member);
* ``model``     — a keyword of the model's call (e.g. ``dropout=v``);
* ``augment``   — an augmentation op's traced parameter (``Augmenter(overrides={"OP.PARAM": v})``);
* ``labels``    — the member's training labels (label noise: `MemberPlan.labels`);
* ``targets``   — the training targets' label smoothing α: ỹ = (1 − α)·y + α/C;
* ``ema``       — the decay d of the weights' moving average θ̄ ← d·θ̄ + (1 − d)·θ;
* ``seed``      — the member's model seed (`MemberPlan.seed`: initialization, dropout,
                  augmentation, shuffling); the data's randomness stays the group's
                  (`data.split_seed`, fixed to the base config's seed when it is unset).

Making a key sweepable is one `Sweepable` row: its pattern, and `where(match)` returning
(route, name within the route). `prepare` (optional) adjusts the structural group's base
config before anything is built (e.g. a transform penalty must be in the optimizer chain).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Callable

ROUTES = ("loss", "optimizer", "model", "augment", "labels", "targets", "ema", "seed")
SEED_KEY = "seed"


@dataclasses.dataclass(frozen=True)
class Sweepable:
  """One row: a sweep-key pattern and where a member's value for it goes."""
  pattern: str                                   # regex, matched in full against the key
  where: Callable[[re.Match], tuple[str, str]]   # match -> (route, name within the route)
  doc: str
  applies: Callable[[re.Match], bool] = lambda m: True   # e.g. only traceable op parameters
  # (base config, key, [value per point]) -> None: adjust the group's base config in place.
  prepare: Callable | None = None


def _penalty_where(m: re.Match) -> tuple[str, str]:
  from genjax import optim
  from genjax.optim import penalties
  if penalties.get(m[1]).kind == "loss":
    return "loss", m[1]
  return "optimizer", optim.hyperparam_name(m[1])


def _penalty_prepare(base, key: str, values: list) -> None:
  """A transform penalty (weight_decay, l1_prox) is built into the optimizer chain only when
  its strength is > 0: the group's base gets the largest swept value."""
  from genjax.optim import penalties
  name = key.split(".")[1]
  if penalties.get(name).kind != "loss" and max(values) > 0:
    base.penalties[name].strength = float(max(values))


def _augment_applies(m: re.Match) -> bool:
  from genjax.data import augment
  return m[1] in augment.known_ops() and augment.get_op(m[1]).traceable(m[2])


def _label_noise_prepare(base, key: str, values: list) -> None:
  """Each member corrupts the clean labels itself: the shared data stay clean."""
  base.data.label_noise = 0.0


def _ema_prepare(base, key: str, values: list) -> None:
  """Every member keeps an average (a member with decay 0 averages nothing: θ̄ = θ)."""
  base.ema.decay = float(max(values))


def _seed_prepare(base, key: str, values: list) -> None:
  """Seeds vary the model only: the split (hold-out, folds, label noise) is the base's."""
  if base.data.get("split_seed") is None:
    base.data.split_seed = int(base.seed)


TABLE: tuple[Sweepable, ...] = (
    Sweepable(SEED_KEY, lambda m: ("seed", "seed"),
              "the model's seed (initialization, dropout, augmentation, shuffling)",
              prepare=_seed_prepare),
    Sweepable(r"optimizer\.(learning_rate|weight_decay)", lambda m: ("optimizer", m[1]),
              "the peak learning rate; adamw's decoupled weight decay"),
    Sweepable(r"penalties\.(\w+)\.strength", _penalty_where,
              "a penalty's λ (loss penalties in the loss, transform penalties in the optimizer)",
              prepare=_penalty_prepare),
    Sweepable(r"model\.dropout", lambda m: ("model", "dropout"),
              "the dropout rate of every dropout layer"),
    Sweepable(r"data\.augment\.(\w+)\.(\w+)", lambda m: ("augment", f"{m[1]}.{m[2]}"),
              "a traced (non-static, numeric) parameter of an augmentation op in data.augment",
              applies=_augment_applies),
    Sweepable(r"data\.label_noise", lambda m: ("labels", "label_noise"),
              "the fraction of training labels replaced at random", prepare=_label_noise_prepare),
    Sweepable(r"loss\.label_smoothing", lambda m: ("targets", "label_smoothing"),
              "label smoothing α of the training targets"),
    Sweepable(r"ema\.decay", lambda m: ("ema", "decay"),
              "the decay of the weights' moving average (members evaluate their average)",
              prepare=_ema_prepare),
)


def lookup(key: str) -> tuple[Sweepable, re.Match] | None:
  """The row matching sweep key `key` and its match, or None (a structural key)."""
  for row in TABLE:
    m = re.fullmatch(row.pattern, key)
    if m and row.applies(m):
      return row, m
  return None


def is_numeric(key: str) -> bool:
  """Whether sweep key `key` can vary across the members of one program."""
  return lookup(key) is not None


def route(key: str) -> tuple[str, str]:
  """(route, name) for numeric key `key`; ValueError for a structural one."""
  found = lookup(key)
  if found is None:
    raise ValueError(f"{key} cannot vary across members of one program")
  row, m = found
  return row.where(m)


def routes(keys) -> dict[str, dict[str, str]]:
  """{route: {name within the route: sweep key}} for the members' swept keys."""
  out: dict[str, dict[str, str]] = {r: {} for r in ROUTES}
  for key in keys:
    where, name = route(key)
    out[where][name] = key
  return out


def member_values(point: dict) -> dict:
  """A point's per-member hyperparameter values, its seed aside (`MemberPlan.hparams`)."""
  return {k: v for k, v in point.items() if route(k)[0] != "seed"}


def member_seed(point: dict) -> int | None:
  """A point's swept seed (`MemberPlan.seed`), or None when it sweeps no seed."""
  seeds = [v for k, v in point.items() if route(k)[0] == "seed"]
  return int(seeds[0]) if seeds else None


def values_for(route_keys: dict[str, str], hparams: dict) -> dict:
  """{name: this member's value} of one route, from the member's `hparams` {key: value}."""
  return {name: hparams[key] for name, key in route_keys.items()}


def prepare_base(base, points: list[dict]) -> None:
  """Applies every swept key's `prepare` to a group's base config (in place)."""
  keys = sorted(points[0]) if points else []
  for key in keys:
    row, _ = lookup(key)
    if row.prepare is not None:
      row.prepare(base, key, [p[key] for p in points])

