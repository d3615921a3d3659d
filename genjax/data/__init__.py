"""Data: datasets by name (offline TFDS builders registered on import, your own arrays
registered with `register_arrays`) and splits."""

from genjax.data import builders  # Registers the offline TFDS builders.
from genjax.data.arrays import register_arrays
from genjax.data.arrays import unregister_arrays
from genjax.data.datasets import ArraySplits
from genjax.data.datasets import load
from genjax.data.datasets import OFFLINE_DATASETS
from genjax.data.splits import holdout_split

__all__ = ["ArraySplits", "OFFLINE_DATASETS", "builders", "holdout_split", "load",
           "register_arrays", "unregister_arrays"]
