"""The diagnostic ceilings: oracle_esmr differs from esmr only through the emotion labels it
sees, and oracle_best_feed, the one-step look-ahead on latent valence, beats the deployable
feeds on next-day valence in a small closed loop."""

import dataclasses

import numpy as np
import polars as pl
import pytest

from esmr_assets.core.settings import load_settings
from esmr_assets.emotion.labeller import DailyLabeller, LatentLabeller
from esmr_assets.policy.learners.qlearning import N_STATES, encode_state
from esmr_assets.policy.loop import registry
from esmr_assets.policy.loop.agent_day import StateTracker
from esmr_assets.policy.loop.feeds import ACTIONS
from esmr_assets.policy.loop.oracles import BestFeedOracle
from esmr_assets.policy.loop.rollouts import Artifacts, build_policy, labeller_for, rollout
from esmr_assets.policy.loop.streak import streaks
from esmr_assets.policy.training.stage import new_agent, reward_weights
from esmr_assets.sim.environment import ClosedLoopEnv

SETTINGS = load_settings("smoke", {"simulation": {"n_days": 8}, "evaluation": {"oracle_draws": 2}}, whole_graph=False)
SEED = 11


@pytest.fixture(scope="module")
def world(feed_world):
    return feed_world(SETTINGS.simulation, SEED)


def test_oracles_are_marked_in_the_registry():
    assert registry.ORACLES == ("oracle_esmr", "oracle_best_feed", "oracle_planner")
    assert all(registry.spec(name).reads_latent for name in registry.ORACLES)
    assert isinstance(labeller_for(registry.spec("oracle_esmr"), None), LatentLabeller)
    assert isinstance(labeller_for(registry.spec("esmr"), None), DailyLabeller)


def test_oracle_esmr_is_esmr_but_for_the_labels():
    esmr, oracle = registry.spec("esmr"), registry.spec("oracle_esmr")
    assert reward_weights("esmr", SETTINGS.policy) == reward_weights("oracle_esmr", SETTINGS.policy)
    assert (esmr.acts_with, esmr.agent.engagement, esmr.agent.emotion) == (
        oracle.acts_with, oracle.agent.engagement, oracle.agent.emotion)
    assert (esmr.labels, oracle.labels) == ("predicted", "latent")


def test_with_latent_labels_fed_in_both_see_the_same_states(world, threshold_model):
    """The same agent acting as esmr and as oracle_esmr: with latent labels as the
    predictions their rollouts are identical, and the states are those of the true labels."""
    videos, users, feeds = world
    agent = new_agent(SETTINGS.policy, N_STATES).initialize()
    agent.q_[:] = np.random.default_rng(0).normal(size=agent.q_.shape)
    artifacts = Artifacts(feeds, {"esmr": agent, "oracle_esmr": agent}, {}, SETTINGS, SEED)

    def run(name, labeller):
        env = ClosedLoopEnv(videos, users, SETTINGS.simulation, SEED, labeller)
        return rollout(env, build_policy(registry.spec(name), artifacts), name).drop("policy")

    latent = run("oracle_esmr", LatentLabeller())
    assert latent.equals(run("esmr", LatentLabeller()))
    assert not latent.equals(run("esmr", DailyLabeller(threshold_model)))
    ordered = latent.sort("user_id", "day")
    assert (ordered["predicted_label"] == ordered["true_emotion"]).all()
    # The hybrid acted exactly on the streaks of the true labels.
    truth = ordered["true_emotion"].to_numpy().reshape(users.height, -1)
    run_length = streaks(truth)
    acting = np.zeros(truth.shape, dtype=bool)
    acting[:, 1:] = run_length[:, :-1] >= SETTINGS.policy.rl_streak
    assert np.array_equal(ordered["rl_active"].to_numpy().reshape(truth.shape), acting)


def test_the_platform_labeller_never_reads_the_truth(world, threshold_model):
    videos, users, feeds = world
    env = ClosedLoopEnv(videos, users, SETTINGS.simulation, SEED, DailyLabeller())
    env.reset()
    step = env.step(*feeds.build(env.observation(), env.recently_shown()))
    observed = step.logs.drop("true_emotion", "true_valence", "true_arousal")
    first = DailyLabeller(threshold_model).reset(users.height).label(observed, step.true_label)
    other = DailyLabeller(threshold_model).reset(users.height).label(observed, np.full(users.height, "happy"))
    assert np.array_equal(first[0], other[0]) and np.array_equal(first[1], other[1])
    assert (LatentLabeller().label(observed, step.true_label)[0] == step.true_label).all()


def test_state_tracker_on_latent_labels_encodes_the_truth(world):
    videos, users, feeds = world
    env = ClosedLoopEnv(videos, users, SETTINGS.simulation, SEED, LatentLabeller())
    tracker = StateTracker(env.n_users)
    env.reset()
    step = env.step(*feeds.build(env.observation(), env.recently_shown()))
    tracker.observe(step)
    expected = encode_state(step.true_label, (np.isin(step.true_label, ("stressed", "disappointed", "neutral"))),
                            step.logs["engagement_trend"].to_numpy())
    assert np.array_equal(tracker.states(), expected)


def test_best_feed_is_deterministic_and_picks_the_best_expected_bucket(world):
    videos, users, feeds = world
    oracle = BestFeedOracle(feeds, SEED, stream_key=12, draws=2)
    env = ClosedLoopEnv(videos, users, SETTINGS.simulation, SEED, DailyLabeller())
    env.reset()
    valence, _ = oracle.expected_valence(env)
    again, _ = oracle.expected_valence(env)
    assert valence.shape == (users.height, len(ACTIONS)) and np.array_equal(valence, again)
    feed, valid, actions = oracle.act(env, StateTracker(env.n_users))
    assert np.array_equal(actions, valence.argmax(axis=1))
    emotion = feeds.video_emotion[feed[:, 0]]
    assert (emotion[valid[:, 0]] == actions[valid[:, 0]]).all()  # the chosen bucket leads
    assert valence.std(axis=1).mean() > 0  # buckets differ


def test_best_feed_beats_the_deployable_feeds_on_next_day_valence(world, threshold_model):
    videos, users, feeds = world
    artifacts = Artifacts(feeds, {}, {}, SETTINGS, SEED)

    def valence(name):
        env = ClosedLoopEnv(videos, users, SETTINGS.simulation, SEED, DailyLabeller(threshold_model))
        frame = rollout(env, build_policy(registry.spec(name), artifacts), name)
        return frame.filter(pl.col("day") >= 1)["true_valence"].mean()

    best = valence("oracle_best_feed")
    assert best > valence("lightgbm") and best > valence("random")


def test_an_oracle_must_be_named_so():
    spec = dataclasses.replace(registry.spec("oracle_best_feed"), name="best_feed", stream_key=99)
    with pytest.raises(ValueError, match="oracle_"):
        registry._check((*registry.POLICIES, spec))


def test_the_planner_at_horizon_one_is_oracle_best_feed_and_looks_further_beyond(world, threshold_model):
    """Horizon 1: the same draws, the same choice, the same rows. Longer horizons choose
    otherwise on some user-days, and never read anything a platform deploys from."""
    videos, users, feeds = world

    def run(name: str, horizon: int) -> pl.DataFrame:
        settings = load_settings("smoke", {"simulation": {"n_days": 8}, "evaluation": {"oracle_draws": 2,
                                                                                       "planner_horizon": horizon}},
                                 whole_graph=False)
        artifacts = Artifacts(feeds, {}, {}, settings, SEED)
        policy = build_policy(registry.spec(name), artifacts)
        env = ClosedLoopEnv(videos, users.head(40), settings.simulation, SEED, DailyLabeller(threshold_model))
        return rollout(env, policy, name).drop("policy")

    assert "oracle_planner" not in [spec.name for spec in registry.evaluated(SETTINGS)]  # off by default
    best = run("oracle_best_feed", 1)
    assert run("oracle_planner", 1).equals(best)
    further = run("oracle_planner", 3)
    assert not further["action"].equals(best["action"])
