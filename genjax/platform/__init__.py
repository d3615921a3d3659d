"""The machine: JAX runtime set-up and multi-process (jax.distributed) runs."""
