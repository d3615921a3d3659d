"""genjax: a JAX/Flax framework for training models that generalize."""

__version__ = "0.1.0"
