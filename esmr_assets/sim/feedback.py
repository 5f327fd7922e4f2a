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
- the signal from `feedback_style_signals[style][r]` (settings.STYLE_SIGNALS) for a watched
  video: the same signal means different things to different users (expressive users comment
  when pleased, critical users when displeased; passive users watch to the end what they
  dislike; outraged users like and share what upsets them). A skipped
  video gives "skip". "not_interested", the definitely-negative oracle, replaces the signal
  with probability `not_interested_rate`, and only when r = -1.
"""

from __future__ import annotations

import numpy as np

from ..core.settings import SimulationSettings
from ..core.vocabulary import SIGNALS

SATISFACTION_LEVELS = (-1, 0, 1)


def signal_table(settings: SimulationSettings) -> np.ndarray:
    """(population styles, 3 levels, signals) cumulative P(signal | style, r) of
    `feedback_style_signals`, styles in `feedback_styles` order (the users' style codes)."""
    table = np.zeros((len(settings.feedback_styles), len(SATISFACTION_LEVELS), len(SIGNALS)))
    for s, style in enumerate(settings.feedback_styles):
        for level, r in enumerate(SATISFACTION_LEVELS):
            for signal, p in settings.feedback_style_signals[style][r].items():
                table[s, level, SIGNALS.index(signal)] = p
    return np.cumsum(table, axis=2)


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
    """int8 signal index per impression, from its user's style (index into the population's
    `feedback_styles`), its r, whether it was watched, and two U(0, 1) draws."""
    cumulative = signal_table(settings)[style, r + 1]  # (m, signals)
    signal = (uniform[:, None] >= cumulative).sum(axis=1).clip(max=len(SIGNALS) - 1)
    signal = np.where(watched, signal, SKIP)
    oracle = (r == -1) & (oracle_uniform < settings.not_interested_rate)
    return np.where(oracle, NOT_INTERESTED, signal).astype(np.int8)
