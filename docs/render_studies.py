"""Render the studies' results into the README from their `study_report` tables (never typed
by hand): for each study in studies/ that has a report in the data dir, a table of the paired
effects against the reference per scenario (95 % t intervals across seeds) between
`<!-- study:<name>:start -->` and `<!-- study:<name>:end -->`, and its plot copied to
docs/studies/<name>.png. The observability study adds the emotion models' accuracy against
the latent truth per scenario.

    .venv/bin/esmr study run studies/observability.toml --data-dir <dir>
    .venv/bin/python docs/render_studies.py --data-dir <dir>
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

import polars as pl

from esmr_assets.io_manager import markdown_table_text
from esmr_assets.studies import load_study
from esmr_assets.study_report import study_timings
from esmr_assets.warehouse import run_query

REPO = Path(__file__).resolve().parents[1]
PLOTS = REPO / "docs" / "studies"
DIGITS = {"negative_days": 2, "engagement_reward": 2, "mean_latent_valence": 3}


def _cell(row: dict, digits: int) -> str:
    if row["effect"] is None:
        return "–"
    low, high = row["ci95_low"], row["ci95_high"]
    interval = "" if low is None else f" [{low:+.{digits}f}, {high:+.{digits}f}]"
    return f"{row['effect']:+.{digits}f}{interval}"


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


def accuracy_table(root: Path, study) -> str:
    """Emotion models' accuracy against the latent truth per scenario (mean over seeds)."""
    keys = ", ".join(f"'{study.cell_scenario(s)}'" for s in study.scenarios)
    frame = run_query(root, f"""
        select scenario, model, count(*) as seeds, avg(accuracy_vs_truth) as accuracy_vs_truth
        from emotion_model_scores where scenario in ({keys}) group by all""")
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


def timings_table(data_dir: Path) -> str:
    """Each study's last `esmr study run`: wall time, what reuse saved, steps computed and linked."""
    timings = study_timings(data_dir)
    if timings.is_empty():
        return "(no study has run yet)"
    return markdown_table_text(timings.select(
        "study", pl.col("seeds").fill_null(""),
        (pl.col("wall_seconds") / 60).round(0).cast(pl.Int64).cast(pl.String).add(" min").alias("wall time"),
        (pl.col("reuse_saved_seconds") / 60).round(0).cast(pl.Int64).cast(pl.String).add(" min").alias("reuse saved"),
        (pl.col("share_saved") * 100).round(0).cast(pl.Int64).cast(pl.String).add(" %").alias("share saved"),
        pl.col("steps_computed").cast(pl.String).fill_null("–").alias("steps computed"),
        pl.col("steps_reused").alias("steps linked"),
    ))


def render(data_dir: Path, readme: Path) -> list[str]:
    text, done = readme.read_text(), []
    start, end = "<!-- study-timings:start -->", "<!-- study-timings:end -->"
    block = "\n\n".join([start, timings_table(data_dir), end])
    text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    for path in sorted((REPO / "studies").glob("*.toml")):
        study = load_study(path)
        root = data_dir / study.preset
        start, end = f"<!-- study:{study.name}:start -->", f"<!-- study:{study.name}:end -->"
        if start not in text or not (root / "study_report" / f"study={study.name}").is_dir():
            continue
        report = run_query(root, f"select * from study_report where study = '{study.name}'")
        parts = [start, effects_table(report, study, spread=study.name == "training_budget")]
        if study.name == "observability":
            parts += ["Emotion models' accuracy against the latent truth (test users, mean over seeds):",
                      accuracy_table(root, study)]
        PLOTS.mkdir(exist_ok=True)
        shutil.copyfile(root / "study_report" / f"study={study.name}" / "effects.png", PLOTS / f"{study.name}.png")
        parts += [f"![{study.name}](docs/studies/{study.name}.png)", end]
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: "\n\n".join(parts), text, flags=re.S)
        done.append(study.name)
    readme.write_text(text)
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--readme", type=Path, default=REPO / "README.md")
    args = parser.parse_args()
    print("rendered:", ", ".join(render(args.data_dir, args.readme)) or "nothing")


if __name__ == "__main__":
    main()
