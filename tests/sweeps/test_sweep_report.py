"""What a sweep reports: named points, and the test split for the selected point only unless
--test_for_all_points (then captioned "test shown for all points: not for selection")."""

import csv
import json
import subprocess
import sys

import pytest

from genjax.config import defaults
from genjax.run import driver
from genjax.sweeps import driver as sweep, points as sweep_grid
from genjax.errors import ConfigError


def _small():
  config = defaults.get_config()
  config.model.widths = (16,)
  config.num_epochs = 3
  config.optimizer.learning_rate = 3e-3
  config.early_stopping.patience = 2
  config.checkpoint.enabled = False
  config.cv.method = "none"
  return config


POINTS = [{"name": "plain", "model.dropout": 0.0, "penalties.l2.strength": 0.0},
          {"name": "L2", "model.dropout": 0.0, "penalties.l2.strength": 1e-3},
          {"name": "dropout", "model.dropout": 0.3, "penalties.l2.strength": 0.0}]


def _csv(path):
  with open(path) as f:
    return list(csv.DictReader(f))


def _has_test(obj) -> bool:
  """Whether any key of a (nested) record names a test metric."""
  if isinstance(obj, dict):
    return any(k.startswith("test_") or _has_test(v) for k, v in obj.items())
  if isinstance(obj, list):
    return any(_has_test(v) for v in obj)
  return False


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("named") / "sweep"
  rows = sweep.run(_small(), str(workdir), POINTS, progress=False, baseline="L2")
  return workdir, rows


@pytest.mark.slow
def test_named_points_are_the_tables_rows(default_run):
  workdir, rows = default_run
  assert [r["label"] for r in rows] == ["plain", "L2", "dropout"]
  md = (workdir / "sweep.md").read_text()
  header = md.splitlines()[0]
  assert header.startswith("| point | val acc |")          # one name column, no key columns
  assert [line.split("|")[1].strip() for line in md.splitlines()[2:5]] == ["plain", "L2",
                                                                          "dropout"]
  table = _csv(workdir / "sweep.csv")          # the csv keeps every key beside the name
  assert [r["point"] for r in table] == ["plain", "L2", "dropout"]
  assert [float(r["penalties.l2.strength"]) for r in table] == [0.0, 1e-3, 0.0]
  compare = json.load(open(workdir / "sweep.json"))["comparisons"]
  assert [c["point"] for c in compare] == ["plain", "L2", "dropout"]
  assert {c["baseline"] for c in compare} == {"L2"}
  assert {m["point"] for m in _csv(workdir / "sweep_members.csv")} == {"plain", "L2", "dropout"}
  assert "| L2 |" in (workdir / "sweep_compare.md").read_text()


@pytest.mark.slow
def test_the_test_split_is_reported_for_the_selected_point_only(default_run, tmp_path):
  workdir, rows = default_run
  assert not _has_test(rows)
  record = json.load(open(workdir / "sweep.json"))
  assert not _has_test({k: record[k] for k in ("rows", "member_results", "comparisons")})
  assert "test" not in (workdir / "sweep.csv").read_text().splitlines()[0]
  assert "test" not in (workdir / "sweep_members.csv").read_text().splitlines()[0]
  md = (workdir / "sweep.md").read_text()
  assert "test acc" not in md.splitlines()[0]
  assert "not for selection" not in md
  selected = json.load(open(workdir / "selected.json"))
  best = max(rows, key=lambda r: r["val_accuracy_mean"])
  assert selected["name"] == best["label"]
  # Its test is the selected point trained alone (hold-out: one model), reported once.
  point = {k: v for k, v in POINTS[[r["label"] for r in rows].index(best["label"])].items()
           if k != "name"}
  alone = driver.run(sweep.apply_point(_small(), point), str(tmp_path / "alone"),
                      progress=False)
  assert selected["test"]["accuracy"] == pytest.approx(alone["test"]["accuracy"], abs=3e-3)
  assert f"Selected on validation: {best['label']}" in md
  assert f"{100 * selected['test']['accuracy']:.2f}%" in md


def test_test_for_all_points_is_explicit_and_captioned(default_run, tmp_path):
  _, hidden = default_run
  workdir = tmp_path / "all"
  rows = sweep.run(_small(), str(workdir), POINTS, progress=False, test_for_all_points=True)
  for a, b in zip(rows, hidden):      # same training: only the reporting differs
    assert a["val_accuracy_mean"] == b["val_accuracy_mean"]
    assert 0.0 <= a["test_accuracy"] <= 1.0
  md = (workdir / "sweep.md").read_text()
  assert "test acc" in md.splitlines()[0]
  assert "Test shown for all points: not for selection" in md
  assert "test shown for all points: not for selection" in (workdir / "sweep.tex").read_text().lower()
  assert "test_accuracy" in (workdir / "sweep_members.csv").read_text().splitlines()[0]
  # A rerun that reports differently is another run: refused in one line, nothing lost.
  before = (workdir / "sweep.md").read_text()
  with pytest.raises(ConfigError, match="its --test_for_all_points differs"):
    sweep.run(_small(), str(workdir), POINTS, progress=False)
  assert (workdir / "sweep.md").read_text() == before


def test_the_flag_is_for_sweeps_only(tmp_path):
  out = subprocess.run([sys.executable, "-m", "genjax.main", "train",
                        f"--workdir={tmp_path / 'w'}", "--test_for_all_points"],
                       capture_output=True, text=True)
  assert out.returncode == 2
  assert "test_for_all_points" in out.stderr and len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("points, match", [
    ([{"name": "a", "model.dropout": 0.0}, {"name": "a", "model.dropout": 0.2}],
     "given to two different points"),
    ([{"name": "a", "model.dropout": 0.0, "seed": 0},
      {"name": "b", "model.dropout": 0.0, "seed": 1}], "named both 'a' and 'b'"),
    ([{"name": "", "model.dropout": 0.0}], "non-empty string"),
    ([{"name": 3, "model.dropout": 0.0}], "non-empty string"),
    ([{"name": "dropout=0.2", "model.dropout": 0.0}, {"model.dropout": 0.2}],
     "also the name of an unnamed point"),
])
def test_bad_names_are_refused_before_anything_runs(points, match, tmp_path):
  with pytest.raises(ConfigError, match=match):
    sweep.run(_small(), str(tmp_path / "x"), points, progress=False)
  assert not (tmp_path / "x").exists()


def test_a_name_is_shared_by_its_seeds_and_is_the_baseline_name(tmp_path):
  points, labels = sweep_grid.named([{"name": "a", "model.dropout": 0.0, "seed": s}
                                     for s in (0, 1)] + [{"model.dropout": 0.2}])
  assert points == [{"model.dropout": 0.0, "seed": 0}, {"model.dropout": 0.0, "seed": 1},
                    {"model.dropout": 0.2}]
  assert list(labels.values()) == ["a"]
  assert [sweep_grid.label(p, labels) for p in points] == ["a", "a", "dropout=0.2"]
  with pytest.raises(ConfigError, match="--baseline='dropout=0' is not a point"):
    sweep.run(_small(), str(tmp_path / "x"), [{"name": "a", "model.dropout": 0.0}],
              baseline="dropout=0")


def test_values_have_three_significant_digits_unless_more_tell_them_apart():
  assert sweep_grid.value_texts([0.0, 1e-4, 0.001, 0.123456]) == ["0", "0.0001", "0.001",
                                                                   "0.123"]
  assert sweep_grid.value_texts([0.1, 0.10001]) == ["0.1", "0.10001"]
  assert sweep_grid.value_texts(["adam", (8,), 3]) == ["adam", "(8,)", "3"]


@pytest.mark.slow
def test_names_survive_structural_groups(tmp_path):
  # The group processes list structural keys first and numeric values as floats: the names
  # must still find their points (an int 0 here, 0.0 in the group's rows).
  points = [{"model.dropout": 0, "name": "narrow", "model.widths": (8,)},
            {"model.dropout": 0, "name": "wide", "model.widths": (16,)}]
  workdir = tmp_path / "structural"
  rows = sweep.run(_small(), str(workdir), points, progress=False, baseline="wide")
  assert [r["label"] for r in rows] == ["narrow", "wide"]
  assert [r["point"] for r in _csv(workdir / "sweep.csv")] == ["narrow", "wide"]
  assert json.load(open(workdir / "selected.json"))["name"] in ("narrow", "wide")
  assert "| narrow |" in (workdir / "sweep_compare.md").read_text()


@pytest.mark.parametrize("points", [
    [{"seed": 0}, {"seed": 0}, {"seed": 1}],                       # a seed list with duplicates
    [{"model.dropout": 0.1}, {"model.dropout": 0.1}],
    [{"model.dropout": 0, "seed": 2}, {"seed": 2, "model.dropout": 0.0}],   # same values
])
def test_repeated_points_are_refused_before_anything_runs(points, tmp_path):
  with pytest.raises(ConfigError, match=r"repeats point \d; give each value once"):
    sweep.run(_small(), str(tmp_path / "x"), points, progress=False)
  assert not (tmp_path / "x").exists()
  out = subprocess.run([sys.executable, "-m", "genjax.main", "sweep",
                        f"--workdir={tmp_path / 'cli'}", "--sweep=seed=0,0,1"],
                       capture_output=True, text=True)
  assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
  assert not (tmp_path / "cli").exists()


def test_the_comparison_table_is_also_latex(default_run):
  from genjax.sweeps.compare import tex_escape
  workdir, _ = default_run
  tex = (workdir / "sweep_compare.tex").read_text()
  md = (workdir / "sweep_compare.md").read_text()
  header = md.splitlines()[0].strip("| ").split(" | ")
  assert header[-3:] == ["p", "p (Holm)", "P(> baseline)"]
  assert tex.startswith("\\begin{tabular}{l" + "r" * (len(header) - 1) + "}")
  assert "\\end{tabular}" in tex and "P($>$ baseline)" in tex
  body = [line for line in tex.splitlines() if not line.startswith("% ")]
  assert "$\\pm$" in tex and "Nadeau \\& Bengio 2003" in tex
  assert all("%" not in line.replace("\\%", "") for line in body)    # every % escaped
  rows = [line for line in tex.splitlines() if line.endswith("\\\\")][1:]
  assert [r.split(" & ")[0] for r in rows] == ["plain", "L2", "dropout"]
  for row, line in zip(rows, md.splitlines()[2:5]):     # the same cells as the markdown
    for k in (1, 2, 3):
      assert row.split(" & ")[k] == tex_escape(line.split(" | ")[k])
