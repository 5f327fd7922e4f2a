"""Data-quality and realism checks on the simulation tables, as plain functions.

Each returns `CheckOutcome`s; the Dagster layer turns them into asset-check results.
`error` checks guard the contract (schema, ranges, counts, nulls); `warn` checks report
realism figures the paper gives (interaction correlations, churn by profile) without
failing a run whose seed happens to land differently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl

from ..core.schemas import CONTRACTS, users_schema
from ..core.settings import SimulationSettings
from ..core.vocabulary import CATEGORIES, EMOTIONS, PROFILES

CHECK_NAMES: dict[str, tuple[str, ...]] = {
    "videos": ("schema", "no_nulls", "row_count", "unique_video_id", "value_ranges", "emotion_imbalance"),
    "users": ("schema", "no_nulls", "row_count", "unique_user_id", "value_ranges", "profile_shares"),
    "user_day_logs": (
        "schema",
        "no_nulls",
        "row_count",
        "unique_user_id_day",
        "value_ranges",
        "watched_plus_skipped",
        "mixes_sum_to_one",
        "churned_days_idle",
        "interaction_tiers",
        "churn_by_profile",
    ),
    "impressions": (
        "schema",
        "no_nulls",
        "unique_user_id_day_position",
        "unique_user_id_day_video_id",
        "value_ranges",
        "matches_user_day_logs",
        "seconds_within_duration",
        "seen_window",
        "feedback_consistent",
    ),
}


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    passed: bool
    description: str
    severity: str = "error"  # or "warn"
    metadata: dict[str, object] = field(default_factory=dict)


def _schema(table: str, df: pl.DataFrame, expected: pl.Schema | None = None) -> CheckOutcome:
    expected = CONTRACTS[table] if expected is None else expected
    problems = [
        f"{c}: expected {t}, got {df.schema.get(c, 'missing')}" for c, t in expected.items() if df.schema.get(c) != t
    ]
    problems += [f"{c}: unexpected column" for c in df.columns if c not in expected]
    return CheckOutcome(
        "schema", not problems, f"columns and types match schemas.{table.upper()}", metadata={"problems": problems}
    )


def _no_nulls(df: pl.DataFrame) -> CheckOutcome:
    nulls = {c: n for c, n in zip(df.columns, df.null_count().row(0)) if n}
    return CheckOutcome("no_nulls", not nulls, "no column has nulls", metadata={"null_counts": nulls})


def _row_count(df: pl.DataFrame, expected: int) -> CheckOutcome:
    return CheckOutcome(
        "row_count", df.height == expected, f"exactly {expected} rows", metadata={"rows": df.height, "expected": expected}
    )


def _ranges(df: pl.DataFrame, bounds: dict[str, tuple[float, float]]) -> CheckOutcome:
    bad = {}
    for col, (lo, hi) in bounds.items():
        s = df[col]
        if s.len() and (s.min() < lo or s.max() > hi):
            bad[col] = {"min": float(s.min()), "max": float(s.max()), "allowed": [lo, hi]}
    return CheckOutcome("value_ranges", not bad, "every bounded column within its range", metadata={"violations": bad})


def _unique(df: pl.DataFrame, keys: list[str]) -> CheckOutcome:
    dupes = df.height - df.select(keys).n_unique()
    return CheckOutcome(f"unique_{'_'.join(keys)}", dupes == 0, f"{keys} is a key", metadata={"duplicates": dupes})


def check_videos(videos: pl.DataFrame, settings: SimulationSettings) -> list[CheckOutcome]:
    counts = videos["emotion"].value_counts().sort("count", descending=True)
    top3 = set(counts["emotion"].head(3).to_list())
    return [
        _schema("videos", videos),
        _no_nulls(videos),
        _row_count(videos, settings.n_videos),
        _unique(videos, ["video_id"]),
        _ranges(
            videos,
            {"duration_s": (10, 90), "intensity": (1, 10), "valence": (-1, 1), "arousal": (0, 1), "engagement": (0, 1)},
        ),
        CheckOutcome(
            "emotion_imbalance",
            top3 == {"excited", "happy", "anxious"},
            "excited, happy and anxious are the three most frequent video emotions (paper §3.1.1)",
            severity="warn",
            metadata={"counts": dict(zip(counts["emotion"].cast(pl.String), counts["count"]))},
        ),
    ]


def check_users(users: pl.DataFrame, settings: SimulationSettings) -> list[CheckOutcome]:
    shares = users["profile"].value_counts(normalize=True)
    observed = dict(zip(shares["profile"].cast(pl.String), shares["proportion"]))
    expected = dict(zip(PROFILES, settings.profile_shares))
    tolerance = 4 * np.sqrt(0.25 / max(users.height, 1))
    return [
        _schema("users", users, users_schema(settings.feedback_styles)),
        _no_nulls(users),
        _row_count(users, settings.n_users),
        _unique(users, ["user_id"]),
        _ranges(
            users,
            {
                "baseline_valence": (-1, 1),
                "initial_valence": (-1, 1),
                "baseline_arousal": (0, 1),
                "initial_arousal": (0, 1),
                "susceptibility": (0, 1),
                "recovery_rate": (0, 1),
                **{f"alpha_{c}": (1e-9, np.inf) for c in CATEGORIES},
            },
        ),
        CheckOutcome(
            "profile_shares",
            all(abs(observed.get(p, 0.0) - expected[p]) <= tolerance for p in PROFILES),
            f"profile shares within {tolerance:.3f} of the settings",
            severity="warn",
            metadata={"observed": observed, "expected": expected},
        ),
    ]


def interaction_correlations(logs: pl.DataFrame) -> dict[str, float]:
    """Pearson correlation of daily engagement with likes, comments and shares on active days
    (paper §3.1.3: 0.66, 0.43, 0.29)."""
    active = logs.filter(~pl.col("churned"))
    return {c: float(active.select(pl.corr("engagement", c)).item() or 0.0) for c in ("likes", "comments", "shares")}


def churn_rate_by_profile(logs: pl.DataFrame) -> dict[str, float]:
    rates = logs.group_by("profile").agg(pl.col("churned").mean()).sort("profile")
    return dict(zip(rates["profile"].cast(pl.String), rates["churned"]))


def check_user_day_logs(logs: pl.DataFrame, settings: SimulationSettings) -> list[CheckOutcome]:
    shares = [f"share_{e}" for e in EMOTIONS]
    times = [f"time_{c}" for c in CATEGORIES]
    consumed = logs["n_impressions"] > 0
    share_sums = logs.select(pl.sum_horizontal(shares).alias("s"), pl.sum_horizontal(times).alias("t"))
    sums_ok = bool(
        ((share_sums["s"] - 1).abs().filter(consumed).max() or 0) < 1e-6
        and ((share_sums["t"] - 1).abs().filter(consumed).max() or 0) < 1e-6
        and (share_sums.filter(~consumed).sum_horizontal().abs().max() or 0) == 0
    )
    churned = logs.filter(pl.col("churned"))
    activity = ["scroll_minutes", "watch_minutes", "logins", "likes", "comments", "shares", "n_impressions"]
    idle_ok = churned.is_empty() or all(churned[c].abs().max() == 0 for c in activity)
    corr = interaction_correlations(logs)
    churn = churn_rate_by_profile(logs)
    present = [churn[p] for p in PROFILES if p in churn]
    counts = ["logins", "posts", "likes", "comments", "shares", "n_impressions", "n_watched", "n_skipped"]
    return [
        _schema("user_day_logs", logs),
        _no_nulls(logs),
        _row_count(logs, settings.n_users * settings.n_days),
        _unique(logs, ["user_id", "day"]),
        _ranges(
            logs,
            {
                "day": (0, settings.n_days - 1),
                "skip_rate": (0, 1),
                "negative_share": (0, 1),
                "engagement_trend": (-1, 1),
                "mean_intensity": (0, 10),
                "true_valence": (-1, 1),
                "true_arousal": (0, 1),
                **{c: (0, np.inf) for c in counts + ["scroll_minutes", "watch_minutes", "engagement"]},
                **{c: (0, 1 + 1e-9) for c in shares + times},
            },
        ),
        CheckOutcome(
            "watched_plus_skipped", bool((logs["n_watched"] + logs["n_skipped"] == logs["n_impressions"]).all()),
            "n_watched + n_skipped = n_impressions",
        ),
        CheckOutcome("mixes_sum_to_one", sums_ok, "emotion and category time shares sum to 1 on active days, 0 otherwise"),
        CheckOutcome("churned_days_idle", idle_ok, "a churned user-day has no activity", metadata={"churned_days": churned.height}),
        CheckOutcome(
            "interaction_tiers",
            corr["likes"] > corr["comments"] > corr["shares"],
            "corr(engagement, likes) > corr(., comments) > corr(., shares); paper 0.66 / 0.43 / 0.29",
            severity="warn",
            metadata={"correlations": corr, "paper": {"likes": 0.66, "comments": 0.43, "shares": 0.29}},
        ),
        CheckOutcome(
            "churn_by_profile",
            len(present) < 2 or all(a >= b for a, b in zip(present, present[1:])),
            "churned share of days falls from casual to engaged to highly active",
            severity="warn",
            metadata={"churn_rate": churn},
        ),
    ]


def check_impressions(
    impressions: pl.DataFrame, logs: pl.DataFrame, videos: pl.DataFrame, settings: SimulationSettings
) -> list[CheckOutcome]:
    """Every check is per user, so they run on `user_chunk_size` users at a time (the
    large preset's sorts and hash tables would otherwise cover ~140 M rows at once) and
    the chunks' outcomes are combined."""
    ids = np.unique(logs["user_id"].to_numpy())
    bounds = ids[:: settings.user_chunk_size].tolist() + [int(ids[-1]) + 1 if ids.size else 0]
    if len(bounds) <= 2:
        parts = [_check_impressions_chunk(impressions, logs, videos, settings)]
    else:
        parts = []
        for lo, hi in zip(bounds, bounds[1:]):
            in_chunk = pl.col("user_id").is_between(lo, hi, closed="left")
            parts.append(_check_impressions_chunk(impressions.filter(in_chunk), logs.filter(in_chunk), videos, settings))
    combined = [_combine(outcomes) for outcomes in zip(*parts)]
    if not impressions["user_id"].is_in(pl.Series(ids)).all():  # impressions of users the logs do not have
        combined = [replace(o, passed=False) if o.name == "matches_user_day_logs" else o for o in combined]
    return combined


def _combine(outcomes: Sequence[CheckOutcome]) -> CheckOutcome:
    """One check's outcomes over user chunks: failed if any chunk failed, with the first
    failing chunk's details; counts add up and the smallest gap is the smallest of all."""
    failing = [o for o in outcomes if not o.passed]
    first = (failing or list(outcomes))[0]
    metadata = dict(first.metadata)
    if "duplicates" in metadata:
        metadata["duplicates"] = sum(o.metadata["duplicates"] for o in outcomes)
    if "smallest_gap_days" in metadata:
        gaps = [o.metadata["smallest_gap_days"] for o in outcomes if o.metadata["smallest_gap_days"] is not None]
        metadata["smallest_gap_days"] = min(gaps, default=None)
    return replace(first, passed=not failing, metadata=metadata)


def _check_impressions_chunk(
    impressions: pl.DataFrame, logs: pl.DataFrame, videos: pl.DataFrame, settings: SimulationSettings
) -> list[CheckOutcome]:
    per_day = impressions.group_by("user_id", "day").agg(pl.len().alias("shown"), pl.col("watched").sum().alias("w"))
    joined = logs.select("user_id", "day", "n_impressions", "n_watched").join(per_day, on=["user_id", "day"], how="left")
    consistent = bool(
        (joined["shown"].fill_null(0) == joined["n_impressions"]).all()
        and (joined["w"].fill_null(0) == joined["n_watched"]).all()
    )
    with_duration = impressions.join(videos.select("video_id", "duration_s"), on="video_id", how="left")
    within = bool((with_duration["seconds"] <= with_duration["duration_s"] + 1e-3).all())
    ordered = impressions.select("user_id", "video_id", "day").sort("user_id", "video_id", "day")
    same_pair = (pl.col("user_id") == pl.col("user_id").shift(1)) & (pl.col("video_id") == pl.col("video_id").shift(1))
    gaps = ordered.select((pl.col("day").cast(pl.Int32) - pl.col("day").cast(pl.Int32).shift(1)).filter(same_pair).alias("gap"))
    min_gap = None if gaps.is_empty() else int(gaps["gap"].min())
    return [
        _schema("impressions", impressions),
        _no_nulls(impressions),
        _unique(impressions, ["user_id", "day", "position"]),
        _unique(impressions, ["user_id", "day", "video_id"]),
        _ranges(
            impressions,
            {
                "video_id": (0, settings.n_videos - 1),
                "position": (0, settings.feed_length - 1),
                "seconds": (1e-6, 90.0),
                "satisfaction": (-1, 1),
            },
        ),
        CheckOutcome("matches_user_day_logs", consistent, "per user-day counts of shown and watched equal the logs"),
        CheckOutcome("seconds_within_duration", within, "no impression lasts longer than its video"),
        CheckOutcome(
            "seen_window",
            min_gap is None or min_gap > settings.seen_window_days,
            f"a video is not shown to a user again within {settings.seen_window_days} days (Algorithm 1)",
            metadata={"smallest_gap_days": min_gap},
        ),
        CheckOutcome(
            "feedback_consistent",
            impressions.filter(
                (pl.col("watched") == (pl.col("feedback") == "skip"))
                & (pl.col("feedback") != "not_interested")
                | ((pl.col("feedback") == "not_interested") & (pl.col("satisfaction") != -1))
            ).is_empty(),
            "a watched video never says 'skip', a skipped one says 'skip' or 'not_interested', and "
            "'not_interested' only comes with latent r = -1",
        ),
    ]
