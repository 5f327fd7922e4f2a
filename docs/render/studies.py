"""Render the studies' results into the pages of docs/ (never typed by hand): for each study in
studies/ with results, a table of the paired effects against the reference per scenario (95 %
t intervals across seeds) between `<!-- study:<name>:start -->` and `<!-- study:<name>:end -->`,
and its plot. The observability study adds the emotion models' accuracy against the latent
truth per scenario, the igl_styles study the results per communication style.

A study at `paper` takes hours and a data dir does not outlive its machine, so results are
committed in two layers:

- studies/cells/<preset>/: each finished cell's small tables (`CELL_TABLES`: the paired effects,
  per style too, what each policy served by state, the emotion models' scores; and as the
  spec's extras ask (`EXTRA_TABLES`) the agents' Q-values, every metric per policy with the
  acting shares, the emotion model's confusion per group; never rollouts), with their reuse
  keys and numeric environment, in the warehouse's layout.
  A study's seeds may be run in different sittings (`esmr study run --seeds 3-4`); the cells
  of all of them add up here.
- studies/results/<name>/: the study's report over every archived cell, recomputed from the
  cells with the same SQL as the `study_report` asset (report.parquet, effects.png,
  styles.parquet, contrasts.parquet and fairness.parquet for igl_styles,
  accuracy.parquet for observability) and each run's timing.

With `--data-dir`, the finished cells of every shipped study found there (or only of each
`--study`) are archived first (replacing the same cells); the reports are then recomputed and
the pages rendered.

A re-run on new code that outlasts its sitting keeps what finished in studies/pending/ (the
same two layers, which nothing renders): `--data-dir <dir> --pending --study <name>` adds a
sitting's finished cells of the study there, and `--promote <name>` makes the study's pending
cells and run timings replace its archived ones once all its seeds are in.

    .venv/bin/esmr study run studies/observability.toml --data-dir <dir> --seeds 0-2
    .venv/bin/python docs/render/studies.py --data-dir <dir>
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import polars as pl

from esmr_assets.evaluation.plots.evaluation import style_shares_plot
from esmr_assets.orchestration.metadata import markdown_table_text
from esmr_assets.storage.warehouse import run_query
from esmr_assets.studies.report import (
    effects_plot,
    model_source,
    read_study_timings,
    study_effects,
)
from esmr_assets.studies.spec import STUDY_DIR, load_study

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the renderers' own helpers, run as scripts or loaded by path
from blocks import DOCS, link, write_block  # noqa: E402
from figures import DIGITS  # noqa: E402
from metadata import archive_metadata  # noqa: E402
from sources import ACTION_MEANS, CELLS, PENDING, REPO, RESULTS  # noqa: E402

#: the timings of the study runs of the code before the 10-seed re-run (issue 32)
PREVIOUS_TIMINGS = REPO / "studies" / "previous" / "timings"

#: the per-cell tables a study's results are computed from
CELL_TABLES = ("policy_effects", "style_effects", "emotion_model_scores", "action_shares")
#: the per-cell tables a spec's `report.extras` archives besides, for the figures that need them
#: (20-100 kB a cell each): the agents' Q-values, every metric per policy with the acting shares,
#: the emotion model's confusion per communication style, and the ranker's feature importance (with
#: the stage assets' metadata, `asset_metadata`, which docs/render/metadata.py writes)
EXTRA_TABLES = {"q_values": ("q_table",), "metrics": ("evaluation_metrics",), "confusion": ("emotion_confusion",),
                "metadata": ("ranker_feature_importance",)}
#: every table the archive may hold
ARCHIVED_TABLES = (*CELL_TABLES, *(table for tables in EXTRA_TABLES.values() for table in tables), "asset_metadata")
SPECS = sorted((REPO / "studies").glob("*.toml"))


def _cell(row: dict, digits: int) -> str:
    if row["effect"] is None:
        return "–"
    low, high = row["ci95_low"], row["ci95_high"]
    interval = "" if low is None else f" [{low:+.{digits}f}, {high:+.{digits}f}]"
    return f"{row['effect']:+.{digits}f}{interval}"


def _value_cell(row: dict, digits: int = 3) -> str:
    """A mean over seeds with its t interval, unsigned (a value, not an effect)."""
    return _cell({"effect": row["value"], "ci95_low": row["value_ci95_low"], "ci95_high": row["value_ci95_high"]},
                 digits).replace("+", "")


def _scenario_keys(study) -> str:
    """The study's cell scenarios, quoted for an SQL `in (...)`."""
    return ", ".join(f"'{study.cell_scenario(s)}'" for s in study.scenarios)


def effects_table(report: pl.DataFrame, study, spread: bool = False) -> str:
    """One row per scenario (spec order) and reported policy (oracle_* marked): each metric's
    effect with its interval across seeds, the policy's share of oracle_best_feed's effect on
    latent valence and, with `spread`, the SD of its per-seed effects."""
    rows = []
    for scenario in study.scenarios:
        mine = report.filter(pl.col("scenario") == scenario.name)
        for policy in study.policies:
            hits = {r["metric"]: r for r in mine.filter(pl.col("policy") == policy).to_dicts()}
            if not hits:
                continue
            oracle = next(iter(hits.values()))["oracle"]
            cells = {"scenario": scenario.name, "policy": f"{policy} (oracle)" if oracle else policy,
                     "seeds": str(max(int(r["seeds"]) for r in hits.values()))}
            for metric in study.metrics:
                cells[metric] = _cell(hits[metric], DIGITS.get(metric, 3)) if metric in hits else "–"
                if spread and metric in hits and hits[metric]["sd"] is not None:
                    cells[f"{metric} SD across seeds"] = f"{hits[metric]['sd']:.{DIGITS.get(metric, 3)}f}"
            share = hits.get("mean_latent_valence", {}).get("share_of_ceiling")
            if "oracle_best_feed" in study.policies and policy != "oracle_best_feed":
                cells["share of oracle_best_feed (valence)"] = "–" if share is None else f"{share:.2f}"
            rows.append(cells)
    return markdown_table_text(pl.DataFrame(rows).fill_null("–")) if rows else "(no scenario materialized yet)"


def accuracy(root: Path, study) -> pl.DataFrame:
    """Emotion models' accuracy against the latent truth per scenario and model (mean over seeds)."""
    keys = _scenario_keys(study)
    return run_query(root, f"""
        select scenario, model, count(*) as seeds, avg(accuracy_vs_truth) as accuracy_vs_truth
        from emotion_model_scores where scenario in ({keys}) group by all order by all""")


def accuracy_table(frame: pl.DataFrame, study) -> str:
    """`accuracy` wide: one row per scenario (spec order), one column per model."""
    if frame.is_empty():
        return "(no scenario materialized yet)"
    wide = frame.pivot("model", index="scenario", values="accuracy_vs_truth")
    order = {study.cell_scenario(s): n for n, s in enumerate(study.scenarios)}
    wide = wide.with_columns(pl.col("scenario").replace_strict(order).alias("_o")).sort("_o").drop("_o")
    wide = wide.with_columns(pl.col("scenario").str.split(".").list.slice(1).list.join("."))
    keep = ["scenario", "tabtransformer", "lightgbm", "logistic_regression", "cluster_labels",
            "tabtransformer_on_truth", "lightgbm_on_truth", "majority_class_of_truth"]
    return markdown_table_text(wide.select([c for c in keep if c in wide.columns]).with_columns(
        pl.exclude("scenario").round(3)))


#: the predicted states an agent acts in, in the order of the action table's columns
STATES = ("happy", "excited", "neutral", "stressed", "disappointed", "churned")


def action_results(root: Path, study) -> pl.DataFrame:
    """Per scenario, reported policy, predicted state and action: the share of the policy's
    user-days in that state on which the action led the feed (mean over seeds; a seed where
    it never did counts 0), and the share of all its days a bucket led."""
    keys = _scenario_keys(study)
    policies = ", ".join(f"'{p}'" for p in study.policies)
    where = f"scenario in ({keys}) and policy in ({policies})"
    return run_query(root, ACTION_MEANS.replace("{where}", where) + " order by all")


def action_table(frame: pl.DataFrame, study) -> str:
    """One row per scenario (spec order) and reported policy that served a bucket: the share of
    its days a bucket led, and per predicted state (yesterday's label) the bucket it led with
    most and that bucket's share of the state's days (`ranker`: no bucket)."""
    rows = []
    for scenario in study.scenarios:
        mine = frame.filter(pl.col("scenario") == study.cell_scenario(scenario))
        for policy in study.policies:
            theirs = mine.filter(pl.col("policy") == policy)
            if theirs.is_empty() or theirs["bucket_days"][0] == 0:
                continue
            cells = {"scenario": scenario.name, "policy": policy,
                     "days a bucket led": f"{theirs['bucket_days'][0]:.0%}"}
            for state in STATES:
                top = theirs.filter(pl.col("state") == state).sort("share", "action", descending=[True, False])
                cells[state] = "–" if top.is_empty() else f"{top['action'][0]} {top['share'][0]:.0%}"
            rows.append(cells)
    return markdown_table_text(pl.DataFrame(rows)) if rows else "(no scenario materialized yet)"


def style_results(root: Path, study) -> pl.DataFrame:
    """The study's per-style values and effects across seeds (`style_effects_across_seeds`)."""
    keys = _scenario_keys(study)
    return run_query(root, f"select * from {model_source('style_effects_across_seeds', True)} "
                           f"where scenario in ({keys}) order by all")


def styles_table(frame: pl.DataFrame, study) -> str:
    """Per scenario (spec order), reported policy and style: the r = -1 and r = +1 shares of
    served impressions, negative days, latent valence and engagement reward (the emotional
    side per group), each the mean over seeds with its 95 % t interval, and the
    decoded-reward sign accuracy of the learners."""
    rows = []
    for scenario in study.scenarios:
        mine = frame.filter(pl.col("scenario") == study.cell_scenario(scenario))
        for policy in ["lightgbm", *study.policies]:
            for style in mine["feedback_style"].unique(maintain_order=True).to_list():
                hits = {r["metric"]: r for r in mine.filter((pl.col("policy") == policy)
                                                            & (pl.col("feedback_style") == style)).to_dicts()}
                if not hits:
                    continue
                oracle = next(iter(hits.values()))["oracle"]
                cells = {"scenario": scenario.name, "policy": f"{policy} (oracle)" if oracle else policy, "style": style}
                for metric, digits in (("negative_share", 3), ("positive_share", 3), ("negative_days", 2),
                                       ("mean_latent_valence", 3), ("engagement_reward", 2), ("decoded_accuracy", 3)):
                    row = hits.get(metric)
                    cells[metric] = "–" if row is None or row["value"] is None else _value_cell(row, digits)
                rows.append(cells)
    return markdown_table_text(pl.DataFrame(rows)) if rows else "(no scenario materialized yet)"


def fairness(root: Path, study) -> pl.DataFrame:
    """The study's rows of the `reward_fairness_by_group` model (IGL-P's fairness summary):
    per scenario, policy and style the r = -1 and r = +1 shares, with the worst-served style's."""
    keys = _scenario_keys(study)
    return run_query(root, f"select * from {model_source('reward_fairness_by_group', True)} "
                           f"where scenario in ({keys}) order by all")


def fairness_table(frame: pl.DataFrame, study) -> str:
    """Per scenario (spec order) and reported policy: the worst-served style on r = -1 (the
    highest share any style gets) and on r = +1 (the lowest), mean over seeds."""
    rows = []
    for scenario in study.scenarios:
        mine = frame.filter(pl.col("scenario") == study.cell_scenario(scenario))
        for policy in ["lightgbm", *study.policies]:
            hit = mine.filter(pl.col("policy") == policy).head(1).to_dicts()
            if hit:
                rows.append({"scenario": scenario.name, "policy": f"{policy} (oracle)" if hit[0]["oracle"] else policy,
                             "worst r = −1 share": f"{hit[0]['worst_negative_share']:.3f} ({hit[0]['worst_negative_style']})",
                             "worst r = +1 share": f"{hit[0]['worst_positive_share']:.3f} ({hit[0]['worst_positive_style']})"})
    return markdown_table_text(pl.DataFrame(rows)) if rows else "(no scenario materialized yet)"


#: the paired contrasts of the emotional side per style (igl_styles): does ESMR protect a group
#: against LightGBM, and does learning R_eng from IGL-P's decoded reward do better than ESMR's?
CONTRASTS = (("esmr", "lightgbm"), ("esmr_igl", "esmr"))
CONTRAST_METRICS = ("negative_days", "mean_latent_valence")


def style_contrasts(root: Path, study, contrasts=CONTRASTS, metrics=CONTRAST_METRICS) -> pl.DataFrame:
    """Per scenario, style, contrast (a, b) and metric: the mean over seeds of a's value minus
    b's on the same users (the difference of their paired effects against the reference, which
    is b's own effect of zero when b is the reference) with a 95 % t interval across seeds."""
    keys = _scenario_keys(study)
    pairs = " union all ".join(f"select '{a}' as a, '{b}' as b" for a, b in contrasts)
    names = ", ".join(f"'{m}'" for m in metrics)
    return run_query(root, f"""
        with e as (select scenario, seed, feedback_style, policy, metric,
                          coalesce(effect, case when policy = reference then 0 end) as effect
                   from style_effects where scenario in ({keys}) and metric in ({names})),
        d as (select x.scenario, x.feedback_style, pairs.a, pairs.b, x.metric, x.seed, x.effect - y.effect as diff
              from ({pairs}) as pairs
              join e as x on x.policy = pairs.a
              join e as y on y.policy = pairs.b and y.scenario = x.scenario and y.seed = x.seed
                         and y.feedback_style = x.feedback_style and y.metric = x.metric)
        select scenario, feedback_style, a, b, metric, count(diff) as seeds, avg(diff) as difference,
               avg(diff) - t_half_width(stddev_samp(diff), count(diff)) as ci95_low,
               avg(diff) + t_half_width(stddev_samp(diff), count(diff)) as ci95_high
        from d group by all order by all""")


def emotional_side_table(styles: pl.DataFrame, contrasts: pl.DataFrame, study) -> str:
    """Per scenario (spec order) and style: LightGBM's engagement reward and latent valence
    (mean over seeds, t interval) beside each contrast's paired difference per metric."""
    rows = []
    for scenario in study.scenarios:
        key = study.cell_scenario(scenario)
        mine = styles.filter((pl.col("scenario") == key) & (pl.col("policy") == "lightgbm"))
        for style in mine["feedback_style"].unique(maintain_order=True).to_list():
            cells = {"scenario": scenario.name, "style": style}
            for metric, digits in (("engagement_reward", 2), ("mean_latent_valence", 3)):
                hit = mine.filter((pl.col("feedback_style") == style) & (pl.col("metric") == metric)).to_dicts()
                cells[f"lightgbm {metric}"] = "–" if not hit else _value_cell(hit[0], digits)
            present = set(zip(contrasts["a"], contrasts["b"])), set(contrasts["metric"])
            for a, b in (pair for pair in CONTRASTS if pair in present[0]):
                for metric in (m for m in CONTRAST_METRICS if m in present[1]):
                    hit = contrasts.filter((pl.col("scenario") == key) & (pl.col("feedback_style") == style)
                                           & (pl.col("a") == a) & (pl.col("b") == b)
                                           & (pl.col("metric") == metric)).to_dicts()
                    cells[f"{a} − {b} {metric}"] = "–" if not hit else _cell(
                        {"effect": hit[0]["difference"], "ci95_low": hit[0]["ci95_low"],
                         "ci95_high": hit[0]["ci95_high"]}, DIGITS.get(metric, 3))
            rows.append(cells)
    return markdown_table_text(pl.DataFrame(rows)) if rows else "(no scenario materialized yet)"


def _share(frame: pl.DataFrame, policy: str, style: str) -> dict | None:
    rows = frame.filter((pl.col("policy") == policy) & (pl.col("feedback_style") == style)
                        & (pl.col("metric") == "negative_share")).to_dicts()
    return rows[0] if rows and rows[0]["value"] is not None else None


def igl_predictions(frame: pl.DataFrame, study) -> str:
    """The IGL-P paper's predictions 1-3 (docs/igl.md), checked per scenario with
    outraged users on the r = -1 shares (mean over seeds, 95 % t interval): held or not,
    with the figures. Deployable policies only (no oracle_*)."""
    lines = []
    for scenario in study.scenarios:
        mine = frame.filter(pl.col("scenario") == study.cell_scenario(scenario))
        styles = mine["feedback_style"].unique(maintain_order=True).to_list()
        if "outraged" not in styles:
            continue
        policies = mine.filter(~pl.col("oracle"))["policy"].unique(maintain_order=True).to_list()
        seeds = int(mine["seeds"].max())
        like = {style: _share(mine, "cb_like", style) for style in styles}
        igl3 = {style: _share(mine, "igl_p3", style) for style in styles}
        igl2 = {style: _share(mine, "igl_p2", style) for style in styles}
        if any(v is None for d in (like, igl3, igl2) for v in d.values()):
            continue
        others = max((like[s]["value"], s) for s in styles if s != "outraged")
        first = like["outraged"]["value"] > others[0] and like["outraged"]["value"] > igl3["outraged"]["value"]
        lines.append(f"- **{scenario.name}** (seeds: {seeds}), 1. {'held' if first else 'not held'}: `cb_like` serves "
                     f"outraged users r = −1 at {_value_cell(like['outraged'])}, its next group ({others[1]}) "
                     f"{others[0]:.3f}, and IGL-P(3) serves outraged users {_value_cell(igl3['outraged'])}.")
        worst = {s: max(((_share(mine, p, s) or {}).get("value") or -1.0, p) for p in policies) for s in styles}
        never = all(worst[s][1] != "igl_p3" for s in styles)
        lines.append(f"  2. {'held' if never else 'not held'}: the worst policy on r = −1 per group is "
                     + ", ".join(f"{s}: {worst[s][1]} ({worst[s][0]:.3f})" for s in styles) + ".")
        fewer = all(igl3[s]["value"] < igl2[s]["value"] for s in styles)
        lines.append(f"  3. {'held' if fewer else 'not held'}: IGL-P(3) against IGL-P(2) per group: "
                     + ", ".join(f"{s} {igl3[s]['value']:.3f} vs {igl2[s]['value']:.3f}" for s in styles) + ".")
    return "\n".join(lines) if lines else "(no scenario with outraged users materialized yet)"


def _runs(paths: list[Path], scenarios: dict[str, int]) -> pl.DataFrame:
    """Each study's archived `esmr study run`s summed (a study resumed over sittings is several
    runs, those stopped midway counted), with its cells: the distinct cells its runs worked on
    where every run lists them, else its `scenarios` times the seeds the runs covered."""
    timings = read_study_timings(paths)
    timings = timings.group_by("study", maintain_order=True).agg(
        pl.len().alias("runs"),
        (pl.col("complete") == False).sum().alias("stopped"),  # noqa: E712 (null: not recorded)
        pl.col("seeds").drop_nulls(),  # each run's, joined below
        pl.when(pl.col("cells").is_null().any()).then(None)
        .otherwise(pl.col("cells").list.explode(keep_nulls=False, empty_as_null=False).n_unique())
        .alias("listed_cells"),
        pl.col("wall_seconds", "reuse_saved_seconds").sum(),
        # a record from before steps were counted right (no "seeds") leaves its study's sum unknown
        pl.when(pl.col("steps_computed").is_null().any()).then(None).otherwise(pl.col("steps_computed").sum())
        .alias("steps_computed"),
        pl.col("steps_reused").sum(),
    )
    union = [sorted({int(k) for run in runs for k in run.split(",") if k}) for runs in timings["seeds"].to_list()]
    spanned = pl.Series([scenarios[study] * len(seeds) if study in scenarios and seeds else None  # unknown: no spec
                         for study, seeds in zip(timings["study"], union)], dtype=pl.Int64)
    return timings.with_columns(
        seeds=pl.Series([",".join(map(str, seeds)) for seeds in union], dtype=pl.String),
        cells=pl.col("listed_cells").cast(pl.Int64).fill_null(spanned),
        share_saved=pl.col("reuse_saved_seconds") / (pl.col("wall_seconds") + pl.col("reuse_saved_seconds")))


def _minutes(column: str) -> pl.Expr:
    return (pl.col(column) / 60).round(0).cast(pl.Int64).cast(pl.String).add(" min").fill_null("–")


def _percent(column: str) -> pl.Expr:
    return (pl.col(column) * 100).round(0).cast(pl.Int64).cast(pl.String).add(" %").fill_null("–")


def _seconds(value: pl.Expr) -> pl.Expr:
    return value.round(0).cast(pl.Int64).cast(pl.String).add(" s").fill_null("–")


def timings_table(results: Path, previous: Path = PREVIOUS_TIMINGS, specs: list[Path] = SPECS) -> str:
    """Per study, its archived runs: wall time, what reuse saved and its share of the whole,
    steps computed and linked, the wall time per cell; beside them the 5-seed runs of the code
    before the 10-seed re-run (`previous`): wall time, share saved, per cell."""
    studies = [load_study(path) for path in specs]
    scenarios = {study.name: len(study.scenarios) for study in studies}
    timings = _runs(sorted(results.glob("*/timing*.json")), scenarios)
    old = _runs(sorted(previous.glob("*/timing*.json")), scenarios).select(
        "study", pl.col("wall_seconds").alias("old_wall"), pl.col("share_saved").alias("old_share"),
        (pl.col("wall_seconds") / pl.col("cells")).alias("old_per_cell"))
    if timings.is_empty() and old.is_empty():
        return "(no study has run yet)"
    order = {study.name: n for n, study in enumerate(studies)}
    timings = (timings.join(old, on="study", how="full", coalesce=True)
               .sort(pl.col("study").replace_strict(order, default=len(order))))
    return markdown_table_text(timings.select(
        "study", pl.when(pl.col("stopped") > 0).then(pl.format("{} ({} stopped)", "runs", "stopped"))
        .otherwise(pl.col("runs").cast(pl.String)).fill_null("–").alias("runs"), pl.col("seeds").fill_null("–"),
        pl.col("cells").cast(pl.String).fill_null("–"), _minutes("wall_seconds").alias("wall time"),
        _minutes("reuse_saved_seconds").alias("reuse saved"), _percent("share_saved").alias("share saved"),
        pl.col("steps_computed").cast(pl.String).fill_null("–").alias("steps computed"),
        pl.col("steps_reused").cast(pl.String).fill_null("–").alias("steps linked"),
        _seconds(pl.col("wall_seconds") / pl.col("cells")).alias("wall per cell"),
        _minutes("old_wall").alias("old code, 5 seeds: wall time"), _percent("old_share").alias("old: share saved"),
        _seconds(pl.col("old_per_cell")).alias("old: per cell"),
    ))


def archive(data_dir: Path, cells: Path = CELLS, results: Path = RESULTS, specs: list[Path] = SPECS,
            replace: bool = False) -> list[str]:
    """Copy the finished cells (those with `policy_effects`) of each study in `specs` from
    `data_dir` into the cell archive `cells`, replacing the same cells, and each study run's
    timing into `results/<name>/`; return the names of the studies with cells archived.
    `replace`: a study with finished cells in `data_dir` loses the other archived cells of its
    scenarios and its archived run timings first (a re-run on new code, in a data dir of its
    own, replaces the old cells and runs instead of adding to them)."""
    done = []
    for path in specs:
        study = load_study(path)
        root = data_dir / study.preset
        copied = 0
        rerun = replace and any((root / "policy_effects" / f"scenario={study.cell_scenario(s)}").glob(
            "seed=*/part-0.parquet") for s in study.scenarios)
        for scenario in study.scenarios:
            key = study.cell_scenario(scenario)
            definition = cells / study.preset / "scenarios" / f"{key}.json"
            redefined = definition.is_file() and json.loads(definition.read_text()) != json.loads(scenario.overrides_json)
            if redefined or rerun:
                for table in ARCHIVED_TABLES:  # stale: the scenario was redefined, or the study is re-run
                    shutil.rmtree(cells / study.preset / table / f"scenario={key}", ignore_errors=True)
            definition.parent.mkdir(parents=True, exist_ok=True)
            definition.write_text(scenario.overrides_json + "\n")
            tables = (*CELL_TABLES, *(table for extra in study.extras for table in EXTRA_TABLES.get(extra, ())))
            finished_cells = sorted((root / "policy_effects" / f"scenario={key}").glob("seed=*/part-0.parquet"))
            for finished in finished_cells:
                for table in tables:
                    source = root / table / f"scenario={key}" / finished.parent.name
                    if not (source / "part-0.parquet").is_file():
                        continue
                    target = cells / study.preset / table / f"scenario={key}" / finished.parent.name
                    target.mkdir(parents=True, exist_ok=True)
                    for name in ("part-0.parquet", ".key", ".numerics.json"):  # the record: what it was computed with
                        (target / name).unlink(missing_ok=True)
                        if (source / name).is_file():
                            shutil.copyfile(source / name, target / name)
                copied += 1
            if "metadata" in study.extras:  # the stage assets' metadata: in the Dagster instance, not a file
                seeds = [int(finished.parent.name.removeprefix("seed=")) for finished in finished_cells]
                archive_metadata(data_dir, cells / study.preset, key, seeds)
        if copied and rerun:  # the re-run's runs replace the archived ones (its data dir holds them all)
            for stale in (results / study.name).glob("timing-*.json"):
                stale.unlink()
        for timing in sorted((root / STUDY_DIR).glob(f"{study.name}.timing*.json")) if copied else ():
            record = json.loads(timing.read_text())
            if "run" in record:  # one file per run, rewritten as it goes: archiving again replaces it
                name = f"timing-run-{record['run']}.json"
            else:  # older runs: one file per study, named here by its content, so archiving twice adds nothing
                digest = hashlib.sha256(timing.read_bytes()).hexdigest()[:10]
                name = f"timing-seeds-{record.get('seeds', '').replace(',', '_')}-{digest}.json"
            (results / study.name).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(timing, results / study.name / name)
        if copied:
            done.append(study.name)
    return done


def promote(name: str, pending: Path = PENDING, cells: Path = CELLS, results: Path = RESULTS,
            specs: list[Path] = SPECS) -> int:
    """The study `name`'s cells and run timings in `pending` (its re-run, archived sitting by
    sitting) replace its archived ones, and leave `pending`; return how many cells moved."""
    (path,) = specs_named([name], specs)
    study = load_study(path)
    source, target = pending / "cells" / study.preset, cells / study.preset
    keys = [study.cell_scenario(scenario) for scenario in study.scenarios]
    moved = sum(1 for key in keys for _ in (source / "policy_effects" / f"scenario={key}").glob("seed=*"))
    if not moved:
        return 0
    for key in keys:
        for table in ARCHIVED_TABLES:
            shutil.rmtree(target / table / f"scenario={key}", ignore_errors=True)
            if (source / table / f"scenario={key}").is_dir():
                shutil.copytree(source / table / f"scenario={key}", target / table / f"scenario={key}")
                shutil.rmtree(source / table / f"scenario={key}")
        definition = source / "scenarios" / f"{key}.json"
        if definition.is_file():
            (target / "scenarios").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(definition, target / "scenarios" / definition.name)
            definition.unlink()
    for stale in (results / study.name).glob("timing-*.json"):
        stale.unlink()
    for timing in sorted((pending / "results" / study.name).glob("timing-*.json")):
        (results / study.name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(timing, results / study.name / timing.name)
    shutil.rmtree(pending / "results" / study.name, ignore_errors=True)
    return moved


def report(cells: Path = CELLS, results: Path = RESULTS, specs: list[Path] = SPECS) -> list[str]:
    """Each study's results over all its archived cells into `results/<name>/`: the report
    and plot of the `study_report` asset, the per-style results and the spec's `report.extras`
    (the styles' contrasts, fairness and plots; the emotion models' accuracy); return the names
    of the studies reported."""
    done = []
    for path in specs:
        study = load_study(path)
        root = cells / study.preset
        if not (root / "policy_effects").is_dir():
            continue
        effects = study_effects(root, study, recompute=True)
        if effects.is_empty():
            continue
        target = results / study.name
        target.mkdir(parents=True, exist_ok=True)
        effects.write_parquet(target / "report.parquet")
        (target / "effects.png").write_bytes(effects_plot(effects, study))
        if (root / "style_effects").is_dir():
            styles = style_results(root, study)
            styles.write_parquet(target / "styles.parquet")
            if "styles" in study.extras:  # IGL-P's Fig. 4 per scenario, t intervals across seeds
                style_contrasts(root, study).write_parquet(target / "contrasts.parquet")
                fairness(root, study).write_parquet(target / "fairness.parquet")
                for stale in target.glob("styles-*.png"):
                    stale.unlink()
                order = {policy: n for n, policy in enumerate(["lightgbm", *study.policies])}
                for scenario in study.scenarios:
                    mine = styles.filter((pl.col("scenario") == study.cell_scenario(scenario))
                                         & pl.col("policy").is_in(list(order))).sort(
                        pl.col("policy").replace_strict(order), "feedback_style")
                    if not mine.is_empty():
                        (target / f"styles-{scenario.name}.png").write_bytes(style_shares_plot(mine))
        if "accuracy" in study.extras:
            accuracy(root, study).write_parquet(target / "accuracy.parquet")
        if "actions" in study.extras and (root / "action_shares").is_dir():
            action_results(root, study).write_parquet(target / "actions.parquet")
        done.append(study.name)
    return done


def render(results: Path, docs: Path = DOCS, specs: list[Path] = SPECS) -> list[str]:
    """Fill each study's block and the timings table, wherever they are in `docs`, from the archived `results`."""
    done = []
    write_block("study-timings", [timings_table(results, specs=specs)], docs, required=False)
    for path in specs:
        study = load_study(path)
        mine = results / study.name
        if not (mine / "report.parquet").is_file():
            continue
        report = pl.read_parquet(mine / "report.parquet")

        def parts(page: Path, study=study, mine=mine, report=report) -> list[str]:
            parts = [effects_table(report, study, spread="spread" in study.extras)]
            if "actions" in study.extras and (mine / "actions.parquet").is_file():
                parts += ["What each policy served (mean over seeds): the share of its user-days from day 1 on "
                          "that a bucket led the feed, and per predicted state of the day before the bucket it "
                          "led with most, with its share of that state's days (`ranker`: the ranker's feed):",
                          action_table(pl.read_parquet(mine / "actions.parquet"), study)]
            if "accuracy" in study.extras and (mine / "accuracy.parquet").is_file():
                parts += ["Emotion models' accuracy against the latent truth (test users, mean over seeds):",
                          accuracy_table(pl.read_parquet(mine / "accuracy.parquet"), study)]
            if "styles" in study.extras and (mine / "styles.parquet").is_file():
                styles = pl.read_parquet(mine / "styles.parquet")
                parts += ["The IGL-P paper's predictions, checked (r = −1 shares of served impressions, mean over "
                          "seeds, 95 % t interval):", igl_predictions(styles, study),
                          "Per communication style (mean over seeds, 95 % t interval; r = ±1: shares of served "
                          "impressions by latent satisfaction):", styles_table(styles, study)]
                if (mine / "fairness.parquet").is_file():
                    parts += ["The worst-served group per policy (IGL-P's fairness summary, "
                              "`reward_fairness_by_group`; mean over seeds, style in brackets):",
                              fairness_table(pl.read_parquet(mine / "fairness.parquet"), study)]
                if (mine / "contrasts.parquet").is_file():
                    parts += ["The emotional side per style: LightGBM's engagement reward and latent valence, and "
                              "the paired differences a − b on the same users (mean over seeds, 95 % t interval; "
                              "negative days: fewer is better):",
                              emotional_side_table(styles, pl.read_parquet(mine / "contrasts.parquet"), study)]
                for figure in (mine / f"styles-{scenario.name}.png" for scenario in study.scenarios):
                    if figure.is_file():
                        parts.append(f"![{figure.stem}]({link(figure, page)})")
            return parts + [f"![{study.name}]({link(mine / 'effects.png', page)})"]

        if write_block(f"study:{study.name}", parts, docs, required=False) is not None:
            done.append(study.name)
    return done


def specs_named(names: list[str] | None, specs: list[Path] = SPECS) -> list[Path]:
    """The spec files of the studies `names` (every one in `specs` without names), so that a
    sitting archives the study it ran and not its data dir's other ones."""
    if not names:
        return specs
    by_name = {load_study(path).name: path for path in specs}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise ValueError(f"no study {', '.join(map(repr, unknown))} in studies/")
    return [by_name[name] for name in dict.fromkeys(names)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="archive the studies' finished cells found here first")
    parser.add_argument("--replace", action="store_true",
                        help="a study with finished cells in --data-dir loses its other archived cells")
    parser.add_argument("--pending", action="store_true",
                        help="archive --data-dir's finished cells into studies/pending/ (a re-run not yet complete) only")
    parser.add_argument("--promote", metavar="STUDY",
                        help="the study's pending cells and run timings replace its archived ones first")
    parser.add_argument("--study", action="append", metavar="STUDY",
                        help="archive only this study's cells from --data-dir (repeatable; default: every study)")
    parser.add_argument("--docs", type=Path, default=DOCS, help="the folder of pages holding the blocks")
    args = parser.parse_args()
    try:
        specs = specs_named(args.study)
        specs_named([args.promote] if args.promote is not None else None)  # an unknown --promote: refused first
    except ValueError as error:
        parser.error(str(error))
    if args.study and args.data_dir is None:
        parser.error("--study picks what to archive from a --data-dir")
    if args.pending:
        if args.data_dir is None:
            parser.error("--pending archives a --data-dir")
        print("pending cells of:",
              ", ".join(archive(args.data_dir, PENDING / "cells", PENDING / "results", specs)) or "nothing")
        return
    if args.promote is not None:
        print(f"promoted {promote(args.promote)} pending cells of {args.promote}")
    if args.data_dir is not None:
        print("archived cells of:", ", ".join(archive(args.data_dir, specs=specs, replace=args.replace)) or "nothing")
    print("reported:", ", ".join(report()) or "nothing")
    print("rendered:", ", ".join(render(RESULTS, args.docs)) or "nothing")


if __name__ == "__main__":
    main()
