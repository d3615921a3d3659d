"""Training: pure steps and epochs (`steps`), and the single-model driver (`loop.fit`)."""
