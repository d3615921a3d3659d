"""Training: pure steps and epochs (`steps`), members and their plans (`members`), device
layouts (`parallel`), and `loop.train_members`, which every driver (holdout, kfold, sweep) calls."""
