"""One config -> one workdir: set-up, the one driver (hold-out is its one-member case), results,
and the one refit that sweep selection and nested CV also call."""
