"""ESMR composite reward (paper §3.3.2, Eq. 8, Algorithm 2), vectorised over users.

All functions take arrays of shape ``(n_users,)`` (or ``(n_users, n_features)`` for the
causal term) and return float arrays of shape ``(n_users,)``.

    R = R_eng + alpha * R_emo + beta * R_cause                                  (Eq. 8)

Decisions (the paper gives the ingredients, not the formulas):

* ``R_eng``: the paper names watch time V_u and scroll depth S_u "normalised using the
  hyperbolic tangent to avoid reward inflation".  We use a convex combination of the two
  tanh-normalised signals,

      R_eng = (tanh(V / watch_scale) + w_s * tanh(S / scroll_scale)) / (1 + w_s),

  with ``w_s = scroll_weight = 0.5``.  It is bounded in [0, 1) for non-negative inputs, and
  each minute of engagement saturates (no inflation).  Watch time is weighted above scroll
  depth because in the simulator long scrolling without watching is a marker of stress
  (stressed users scroll long and watch little), so scroll depth is kept as a weaker
  engagement signal rather than the dominant one.
* ``R_emo``: ``eta`` when the previous predicted label is negative (stressed /
  disappointed) and the current one is neutral or positive (happy / excited); else 0.
  ``churned`` is neither negative, neutral nor positive: a move into or out of churn
  earns nothing.
* ``R_cause``: ``sum_f lambda_f * delta_f`` over the user's causal parents f, where
  ``delta_f = x_f(t) - x_f(t-1)`` in the feature's own units (the DAG weights are per unit,
  so each term is the change of the targets the user's own linear model predicts) and
  ``lambda_f = w(f -> next_day_happy) + w(f -> valence_change) - w(f -> next_day_stressed)``
  (the per-user DirectLiNGAM weights), so that a change of f that the user's own causal
  model says raises next-day happiness / valence or lowers next-day stress is rewarded.
  Non-parents have lambda_f = 0. The edge valence -> valence_change is left out: valence
  change is defined as tomorrow's valence minus today's, so every DAG finds it with weight
  about -1 whatever content does (mean reversion by construction), and keeping it would
  pay the agent for lowering today's valence.  The bonus is multiplied by ``amplification`` (2.0) while the
  user is vulnerable (predicted stressed or disappointed).  NaN deltas (missing features)
  contribute 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from ..core.portable import tanh
from ..core.vocabulary import NEGATIVE, POSITIVE, check_labels

#: sign with which each emotional target enters lambda_f
TARGET_SIGNS: dict[str, float] = {"next_day_happy": 1.0, "valence_change": 1.0, "next_day_stressed": -1.0}

NEUTRAL_OR_POSITIVE = ("neutral", *POSITIVE)
#: (parent, target) edges that hold by definition of the target, not by any effect.
DEFINITIONAL_EDGES = (("valence", "valence_change"),)


def engagement_reward(
    watch_minutes, scroll_minutes, watch_scale: float = 30.0, scroll_scale: float = 30.0, scroll_weight: float = 0.5
) -> np.ndarray:
    """R_eng = (tanh(watch/watch_scale) + scroll_weight*tanh(scroll/scroll_scale)) / (1 + scroll_weight)."""
    if watch_scale <= 0 or scroll_scale <= 0 or scroll_weight < 0:
        raise ValueError("scales must be > 0 and scroll_weight >= 0")
    w = tanh(np.asarray(watch_minutes, dtype=float) / watch_scale)
    s = tanh(np.asarray(scroll_minutes, dtype=float) / scroll_scale)
    return (w + scroll_weight * s) / (1.0 + scroll_weight)


def is_vulnerable(labels) -> np.ndarray:
    """True where the predicted label is negative (stressed or disappointed)."""
    return np.isin(check_labels(labels), NEGATIVE)


def emotion_reward(previous_label, label, eta: float = 1.0) -> np.ndarray:
    """eta where previous label is negative and the current one is neutral or positive, else 0."""
    prev = check_labels(previous_label)
    cur = check_labels(label)
    if prev.shape != cur.shape:
        raise ValueError("previous_label and label must have the same shape")
    improved = np.isin(prev, NEGATIVE) & np.isin(cur, NEUTRAL_OR_POSITIVE)
    return np.where(improved, float(eta), 0.0)


def causal_reward(previous_features, features, parent_weights, vulnerable, amplification: float = 2.0) -> np.ndarray:
    """Sum_f lambda_f * (x_f - x_f_prev) per user, times ``amplification`` where vulnerable.

    ``previous_features``, ``features`` and ``parent_weights`` are (n_users, n_features);
    ``vulnerable`` is a bool (n_users,) array. NaN features (inactive days) contribute 0.
    """
    prev = np.asarray(previous_features, dtype=float)
    cur = np.asarray(features, dtype=float)
    lam = np.asarray(parent_weights, dtype=float)
    if not (prev.shape == cur.shape == lam.shape) or prev.ndim != 2:
        raise ValueError("previous_features, features, parent_weights must share a 2-d shape")
    delta = np.nan_to_num(cur - prev, nan=0.0)
    r = (lam * delta).sum(axis=1)
    vul = np.asarray(vulnerable, dtype=bool)
    if vul.shape != r.shape:
        raise ValueError("vulnerable must have shape (n_users,)")
    return np.where(vul, amplification * r, r)


def parent_weight_matrix(
    user_causal_parents: pl.DataFrame, user_ids: Sequence, feature_names: Sequence[str]
) -> np.ndarray:
    """lambda matrix (len(user_ids), len(feature_names)) from a (user_id, target, parent, weight) table.

    lambda_f = w(f->next_day_happy) + w(f->valence_change) - w(f->next_day_stressed). Rows for
    other targets, `DEFINITIONAL_EDGES`, parents not in ``feature_names`` and users not in
    ``user_ids`` are ignored; users without rows get all-zero weights.
    """
    user_ids = list(user_ids)
    feature_names = list(feature_names)
    out = np.zeros((len(user_ids), len(feature_names)))
    if user_causal_parents.height == 0:
        return out
    signs = pl.DataFrame({"target": list(TARGET_SIGNS), "_sign": list(TARGET_SIGNS.values())})
    uid_dtype = user_causal_parents.schema["user_id"]
    users = pl.DataFrame({"user_id": user_ids}).with_columns(pl.col("user_id").cast(uid_dtype)).with_row_index("_u")
    feats = pl.DataFrame({"parent": feature_names}, schema={"parent": pl.String}).with_row_index("_f")
    definitional = pl.DataFrame(DEFINITIONAL_EDGES, schema=["parent", "target"], orient="row")
    lam = (
        user_causal_parents.select("user_id", "target", pl.col("parent").cast(pl.String), "weight")
        .join(definitional, on=["parent", "target"], how="anti")
        .join(signs, on="target", how="inner")
        .join(users, on="user_id", how="inner")
        .join(feats, on="parent", how="inner")
        .group_by("_u", "_f")
        .agg((pl.col("weight").cast(pl.Float64) * pl.col("_sign")).sum().alias("lam"))
    )
    out[lam["_u"].to_numpy(), lam["_f"].to_numpy()] = lam["lam"].to_numpy()
    return out


def total_reward(r_eng, r_emo, r_cause, alpha: float = 1.0, beta: float = 0.5) -> np.ndarray:
    """Eq. 8: R = R_eng + alpha * R_emo + beta * R_cause."""
    return np.asarray(r_eng, dtype=float) + alpha * np.asarray(r_emo, dtype=float) + beta * np.asarray(r_cause, dtype=float)
