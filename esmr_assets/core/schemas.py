"""Data contracts: the exact columns and types of every table the graph writes.

Asset checks compare each materialization against these, so a change of schema is a
deliberate edit here, not an accident downstream."""

from __future__ import annotations

import polars as pl

from .vocabulary import (
    CATEGORIES,
    CATEGORY_LABELS,
    DEFAULT_STYLES,
    EMOTION_LABELS,
    EMOTIONS,
    PROFILES,
    SIGNALS,
    THEMES,
    TRUE_EMOTIONS,
)

F64, I32 = pl.Float64, pl.Int32

VIDEOS = pl.Schema(
    {
        "video_id": I32,
        "category": pl.Enum(CATEGORIES),
        "theme": pl.Enum(THEMES),
        "duration_s": F64,
        "emotion": pl.Enum(EMOTIONS),
        "intensity": pl.Int8,
        "valence": F64,
        "arousal": F64,
        "virality": F64,
        "engagement_score": F64,
        "engagement": F64,
    }
)

USERS = pl.Schema(
    {
        "user_id": I32,
        "profile": pl.Enum(PROFILES),
        **{c: F64 for c in ("scroll_shape", "scroll_scale", "watch_low", "watch_high", "login_rate")},
        **{c: F64 for c in ("like_rate", "comment_rate", "share_rate", "post_probability", "churn_propensity")},
        **{f"alpha_{c}": F64 for c in CATEGORIES},
        **{c: F64 for c in ("baseline_valence", "baseline_arousal", "susceptibility", "recovery_rate")},
        "initial_valence": F64,
        "initial_arousal": F64,
        "feedback_style": pl.Enum(DEFAULT_STYLES),
    }
)


def users_schema(styles: tuple[str, ...]) -> pl.Schema:
    """USERS for a population of these communication styles (`feedback_styles`, in order)."""
    return pl.Schema({**USERS, "feedback_style": pl.Enum(styles)})

USER_DAY_LOGS = pl.Schema(
    {
        "user_id": I32,
        "day": pl.Int16,
        "profile": pl.Enum(PROFILES),
        "is_weekend": pl.Boolean,
        "is_spike": pl.Boolean,
        "churned": pl.Boolean,
        "scroll_minutes": F64,
        "watch_minutes": F64,
        **{c: I32 for c in ("logins", "posts", "likes", "comments", "shares")},
        "engagement": F64,
        "engagement_trend": F64,
        "scroll_watch_ratio": F64,
        **{c: I32 for c in ("n_impressions", "n_watched", "n_skipped")},
        **{c: F64 for c in ("skip_rate", "mean_intensity", "intensity_change", "content_valence")},
        **{c: F64 for c in ("content_arousal", "mean_video_engagement")},
        **{f"time_{c}": F64 for c in CATEGORIES},
        **{f"share_{e}": F64 for e in EMOTIONS},
        "negative_share": F64,
        "dominant_category": pl.Enum(CATEGORY_LABELS),
        "dominant_emotion": pl.Enum(EMOTION_LABELS),
        # Latent truth: for evaluation only, never a model input.
        "true_emotion": pl.Enum(TRUE_EMOTIONS),
        "true_valence": F64,
        "true_arousal": F64,
    }
)
LATENT_COLUMNS = ("true_emotion", "true_valence", "true_arousal")

IMPRESSIONS = pl.Schema(
    {
        "user_id": I32,
        "day": pl.Int16,
        "position": pl.Int16,
        "video_id": I32,
        "watched": pl.Boolean,
        "seconds": pl.Float32,
        "feedback": pl.Enum(SIGNALS),
        "satisfaction": pl.Int8,
    }
)

CONTRACTS: dict[str, pl.Schema] = {
    "videos": VIDEOS,
    "users": USERS,
    "user_day_logs": USER_DAY_LOGS,
    "impressions": IMPRESSIONS,
}
