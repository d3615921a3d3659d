"""The k-fold benchmark task in scikit-learn: MLPClassifier under cross_validate.

The closest standard equivalent, not the identical model: MLPClassifier has no residual
connection and no dropout, and its `alpha` is an L2 penalty added to the loss (coupled with
Adam) rather than decoupled weight decay; it also does not validate after every epoch (each
fold is scored once, at the end). Same data, same folds, same per-fold standardization
(StandardScaler in a Pipeline), 100-100 hidden ReLU, Adam lr 1e-3, batch 100, 20 epochs.
Run: .bench/venv/bin/python scripts/peers/sklearn_kfold.py
"""

import os
import sys
import warnings

import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import cross_validate
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

NOTE = ("no residual, no dropout; L2 alpha=1e-4 in the loss instead of decoupled decay; "
        "scored once per fold, not every epoch")


def main():
  warnings.filterwarnings("ignore", category=ConvergenceWarning)
  x, y = common.load_mnist1d()
  with common.Timer() as timer:
    pipe = Pipeline([
        ("scale", StandardScaler()),
        ("mlp", MLPClassifier(hidden_layer_sizes=(common.HIDDEN, common.HIDDEN),
                              alpha=common.WEIGHT_DECAY, batch_size=common.BATCH_SIZE,
                              learning_rate_init=common.LEARNING_RATE,
                              max_iter=common.EPOCHS, shuffle=True,
                              random_state=common.SEED, early_stopping=False)),
    ])
    scores = cross_validate(pipe, x, y, cv=common.splitter(), n_jobs=1, scoring="accuracy")
  common.emit("sklearn", timer.seconds, scores["test_score"],
              framework=f"scikit-learn {sklearn.__version__}", note=NOTE)


if __name__ == "__main__":
  main()
