"""Random and quasi-random sweep points: axes drawn from distributions (`--sample`), `samples`
points of a unit-cube sequence (`--sampler=random|sobol|halton`, seeded) mapped onto them.

    genjax sweep --config=... --workdir=DIR --samples=16 --sampler=sobol --sample_seed=0 \\
        --sample='optimizer.learning_rate=loguniform(1e-4,1e-1)' \\
        --sample='model.dropout=uniform(0,0.5)'

A distribution is one of

* `uniform(a,b)`: a + (b − a)·u, in [a, b) (a < b);
* `loguniform(a,b)`: exp(log a + (log b − log a)·u), in [a, b) (0 < a < b), uniform in log;
* `randint(a,b)`: the integer ⌊a + (b − a)·u⌋, in [a, b) as `scipy.stats.randint(a, b)`
  (integers a < b);
* `[v1,v2,...]` or `choice(v1,v2,...)`: v_i with i = ⌊k·u⌋ for k values, each equally likely
  (values as a `--sweep` list reads them: numbers, strings, tuples).

where u is the point's coordinate for that axis (the axes in the order given) in the unit
cube [0, 1)^d, d the number of axes, drawn by `scipy.stats.qmc` for a seed:

* `random`: `numpy.random.default_rng(seed).random((n, d))`, independent uniform points;
* `sobol`: `qmc.Sobol(d, scramble=scramble, rng=seed).random(n)`; its balance needs n a
  power of 2, so any other count is refused (use `halton` for any n);
* `halton` (the default): `qmc.Halton(d, scramble=scramble, rng=seed).random(n)`, for any n.

The same axes, count, sampler, scrambling and seed give the same points, in the same order
(their index is the order they are drawn in: the x axis of the best-so-far plot). The points
are `Samples`, a `points.Grid`: `--sweep` / `--zip` axes multiply them (`product`), and a
config file's get_sweep() points too; each sampled point is then a member of the one program
as a grid point is (numeric keys vmapped, structural keys as groups). Pure: nothing here
trains or writes.
"""

from __future__ import annotations

import math
import re

import numpy as np

from genjax.errors import ConfigError
from genjax.sweeps import points as sweep_grid

SAMPLERS = ("random", "sobol", "halton")
DEFAULT_SAMPLER = "halton"
DISTRIBUTIONS = ("uniform", "loguniform", "randint", "choice")
_CALL = re.compile(r"^([A-Za-z_]\w*)\((.*)\)$", re.S)
_EXAMPLE = ("e.g. --sample='optimizer.learning_rate=loguniform(1e-4,1e-1)' "
            "(uniform(a,b), loguniform(a,b), randint(a,b), or a list [v1,v2] for a choice)")


class Samples(sweep_grid.Grid):
  """Sampled points (a `Grid`: flag points). `spec` records how they were drawn ({"axes":
  {key: distribution text}, "samples", "sampler", "scramble", "seed"}), `drawn` the sampled
  values {key: value} in the order drawn (after a `product` with grid points, each drawn
  point is several points)."""

  def __init__(self, points=(), *, spec: dict, drawn: list[dict] | None = None):
    super().__init__(points)
    self.spec = spec
    self.drawn = [dict(p) for p in (self if drawn is None else drawn)]

  def record(self) -> dict:
    """What sweep.json records and the sampled plots read: the spec and the drawn points."""
    return {**self.spec, "drawn": [dict(p) for p in self.drawn]}


def parse_distribution(text, key: str) -> tuple[str, list]:
  """(name, arguments) of one axis's distribution: 'uniform(0,0.5)' -> ("uniform", [0.0,
  0.5]); '[a,b]' / 'choice(a,b)' / a Python list -> ("choice", [a, b]). ConfigError in one
  line for an unknown distribution or bad arguments (a >= b; loguniform with a <= 0; randint
  with a non-integer bound; an empty choice)."""
  if isinstance(text, (list, tuple)):
    return _checked(key, "choice", list(text))
  if not isinstance(text, str):
    raise ConfigError(f"--sample {key}: {text!r} is not a distribution; {_EXAMPLE}")
  text = text.strip()
  if text.startswith("[") and text.endswith("]"):
    return _checked(key, "choice", sweep_grid.parse_values(text[1:-1], key))
  m = _CALL.match(text)
  if not m:
    raise ConfigError(f"--sample {key}: cannot read '{text}' as a distribution; {_EXAMPLE}")
  name, inner = m.group(1), m.group(2)
  if name not in DISTRIBUTIONS:
    raise ConfigError(f"--sample {key}: unknown distribution '{name}' in '{text}'; known: "
                      f"{', '.join(DISTRIBUTIONS)} (or a list [v1,v2] for a choice)")
  if name == "choice":
    return _checked(key, name, sweep_grid.parse_values(inner, key))
  try:
    args = [float(a) for a in inner.split(",")]
  except ValueError:
    raise ConfigError(f"--sample {key}: {name} takes two numbers (a,b), got '{text}'; "
                      f"e.g. {name}(1,10)") from None
  return _checked(key, name, args)


def _checked(key: str, name: str, args: list) -> tuple[str, list]:
  """`(name, args)` when they define a distribution, else a one-line ConfigError."""
  if name == "choice":
    if not args:
      raise ConfigError(f"--sample {key}: a choice needs at least one value, e.g. [0.1,0.2]")
    return name, list(args)
  if len(args) != 2 or not all(math.isfinite(a) for a in args):
    raise ConfigError(f"--sample {key}: {name} takes two finite numbers (a,b), got "
                      f"{len(args)} {args}; e.g. {name}(1,10)")
  a, b = args
  if a >= b:
    raise ConfigError(f"--sample {key}: {name}({a:g},{b:g}) needs a < b")
  if name == "loguniform" and a <= 0:
    raise ConfigError(f"--sample {key}: loguniform({a:g},{b:g}) needs 0 < a (it is uniform in "
                      "log a..log b); e.g. loguniform(1e-5,1e-1)")
  if name == "randint":
    if not (a.is_integer() and b.is_integer()):
      raise ConfigError(f"--sample {key}: randint({a:g},{b:g}) takes integers a < b (values "
                        "a..b-1, as scipy.stats.randint)")
    return name, [int(a), int(b)]
  return name, [a, b]


def unit_cube(n: int, d: int, sampler: str, seed: int, scramble: bool = True) -> np.ndarray:
  """`n` points of [0, 1)^d, shape (n, d), drawn by `sampler` for `seed` (module docstring):
  numpy's default_rng(seed).random((n, d)) for "random"; scipy.stats.qmc's Sobol / Halton
  sequence, scrambled with default_rng(seed) unless `scramble` is False."""
  if sampler == "random":
    return np.random.default_rng(seed).random((n, d))
  from scipy.stats import qmc   # slow to import: only here
  engine = {"sobol": qmc.Sobol, "halton": qmc.Halton}[sampler]
  try:
    return engine(d, scramble=scramble, rng=seed).random(n)
  except TypeError:   # scipy < 1.15 calls `rng` `seed`
    return engine(d, scramble=scramble, seed=seed).random(n)


def transform(name: str, args: list, u: np.ndarray) -> list:
  """Values of distribution `(name, args)` at unit coordinates `u` in [0, 1) (the inverse
  CDF; the module docstring's formulas), as Python floats, ints or the choice's values."""
  if name == "uniform":
    a, b = args
    return [float(a + (b - a) * x) for x in u]
  if name == "loguniform":
    lo, hi = math.log(args[0]), math.log(args[1])
    return [float(math.exp(lo + (hi - lo) * x)) for x in u]
  if name == "randint":
    a, b = args   # the guard keeps u's rounding next to 1 inside [a, b)
    return [min(int(math.floor(a + (b - a) * x)), b - 1) for x in u]
  return [args[min(int(math.floor(len(args) * x)), len(args) - 1)] for x in u]


def check_spec(axes: dict, samples, sampler: str, seed) -> None:
  """ConfigError in one line unless `samples` is a whole count in 1..MAX_POINTS, `sampler`
  one of SAMPLERS (sobol: `samples` a power of 2), `seed` an integer and `axes` non-empty."""
  if not axes:
    raise ConfigError(f"--samples needs at least one --sample axis; {_EXAMPLE}")
  if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
    raise ConfigError(f"--samples={samples} must be a whole number >= 1, e.g. --samples=16")
  if samples > sweep_grid.MAX_POINTS:
    raise sweep_grid._too_many(f"--samples={samples}", int(samples))
  if sampler not in SAMPLERS:
    raise ConfigError(f"unknown --sampler={sampler!r}; choose one of {', '.join(SAMPLERS)}")
  if sampler == "sobol" and samples & (samples - 1):
    lo = 1 << (int(samples).bit_length() - 1)
    raise ConfigError(f"--sampler=sobol needs a power of 2 for --samples (its balance "
                      f"properties), got {samples}; use --samples={lo} or {2 * lo}, or "
                      "--sampler=halton (any count)")
  if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
    raise ConfigError(f"--sample_seed={seed!r} must be an integer, e.g. --sample_seed=0")


def sample(axes: dict, samples: int, sampler: str = DEFAULT_SAMPLER, seed: int = 0,
           scramble: bool = True) -> Samples:
  """`samples` points {key: value} of `axes` ({key: distribution text or list}, in order:
  axis j is coordinate j of the unit cube), drawn by `sampler` for `seed` (`unit_cube`) and
  mapped by each axis's inverse CDF (`transform`). Every bad input (an unknown distribution
  or sampler, a >= b, loguniform with a <= 0, samples < 1, sobol with a count that is no
  power of 2) is one ConfigError line, before anything is drawn."""
  if not isinstance(axes, dict):
    raise ConfigError(f"sampled axes must be a {{key: distribution}} dict, got a "
                      f"{type(axes).__name__}; {_EXAMPLE}")
  axes = {str(k).strip().removeprefix("config."): v for k, v in axes.items()}
  check_spec(axes, samples, sampler, seed)
  dists = {key: parse_distribution(text, key) for key, text in axes.items()}
  cube = unit_cube(int(samples), len(dists), sampler, int(seed), scramble)
  columns = [transform(name, args, cube[:, j]) for j, (name, args) in enumerate(dists.values())]
  points = [dict(zip(dists, values)) for values in zip(*columns)]
  _check_distinct(points, samples)
  spec = {"axes": {k: v if isinstance(v, str) else repr(list(v)) for k, v in axes.items()},
          "samples": int(samples), "sampler": sampler, "scramble": bool(scramble),
          "seed": int(seed)}
  return Samples(points, spec=spec)


def _check_distinct(points: list[dict], samples: int) -> None:
  """ConfigError when two draws are one point (only discrete axes: randint, choice): the
  space has fewer points than were drawn, and a point would be one member twice."""
  seen: dict = {}
  for i, p in enumerate(points):
    j = seen.setdefault(repr(sorted(p.items())), i)
    if j != i:
      raise ConfigError(f"--samples={samples} draws {sweep_grid.point_name(p)} twice (samples "
                        f"{j} and {i}): the sampled axes (randint / choice only) have too few "
                        "points for that many draws; draw fewer, or sweep them as a grid "
                        "(--sweep)")


def from_flags(flags: list[str], samples, sampler: str, seed: int,
               scramble: bool = True) -> Samples:
  """`sample` of `--sample=KEY=DISTRIBUTION` flags; a key given twice is refused."""
  axes: dict = {}
  for flag in flags:
    if "=" not in flag:
      raise ConfigError(f"--sample '{flag}' needs KEY=DISTRIBUTION; {_EXAMPLE}")
    key, text = flag.split("=", 1)
    key = key.strip().removeprefix("config.")
    if key in axes:
      raise ConfigError(f"--sample {key} is given twice; give each key one distribution")
    axes[key] = text
  if samples is None:
    raise ConfigError("--sample needs --samples=N, the number of points to draw, e.g. "
                      "--samples=16")
  return sample(axes, samples, sampler, seed, scramble)


def product(sampled: Samples, grid: list[dict]) -> Samples:
  """Every sampled point × every grid point (`--sweep` / `--zip`), sample-major: sample i's
  grid points are consecutive. A key both sampled and gridded: ConfigError."""
  both = [k for k in sampled.spec["axes"] if any(k in p for p in grid)]
  if both:
    raise ConfigError(f"{both[0]} is both sampled (--sample) and swept (--sweep/--zip); give "
                      "it one of the two")
  count = len(sampled) * len(grid)
  if count > sweep_grid.MAX_POINTS:
    raise sweep_grid._too_many(f"the {len(sampled)} samples × the grid's {len(grid)}", count)
  return Samples([{**s, **g} for s in sampled for g in grid], spec=sampled.spec,
                 drawn=sampled.drawn)
