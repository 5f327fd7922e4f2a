"""The feedback-learning bandits in the closed loop (policy/bandits.py): what a rollout
reports, that they learn from rounds of their own bucket only, and that stored learners
come back identical."""

import numpy as np
import polars as pl
import pytest

from esmr_assets.emotion.labeller import DailyLabeller
from esmr_assets.policy.bandits import BanditPolicy, new_learner
from esmr_assets.policy.models import BanditLearners
from esmr_assets.policy.registry import BANDITS
from esmr_assets.policy.rollouts import rollout
from esmr_assets.policy.training import bandit_table
from esmr_assets.settings import load_settings
from esmr_assets.sim.environment import ClosedLoopEnv

SETTINGS = load_settings("smoke", {"simulation": {"seen_window_days": 0}})  # buckets never run dry
SEED = 6


@pytest.fixture(scope="module")
def world(feed_world):
    return feed_world(SETTINGS.simulation, SEED)


def run(world, model, name, learner=None, episode=0):
    videos, users, feeds = world
    learner = learner or new_learner(name, SETTINGS.policy, SEED)
    env = ClosedLoopEnv(videos, users, SETTINGS.simulation, SEED, DailyLabeller(model), episode=episode)
    return rollout(env, BanditPolicy(feeds, learner, np.random.default_rng(1)), name), learner


@pytest.mark.parametrize("name", BANDITS)
def test_bandit_rollout_learns_from_its_own_bucket(world, threshold_model, name):
    frame, learner = run(world, threshold_model, name)
    videos, _, _ = world
    assert frame.height == SETTINGS.simulation.n_users * SETTINGS.simulation.n_days
    assert frame["rl_active"].all() and frame["action"].null_count() == 0
    emotion = videos.sort("video_id")["emotion"].cast(pl.String).to_numpy()
    served = frame.filter(pl.col("top_video") >= 0)
    assert (emotion[served["top_video"].to_numpy()] == served["action"].to_numpy()).mean() == 1.0  # the bucket leads
    assert 0 < frame["rounds"].sum() <= frame["n_impressions"].sum()
    assert (frame["decoded_agree"] <= frame["rounds"]).all()
    assert (frame["positive_impressions"] + frame["negative_impressions"] <= frame["n_impressions"]).all()
    assert np.abs(learner.bandit.coef_).sum() > 0  # it learned something
    assert frame.equals(run(world, threshold_model, name)[0])  # deterministic


def test_stored_learners_act_and_decode_as_before(world, threshold_model):
    learners = {name: run(world, threshold_model, name)[1] for name in ("igl_p3", "cb_like")}
    stored = BanditLearners(learners).to_bytes()
    assert BanditLearners(learners).to_bytes() == stored  # deterministic bytes
    restored = BanditLearners.from_bytes(stored, SETTINGS.policy, SEED)
    assert bandit_table(restored).equals(bandit_table(learners))
    rng = np.random.default_rng(0)
    c, x = rng.random((50, 7)), np.eye(11)[rng.integers(11, size=50)]
    y, a = rng.integers(6, size=50), rng.integers(8, size=50)
    before = learners["igl_p3"].inverse_kinematics.predict_proba(c, x, y)
    assert np.array_equal(restored["igl_p3"].inverse_kinematics.predict_proba(c, x, y), before)
    assert np.array_equal(restored["igl_p3"].decode(c, x, y, a), learners["igl_p3"].decode(c, x, y, a))
    # Both keep learning from the same state the same way.
    p = np.full(50, 0.5)
    assert np.array_equal(restored["igl_p3"].learn(c, x, y, a, p), learners["igl_p3"].learn(c, x, y, a, p))
