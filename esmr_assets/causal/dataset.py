"""Per-user causal-discovery datasets over the 19 features of `sim.causal_graph`.

One row per user and day t on which the user was active on t and t+1: today's behaviour,
today's emotional valence, and three next-day targets. Emotions come from the emotion
model's predicted class probabilities (what the pipeline observes); the latent truth is
never read here.

Why probabilities, not labels: with hard labels, valence_change = score(label_t+1) -
score(label_t) is an exact linear function of today's valence and the next-day happy and
stressed indicators whenever a user's labels span only happy, stressed and neutral, which
makes the user's data rank-deficient and DirectLiNGAM's answer numerical noise. Expected
valence under the predicted distribution, and next-day class probabilities as targets,
carry the same meaning without the exact identity. They are rounded to two decimals (a
probability in whole percent): a user who is never happy would otherwise have a next-day
happy column of 1e-7-sized noise, which the regressions turn into absurd weights.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ..core.vocabulary import VALENCE_SCORE
from ..sim.causal_graph import CAUSAL_FEATURES

PROBABILITY_DECIMALS = 2
BEHAVIOUR_COLUMNS = tuple(c for c in CAUSAL_FEATURES[1:16])


def causal_frame(logs: pl.DataFrame, predictions: pl.DataFrame) -> pl.DataFrame:
    """user_id, day and the 19 CAUSAL_FEATURES for every (user, t) with t and t+1 active.

    `predictions` has user_id, day and p_<emotion> columns (emotion_predictions). Valence is
    the expected valence score over the non-churned classes, renormalised."""
    active = (pl.col("n_impressions") > 0) | (pl.col("logins") > 0)
    mass = pl.sum_horizontal(pl.col(f"p_{e}") for e in VALENCE_SCORE)
    expected = pl.sum_horizontal(pl.col(f"p_{e}") * score for e, score in VALENCE_SCORE.items()) / mass
    daily = (
        logs.filter(active)
        .select("user_id", "day", *BEHAVIOUR_COLUMNS)
        .join(
            predictions.select(
                "user_id",
                "day",
                expected.round(PROBABILITY_DECIMALS).alias("valence"),
                (pl.col("p_stressed") / mass).round(PROBABILITY_DECIMALS).alias("p_stressed"),
                (pl.col("p_happy") / mass).round(PROBABILITY_DECIMALS).alias("p_happy"),
            ),
            on=["user_id", "day"],
            how="inner",
        )
    )
    tomorrow = daily.select(
        "user_id",
        (pl.col("day") - 1).alias("day"),
        pl.col("valence").alias("next_valence"),
        pl.col("p_stressed").alias("next_day_stressed"),
        pl.col("p_happy").alias("next_day_happy"),
    )
    frame = daily.join(tomorrow, on=["user_id", "day"], how="inner").with_columns(
        (pl.col("next_valence") - pl.col("valence")).alias("valence_change")
    )
    return frame.select("user_id", "day", *(pl.col(c).cast(pl.Float64) for c in CAUSAL_FEATURES)).sort("user_id", "day")


def user_arrays(frame: pl.DataFrame, min_rows: int) -> tuple[list[int], list[np.ndarray], list[int]]:
    """(user ids, one (n_u, 19) array per user with at least `min_rows` rows, skipped ids).

    `frame` must be sorted by user (as `causal_frame` returns it)."""
    counts = frame.group_by("user_id", maintain_order=True).len()
    values = frame.select(CAUSAL_FEATURES).to_numpy()
    arrays = np.split(values, np.cumsum(counts["len"].to_numpy())[:-1])
    ids = counts["user_id"].to_list()
    keep = [len(a) >= min_rows for a in arrays]
    return (
        [int(u) for u, k in zip(ids, keep) if k],
        [a for a, k in zip(arrays, keep) if k],
        [int(u) for u, k in zip(ids, keep) if not k],
    )


def condition_numbers(arrays: list[np.ndarray]) -> np.ndarray:
    """Condition number of each user's standardised non-constant columns. An exactly
    collinear user (huge number) leaves DirectLiNGAM fitting rounding noise."""
    out = np.empty(len(arrays))
    for k, x in enumerate(arrays):
        z = x[:, x.std(axis=0) > 0]
        out[k] = np.linalg.cond((z - z.mean(axis=0)) / z.std(axis=0)) if z.shape[1] else np.inf
    return out
