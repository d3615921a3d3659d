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

# genjax name -> builder class. Registered TFDS names equal these names (none
# collides with a TFDS catalog builder; tests check that).
BUILDERS = {
    "mnist1d": Mnist1d,
    "digits": Digits,
    "fashion_mnist_local": FashionMnistLocal,
}

__all__ = ["BUILDERS", "Digits", "FashionMnistLocal", "Mnist1d", "Mnist1dConfig"]
