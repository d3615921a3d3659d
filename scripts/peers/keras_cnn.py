"""The CNN benchmark task (scripts/peers/cnn_common.py) in Keras 3 on the JAX backend.

One `model.fit` per fold with `validation_data` (validation after every epoch, batches of
2000), Adam(lr 1e-3, epsilon 1e-8), channels-last as Keras defaults; a callback records each
epoch's end. Run: .bench/venv/bin/python scripts/peers/keras_cnn.py
"""

import os

os.environ["KERAS_BACKEND"] = "jax"  # before keras is imported

import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cnn_common as common  # noqa: E402


def build_model(keras):
  layers = keras.layers
  model = keras.Sequential([
      keras.Input(shape=(28, 28, 1)),
      layers.Conv2D(32, 3, padding="same", activation="relu"), layers.AveragePooling2D(2),
      layers.Conv2D(64, 3, padding="same", activation="relu"), layers.AveragePooling2D(2),
      layers.Flatten(), layers.Dense(256, activation="relu"), layers.Dropout(common.DROPOUT),
      layers.Dense(common.NUM_CLASSES)])
  model.compile(optimizer=keras.optimizers.Adam(learning_rate=common.LEARNING_RATE, epsilon=1e-8),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
  return model


def main():
  warnings.filterwarnings("ignore")
  import jax
  import keras

  assert keras.backend.backend() == "jax", keras.backend.backend()
  x, y = common.load_fashion_mnist()
  keras.utils.set_random_seed(common.SEED)
  clock = common.EpochClock()
  tick = keras.callbacks.LambdaCallback(on_epoch_end=lambda *_: clock.epoch_end())
  accs, images = [], 0
  t0 = time.perf_counter()
  for train_idx, val_idx in common.folds(y):
    xt, xv = common.standardize(x[train_idx], x[val_idx])
    images += len(train_idx)
    model = build_model(keras)
    clock.fold()
    history = model.fit(xt, y[train_idx], validation_data=(xv, y[val_idx]),
                        epochs=common.EPOCHS, batch_size=common.BATCH_SIZE, shuffle=True,
                        validation_batch_size=2000, callbacks=[tick], verbose=0)
    accs.append(history.history["val_accuracy"][-1])
  common.emit("keras", time.perf_counter() - t0, accs, clock.folds, images,
              framework=f"keras {keras.__version__} (jax {jax.__version__})")


if __name__ == "__main__":
  main()
