"""Run by tests/train/test_parallel.py in a subprocess with 4 forced CPU devices.

Trains the same small K-fold problem under several device layouts and prints,
as one JSON line, each layout's metric rows, stop epochs and the largest
parameter difference to its single-device reference.
"""

import json
import os
import sys
import tempfile

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"

import jax  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "run"))
from test_kfold import _config  # noqa: E402

from genjax.run import setup as experiment  # noqa: E402

LAYOUTS = {
    "one_device": {"parallel.devices": 1},
    "data_shard_map": {"parallel.axis": "data"},
    "data_pmap": {"parallel.axis": "data", "parallel.backend": "pmap"},
    "one_device_4": {"parallel.devices": 1, "cv.folds": 4},
    "members_shard_map": {"parallel.axis": "members", "cv.folds": 4},
    "members_pmap": {"parallel.axis": "members", "cv.folds": 4, "parallel.backend": "pmap"},
}
REFERENCE = {"data_shard_map": "one_device", "data_pmap": "data_shard_map",
             "members_shard_map": "one_device_4", "members_pmap": "members_shard_map"}


def main():
  assert jax.device_count() == 4, jax.devices()
  trained = {}
  out = {}
  for name, overrides in LAYOUTS.items():
    config = _config(**{"num_epochs": 8, **overrides})
    config.checkpoint.enabled = False
    workdir = tempfile.mkdtemp()
    s = experiment.prepare(config, workdir)
    plans = experiment.fold_plans(config, s.splits.train_y)
    trained[name] = t = experiment.train(s, plans, workdir, resume=False, progress=False)[1]
    out[name] = {"rows": t.rows, "stopped_epoch": np.asarray(t.monitor.stopped_epoch).tolist(),
                 "selected_epoch": np.asarray(t.selected_epoch).tolist()}
  for name, ref in REFERENCE.items():
    out[name]["max_param_diff"] = max(
        float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
        for a, b in zip(jax.tree.leaves(trained[name].selected_params),
                        jax.tree.leaves(trained[ref].selected_params)))
  print(json.dumps(out))


if __name__ == "__main__":
  main()
