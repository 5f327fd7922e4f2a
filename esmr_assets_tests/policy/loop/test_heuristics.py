"""The heuristic baselines: a fixed bucket leads the feed on every day they act, always for
`always_happy`, and exactly on the hybrid switch's RL days for `hybrid_fixed_happy`."""

import numpy as np
import polars as pl
import pytest

from esmr_assets.core.settings import load_settings
from esmr_assets.emotion.labeller import DailyLabeller
from esmr_assets.policy.loop import registry
from esmr_assets.policy.loop.inputs import LoopInputs
from esmr_assets.policy.loop.rollouts import Artifacts, build_policy, rollout
from esmr_assets.policy.loop.streak import rl_active
from esmr_assets.sim.environment import ClosedLoopEnv

SETTINGS = load_settings("smoke", {"simulation": {"n_days": 10, "seen_window_days": 0}}, whole_graph=False)  # the bucket never runs dry
SEED = 13


@pytest.fixture
def runs(feed_world, threshold_model):
    videos, users, feeds = feed_world(SETTINGS.simulation, SEED)
    artifacts = Artifacts(feeds, {}, {}, SETTINGS, SEED)
    emotion = videos.sort("video_id")["emotion"].cast(pl.String).to_numpy()

    def run(name: str) -> pl.DataFrame:
        env = ClosedLoopEnv(videos, users, SETTINGS.simulation, SEED, DailyLabeller(threshold_model))
        frame = rollout(env, build_policy(registry.spec(name), artifacts), name).sort("user_id", "day")
        return frame.with_columns(pl.Series("top_emotion", emotion[frame["top_video"].to_numpy()]))

    return {name: run(name) for name in ("always_happy", "hybrid_fixed_happy", "lightgbm")}, users.height


def test_always_happy_leads_with_happy_every_day(runs):
    frames, _ = runs
    frame = frames["always_happy"]
    assert frame["rl_active"].all() and (frame["action"] == "happy").all()
    served = frame.filter(pl.col("n_impressions") > 0)
    assert (served["top_emotion"] == "happy").all()


def test_the_fixed_hybrid_acts_on_the_switch_days_only(runs):
    frames, n_users = runs
    frame = frames["hybrid_fixed_happy"]
    labels = frame["predicted_label"].to_numpy().reshape(n_users, -1)
    assert np.array_equal(frame["rl_active"].to_numpy(), rl_active(labels).ravel())
    acting = frame.filter(pl.col("rl_active"))
    assert acting.height > 0 and (acting["action"] == "happy").all() and (acting["top_emotion"] == "happy").all()
    assert frame.filter(~pl.col("rl_active"))["action"].is_null().all()
    # Before the switch first hands over, the user's days are LightGBM's (common random numbers).
    first = acting.group_by("user_id").agg(pl.col("day").min().alias("first"))
    columns = ["user_id", "day", "top_video", "watch_minutes", "true_valence"]

    def before(f: pl.DataFrame) -> pl.DataFrame:
        return f.join(first, on="user_id", how="left").filter(pl.col("day") < pl.col("first").fill_null(99)).select(columns)

    assert before(frame).equals(before(frames["lightgbm"]))


def test_heuristics_are_deployable_registry_entries():
    for name in ("hybrid_fixed_happy", "always_happy"):
        spec = registry.spec(name)
        assert spec.heuristic.bucket == "happy" and not spec.reads_latent and not spec.learns_online


def test_churn_days_are_not_counted_as_rl_days(runs):
    """always_happy acts every day, but a churned user sees nothing: those days are counted
    apart (issue 16: 852 of 5,563 of ESMR's RL days were churn days)."""
    from esmr_assets.evaluation.comparison import rl_days

    frames, _ = runs
    frame = frames["always_happy"]
    churned = frame.filter(pl.col("churned"))
    assert churned.height > 0 and (churned["n_impressions"] == 0).all()
    assert (frame.filter(~pl.col("churned"))["n_impressions"] > 0).all()
    counts = rl_days(pl.concat([frame, frames["lightgbm"]])).rows_by_key("policy", named=True, unique=True)
    assert counts["always_happy"]["rl_churn_days"] == churned.height
    assert counts["always_happy"]["rl_days"] == frame.height - churned.height
    assert counts["lightgbm"]["rl_days"] == counts["lightgbm"]["rl_churn_days"] == 0


class ContentModel:
    """Stands in for the emotion model: "happy" after a day with a quarter of the watch time
    on happy videos, "stressed" otherwise, so that the served bucket moves the labels."""

    classes_ = np.array(["happy", "stressed"])

    def predict_proba(self, cont, cat):
        from esmr_assets.emotion.features import CONTINUOUS_FEATURES

        happy = cont[:, CONTINUOUS_FEATURES.index("share_happy")] >= 0.25
        return np.column_stack([happy, ~happy]).astype(float)


def test_the_best_fixed_bucket_is_chosen_on_the_training_users(logged_world):
    """hybrid_best_fixed: every bucket is tried on the training users only, and the one with
    the fewest predicted negative days is served to the evaluation users."""
    threshold_model = ContentModel()
    from esmr_assets.core.vocabulary import NEGATIVE
    from esmr_assets.policy.learners.ranker import EngagementRanker
    from esmr_assets.policy.loop.feeds import ACTIONS, feed_builder
    from esmr_assets.policy.loop.policies import FixedBucketPolicy
    from esmr_assets.policy.loop.users import policy_split, users_in
    from esmr_assets.policy.training.stage import choose_heuristic_buckets

    impressions, logs, predictions, videos, users = logged_world(SETTINGS.simulation, SEED)
    ranker = EngagementRanker(random_state=0).fit(impressions, logs, predictions, videos, users)
    table = choose_heuristic_buckets(LoopInputs(videos, users, impressions, ranker, threshold_model, SETTINGS, SEED))
    assert table["policy"].unique().to_list() == ["hybrid_best_fixed"] and table["bucket"].to_list() == list(ACTIONS)
    chosen = table.filter(pl.col("chosen"))
    assert chosen.height == 1 and chosen["predicted_negative_days"][0] == table["predicted_negative_days"].min()
    assert table["predicted_negative_days"].n_unique() > 1  # the buckets do differ
    assert chosen["bucket"][0] == "happy"  # the only bucket this model calls happy

    training, evaluation = policy_split(users, SEED, SETTINGS.policy)
    feeds = feed_builder(ranker, videos, impressions, SETTINGS)
    bucket = chosen["bucket"][0]

    def run(user_ids, episode: int) -> pl.DataFrame:
        cohort = users_in(users, user_ids)
        env = ClosedLoopEnv(videos, cohort, SETTINGS.simulation, SEED, DailyLabeller(threshold_model), episode=episode)
        return rollout(env, FixedBucketPolicy(feeds, ACTIONS.index(bucket), SETTINGS.policy.rl_streak), "x")

    trained = run(training, 1)
    negative = trained["predicted_label"].is_in(list(NEGATIVE)).sum() / len(training)
    assert chosen["predicted_negative_days"][0] == pytest.approx(negative)

    artifacts = Artifacts(feeds, {}, {}, SETTINGS, SEED, heuristic_buckets={"hybrid_best_fixed": bucket})
    policy = build_policy(registry.spec("hybrid_best_fixed"), artifacts)
    env = ClosedLoopEnv(videos, users_in(users, evaluation), SETTINGS.simulation, SEED, DailyLabeller(threshold_model))
    acting = rollout(env, policy, "hybrid_best_fixed").filter(pl.col("rl_active"))
    assert acting.height > 0 and (acting["action"] == bucket).all()
