"""genjax.registry.Registry: registration rules, lookup errors, temporary entries; and that
every pluggable kind (models, penalties, augment ops, optimizers, schedules, datasets) uses it."""

import pytest

from genjax.errors import ConfigError
from genjax.registry import Registry, definition


def _same_file_twice(source, name, filename="/tmp/genjax_registry_test_same_file.py"):
  """Two function objects from executing one file twice: the same definition."""
  out = []
  for _ in range(2):
    namespace = {}
    exec(compile(source, filename, "exec"), namespace)  # pylint: disable=exec-used
    out.append(namespace[name])
  return out


def test_register_get_names_items_contains_len():
  reg = Registry("widget", config_key="widget.name")

  @reg.register("b")
  def b():
    return "b"

  reg.register("a", len)
  assert reg.get("b") is b and reg.get("a") is len
  assert reg.names() == ["a", "b"]                  # sorted
  assert reg.items() == [("b", b), ("a", len)]      # registration order
  assert "a" in reg and "c" not in reg and len(reg) == 2
  with pytest.raises(ConfigError) as e:
    reg.get("c")
  assert str(e.value) == "unknown widget 'c' (config.widget.name); registered: a, b"
  with pytest.raises(ConfigError, match="registered: none"):
    Registry("widget").get("x")
  with pytest.raises(ValueError, match="non-empty string"):
    reg.register("", len)


def test_other_definition_or_same_object_under_a_taken_name_raises():
  reg = Registry("widget")

  def one():
    return 1

  def two():
    return 2

  reg.register("x", one)
  with pytest.raises(ValueError, match=r"widget 'x' is already registered \(by .*one in "):
    reg.register("x", two)
  with pytest.raises(ValueError, match="already registered"):
    reg.register("x", one)                          # the very same object twice
  with pytest.raises(ValueError, match="already registered"):
    reg.register("x", lambda: 1)
  assert reg.get("x") is one


def test_same_definition_again_replaces_in_place():
  reg = Registry("widget")
  first, second = _same_file_twice("def f():\n  return 1\n", "f")
  assert first is not second and definition(first) == definition(second)
  reg.register("x", first)
  reg.register("y", len)
  reg.register("x", second)                         # a re-executed file: replaced silently
  assert reg.get("x") is second
  assert [n for n, _ in reg.items()] == ["x", "y"]  # keeps its place


def test_origin_identifies_wrapped_records():
  reg = Registry("record")
  first, second = _same_file_twice("def f():\n  return 1\n", "f")
  reg.register("x", {"fn": first}, origin=first)
  reg.register("x", {"fn": second}, origin=second)  # same origin definition: replaced
  assert reg.get("x")["fn"] is second
  with pytest.raises(ValueError, match="already registered"):
    reg.register("x", {"fn": second}, origin=second)
  with pytest.raises(ValueError, match="already registered"):
    reg.register("x", {"fn": len}, origin=len)


def test_two_lambdas_of_one_file_are_different_definitions():
  source = "a = lambda: 1\nb = lambda: 2\n"
  (a1, _), (b1, _) = _same_file_twice(source, "a"), _same_file_twice(source, "b")
  assert definition(a1) != definition(b1)
  reg = Registry("widget")
  reg.register("x", a1)
  with pytest.raises(ValueError, match="already registered"):
    reg.register("x", b1)


def test_classes_have_a_definition():
  assert definition(Registry) is not None and definition(Registry)[1] == "Registry"
  assert definition(object()) is None


def test_temporary_adds_then_removes_or_restores_in_place():
  reg = Registry("widget")
  reg.register("a", len)
  reg.register("b", abs)
  with reg.temporary("c", min) as obj:
    assert obj is min and reg.get("c") is min
  assert "c" not in reg
  with reg.temporary("a", max):
    assert reg.get("a") is max
    reg.register("d", sum)                          # registered inside the block: stays
  assert reg.get("a") is len
  assert [n for n, _ in reg.items()] == ["a", "b", "d"]
  with pytest.raises(RuntimeError):
    with reg.temporary("b", max):
      raise RuntimeError("boom")
  assert reg.get("b") is abs
  with pytest.raises(ValueError):
    with reg.temporary("", max):
      pass
  assert [n for n, _ in reg.items()] == ["a", "b", "d"]


def test_every_pluggable_kind_is_a_registry():
  from genjax import models, optim
  from genjax.optim import penalties
  from genjax.data import augment, builders, datasets

  expected = {
      models.MODELS: {"logreg", "mlp", "cnn1d", "cnn2d", "resnet", "wide_resnet"},
      penalties.PENALTIES: {"l2", "l1", "elastic_net", "group_lasso", "weight_decay",
                            "l1_prox", "orthogonality"},
      penalties.STRENGTH_SCHEDULES: {"constant", "linear_warmup", "linear_decay",
                                     "cosine_decay"},
      augment.OPS: {"shift", "slope", "scale", "noise", "crop", "flip", "cutout", "mixup",
                    "cutmix"},
      optim.OPTIMIZERS: {"sgd", "momentum", "adam", "adamw", "nadam", "rmsprop", "adagrad",
                         "lion"},
      optim.LR_SCHEDULES: {"constant", "cosine", "warmup_cosine", "warmup_constant"},
      builders.DATASETS: {"mnist1d", "digits", "fashion_mnist_local"},
  }
  for reg, names in expected.items():
    assert isinstance(reg, Registry)
    assert set(reg.names()) == names, reg.kind
  assert builders.BUILDERS is builders.DATASETS and datasets.DATASETS is builders.DATASETS
  assert optim.NAMES == ("sgd", "momentum", "adam", "adamw", "nadam", "rmsprop", "adagrad",
                         "lion")
  assert optim.SCHEDULES == ("constant", "cosine", "warmup_cosine", "warmup_constant")


def test_offline_datasets_follow_the_registry():
  from genjax.data import builders, datasets

  with builders.DATASETS.temporary("mnist1d_alias_test", builders.Mnist1d):
    assert datasets.OFFLINE_DATASETS[-1] == "mnist1d_alias_test"
  assert datasets.OFFLINE_DATASETS == ("mnist1d", "digits", "fashion_mnist_local")
