"""The one refit: members retrained without early stopping for the epochs their selection chose.

Every refit of genjax goes through `refit`: `genjax train` with `cv.refit` (one member on the
whole training split, for the median of the folds' selected epochs + 1), a sweep's selected
point (`genjax.sweeps.select`: the same, for that point) and nested CV's refits
(`genjax.sweeps.nested`: one member per outer fold × seed, each with its own point's
hyperparameters, training part and epoch count, all in one program).

A member (`Member`) is its plan (training part, hyperparameters, seed, member id), the selected
epochs of the members it stands for, and where it is evaluated once: the test split, or
held-out indices into the training split. Members train on the config's schedule (spanning
`num_epochs`, as the members they stand for did), still tracking the monitored value; with
several members, each is frozen after its own epoch count. The program's files:
`metrics_<name>.jsonl` and `<checkpoint.subdir>_<name>`.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from genjax.run import results as results_lib, setup as experiment
from genjax.train.fit import fit
from genjax.train.members import MemberPlan
from genjax.train.program import build_program


def epochs_for(selected_epochs: Sequence[int]) -> int:
  """The median of `selected_epochs` + 1 (epochs count from 0)."""
  return int(np.median(selected_epochs)) + 1


@dataclasses.dataclass(frozen=True)
class Member:
  """One member to refit (module docstring). `held_out`: indices into the training split it
  is evaluated on; None: the test split."""
  plan: MemberPlan
  selected_epochs: Sequence[int]
  held_out: np.ndarray | None = None
  name: str | None = None   # its metric rows' and checkpoints' name (several members)

  @property
  def epochs(self) -> int:
    return epochs_for(self.selected_epochs)


def on_training_split(s: experiment.Setup, selected_epochs: Sequence[int], *,
                      member_id: int) -> Member:
  """One member on the whole training split, evaluated on the test split: `cv.refit`'s model
  (member id K, after the K folds, so that it has keys of its own)."""
  everything = np.arange(len(s.splits.train_y), dtype=np.int32)
  return Member(MemberPlan(member_id, everything, np.zeros(0, np.int32)), selected_epochs)


@dataclasses.dataclass(frozen=True)
class Refitted:
  """One refit member's numbers: its metrics where it was evaluated, the epochs it trained,
  its weights' summary."""
  metrics: dict[str, float]
  epochs: int
  selected_weights: dict[str, float]

  def record(self) -> dict:
    """results.json's and selected.json's `test_refit`."""
    return {**self.metrics, "epochs": self.epochs, "selected_weights": self.selected_weights}


def refit(s: experiment.Setup, members: list[Member], workdir: str | None, *, resume: bool,
          progress: bool, name: str = "refit", label: str = "refit") -> list[Refitted]:
  """Trains `members` as one program (module docstring) and evaluates each once."""
  epochs = [m.epochs for m in members]
  names = [m.name for m in members]
  # One member trains exactly the epochs `fit` is given; several are each frozen at their own.
  program = build_program(s, [m.plan for m in members], use_early_stopping=False,
                          epoch_limits=epochs if len(members) > 1 else None,
                          member_names=None if None in names else names)
  callbacks = experiment.callbacks_for(
      s, program, workdir, progress=progress, label=label,
      ckpt_subdir=f"{s.config.checkpoint.subdir}_{name}", metrics_name=f"metrics_{name}.jsonl")
  fitted = fit(program, callbacks, num_epochs=max(epochs), resume=resume)
  evaluate = jax.jit(program.evaluate)
  out = []
  for j, m in enumerate(members):
    params = results_lib.member_slice(fitted.selected_params, j)
    if m.held_out is None:
      (x, y), n = s.x_test(), len(s.splits.test_y)
      idx = jnp.arange(n, dtype=jnp.int32)
    else:
      x, y, n = program.x_train, program.y_train, len(m.held_out)
      idx = jnp.asarray(m.held_out, jnp.int32)
    metrics = jax.device_get(evaluate(params, results_lib.member_slice(program.plan, j), x, y,
                                      idx, jnp.ones(n, jnp.float32)))
    out.append(Refitted({k: float(v) for k, v in metrics.items()},
                        int(fitted.selected_epoch[j]) + 1, results_lib.weight_summary(params)))
  return out
