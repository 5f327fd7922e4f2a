"""The emotion model's daily labels, for the stored predictions and the closed loop alike.

The closed-loop environment simulates behaviour and knows nothing of emotion models; the
policy stage hands it a `DailyLabeller`, which turns each simulated day's observed
behaviour into the predicted label and class probabilities the policies and the RL state
read, as a platform running the paper's pipeline would.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ..core.vocabulary import NO_LABEL, PREVIOUS_LABELS, TRUE_EMOTIONS
from .features import EmotionFeatures, build_features, is_active

_CHURNED = np.asarray(TRUE_EMOTIONS) == "churned"
_PREVIOUS_ENGAGEMENT = "_previous_active_engagement"


def predict_classes(model, features: EmotionFeatures) -> tuple[np.ndarray, np.ndarray]:
    """(label per row, (n, 6) class probabilities in TRUE_EMOTIONS order): the model's most
    likely class, and 0 for a class the model never saw in training."""
    proba = model.predict_proba(features.cont, features.cat)
    classes = [str(c) for c in model.classes_]
    probabilities = np.zeros((len(proba), len(TRUE_EMOTIONS)))
    for j, emotion in enumerate(classes):
        probabilities[:, TRUE_EMOTIONS.index(emotion)] = proba[:, j]
    return np.asarray(classes, dtype=object)[proba.argmax(axis=1)], probabilities


class DailyLabeller:
    """Each day's predicted label from the day's observed behaviour, each user's engagement
    on the last earlier active day (which `engagement_change` reads) and the previous
    predicted label. Inactive days are "churned" (probability 1) by the labels' rule.
    Without a model, active days get no label (NO_LABEL, NaN probabilities)."""

    def __init__(self, model=None) -> None:
        self.model = model

    def reset(self, n_users: int) -> DailyLabeller:
        """Start an episode: nobody has a previous label or an earlier active day."""
        self.predicted_ = np.full(n_users, NO_LABEL, dtype=object)
        self.last_engagement_ = np.full(n_users, np.nan)
        return self

    def copy(self) -> DailyLabeller:
        """The same model with its own copy of what it remembers of each user."""
        other = DailyLabeller(self.model)
        other.predicted_, other.last_engagement_ = self.predicted_.copy(), self.last_engagement_.copy()
        return other

    def label(self, observed: pl.DataFrame, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Today's (labels, probabilities) for `observed`, one row per user of the cohort in
        the order of `reset`; they become the previous labels of tomorrow. The latent
        `truth` is never read: the platform does not have it."""
        inactive = ~observed.select(is_active()).to_series().to_numpy()
        if self.model is None:
            probabilities = np.full((observed.height, len(TRUE_EMOTIONS)), np.nan)
            labels = np.full(observed.height, NO_LABEL, dtype=object)
        else:
            # null, not NaN, where a user has no earlier active day: polars orders NaN above 0
            previous = pl.Series(_PREVIOUS_ENGAGEMENT, self.last_engagement_).fill_nan(None)
            features = build_features(
                observed.with_columns(previous),
                pl.Series(self.predicted_.astype(str), dtype=pl.Enum(PREVIOUS_LABELS)),
                previous_engagement=pl.col(_PREVIOUS_ENGAGEMENT),
            )
            labels, probabilities = predict_classes(self.model, features)
        probabilities[inactive] = _CHURNED
        self.predicted_ = np.where(inactive, "churned", labels).astype(object)
        engagement = observed["engagement"].cast(pl.Float64).to_numpy()
        self.last_engagement_ = np.where(inactive, self.last_engagement_, engagement)
        return self.predicted_, probabilities


class LatentLabeller:
    """A diagnostic labeller: the simulator's latent true emotion as the day's label, with
    probability 1. No platform has it; `oracle_*` policies use it to show what the paper's
    design would do with a perfect emotion model."""

    def reset(self, n_users: int) -> LatentLabeller:
        return self

    def copy(self) -> LatentLabeller:
        return self

    def label(self, observed: pl.DataFrame, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        labels = np.asarray(truth).astype(str)
        probabilities = (labels[:, None] == np.asarray(TRUE_EMOTIONS)[None, :]).astype(np.float64)
        if (probabilities.sum(axis=1) != 1).any():
            raise ValueError(f"unknown latent labels: {sorted(set(labels) - set(TRUE_EMOTIONS))}")
        return labels.astype(object), probabilities
