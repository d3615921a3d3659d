"""One number format for the sweep tables and figures (`genjax.report.tables`): accuracies in
percent with two decimals, stds in points with two decimals; a diverged point reads
'diverged' (no finite model) or carries a † and a footnote (a member diverged), never a
plausible accuracy."""

from genjax.report import tables


def _row(**kw):
  return {"val_accuracy_mean": 0.64, "val_accuracy_std": 0.0203, "val_loss_mean": 1.2,
          "stop_reasons": "max_epochs", **kw}


def test_two_decimals_everywhere():
  assert tables.percent(0.64) == "64.00" and tables.percent(0.631) == "63.10"
  assert tables.mean_std(0.64, 0.0203) == "64.00 ± 2.03"
  assert tables.mean_std(0.631, 0.0151) == "63.10 ± 1.51"
  assert tables.mean_std(0.631) == "63.10"
  assert tables.percent(None) == tables.percent(float("nan")) == "–"
  assert tables.accuracy_cell(_row()) == "64.00%" and tables.std_cell(_row()) == "2.03"


def test_a_point_without_a_finite_model_reads_diverged():
  row = _row(val_accuracy_mean=0.0995, val_accuracy_std=0.0, val_loss_mean=None,
             stop_reasons="non_finite")
  assert tables.divergence(row) == "no_model"
  assert tables.accuracy_cell(row) == "diverged" and tables.std_cell(row) == "–"
  note = tables.diverged_notes([_row(), row])
  assert note.startswith("diverged:") and "NaN/inf" in note and "†" not in note
  assert tables.divergence(_row(val_loss_mean=float("inf"))) == "no_model"


def test_a_member_that_diverged_gets_a_dagger_and_a_footnote():
  row = _row(stop_reasons="max_epochs,non_finite")
  assert tables.divergence(row) == "member"
  assert tables.accuracy_cell(row) == "64.00%†" and tables.std_cell(row) == "2.03"
  assert tables.divergence(_row(stop_reasons="divergence_threshold")) == "member"
  assert tables.diverged_notes([row]).startswith("† a member diverged")
  assert tables.divergence(_row()) is None and tables.diverged_notes([_row()]) == ""


def test_the_runs_table_uses_the_same_two_decimals(tmp_path):
  import json
  run = tmp_path / "l2"
  run.mkdir()
  (run / "results.json").write_text(json.dumps({
      "selected_weights": {"l2_norm": 12.34, "sparsity": 0.0123}, "selected_epoch": 7,
      "train": {"accuracy": 0.9}, "val": {"accuracy": 0.631}, "test": {"accuracy": 0.64},
      "generalization_gap": {"accuracy": 0.269, "loss": 0.5}}))
  row = tables.markdown("t", str(tmp_path), ["l2"]).splitlines()[-1]
  assert row == "| l2 | 90.00% | 63.10% | 64.00% | +26.90 pt | +0.500 | 7 | 12.3 | 1.23% |"
