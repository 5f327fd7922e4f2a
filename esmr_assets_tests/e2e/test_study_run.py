"""A 2-scenario x 2-seed smoke study end to end through `esmr study run`, killed with SIGKILL
mid-way and resumed: the grid completes, nothing finished before the kill is redone, the
bytes equal an uninterrupted in-process run's, the scenario that differs only in
`policy.alpha` reuses the simulation, emotion and causal stages (from the instance's
records), SQL shows both scenarios, and the study report has effects and its plot."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest
from scipy import stats

from esmr_assets.definitions import cell_steps
from esmr_assets.storage.reuse import KEY_FILE
from esmr_assets.storage.warehouse import run_query
from esmr_assets_tests.conftest import load_renderer

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
SPEC = """
description = "alpha 0 against the paper's alpha, at smoke scale"
preset = "smoke"
seeds = "2-3"

[report]
policies = ["esmr", "oracle_esmr", "oracle_best_feed"]
metrics = ["negative_days", "mean_latent_valence"]
extras = ["styles", "actions", "metadata"]

[[scenario]]
name = "base"

[[scenario]]
name = "alpha_0"
overrides = { policy = { alpha = 0.0 } }
"""
#: the steps a change of policy.alpha reaches: the agents and everything after them
AGENT_AND_AFTER = {"agent_training", "deep_agent_training", "policy_rollouts", "action_shares", "evaluation_metrics",
                   "user_metrics", "policy_effects", "style_effects"}


def esmr(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "esmr"), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kwargs)


def cell_files(root: Path, scenario: str, seed: int) -> dict[Path, os.stat_result]:
    """The cell's files (not its hidden key file) with their stat."""
    return {p.relative_to(root): p.stat() for p in root.glob(f"*/scenario={scenario}/seed={seed}/*")
            if p.is_file() and not p.name.startswith(".")}


def step_dirs(root: Path, label: str) -> list[Path]:
    """The asset folders of the cell step with this label (a multi_asset has several)."""
    (step,) = [step for step in cell_steps() if step.label == label]
    return [root.joinpath(*asset.path) for asset in step.asset_keys]


def finished_files(root: Path) -> dict[Path, os.stat_result]:
    """Every file of every step that holds a key for each of its assets, in any cell: what is
    done. A multi_asset killed between its assets' keys is not done (rightly recomputed)."""
    files: dict[Path, os.stat_result] = {}
    for step in cell_steps():
        folders = step_dirs(root, step.label)
        for key in folders[0].glob(f"scenario=*/seed=*/{KEY_FILE}"):
            cell = key.parent.relative_to(folders[0])
            if all((folder / cell / KEY_FILE).is_file() for folder in folders):
                files.update({p.relative_to(root): p.stat() for folder in folders for p in (folder / cell).iterdir()
                              if p.is_file() and not p.name.startswith(".")})
    return files


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The study run in a subprocess, killed with SIGKILL in the middle of its first cell
    (scenario base, seed 2: both assets of its ranker step done, its bandits not), then resumed
    to the end: (spec, data dir, the files done before the kill, the resumed run's stdout, the
    grid `esmr study status` printed between the kill and the resumption)."""
    tmp = tmp_path_factory.mktemp("study")
    spec, data = tmp / "tiny.toml", tmp / "data"
    spec.write_text(SPEC)
    first = esmr("study", "run", str(spec), "--data-dir", str(data))
    root = data / "smoke"
    ranker_keys = [folder / "scenario=tiny.base" / "seed=2" / KEY_FILE
                   for folder in step_dirs(root, "engagement_ranker, ranker_feature_importance")]
    deadline = time.monotonic() + 400
    while not all(key.exists() for key in ranker_keys) and first.poll() is None:
        assert time.monotonic() < deadline, "the first cell took too long"
        time.sleep(0.1)
    assert first.poll() is None, "the study finished before it could be killed"
    os.killpg(first.pid, signal.SIGKILL)
    first.communicate()
    assert not (root / "policy_effects" / "scenario=tiny.base" / "seed=2" / ".key").exists()  # killed mid-cell
    before = finished_files(root)
    status = esmr("study", "status", str(spec), "--data-dir", str(data))
    killed_grid, err = status.communicate(timeout=120)
    assert status.returncode == 0, err
    resumed = esmr("study", "run", str(spec), "--data-dir", str(data))
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-3000:]
    return spec, data, before, out, killed_grid


def test_the_grid_completes_after_the_kill(study):
    spec, data, _, _, killed_grid = study
    grid = [line.split() for line in killed_grid.splitlines()[1:] if line.startswith(("base", "alpha_0"))]
    assert grid == [["base", "interrupted", "missing"], ["alpha_0", "missing", "missing"]]  # the dead run told apart
    status = esmr("study", "status", str(spec), "--data-dir", str(data))
    out, err = status.communicate(timeout=120)
    assert status.returncode == 0, err
    assert out.splitlines()[-1] == "4 done"
    grid = [line.split() for line in out.splitlines()[1:] if line.startswith(("base", "alpha_0"))]
    assert grid == [["base", "done", "done"], ["alpha_0", "done", "done"]]


def test_nothing_finished_before_the_kill_is_redone(study):
    _, data, before, out, _ = study
    after = finished_files(data / "smoke")
    assert len(before) >= 8 and set(before) <= set(after)
    assert all((before[p].st_ino, before[p].st_mtime_ns) == (after[p].st_ino, after[p].st_mtime_ns) for p in before)
    (row,) = [line.split() for line in out.splitlines() if line.startswith("users ")]
    computed, current = int(row[1]), int(row[4])
    assert current == 1 and computed == 1  # seed 2's users were done; seed 3's computed; alpha_0 linked both


def test_the_killed_cell_has_the_bytes_of_an_uninterrupted_run_in_another_process(study, smoke_graph):
    """The cell the kill interrupted, resumed in another process, against the in-process smoke
    graph of the same seed (its scenario changes nothing): tables, models and plots byte for byte."""
    _, data, _, _, _ = study
    reference, _ = smoke_graph
    ours = sorted(cell_files(data / "smoke", "tiny.base", 2))
    theirs = sorted(cell_files(reference, "baseline", 2))
    assert [p.parts[0] for p in ours] == [p.parts[0] for p in theirs] and len(ours) > 20
    for mine, other in zip(ours, theirs):
        assert (data / "smoke" / mine).read_bytes() == (reference / other).read_bytes(), mine


def test_a_scenario_that_changes_only_alpha_reuses_every_upstream_stage(study):
    _, data, _, _, _ = study
    root = data / "smoke"
    with dg.DagsterInstance.from_config(str(data / ".dagster")) as instance:
        for seed in (2, 3):
            key = f"tiny.alpha_0|{seed}"
            runs = instance.get_runs(dg.RunsFilter(tags={"dagster/partition": key}, statuses=[dg.DagsterRunStatus.SUCCESS]))
            assert runs, key
            executed = {stat.step_key for run in runs for stat in instance.get_run_step_stats(run.run_id)}
            assert executed == AGENT_AND_AFTER, key  # no simulation, emotion, causal, ranker or bandit step
            users = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey("users"), asset_partitions=[key]), limit=5).records
            assert users and all(record.run_id == "" for record in users)  # recorded without a run
            assert users[0].asset_materialization.metadata["reused_key"].value
    for asset in ("users", "user_day_logs", "emotion_model", "emotion_predictions", "causal_dags", "engagement_ranker"):
        (shared,) = [p for p in (root / asset / "scenario=tiny.base" / "seed=2").iterdir()
                     if p.suffix in (".parquet", ".pt", ".txt")]
        linked = root / asset / "scenario=tiny.alpha_0" / "seed=2" / shared.name
        assert linked.stat().st_ino == shared.stat().st_ino, asset  # the same upstream bytes, not a copy
    agents = [root / "q_agents" / f"scenario={s}" / "seed=2" / "q_agents.npz" for s in ("tiny.base", "tiny.alpha_0")]
    assert agents[0].read_bytes() != agents[1].read_bytes()  # what alpha reaches was recomputed


def test_sql_and_the_study_report_show_both_scenarios(study):
    _, data, _, _, _ = study
    root = data / "smoke"
    scenarios = run_query(root, "select distinct scenario from policy_effects order by scenario")["scenario"].to_list()
    assert scenarios == ["tiny.alpha_0", "tiny.base"]
    across = run_query(root, "select scenario, seeds from policy_effects_across_seeds where policy = 'esmr' "
                             "and metric = 'negative_days' and label_source = 'true' order by scenario")
    assert across.rows() == [("tiny.alpha_0", 2), ("tiny.base", 2)]
    report = run_query(root, "select * from study_report")
    assert report["study"].unique().to_list() == ["tiny"]
    assert report.select("scenario", "policy").unique().height == 2 * 3
    assert report.filter(pl.col("policy") == "oracle_best_feed")["oracle"].all()
    assert report["effect"].is_finite().all() and report["ci95_low"].is_not_null().all()
    assert report.filter(pl.col("scenario") == "alpha_0")["value"].unique().to_list() == ["0.0"]
    assert (root / "study_report" / "study=tiny" / "effects.png").stat().st_size > 5000
    with dg.DagsterInstance.from_config(str(data / ".dagster")) as instance:
        (record,) = instance.fetch_materializations(dg.AssetKey("study_report"), limit=1).records
        metadata = record.asset_materialization.metadata
        assert record.partition_key == "tiny" and "effects_plot" in metadata and metadata["scenarios_with_effects"].value == 2


def test_the_results_are_archived_and_rendered_from_the_archive(study, tmp_path):
    """docs/render/studies.py copies the finished cells' small tables out of the data dir,
    recomputes the study's report from them (equal to the study_report asset's), then fills
    the docs page's block from the archive alone (the data dir is gone by then)."""
    spec, data, _, _, _ = study
    render_studies = load_renderer("studies")
    cells, results = tmp_path / "cells", tmp_path / "results"
    assert render_studies.archive(data, cells, results, [spec]) == ["tiny"]
    archived = sorted(p.relative_to(cells / "smoke") for p in (cells / "smoke").rglob("part-0.parquet")
                      if p.parts[-4] != "asset_metadata")  # copied; asset_metadata is written from the instance
    assert len(archived) == 2 * 2 * (len(render_studies.CELL_TABLES) + 1)  # 2 scenarios x 2 seeds, with "metadata"'s
    metadata = pl.read_parquet(cells / "smoke" / "asset_metadata" / "scenario=tiny.base" / "seed=2" / "part-0.parquet")
    with dg.DagsterInstance.from_config(str(data / ".dagster")) as instance:  # what the ranker's materialization says
        (record,) = instance.fetch_materializations(dg.AssetRecordsFilter(
            asset_key=dg.AssetKey("engagement_ranker"), asset_partitions=["tiny.base|2"]), limit=1).records
    auc = metadata.filter((pl.col("asset") == "engagement_ranker") & (pl.col("key") == "test_auc"))["value"].item()
    assert auc == record.asset_materialization.metadata["test_auc"].value
    assert not metadata["key"].str.contains("seconds|path|numeric_").any()  # no timing, no machine
    linked = pl.read_parquet(cells / "smoke" / "asset_metadata" / "scenario=tiny.alpha_0" / "seed=2" / "part-0.parquet")
    assert not linked["key"].is_in(["reused_key", "files"]).any()  # a link's bookkeeping names the data dir's paths
    for asset in ("user_day_logs", "engagement_ranker"):  # linked from tiny.base: the computing materialization's
        assert linked.filter(pl.col("asset") == asset).equals(metadata.filter(pl.col("asset") == asset)), asset
    assert linked.filter(pl.col("asset") == "engagement_ranker").height > 0
    assert all((cells / "smoke" / p).read_bytes() == (data / "smoke" / p).read_bytes() for p in archived)
    assert render_studies.report(cells, results, [spec]) == ["tiny"]
    (timing,) = (results / "tiny").glob("timing-*.json")  # the resumed run's (the killed one finished no cell)
    old_cell = cells / "smoke" / "policy_effects" / "scenario=tiny.base" / "seed=7"  # as if from older code
    shutil.copytree(next(old_cell.parent.glob("seed=*")), old_cell)
    assert render_studies.archive(data, cells, results, [spec]) == ["tiny"] and old_cell.is_dir()  # adds up
    assert render_studies.archive(data, cells, results, [spec], replace=True) == ["tiny"]
    assert not old_cell.exists()  # a re-run replaces the study's cells
    assert len(list((cells / "smoke").rglob("part-0.parquet"))) == len(archived) + 2 * 2  # and each cell's metadata
    assert {p.name for p in (results / "tiny").iterdir()} == {  # with what extras = ["styles", "actions"] add
        "report.parquet", "effects.png", "styles.parquet", "contrasts.parquet", "fairness.parquet",
        "styles-base.png", "styles-alpha_0.png", "actions.parquet", timing.name}
    actions = pl.read_parquet(results / "tiny" / "actions.parquet")
    archived_actions = pl.concat(pl.read_parquet(path) for path in
                                 (cells / "smoke" / "action_shares" / "scenario=tiny.base").glob("seed=*/part-0.parquet"))
    mine = archived_actions.filter((pl.col("policy") == "esmr") & (pl.col("state") == "stressed"))
    top = mine.group_by("action").agg(pl.col("share").sum() / 2).sort("share", "action", descending=[True, False])
    (hit,) = actions.filter((pl.col("scenario") == "tiny.base") & (pl.col("policy") == "esmr")
                            & (pl.col("state") == "stressed") & (pl.col("action") == top["action"][0])).to_dicts()
    assert hit["seeds"] == 2 and hit["share"] == pytest.approx(top["share"][0])
    record = json.loads(timing.read_text())
    assert timing.name == f"timing-run-{record['run']}.json"  # archiving again replaced it, added none
    assert record["complete"] and record["seeds"] == "2,3" and record["steps_computed"] > 0
    report = pl.read_parquet(results / "tiny" / "report.parquet")
    assert report.equals(pl.read_parquet(data / "smoke" / "study_report" / "study=tiny" / "part-0.parquet"))
    styles = pl.read_parquet(results / "tiny" / "styles.parquet")
    assert set(styles["scenario"]) == {"tiny.base", "tiny.alpha_0"}
    assert (styles.filter(pl.col("value").is_not_null())["seeds"] == 2).all()
    contrasts = render_studies.style_contrasts(cells / "smoke", render_studies.load_study(spec))
    archived_styles = pl.concat(
        pl.read_parquet(path).with_columns(pl.lit(path.parent.name).alias("seed"))
        for path in (cells / "smoke" / "style_effects" / "scenario=tiny.alpha_0").glob("seed=*/part-0.parquet"))
    by_seed = archived_styles.filter((pl.col("feedback_style") == "passive") & (pl.col("metric") == "negative_days"))
    diffs = (by_seed.filter(pl.col("policy") == "esmr_igl").sort("seed")["effect"]
             - by_seed.filter(pl.col("policy") == "esmr").sort("seed")["effect"]).to_numpy()
    (hit,) = contrasts.filter((pl.col("scenario") == "tiny.alpha_0") & (pl.col("feedback_style") == "passive")
                              & (pl.col("a") == "esmr_igl") & (pl.col("metric") == "negative_days")).to_dicts()
    half = stats.t.ppf(0.975, 1) * np.std(diffs, ddof=1) / np.sqrt(2)
    assert hit["seeds"] == 2 and hit["difference"] == pytest.approx(diffs.mean())
    assert hit["ci95_high"] == pytest.approx(diffs.mean() + half)
    (hit,) = contrasts.filter((pl.col("scenario") == "tiny.alpha_0") & (pl.col("feedback_style") == "passive")
                              & (pl.col("b") == "lightgbm") & (pl.col("metric") == "negative_days")).to_dicts()
    assert hit["difference"] == pytest.approx(by_seed.filter(pl.col("policy") == "esmr")["effect"].mean())
    fairness = render_studies.fairness(cells / "smoke", render_studies.load_study(spec))
    materialized = run_query(data / "smoke", "select * from reward_fairness_by_group "
                                             "where scenario like 'tiny.%' order by all")
    assert not fairness.is_empty() and fairness.equals(materialized)
    table = render_studies.styles_table(styles, render_studies.load_study(spec))
    (row,) = [line for line in table.splitlines() if line.startswith("| alpha_0 | esmr | critical |")]
    value = styles.filter((pl.col("scenario") == "tiny.alpha_0") & (pl.col("policy") == "esmr")
                          & (pl.col("feedback_style") == "critical") & (pl.col("metric") == "negative_share"))["value"].item()
    assert row.split("|")[4].strip().startswith(f"{value:.3f} [")
    page = tmp_path / "studies.md"  # the block found by its markers in whichever page of the folder holds it
    page.write_text("intro\n<!-- study:tiny:start -->\nstale text\n<!-- study:tiny:end -->\n"
                    "<!-- study-timings:start --><!-- study-timings:end -->\nend\n")
    assert render_studies.render(results, tmp_path, [spec]) == ["tiny"]
    text = page.read_text()
    effect = report.filter((pl.col("scenario") == "alpha_0") & (pl.col("policy") == "esmr")
                           & (pl.col("metric") == "negative_days"))["effect"].item()
    row = next(line for line in text.splitlines() if line.startswith("| alpha_0 | esmr |"))  # effects come first
    assert f"{effect:+.2f}" in row and "stale text" not in text and text.endswith("end\n")
    assert "| alpha_0 | oracle_esmr (oracle) |" in text and "![tiny](results/tiny/effects.png)" in text
    assert "What each policy served" in text and "| scenario | policy | days a bucket led | happy |" in text
    assert "The IGL-P paper's predictions, checked" in text and "![styles-alpha_0](results/tiny/styles-alpha_0.png)" in text
    (row,) = [line for line in text.splitlines() if line.startswith("| tiny |")]
    assert [cell.strip() for cell in row.split("|")[2:4]] == ["1", "2,3"]  # runs, seeds


def test_a_pending_rerun_replaces_the_archived_cells_only_when_promoted(study, tmp_path):
    """A re-run archived into a pending folder sitting by sitting leaves the archive alone;
    promoting it replaces the study's archived cells and run timings with the pending ones
    (byte for byte) and empties the pending folder."""
    spec, data, _, _, _ = study
    render_studies = load_renderer("studies")
    cells, results, pending = tmp_path / "cells", tmp_path / "results", tmp_path / "pending"
    render_studies.archive(data, cells, results, [spec])
    old_cell = cells / "smoke" / "policy_effects" / "scenario=tiny.base" / "seed=7"  # from older code, no longer run
    shutil.copytree(next(old_cell.parent.glob("seed=*")), old_cell)
    (results / "tiny" / "timing-old.json").write_text("{}")
    assert render_studies.archive(data, pending / "cells", pending / "results", [spec]) == ["tiny"]
    before = {p: p.read_bytes() for p in (pending / "cells").rglob("*") if p.is_file()}
    timings = {p.name for p in (pending / "results" / "tiny").glob("timing-*.json")}
    assert timings and "timing-old.json" not in timings
    assert old_cell.is_dir() and (results / "tiny" / "timing-old.json").is_file()  # pending touches no archive
    assert render_studies.promote("tiny", pending, cells, results, [spec]) == 2 * 2  # 2 scenarios x 2 seeds
    assert not old_cell.exists() and not (results / "tiny" / "timing-old.json").exists()
    for path, content in before.items():
        assert (cells / path.relative_to(pending / "cells")).read_bytes() == content, path
    assert {p.name for p in (results / "tiny").glob("timing-*.json")} == timings
    assert not any(p.is_file() for p in pending.rglob("*"))
    assert render_studies.promote("tiny", pending, cells, results, [spec]) == 0


def test_a_sitting_archives_only_the_studies_it_names(study, tmp_path):
    """`--study` picks the spec files by study name (each once, in the order named), so a
    sitting archives the study it ran and not the other studies of its data dir; an unknown
    name is refused, named."""
    render_studies = load_renderer("studies")
    named = render_studies.specs_named(["learners", "fair_test", "learners"])
    assert [p.stem for p in named] == ["learners", "fair_test"]
    assert render_studies.specs_named(None) == render_studies.SPECS
    with pytest.raises(ValueError, match="'nope'"):
        render_studies.specs_named(["fair_test", "nope"])
    spec, data, _, _, _ = study
    other = tmp_path / "other.toml"
    other.write_text(spec.read_text())
    pending = tmp_path / "pending"
    assert render_studies.archive(data, pending / "cells", pending / "results",
                                  render_studies.specs_named(["tiny"], [spec, other])) == ["tiny"]
    assert not list((pending / "cells").rglob("other.*"))  # the other study's scenarios are not written


def test_the_timings_table_sums_each_studys_archived_runs(tmp_path):
    """A study resumed over sittings is several runs: wall time, reuse and steps add up, the
    seeds are their union, the cells the distinct ones the runs list (else scenarios x seeds),
    stopped runs are counted, and a record from before steps were counted leaves its sum unknown."""
    render_studies = load_renderer("studies")
    runs = {"s1": [{"seeds": "0,1", "wall_seconds": 600, "reuse_saved_seconds": 600, "steps_computed": 10, "steps_reused": 2},
                   {"seeds": "1,3", "wall_seconds": 1200, "reuse_saved_seconds": 0, "steps_computed": 5, "steps_reused": 1}],
            "s2": [{"wall_seconds": 600, "reuse_saved_seconds": 0, "steps_computed": 99, "steps_reused": 1},
                   {"seeds": "2", "wall_seconds": 60, "reuse_saved_seconds": 0, "steps_computed": 1, "steps_reused": 0}],
            "s3": [{"seeds": "0", "cells": ["s3.a:0", "s3.b:0"], "complete": False, "wall_seconds": 300,  # stopped
                    "reuse_saved_seconds": 0, "steps_computed": 4, "steps_reused": 0},
                   {"seeds": "0,1", "cells": ["s3.b:0", "s3.a:1"], "complete": True, "wall_seconds": 240,
                    "reuse_saved_seconds": 0, "steps_computed": 3, "steps_reused": 0}]}
    old = {"s1": [{"seeds": "0,1", "wall_seconds": 2400, "reuse_saved_seconds": 2400, "steps_computed": 9,
                   "steps_reused": 2}]}  # the 5-seed runs of the old code
    for folder, studies in (("new", runs), ("old", old)):
        for study, records in studies.items():
            (tmp_path / folder / study).mkdir(parents=True)
            for n, record in enumerate(records):
                (tmp_path / folder / study / f"timing-{n}.json").write_text(json.dumps({"study": study, **record}))
    spec = tmp_path / "s1.toml"  # two scenarios: s1's cells are 2 x its seeds; s2 has no spec
    spec.write_text('preset = "smoke"\nseeds = "0-1"\n[[scenario]]\nname = "a"\noverrides = {}\n'
                    '[[scenario]]\nname = "b"\noverrides = { policy = { alpha = 0.5 } }\n')
    rows = [[cell.strip() for cell in line.split("|")[1:-1]]
            for line in render_studies.timings_table(tmp_path / "new", tmp_path / "old", [spec]).splitlines()[2:]]
    assert rows == [["s1", "2", "0,1,3", "6", "30 min", "10 min", "25 %", "15", "3", "300 s", "40 min", "50 %", "600 s"],
                    ["s2", "2", "2", "–", "11 min", "0 min", "0 %", "–", "1", "–", "–", "–", "–"],
                    ["s3", "2 (1 stopped)", "0,1", "3", "9 min", "0 min", "0 %", "7", "0", "180 s", "–", "–", "–"]]
