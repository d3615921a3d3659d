"""What a run writes: files (JSON, plots, TensorBoard) and tables."""
