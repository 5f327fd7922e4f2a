"""The heuristic baselines: a fixed bucket leads the feed on every day they act, always for
`always_happy`, and exactly on the hybrid switch's RL days for `hybrid_fixed_happy`."""

import numpy as np
import polars as pl
import pytest

from esmr_assets.emotion.labeller import DailyLabeller
from esmr_assets.policy import registry
from esmr_assets.policy.rollouts import Artifacts, build_policy, rollout
from esmr_assets.policy.streak import rl_active
from esmr_assets.settings import load_settings
from esmr_assets.sim.environment import ClosedLoopEnv

SETTINGS = load_settings("smoke", {"simulation": {"n_days": 10, "seen_window_days": 0}})  # the bucket never runs dry
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
