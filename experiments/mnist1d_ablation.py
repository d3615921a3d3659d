"""A paper-grade regularization ablation on MNIST-1D: techniques × 5 seeds × 5 folds, with
corrected p-values against no regularization; and nested CV of the tuned MLP.

The setup is experiments/mnist1d_regularization.py's: the reference MLP (40-100-100-10,
residual), Adam 1e-2, batch 100, 167 epochs, no early stopping (final weights), under
stratified 5-fold CV. `seed` (initialization, dropout, augmentation, shuffling) takes 5
values; the folds are fixed by `data.split_seed=0`, so every technique is paired with the
baseline over the same 25 (seed, fold) members.

    genjax sweep --config=experiments/mnist1d_ablation.py --workdir=runs/ablation --parallel_jobs=2

none, l2, wd, l1 and dropout differ only in numbers: one program of 5 techniques × 5 seeds
× 5 folds = 125 members (one compile); augment is its own process (25 members). The tables:
sweep.md (validation mean ± std over 25 members; the test split for the selected technique
only), sweep_compare.md (each technique − none: corrected resampled t, df 24).

    genjax sweep --config=experiments/mnist1d_ablation.py:nested --workdir=runs/nested

nested: the tuned MLP's accuracy by nested CV — 5 outer × 5 inner folds, the grid l2 ∈
{0, 1e-4, 1e-3} × dropout ∈ {0, 0.2} (6 points × 25 = 150 inner members in one program, then
5 refits), against the naive best-of-sweep score (nested.md).

`scripts/paper_tables ablation` and `scripts/paper_tables nested` write docs/pages/results/ablation.md and
docs/pages/results/nested_cv.md.
"""

from genjax.config import defaults

AUGMENT = "shift(max_shift=4)|slope(max_slope=0.375)|scale(lo=0.8,hi=1.2)|noise(std=0.05)"
TECHNIQUES = {
    "none": {},
    "l2": {"penalties.l2.strength": 1e-3},              # + λ/2 ‖W‖² in the loss
    "wd": {"penalties.weight_decay.strength": 1e-1},    # decoupled: w -= lr·wd·w (AdamW)
    "l1": {"penalties.l1.strength": 1e-4},              # + λ ‖W‖₁ in the loss
    "dropout": {"model.dropout": 0.2},
    "augment": {"data.augment": AUGMENT},
}
SEEDS = range(5)


def get_sweep(arg: str = "ablation"):
  if arg == "nested":
    return [{"name": f"l2={l2:g},dropout={p:g}", "penalties.l2.strength": l2, "model.dropout": p}
            for l2 in (0.0, 1e-4, 1e-3) for p in (0.0, 0.2)]
  # Each point lists only its own keys; the others take the config's values (0, no augment).
  return [{"name": name, "seed": seed, **values} for name, values in TECHNIQUES.items()
          for seed in SEEDS]


def get_config(arg: str = "ablation"):
  if arg not in ("ablation", "nested"):
    raise ValueError(f"unknown ARG '{arg}'; choose ablation or nested")
  config = defaults.get_config()
  config.data.name = "mnist1d"
  config.data.split_seed = 0
  config.model.name = "mlp"
  config.model.widths = (100, 100)
  config.model.residual = True
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 1e-2
  config.batch_size = 100
  config.num_epochs = 167
  config.early_stopping.enabled = False
  config.cv.method = "stratified_kfold"
  config.cv.folds = 5
  if arg == "nested":
    config.cv.outer_folds = 5
  return config
