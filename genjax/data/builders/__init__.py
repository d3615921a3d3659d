"""Offline TFDS builders; importing this module registers them with TFDS.

| genjax name           | TFDS builder          | splits (train/test) | example      |
|-----------------------|-----------------------|---------------------|--------------|
| `mnist1d`             | `Mnist1d`             | 4000 / 1000         | float32 (40,)|
| `digits`              | `Digits`              | 1437 / 360          | uint8 (8,8,1)|
| `fashion_mnist_local` | `FashionMnistLocal`   | 60000 / 10000       | uint8 (28,28,1)|

None needs network or TensorFlow: features are `Tensor`s and `ClassLabel`s,
prepared with `download_and_prepare(file_format="array_record")`.
"""

from genjax.data.builders.digits import Digits
from genjax.data.builders.fashion_mnist_local import FashionMnistLocal
from genjax.data.builders.mnist1d import Mnist1d
from genjax.data.builders.mnist1d import Mnist1dConfig
from genjax.registry import Registry

# genjax name -> builder class, in registration order. Registered TFDS names equal these
# names (none collides with a TFDS catalog builder; tests check that). A builder class
# registered here is loaded by `genjax.data.load(name)` like these: a subclass of
# `genjax.data.builders._base.OfflineBuilder` (features X_KEY, "label", "index"). Arrays
# registered in memory (`genjax.data.arrays.register_arrays`) are entries here too: every
# `data.name` is looked up in this one registry before TFDS's catalog.
DATASETS: Registry[type] = Registry("offline dataset", config_key="data.name")
DATASETS.register("mnist1d", Mnist1d)
DATASETS.register("digits", Digits)
DATASETS.register("fashion_mnist_local", FashionMnistLocal)

BUILDERS = DATASETS  # Former name (a dict then): `.items()` and `in` work as before.

__all__ = ["BUILDERS", "DATASETS", "Digits", "FashionMnistLocal", "Mnist1d", "Mnist1dConfig"]
