"""The latent emotion model (docs/design.md §5).

Each user carries a latent valence v in [-1, 1] and arousal a in [0, 1]. Today's (v, a)
shapes today's behaviour; what the user watches today moves (v, a) for tomorrow. The
discrete true emotion is a region of the (v, a) plane; `churned` comes from the churn
process instead. These labels are for evaluation only and never a model input.
"""

from __future__ import annotations

import numpy as np

from ..core.portable import exp, expit, matmul
from ..core.vocabulary import TRUE_EMOTIONS

CHURNED = TRUE_EMOTIONS.index("churned")

VALENCE_CUT = 0.2  # |v| beyond this is a positive / negative state
POSITIVE_AROUSAL_CUT = 0.6  # happy below, excited above
NEGATIVE_AROUSAL_CUT = 0.5  # disappointed below, stressed above
MEMBERSHIP_SOFTNESS = 0.08  # width of the sigmoid edges between regions

# Behaviour multipliers by emotion; columns follow TRUE_EMOTIONS[:5]
# (happy, excited, neutral, stressed, disappointed). Stressed users scroll long and watch
# little; disappointed users are passive; excited users burst likes and shares; happy users
# view steadily and interact.
BEHAVIOUR = {
    "scroll": np.array([1.00, 1.15, 1.00, 1.90, 0.60]),
    "watch": np.array([1.25, 1.10, 1.00, 0.60, 0.55]),
    "skip": np.array([0.85, 0.90, 1.00, 1.45, 1.20]),
    "like": np.array([1.40, 2.40, 1.00, 0.60, 0.35]),
    "comment": np.array([1.50, 1.30, 1.00, 0.90, 0.35]),
    "share": np.array([1.00, 3.00, 1.00, 0.50, 0.30]),
    "login": np.array([1.10, 1.30, 1.00, 1.50, 0.70]),
    "post": np.array([1.20, 2.00, 1.00, 0.80, 0.40]),
}

# Latent dynamics constants.
CONTENT_AROUSAL_CENTRE = 0.5  # intensity-weighted arousal that leaves arousal unchanged
DOSE_MINUTES = 15.0  # watch minutes at which the content effect reaches 1 - 1/e
AROUSAL_TREND_EFFECT = 0.02  # |Delta E| raises arousal
AROUSAL_NOISE_SCALE = 0.04


def true_emotion(valence: np.ndarray, arousal: np.ndarray, churned: np.ndarray) -> np.ndarray:
    """Index into TRUE_EMOTIONS of the region containing (v, a), or churned."""
    label = np.full(valence.shape, TRUE_EMOTIONS.index("neutral"), dtype=np.int8)
    pos, neg = valence > VALENCE_CUT, valence < -VALENCE_CUT
    label[pos & (arousal < POSITIVE_AROUSAL_CUT)] = TRUE_EMOTIONS.index("happy")
    label[pos & (arousal >= POSITIVE_AROUSAL_CUT)] = TRUE_EMOTIONS.index("excited")
    label[neg & (arousal >= NEGATIVE_AROUSAL_CUT)] = TRUE_EMOTIONS.index("stressed")
    label[neg & (arousal < NEGATIVE_AROUSAL_CUT)] = TRUE_EMOTIONS.index("disappointed")
    label[churned] = CHURNED
    return label


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return expit(x)


def memberships(valence: np.ndarray, arousal: np.ndarray) -> np.ndarray:
    """Soft (n, 5) membership of each user in the five active regions; rows sum to 1.

    Smooth edges keep behaviour continuous in (v, a), so a user near a border behaves
    like a mix of both emotions instead of jumping."""
    s = MEMBERSHIP_SOFTNESS
    pos = _sigmoid((valence - VALENCE_CUT) / s)
    neg = _sigmoid((-VALENCE_CUT - valence) / s)
    mid = np.clip(1.0 - pos - neg, 0.0, 1.0)
    hi_pos = _sigmoid((arousal - POSITIVE_AROUSAL_CUT) / s)
    hi_neg = _sigmoid((arousal - NEGATIVE_AROUSAL_CUT) / s)
    m = np.stack([pos * (1 - hi_pos), pos * hi_pos, mid, neg * hi_neg, neg * (1 - hi_neg)], axis=1)
    return m / m.sum(axis=1, keepdims=True)


MIN_MULTIPLIER = 0.05  # a scaled multiplier's floor: no behaviour vanishes or turns negative


#: Interactions that hide distress (`simulation.outraged_logs`): for these users likes,
#: comments and shares take the multipliers of the state of opposite valence at the same
#: arousal (happy <-> disappointed, excited <-> stressed), so they are loud when upset.
LOUD_WHEN_UPSET = ("like", "comment", "share")
OPPOSITE_VALENCE = np.array([4, 3, 2, 1, 0])  # columns of TRUE_EMOTIONS[:5], swapped


def behaviour_multipliers(
    valence: np.ndarray, arousal: np.ndarray, signal: float = 1.0, loud_when_upset: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Per-user multipliers of today's behaviour, mixed by region membership. `signal`
    (`simulation.emotion_signal`) scales their deviation from 1: 0 is behaviour that carries
    no emotion, 1 the table as it is, above 1 a louder signal (floored at MIN_MULTIPLIER).
    Users flagged in `loud_when_upset` interact by the swapped table (`LOUD_WHEN_UPSET`)."""
    m = memberships(valence, arousal)
    mixed = {name: matmul(m, table) for name, table in BEHAVIOUR.items()}
    if loud_when_upset is not None and loud_when_upset.any():
        for name in LOUD_WHEN_UPSET:
            mixed[name][loud_when_upset] = matmul(m[loud_when_upset], BEHAVIOUR[name][OPPOSITE_VALENCE])
    if signal == 1.0:  # the table itself, bit for bit
        return mixed
    return {name: np.maximum(1.0 + signal * (value - 1.0), MIN_MULTIPLIER) for name, value in mixed.items()}


def update_latent(
    valence: np.ndarray,
    arousal: np.ndarray,
    *,
    baseline_valence: np.ndarray,
    baseline_arousal: np.ndarray,
    recovery_rate: np.ndarray,
    susceptibility: np.ndarray,
    content_valence: np.ndarray,
    content_arousal: np.ndarray,
    watch_minutes: np.ndarray,
    engagement_trend: np.ndarray,
    engagement_valence_effect: float,
    valence_noise: np.ndarray,
    arousal_noise: np.ndarray,
    content_effect: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Tomorrow's (v, a):

    v' = v + r (b - v) + k * s * dose * cv + c * dE + e_v
    a' = a + r (b_a - a) + k * s * dose * (ca - 0.5) + 0.02 |dE| + e_a

    cv, ca: intensity-weighted valence/arousal of today's watched content (0 when nothing was
    watched), dose = 1 - exp(-watch_minutes / 15), e_* Laplace noise (non-Gaussian, as
    DirectLiNGAM assumes), k the `content_effect` (0: no feed moves emotion; 1: as designed).
    Clipped to the valid ranges.
    """
    dose = 1.0 - exp(-watch_minutes / DOSE_MINUTES)
    if content_effect != 1.0:  # k = 1 leaves the arithmetic, and so the bytes, as they were
        dose = content_effect * dose
    watched = watch_minutes > 0
    v_next = (
        valence
        + recovery_rate * (baseline_valence - valence)
        + susceptibility * dose * content_valence
        + engagement_valence_effect * engagement_trend
        + valence_noise
    )
    a_next = (
        arousal
        + recovery_rate * (baseline_arousal - arousal)
        + np.where(watched, susceptibility * dose * (content_arousal - CONTENT_AROUSAL_CENTRE), 0.0)
        + AROUSAL_TREND_EFFECT * np.abs(engagement_trend)
        + arousal_noise
    )
    return np.clip(v_next, -1.0, 1.0), np.clip(a_next, 0.0, 1.0)
