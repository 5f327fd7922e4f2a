"""Training the deep learners of the registry (`DeepSpec`) with stable-baselines3, unmodified,
on the Gymnasium environment over the training users.

- **Budget.** One tabular agent trains `epochs` episodes of the training users' `n_days`;
  a deep learner gets `epochs x deep_budget` episodes of the same users (day 0 of each is the
  ranker's, for both), so at `deep_budget = 1` both see the same user-days.
- **Hyper-parameters** are fixed here, written down once (`hyper_parameters`), and stored
  with each agent: SB3's defaults with the discount of Table 3, networks of 64 x 64, one PPO
  update per episode, and a DQN that replays about ten times what it collects. They were
  chosen before any evaluation and never tuned on the evaluation users.
- **Observations** are normalised by SB3's `VecNormalize` (running mean and variance, frozen
  when training ends and stored with the agent); rewards are not.
- **Determinism.** Each learner's seed comes from its registry stream; training runs with one
  torch thread and restores the process's global random states afterwards, so it neither
  depends on nor moves anything else in the process.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import polars as pl
import torch
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.vec_env import VecNormalize

from ...core import parallel
from ...core.rng import stream
from ...core.settings import Settings
from ...core.torch_runtime import torch_runtime
from ..env.sb3 import Sb3VecEnv
from ..env.vector import ClosedLoopVectorEnv
from ..learners.deep import DeepAgent
from ..loop import registry
from ..loop.inputs import LoopInputs, LoopState
from ..loop.users import split_sizes
from .models import DeepAgents

ALGORITHMS = {"dqn": DQN, "ppo": PPO}
NET_ARCH = [64, 64]


def hyper_parameters(algorithm: str, n_envs: int, horizon: int, episodes: int, settings: Settings) -> dict:
    """The learner's SB3 arguments for `episodes` episodes of a cohort of `n_envs` users and
    `horizon` steps each."""
    common = {"gamma": settings.policy.discount, "policy_kwargs": {"net_arch": NET_ARCH}}
    if algorithm == "ppo":
        # One update per episode of every user, in shuffled mini-batches as large as the cohort.
        return {**common, "learning_rate": 3e-4, "n_steps": horizon, "batch_size": n_envs, "n_epochs": 10,
                "gae_lambda": 0.95, "clip_range": 0.2, "ent_coef": 0.01}
    if algorithm == "dqn":
        # Learning starts after one episode, or half the run when it is one episode long (SB3
        # learns only once it has collected more than `learning_starts` transitions).
        episode = n_envs * horizon
        return {**common, "learning_rate": 1e-4, "buffer_size": 100_000,
                "learning_starts": min(episode, episodes * episode // 2),
                "batch_size": 256, "train_freq": 1, "gradient_steps": max(1, n_envs // 25),
                "target_update_interval": n_envs * horizon, "exploration_fraction": 0.5,
                "exploration_final_eps": 0.05}
    raise ValueError(f"algorithm must be one of {tuple(ALGORITHMS)}, got {algorithm!r}")


def learner_seed(seed: int, name: str) -> int:
    """The SB3 seed of learner `name` in cell `seed`: from its registry stream."""
    return int(stream(seed, "policy", registry.spec(name).stream_key).integers(2**31 - 1))


def budget_episodes(settings: Settings) -> int:
    """Training episodes of every training user: the tabular agent's epochs times `deep_budget`."""
    return max(1, round(settings.policy.epochs * settings.policy.deep_budget))


@contextlib.contextmanager
def _own_global_random_states() -> Iterator[None]:
    """SB3 seeds Python's, numpy's and torch's global generators (CUDA's too): put them back
    afterwards."""
    python, numpy, torch_state = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy)
        torch.random.set_rng_state(torch_state)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def train_deep_agent(env: ClosedLoopVectorEnv, algorithm: str, episodes: int, seed: int,
                     settings: Settings) -> tuple[DeepAgent, list[dict]]:
    """`algorithm` trained on `env` for `episodes` episodes: (the agent, one learning-curve row
    per episode: mean reward and Eq. 8 terms per user-day)."""
    horizon = settings.simulation.n_days - 1
    adapter = Sb3VecEnv(env)
    normalised = VecNormalize(adapter, norm_obs=True, norm_reward=False, gamma=settings.policy.discount)
    hyper = hyper_parameters(algorithm, env.num_envs, horizon, episodes, settings)
    with torch_runtime(1), _own_global_random_states():
        model = ALGORITHMS[algorithm]("MlpPolicy", normalised, seed=seed, device="cpu", verbose=0, **hyper)
        model.learn(total_timesteps=episodes * horizon * env.num_envs)
    stored = {**{k: v for k, v in hyper.items() if k != "policy_kwargs"}, "net_arch": NET_ARCH}
    agent = DeepAgent(algorithm, stored, model.policy, normalised.obs_rms.mean, normalised.obs_rms.var)
    return agent, adapter.episodes


@dataclass(frozen=True)
class DeepTraining:
    agents: DeepAgents
    history: pl.DataFrame  # agent, episode, mean_reward, mean_r_eng, mean_r_emo, mean_r_cause
    seconds: float


@dataclass
class _DeepState(LoopState):
    user_causal_parents: pl.DataFrame | None = None


def _fit_one(state: _DeepState, name: str) -> tuple[tuple[dict, dict], list[dict], str]:
    """One learner: ((its manifest, its weights): what crosses a process boundary; its
    learning curve; its log line)."""
    inputs, settings = state.inputs, state.inputs.settings
    spec = registry.spec(name).deep
    start = time.perf_counter()
    env = ClosedLoopVectorEnv(inputs, state.user_causal_parents, "training", terms=spec.terms)
    agent, curve = train_deep_agent(env, spec.algorithm, budget_episodes(settings), learner_seed(inputs.seed, name),
                                    settings)
    rows = [{"agent": name, **row} for row in curve]
    message = (f"{name}: {len(curve)} episodes of {env.num_envs} users in {time.perf_counter() - start:.1f} s, "
               f"mean reward {rows[0]['mean_reward']:.3f} -> {rows[-1]['mean_reward']:.3f}")
    return (agent.manifest(), agent.state_dict()), rows, message


def fit_deep_agents(inputs: LoopInputs, user_causal_parents: pl.DataFrame,
                    log: Callable[[str], None] = lambda message: None) -> DeepTraining:
    """The learners `policy.deep_learners` names, each trained on the training users (each a
    job, in parallel processes when the work is worth it); none by default."""
    settings = inputs.settings
    names = [name for name in registry.DEEP_LEARNERS if name in settings.policy.deep_learners]
    start = time.perf_counter()
    schema = {"agent": pl.String, "episode": pl.Int64,
              **{f"mean_{k}": pl.Float64 for k in ("reward", "r_eng", "r_emo", "r_cause")}}
    if not names:
        return DeepTraining(DeepAgents({}), pl.DataFrame(schema=schema), 0.0)
    _, n_training, _ = split_sizes(inputs.users.height, settings.policy)
    work = len(names) * budget_episodes(settings) * n_training * settings.simulation.n_days
    state = _DeepState(inputs, user_causal_parents=user_causal_parents)
    agents, rows = {}, []
    for name, (agent, mine, message) in zip(names, parallel.map_jobs(_fit_one, state, names, parallel.workers(work))):
        agents[name] = DeepAgent.from_manifest(*agent)
        rows += mine
        log(message)
    return DeepTraining(DeepAgents(agents), pl.DataFrame(rows, schema=schema), time.perf_counter() - start)
