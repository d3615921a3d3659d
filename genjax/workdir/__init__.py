"""A run's directory: claim and lock, identity, verified records, checkpoints, paths."""
