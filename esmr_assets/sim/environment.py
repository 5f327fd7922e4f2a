"""The closed-loop environment (DESIGN §6): a cohort lives through `n_days` days under a
policy that only ranks feeds.

Each day uses the same structural model as the logging simulation (`draw_day_noise`,
`churn_today`, `simulate_day`). The day's noise comes from `stream(seed, "closed_loop", episode, day)`
in fixed shapes, before the policy acts, so two policies serving different feeds to the same
cohort face common random numbers, and a user's trajectory depends only on the user's own
feeds. Policies see only observable state (`observation`, `recently_shown`); the day's
category preferences and the latent affect stay inside.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from ..emotion.features import NO_LABEL, PREVIOUS_LABELS, build_features, is_active
from ..schemas import LATENT_COLUMNS, USER_DAY_LOGS
from ..settings import SimulationSettings
from .affect import TRUE_EMOTIONS
from .content import VideoPool
from .day import DayNoise, UserState, churn_today, draw_day_noise, simulate_day
from .logging_policy import logging_feed, mixture_weights
from .logs import NEVER_SEEN, day_frame
from .population import Population
from .rng import stream

OBSERVED_COLUMNS = tuple(c for c in USER_DAY_LOGS.names() if c not in LATENT_COLUMNS)
LABEL_TYPE = pl.Enum(TRUE_EMOTIONS)
STATE_LABEL_TYPE = pl.Enum(PREVIOUS_LABELS)


@dataclass(frozen=True)
class DayStep:
    """What one day produced. `logs` holds the latent truth too: for evaluation, never for
    policies. Impression arrays are flat, in user-then-position order."""

    day: int
    logs: pl.DataFrame  # user_day_logs rows of the cohort (schemas.USER_DAY_LOGS)
    predicted: np.ndarray  # (n,) str: the emotion model's label ("none" on active days without a model)
    probabilities: np.ndarray  # (n, 6) the model's class probabilities in TRUE_EMOTIONS order (NaN without a model)
    true_label: np.ndarray  # (n,) str: latent truth, evaluation only
    rows: np.ndarray  # index of the user within the cohort
    positions: np.ndarray
    videos: np.ndarray
    watched: np.ndarray
    seconds: np.ndarray
    feedback: np.ndarray  # int8 index into feedback.SIGNALS: what a learner may see
    satisfaction: np.ndarray  # int8 latent r: evaluation only


class ClosedLoopEnv:
    """One cohort (the rows of `users`, keeping their user_id) stepped a day at a time.

    `emotion_model` (a TabTransformerClassifier) predicts each day's label from the day's
    observed features and the previous predicted label, as the RL state requires."""

    def __init__(
        self,
        videos: pl.DataFrame,
        users: pl.DataFrame,
        settings: SimulationSettings,
        seed: int,
        emotion_model=None,
        episode: int = 0,
    ) -> None:
        self.videos = videos
        self.users = users
        self.settings = settings
        self.seed = seed
        self.emotion_model = emotion_model
        self.episode = episode
        self.pool = VideoPool.from_frame(videos)
        self.pop = Population.from_frame(users)
        self.category_weights = mixture_weights(self.pool, settings)
        self.day = -1

    @property
    def n_users(self) -> int:
        return self.pop.size

    @property
    def done(self) -> bool:
        return self.day >= self.settings.n_days

    def noise_rng(self, day: int) -> np.random.Generator:
        """The users' noise of `day`: keyed by day only, never by what a policy did."""
        return stream(self.seed, "closed_loop", self.episode, day)

    def reset(self) -> pl.DataFrame:
        """Start day 0; returns the first observation."""
        n = self.n_users
        self.day = 0
        self.state = UserState.initial(self.pop)
        self.last_seen = np.full((n, self.pool.size), NEVER_SEEN, dtype=np.int32)
        self.predicted = np.full(n, NO_LABEL, dtype=object)
        # Each user's last active day (observed columns): engagement_change reads it.
        self._last_active: pl.DataFrame | None = None
        self._yesterday: pl.DataFrame | None = None
        self.noise = self._draw_noise()
        return self.observation()

    def _draw_noise(self) -> DayNoise:
        return draw_day_noise(self.noise_rng(self.day), self.pop, self.day, self.settings.feed_length, self.settings)

    def observation(self) -> pl.DataFrame:
        """One row per user: yesterday's observed features (null on day 0), the predicted
        label of yesterday as `predicted_label` ("none" on day 0), the profile, today's day."""
        n = self.n_users
        if self._yesterday is None:
            frame = pl.DataFrame(schema=USER_DAY_LOGS).clear(n).select(OBSERVED_COLUMNS)
            frame = frame.with_columns(
                pl.Series("user_id", self.pop.user_id.astype(np.int32)),
                pl.Series("profile", self.users["profile"]),
            )
        else:
            frame = self._yesterday
        return frame.with_columns(
            pl.lit(self.day, dtype=pl.Int16).alias("day"),
            pl.Series("predicted_label", self.predicted.astype(str), dtype=STATE_LABEL_TYPE),
        )

    def recently_shown(self) -> np.ndarray:
        """(n, n_videos) bool: shown within `seen_window_days` days, so not to be shown today."""
        window = self.settings.seen_window_days
        if window == 0:
            return np.zeros(self.last_seen.shape, dtype=bool)
        return self.last_seen >= self.day - window

    def step(self, feed: np.ndarray, feed_valid: np.ndarray) -> DayStep:
        """Serve each user's ranked `feed` (n, k <= feed_length; `feed_valid` a prefix mask)."""
        if self.day < 0 or self.done:
            raise RuntimeError("no day to step: call reset() to start an episode")
        feed, feed_valid = self._pad(np.asarray(feed), np.asarray(feed_valid, dtype=bool))
        churned = churn_today(self.state, self.pop, self.noise, self.settings)
        result = simulate_day(
            feed, feed_valid, self.day, self.pool, self.pop, self.state, self.noise, churned, self.settings
        )
        self.last_seen[result.rows, result.videos] = self.day
        logs = day_frame(result, self.pop, self.day)
        observed = logs.select(OBSERVED_COLUMNS)
        self.predicted, probabilities = self._predict(observed)
        step = DayStep(
            day=self.day,
            logs=logs,
            predicted=self.predicted,
            probabilities=probabilities,
            true_label=logs["true_emotion"].cast(pl.String).to_numpy(),
            rows=result.rows,
            positions=result.positions,
            videos=result.videos,
            watched=result.watched,
            seconds=result.seconds,
            feedback=result.feedback,
            satisfaction=result.satisfaction,
        )
        self._remember(observed)
        self.state = result.state
        self.day += 1
        if not self.done:
            self.noise = self._draw_noise()
        return step

    def _pad(self, feed: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pad a shorter feed to the fixed shape the day's noise was drawn for."""
        n, f = self.n_users, self.settings.feed_length
        if feed.shape != valid.shape or feed.shape[0] != n or feed.shape[1] > f:
            raise ValueError(f"feed must be (n_users={n}, k <= {f}) with a matching mask, got {feed.shape}")
        pad = ((0, 0), (0, f - feed.shape[1]))
        return np.pad(feed.astype(np.int64), pad), np.pad(valid, pad)

    def _predict(self, observed: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Today's predicted label and class probabilities per user; inactive days are
        "churned" (probability 1) by the labels' rule."""
        inactive = ~observed.select(is_active()).to_series().to_numpy()
        churned = np.asarray(TRUE_EMOTIONS) == "churned"
        if self.emotion_model is None:
            probabilities = np.full((observed.height, len(TRUE_EMOTIONS)), np.nan)
            probabilities[inactive] = churned
            return np.where(inactive, "churned", NO_LABEL).astype(object), probabilities
        frame = observed if self._last_active is None else pl.concat([self._last_active, observed])
        previous = np.concatenate([np.full(frame.height - observed.height, NO_LABEL), self.predicted.astype(str)])
        cont, cat, _ = build_features(frame, pl.Series(previous, dtype=STATE_LABEL_TYPE))
        today = slice(frame.height - observed.height, None)
        model_proba = self.emotion_model.predict_proba(cont[today], cat[today])
        classes = [str(c) for c in self.emotion_model.classes_]
        probabilities = np.zeros((observed.height, len(TRUE_EMOTIONS)))
        for k, emotion in enumerate(TRUE_EMOTIONS):
            if emotion in classes:
                probabilities[:, k] = model_proba[:, classes.index(emotion)]
        labels = np.asarray(self.emotion_model.classes_, dtype=object)[model_proba.argmax(axis=1)]
        probabilities[inactive] = churned
        return np.where(inactive, "churned", labels).astype(object), probabilities

    def _remember(self, observed: pl.DataFrame) -> None:
        self._yesterday = observed
        active = observed.filter(is_active())
        if self._last_active is not None:
            active = pl.concat([self._last_active.join(active.select("user_id"), on="user_id", how="anti"), active])
        self._last_active = active


def logging_policy_feed(env: ClosedLoopEnv, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Algorithm 1's feeds for today, from inside the environment: it reads the day's hidden
    category preferences, so it serves testing and replay, never as a learnt policy's input."""
    if rng is None:
        rng = stream(env.seed, "logging_policy", env.episode, env.day, 1)
    return logging_feed(env.noise.preference, env.category_weights, env.last_seen, env.day, env.settings, rng)
