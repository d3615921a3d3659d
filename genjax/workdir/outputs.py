"""What a run writes, described: every file and folder of a workdir, and the keys of
results.json and sweep.json.

The names themselves are where the code writes them (`genjax.workdir.identity.RESERVED`,
`genjax.run.driver.outputs`, `genjax.sweeps.group.OUTPUTS`, ...); these tables say what each
holds. `scripts/gen_reference.py` renders them as docs/pages/reference/outputs.md, and
tests/docs/test_reference.py checks them against the names in the code and against the files
and keys of real runs. Tables only: nothing here is imported by a run.

`FILES`: (name, writers, what it holds). A name ending in "/" is a folder; "NN" stands for a
group's number. `writers` are keys of `WRITERS`.

`RESULTS_JSON`, `SWEEP_JSON`: (path, when, meaning), the path in jq's notation (`.a.b`,
`[]` for every element of a list, `<name>` for a key that varies); `when` is empty when the
key is always there.
"""

from __future__ import annotations

from typing import NamedTuple

WRITERS = {
    "train": "`genjax train` / `genjax.fit` (hold-out and cross-validation)",
    "cv": "`genjax train` with cross-validation (`cv.method` other than none)",
    "refit": "cross-validation with `cv.refit`: `genjax train`, and a sweep's selected point",
    "sweep": "`genjax sweep` / `genjax.sweep`",
    "group": "a structural group of a sweep (the sweep's workdir itself when it has one group)",
    "groups": "a sweep of several structural groups",
    "nested": "`genjax sweep` with `cv.outer_folds` (nested cross-validation)",
    "cluster": "a sweep run by `--launcher=submitit_local` or `--launcher=slurm`",
}


class Output(NamedTuple):
  name: str
  writers: tuple[str, ...]
  holds: str


FILES: tuple[Output, ...] = (
    Output("run.json", ("train", "sweep", "group", "nested"),
           "The run's identity: `kind` (train, sweep or sweep_group), the resolved `config`, "
           "the sweep `points`, and a fingerprint of the code (genjax's version and sources, "
           "the user modules the config imported). A rerun resumes only when its identity is "
           "equal; sealed, an edited run.json is refused."),
    Output("config.json", ("train", "sweep", "group", "nested"),
           "The resolved config, every key (as `genjax.config.defaults.get_config()` and "
           "the overrides made it); rewritten from run.json if edited."),
    Output("manifest.json", ("train", "sweep", "group", "nested"),
           "Every name the run may write, and the digests of the finished outputs, sealed: "
           "`--overwrite` removes exactly these names, and a finished run whose outputs "
           "still match is not run again."),
    Output(".genjax.lock", ("train", "sweep", "group", "nested"),
           "Present while a process works in the workdir: an exclusive `flock` holding its "
           "PID and host, removed on release (the kernel drops it if the process dies)."),
    Output("metrics.jsonl", ("train", "group", "nested"),
           "One JSON line per member per epoch: `epoch` (`fold` with several members, a "
           "sweep's `member` name), learning rate, running training loss and accuracy, "
           "gradient norm, validation metrics (`val_loss`, `val_accuracy`, those of "
           "`metrics`), weight norms and sparsity."),
    Output("results.json", ("train",),
           "The run's results: the selected weights on train, validation and test, the "
           "selection and stopping facts, and how the run was computed (schema below)."),
    Output("learning_curves.png", ("train",),
           "Training and validation loss and accuracy (%) per epoch (hold-out: the selected "
           "epoch marked; cross-validation: one curve per fold); an epoch with a NaN/inf "
           "value (a diverged run or fold) is a red × on the panel's low edge."),
    Output("tensorboard/", ("train", "refit", "group", "nested"),
           "TensorBoard event files, one run folder per member (`run/`, `fold0/`, ...; a "
           "sweep: `POINT/foldK/`, the member's values made file-safe; a refit: `run_refit/`): "
           "its scalars per epoch, its hyperparameters and `final/` metrics (the selected "
           "epoch's) for the HParams dashboard, and its resolved config as text (`config`). "
           "`tensorboard --logdir WORKDIR/tensorboard`."),
    Output("selected/", ("train", "group"),
           "The selected weights of every member (a sweep's group: every point × seed × fold, "
           "at each member's selected epoch), with its standardization statistics and its "
           "training and validation indices (orbax, checksummed): what `genjax.load_run` "
           "restores (of a sweep: `load_run(WORKDIR, point=NAME)`, the selected point by "
           "default)."),
    Output("checkpoints/", ("train", "group", "nested"),
           "Orbax checkpoints (the folder is `checkpoint.subdir`): the training state of all "
           "members, latest and best (`checkpoint.keep_latest`, `keep_best`), to resume; with "
           "several members, each member's own best weights under `best/`."),
    Output("cv_folds.png", ("cv",),
           "Validation accuracy per fold (%): a box and one dot per fold."),
    Output("oof_predictions.npz", ("cv",),
           "Out-of-fold predictions: each fold's selected model on its own validation part: "
           "`indices` (into the training split), `labels`, `logits`, `fold`."),
    Output("metrics_refit.jsonl", ("refit",),
           "The refit member's epochs (as metrics.jsonl, without validation metrics)."),
    Output("checkpoints_refit/", ("refit",),
           "The refit member's checkpoints (`checkpoint.subdir` + `_refit`)."),
    Output("sweep.json", ("sweep", "group"),
           "The sweep's rows, per-member results, comparisons and selected point (schema "
           "below)."),
    Output("sweep.csv", ("sweep", "group"),
           "One row per point: validation accuracy mean ± std over seeds × folds, test "
           "accuracy (selected point only, unless `--test_for_all_points`), generalization "
           "gap, best epoch, stop reasons."),
    Output("sweep.md", ("sweep", "group"), "The same table in Markdown (printed at the end)."),
    Output("sweep.tex", ("sweep", "group"), "The same table in LaTeX."),
    Output("sweep_metrics.png", ("sweep", "group"),
           "Validation accuracy (mean ± std over each point's seeds × folds, error bars) "
           "against each swept numeric value — a grid, `--zip` or sampled points; log axis "
           "for log-spaced values, a line per value of a second grid axis; named points "
           "(`get_sweep`'s names) as one dot per point on an axis near the data, its value "
           "printed as in sweep.md (`64.00 ± 2.03`). A diverged point is a red ×: on the "
           "axis' edge, its value 'diverged', when no finite model is left; over its dot "
           "(value marked †) when a member stopped on a NaN/inf loss."),
    Output("sweep_curves.png", ("sweep", "group"),
           "Mean validation loss per epoch of every point; a diverged point is labelled so, "
           "a red × at its first NaN/inf epoch."),
    Output("sweep_rungs.jsonl", ("sweep",),
           "A search's rung decisions as made, one JSON line each (`--search`; "
           "`genjax.sweeps.pruning`); checked on resume."),
    Output("sweep_rungs.md", ("sweep",),
           "A search's rungs: bracket, rung, epochs, candidates, kept, best validation "
           "accuracy, the points kept (scikit-learn's `iter` / `n_resources` / "
           "`n_candidates`)."),
    Output("sweep_rungs.csv", ("sweep",), "sweep_rungs.md as CSV."),
    Output("sweep_sampled.png", ("sweep",),
           "Sampled sweeps (`--sample`): validation accuracy against each sampled key, one "
           "dot per point, diverged points a red × (on the axis' edge when no finite model "
           "is left)."),
    Output("sweep_best_so_far.png", ("sweep",),
           "Sampled sweeps: the best validation accuracy among the first k points drawn, "
           "against k."),
    Output("sweep_members.csv", ("sweep", "group"),
           "One row per member (point × seed × fold): sizes, validation loss and accuracy at "
           "its selected epoch, selected epoch, stop reason (and its own test metrics where "
           "the test is shown)."),
    Output("sweep_compare.md", ("sweep", "group"),
           "Every point against the baseline (`--baseline`, default the first point): "
           "validation mean ± std; interquartile mean with a stratified bootstrap interval; "
           "difference of validation accuracy with the corrected resampled t-test on the "
           "fixed folds' seed means (none for a hold-out split), its p-value and the p-value "
           "adjusted over all points (`--p_adjust`: Holm, BH or none); the probability of "
           "improvement; † where a member diverged. The footnote names the design, the test "
           "and the family."),
    Output("sweep_compare.csv", ("sweep", "group"), "The same comparison as CSV."),
    Output("sweep_compare.tex", ("sweep", "group"), "The same comparison in LaTeX."),
    Output("selected.json", ("sweep",),
           "The point selected on validation (highest mean validation accuracy), its "
           "validation summary, its test metrics and, with `cv.refit`, `test_refit` (as "
           "sweep.json's `selected`)."),
    Output("groupNN/", ("groups",),
           "Structural group NN's own workdir (run.json, config.json, manifest.json, "
           "metrics.jsonl, checkpoints/, tensorboard/ and the sweep tables of its points)."),
    Output("groupNN.config", ("groups",),
           "Group NN's resolved config and its points, as its process reads them "
           "(`genjax group FILE`)."),
    Output("groupNN.log", ("groups",), "What group NN's process printed."),
    Output("launch.json", ("cluster",),
           "The group jobs submitted: per group, one record per submission (launcher, job "
           "id, tasks, log file, submitit folder, host, time)."),
    Output("submitit/", ("cluster",), "submitit's job files and logs."),
    Output("nested.json", ("nested",),
           "Nested cross-validation: per outer fold the point selected by the inner folds and "
           "its refit's held-out score; the estimate with its corrected interval, selection "
           "frequency, the naive best-of-sweep score, every inner member."),
    Output("nested.md", ("nested",), "The nested estimate and the outer folds as a table."),
    Output("nested_members.csv", ("nested",), "One row per inner member."),
    Output("metrics_nested_refit.jsonl", ("nested",),
           "The outer folds' refit members' epochs."),
    Output("checkpoints_nested_refit/", ("nested",),
           "The outer refits' checkpoints (`checkpoint.subdir` + `_nested_refit`)."),
    Output("metrics_outerN.jsonl", ("nested",),
           "When the inner members are trained in several programs (memory): program N's "
           "epochs (else metrics.jsonl)."),
    Output("checkpoints_outerN/", ("nested",),
           "Program N's checkpoints, as metrics_outerN.jsonl (else checkpoints/)."),
)


class Key(NamedTuple):
  path: str
  when: str
  meaning: str


# When a key is there (`Key.when`; "" = always).
HOLDOUT, CV, REFIT = "hold-out", "cross-validation", "cv.refit"
SELECTED = "a sweep's selection (null in a group process's sweep.json)"
ONE_GROUP = "one program: a group process, or a sweep of one group"
GROUPS = "a sweep of several groups"
TEST_SHOWN = "a group process, or --test_for_all_points"
NOT_BASELINE = "points other than the baseline"
SEEDS = "≥ 2 seeds, test shown"
SAMPLED = "a sampled sweep (--sample, genjax.sample_points)"
SEARCHED = "a search (--search=halving or hyperband)"


RESULTS_JSON: tuple[Key, ...] = (
    Key(".train", "", "Metrics on the training part, {`loss`, `accuracy`, each output of "
        "`metrics`}: the selected weights (cross-validation: the mean over folds)."),
    Key(".train.<metric>", "", "One metric's value."),
    Key(".val", "", "The same on the validation part."),
    Key(".val.<metric>", "", "One metric's value."),
    Key(".test", "", "The same on the test split, evaluated once (cross-validation: the fold "
        "ensemble, the mean of the folds' predicted probabilities), with `ece`."),
    Key(".test.<metric>", "", "One metric's value."),
    Key(".test_ensemble", CV, "The fold ensemble on the test split (equal to "
        "`.test`)."),
    Key(".test_ensemble.<metric>", CV, "One metric's value."),
    Key(".test_refit", REFIT, "The refit model (one member on the whole training split, "
        "for the median of the folds' selected epochs + 1) on the test split."),
    Key(".test_refit.<metric>", REFIT, "One metric's value."),
    Key(".test_refit.epochs", REFIT, "The epochs the refit trained."),
    Key(".test_refit.selected_weights", REFIT, "Its weights' summary (as "
        "`.selected_weights`)."),
    Key(".test_refit.selected_weights.<stat>", REFIT, "One statistic."),
    Key(".test_confusion_matrix", "", "Test confusion counts, row = true class, column = "
        "predicted (cross-validation: the fold ensemble's)."),
    Key(".generalization_gap", "", "{`accuracy`: train − validation, `loss`: validation − "
        "train}."),
    Key(".generalization_gap.accuracy", "", "Training minus validation accuracy."),
    Key(".generalization_gap.loss", "", "Validation minus training loss."),
    Key(".epochs_run", "", "Epochs trained (the last member's stop)."),
    Key(".monitor", "", "The early-stopping monitor (`early_stopping.monitor`)."),
    Key(".stop_reason", "", "Why training stopped: none, patience, non_finite, "
        "stopping_threshold, divergence_threshold or max_epochs (cross-validation: the "
        "folds' reasons, comma-separated)."),
    Key(".selected_epoch", HOLDOUT, "The epoch whose weights were selected (from 0)."),
    Key(".selected_epoch_median", CV, "The median of the folds' selected "
        "epochs."),
    Key(".best_epoch", HOLDOUT, "The monitor's best epoch (null without early stopping)."),
    Key(".best_monitor_value", HOLDOUT, "The monitored value at `best_epoch`."),
    Key(".stopped_epoch", HOLDOUT, "The epoch early stopping stopped at (null if it did "
        "not)."),
    Key(".diverged", HOLDOUT, "True when the monitored value was never finite (no model "
        "to select; `genjax train` exits 1)."),
    Key(".diverged_folds", CV, "The folds whose monitored value was never "
        "finite."),
    Key(".selected_weights", "", "Summary of the selected weights: `l2_norm`, `l1_norm`, "
        "`sparsity` (fraction of exact zeros); cross-validation: means over folds."),
    Key(".selected_weights.<stat>", "", "One statistic."),
    Key(".num_params", "", "Parameters of one member's model."),
    Key(".dataset", "", "The data: `name`, `num_classes`, `input_shape`, split sizes."),
    Key(".dataset.name", "", "`data.name`."),
    Key(".dataset.num_classes", "", "Number of classes."),
    Key(".dataset.input_shape", "", "One example's shape."),
    Key(".dataset.train", "", "Examples in the training split (hold-out: in the training "
        "part)."),
    Key(".dataset.val", HOLDOUT, "Examples in the validation part."),
    Key(".dataset.test", "", "Examples in the test split."),
    Key(".cv", CV, "The folds."),
    Key(".cv.method", CV, "`cv.method`."),
    Key(".cv.folds", CV, "`cv.folds`."),
    Key(".cv.members", CV, "Members trained (folds × repeats)."),
    Key(".cv.val_accuracy", CV, "Validation accuracy over folds: {`mean`, "
        "`std`, `ci95`} (95% t-interval)."),
    Key(".cv.val_loss", CV, "Validation loss over folds, the same."),
    Key(".cv.generalization_gap_accuracy", CV, "The accuracy gap over "
        "folds, the same."),
    Key(".cv.<summary>.mean", CV, "Mean over folds."),
    Key(".cv.<summary>.std", CV, "Standard deviation over folds."),
    Key(".cv.<summary>.ci95", CV, "[low, high], the 95% t-interval of the "
        "mean."),
    Key(".cv.per_fold[]", CV, "One entry per fold."),
    Key(".cv.per_fold[].fold", CV, "The fold's index."),
    Key(".cv.per_fold[].seed", CV, "The fold's model seed."),
    Key(".cv.per_fold[].train_size", CV, "Training examples of the fold."),
    Key(".cv.per_fold[].val_size", CV, "Validation examples of the fold."),
    Key(".cv.per_fold[].train", CV, "The fold's model on its training part."),
    Key(".cv.per_fold[].val", CV, "The fold's model on its validation part."),
    Key(".cv.per_fold[].test", CV, "The fold's own model on the test split."),
    Key(".cv.per_fold[].<split>.<metric>", CV, "One metric's value."),
    Key(".cv.per_fold[].generalization_gap", CV, "The fold's gap."),
    Key(".cv.per_fold[].generalization_gap.<metric>", CV,
        "`accuracy` or `loss` gap."),
    Key(".cv.per_fold[].selected_epoch", CV, "The fold's selected epoch."),
    Key(".cv.per_fold[].selected_weights", CV, "The fold's weights' summary."),
    Key(".cv.per_fold[].selected_weights.<stat>", CV, "One statistic."),
    Key(".cv.per_fold[].best_epoch", CV, "The fold's best epoch."),
    Key(".cv.per_fold[].best_monitor_value", CV, "The fold's best monitored "
        "value."),
    Key(".cv.per_fold[].stopped_epoch", CV, "Where early stopping stopped "
        "the fold (null if it did not)."),
    Key(".cv.per_fold[].stop_reason", CV, "Why the fold stopped."),
    Key(".devices", "", "JAX devices the run saw."),
    Key(".epoch_loop", "", "How epochs ran: `scan` or `steps` (`epoch_loop`)."),
    Key(".member_layout", "", "How members ran: `vmap` or `side_by_side`."),
    Key(".convolutions", "", "How convolutions ran: `patches`, `xla`, or null (no "
        "convolution; `model.conv`)."),
    Key(".parallel", "", "Where members ran (`parallel`)."),
    Key(".parallel.axis", "", "`single`, `members` (members split over devices) or `data`."),
    Key(".parallel.devices", "", "Devices used."),
    Key(".parallel.member_block", "", "Members per compiled block."),
    Key(".parallel.member_bits", "", "Whether a member's numbers depend on the others "
        "(`independent`)."),
    Key(".compaction", "", "Member-epochs trained and computed (`Program.member_epochs`; "
        "`parallel.compaction`)."),
    Key(".compaction.enabled", "", "Whether stopped members left the epoch program."),
    Key(".compaction.member_epochs", "", "Members × epochs run."),
    Key(".compaction.trained_member_epochs", "", "Epochs the members trained, summed "
        "(a stopped member's end at its stop)."),
    Key(".compaction.frozen_fraction", "", "1 − trained / member_epochs: the share a "
        "program without compaction computes for stopped members."),
    Key(".compaction.computed_member_epochs", "", "Member-epochs the program computed, "
        "padding included (whole member blocks)."),
    Key(".compaction.member_block", "", "Members per compiled block."),
    Key(".precision", "", "`precision`: float32 or bfloat16."),
    Key(".provenance", "", "What produced the numbers."),
    Key(".provenance.code", "", "The code fingerprint (as run.json's)."),
    Key(".provenance.code.genjax_version", "", "genjax's version."),
    Key(".provenance.code.genjax_source", "", "sha256 of genjax's sources."),
    Key(".provenance.code.user_modules", "", "{file: sha256} of the user modules the config "
        "imported."),
    Key(".provenance.code.user_modules.<file>", "", "One module's sha256."),
    Key(".provenance.seed", "", "`seed`."),
    Key(".provenance.packages", "", "{package: version} of jax, jaxlib, flax, optax, orbax, "
        "TFDS, numpy, scikit-learn, ml-collections."),
    Key(".provenance.packages.<package>", "", "One package's version."),
    Key(".provenance.python", "", "Python's version."),
    Key(".provenance.git_commit", "", "The git commit of genjax's checkout (`-dirty` when "
        "it has changes), or null."),
    Key(".provenance.device_kind", "", "The first device's kind (e.g. `cpu`)."),
    Key(".provenance.device_count", "", "Devices of all processes."),
    Key(".provenance.process_count", "", "JAX processes (hosts)."),
    Key(".wall_time_s", "", "Seconds the run took."),
)

_T = ("`genjax.sweeps.stats.fixed_folds_t`'s result: `mean_difference`, "
      "`std_difference`, `t`, `df`, `p_value` (two-sided), `ci95`, `test`, `n` (J, the "
      "folds), `design`, `seeds`, `p_adjusted`, `p_adjust` (holm, bh or none), `family` (the "
      "tests adjusted together), and `reason` where it is undefined")
_IQM = ("`genjax.sweeps.robust.iqm_interval`'s result: `iqm`, `ci` (stratified bootstrap), "
        "`level`, `reps`, `seed`, `method`, and `reason` where the interval is undefined")
_BOOT = ("`genjax.sweeps.stats.bootstrap_ci_over_seeds`'s result: `mean_difference`, `ci`, "
         "`level`, `n_boot`, `seed`, `n_seeds`, `n_folds`, `method`, and `reason` where it is "
         "undefined")

SWEEP_JSON: tuple[Key, ...] = (
    Key(".rows[]", "", "One row per point, a swept seed being part of the point (the "
        "tables, sweep.md, pool a point's seeds)."),
    Key(".rows[].point", "", "The point: {sweep key: value}, structural values included."),
    Key(".rows[].point.<key>", "", "One swept value."),
    Key(".rows[].name", "", "The point's automatic name, e.g. `dropout=0.2,seed=1`."),
    Key(".rows[].auto_name", "", "The same automatic name (in the rows `genjax.sweep` "
        "returns, `name` is the label and this the automatic name)."),
    Key(".rows[].label", "", "The name tables show: without the seed (a named point: its "
        "name); `genjax.load_run(WORKDIR, point=LABEL)` loads its members."),
    Key(".rows[].folds", "", "Folds per point."),
    Key(".rows[].val_accuracy_mean", "", "Validation accuracy, mean over the point's folds."),
    Key(".rows[].val_accuracy_std", "", "Its standard deviation over folds."),
    Key(".rows[].val_loss_mean", "", "Validation loss, mean over folds."),
    Key(".rows[].test_accuracy", TEST_SHOWN,
        "The point's fold ensemble on the test split."),
    Key(".rows[].test_loss", TEST_SHOWN,
        "Its test loss."),
    Key(".rows[].gap_accuracy", "", "Training minus validation accuracy, mean over folds."),
    Key(".rows[].best_epoch_median", "", "Median selected epoch of its members."),
    Key(".rows[].stop_reasons", "", "Its members' stop reasons, comma-separated."),
    Key(".rows[].curve", "", "[[epoch, mean validation loss over its folds], ...]."),
    Key(".member_results[]", "", "One entry per member (point × seed × fold): what "
        "sweep_members.csv holds."),
    Key(".member_results[].point", "", "The point's name, without the seed."),
    Key(".member_results[].values", "", "The point's values, without the seed."),
    Key(".member_results[].values.<key>", "", "One swept value."),
    Key(".member_results[].seed", "", "The member's model seed."),
    Key(".member_results[].fold", "", "The member's fold."),
    Key(".member_results[].train_size", "", "Its training examples."),
    Key(".member_results[].val_size", "", "Its validation examples."),
    Key(".member_results[].val_<metric>", "", "Its validation metrics at its selected "
        "epoch."),
    Key(".member_results[].test_<metric>", TEST_SHOWN,
        "Its own model's test metrics."),
    Key(".member_results[].selected_epoch", "", "Its selected epoch."),
    Key(".member_results[].stop_reason", "", "Why it stopped."),
    Key(".comparisons[]", "", "One entry per point against the baseline (what "
        "sweep_compare.md shows)."),
    Key(".comparisons[].point", "", "The point's name."),
    Key(".comparisons[].baseline", "", "The baseline's name."),
    Key(".comparisons[].seeds", "", "Seeds per point."),
    Key(".comparisons[].folds", "", "Folds per seed."),
    Key(".comparisons[].val_accuracy_mean", "", "Validation accuracy, mean over seeds × "
        "folds."),
    Key(".comparisons[].val_accuracy_std", "", "Its standard deviation."),
    Key(".comparisons[].val_accuracy_iqm", "", "Its interquartile mean, " + _IQM + "; null "
        "when a member's accuracy is not finite."),
    Key(".comparisons[].val_accuracy_iqm.<stat>", "", "One of those values."),
    Key(".comparisons[].diverged_members", "", "How many of its members diverged (stop "
        "reason non_finite or divergence_threshold)."),
    Key(".comparisons[].probability_of_improvement", NOT_BASELINE,
        "P(point > baseline): per fold, Mann–Whitney U / (n·m) of its seeds against the "
        "baseline's, averaged over folds (`genjax.sweeps.robust`)."),
    Key(".comparisons[].test_accuracy_mean", TEST_SHOWN,
        "Test accuracy, mean over its members."),
    Key(".comparisons[].val_accuracy_difference", NOT_BASELINE,
        "The paired difference to the baseline, " + _T + "."),
    Key(".comparisons[].val_accuracy_difference.<stat>", NOT_BASELINE,
        "One of those values."),
    Key(".comparisons[].test_accuracy_difference", SEEDS,
        "The test difference's interval over seeds, " + _BOOT + "."),
    Key(".comparisons[].test_accuracy_difference.<stat>", SEEDS, "One of those values."),
    Key(".selected", "", "The point selected on validation (as selected.json); null in a "
        "group process's sweep.json (its parent selects)."),
    Key(".selected.point", SELECTED, "The selected point's values."),
    Key(".selected.point.<key>", SELECTED, "One value."),
    Key(".selected.name", SELECTED, "Its name."),
    Key(".selected.selected_by", SELECTED, "The rule: highest validation accuracy, mean over "
        "seeds × folds."),
    Key(".selected.validation", SELECTED, "Its validation summary."),
    Key(".selected.validation.accuracy_mean", SELECTED, "Mean validation accuracy."),
    Key(".selected.validation.accuracy_std", SELECTED, "Its standard deviation."),
    Key(".selected.validation.loss_mean", SELECTED, "Mean validation loss."),
    Key(".selected.validation.members", SELECTED, "Its members (seeds × folds)."),
    Key(".selected.test", SELECTED, "Its test metrics: `accuracy`, `loss` (its fold "
        "ensemble, mean over seeds)."),
    Key(".selected.test.<metric>", SELECTED, "One metric's value."),
    Key(".selected.test_refit", REFIT, "The selected point refit on the whole training "
        "split, as results.json's `.test_refit`."),
    Key(".selected.test_refit.<metric>", REFIT, "One value (`epochs` and "
        "`selected_weights` too)."),
    Key(".selected.test_refit.selected_weights.<stat>", REFIT, "One statistic."),
    Key(".test_for_all_points", "", "Whether every point's test metrics are reported "
        "(`--test_for_all_points`)."),
    Key(".groups", GROUPS, "Structural groups run."),
    Key(".members", ONE_GROUP, "Members of the group's program."),
    Key(".epochs_run", ONE_GROUP, "Epochs trained."),
    Key(".epoch_loop", ONE_GROUP, "As results.json's."),
    Key(".member_layout", ONE_GROUP, "As results.json's."),
    Key(".convolutions", ONE_GROUP, "As results.json's."),
    Key(".parallel", ONE_GROUP, "As results.json's."),
    Key(".parallel.<field>", ONE_GROUP, "As results.json's: `axis`, `devices`, "
        "`member_block`, `member_bits`."),
    Key(".compaction", ONE_GROUP, "As results.json's."),
    Key(".compaction.<field>", ONE_GROUP, "As results.json's: `enabled`, `member_epochs`, "
        "`trained_member_epochs`, `frozen_fraction`, `computed_member_epochs`, "
        "`member_block`."),
    Key(".precision", ONE_GROUP, "As results.json's."),
    Key(".group_config", ONE_GROUP, "sha256 of the group's resolved config (its parent "
        "checks it)."),
    Key(".wall_time_s", "", "Seconds the sweep took."),
    Key(".search", SEARCHED, "The search and its rungs (`genjax.sweeps.pruning`)."),
    Key(".search.method", SEARCHED, "`halving` or `hyperband` (`--search`)."),
    Key(".search.factor", SEARCHED, "η (`--search_factor`)."),
    Key(".search.min_epochs", SEARCHED, "The first rung's epochs, or `exhaust` "
        "(`--search_min_epochs`)."),
    Key(".search.rungs[]", SEARCHED, "One per rung of every bracket, as sweep_rungs.md."),
    Key(".search.rungs[].<field>", SEARCHED, "`bracket`, `rung`, `epochs`, `candidates`, "
        "`kept`, `points` (entering), `scores` (their validation means; null at a last "
        "rung), `kept_points`."),
    Key(".search.survivors", SEARCHED, "The points of the last rungs: the only ones "
        "selected from and compared."),
    Key(".sampling", SAMPLED, "How the points were drawn (`genjax.sweeps.sampling`)."),
    Key(".sampling.axes", SAMPLED, "{sampled key: its distribution, as given}."),
    Key(".sampling.axes.<key>", SAMPLED, "One distribution, e.g. `loguniform(1e-4,1e-1)`."),
    Key(".sampling.samples", SAMPLED, "Points drawn (`--samples`)."),
    Key(".sampling.sampler", SAMPLED, "`random`, `sobol` or `halton` (`--sampler`)."),
    Key(".sampling.scramble", SAMPLED, "Whether the sequence was scrambled."),
    Key(".sampling.seed", SAMPLED, "The seed of the draw (`--sample_seed`, default "
        "`config.seed`)."),
    Key(".sampling.drawn[]", SAMPLED, "The drawn points' sampled values, in the order drawn "
        "(a `--sweep` grid multiplies each)."),
    Key(".sampling.drawn[].<key>", SAMPLED, "One sampled value."),
) + tuple(Key(k.path, k.when, k.meaning) for k in RESULTS_JSON
          if k.path.startswith(".provenance"))
