"""The emotion model's daily labels, for the stored predictions and the closed loop alike.

The closed-loop environment simulates behaviour and knows nothing of emotion models; the
policy stage hands it a `DailyLabeller`, which turns each simulated day's observed
behaviour into the predicted label and class probabilities the policies and the RL state
read, as a platform running the paper's pipeline would.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ..vocabulary import NO_LABEL, PREVIOUS_LABELS, TRUE_EMOTIONS
from .features import EmotionFeatures, build_features, is_active

_CHURNED = np.asarray(TRUE_EMOTIONS) == "churned"


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
    """Each day's predicted label from the day's observed behaviour, each user's earlier
    active days (which `engagement_change` reads) and the previous predicted label.
    Inactive days are "churned" (probability 1) by the labels' rule. Without a model, active
    days get no label (NO_LABEL, NaN probabilities)."""

    def __init__(self, model=None) -> None:
        self.model = model

    def reset(self, n_users: int) -> DailyLabeller:
        """Start an episode: nobody has a previous label or an earlier active day."""
        self.predicted_ = np.full(n_users, NO_LABEL, dtype=object)
        self.last_active_: pl.DataFrame | None = None
        return self

    def label(self, observed: pl.DataFrame, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Today's (labels, probabilities) for `observed`, one row per user of the cohort in
        the order of `reset`; they become the previous labels of tomorrow. The latent
        `truth` is never read: the platform does not have it."""
        inactive = ~observed.select(is_active()).to_series().to_numpy()
        if self.model is None:
            probabilities = np.full((observed.height, len(TRUE_EMOTIONS)), np.nan)
            labels = np.full(observed.height, NO_LABEL, dtype=object)
        else:
            history = observed if self.last_active_ is None else pl.concat([self.last_active_, observed])
            previous = np.concatenate([np.full(history.height - observed.height, NO_LABEL), self.predicted_.astype(str)])
            features = build_features(history, pl.Series(previous, dtype=pl.Enum(PREVIOUS_LABELS)))
            labels, probabilities = predict_classes(self.model, features.take(slice(history.height - observed.height, None)))
        probabilities[inactive] = _CHURNED
        self.predicted_ = np.where(inactive, "churned", labels).astype(object)
        self._remember(observed)
        return self.predicted_, probabilities

    def _remember(self, observed: pl.DataFrame) -> None:
        active = observed.filter(is_active())
        if self.last_active_ is not None:
            active = pl.concat([self.last_active_.join(active.select("user_id"), on="user_id", how="anti"), active])
        self.last_active_ = active


class LatentLabeller:
    """A diagnostic labeller: the simulator's latent true emotion as the day's label, with
    probability 1. No platform has it; `oracle_*` policies use it to show what the paper's
    design would do with a perfect emotion model."""

    def reset(self, n_users: int) -> LatentLabeller:
        return self

    def label(self, observed: pl.DataFrame, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        labels = np.asarray(truth).astype(str)
        probabilities = (labels[:, None] == np.asarray(TRUE_EMOTIONS)[None, :]).astype(np.float64)
        if (probabilities.sum(axis=1) != 1).any():
            raise ValueError(f"unknown latent labels: {sorted(set(labels) - set(TRUE_EMOTIONS))}")
        return labels.astype(object), probabilities
