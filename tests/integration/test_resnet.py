"""The paper models: pre-activation ResNet-18/34 with width k and WideResNet-d-k.

Parameter counts against the architecture's formula coded here; 28×28 and 32×32×3 forward
passes; BatchNorm by default (statistics move in training, not in evaluation); a tiny ResNet
trains under 2-fold CV as one program (digits, 8×8); bad settings are refused."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import models
from genjax.config import defaults
from genjax.run import setup as experiment
from genjax.errors import ConfigError
from genjax.train.fit import fit
from genjax.train.program import build_program



def _count(c_in, num_classes, stem, stages):
  """Parameters + batch statistics of the pre-activation ResNet, by its definition:
  stages = [(width, blocks, stride)]; each BatchNorm holds 4 vectors (γ, β, mean, var)."""
  n, c = 9 * c_in * stem, stem
  for width, blocks, stride in stages:
    for b in range(blocks):
      s = stride if b == 0 else 1
      n += 4 * c + 9 * c * width + 4 * width + 9 * width * width
      if s != 1 or c != width:
        n += c * width
      c = width
  return n + 4 * c + c * num_classes + num_classes


def _model(name, shape, **fields):
  cfg = models.default_config()
  cfg.name = name
  for k, v in fields.items():
    cfg[k] = v
  return models.create(cfg, shape, 10)


@pytest.mark.parametrize("name,fields,shape,stages", [
    ("resnet", {"resnet_width": 4}, (28, 28, 1),
     [(4, 2, 1), (8, 2, 2), (16, 2, 2), (32, 2, 2)]),
    ("resnet", {"resnet_width": 2, "resnet_depth": 34}, (32, 32, 3),
     [(2, 3, 1), (4, 4, 2), (8, 6, 2), (16, 3, 2)]),
    ("wide_resnet", {"wrn_depth": 10, "wrn_width": 1}, (32, 32, 3),
     [(16, 1, 1), (32, 1, 2), (64, 1, 2)]),
])
def test_parameter_count_and_forward(name, fields, shape, stages):
  model = _model(name, shape, **fields)
  stem = 16 if name == "wide_resnet" else stages[0][0]
  shapes = model.param_shapes
  assert sum(p.size for p in jax.tree.leaves(shapes)) == _count(shape[-1], 10, stem, stages)
  # Random weights from numpy (the initializer, compiled, costs ~20 s here; the CV test below
  # runs it), unit variances for the statistics.
  rng = np.random.default_rng(0)
  params = jax.tree.map(lambda s, is_stat: (np.ones(s.shape, s.dtype) if is_stat else
                                            0.3 * rng.normal(size=s.shape).astype(s.dtype)),
                        shapes, model.stat_mask)
  assert model.has_batch_stats
  x = jax.random.normal(jax.random.key(1), (3, *shape))
  logits = jax.jit(lambda p, x: model.apply(p, x, train=False))(params, x)
  assert logits.shape == (3, 10) and bool(jnp.all(jnp.isfinite(logits)))
  _, after = jax.jit(model.apply_train)(params, x)
  moved = jax.tree.map(lambda is_stat, a, b: bool(is_stat) and not np.allclose(a, b),
                       model.stat_mask, params, after)
  assert any(jax.tree.leaves(moved))


def test_the_standard_resnet18_has_its_published_size():
  # Pre-activation ResNet-18 (k = 64) for 10 classes: kuangliu/pytorch-cifar's PreActResNet18
  # has 11,171,146 trainable parameters (its ResNet18's 11,173,962 less the stem's and the
  # shortcuts' BatchNorms, and block BatchNorms on the input side); it omits He et al.'s final
  # BN-ReLU before pooling, which genjax keeps: + 2 × 512. The running mean and variance of its
  # 3,904 normalized channels add 7,808 statistics.
  model = _model("resnet", (32, 32, 3))
  shapes = model.param_shapes
  total = sum(int(np.prod(s.shape)) for s in jax.tree.leaves(shapes))
  stats = sum(int(np.prod(s.shape)) for s, m in zip(jax.tree.leaves(shapes),
                                                    jax.tree.leaves(model.stat_mask)) if m)
  assert total - stats == 11_171_146 + 2 * 512 and stats == 7_808


def test_a_tiny_resnet_trains_under_cross_validation():
  config = defaults.get_config()
  config.data.name = "digits"
  config.data.standardize = "channel"
  config.model.name = "resnet"
  config.model.resnet_width = 4
  config.num_epochs = 2
  config.batch_size = 64
  config.checkpoint.enabled = False
  config.cv.method, config.cv.folds = "stratified_kfold", 2
  s = experiment.prepare(config, None)
  plans = experiment.fold_plans(config, s.splits.train_y)
  program = build_program(s, plans)
  assert (program.epoch_loop, program.convolutions) == ("scan", "patches")
  fitted = fit(program, [], num_epochs=2)
  accs = [r["val_accuracy"] for r in fitted.rows if r["epoch"] == 1]
  assert len(accs) == 2 and min(accs) > 0.2      # 10 classes: well above chance after 2 epochs


@pytest.mark.parametrize("fields,match", [
    ({"name": "resnet", "resnet_depth": 50}, "resnet_depth must be one of"),
    ({"name": "wide_resnet", "wrn_depth": 27}, "wrn_depth must be 6n"),
    ({"name": "resnet", "resnet_width": 0}, "resnet_width must be >= 1"),
])
def test_bad_settings_are_refused(fields, match):
  cfg = models.default_config()
  for k, v in fields.items():
    cfg[k] = v
  with pytest.raises(ConfigError, match=match):
    models.validate_config(cfg)


def test_a_resnet_needs_images():
  with pytest.raises(ConfigError, match="needs images"):
    _model("resnet", (40,))


def test_the_deep_double_descent_sweep_and_its_smoke_version_are_valid():
  # Both configs and their points; the smoke sweep runs below.
  from genjax.config import files as config_file
  for arg, widths in (("smoke", [1, 2]), ("", [1, 2, 4, 8, 16, 32, 64])):
    spec = "experiments/deep_double_descent.py" + (f":{arg}" if arg else "")
    config, module = config_file.load(spec)
    defaults.validate(config)
    assert [p["model.resnet_width"] for p in module.get_sweep(arg)] == widths
    assert config.data.label_noise == 0.15 and not config.early_stopping.enabled


def test_the_fashion_resnet_config_is_valid():
  from genjax.config import files as config_file
  config, _ = config_file.load("experiments/fashion_mnist_resnet.py:k=16")
  defaults.validate(config)
  assert config.model.resnet_width == 16 and config.cv.folds == 5


def test_the_deep_double_descent_smoke_sweep_runs_through_the_cluster_path(tmp_path):
  # The CPU smoke version end to end, as a researcher checks a sweep before submitting it:
  # each width one submitit job on this machine (ResNet-18 compiles per width: ~2 min here).
  import csv
  import json
  import os
  import subprocess
  import sys
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  workdir = tmp_path / "dd_smoke"
  out = subprocess.run([sys.executable, "-m", "genjax.main", "sweep",
                        "--config=experiments/deep_double_descent.py:smoke",
                        f"--workdir={workdir}", "--launcher=submitit_local", "--progress=false"],
                       cwd=root, capture_output=True, text=True, timeout=900)
  assert out.returncode == 0, out.stderr[-3000:]
  with open(workdir / "sweep.csv") as f:
    rows = list(csv.DictReader(f))
  assert [int(r["model.resnet_width"]) for r in rows] == [1, 2]
  for i, width in enumerate((1, 2)):
    group = workdir / f"group{i:02d}"
    with open(group / "config.json") as f:
      config = json.load(f)
    assert config["model"]["name"] == "resnet" and config["model"]["resnet_width"] == width
    assert config["data"]["label_noise"] == 0.15
    with open(group / "metrics.jsonl") as f:
      assert [json.loads(line)["epoch"] for line in f] == [0]   # its one epoch
  with open(workdir / "launch.json") as f:
    assert sorted(json.load(f)["groups"]) == ["0", "1"]          # one job per width
  assert (workdir / "selected.json").exists()

