"""Latent satisfaction and the one feedback signal of every impression (IGL-P, §2.2 and §4).

Satisfaction r in {-1, 0, +1} is what the user actually felt about a video; it is stored
for evaluation only and never reaches a learner. What a learner sees is one signal from
`SIGNALS`, emitted according to the user's communication style:

- r from the user's latent response to the video. The video's pull on the user's valence,
  `response = susceptibility * intensity / 10 * valence` (the per-video term of the daily
  valence update), and today's taste for its category, `appeal = 4 * preference[category]`
  (1 = indifferent):
    r = -1  if response <= -dissatisfied_response   (content that hurts the user's mood,
                                                     watched or skipped)
    r = +1  if watched and appeal * (1 + response) >= satisfied_appeal
    r =  0  otherwise                               (indifferent or inattentive)
- the signal from `STYLE_SIGNALS[style][r]` for a watched video: the same signal means
  different things to different users (expressive users comment when pleased, critical
  users when displeased; passive users watch to the end what they dislike). A skipped
  video gives "skip". "not_interested", the definitely-negative oracle, replaces the signal
  with probability `not_interested_rate`, and only when r = -1.
"""

from __future__ import annotations

import numpy as np

from ..settings import SimulationSettings
from ..vocabulary import FEEDBACK_STYLES, SIGNALS

SATISFACTION_LEVELS = (-1, 0, 1)

#: P(signal | style, r) for a watched video, r in SATISFACTION_LEVELS order; rows sum to 1.
STYLE_SIGNALS: dict[str, dict[int, dict[str, float]]] = {
    "expressive": {
        1: {"like": 0.45, "share": 0.2, "comment": 0.2, "watch": 0.15},
        0: {"watch": 0.9, "like": 0.1},
        -1: {"watch": 1.0},
    },
    "critical": {
        1: {"watch": 0.7, "like": 0.3},
        0: {"watch": 0.95, "like": 0.05},
        -1: {"comment": 0.6, "watch": 0.4},
    },
    "passive": {
        1: {"watch": 0.85, "like": 0.15},
        0: {"watch": 1.0},
        -1: {"watch": 1.0},
    },
}


def _cumulative_table() -> np.ndarray:
    """(styles, 3 levels, signals) cumulative probabilities of STYLE_SIGNALS."""
    table = np.zeros((len(FEEDBACK_STYLES), len(SATISFACTION_LEVELS), len(SIGNALS)))
    for s, style in enumerate(FEEDBACK_STYLES):
        for level, r in enumerate(SATISFACTION_LEVELS):
            probabilities = STYLE_SIGNALS[style][r]
            if abs(sum(probabilities.values()) - 1.0) > 1e-9 or set(probabilities) - set(SIGNALS):
                raise ValueError(f"STYLE_SIGNALS[{style!r}][{r}] must be a distribution over {SIGNALS}")
            for signal, p in probabilities.items():
                table[s, level, SIGNALS.index(signal)] = p
    return np.cumsum(table, axis=2)


_CUMULATIVE = _cumulative_table()
SKIP, NOT_INTERESTED = SIGNALS.index("skip"), SIGNALS.index("not_interested")


def satisfaction(
    response: np.ndarray, appeal: np.ndarray, watched: np.ndarray, settings: SimulationSettings
) -> np.ndarray:
    """int8 r per impression (the module docstring's rule)."""
    r = np.where(watched & (appeal * (1.0 + response) >= settings.satisfied_appeal), 1, 0)
    return np.where(response <= -settings.dissatisfied_response, -1, r).astype(np.int8)


def emit(
    style: np.ndarray,
    r: np.ndarray,
    watched: np.ndarray,
    uniform: np.ndarray,
    oracle_uniform: np.ndarray,
    settings: SimulationSettings,
) -> np.ndarray:
    """int8 signal index per impression, from its user's style (index into FEEDBACK_STYLES),
    its r, whether it was watched, and two U(0, 1) draws."""
    cumulative = _CUMULATIVE[style, r + 1]  # (m, signals)
    signal = (uniform[:, None] >= cumulative).sum(axis=1).clip(max=len(SIGNALS) - 1)
    signal = np.where(watched, signal, SKIP)
    oracle = (r == -1) & (oracle_uniform < settings.not_interested_rate)
    return np.where(oracle, NOT_INTERESTED, signal).astype(np.int8)
