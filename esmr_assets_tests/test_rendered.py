"""Every rendered figure comes from a committed file: the blocks and plots of docs/ re-rendered
from the committed cell archive alone equal the committed ones to the byte, and every figure
quoted in prose between `<!--fig:...-->` markers is the archive's."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from esmr_assets_tests.conftest import load_renderer as _renderer

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def figures():
    return _renderer("figures")


@pytest.fixture(scope="module")
def archive(figures):
    return figures.Archive()


def test_a_marked_figure_is_the_archived_report(figures, archive):
    """Against the study's committed report (the study_report asset's SQL, written by studies.py)."""
    report = pl.read_parquet(REPO / "studies" / "results" / "observability" / "report.parquet")
    row = report.filter((pl.col("scenario") == "signal_0") & (pl.col("policy") == "esmr")
                        & (pl.col("metric") == "negative_days")).row(0, named=True)
    key = "effect:observability.signal_0:esmr:negative_days"
    text, problems = figures.fill(f"adds <!--fig:{key}-->typed<!--/fig--> negative days", archive)
    expected = f"{row['effect']:+.2f} [{row['ci95_low']:.2f}, {row['ci95_high']:.2f}]".replace("-", "−")
    assert (text, problems) == (f"adds <!--fig:{key}-->{expected}<!--/fig--> negative days", [])
    removes, _ = figures.fill(f"<!--fig:reduction:{key.partition(':')[2]}--><!--/fig-->", archive)
    assert f"{-row['effect']:.2f} [{-row['ci95_high']:.2f}, {-row['ci95_low']:.2f}]".replace("-", "−") in removes


def test_a_figure_naming_nothing_archived_is_reported_and_left_alone(figures, archive):
    text = "<!--fig:effect:observability.signal_9:esmr:negative_days-->+1.00 [0.50, 1.50]<!--/fig-->"
    filled, problems = figures.fill(text, archive)
    assert filled == text and problems == ["effect:observability.signal_9:esmr:negative_days: 0 archived rows"]
    assert figures.fill("<!--fig:guess:esmr-->1<!--/fig-->", archive)[1] == ["guess:esmr: not a figure (see docs/render/figures.py)"]


def test_typed_intervals_are_found_outside_markers_blocks_and_code(figures):
    text = ("ESMR adds +0.40 [0.02, 0.78] days; v ∈ [−1, 1]. <!--fig:seeds:x-->[1.00, 2.00]<!--/fig-->\n"
            "<!-- study:x:start -->| a | [0.10, 0.20] |<!-- study:x:end -->\n```\n[3.00, 4.00]\n```\n"
            "and removes 1.69 [1.12, 2.25], misreads 0.128 ±\n 0.018 of days, <!--fig:x-->0.04 ± 0.01<!--/fig-->.\n"
            "<!-- summary:start -->typed +0.41 [0.09, 0.74]<!-- summary:end -->")
    assert figures.unmarked_intervals(text) == [  # no renderer writes "summary"
        "[0.02, 0.78]", "[1.12, 2.25]", "0.128 ±\n 0.018", "[0.09, 0.74]"]


def test_every_figure_quoted_in_the_pages_is_the_archives(figures, archive):
    assert figures.render(archive=archive, check=True) == []


@pytest.mark.parametrize("page", _renderer("figures").MARKED, ids=lambda page: str(page.relative_to(REPO)))
def test_a_converted_page_quotes_no_interval_by_hand(figures, page):
    assert figures.unmarked_intervals(page.read_text()) == []


def test_the_rendered_blocks_and_plots_are_those_of_the_committed_archive(tmp_path):
    """Re-render every block from studies/cells/ into a copy of the pages: nothing differs."""
    docs, results = tmp_path / "docs", tmp_path / "studies" / "results"
    shutil.copytree(REPO / "docs", docs, ignore=shutil.ignore_patterns("render", "__pycache__"))
    for timing in (REPO / "studies" / "results").glob("*/timing-*.json"):  # archived per run, not recomputed
        (results / timing.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(timing, results / timing.parent.name / timing.name)
    studies = _renderer("studies")
    assert studies.report(studies.CELLS, results) and studies.render(results, docs)
    _renderer("results").render(docs)  # the main evaluation and the fair test (left alone until archived)
    _renderer("fair_test").render(docs)
    _renderer("moved").render(docs)
    _renderer("simulator").render(docs)  # a mechanism table, from the simulator's code
    rendered = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()}
    committed = [REPO / p for p in sorted(rendered)]
    differ = [str(p.relative_to(REPO)) for p in committed if p.read_bytes() != (tmp_path / p.relative_to(REPO)).read_bytes()]
    assert differ == []
    stale = {p.relative_to(REPO) for p in (REPO / "studies" / "results").rglob("*") if p.is_file()} - rendered
    assert stale == set(), "files under studies/results/ that no archived cell renders"


def test_a_named_query_figure_is_the_mean_of_its_per_seed_rates(figures, tmp_path):
    """The outraged group's upset days read as pleased, and its days read right, from a hand-made
    confusion of three seeds."""
    from scipy import stats

    for seed, (misread, upset) in enumerate(((2, 10), (6, 20))):
        folder = tmp_path / "paper" / "emotion_confusion" / "scenario=s.x" / f"seed={seed}"
        folder.mkdir(parents=True)
        pl.DataFrame({"split": ["test"] * 4 + ["train"], "feedback_style": ["outraged"] * 3 + ["passive"] * 2,
                      "true_emotion": ["stressed", "disappointed", "happy", "stressed", "stressed"],
                      "label": ["happy", "stressed", "happy", "happy", "excited"],
                      "user_days": [misread, upset - misread, 7, 5, 9]}).write_parquet(folder / "part-0.parquet")
    folder = tmp_path / "paper" / "emotion_confusion" / "scenario=s.x" / "seed=2"  # a seed without a misread day
    folder.mkdir(parents=True)
    pl.DataFrame({"split": ["test"], "feedback_style": ["outraged"], "true_emotion": ["stressed"], "label": ["stressed"],
                  "user_days": [4]}).write_parquet(folder / "part-0.parquet")
    rates = [0.2, 0.3, 0.0]
    half = stats.t.ppf(0.975, 2) * pl.Series(rates).std() / 3 ** 0.5
    text, problems = figures.fill("<!--fig:query:upset_read_as_pleased:s.x:outraged--><!--/fig-->",
                                  figures.Archive(cells=tmp_path))
    assert problems == [] and f"{sum(rates) / 3:.3f} ± {half:.3f}" in text
    agreement = [7 / 17, 7 / 27, 1.0]  # the outraged test days whose label is the latent emotion
    half = stats.t.ppf(0.975, 2) * pl.Series(agreement).std() / 3 ** 0.5
    text, problems = figures.fill("<!--fig:query:style_agreement:s.x:outraged--><!--/fig-->", figures.Archive(cells=tmp_path))
    assert problems == [] and f"{sum(agreement) / 3:.3f} ± {half:.3f}" in text


def test_the_acting_ranges_are_the_action_tables_means_over_seeds(figures, tmp_path):
    """From a hand-made `action_shares` of two scenarios, two policies and two seeds: the
    lowest and highest share of days a bucket led, and of a state's days one bucket led, each
    a mean over seeds (a seed where the bucket never led counts 0), over the listed cells only."""
    def cell(scenario: str, seed: int, rows: list[tuple[str, str, str, int]]) -> None:
        folder = tmp_path / "paper" / "action_shares" / f"scenario={scenario}" / f"seed={seed}"
        folder.mkdir(parents=True)
        frame = pl.DataFrame(rows, schema=["policy", "state", "action", "user_days"], orient="row")
        frame = frame.with_columns((pl.col("user_days") / pl.col("user_days").sum().over("policy", "state")).alias("share"),
                                   (pl.col("user_days") / pl.col("user_days").sum().over("policy")).alias("share_of_days"))
        frame.write_parquet(folder / "part-0.parquet")

    cell("s.a", 0, [("p", "stressed", "excited", 6), ("p", "stressed", "ranker", 4), ("p", "happy", "happy", 10),
                    ("q", "stressed", "ranker", 10), ("q", "happy", "excited", 10)])
    cell("s.a", 1, [("p", "stressed", "excited", 2), ("p", "stressed", "happy", 8), ("p", "happy", "ranker", 10),
                    ("q", "stressed", "excited", 5), ("q", "happy", "ranker", 15)])
    cell("s.b", 0, [("p", "stressed", "excited", 1), ("p", "stressed", "ranker", 9)])  # not listed below
    cell("s.c", 0, [("p", "stressed", "excited", 5), ("p", "stressed", "ranker", 5)])
    cell("s.c", 1, [("p", "stressed", "ranker", 10)])  # no bucket led in this seed: it counts 0
    archive = figures.Archive(cells=tmp_path)
    # days a bucket led: p (16/20 + 10/20) / 2 = 0.65, q (10/20 + 5/20) / 2 = 0.375
    assert archive.figure("query:bucket_days_range:s.a:p+q") == "38–65 %"
    assert archive.figure("query:bucket_days_range:s.a+s.b:p") == "10–65 %"  # s.b's p: 1/10
    assert archive.figure("query:bucket_days_range:s.c:p") == "25 %"  # (5/10 + 0) / 2, as the action table has it
    # excited on stressed days: p (0.6 + 0.2) / 2 = 0.4, q (0 + 1) / 2 = 0.5; on happy days p 0, q 0.5
    assert archive.figure("query:led_with_range:s.a:p+q:stressed:excited") == "40–50 %"
    assert archive.figure("query:led_with_range:s.a:p+q:stressed+happy:excited") == "0–50 %"
    assert archive.figure("query:led_with_range:s.a:q:stressed+happy:excited") == "50 %"
    assert figures.fill("<!--fig:query:led_with_range:s.a:p;drop:stressed:excited--><!--/fig-->", archive)[1]


def test_a_difference_is_paired_by_seed(figures, archive):
    """Against the archived per-seed effects, read with polars and differenced by hand."""
    from scipy import stats

    def per_seed(scenario: str) -> dict[int, float]:
        folder = REPO / "studies" / "cells" / "paper" / "policy_effects" / f"scenario={scenario}"
        return {int(path.parent.name.removeprefix("seed=")): pl.read_parquet(path).filter(
                    (pl.col("policy") == "esmr") & (pl.col("label_source") == "true")
                    & (pl.col("metric") == "negative_days"))["effect"].item()
                for path in folder.glob("seed=*/part-0.parquet")}

    a, b = per_seed("training_budget.epochs_30.users_600"), per_seed("training_budget.epochs_10.users_200")
    diffs = pl.Series([a[seed] - b[seed] for seed in sorted(a.keys() & b.keys())])
    half = stats.t.ppf(0.975, diffs.len() - 1) * diffs.std() / diffs.len() ** 0.5
    key = "difference:training_budget.epochs_30.users_600:esmr:training_budget.epochs_10.users_200:esmr:negative_days"
    assert archive.figure(key) == figures.interval(diffs.mean(), diffs.mean() - half, diffs.mean() + half, 2)


def test_the_per_group_figures_are_the_archived_style_effects(figures, archive):
    """Against the archived per-seed `style_effects`, read with polars: one group's value and
    effect over seeds, a difference paired by seed within the group, and the range over groups."""
    from scipy import stats

    folder = REPO / "studies" / "cells" / "paper" / "style_effects" / "scenario=igl_styles.outraged_30"
    cells = pl.concat(pl.read_parquet(path).with_columns(seed=pl.lit(path.parent.name))
                      for path in folder.glob("seed=*/part-0.parquet")).filter(pl.col("metric") == "negative_days")

    def per_seed(policy: str, style: str) -> pl.DataFrame:
        return cells.filter((pl.col("policy") == policy) & (pl.col("feedback_style") == style)).sort("seed")

    def t_interval(values: pl.Series) -> tuple[float, float, float]:
        half = stats.t.ppf(0.975, values.len() - 1) * values.std() / values.len() ** 0.5
        return values.mean(), values.mean() - half, values.mean() + half

    esmr, igl = per_seed("esmr", "outraged"), per_seed("esmr_igl", "outraged")
    scenario = "igl_styles.outraged_30"
    assert archive.figure(f"style_effect:{scenario}:esmr:outraged:negative_days") == figures.interval(
        *t_interval(esmr["effect"]), 2)
    assert archive.figure(f"style_mean:{scenario}:lightgbm:outraged:negative_days") == figures.number(
        per_seed("lightgbm", "outraged")["value"].mean(), 2)
    assert archive.figure(f"style_difference:{scenario}:esmr_igl:{scenario}:esmr:outraged:negative_days") == \
        figures.interval(*t_interval(igl["effect"] - esmr["effect"]), 2)
    means = cells.filter(pl.col("policy") == "esmr").group_by("feedback_style").agg(pl.col("effect").mean())["effect"]
    low, high = (figures.number(v, 2, signed=True) for v in (means.min(), means.max()))
    assert archive.figure(f"style_range:{scenario}:esmr:negative_days:effect") == f"{low} to {high}"
    assert "nothing archived" in figures.fill(f"<!--fig:style_range:{scenario}:nobody:negative_days:value--><!--/fig-->",
                                              archive)[1][0]


def _archived(table: str, scenario: str) -> pl.DataFrame:
    """One scenario's archived cells of `table`, every seed, read with polars."""
    folder = REPO / "studies" / "cells" / "paper" / table / f"scenario={scenario}"
    return pl.concat(pl.read_parquet(path).with_columns(seed=pl.lit(path.parent.name))
                     for path in sorted(folder.glob("seed=*/part-0.parquet")))


def test_the_range_seed_count_and_per_day_figures_read_the_archived_effects(figures, archive):
    """Against the archived per-seed `policy_effects` (latent truth), read with polars: the range
    of a policy's mean effect over a study's scenarios, how many seeds' own intervals lie below
    zero, and the mean effect per user-day."""
    def effects(scenario: str, policy: str, metric: str) -> pl.DataFrame:
        return _archived("policy_effects", scenario).filter(
            (pl.col("policy") == policy) & (pl.col("metric") == metric) & (pl.col("label_source") == "true"))

    scenarios = [f"emotion_models.{name}" for name in
                 ("tabtransformer", "lightgbm", "logistic_regression", "truth_trained", "oracle")]
    means = [effects(scenario, "esmr", "engagement_reward")["effect"].mean() for scenario in scenarios]
    assert archive.figure("range:emotion_models:esmr:engagement_reward") == \
        f"{figures.number(min(means), 2, True)} to {figures.number(max(means), 2, True)}"
    oracle = effects("emotion_models.oracle", "hybrid_fixed_happy", "negative_days")
    assert archive.figure("seeds_below:emotion_models.oracle:hybrid_fixed_happy:negative_days") == \
        f"{(oracle['ci95_high'] < 0).sum()} of {oracle.height}"
    assert archive.figure("seeds_above:emotion_models.oracle:hybrid_fixed_happy:negative_days") == \
        f"{(oracle['ci95_low'] > 0).sum()} of {oracle.height}"
    days_90 = effects("horizon.days_90", "esmr", "negative_days")["effect"].mean()
    assert archive.figure("query:effect_per_user_day:horizon.days_90:esmr:negative_days:90") == figures.number(
        days_90 / 90, 3)
    assert "nothing archived" in figures.fill(
        "<!--fig:query:effect_per_user_day:horizon.days_90:esmr:negative_days:0--><!--/fig-->", archive)[1][0]


def test_an_effect_per_acting_share_divides_the_mean_effect_by_the_mean_share(figures, archive):
    """Against the archived per-seed effects and `evaluation_metrics` of the main evaluation."""
    effect = _archived("policy_effects", "fair_test.paper").filter(
        (pl.col("policy") == "hybrid_fixed_happy") & (pl.col("metric") == "negative_days")
        & (pl.col("label_source") == "true"))["effect"].mean()
    metrics = _archived("evaluation_metrics", "fair_test.paper").filter(
        (pl.col("policy") == "hybrid_fixed_happy") & (pl.col("label_source") == "true"))
    share = metrics["rl_active_share"].mean()
    assert 0 < share < 1
    assert archive.figure("query:effect_per_acting_share:fair_test.paper:hybrid_fixed_happy:negative_days") == \
        figures.number(effect / share, 1, signed=True)
    assert "nothing archived" in figures.fill(  # the reference has no effect (and never acts)
        "<!--fig:query:effect_per_acting_share:fair_test.paper:lightgbm:negative_days--><!--/fig-->", archive)[1][0]


def test_a_group_value_is_the_mean_over_seeds_with_its_t_interval(figures, archive):
    from scipy import stats

    rows = _archived("style_effects", "igl_styles.outraged_30").filter(
        (pl.col("policy") == "cb_like") & (pl.col("feedback_style") == "outraged") & (pl.col("metric") == "negative_share"))
    half = stats.t.ppf(0.975, rows.height - 1) * rows["value"].std() / rows.height ** 0.5
    mean = rows["value"].mean()
    assert archive.figure("style_value:igl_styles.outraged_30:cb_like:outraged:negative_share") == \
        f"{figures.number(mean, 3)} [{figures.number(mean - half, 3)}, {figures.number(mean + half, 3)}]"


def test_the_check_skips_exactly_the_blocks_a_renderer_writes(figures):
    """RENDERED_BLOCK names every block some docs/render script writes, and nothing else."""
    import re

    written = set()
    for script in (REPO / "docs" / "render").glob("*.py"):
        written |= set(re.findall(r'write_block\(\s*f?"([\w:{}.-]+)"', script.read_text()))
    assert written == {"results", "fairness", "effects", "fair-test", "study-timings", "findings-moved",
                       "session-response", "study:{study.name}"}
    assert all(figures.RENDERED_BLOCK.match(name.replace("{study.name}", "igl_styles")) for name in written)
    assert not figures.RENDERED_BLOCK.match("studies-summary")


def test_the_check_compares_marker_by_marker(figures, archive, tmp_path):
    """Two markers of one key: a stale first copy is reported even when the second is right."""
    key = "effect:observability.signal_0:esmr:negative_days"
    right = archive.figure(key)
    page = tmp_path / "page.md"
    page.write_text(f"<!--fig:{key}-->+9.99 [9.00, 9.99]<!--/fig--> and <!--fig:{key}-->{right}<!--/fig-->")
    assert figures.render([page], archive, check=True) == [f"page.md: {key}: '+9.99 [9.00, 9.99]' is '{right}' in the archive"]
    assert figures.fill("<!--fig:query:q_sd_range--><!--/fig-->", archive)[1] == ["query:q_sd_range: q_sd_range takes 1 arguments"]


def test_the_figure_kinds_read_the_archived_report_and_the_previous_figures(figures, archive):
    report = pl.read_parquet(REPO / "studies" / "results" / "observability" / "report.parquet")
    row = report.filter((pl.col("scenario") == "signal_1") & (pl.col("policy") == "esmr")
                        & (pl.col("metric") == "mean_latent_valence")).row(0, named=True)
    where = "observability.signal_1:esmr:mean_latent_valence"
    assert archive.figure(f"sd:{where}") == figures.number(row["sd"], 3)
    assert archive.figure("seeds:observability.signal_1") == str(row["seeds"])
    assert archive.figure(f"ceiling:{where}") == figures.percent_of(row["effect"] / report.filter(
        (pl.col("scenario") == "signal_1") & (pl.col("policy") == "oracle_best_feed")
        & (pl.col("metric") == "mean_latent_valence"))["effect"].item())
    previous = pl.read_parquet(REPO / "studies" / "previous" / "effects.parquet").filter(
        (pl.col("scenario") == "fair_test.paper") & (pl.col("policy") == "esmr@all") & (pl.col("metric") == "negative_days"))
    assert archive.figure("previous:fair_test.paper:esmr@all:negative_days") == "+0.40 [0.02, 0.78]" == figures.interval(
        *previous.select("effect", "ci95_low", "ci95_high").row(0), 2)


def test_the_sql_models_become_common_table_expressions(tmp_path):
    sources = _renderer("sources")
    sql = sources.with_models("-- a comment naming style_effects_across_seeds\nwith x as (select 1) "
                              "select * from policy_comparison, x")
    assert sql.startswith("with policy_comparison_by_seed as (") and ", x as (select 1)" in sql.replace("\n", " ")
    assert "style_effects_across_seeds as" not in sql  # named in a comment only
    assert sources.with_models("select 1") == "select 1"


def test_metadata_is_flattened_to_numbers_and_words_without_plots_paths_or_timings():
    metadata = _renderer("metadata")
    table = "| method | f1 | seconds |\n|---|---|---|\n| per_user | 0.116 | 7.7 |\n| pooled | 0.081 | 4.3 |"
    assert metadata._rows("scores", table) == [("scores.per_user.f1", 0.116, None), ("scores.pooled.f1", 0.081, None)]
    assert metadata._rows("counts", {"happy": 3, "churned": 1}) == [("counts.churned", 1.0, None),
                                                                    ("counts.happy", 3.0, None)]
    assert metadata._rows("plot", "![plot](data:image/png;base64,xx)") == []
    assert metadata._rows("model_path", "/x") == metadata._rows("fit_seconds", 3.0) == []
    assert metadata._rows("method", "per_user") == [("method", None, "per_user")]
    assert metadata._rows("auc", float("nan")) == []


def test_the_metadata_figures_read_the_archived_asset_metadata(figures, archive):
    """Against the archived `asset_metadata` of the main evaluation, read with polars."""
    rows = _archived("asset_metadata", "fair_test.paper")

    def values(asset: str, key: str) -> pl.Series:
        return rows.filter((pl.col("asset") == asset) & (pl.col("key") == key))["value"]

    auc = values("engagement_ranker", "test_auc")
    assert auc.len() == int(archive.figure("seeds:fair_test.paper"))
    assert archive.figure("meta:fair_test.paper:engagement_ranker:test_auc") == figures.number(auc.mean(), 3)
    assert archive.figure("meta_range:fair_test.paper:engagement_ranker:test_auc") == \
        f"{figures.number(auc.min(), 3)}–{figures.number(auc.max(), 3)}"
    fitted = values("causal_dags", "users_fitted")
    assert archive.figure("meta:fair_test.paper:causal_dags:users_fitted") == f"{int(fitted.mean() + 0.5):,}"
    best = rows.filter(pl.col("key") == "best_method_by_f1")["text"]
    assert archive.figure("meta_count:fair_test.paper:causal_dags:best_method_by_f1:per_user") == \
        f"{(best == 'per_user').sum()} of {best.len()}"
    happy, days = values("user_day_logs", "true_emotion_counts.happy"), values("user_day_logs", "dagster/row_count")
    assert archive.figure("query:latent_share:fair_test.paper:happy") == figures.percent_of((happy / days).mean())
    impressions, churned = values("impressions", "dagster/row_count"), values("user_day_logs", "true_emotion_counts.churned")
    assert archive.figure("query:impressions_per_active_day:fair_test.paper") == \
        f"{(impressions / (days - churned)).mean():.0f}"
    assert archive.figure("query:skipped_share:fair_test.paper") == \
        figures.percent_of(1 - values("impressions", "watched_share").mean())
