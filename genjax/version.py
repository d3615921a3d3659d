"""genjax's version (a module of its own: what records it need not import the package)."""

__version__ = "0.1.0"
