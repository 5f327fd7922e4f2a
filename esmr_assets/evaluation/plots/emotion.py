"""The emotion stage's figures: confusion, the K-Means elbow, training curves, a user's trajectory."""

from __future__ import annotations

import numpy as np
import polars as pl

from ...core.vocabulary import TRUE_EMOTIONS
from .common import EMOTION_COLOURS, plt, to_png


def confusion_heatmap(matrix, classes, title: str, xlabel: str = "predicted", ylabel: str = "truth") -> bytes:
    """Row-normalised confusion matrix with counts in the cells."""

    matrix = np.asarray(matrix, dtype=float)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center",
                    color="white" if shares[i, j] > 0.5 else "black", fontsize=8)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    fig.tight_layout()
    return to_png(fig)


def elbow_curve(elbow: pl.DataFrame, chosen_k: int) -> bytes:
    """Inertia (left axis) and silhouette (right axis) against k."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(elbow["k"], elbow["inertia"], marker="o", color="#33658a", label="inertia")
    ax.axvline(chosen_k, color="#999999", linestyle="--")
    ax.set(xlabel="k", ylabel="inertia", title=f"K-Means elbow (k = {chosen_k} used)")
    twin = ax.twinx()
    twin.plot(elbow["k"], elbow["silhouette"], marker="s", color="#f6ae2d", label="silhouette")
    twin.set_ylabel("silhouette")
    fig.tight_layout()
    return to_png(fig)


def training_curve(history: pl.DataFrame, best_epoch: int) -> bytes:
    """Train and validation loss, and validation accuracy, per epoch."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(history["epoch"], history["train_loss"], label="train loss")
    ax.plot(history["epoch"], history["val_loss"], label="validation loss")
    ax.axvline(best_epoch, color="#999999", linestyle="--", label=f"best epoch {best_epoch}")
    ax.set(xlabel="epoch", ylabel="cross-entropy", title="TabTransformer training")
    twin = ax.twinx()
    twin.plot(history["epoch"], history["val_accuracy"], color="#2a9d8f", label="validation accuracy")
    twin.set_ylabel("validation accuracy")
    ax.legend(loc="center right", frameon=False)
    fig.tight_layout()
    return to_png(fig)


def emotion_trajectory(predictions: pl.DataFrame, user_id: int, window: int = 3) -> bytes:
    """One user's predicted class probabilities, `window`-day moving average (paper Fig. 6)."""
    user = predictions.filter(pl.col("user_id") == user_id).sort("day")
    fig, ax = plt.subplots(figsize=(8, 4))
    for emotion in TRUE_EMOTIONS:
        smoothed = user[f"p_{emotion}"].rolling_mean(window, min_samples=1)
        ax.plot(user["day"], smoothed, label=emotion, color=EMOTION_COLOURS[emotion], linewidth=2)
    ax.set(xlabel="day", ylabel=f"probability ({window}-day average)", ylim=(0, 1),
           title=f"Predicted emotion trajectory of user {user_id}")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    return to_png(fig)
