"""Sweep points: parsing `--sweep` / `--zip` axes and `get_sweep()`, applying a point to a
config, and splitting points into structural groups of numeric points (`genjax.train.hparams`).

Values are comma lists of Python literals, or `logspace(a,b,n)` (10^a..10^b),
`linspace(a,b,n)`, `range(a,b[,step])`. Pure: nothing here trains or writes.

What a sweep spec means (`genjax.sweeps.driver.run` applies these rules):

* `--sweep` / `--zip` axes on a config file with `get_sweep()` multiply its points, as seeds
  would: every get_sweep point × every flag combination (`combine`). A flag's key may not be
  a key of a get_sweep point (one line; drop one of the two).
* A point lists only its own keys (`{"name": "l2", "penalties.l2.strength": 1e-3}`); every
  key another point sets takes the config's value where the point leaves it out (`complete`):
  a numeric key the config's value under the point's structural values, a structural key the
  base config's. So all points of a structural group sweep the same keys.
* Distinct points get distinct names: values that print alike get more digits
  (`distinct_labels`); a grid over `MAX_POINTS` points is refused before it is built.
"""

from __future__ import annotations

import ast
import itertools
import math
import os
import re

import numpy as np

from genjax.train import hparams
from genjax.errors import ConfigError

_RANGE = re.compile(r"^(logspace|linspace|range)\((.*)\)$")
MAX_POINTS = 100_000   # a sweep of more points is refused before it is built


def _too_many(what: str, count: int) -> ConfigError:
  return ConfigError(f"{what} has {count:,} points, over the {MAX_POINTS:,} a sweep may have; "
                     "give fewer values per axis (or split it into several sweeps)")


def parse_values(text: str, key: str) -> list:
  """'0,1e-4' / 'logspace(-5,-2,4)' / 'linspace(0,0.5,3)' / 'range(1,4)' -> values."""
  text = text.strip()
  m = _RANGE.match(text)
  if m:
    try:
      args = [float(a) for a in m.group(2).split(",")]
    except ValueError:
      raise ConfigError(f"--sweep {key}: cannot read '{text}'; e.g. logspace(-5,-2,4)") from None
    fn = m.group(1)
    if not all(np.isfinite(a) for a in args):
      raise ConfigError(f"--sweep {key}: {fn} takes finite numbers, got '{text}'")
    if fn == "range":
      if not 1 <= len(args) <= 3 or not all(a.is_integer() for a in args):
        raise ConfigError(f"--sweep {key}: range takes 1 to 3 integers (start, stop[, step]), "
                          f"got '{text}'; e.g. range(0,4)")
      if len(args) == 3 and args[2] == 0:
        raise ConfigError(f"--sweep {key}: range step must not be 0, got '{text}'; "
                          "e.g. range(1,5,1)")
      values = range(*[int(a) for a in args])
      if len(values) > MAX_POINTS:
        raise _too_many(f"--sweep {key}={text}", len(values))
      return list(values)
    if len(args) != 3 or args[2] < 1 or not args[2].is_integer():
      raise ConfigError(f"--sweep {key}: {fn} takes (start, stop, count) with a whole count "
                        f">= 1, got '{text}'; e.g. {fn}(-5,-2,4)")
    if args[2] > MAX_POINTS:
      raise _too_many(f"--sweep {key}={text}", int(args[2]))
    values = np.linspace(args[0], args[1], int(args[2]))
    return [float(v) for v in (10.0 ** values if fn == "logspace" else values)]
  try:  # Python literals, tuples included: "0,1e-4" or "(32,),(64,64)"
    values = ast.literal_eval(f"[{text}]")
    if all(not isinstance(v, (list, dict, set)) for v in values):
      return values
  except (ValueError, SyntaxError):
    pass
  values = []
  for item in (text.split(",") if text else []):
    item = item.strip()
    if not item:
      continue
    try:
      values.append(ast.literal_eval(item))
    except (ValueError, SyntaxError):
      values.append(item)  # a bare word is a string, e.g. optimizer.name=adam,sgd
  return values


def _axis(flag: str) -> tuple[str, list]:
  if "=" not in flag:
    raise ConfigError(f"--sweep '{flag}' needs KEY=VALUES, e.g. --sweep='model.dropout=0,0.2'")
  key, text = flag.split("=", 1)
  key = key.strip().removeprefix("config.")
  values = parse_values(text, key)
  if not values:
    raise ConfigError(f"--sweep {key} has an empty value list; give at least one value")
  return key, values


class Grid(list):
  """The points of `--sweep` / `--zip` flags (`grid`): on a config file with `get_sweep()`,
  `sweep_driver.run` multiplies its points by them (`combine`) instead of replacing them."""


def grid(product: list[str], zipped: list[str] = ()) -> Grid:
  """Points of the cartesian product of `product` axes and the `zipped` axis (a `Grid`);
  ConfigError for a grid over MAX_POINTS points, counted before it is built."""
  axes = [_axis(f) for f in product]
  keys = [k for k, _ in axes]
  if zipped:
    zaxes = [_axis(f) for f in zipped]
    lengths = {len(v) for _, v in zaxes}
    if len(lengths) > 1:
      raise ConfigError(f"--zip axes must have equal lengths, got {sorted(lengths)}; "
                        "give each --zip the same number of values")
    keys += [k for k, _ in zaxes]
    axes.append(("zip", list(zip(*[v for _, v in zaxes]))))
  if len(set(keys)) != len(keys):
    raise ConfigError(f"a key is swept twice in {keys}; give each key one axis")
  count = math.prod(len(v) for _, v in axes)
  if count > MAX_POINTS:   # counted before anything is built
    raise _too_many("the grid of " + " × ".join(f"{len(v)} {k}" for k, v in axes), count)
  points = Grid()
  for combo in itertools.product(*[v for _, v in axes]):
    point = {}
    for (key, _), value in zip(axes, combo):
      if key == "zip":
        point.update(zip([k for k, _ in zaxes], value))
      else:
        point[key] = value
    points.append(point)
  return points


def config_sweep(config_path: str) -> list[dict] | None:
  """The points of `get_sweep([arg])` in config file `config_path` ('FILE.py[:ARG]'),
  or None when it has none.

  The file is the module `genjax.config.files` already executed for --config (never
  executed twice); a get_sweep that raises, or returns anything but a list of
  {key: value} points, is a one-line ConfigError.
  """
  from genjax.config import files as config_file
  module = config_file.module_for(config_path)
  if not hasattr(module, "get_sweep"):
    return None
  _, arg = config_file.split_spec(config_path)
  points = config_file.optional_call(module, "get_sweep", arg)
  where = os.path.basename(module.__file__)
  example = "return [{'model.dropout': 0.0}, {'model.dropout': 0.2}]"
  if not isinstance(points, (list, tuple, dict)):
    raise ConfigError(f"{where}: get_sweep() returned {type(points).__name__}, not a list of "
                      f"{{key: value}} points; {example}")
  if isinstance(points, dict):   # {name: point}: named points
    for name, p in points.items():
      if not (isinstance(p, dict) or hasattr(p, "to_dict")):
        raise ConfigError(f"{where}: get_sweep() returned a dict, read as {{name: point}}, but "
                          f"its value for {name!r} is a {type(p).__name__}, not a {{key: value}} "
                          f"point; {example}, or {{'drop': {{'model.dropout': 0.2}}}}")
    points = [{**dict(p.to_dict() if hasattr(p, "to_dict") else p), NAME_KEY: name}
              for name, p in points.items()]
  result = []
  for i, point in enumerate(points):
    if hasattr(point, "to_dict"):  # an ml_collections.ConfigDict
      point = point.to_dict()
    if not isinstance(point, dict):
      raise ConfigError(f"{where}: get_sweep() point {i} is a {type(point).__name__} "
                        f"({point!r}), not a {{key: value}} dict; {example}")
    bad = [k for k in point if not isinstance(k, str) or not k]
    if bad:
      raise ConfigError(f"{where}: get_sweep() point {i} has key {bad[0]!r}, not a config key "
                        f"such as 'model.dropout'; {example}")
    result.append(dict(point))
  return result


def combine(config_points: list[dict], flag_points: list[dict]) -> list[dict]:
  """Every get_sweep point × every `--sweep`/`--zip` point, point-major (as seeds multiply
  points). A flag's key may not be a key of a get_sweep point: ConfigError. A named point
  keeps its name, extended by the flag values other than the seed ('l2,lr=0.01')."""
  flag_keys = list(dict.fromkeys(k for p in flag_points for k in p))
  for key in flag_keys:
    owner = next((i for i, p in enumerate(config_points) if key in p), None)
    if owner is not None:
      raise ConfigError(f"--sweep/--zip/--sample {key} is also set by get_sweep() point {owner} "
                        f"({point_name(without_seed(_unnamed(config_points[owner])))}); the flag "
                        f"would multiply points that already set it: drop {key} from the flag "
                        "or from get_sweep()")
  count = len(config_points) * len(flag_points)
  if count > MAX_POINTS:
    raise _too_many(f"get_sweep()'s {len(config_points)} points × the flags' "
                    f"{len(flag_points)}", count)
  out = []
  for point in config_points:
    for extra in flag_points:
      combined = {**point, **extra}
      if NAME_KEY in point and without_seed(extra):
        combined[NAME_KEY] = f"{point[NAME_KEY]},{point_name(without_seed(extra))}"
      out.append(combined)
  return out


def _unnamed(point: dict) -> dict:
  return {k: v for k, v in point.items() if k != NAME_KEY}


def check_points(points) -> list[dict]:
  """`points` as a list of {key: value} dicts (ConfigDicts converted); ConfigError in one line
  for anything else (a tuple, a string, a key that is not a string)."""
  example = "[{'model.dropout': 0.0}, {'name': 'drop', 'model.dropout': 0.2}]"
  if isinstance(points, (str, bytes, dict)) or not hasattr(points, "__iter__"):
    raise ConfigError(f"sweep points must be a list of {{key: value}} dicts, got a "
                      f"{type(points).__name__}; e.g. {example}")
  out = []
  for i, point in enumerate(points):
    if hasattr(point, "to_dict"):   # an ml_collections.ConfigDict
      point = point.to_dict()
    if not isinstance(point, dict):
      raise ConfigError(f"sweep point {i} is a {type(point).__name__} ({point!r:.60}), not a "
                        f"{{key: value}} dict; e.g. {example}")
    bad = [k for k in point if not isinstance(k, str) or not k]
    if bad:
      raise ConfigError(f"sweep point {i} has key {bad[0]!r}, not a config key such as "
                        f"'model.dropout'; e.g. {example}")
    out.append(dict(point))
  return out


def config_value(config, key: str):
  """The value sweep key `key` has in `config` (`data.augment.OP.PARAM`: the op's parameter
  in the augment spec); KeyError when the config has none."""
  if key.startswith("data.augment.") and "data" in config and "augment" in config.data:
    from genjax.data import augment
    try:
      target = augment.sweep_target(key, config.data.augment)
    except ConfigError:
      raise KeyError(key) from None
    name, param = target
    kwargs = dict(augment.parse(config.data.augment))[name]
    return kwargs.get(param, augment.get_op(name).defaults[param])
  node = config
  for part in key.split("."):
    if not hasattr(node, "keys") or part not in node:
      raise KeyError(key)
    node = node[part]
  return node


def complete(config, points: list[dict]) -> list[dict]:
  """Each point with every key another point sets, in one key order: a key a point leaves out
  takes the config's value — a numeric key's under the point's own structural values, a
  structural key's the base config's. A numeric key the point's config has no value for
  (e.g. `data.augment.OP.PARAM` where its augment spec has no OP) stays out; `split` then
  refuses a group whose points sweep different keys. Names stay as given."""
  keys = list(dict.fromkeys(k for p in points for k in p if k != NAME_KEY))
  out = []
  for point in points:
    own = _unnamed(point)
    structural = {k: v for k, v in own.items() if not is_numeric(k)}
    point_config = None
    completed = {}
    for key in keys:
      if key in own:
        completed[key] = own[key]
        continue
      if is_numeric(key) and structural:
        if point_config is None:
          point_config = apply_point(config, structural)
        source = point_config
      else:
        source = config
      try:
        completed[key] = _plain(config_value(source, key))
      except KeyError:
        continue
    if NAME_KEY in point:
      completed[NAME_KEY] = point[NAME_KEY]
    out.append(completed)
  return out


def is_numeric(key: str) -> bool:
  """Whether sweep key `key` can vary across the members of one program (`genjax.train.hparams`)."""
  return hparams.is_numeric(key)


def _set_augment(config, key: str, value) -> None:
  from genjax.data import augment
  name, param = augment.sweep_target(key, config.data.augment)
  default = augment.get_op(name).defaults[param]
  if isinstance(default, int) and isinstance(value, float) and value.is_integer():
    value = int(value)
  config.data.augment = augment.set_param(config.data.augment, name, param, value)


def _not_in_config(key: str) -> str:
  """Why sweep key `key` is not in the config: an unregistered penalty, metric, ... (which
  module to import), else a spelling to check."""
  from genjax import registry
  hint = registry.unregistered_hint(key)
  return f"sweep key '{key}' is not in the config; " + (
      hint or "check it against genjax/config/defaults.py")


def apply_point(config, point: dict):
  """A copy of `config` with `point`'s values set; ConfigError for bad keys or types.

  `data.augment.OP.PARAM` sets a parameter of op OP in the `data.augment` spec.
  """
  config = config.copy_and_resolve_references()
  augment_keys = [k for k in point if k.startswith("data.augment.")]
  for key in augment_keys:
    if "data" not in config or "augment" not in config.data:
      raise ConfigError(_not_in_config(key))
  for key, value in point.items():
    if key in augment_keys:
      continue
    node = config
    parts = key.split(".")
    for part in parts[:-1]:
      if part not in node:
        raise ConfigError(_not_in_config(key))
      node = node[part]
    if parts[-1] not in node:
      raise ConfigError(_not_in_config(key))
    old = node[parts[-1]]
    if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
      value = float(value)
    if isinstance(old, tuple) and isinstance(value, list):
      value = tuple(value)
    try:
      node[parts[-1]] = value
    except TypeError:
      raise ConfigError(f"sweep value {value!r} for '{key}' has the wrong type: the config "
                        f"holds a {type(old).__name__}") from None
  for key in augment_keys:
    _set_augment(config, key, point[key])
  return config


def split(points: list[dict]) -> list[tuple[dict, list[dict]]]:
  """Groups points by their structural values: [(structural, [numeric points])]. Every
  numeric point of a group sweeps the same keys (`complete` fills them in): ConfigError
  otherwise."""
  groups: dict = {}
  for p in points:
    structural = {k: v for k, v in p.items() if not is_numeric(k)}
    numeric = {k: _numeric(k, v) for k, v in p.items() if is_numeric(k)}
    key = repr(sorted(structural.items()))
    groups.setdefault(key, (structural, []))[1].append(numeric)
  for structural, numeric in groups.values():
    for p in numeric[1:]:
      if set(p) != set(numeric[0]):
        key = sorted(set(p) ^ set(numeric[0]))[0]
        raise ConfigError(f"points {point_name(numeric[0])} and {point_name(p)} of structural "
                          f"group {point_name(structural)} sweep different keys, and {key} has "
                          "no value in the config to complete the other with; give every "
                          f"point of that group {key}")
  return list(groups.values())


def _numeric(key: str, value):
  """A numeric point value as a member gets it: a float, or an int for a (whole) seed."""
  if hparams.route(key)[0] == "seed" and isinstance(value, (int, float)) \
      and not isinstance(value, bool) and float(value).is_integer():
    return int(value)
  return float(value)


def without_seed(point: dict) -> dict:
  """`point` without its seed: the point a seed repeats."""
  return {k: v for k, v in point.items() if k != hparams.SEED_KEY}


def _short(key: str) -> str:
  parts = key.split(".")
  if key.endswith(".strength"):
    return parts[-2]
  return ".".join(parts[2:]) if key.startswith("data.augment.") else parts[-1]


def point_name(point: dict, digits: int = 6) -> str:
  """The automatic name of a point: 'l2=0.001,dropout=0.2' ('base' for no values); floats
  with `digits` significant digits (6: as `:g`)."""
  return ",".join(f"{_short(k)}={format(v, f'.{digits}g')}"
                  if isinstance(v, float) else f"{_short(k)}={v}"
                  for k, v in point.items()) or "base"


def distinct_names(points: list[dict]) -> list[str]:
  """`point_name` of each point, with more digits where two different points (values compared
  as members get them, seed included) would print alike: one name, one point. ConfigError
  when no number of digits keeps them apart (e.g. the string '1' and the number 1)."""
  identities = [repr(sorted((k, _canonical(k, v)) for k, v in p.items())) for p in points]
  names = [point_name(p) for p in points]
  for name in set(names):
    clash = [i for i, n in enumerate(names) if n == name]
    if len({identities[i] for i in clash}) < 2:
      continue
    for digits in range(7, 18):
      texts = {identities[i]: point_name(points[i], digits) for i in clash}
      if len(set(texts.values())) == len(texts):
        for i in clash:
          names[i] = texts[identities[i]]
        break
    else:
      a, b = clash[0], next(i for i in clash if identities[i] != identities[clash[0]])
      raise ConfigError(f"sweep points {a} and {b} print alike ({name}); name them apart "
                        "(a point's 'name') or give values that differ")
  seen: dict = {}
  for i, name in enumerate(names):
    if seen.setdefault(name, identities[i]) != identities[i]:
      raise ConfigError(f"two sweep points print alike as {name!r}; name them apart (a point's "
                        "'name') or give values that differ")
  return names


def distinct_labels(points: list[dict], labels: dict) -> dict:
  """`labels` (`named`) with a name for every unnamed point (seed aside) whose automatic
  name another point shares: `label` then names every point apart. ConfigError when a name
  made so is another point's given name."""
  bare = [without_seed(p) for p in points]
  unnamed = [p for p in bare if _identity(p) not in labels]
  out = dict(labels)
  for point, name in zip(unnamed, distinct_names(unnamed)):
    if name != point_name(point):
      if name in labels.values():
        raise ConfigError(f"sweep name {name!r} is given to another point, but it is also the "
                          "name of an unnamed point; name that point too, or choose another name")
      out[_identity(point)] = name
  return out


NAME_KEY = "name"   # a point's optional display name (get_sweep / genjax.sweep), not a config key


def _identity(point: dict) -> str:
  """A point's values apart from its seed, in a canonical order and type (a structural
  group's rows list its keys in another order, and numeric values as floats)."""
  return repr(sorted((k, _canonical(k, v)) for k, v in without_seed(point).items()))


def _canonical(key: str, value):
  """A value as members get it (a float, a whole seed as int) when it is one; else as given
  (a value of the wrong type is reported by `apply_point`)."""
  if not is_numeric(key):
    return value
  try:
    return _numeric(key, value)
  except (TypeError, ValueError):
    return value


def named(points: list[dict]) -> tuple[list[dict], dict]:
  """(points without their names, {point identity (seed aside): given name}).

  A name belongs to a point's values apart from its seed: points that differ only in their
  seed share it; two points with other values may not. ConfigError otherwise.
  """
  labels, owner, out = {}, {}, []
  for i, point in enumerate(points):
    point = dict(point)
    name = point.pop(NAME_KEY, None)
    out.append(point)
    if name is None:
      continue
    if not isinstance(name, str) or not name.strip() or "\n" in name:
      raise ConfigError(f"sweep point {i} has name {name!r}; a name is a non-empty string "
                        "on one line, e.g. 'l2'")
    key, auto = _identity(point), point_name(without_seed(point))
    if labels.get(key, name) != name:
      raise ConfigError(f"sweep point {i} ({auto}) is named both {labels[key]!r} and {name!r}; "
                        "give points that differ only in their seed one name")
    if owner.get(name, key) != key:
      raise ConfigError(f"sweep name {name!r} is given to two different points; give each "
                        f"point its own name (the second is {auto})")
    labels[key], owner[name] = name, key
  for point in out:
    auto = point_name(without_seed(point))
    if _identity(point) not in labels and auto in owner:
      raise ConfigError(f"sweep name {auto!r} is given to another point, but it is also the "
                        "name of an unnamed point; name that point too, or choose another name")
  return out, labels


def check_unique(points: list[dict]) -> None:
  """ConfigError when two points have the same values, seed included (e.g. seed=0,0): they
  would be one member twice, under one name."""
  seen: dict = {}
  for i, point in enumerate(points):
    key = repr(sorted((k, _canonical(k, v)) for k, v in point.items()))
    if key in seen:
      raise ConfigError(f"sweep point {i} ({point_name(point)}) repeats point {seen[key]}; give "
                        "each value once (e.g. --sweep='seed=0,1,2', not 'seed=0,0,1')")
    seen[key] = i


def label(point: dict, labels: dict | None = None) -> str:
  """The name tables show for `point`, seed aside: its given name, else its automatic one."""
  return (labels or {}).get(_identity(point)) or point_name(without_seed(point))


def value_texts(values: list) -> list[str]:
  """Values as table cells: floats with 3 significant digits, more only where needed to
  keep different values apart."""
  floats = [v for v in values if isinstance(v, float)]
  digits = 3
  while digits < 17 and len({format(v, f".{digits}g") for v in floats}) < len(set(floats)):
    digits += 1
  return [format(v, f".{digits}g") if isinstance(v, float) else str(v) for v in values]


def _plain(value):
  """numpy scalars (and tuples of them) as Python values: JSON-able, repr-able records."""
  if isinstance(value, (list, tuple)):
    return tuple(_plain(v) for v in value)
  if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
    return value.item()
  if not isinstance(value, (bool, int, float, str)) and value is not None:
    raise ConfigError(f"sweep value {value!r} is a {type(value).__name__}; give numbers, "
                      "strings, booleans or tuples of them")
  return value
