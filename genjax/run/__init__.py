"""One config -> one workdir: set-up, the hold-out and K-fold drivers, results."""
