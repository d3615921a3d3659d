"""The k-fold benchmark task in Keras 3 on the JAX backend, written as a Keras user would.

One `model.fit` per fold with `validation_data` (validation after every epoch) and
`EarlyStopping(monitor="val_loss", patience=20, restore_best_weights=True)`: patience 20 means
every fold runs all 20 epochs (equal work with the other contenders) and ends on its best
weights; the fold's accuracy is `model.evaluate` after that restore.

AdamW(lr 1e-3, weight_decay 1e-4), decay excluded from biases. epsilon=1e-8 to match the other
contenders (Keras's own default is 1e-7). Run: .bench/venv/bin/python scripts/peers/keras_kfold.py
"""

import os

os.environ["KERAS_BACKEND"] = "jax"  # before keras is imported

import sys  # noqa: E402
import warnings  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def build_model(keras):
  layers = keras.layers
  inputs = keras.Input(shape=(40,))
  h1 = layers.Dropout(common.DROPOUT)(layers.Dense(common.HIDDEN, activation="relu")(inputs))
  h = layers.Dropout(common.DROPOUT)(layers.Dense(common.HIDDEN, activation="relu")(h1))
  h2 = layers.Add()([h1, h])
  logits = layers.Dense(common.NUM_CLASSES)(h2)
  model = keras.Model(inputs, logits)
  optimizer = keras.optimizers.AdamW(
      learning_rate=common.LEARNING_RATE, weight_decay=common.WEIGHT_DECAY, epsilon=1e-8)
  optimizer.exclude_from_weight_decay(var_names=["bias"])
  model.compile(
      optimizer=optimizer,
      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
      metrics=["accuracy"])
  return model


def main():
  warnings.filterwarnings("ignore")
  import jax
  import keras

  assert keras.backend.backend() == "jax", keras.backend.backend()
  x, y = common.load_mnist1d()
  keras.utils.set_random_seed(common.SEED)
  accs = []
  with common.Timer() as timer:
    for train_idx, val_idx in common.folds(y):
      xt, xv = common.standardize(x[train_idx], x[val_idx])
      yt, yv = y[train_idx], y[val_idx]
      model = build_model(keras)
      stop = keras.callbacks.EarlyStopping(
          monitor="val_loss", patience=20, restore_best_weights=True)
      model.fit(xt, yt, validation_data=(xv, yv), epochs=common.EPOCHS,
                batch_size=common.BATCH_SIZE, shuffle=True, callbacks=[stop], verbose=0)
      _, acc = model.evaluate(xv, yv, batch_size=common.BATCH_SIZE, verbose=0)
      accs.append(acc)
  common.emit("keras", timer.seconds, accs,
              framework=f"keras {keras.__version__} (jax {jax.__version__})")


if __name__ == "__main__":
  main()
