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
  pay the agent for lowering today's valence.  The bonus is multiplied by ``amplification`` (2.0 by default) while the
  user is vulnerable (predicted stressed or disappointed).  NaN deltas (missing features)
  contribute 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from ..causal.dataset import BEHAVIOUR_COLUMNS
from ..causal.discovery import POOLED_USER
from ..core.portable import tanh
from ..core.settings import PolicySettings, Settings
from ..core.vocabulary import NEGATIVE, POSITIVE, REWARD_TIMINGS, TRUE_EMOTIONS, VALENCE_SCORE, check_labels
from ..sim.environment import DayStep

#: Eq. 8's defaults (Table 3) are the settings' own, written once there.
_DEFAULT = PolicySettings()

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


def emotion_reward(previous_label, label, eta: float = _DEFAULT.eta) -> np.ndarray:
    """eta where previous label is negative and the current one is neutral or positive, else 0."""
    prev = check_labels(previous_label)
    cur = check_labels(label)
    if prev.shape != cur.shape:
        raise ValueError("previous_label and label must have the same shape")
    improved = np.isin(prev, NEGATIVE) & np.isin(cur, NEUTRAL_OR_POSITIVE)
    return np.where(improved, float(eta), 0.0)


def causal_reward(previous_features, features, parent_weights, vulnerable,
                  amplification: float = _DEFAULT.causal_amplification) -> np.ndarray:
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


def causal_weights(user_causal_parents: pl.DataFrame, user_ids: np.ndarray, settings: Settings) -> np.ndarray:
    """(len(user_ids), len(DAY_FEATURES)) lambda_f per user: from each user's own DAG, or
    from the one pooled DAG for everybody when `causal.method` is "pooled"."""
    if settings.causal.method == "pooled":
        pooled = parent_weight_matrix(user_causal_parents, [POOLED_USER], DAY_FEATURES)
        return np.repeat(pooled, len(user_ids), axis=0)
    return parent_weight_matrix(user_causal_parents, user_ids.tolist(), DAY_FEATURES)


def total_reward(r_eng, r_emo, r_cause, alpha: float = _DEFAULT.alpha, beta: float = _DEFAULT.beta) -> np.ndarray:
    """Eq. 8: R = R_eng + alpha * R_emo + beta * R_cause."""
    return np.asarray(r_eng, dtype=float) + alpha * np.asarray(r_emo, dtype=float) + beta * np.asarray(r_cause, dtype=float)


#: The day features whose change R_cause rewards: the causal features of day t.
DAY_FEATURES = ("valence", *BEHAVIOUR_COLUMNS)
_VALENCE = np.array([VALENCE_SCORE.get(e, np.nan) for e in TRUE_EMOTIONS])


def day_features(step: DayStep) -> np.ndarray:
    """(n, len(DAY_FEATURES)): the expected valence under the predicted class distribution
    (as `causal_frame` computes it) and the day's behaviour columns. Churned days are all
    NaN: the DAGs were fitted on pairs of active days, and a churn day's zeros are absence,
    not behaviour, so changes into or out of churn earn no causal reward."""
    p = np.where(np.isnan(_VALENCE), 0.0, step.probabilities)
    with np.errstate(invalid="ignore", divide="ignore"):
        valence = (p * np.nan_to_num(_VALENCE)).sum(axis=1) / p.sum(axis=1)
    behaviour = step.logs.select(pl.col(c).cast(pl.Float64) for c in BEHAVIOUR_COLUMNS).to_numpy()
    features = np.column_stack([np.round(valence, 2), behaviour])
    features[np.asarray(step.predicted).astype(str) == "churned"] = np.nan
    return features


class NextDayCredit:
    """The `next_day` timing: each day's transitions wait for tomorrow's observation. `push`
    takes today's (states, actions, weighted R_eng, next states) and today's R_emo and
    R_cause (scored on yesterday -> today) and returns yesterday's transitions completed with
    them: R = R_eng(yesterday) + alpha R_emo + beta R_cause, credited to yesterday's action.
    The horizon's last day has no tomorrow, so its transitions are never learnt."""

    def __init__(self, alpha, beta) -> None:
        self.alpha, self.beta = alpha, beta
        self.waiting: tuple[np.ndarray, ...] | None = None

    def push(self, states, actions, weighted_r_eng, next_states, r_emo, r_cause) -> tuple[np.ndarray, ...] | None:
        done, self.waiting = self.waiting, (states, actions, weighted_r_eng, next_states)
        if done is None:
            return None
        s, a, r_eng, s2 = done
        return s, a, total_reward(r_eng, r_emo, r_cause, alpha=self.alpha, beta=self.beta), s2


@dataclass(frozen=True)
class RewardWeights:
    """Eq. 8's weights; `engagement` is 0 for the no-engagement ablation, `alpha` 0 for
    the no-emotion one. `engagement`, `alpha` and `beta` may be per-user arrays."""

    engagement: float | np.ndarray = 1.0
    alpha: float | np.ndarray = _DEFAULT.alpha
    beta: float | np.ndarray = _DEFAULT.beta
    eta: float = _DEFAULT.eta
    amplification: float = _DEFAULT.causal_amplification

    @classmethod
    def from_settings(cls, settings: PolicySettings, engagement: bool = True, emotion: bool = True,
                      cause: bool = True, alpha: float | None = None, beta: float | None = None,
                      eta: float | None = None) -> RewardWeights:
        """The weights of the settings (or `alpha`, `beta`, `eta` where given), with R_eng
        (`engagement`), R_emo (`emotion`) or R_cause (`cause`) switched off for an agent that
        does not learn from them."""
        alpha, beta, eta = (settings.alpha if alpha is None else alpha, settings.beta if beta is None else beta,
                            settings.eta if eta is None else eta)
        return cls(engagement=1.0 if engagement else 0.0, alpha=alpha if emotion else 0.0, beta=beta if cause else 0.0,
                   eta=eta, amplification=settings.causal_amplification)

    @classmethod
    def stack(cls, weights: list[RewardWeights], block: int) -> RewardWeights:
        """Per-user weights for a cohort of consecutive blocks of `block` users, block k
        rewarded with `weights[k]` (eta and the amplification must agree)."""
        if len({(w.eta, w.amplification) for w in weights}) != 1:
            raise ValueError("stacked reward weights must share eta and the amplification")

        def per_user(field: str) -> np.ndarray:
            return np.repeat([float(getattr(w, field)) for w in weights], block)

        return cls(per_user("engagement"), per_user("alpha"), per_user("beta"), weights[0].eta, weights[0].amplification)


class RewardModel:
    """Algorithm 2's reward for a cohort: `parent_weights` (n, len(DAY_FEATURES)) are the
    users' lambda_f. `timing` says which observation R_emo and R_cause score an action by:
    `same_day` (the paper's: the change into the day the action was served, which that
    day's behaviour shows before the feed could act on the mood) or `next_day` (the change
    from that day into the next, which the served feed can cause)."""

    def __init__(
        self,
        parent_weights: np.ndarray,
        weights: RewardWeights,
        engagement: Callable[[DayStep, DayStep], np.ndarray] | None = None,
        timing: str = "same_day",
    ) -> None:
        if timing not in REWARD_TIMINGS:
            raise ValueError(f"reward timing must be one of {REWARD_TIMINGS}, got {timing!r}")
        self.parent_weights = np.asarray(parent_weights, dtype=float)
        self.weights = weights
        self.engagement = engagement  # R_eng of (previous, step); None: the watch/scroll ratio
        self.timing = timing

    def components(self, previous: DayStep, step: DayStep) -> dict[str, np.ndarray]:
        """R_eng, R_emo, R_cause and R for the transition previous day -> `step`'s day."""
        w = self.weights
        previous_label = np.asarray(previous.predicted).astype(str)
        label = np.asarray(step.predicted).astype(str)
        if self.engagement is None:
            r_eng = engagement_reward(step.logs["watch_minutes"].to_numpy(), step.logs["scroll_minutes"].to_numpy())
        else:
            r_eng = self.engagement(previous, step)
        r_emo = emotion_reward(previous_label, label, eta=w.eta)
        r_cause = causal_reward(
            day_features(previous),
            day_features(step),
            self.parent_weights,
            is_vulnerable(previous_label),
            amplification=w.amplification,
        )
        r = total_reward(w.engagement * r_eng, r_emo, r_cause, alpha=w.alpha, beta=w.beta)
        return {"r_eng": r_eng, "r_emo": r_emo, "r_cause": r_cause, "reward": r}
