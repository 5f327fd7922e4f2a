"""Scores of emotion labels: classifier quality against the cluster labels, and agreement
of any labelling with the simulator's latent truth (the only place the truth is read)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from sklearn.metrics import (
    accuracy_score,
    adjusted_rand_score,
    confusion_matrix,
    f1_score,
    normalized_mutual_info_score,
)

from ..core.vocabulary import TRUE_EMOTIONS

Labels = np.ndarray | pl.Series | Sequence[str]


def _codes(*labellings: Labels, classes: Sequence[str] = ()) -> list[np.ndarray]:
    """Integer codes of labellings (and of `classes`, last) over one shared vocabulary: the
    metrics are the same as on the strings, and sklearn's sorting of millions of Python
    strings (the large preset's 3 M days) is what they would otherwise spend their time on."""
    series = [(s if isinstance(s, pl.Series) else pl.Series(np.asarray(s, dtype=object))).cast(pl.String)
              for s in labellings]
    series.append(pl.Series(list(classes), dtype=pl.String))
    vocabulary = pl.concat([s.unique() for s in series]).drop_nulls().unique().sort()
    enum = pl.Enum(vocabulary.to_list())
    return [s.cast(enum).to_physical().cast(pl.Int64).to_numpy() for s in series]


def classification_scores(truth: Labels, predicted: Labels) -> dict[str, float]:
    """Accuracy and macro-F1 (every class weighs the same, so rare emotions count)."""
    t, p, _ = _codes(truth, predicted)
    return {
        "accuracy": float(accuracy_score(t, p)),
        "macro_f1": float(f1_score(t, p, average="macro", zero_division=0)),
    }


def confusion(truth: Labels, predicted: Labels, classes: Sequence[str] = TRUE_EMOTIONS) -> np.ndarray:
    """Counts with rows = truth, columns = predicted, both in `classes` order."""
    t, p, c = _codes(truth, predicted, classes=classes)
    return confusion_matrix(t, p, labels=c)


def confusion_frame(truth: Labels, predicted: Labels, classes: Sequence[str] = TRUE_EMOTIONS) -> pl.DataFrame:
    """`confusion` as a table: a `truth` column, then one count column per predicted class."""
    matrix = confusion(truth, predicted, classes)
    return pl.DataFrame({"truth": list(classes), **{c: matrix[:, j] for j, c in enumerate(classes)}})


def agreement(labels: Labels, truth: Labels) -> dict[str, float | np.ndarray]:
    """How well a labelling recovers the truth: ARI and NMI (invariant to renaming the
    labels, so they judge the clustering itself), accuracy (judges the cluster->emotion
    mapping too) and the confusion matrix (rows truth, columns label, TRUE_EMOTIONS order)."""
    lab, tru, _ = _codes(labels, truth)
    return {
        "ari": float(adjusted_rand_score(tru, lab)),
        "nmi": float(normalized_mutual_info_score(tru, lab)),
        "accuracy": float(accuracy_score(tru, lab)),
        "confusion": confusion(truth, labels),
    }


def confusion_by_group(predictions: pl.DataFrame, logs: pl.DataFrame, users: pl.DataFrame) -> pl.DataFrame:
    """The predicted label against the latent emotion on the users' active days, per split and
    communication style: one row per (split, feedback_style, true_emotion, label) with its
    user-days. Small enough to archive, and every per-group misreading rate (an upset day read
    as pleased, exact agreement) is a sum over it."""
    active = logs.filter(~pl.col("churned")).select("user_id", "day", pl.col("true_emotion").cast(pl.String))
    return (
        predictions.select("user_id", "day", pl.col("split").cast(pl.String), pl.col("label").cast(pl.String))
        .join(active, on=["user_id", "day"], how="inner")
        .join(users.select("user_id", pl.col("feedback_style").cast(pl.String)), on="user_id", how="left")
        .group_by("split", "feedback_style", "true_emotion", "label")
        .agg(pl.len().cast(pl.Int64).alias("user_days"))
        .sort("split", "feedback_style", "true_emotion", "label")
    )
