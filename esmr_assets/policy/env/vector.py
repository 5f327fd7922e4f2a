"""`ClosedLoopVectorEnv`: a cohort of the closed loop as a Gymnasium vector environment.

Each sub-environment is one user; all users step the same day together, so one call of
`step` is one simulated day of the cohort. Every episode ends for every user on the same day
(truncation at the horizon: the state has no terminal), so autoreset is off: call `reset()`
for the next episode.

- **Episodes are noise.** Episode k lives through the closed loop's noise episode k
  (`stream(seed, "closed_loop", k, day)`): `reset(seed=k)` chooses it, and a plain `reset()`
  takes the next one. The first is 1 for the training users (the first episode the project's
  own agents train on) and 0 for the evaluation users (the rollouts' episode). Two agents on
  the same seed and cohort face the same noise. A user's draws follow its row in the cohort
  and the cohort's size: the whole evaluation split faces exactly the noise every registered
  policy faced in the rollouts; a part of it, or the agents' stacked cohort, other draws.
- **Day 0** is served by the plain ranker inside `reset()`, as for the project's agents: it
  has no predicted label yet. The agent acts from day 1, for `n_days - 1` steps.
- **Action** `Discrete(9)`: 0 serves the ranker's feed, 1 + b lets bucket `ACTIONS[b]` lead it.
- **Reward** Eq. 8 on the change into the served day (the `same_day` timing the paper's agent
  learns from): R_eng + alpha R_emo + beta R_cause, with the terms of `terms` only. `info`
  carries each term (unweighted), per user.
- **Latent state** appears in `info` only with `diagnostic_latent_info=True`: for analysis,
  never for an agent that is to be deployable.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from ...core.settings import Settings
from ...core.vocabulary import REWARD_TERMS
from ...emotion.estimators import reads_latent
from ...emotion.labeller import DailyLabeller, LatentLabeller
from ...sim.environment import ClosedLoopEnv, DayStep
from ..loop.agent_day import StateTracker
from ..loop.feeds import FEED_CHOICES, buckets_of
from ..loop.inputs import LoopInputs, LoopState
from ..loop.observation import OBSERVATION_NAMES, observe
from ..loop.policies import serve_buckets
from ..rewards import RewardModel, RewardWeights, causal_weights

SPLITS = ("training", "evaluation")


def reward_weights(settings: Settings, terms: tuple[str, ...], alpha: float | None, beta: float | None,
                   eta: float | None) -> RewardWeights:
    """Eq. 8's weights: the settings' alpha, beta and eta unless given, and 0 for each term
    not in `terms`."""
    unknown = set(terms) - set(REWARD_TERMS)
    if not terms or unknown:
        raise ValueError(f"terms must be a non-empty subset of {REWARD_TERMS}, got {terms}")
    given = {"alpha": alpha, "beta": beta, "eta": eta}
    if any(value is not None and value < 0 for value in given.values()):
        raise ValueError(f"alpha, beta and eta must be >= 0, got {given}")
    return RewardWeights.from_settings(settings.policy, engagement="engagement" in terms, emotion="emotion" in terms,
                                       cause="cause" in terms, alpha=alpha, beta=beta, eta=eta)


def cohort_users(state: LoopState, split: str, num_envs: int | None, first_user: int = 0) -> tuple[pl.DataFrame,
                                                                                                   np.ndarray]:
    """(the split's users from `first_user` on, `num_envs` of them (None: all), each one's own
    user id). More than the split holds are copies of its users, with user ids offset per
    copy. A user's noise follows its row in the cohort and the cohort's size, so the same
    user in another cohort lives through other draws."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    users = state.cohort(split)
    if not 0 <= first_user < users.height:
        raise ValueError(f"first_user must lie in 0..{users.height - 1} (the {split} users), got {first_user}")
    users = users.slice(first_user)
    n = users.height if num_envs is None else int(num_envs)
    if n < 1:
        raise ValueError(f"num_envs must be at least 1, got {num_envs}")
    stride = int(state.inputs.users["user_id"].max()) + 1
    copies = -(-n // users.height)
    cohort = pl.concat([users.with_columns(pl.col("user_id") + k * stride) for k in range(copies)]).head(n)
    return cohort, cohort["user_id"].to_numpy() % stride


class ClosedLoopVectorEnv(VectorEnv):
    """The users of `split` (from `first_user`, `num_envs` of them) living through the closed
    loop under the agent's daily choice. `user_causal_parents` gives each user's R_cause
    weights, as the project's agents get them."""

    metadata = {"autoreset_mode": AutoresetMode.DISABLED, "render_modes": []}

    def __init__(
        self,
        inputs: LoopInputs,
        user_causal_parents: pl.DataFrame,
        split: str = "training",
        num_envs: int | None = None,
        *,
        first_user: int = 0,
        terms: tuple[str, ...] = REWARD_TERMS,
        alpha: float | None = None,
        beta: float | None = None,
        eta: float | None = None,
        diagnostic_latent_info: bool = False,
    ) -> None:
        settings = inputs.settings
        if settings.simulation.n_days < 2:
            raise ValueError("the environment needs n_days >= 2: day 0 is served before the agent acts")
        state = LoopState(inputs)
        users, own_ids = cohort_users(state, split, num_envs, first_user)
        self.rewards = RewardModel(causal_weights(user_causal_parents, own_ids, settings),
                                   reward_weights(settings, tuple(terms), alpha, beta, eta))
        self.feeds = state.feed_builder()
        model = inputs.emotion_model
        labeller = LatentLabeller() if reads_latent(model) else DailyLabeller(model)
        self.first_episode = 1 if split == "training" else 0
        self.loop = ClosedLoopEnv(inputs.videos, users, settings.simulation, inputs.seed, labeller,
                                  episode=self.first_episode)
        self.user_ids = users["user_id"].to_numpy()
        self.diagnostic_latent_info = diagnostic_latent_info
        self.num_envs = users.height
        self.single_observation_space = spaces.Box(-np.inf, np.inf, (len(OBSERVATION_NAMES),), np.float32)
        self.single_action_space = spaces.Discrete(FEED_CHOICES)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.observation_names = OBSERVATION_NAMES
        self._episode: int | None = None
        self.last_day: DayStep | None = None

    @property
    def episode(self) -> int | None:
        """The noise episode being lived (None before the first reset)."""
        return self._episode

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """Start noise episode `seed` (None: the next one), serve day 0 with the ranker's feed,
        and return the observation for day 1."""
        if seed is not None and (not isinstance(seed, int | np.integer) or seed < 0):
            raise ValueError(f"reset's seed is the noise episode: an integer >= 0, got {seed!r}")
        super().reset(seed=seed)
        self._episode = seed if seed is not None else (self.first_episode if self._episode is None else self._episode + 1)
        self.loop.episode = self._episode
        self.loop.reset()
        self.tracker = StateTracker(self.num_envs)
        none = np.full(self.num_envs, -1)
        feed, valid, _ = serve_buckets(self.feeds, self.loop, none)
        self.last_day = self.loop.step(feed, valid)
        self.tracker.observe(self.last_day, none)
        return self._observation(), {"user_id": self.user_ids, "_user_id": np.ones(self.num_envs, bool)}

    def step(self, actions) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        if self.last_day is None or self.loop.done:
            raise RuntimeError("the episode has ended (or not started): call reset()")
        buckets = buckets_of(np.asarray(actions).reshape(self.num_envs))
        feed, valid, _ = serve_buckets(self.feeds, self.loop, buckets)
        day = self.loop.step(feed, valid)
        parts = self.rewards.components(self.last_day, day)
        self.tracker.observe(day, buckets)
        self.last_day = day
        info = {"user_id": self.user_ids, "day": np.full(self.num_envs, day.day),
                "r_eng": parts["r_eng"], "r_emo": parts["r_emo"], "r_cause": parts["r_cause"]}
        if self.diagnostic_latent_info:
            info |= {"latent_emotion": day.true_label, "latent_valence": day.logs["true_valence"].to_numpy(),
                     "latent_arousal": day.logs["true_arousal"].to_numpy()}
        info |= {f"_{key}": np.ones(self.num_envs, bool) for key in list(info)}  # every user has every key
        truncated = np.full(self.num_envs, self.loop.done)
        return self._observation(), parts["reward"], np.zeros(self.num_envs, bool), truncated, info

    def _observation(self) -> np.ndarray:
        return observe(self.loop.observation(), self.tracker, self.loop.day)


def per_env(info: dict, n: int) -> list[dict]:
    """A vector info (arrays, with Gymnasium's `_key` masks) as one dict per sub-environment."""
    keys = [key for key in info if not key.startswith("_")]
    return [{key: info[key][i] for key in keys} for i in range(n)]
