"""The feedback-learning bandits in the closed loop (policy/bandits.py): what a rollout
reports, that they learn from rounds of their own bucket only, and that stored learners
come back identical."""

import numpy as np
import polars as pl
import pytest

from esmr_assets.core.schemas import LATENT_COLUMNS
from esmr_assets.core.settings import load_settings
from esmr_assets.core.vocabulary import SIGNALS
from esmr_assets.emotion.labeller import DailyLabeller
from esmr_assets.policy.loop.bandits import (
    N_CONTEXT,
    BanditPolicy,
    context_features,
    new_learner,
)
from esmr_assets.policy.loop.registry import BANDITS
from esmr_assets.policy.loop.rollouts import rollout
from esmr_assets.policy.training.models import BanditLearners
from esmr_assets.policy.training.stage import bandit_table
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


def test_the_personal_context_is_what_a_platform_observes(world, threshold_model):
    """The personal decision context adds the user's own signal shares so far, computed from
    the emitted signals alone: no feature names a style, the latent state or r, and the
    observation it is built from holds none of them."""
    videos, users, feeds = world
    personal = load_settings("smoke", {"simulation": {"seen_window_days": 0}, "policy": {"bandit_context": "personal"}})
    features = context_features("personal")
    assert features[:N_CONTEXT] == context_features("shared") and len(features) == N_CONTEXT + len(SIGNALS)
    latent = ("style", "latent", "true", "valence", "arousal", "satisfaction", "susceptibility", "baseline")
    assert not [f for f in features if any(word in f for word in latent)]
    env = ClosedLoopEnv(videos, users, personal.simulation, SEED, DailyLabeller(threshold_model))
    env.reset()
    hidden = set(LATENT_COLUMNS) | set(users.columns) - {"user_id", "profile"}  # the truth and the users' traits
    assert "feedback_style" in hidden and not hidden & set(env.observation().columns)
    policy = BanditPolicy(feeds, new_learner("igl_p3", personal.policy, SEED), np.random.default_rng(1), "personal")
    steps = []
    for _ in range(3):
        feed, valid, _ = policy.act(env)
        steps.append(env.step(feed, valid))
        policy.learn(steps[-1])
    policy.act(env)
    counts = np.zeros((env.n_users, len(SIGNALS)))
    for step in steps:
        np.add.at(counts, (step.rows, step.feedback.astype(np.int64)), 1.0)
    shares = (counts + 1) / (counts.sum(axis=1, keepdims=True) + len(SIGNALS))
    assert policy._x.shape == (env.n_users, len(features))
    assert np.allclose(policy._x[:, N_CONTEXT:], shares)  # only the signals it saw
    styles = users["feedback_style"].to_physical().to_numpy()
    assert len(np.unique(policy._x[:, N_CONTEXT:], axis=0)) > len(np.unique(styles))  # per user, not per style
    table = bandit_table({"igl_p3": policy.learner}, "personal")
    assert table["feature"].unique(maintain_order=True).to_list() == list(features)


def test_a_like_is_never_decoded_as_negative():
    """Eq. 4 (three states): only the definitely-negative signal decodes to r-hat < 0; any
    other signal, a like included, is 0 or +1 whatever the user, since the decoder's c may
    only make an extreme event more or less likely. (So IGL-P cannot read an outraged user's
    like as negative: README, IGL-P section.)"""
    learner = new_learner("igl_p3", SETTINGS.policy, SEED)
    rng = np.random.default_rng(0)
    n = 4000
    c, x = rng.dirichlet(np.ones(len(SIGNALS)), n), np.eye(N_CONTEXT)[rng.integers(N_CONTEXT, size=n)]
    c = np.column_stack([c, np.ones(n)])
    y, a = rng.integers(len(SIGNALS), size=n), rng.integers(8, size=n)
    learner.learn(c, x, y, a, np.full(n, 1 / 8))
    decoded = learner.decode(c, x, y, a)
    negative_signal = y == SIGNALS.index("not_interested")
    assert set(np.unique(decoded[~negative_signal])) <= {0.0, 1.0}
    assert (decoded[negative_signal] <= 0).all()
