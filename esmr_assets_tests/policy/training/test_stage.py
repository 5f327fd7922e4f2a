"""Phase III wiring: the Q-learning state, Algorithm 2's reward on hand-made days, training
in the environment, the stored Q-table, and the hybrid ESMR policy in a rollout."""

import numpy as np
import polars as pl
import pytest

from esmr_assets.core.settings import PolicySettings, load_settings
from esmr_assets.core.vocabulary import TRUE_EMOTIONS
from esmr_assets.emotion.labeller import DailyLabeller
from esmr_assets.policy.learners.qlearning import N_STATES, encode_state
from esmr_assets.policy.loop.agent_day import StateTracker, train_agents
from esmr_assets.policy.loop.feeds import ACTIONS
from esmr_assets.policy.loop.inputs import LoopInputs
from esmr_assets.policy.loop.policies import HybridPolicy, LightGBMPolicy, RandomPolicy
from esmr_assets.policy.loop.registry import AGENTS
from esmr_assets.policy.loop.rollouts import rollout
from esmr_assets.policy.loop.streak import rl_active
from esmr_assets.policy.loop.users import policy_split, split_sizes
from esmr_assets.policy.rewards import DAY_FEATURES, RewardModel, RewardWeights, causal_weights, day_features
from esmr_assets.policy.training.models import AgentSet
from esmr_assets.policy.training.stage import (
    new_agent,
    q_table_frame,
    reward_weights,
)
from esmr_assets.sim.environment import ClosedLoopEnv, DayStep

SETTINGS = load_settings("smoke", {"simulation": {"n_days": 10}, "policy": {"epochs": 4}}, whole_graph=False)
SMOKE = SETTINGS.simulation
SEED = 8


def fake_step(labels, watch=None, scroll=None, trend=None, probabilities=None) -> DayStep:
    """A hand-made day: only what the state and the reward read."""
    n = len(labels)
    logs = pl.DataFrame(
        {
            "watch_minutes": np.zeros(n) if watch is None else np.asarray(watch, float),
            "scroll_minutes": np.zeros(n) if scroll is None else np.asarray(scroll, float),
            "engagement_trend": np.zeros(n) if trend is None else np.asarray(trend, float),
            "churned": np.asarray(labels) == "churned",
            **{c: np.zeros(n) for c in DAY_FEATURES[1:] if c not in ("watch_minutes", "scroll_minutes", "engagement_trend")},
        }
    )
    if probabilities is None:
        probabilities = (np.asarray(labels)[:, None] == np.asarray(TRUE_EMOTIONS)[None, :]).astype(float)
    empty = np.zeros(0, int)
    return DayStep(0, logs, np.asarray(labels, dtype=object), np.asarray(probabilities, float),
                   np.asarray(labels), empty, empty, empty, empty.astype(bool), empty.astype(float),
                   empty.astype(np.int8), empty.astype(np.int8))


def test_state_tracker_counts_streaks_through_churn_days():
    tracker = StateTracker(2)
    sequence = [("stressed", "happy"), ("churned", "neutral"), ("neutral", "neutral"), ("disappointed", "excited")]
    streaks = []
    for labels in sequence:
        tracker.observe(fake_step(labels, trend=[0.5, -0.5]))
        streaks.append(tracker.streak.tolist())
    assert streaks == [[1, 0], [1, 1], [2, 2], [3, 0]]
    assert tracker.states().tolist() == encode_state(["disappointed", "excited"], [3, 0], [0.5, -0.5]).tolist()


def test_the_last_bucket_state_has_nine_times_the_states_and_indexes_them_consistently():
    """The state_last_bucket variant: 72 x 9 states; the tracker records the bucket a user
    was served (none on a churn day), and the agent's states decode back to their parts."""
    from esmr_assets.policy.learners.qlearning import N_STATES_WITH_LAST_BUCKET, decode_state

    assert N_STATES_WITH_LAST_BUCKET == N_STATES * (len(ACTIONS) + 1) == 648
    tracker = StateTracker(3)
    tracker.observe(fake_step(["stressed", "churned", "happy"], trend=[0.5, 0.0, -0.5]), np.array([4, 2, -1]))
    assert tracker.served.tolist() == [4, -1, -1]  # the churned user saw nothing
    states = tracker.states(with_last_bucket=True)
    assert states.tolist() == [encode_state(label, streak, trend) * 9 + last + 1 for label, streak, trend, last in
                               [("stressed", 1, 0.5, 4), ("churned", 0, 0.0, -1), ("happy", 0, -0.5, -1)]]
    label, streak, trend, last = decode_state(states, with_last_bucket=True)
    assert label.tolist() == ["stressed", "churned", "happy"] and last.tolist() == [4, -1, -1]
    assert trend.tolist() == ["up", "flat", "down"] and streak.tolist() == [1, 0, 0]
    everything = np.arange(N_STATES_WITH_LAST_BUCKET)
    assert np.array_equal(encode_state(*decode_state(everything, with_last_bucket=True)[:2],
                                       np.array([-1.0, 0.0, 1.0])[np.searchsorted(["down", "flat", "up"],
                                                                                  decode_state(everything, True)[2])],
                                       decode_state(everything, True)[3]), everything)
    with pytest.raises(ValueError, match="last_bucket"):
        encode_state("happy", 0, 0.0, last_bucket=8)


def test_day_valence_is_the_expected_score_without_churn():
    p = np.zeros((3, len(TRUE_EMOTIONS)))
    index = {e: k for k, e in enumerate(TRUE_EMOTIONS)}
    p[0, [index["happy"], index["stressed"]]] = 0.5
    p[1, [index["happy"], index["churned"]]] = 0.5
    p[2, index["churned"]] = 1.0
    features = day_features(fake_step(["happy", "happy", "churned"], probabilities=p))
    valence = features[:, 0]
    assert valence[0] == pytest.approx(0.05) and valence[1] == pytest.approx(0.8)
    assert np.isnan(features[2]).all()  # a churn day is absence: no feature changes into or out of it


def test_reward_is_algorithm_2_on_a_hand_made_transition():
    lam = np.zeros((2, len(DAY_FEATURES)))
    lam[:, DAY_FEATURES.index("watch_minutes")] = 0.02
    before = fake_step(["stressed", "happy"], watch=[10, 10])
    after = fake_step(["happy", "happy"], watch=[30, 30], scroll=[0, 30])
    weights = RewardWeights(engagement=1.0, alpha=1.0, beta=0.5, eta=1.0, amplification=2.0)
    parts = RewardModel(lam, weights).components(before, after)
    r_eng = np.array([np.tanh(1.0) / 1.5, (np.tanh(1.0) + 0.5 * np.tanh(1.0)) / 1.5])
    r_cause = np.array([2.0 * 0.02 * 20, 0.02 * 20])  # amplified only where the user was stressed
    assert np.allclose(parts["r_eng"], r_eng)
    assert np.allclose(parts["r_emo"], [1.0, 0.0])
    assert np.allclose(parts["r_cause"], r_cause)
    assert np.allclose(parts["reward"], r_eng + np.array([1.0, 0.0]) + 0.5 * r_cause)
    no_engagement = RewardModel(lam, reward_weights("esmr_no_engagement", SETTINGS.policy))
    no_emotion = RewardModel(lam, reward_weights("esmr_no_emotion", SETTINGS.policy))
    assert np.allclose(no_engagement.components(before, after)["reward"], parts["reward"] - r_eng)
    assert np.allclose(no_emotion.components(before, after)["reward"], parts["reward"] - [1.0, 0.0])


def test_churn_days_earn_no_causal_reward():
    lam = np.full((1, len(DAY_FEATURES)), 0.3)
    before = fake_step(["stressed"], watch=[40])
    churned = fake_step(["churned"])
    model = RewardModel(lam, RewardWeights())
    assert model.components(before, churned)["r_cause"][0] == 0.0
    assert model.components(churned, before)["r_cause"][0] == 0.0


def test_pooled_method_gives_everyone_the_pooled_weights():
    parents = pl.DataFrame({"user_id": [-1, 7], "target": ["next_day_happy"] * 2,
                            "parent": ["watch_minutes", "likes"], "weight": [0.4, 9.0]})
    pooled = causal_weights(parents, np.array([3, 7]), load_settings("smoke", {"causal": {"method": "pooled"}}))
    assert (pooled[:, DAY_FEATURES.index("watch_minutes")] == 0.4).all() and pooled.sum() == pytest.approx(0.8)
    own = causal_weights(parents, np.array([3, 7]), SETTINGS)
    assert own[1, DAY_FEATURES.index("likes")] == 9.0 and own[0].sum() == 0 and own[1].sum() == 9.0


def test_policy_split_is_disjoint_seeded_and_capped():
    users = pl.DataFrame({"user_id": np.arange(100)})
    policy = PolicySettings(evaluation_share=0.4, training_users=25)
    train, evaluation = policy_split(users, 3, policy)
    assert evaluation.size == 40 and train.size == 25 and not set(train) & set(evaluation)
    again = policy_split(users, 3, policy)
    assert np.array_equal(train, again[0]) and np.array_equal(evaluation, again[1])
    assert not np.array_equal(evaluation, policy_split(users, 4, policy)[1])
    # Capping the evaluation users keeps a prefix of the same held-out users, and the held-out
    # users still never train: the training users do not move.
    capped_train, capped = policy_split(users, 3, PolicySettings(evaluation_share=0.4, training_users=25,
                                                                  max_evaluation_users=10))
    assert capped.size == 10 and set(capped) <= set(evaluation) and np.array_equal(capped_train, train)
    for settings in (policy, PolicySettings(evaluation_share=0.4, training_users=99, max_evaluation_users=10)):
        train_ids, evaluation_ids = policy_split(users, 3, settings)
        assert split_sizes(100, settings)[1:] == (train_ids.size, evaluation_ids.size)  # what the planner expects


@pytest.fixture(scope="module")
def world(feed_world):
    return feed_world(SMOKE, SEED)


class BucketShareReward:
    """Pays the share of a user's impressions from one video emotion: an agent that learns
    anything should learn to pick that bucket."""

    timing = "same_day"

    def __init__(self, video_emotion: np.ndarray, target: int) -> None:
        self.hit = video_emotion == target

    def components(self, previous: DayStep, step: DayStep) -> dict[str, np.ndarray]:
        n = previous.predicted.size
        shown = np.bincount(step.rows, minlength=n)
        hits = np.bincount(step.rows, weights=self.hit[step.videos], minlength=n)
        reward = hits / np.maximum(shown, 1)
        zero = np.zeros(n)
        return {"reward": reward, "r_eng": reward, "r_emo": zero, "r_cause": zero}


# A bandit version of the task: no discounting, and no seen window, so the bucket never runs dry.
BANDIT = load_settings("smoke", {"simulation": {"n_days": 10, "seen_window_days": 0}, "policy": {"discount": 0.0}}, whole_graph=False)


def train_once(world, model, target: int):
    videos, users, feeds = world
    agent = new_agent(BANDIT.policy, N_STATES)

    def make_env(episode: int) -> ClosedLoopEnv:
        return ClosedLoopEnv(videos, users, BANDIT.simulation, SEED, DailyLabeller(model), episode=episode)

    history = train_agents(make_env, feeds, BucketShareReward(feeds.video_emotion, target), {"bandit": agent},
                           {"bandit": np.random.default_rng(0)}, BANDIT.policy.epochs)
    return agent, history


def test_training_in_the_environment_learns_the_rewarded_bucket(world, threshold_model):
    target = ACTIONS.index("happy")
    agent, history = train_once(world, threshold_model, target)
    assert history["epoch"].to_list() == list(range(1, BANDIT.policy.epochs + 1))
    assert history["mean_reward"][-1] > history["mean_reward"][0]  # greedier epochs serve the bucket more
    visited = agent.visits_.sum(axis=1) >= 50
    assert visited.sum() >= 3
    assert (agent.greedy(np.flatnonzero(visited)) == target).mean() >= 0.8
    # transitions counted: each day after day 0, every user once (replayed ones are not visits)
    days = BANDIT.policy.epochs * (SMOKE.n_days - 1)
    assert agent.visits_.sum() == days * SMOKE.n_users
    again, history_again = train_once(world, threshold_model, target)
    assert np.array_equal(agent.q_, again.q_) and history.equals(history_again)


def test_agents_round_trip_and_tabulate_every_agent():
    agents = {}
    for k, name in enumerate(AGENTS):
        agent = new_agent(SETTINGS.policy, N_STATES).initialize()
        agent.temperature_ = 0.1 * (k + 1)
        agent.q_[:] = np.random.default_rng(k).normal(size=agent.q_.shape)
        agent.visits_[:] = np.random.default_rng(k).integers(0, 9, size=agent.visits_.shape)
        agents[name] = agent
    table = q_table_frame(agents)
    assert table.height == len(AGENTS) * N_STATES * len(ACTIONS)
    row = table.filter((pl.col("agent") == "esmr") & (pl.col("state") == 13) & (pl.col("action") == ACTIONS[2]))
    assert row["q"][0] == agents["esmr"].q_[13, 2] and row["label"][0] == TRUE_EMOTIONS[1] and row["streak"][0] == 0
    stored = AgentSet(agents).to_bytes()
    assert AgentSet(agents).to_bytes() == stored  # deterministic bytes
    restored = AgentSet.from_bytes(stored)
    assert list(restored) == list(AGENTS)
    for name in AGENTS:
        assert np.array_equal(restored[name].q_, agents[name].q_)
        assert np.array_equal(restored[name].visits_, agents[name].visits_)
        assert restored[name].temperature_ == agents[name].temperature_
        assert restored[name].get_params() == agents[name].get_params()
    assert q_table_frame(restored).equals(table)


def test_hybrid_hands_over_to_rl_after_three_negative_or_neutral_days(world, threshold_model):
    videos, users, feeds = world
    agent = new_agent(SETTINGS.policy, N_STATES).initialize()
    agent.q_[:, ACTIONS.index("angry")] = 1.0  # a greedy agent that always serves angry videos

    def run(policy, name):  # no seen window: the angry bucket never runs dry
        return rollout(ClosedLoopEnv(videos, users, BANDIT.simulation, SEED, DailyLabeller(threshold_model)), policy, name)

    base = run(LightGBMPolicy(feeds), "lightgbm")
    hybrid = run(HybridPolicy(feeds, agent, rl_streak=3), "esmr")
    assert base.equals(run(LightGBMPolicy(feeds), "lightgbm"))
    assert not base["rl_active"].any() and base["action"].is_null().all()

    labels = hybrid.sort("user_id", "day").select(pl.col("predicted_label")).to_series().to_numpy()
    expected = rl_active(labels.reshape(SMOKE.n_users, SMOKE.n_days)).ravel()
    ordered = hybrid.sort("user_id", "day")
    assert 0 < expected.sum() < expected.size
    assert np.array_equal(ordered["rl_active"].to_numpy(), expected)
    assert (ordered.filter(pl.col("rl_active"))["action"] == "angry").all()
    emotion = videos.sort("video_id")["emotion"].cast(pl.String).to_numpy()
    assert (emotion[ordered.filter(pl.col("rl_active"))["top_video"].to_numpy()] == "angry").all()

    # Common random numbers: a user's days before the hybrid first acts are identical.
    first = ordered.filter(pl.col("rl_active")).group_by("user_id").agg(pl.col("day").min().alias("first"))
    columns = ["user_id", "day", "watch_minutes", "predicted_label", "true_valence", "top_video"]

    def before_first(frame):
        return (frame.join(first, on="user_id", how="left").filter(pl.col("day") < pl.col("first").fill_null(99))
                .select(columns).sort("user_id", "day"))

    assert before_first(hybrid).equals(before_first(base))
    after = ordered.join(first, on="user_id").filter(pl.col("day") >= pl.col("first")).select(columns)
    assert not after.equals(base.join(first, on="user_id").filter(pl.col("day") >= pl.col("first")).select(columns)
                            .sort("user_id", "day"))


def test_random_policy_ignores_the_ranker_and_repeats_per_seed(world, threshold_model):
    videos, users, feeds = world

    def run(seed):
        env = ClosedLoopEnv(videos, users, SMOKE, SEED, DailyLabeller(threshold_model))
        return rollout(env, RandomPolicy(seed, SMOKE.feed_length, stream_key=5), "random")

    first, again, other = run(1), run(1), run(2)
    assert first.equals(again) and not first["top_video"].equals(other["top_video"])
    assert first["top_video"].n_unique() > 20


class YesterdaysBucketReward(BucketShareReward):
    """R_emo scored on the day after the action: the share of the target bucket in the
    previous day's impressions, as a mood that moves the day after a feed would be."""

    def __init__(self, video_emotion: np.ndarray, target: int, timing: str) -> None:
        super().__init__(video_emotion, target)
        self.timing = timing
        self.weights = RewardWeights(engagement=1.0, alpha=1.0, beta=0.0)

    def components(self, previous: DayStep, step: DayStep) -> dict[str, np.ndarray]:
        share = super().components(step, previous)["reward"]  # of `previous`'s impressions
        zero = np.zeros_like(share)
        return {"reward": share, "r_eng": zero, "r_emo": share, "r_cause": zero}


@pytest.mark.parametrize("timing, learns", [("next_day", True), ("same_day", False)])
def test_next_day_timing_credits_a_delayed_effect_to_its_action(world, threshold_model, timing, learns):
    """In the real loop: when an action's effect shows the day after, the next-day timing
    learns the bucket that causes it, and the paper's same-day timing cannot (it pays the
    effect to the next action, which did not cause it)."""
    videos, users, feeds = world
    target = ACTIONS.index("excited")
    agent = new_agent(BANDIT.policy, N_STATES)

    def make_env(episode: int) -> ClosedLoopEnv:
        return ClosedLoopEnv(videos, users, BANDIT.simulation, SEED, DailyLabeller(threshold_model), episode=episode)

    train_agents(make_env, feeds, YesterdaysBucketReward(feeds.video_emotion, target, timing), {"bandit": agent},
                 {"bandit": np.random.default_rng(0)}, BANDIT.policy.epochs)
    visited = np.flatnonzero(agent.visits_.sum(axis=1) >= 50)
    share = (agent.greedy(visited) == target).mean()
    assert visited.size >= 3 and (share >= 0.8 if learns else share <= 0.5)


def test_an_agent_with_the_last_bucket_trains_tabulates_and_acts(world, threshold_model):
    from esmr_assets.policy.learners.qlearning import N_STATES_WITH_LAST_BUCKET

    videos, users, feeds = world
    agent = new_agent(BANDIT.policy, N_STATES_WITH_LAST_BUCKET)

    def make_env(episode: int) -> ClosedLoopEnv:
        return ClosedLoopEnv(videos, users, BANDIT.simulation, SEED, DailyLabeller(threshold_model), episode=episode)

    reward = BucketShareReward(feeds.video_emotion, ACTIONS.index("excited"))
    train_agents(make_env, feeds, reward, {"variant": agent}, {"variant": np.random.default_rng(0)}, 2)
    table = q_table_frame({"variant": agent})
    assert table.height == N_STATES_WITH_LAST_BUCKET * len(ACTIONS)
    visited = table.filter(pl.col("visits") > 0)
    assert visited["last_bucket"].drop_nulls().n_unique() > 1  # states after different buckets were visited
    with pytest.raises(ValueError, match="states"):
        train_agents(make_env, feeds, reward, {"a": agent, "b": new_agent(BANDIT.policy, N_STATES)},
                     {"a": np.random.default_rng(0), "b": np.random.default_rng(1)}, 1)
    env = make_env(0)
    frame = rollout(env, HybridPolicy(feeds, agent, rl_streak=1), "variant")
    assert frame["rl_active"].any()


@pytest.fixture(scope="module")
def replicated(logged_world):
    """fit_agents and run_rollouts on the smoke world, with 1 and with 3 training replicates
    of esmr (twice), and the ranker they share."""
    from esmr_assets.policy.learners.ranker import EngagementRanker
    from esmr_assets.policy.loop.rollouts import run_rollouts
    from esmr_assets.policy.training.stage import fit_agents
    from esmr_assets_tests.conftest import ThresholdModel

    threshold_model = ThresholdModel()
    impressions, logs, predictions, videos, users = logged_world(SMOKE, SEED)
    ranker = EngagementRanker(random_state=0).fit(impressions, logs, predictions, videos, users)
    no_parents = pl.DataFrame(schema={"user_id": pl.Int32, "target": pl.String, "parent": pl.String, "weight": pl.Float64})

    def fit(replicates: int):
        settings = load_settings("smoke", {"simulation": {"n_days": 10},
                                           "policy": {"epochs": 2, "agent_replicates": replicates}}, whole_graph=False)
        return settings, fit_agents(LoopInputs(videos, users, impressions, ranker, threshold_model, settings, SEED), no_parents)

    (_, one), (settings, three), (_, again) = fit(1), fit(3), fit(3)
    rollouts = run_rollouts(LoopInputs(videos, users, impressions, ranker, threshold_model, settings, SEED), three.agents)
    return one, three, again, rollouts


def test_agent_replicates_are_reproducible_per_stream_and_differ_between_streams(replicated):
    one, three, again, _ = replicated
    names = list(three.agents)
    assert names[:3] == ["esmr", "esmr@1", "esmr@2"] and set(names) == set(one.agents) | {"esmr@1", "esmr@2"}
    for name in one.agents:  # replicates change no other agent
        assert np.array_equal(one.agents[name].q_, three.agents[name].q_), name
    for name in names:  # the same stream gives the same agent
        assert np.array_equal(three.agents[name].q_, again.agents[name].q_), name
    q = [three.agents[name].q_ for name in ("esmr", "esmr@1", "esmr@2")]
    assert not np.array_equal(q[0], q[1]) and not np.array_equal(q[1], q[2]) and not np.array_equal(q[0], q[2])
    assert set(three.history["agent"]) == set(names)
    assert three.history.filter(pl.col("agent") == "oracle_esmr")["oracle"].all()
    assert not three.history.filter(pl.col("agent").str.starts_with("esmr@"))["oracle"].any()


def test_each_replicate_is_evaluated_under_the_same_noise(replicated):
    _, three, _, rollouts = replicated
    policies = rollouts["policy"].unique(maintain_order=True).to_list()
    assert policies[policies.index("esmr"):policies.index("esmr") + 3] == ["esmr", "esmr@1", "esmr@2"]
    day0 = rollouts.filter(pl.col("day") == 0)  # nobody is on an RL streak on day 0: identical rows
    columns = ["user_id", "watch_minutes", "true_valence", "predicted_label"]
    assert day0.filter(pl.col("policy") == "esmr@2").select(columns).equals(
        day0.filter(pl.col("policy") == "esmr").select(columns))
    for name in ("esmr@1", "esmr@2"):  # each acts with its own agent's greedy bucket
        acted = rollouts.filter((pl.col("policy") == name) & pl.col("rl_active"))
        assert acted.height > 0
        assert set(acted["action"].unique()) <= {ACTIONS[a] for a in three.agents[name].greedy(np.arange(N_STATES))}
