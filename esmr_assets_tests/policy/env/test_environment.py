"""The Gymnasium environment over the closed loop: the checker's contract, nothing latent in
what an agent observes, the same trajectories as the registered policies, common random
numbers, and Eq. 8's terms."""

import numpy as np
import polars as pl
import pytest
from gymnasium.utils.env_checker import check_env

from esmr_assets.core.schemas import LATENT_COLUMNS
from esmr_assets.core.settings import load_settings
from esmr_assets.emotion.labeller import DailyLabeller
from esmr_assets.policy.env.user import ClosedLoopUserEnv
from esmr_assets.policy.env.vector import ClosedLoopVectorEnv
from esmr_assets.policy.learners.ranker import EngagementRanker
from esmr_assets.policy.loop.feeds import ACTIONS, FEED_CHOICES
from esmr_assets.policy.loop.inputs import LoopInputs, LoopState
from esmr_assets.policy.loop.observation import OBSERVATION_NAMES
from esmr_assets.policy.loop.policies import FixedBucketPolicy
from esmr_assets.policy.loop.registry import spec
from esmr_assets.policy.loop.rollouts import rollout
from esmr_assets.sim.environment import ClosedLoopEnv

SEED = 3
SETTINGS = load_settings("smoke", {"simulation": {"n_users": 60, "n_days": 7}}, whole_graph=False)
PARENTS = pl.DataFrame(schema={"user_id": pl.Int32, "target": pl.String, "parent": pl.String, "weight": pl.Float64})
STREAK = SETTINGS.policy.rl_streak
HAPPY = 1 + ACTIONS.index("happy")


@pytest.fixture(scope="module")
def inputs(logged_world):
    from esmr_assets_tests.conftest import ThresholdModel

    impressions, logs, predictions, videos, users = logged_world(SETTINGS.simulation, SEED)
    ranker = EngagementRanker(random_state=0).fit(impressions, logs, predictions, videos, users)
    return LoopInputs(videos, users, impressions, ranker, ThresholdModel(), SETTINGS, SEED)


def parents_for(inputs: LoopInputs) -> pl.DataFrame:
    """Every training user's causal parents: watch minutes raise next-day happiness."""
    ids = inputs.users["user_id"]
    return pl.DataFrame({"user_id": ids, "target": "next_day_happy", "parent": "watch_minutes", "weight": 0.1},
                        schema=PARENTS.schema)


def test_the_single_user_form_passes_gymnasiums_checker(inputs):
    check_env(ClosedLoopUserEnv(inputs, PARENTS, user=2), skip_render_check=True)


def test_an_agent_observes_nothing_latent(inputs):
    env = ClosedLoopVectorEnv(inputs, PARENTS, num_envs=5)
    names = env.observation_names
    assert names == OBSERVATION_NAMES and len(names) == env.single_observation_space.shape[0]
    assert not [n for n in names if any(latent in n or latent.replace("true_", "") == n.removeprefix("yesterday_")
                                         for latent in LATENT_COLUMNS) or "latent" in n]
    observation, info = env.reset()
    assert observation.shape == (5, len(names)) and observation.dtype == np.float32
    _, _, _, _, info = env.step(np.zeros(5, dtype=int))
    assert not {k for k in info if "latent" in k}
    assert {"r_eng", "r_emo", "r_cause"} <= set(info)


def test_leading_with_happy_on_the_switch_days_is_hybrid_fixed_happy_to_the_byte(inputs):
    """The environment's actions, chosen from its observation like the heuristic's rule, give
    the heuristic's own rollout on the evaluation users (episode 0)."""
    state = LoopState(inputs)
    users = state.cohort("evaluation")
    heuristic = spec("hybrid_fixed_happy")
    policy = FixedBucketPolicy.with_bucket(state.feed_builder(), heuristic, "happy", SETTINGS.policy)
    expected = rollout(ClosedLoopEnv(inputs.videos, users, SETTINGS.simulation, SEED, DailyLabeller(inputs.emotion_model),
                                     episode=0), policy, heuristic.name)

    env = ClosedLoopVectorEnv(inputs, PARENTS, "evaluation", diagnostic_latent_info=True)
    assert env.num_envs == users.height
    observation, _ = env.reset()
    rows = [env.last_day.logs.select("user_id", "day", "true_valence", "watch_minutes")
            .with_columns(pl.Series("predicted_label", env.tracker.label), action=pl.lit(None, pl.String))]
    streak, day = OBSERVATION_NAMES.index("negative_streak"), OBSERVATION_NAMES.index("day")
    truncated = np.zeros(env.num_envs, bool)
    while not truncated.any():
        actions = np.where((observation[:, streak] >= STREAK) & (observation[:, day] > 0), HAPPY, 0)
        observation, _, _, truncated, info = env.step(actions)
        rows.append(pl.DataFrame({
            "user_id": env.user_ids.astype(np.int32), "day": info["day"].astype(np.int16),
            "true_valence": info["latent_valence"], "watch_minutes": env.last_day.logs["watch_minutes"],
            "predicted_label": env.tracker.label,
        }).with_columns(action=pl.when(pl.Series(actions > 0)).then(pl.lit("happy"))))
    got = pl.concat(rows)
    assert got["action"].is_not_null().any(), "the switch never fired: the test would not test the bucket"
    assert got.equals(expected.select(got.columns))


def test_the_same_actions_on_the_same_seed_give_the_same_trajectories(inputs):
    def trajectory(env, flip_first: bool):
        rng = np.random.default_rng(0)
        observations, rewards = [env.reset(seed=4)[0]], []
        for _ in range(SETTINGS.simulation.n_days - 1):
            actions = rng.integers(0, FEED_CHOICES, env.num_envs)
            if flip_first:
                actions[0] = (actions[0] + 1) % FEED_CHOICES
            observation, reward, *_ = env.step(actions)
            observations.append(observation)
            rewards.append(reward)
        return np.stack(observations), np.stack(rewards)

    one, two = (trajectory(ClosedLoopVectorEnv(inputs, parents_for(inputs), num_envs=8), False) for _ in range(2))
    assert all(a.tobytes() == b.tobytes() for a, b in zip(one, two))
    # Another action for user 0 changes user 0's days and no other user's: the noise is common.
    other = trajectory(ClosedLoopVectorEnv(inputs, parents_for(inputs), num_envs=8), True)
    assert not np.array_equal(one[0][:, 0], other[0][:, 0])
    assert np.array_equal(one[0][:, 1:], other[0][:, 1:]) and np.array_equal(one[1][:, 1:], other[1][:, 1:])


def test_episodes_are_noise_episodes(inputs):
    env = ClosedLoopVectorEnv(inputs, PARENTS, num_envs=6)
    first, _ = env.reset()
    assert env.episode == 1  # the training users start where the project's agents train
    env.reset()
    assert env.episode == 2
    again, _ = env.reset(seed=1)
    assert env.episode == 1 and again.tobytes() == first.tobytes()
    assert ClosedLoopVectorEnv(inputs, PARENTS, "evaluation", num_envs=2).reset()[0].shape == (2, len(OBSERVATION_NAMES))


def test_the_reward_is_eq_8_of_the_chosen_terms(inputs):
    weights = SETTINGS.policy
    parents = parents_for(inputs)
    full = ClosedLoopVectorEnv(inputs, parents, num_envs=10)
    alone = ClosedLoopVectorEnv(inputs, parents, num_envs=10, terms=("cause",), beta=2.0)
    full.reset(), alone.reset()
    causal = 0.0
    for _ in range(SETTINGS.simulation.n_days - 1):
        actions = np.full(10, HAPPY)
        _, reward, _, _, info = full.step(actions)
        _, reward_alone, _, _, info_alone = alone.step(actions)
        np.testing.assert_array_equal(reward, info["r_eng"] + weights.alpha * info["r_emo"] + weights.beta * info["r_cause"])
        np.testing.assert_array_equal(reward_alone, 2.0 * info_alone["r_cause"])
        np.testing.assert_array_equal(info["r_cause"], info_alone["r_cause"])
        causal += np.abs(info["r_cause"]).sum()
    assert causal > 0, "no causal reward at all: the parents were not read"


def test_bad_use_is_refused_with_the_reason(inputs):
    env = ClosedLoopVectorEnv(inputs, PARENTS, num_envs=3)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(3, int))
    env.reset()
    with pytest.raises(ValueError, match="actions must lie in 0..8"):
        env.step(np.array([0, 9, 0]))
    with pytest.raises(ValueError, match="integers"):
        env.step(np.array([0.7, 0.0, 1.0]))
    with pytest.raises(ValueError, match="an integer >= 0"):
        env.reset(seed=-1)
    with pytest.raises(ValueError, match="terms"):
        ClosedLoopVectorEnv(inputs, PARENTS, terms=("fun",))
    with pytest.raises(ValueError, match="split"):
        ClosedLoopVectorEnv(inputs, PARENTS, "validation")
    copies = ClosedLoopVectorEnv(inputs, PARENTS, num_envs=2 * LoopState(inputs).cohort("training").height + 1)
    assert len(set(copies.user_ids)) == copies.num_envs  # copies of the users carry ids of their own
