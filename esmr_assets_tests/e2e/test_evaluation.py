"""Evaluation and the SQL models end to end at `smoke`: the graph's rollouts and metrics for
one seed, then a second seed and the cross-seed SQL models, whose intervals are checked
against numpy and scipy."""

import shutil

import dagster as dg
import numpy as np
import polars as pl
import pytest
from scipy import stats

from esmr_assets.core.settings import load_settings
from esmr_assets.evaluation.metrics import METRICS
from esmr_assets.orchestration.resources import run_config
from esmr_assets.policy.loop.registry import BANDITS, evaluated, label_sources
from esmr_assets.policy.loop.streak import rl_active
from esmr_assets.storage.warehouse import run_query
from esmr_assets_tests.conftest import add_cell

pytestmark = pytest.mark.slow
SMOKE = load_settings("smoke")
STYLES = load_settings("smoke").simulation.feedback_styles  # the default population's
#: the policies a default cell evaluates (the deep learners and the planner are opt-in)
POLICIES = tuple(spec.name for spec in evaluated(SMOKE))
SEEDS = ("2", "3")  # "2" is the shared smoke graph's seed


@pytest.fixture(scope="module")
def two_seeds(smoke_graph, tmp_path_factory):
    """The shared smoke graph copied, one more seed materialized beside it, then the SQL
    models over both: (storage root, SQL run result)."""
    from esmr_assets.definitions import defs

    root, _ = smoke_graph
    data_dir = tmp_path_factory.mktemp("two_seeds")
    shutil.copytree(root, data_dir / "smoke")
    config = run_config("smoke", data_dir)
    with dg.DagsterInstance.ephemeral() as instance:
        keys = {seed: add_cell(instance, seed) for seed in SEEDS}
        seed_run = defs.resolve_job_def("esmr_job").execute_in_process(
            run_config=config, instance=instance, partition_key=keys[SEEDS[1]], raise_on_error=False
        )
        assert seed_run.success
        sql_run = defs.resolve_job_def("sql_job").execute_in_process(run_config=config, instance=instance,
                                                                      raise_on_error=False)
    return data_dir / "smoke", sql_run


def table(root, name: str, seed: str = SEEDS[0]) -> pl.DataFrame:
    return pl.read_parquet(root / name / f"scenario=baseline/seed={seed}" / "part-0.parquet")


def test_rollouts_cover_every_policy_user_and_day(smoke_graph):
    root, _ = smoke_graph
    rollouts = table(root, "policy_rollouts")
    users = rollouts.filter(pl.col("policy") == "lightgbm")["user_id"].unique().sort()
    assert rollouts["policy"].unique(maintain_order=True).to_list() == list(POLICIES)
    assert rollouts.height == len(POLICIES) * users.len() * SMOKE.simulation.n_days
    assert users.len() == round(SMOKE.policy.evaluation_share * SMOKE.simulation.n_users)
    assert not rollouts.filter(pl.col("policy").is_in(["lightgbm", "random"]))["rl_active"].any()
    esmr = rollouts.filter(pl.col("policy") == "esmr").sort("user_id", "day")
    labels = esmr["predicted_label"].to_numpy().reshape(users.len(), SMOKE.simulation.n_days)
    assert np.array_equal(esmr["rl_active"].to_numpy(), rl_active(labels).ravel())
    # common random numbers: every policy starts from the same day-0 truth
    day0 = rollouts.filter(pl.col("day") == 0).group_by("user_id").agg(pl.col("true_valence").n_unique())
    assert (day0["true_valence"] == 1).all()
    assert (root / "policy_rollouts" / "scenario=baseline/seed=2" / "trajectories.png").stat().st_size > 0


def test_metrics_hold_every_policy_and_label_source(smoke_graph):
    root, _ = smoke_graph
    metrics = table(root, "evaluation_metrics")
    assert metrics.select("policy", "label_source").rows() == [(p, s) for p in POLICIES for s in label_sources(p)]
    assert metrics.filter(pl.col("oracle"))["policy"].unique().sort().to_list() == ["oracle_best_feed", "oracle_esmr"]
    assert set(METRICS) <= set(metrics.columns)
    baseline = metrics.filter(pl.col("policy") == "lightgbm")
    assert (baseline["change_negative_days"].fill_null(0.0) == 0).all()
    assert metrics["happy_at_least_once"].is_between(0, 1).all() and (metrics["negative_days"] >= 0).all()
    assert (root / "evaluation_metrics" / "scenario=baseline/seed=2" / "policy_comparison.png").stat().st_size > 0


def test_feedback_metrics_per_style_match_the_rollouts(smoke_graph):
    root, _ = smoke_graph
    metrics = table(root, "evaluation_metrics").filter(pl.col("label_source") == "true")
    rollouts = table(root, "policy_rollouts").join(table(root, "users").select("user_id", "feedback_style"),
                                                   on="user_id")
    for row in metrics.iter_rows(named=True):
        frame = rollouts.filter(pl.col("policy") == row["policy"])
        for style in STYLES:
            group = frame.filter(pl.col("feedback_style") == style)
            shown = group["n_impressions"].sum()
            assert row[f"positive_share_{style}"] == pytest.approx(group["positive_impressions"].sum() / shown)
            assert row[f"negative_share_{style}"] == pytest.approx(group["negative_impressions"].sum() / shown)
        learner = row["policy"] in BANDITS
        assert (row["decoded_accuracy"] is not None) == learner
        if learner:
            assert row["decoded_accuracy"] == pytest.approx(frame["decoded_agree"].sum() / frame["rounds"].sum())
    assert (root / "evaluation_metrics" / "scenario=baseline/seed=2" / "reward_fairness.png").stat().st_size > 0


def test_effects_match_a_duckdb_recomputation_from_the_rollouts(smoke_graph):
    """negative days and mean latent valence, paired per user against lightgbm, recomputed
    from policy_rollouts in SQL alone."""
    root, result = smoke_graph
    effects = table(root, "policy_effects").filter(pl.col("label_source") == "true")
    assert set(effects["policy"]) == set(POLICIES) - {"lightgbm"} and (effects["reference"] == "lightgbm").all()
    recomputed = run_query(root, """
        with per_user as (
            select policy, user_id, sum((true_emotion in ('stressed', 'disappointed'))::int)::double as negative_days,
                   avg(true_valence) as mean_latent_valence
            from policy_rollouts where seed = 2 group by policy, user_id
        )
        select p.policy, avg(p.negative_days - r.negative_days) as negative_days,
               avg(p.mean_latent_valence - r.mean_latent_valence) as mean_latent_valence, count(*) as n
        from per_user as p join per_user as r on r.user_id = p.user_id and r.policy = 'lightgbm'
        where p.policy <> 'lightgbm' group by p.policy
    """)
    checked = 0
    for row in recomputed.iter_rows(named=True):
        for metric in ("negative_days", "mean_latent_valence"):
            mine = effects.filter((pl.col("policy") == row["policy"]) & (pl.col("metric") == metric)).row(0, named=True)
            assert mine["effect"] == pytest.approx(row[metric], abs=1e-9) and mine["n"] == row["n"]
            assert mine["ci95_low"] <= mine["effect"] <= mine["ci95_high"]
            checked += 1
    assert checked == 2 * (len(POLICIES) - 1)
    assert effects.filter(pl.col("oracle"))["policy"].unique().sort().to_list() == ["oracle_best_feed", "oracle_esmr"]
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "policy_effects"]
    assert "effects_forest" in event.materialization.metadata
    assert (root / "policy_effects" / "scenario=baseline/seed=2" / "effects_forest.png").stat().st_size > 0


def test_user_metrics_average_to_the_evaluation_table(smoke_graph):
    root, _ = smoke_graph
    per_user = table(root, "user_metrics")
    metrics = table(root, "evaluation_metrics")
    means = per_user.group_by("policy", "label_source", maintain_order=True).agg(
        pl.col("negative_days", "mean_latent_valence", "engagement_reward").mean(), pl.len().alias("users"))
    joined = means.join(metrics, on=["policy", "label_source"], suffix="_table")
    assert joined.height == sum(len(label_sources(p)) for p in POLICIES)
    for name in ("negative_days", "mean_latent_valence", "engagement_reward", "users"):
        assert np.allclose(joined[name], joined[f"{name}_table"]), name


def test_the_observability_ceiling_is_scored_against_the_truth(smoke_graph):
    root, _ = smoke_graph
    scores = table(root, "emotion_model_scores")
    on_truth = scores.filter(pl.col("trained_on") == "latent_truth")
    assert set(on_truth["model"]) == {"tabtransformer_on_truth", "lightgbm_on_truth", "logistic_regression_on_truth",
                                      "majority_class_of_truth"}
    assert on_truth["accuracy_vs_truth"].is_between(0, 1).all()
    majority = on_truth.filter(pl.col("model") == "majority_class_of_truth")["accuracy_vs_truth"][0]
    assert on_truth["accuracy_vs_truth"].max() > majority  # behaviour says something about the latent emotion


def test_effects_across_seeds_use_the_exact_t_quantile(two_seeds):
    root, _ = two_seeds
    across = run_query(root, "select * from policy_effects_across_seeds where label_source = 'true'")
    per_seed = pl.concat([table(root, "policy_effects", s) for s in SEEDS]).filter(pl.col("label_source") == "true")
    row = across.filter((pl.col("policy") == "esmr") & (pl.col("metric") == "negative_days")).row(0, named=True)
    values = per_seed.filter((pl.col("policy") == "esmr") & (pl.col("metric") == "negative_days"))
    effects = values["effect"].to_numpy()
    half = stats.t.ppf(0.975, 1) * effects.std(ddof=1) / np.sqrt(2)
    assert row["seeds"] == 2 and row["effect"] == pytest.approx(effects.mean())
    assert row["ci95_low"] == pytest.approx(effects.mean() - half, rel=1e-9)
    assert row["seeds_above_zero"] == int((values["ci95_low"] > 0).sum())
    assert row["seeds_below_zero"] == int((values["ci95_high"] < 0).sum())
    assert across.filter(pl.col("oracle"))["policy"].unique().len() == 2


def test_style_effects_match_the_evaluation_tables_per_style(smoke_graph):
    """The per-style shares are evaluation_metrics' own; negative days and valence per style
    are the means of user_metrics over the style's users; effects are differences to lightgbm."""
    root, _ = smoke_graph
    effects = table(root, "style_effects")
    metrics = table(root, "evaluation_metrics").filter(pl.col("label_source") == "true")
    assert effects["feedback_style"].unique(maintain_order=True).to_list() == list(STYLES)
    users = table(root, "users").select("user_id", "feedback_style")
    per_user = table(root, "user_metrics").filter(pl.col("label_source") == "true").join(users, on="user_id")
    for row in effects.iter_rows(named=True):
        style, policy = row["feedback_style"], row["policy"]
        if row["metric"] in ("positive_share", "negative_share"):
            expected = metrics.filter(pl.col("policy") == policy)[f"{row['metric']}_{style}"].item()
        elif row["metric"] == "decoded_accuracy":
            continue
        else:
            mine = per_user.filter((pl.col("policy") == policy) & (pl.col("feedback_style") == style))
            expected = mine[row["metric"]].mean()
        assert row["value"] == pytest.approx(expected, rel=1e-12), (policy, style, row["metric"])
        assert row["value_ci95_low"] <= row["value"] <= row["value_ci95_high"]
    base = effects.filter(pl.col("policy") == "lightgbm").select("feedback_style", "metric", pl.col("value").alias("base"))
    paired = effects.filter(pl.col("policy") != "lightgbm").join(base, on=["feedback_style", "metric"])
    defined = paired.filter(pl.col("base").is_not_null())
    assert (defined["effect"] - (defined["value"] - defined["base"])).abs().max() < 1e-12
    learners = effects.filter((pl.col("metric") == "decoded_accuracy") & pl.col("value").is_not_null())["policy"].unique()
    assert sorted(learners) == sorted(BANDITS)
    assert (root / "style_effects" / "scenario=baseline/seed=2" / "style_shares.png").stat().st_size > 0


def test_style_effects_across_seeds_use_the_exact_t_quantile(two_seeds):
    root, _ = two_seeds
    across = run_query(root, "select * from style_effects_across_seeds")
    per_seed = pl.concat([table(root, "style_effects", s) for s in SEEDS])
    keys = (pl.col("policy") == "cb_like") & (pl.col("feedback_style") == "critical") & (pl.col("metric") == "negative_share")
    row = across.filter(keys).row(0, named=True)
    values, effects = per_seed.filter(keys)["value"].to_numpy(), per_seed.filter(keys)["effect"].to_numpy()
    half = stats.t.ppf(0.975, 1) / np.sqrt(2)
    assert row["seeds"] == 2 and row["value"] == pytest.approx(values.mean())
    assert row["value_ci95_high"] == pytest.approx(values.mean() + half * values.std(ddof=1), rel=1e-9)
    assert row["ci95_low"] == pytest.approx(effects.mean() - half * effects.std(ddof=1), rel=1e-9)
    assert across.height == per_seed.select("policy", "feedback_style", "metric").unique().height


def test_reward_fairness_by_group_averages_the_seeds(two_seeds):
    root, _ = two_seeds
    fairness = run_query(root, "select * from reward_fairness_by_group")
    assert fairness.height == len(POLICIES) * len(STYLES) and (fairness["seeds"] == 2).all()
    per_seed = pl.concat([table(root, "evaluation_metrics", s) for s in SEEDS]).filter(pl.col("label_source") == "true")
    row = fairness.filter((pl.col("policy") == "cb_comment") & (pl.col("feedback_style") == "critical")).row(0, named=True)
    values = per_seed.filter(pl.col("policy") == "cb_comment")["negative_share_critical"].to_numpy()
    assert row["negative_share"] == pytest.approx(values.mean()) and row["negative_share_sd"] == pytest.approx(values.std(ddof=1))
    worst = fairness.filter(pl.col("policy") == "cb_comment")
    assert row["worst_negative_share"] == pytest.approx(worst["negative_share"].max())
    assert row["worst_positive_style"] == worst.sort("positive_share")["feedback_style"][0]


def test_policy_comparison_intervals_match_numpy(two_seeds):
    root, sql_run = two_seeds
    assert sql_run.success
    per_seed = pl.concat([table(root, "evaluation_metrics", s).with_columns(seed=pl.lit(int(s))) for s in SEEDS])
    comparison = run_query(root, "select * from policy_comparison")
    assert comparison.select("policy").unique().height == len(POLICIES)
    checked = 0
    for row in comparison.iter_rows(named=True):
        values = per_seed.filter((pl.col("policy") == row["policy"]) & (pl.col("label_source") == row["label_source"]))
        values = values[row["metric"]].drop_nulls().drop_nans().to_numpy()
        assert row["seeds"] == values.size and row["mean"] == pytest.approx(values.mean())
        if values.size >= 2:
            half = stats.t.ppf(0.975, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size)
            assert row["ci95_low"] == pytest.approx(values.mean() - half, rel=1e-9, abs=1e-12)
            assert row["ci95_high"] == pytest.approx(values.mean() + half, rel=1e-9, abs=1e-12)
            checked += 1
    assert checked > 0


def test_other_models_are_queryable(two_seeds):
    root, _ = two_seeds
    mix = run_query(root, "select seed, policy, label_source, day, sum(share) as total from daily_emotion_mix "
                          "group by all")
    assert sorted(mix["seed"].unique()) == [2, 3] and np.allclose(mix["total"], 1.0)
    parents = run_query(root, "select * from causal_parent_frequency")
    assert parents["seed_share"].is_between(0.5, 1.0).all() and parents.height > 0
    assert run_query(root, "select count(distinct seed) as n from policy_comparison_by_seed")["n"][0] == 2


def test_sql_models_rerun_to_identical_bytes(two_seeds):
    from esmr_assets.definitions import defs

    root, _ = two_seeds
    models = sorted(p for p in root.glob("*/part-0.parquet"))
    assert {p.parent.name for p in models} == {"policy_comparison_by_seed", "policy_comparison", "daily_emotion_mix",
                                               "causal_parent_frequency", "reward_fairness_by_group",
                                               "policy_effects_across_seeds", "style_effects_across_seeds"}
    before = {p: p.read_bytes() for p in models}
    config = run_config("smoke", root.parent)
    with dg.DagsterInstance.ephemeral() as instance:
        assert defs.resolve_job_def("sql_job").execute_in_process(run_config=config, instance=instance).success
    assert all(p.read_bytes() == content for p, content in before.items())
