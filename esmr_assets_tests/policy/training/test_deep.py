"""The deep learners: stable-baselines3 trained on the environment, deterministic per seed,
stored without pickle, and acting in the rollouts on the observation they learnt on."""

import io
import zipfile

import numpy as np
import polars as pl
import pytest

from esmr_assets.core.settings import load_settings
from esmr_assets.policy.env.vector import ClosedLoopVectorEnv
from esmr_assets.policy.learners.ranker import EngagementRanker
from esmr_assets.policy.loop.inputs import LoopInputs, LoopState
from esmr_assets.policy.loop.observation import observe
from esmr_assets.policy.loop.registry import DEEP_LEARNERS
from esmr_assets.policy.loop.rollouts import run_rollouts
from esmr_assets.policy.training.deep import budget_episodes, fit_deep_agents
from esmr_assets.policy.training.models import DeepAgents

SEED = 5
SETTINGS = load_settings("smoke", {"simulation": {"n_users": 60, "n_days": 6},
                                   "policy": {"epochs": 2, "training_users": 24, "deep_learners": list(DEEP_LEARNERS)}},
                         whole_graph=False)
PARENTS = pl.DataFrame(schema={"user_id": pl.Int32, "target": pl.String, "parent": pl.String, "weight": pl.Float64})


@pytest.fixture(scope="module")
def inputs(logged_world):
    from esmr_assets_tests.conftest import ThresholdModel

    impressions, logs, predictions, videos, users = logged_world(SETTINGS.simulation, SEED)
    ranker = EngagementRanker(random_state=0).fit(impressions, logs, predictions, videos, users)
    return LoopInputs(videos, users, impressions, ranker, ThresholdModel(), SETTINGS, SEED)


@pytest.fixture(scope="module")
def trained(inputs):
    return fit_deep_agents(inputs, PARENTS)


def test_each_learner_trains_its_budget_and_twice_gives_the_same_weights(inputs, trained, monkeypatch):
    assert list(trained.agents) == list(DEEP_LEARNERS)
    episodes = trained.history.group_by("agent", maintain_order=True).len()
    assert episodes["len"].to_list() == [budget_episodes(SETTINGS)] * len(DEEP_LEARNERS)
    monkeypatch.setenv("ESMR_WORKERS", "2")  # the other way: in worker processes
    again = fit_deep_agents(inputs, PARENTS)
    assert again.agents.to_bytes() == trained.agents.to_bytes()
    assert again.history.equals(trained.history)
    weights = [agent.state_dict() for agent in trained.agents.values()]
    assert not all(np.array_equal(weights[1][k], weights[2][k]) for k in weights[1])  # rewards differ, so do agents


def test_the_stored_agents_load_without_pickle_and_act_the_same(inputs, trained):
    data = trained.agents.to_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == sorted(["manifest.json", *(f"{n}.pt" for n in DEEP_LEARNERS)])
    loaded = DeepAgents.from_bytes(data)
    assert loaded.to_bytes() == data
    env = ClosedLoopVectorEnv(inputs, PARENTS, "evaluation")
    observation, _ = env.reset()
    for name in DEEP_LEARNERS:
        assert np.array_equal(loaded[name].greedy(observation), trained.agents[name].greedy(observation))


def test_a_deep_learner_acts_in_the_rollouts_on_what_it_observes(inputs, trained):
    rollouts = run_rollouts(inputs, {}, deep_agents=trained.agents)
    assert set(DEEP_LEARNERS) <= set(rollouts["policy"])
    # Day 1 of ppo_esmr: what its network chooses from the environment's day-1 observation.
    env = ClosedLoopVectorEnv(inputs, PARENTS, "evaluation")
    observation, _ = env.reset(seed=0)
    chosen = trained.agents["ppo_esmr"].greedy(observation)
    day1 = rollouts.filter((pl.col("policy") == "ppo_esmr") & (pl.col("day") == 1)).sort("user_id")
    assert day1["user_id"].to_list() == LoopState(inputs).cohort("evaluation")["user_id"].to_list()
    from esmr_assets.policy.loop.feeds import ACTIONS
    expected = [None if a == 0 else ACTIONS[a - 1] for a in chosen]
    assert day1["action"].to_list() == expected
    assert observe  # the observation both use
