"""The content pool (paper §3.1.1): categories, themes, durations, emotions with intensity,
circumplex valence/arousal and a composite engagement score."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from ..core.portable import exp, power
from ..core.vocabulary import CATEGORIES, EMOTIONS, THEMES

CATEGORY_SHARES = np.array([0.25, 0.35, 0.20, 0.20])
# Category-level base engagement: entertainment draws most interaction, educational least.
CATEGORY_BASE_ENGAGEMENT = np.array([0.8, 1.2, 0.9, 1.0])

# P(theme | category), rows follow CATEGORIES.
THEME_GIVEN_CATEGORY = np.array(
    [
        [0.40, 0.20, 0.20, 0.20],
        [0.10, 0.10, 0.20, 0.60],
        [0.20, 0.60, 0.10, 0.10],
        [0.25, 0.05, 0.50, 0.20],
    ]
)

# Imbalanced: excited, happy and anxious are the most likely (paper §3.1.1).
EMOTION_SHARES = np.array([0.20, 0.09, 0.21, 0.16, 0.10, 0.08, 0.07, 0.09])
# Emotion-specific Gaussian for intensity on the 1-10 scale.
INTENSITY_MEAN = np.array([6.0, 3.5, 7.5, 6.5, 7.0, 4.5, 4.5, 6.0])
INTENSITY_SD = np.array([1.5, 1.0, 2.0, 1.5, 1.5, 1.0, 1.2, 1.5])
# Circumplex coordinates (Russell 1980): valence in [-1, 1], arousal in [0, 1].
EMOTION_VALENCE = np.array([0.8, 0.0, 0.7, -0.6, -0.7, -0.6, -0.5, -0.7])
EMOTION_AROUSAL = np.array([0.5, 0.2, 0.9, 0.8, 0.85, 0.3, 0.2, 0.75])
NEGATIVE_EMOTIONS = tuple(e for e, v in zip(EMOTIONS, EMOTION_VALENCE) if v < 0)

DURATION_MEAN_S, DURATION_SD_S, DURATION_MIN_S, DURATION_MAX_S = 30.0, 15.0, 10.0, 90.0
VIRALITY_SIGMA = 0.5
# Maps the composite score to an engagement probability in (0, 1).
ENGAGEMENT_SCALE = 0.5


def engagement_probability(score: np.ndarray) -> np.ndarray:
    """Saturating map from the composite score to [0, 1): skip probability is 1 minus this."""
    return 1.0 - exp(-np.asarray(score) / ENGAGEMENT_SCALE)


def simulate_videos(n_videos: int, rng: np.random.Generator) -> pl.DataFrame:
    """One row per video. The engagement score multiplies duration, category base, intensity,
    arousal and a lognormal virality, so high-arousal emotions (excited, anxious, angry) get
    the highest and most variable scores and low-arousal ones the lowest and narrowest."""
    category = rng.choice(len(CATEGORIES), size=n_videos, p=CATEGORY_SHARES)
    theme_u = rng.random(n_videos)
    theme = (theme_u[:, None] > np.cumsum(THEME_GIVEN_CATEGORY[category], axis=1)).sum(axis=1)
    duration = np.clip(rng.normal(DURATION_MEAN_S, DURATION_SD_S, n_videos), DURATION_MIN_S, DURATION_MAX_S)
    emotion = rng.choice(len(EMOTIONS), size=n_videos, p=EMOTION_SHARES)
    intensity = np.clip(np.rint(rng.normal(INTENSITY_MEAN[emotion], INTENSITY_SD[emotion])), 1, 10)
    virality = rng.lognormal(0.0, VIRALITY_SIGMA, n_videos)
    score = (
        CATEGORY_BASE_ENGAGEMENT[category]
        * power(DURATION_MEAN_S / duration, 0.3)
        * (intensity / 10.0)
        * (0.4 + EMOTION_AROUSAL[emotion])
        * virality
    )
    return pl.DataFrame(
        {
            "video_id": np.arange(n_videos, dtype=np.int32),
            "category": pl.Series(np.array(CATEGORIES)[category], dtype=pl.Enum(CATEGORIES)),
            "theme": pl.Series(np.array(THEMES)[theme], dtype=pl.Enum(THEMES)),
            "duration_s": duration,
            "emotion": pl.Series(np.array(EMOTIONS)[emotion], dtype=pl.Enum(EMOTIONS)),
            "intensity": intensity.astype(np.int8),
            "valence": EMOTION_VALENCE[emotion],
            "arousal": EMOTION_AROUSAL[emotion],
            "virality": virality,
            "engagement_score": score,
            "engagement": engagement_probability(score),
        }
    )


@dataclass(frozen=True)
class VideoPool:
    """Column arrays of the `videos` table, indexed by video_id, for vectorised lookups."""

    category: np.ndarray  # int8 index into CATEGORIES
    emotion: np.ndarray  # int8 index into EMOTIONS
    duration_s: np.ndarray
    intensity: np.ndarray
    valence: np.ndarray
    arousal: np.ndarray
    engagement: np.ndarray

    @property
    def size(self) -> int:
        return len(self.category)

    @classmethod
    def from_frame(cls, videos: pl.DataFrame) -> VideoPool:
        ids = videos["video_id"].to_numpy()
        if not np.array_equal(ids, np.arange(len(ids))):
            raise ValueError("videos.video_id must be 0..n-1 in order")
        return cls(
            category=videos["category"].to_physical().to_numpy().astype(np.int8),
            emotion=videos["emotion"].to_physical().to_numpy().astype(np.int8),
            duration_s=videos["duration_s"].to_numpy().astype(np.float32),
            intensity=videos["intensity"].to_numpy().astype(np.float32),
            valence=videos["valence"].to_numpy().astype(np.float32),
            arousal=videos["arousal"].to_numpy().astype(np.float32),
            engagement=videos["engagement"].to_numpy().astype(np.float32),
        )
