"""The user population (paper §3.1.2): behavioural profiles with their session, interaction,
churn and category-preference parameters, plus the latent traits of the affect model."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import polars as pl

from ..core.settings import SimulationSettings
from ..core.vocabulary import CATEGORIES, PROFILES

# Per-profile parameters, columns follow PROFILES (casual, engaged, highly_active).
SCROLL_SHAPE = np.array([2.0, 3.0, 4.0])  # k_p of Eq. 1 (Gamma, minutes)
SCROLL_SCALE = np.array([4.0, 5.0, 6.0])  # theta_p of Eq. 1
WATCH_LOW = np.array([5.0, 12.0, 25.0])  # a_p of Eq. 1 (Uniform, minutes)
WATCH_HIGH = np.array([15.0, 30.0, 50.0])  # b_p of Eq. 1
LOGIN_RATE = np.array([1.5, 3.0, 6.0])  # extra Poisson logins beyond the first
LIKE_RATE = np.array([0.05, 0.10, 0.18])  # expected likes per watched video
COMMENT_RATE = np.array([0.010, 0.025, 0.050])
SHARE_RATE = np.array([0.005, 0.012, 0.025])
POST_PROBABILITY = np.array([0.03, 0.08, 0.20])  # chance of a posting burst on a day
CHURN_LOGIT_MEAN = np.array([-4.2, -4.6, -5.2])  # p_u of Eq. 6, on the logit scale
CHURN_LOGIT_SD = 0.4


def _dirichlet_concentration(profile: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Casual users spread evenly; engaged users favour one category, highly active two."""
    n, k = len(profile), len(CATEGORIES)
    favourites = np.argsort(rng.random((n, k)), axis=1, kind="stable")
    alpha = np.full((n, k), 4.0)
    engaged, active = profile == 1, profile == 2
    alpha[engaged] = 0.8
    alpha[engaged, favourites[engaged, 0]] += 4.0
    alpha[active] = 1.0
    rows = np.flatnonzero(active)
    alpha[rows, favourites[active, 0]] += 3.0
    alpha[rows, favourites[active, 1]] += 3.0
    return alpha


def simulate_users(settings: SimulationSettings, rng: np.random.Generator) -> pl.DataFrame:
    n = settings.n_users
    profile = rng.choice(len(PROFILES), size=n, p=np.asarray(settings.profile_shares))
    alpha = _dirichlet_concentration(profile, rng)
    baseline_valence = np.clip(rng.normal(0.1, 0.35, n), -0.8, 0.8)
    baseline_arousal = rng.uniform(0.3, 0.65, n)
    styles = settings.feedback_styles
    style = rng.choice(len(styles), size=n, p=np.asarray([settings.feedback_style_shares[s] for s in styles]))
    frame = {
        "user_id": np.arange(n, dtype=np.int32),
        "profile": pl.Series(np.array(PROFILES)[profile], dtype=pl.Enum(PROFILES)),
        "scroll_shape": SCROLL_SHAPE[profile],
        "scroll_scale": SCROLL_SCALE[profile],
        "watch_low": WATCH_LOW[profile],
        "watch_high": WATCH_HIGH[profile],
        "login_rate": LOGIN_RATE[profile],
        "like_rate": LIKE_RATE[profile],
        "comment_rate": COMMENT_RATE[profile],
        "share_rate": SHARE_RATE[profile],
        "post_probability": POST_PROBABILITY[profile],
        "churn_propensity": rng.normal(CHURN_LOGIT_MEAN[profile], CHURN_LOGIT_SD),
    }
    for j, cat in enumerate(CATEGORIES):
        frame[f"alpha_{cat}"] = alpha[:, j]
    frame |= {
        "baseline_valence": baseline_valence,
        "baseline_arousal": baseline_arousal,
        "susceptibility": rng.uniform(0.1, 0.5, n),
        "recovery_rate": rng.uniform(0.08, 0.3, n),
        "initial_valence": np.clip(baseline_valence + rng.normal(0.0, 0.3, n), -1.0, 1.0),
        "initial_arousal": np.clip(baseline_arousal + rng.normal(0.0, 0.1, n), 0.0, 1.0),
        "feedback_style": pl.Series(np.array(styles)[style], dtype=pl.Enum(styles)),
    }
    return pl.DataFrame(frame)


@dataclass(frozen=True)
class Population:
    """Column arrays of the `users` table, for vectorised simulation of a cohort."""

    user_id: np.ndarray
    profile: np.ndarray  # int8 index into PROFILES
    scroll_shape: np.ndarray
    scroll_scale: np.ndarray
    watch_low: np.ndarray
    watch_high: np.ndarray
    login_rate: np.ndarray
    like_rate: np.ndarray
    comment_rate: np.ndarray
    share_rate: np.ndarray
    post_probability: np.ndarray
    churn_propensity: np.ndarray
    alpha: np.ndarray  # (n, 4) Dirichlet concentration over CATEGORIES
    baseline_valence: np.ndarray
    baseline_arousal: np.ndarray
    susceptibility: np.ndarray
    recovery_rate: np.ndarray
    initial_valence: np.ndarray
    initial_arousal: np.ndarray
    feedback_style: np.ndarray  # int8 index into the population's styles (`feedback_styles`)

    @property
    def size(self) -> int:
        return len(self.user_id)

    @classmethod
    def from_frame(cls, users: pl.DataFrame) -> Population:
        cols = {}
        for f in fields(cls):
            if f.name == "alpha":
                cols["alpha"] = users.select([f"alpha_{c}" for c in CATEGORIES]).to_numpy()
            elif f.name in ("profile", "feedback_style"):
                cols[f.name] = users[f.name].to_physical().to_numpy().astype(np.int8)
            else:
                cols[f.name] = users[f.name].to_numpy()
        return cls(**cols)

    def take(self, index: np.ndarray | slice) -> Population:
        """The sub-cohort at `index` (rows keep their user_id)."""
        return Population(**{f.name: getattr(self, f.name)[index] for f in fields(self)})
