"""The emotion stage end to end, as three plain functions the assets call one each:
cluster labels, model training with baselines, and per-day predictions."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import polars as pl

from ..core import parallel
from ..core.rng import stream
from ..core.schemas import LATENT_COLUMNS
from ..core.settings import EmotionSettings
from ..core.vocabulary import EMOTION_SOURCES, TRUE_EMOTIONS
from .baselines import score_baselines
from .clustering import EmotionClusterer
from .estimators import (
    EmotionModel,
    LatentEmotion,
    LightGBMEmotionModel,
    LogisticEmotionModel,
)
from .features import (
    EmotionFeatures,
    UserSplit,
    build_features,
    limit_split,
    previous_labels,
    split_users,
)
from .labeller import predict_classes
from .metrics import agreement, classification_scores, confusion
from .tabtransformer import TabTransformerClassifier

PAPER_ACCURACY = 0.983  # §4.2: TabTransformer on its own cluster labels
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class LabelResult:
    labels: pl.DataFrame  # user_id, day, label
    clusterer: EmotionClusterer
    truth_agreement: dict[str, float | np.ndarray]


def label_days(logs: pl.DataFrame, settings: EmotionSettings, seed: int) -> LabelResult:
    """K-Means + Table 1 mapping + rules; scored against the latent truth (evaluation only)."""
    clusterer = EmotionClusterer(
        n_clusters=settings.n_clusters,
        random_state=seed,
        drop_threshold=settings.drop_threshold,
        standardise_within=None if settings.standardise_within == "global" else "profile",
        sample_days=settings.cluster_sample_days,
    )
    observed = logs.drop(LATENT_COLUMNS)
    label = clusterer.fit_label(observed)
    frame = logs.select("user_id", "day").with_columns(label.alias("label"))
    return LabelResult(frame, clusterer, agreement(label, logs["true_emotion"]))


def _aligned(logs: pl.DataFrame, labels: pl.DataFrame) -> pl.Series:
    """`labels.label` in the row order of `logs` (joined on user and day, never by position)."""
    joined = logs.select("user_id", "day").join(labels, on=["user_id", "day"], how="left", maintain_order="left")
    if joined["label"].null_count():
        raise ValueError("emotion_labels does not cover every user-day of user_day_logs")
    return joined["label"]


def model_features(logs: pl.DataFrame, labels: pl.DataFrame) -> tuple[EmotionFeatures, pl.Series]:
    """Inputs (previous-day label from the cluster labels) and targets for every user-day."""
    target = _aligned(logs, labels)
    return build_features(logs.drop(LATENT_COLUMNS), previous_labels(logs, target)), target


@dataclass(frozen=True)
class ModelResult:
    model: TabTransformerClassifier  # the paper's: trained on the cluster labels
    platform: EmotionModel  # what the platform runs in the loop (`policy.emotion_source`)
    split: UserSplit
    scores: pl.DataFrame  # one row per model: accuracy and macro-F1 vs labels, accuracy vs truth
    fit_seconds: float  # TabTransformer training time (kept out of the table: it varies run to run)
    confusion: np.ndarray  # TabTransformer on test users, rows = cluster label, TRUE_EMOTIONS order
    history: pl.DataFrame


def _classifier(settings: EmotionSettings, seed: int) -> TabTransformerClassifier:
    return TabTransformerClassifier(
        d_model=settings.d_model,
        n_heads=settings.n_heads,
        n_layers=settings.n_layers,
        layer_norm_continuous=settings.layer_norm_continuous,
        lr=settings.learning_rate,
        batch_size=settings.batch_size,
        max_epochs=settings.max_epochs,
        patience=settings.patience,
        random_state=seed,
        device="cpu",  # a GPU's kernels would give other weights: the cell's bytes are the CPU's everywhere
    )


#: training rows from which the ceiling and baselines are worth starting workers for: at
#: `paper` (21,000) they fit for 5-13 s, at `smoke` (about 1,300) in about a second
WORKER_ROWS = 10_000


def truth_ceiling(
    settings: EmotionSettings, seed: int, train: EmotionFeatures, y_train: np.ndarray, val: EmotionFeatures,
    y_val: np.ndarray, test: EmotionFeatures, y_test: np.ndarray,
) -> tuple[dict[str, np.ndarray], bytes]:
    """Test-user predictions of the TabTransformer and the two baselines trained on the
    latent truth (what behaviour can reveal about emotion here at best), and the
    TabTransformer's bytes (the `truth_trained` emotion source)."""
    on_truth = _classifier(settings, seed).fit(
        train.cont, train.cat, y_train, val.cont, val.cat, y_val, cardinalities=train.cardinalities
    )
    models = {"tabtransformer": on_truth.predict(test.cont, test.cat)}
    baselines = score_baselines(train, y_train, val, y_val, test, y_test, random_state=seed)
    models.update({name: predicted for name, (_, predicted, _) in baselines.items()})
    return models, on_truth.to_bytes()


def train_emotion_model(
    logs: pl.DataFrame, labels: pl.DataFrame, settings: EmotionSettings, seed: int, source: str = "tabtransformer"
) -> ModelResult:
    """Fit the TabTransformer on training users' cluster labels (early stopping on validation
    users), score it and the two baselines on test users against the cluster labels and the
    latent truth. Beside them, the observability ceiling: the same models with the same
    features and users trained on the latent truth (`*_on_truth`, diagnostics: what behaviour
    reveals about emotion here), and the truth's majority class. `source` (an
    `EMOTION_SOURCES` name) picks the model the platform runs (`ModelResult.platform`)."""
    if source not in EMOTION_SOURCES:
        raise ValueError(f"unknown emotion source {source!r}; choose one of {EMOTION_SOURCES}")
    features, target = model_features(logs, labels)
    y = target.cast(pl.String).to_numpy()
    truth = logs["true_emotion"].cast(pl.String).to_numpy()
    split = limit_split(
        split_users(logs["user_id"], seed, settings.split), logs["user_id"], settings.max_model_users,
        stream(seed, "sampling", 0),
    )
    train, val, test = (features.take(mask) for mask in split)
    # The observability ceiling and the baselines are independent of the pipeline's model:
    # they train in workers meanwhile (each fit is single-threaded and deterministic on its
    # own), started for them when the fits outlast a worker's start.
    start_workers = int(split.train.sum()) >= WORKER_ROWS
    with parallel.beside(
        truth_ceiling, settings, seed, train, truth[split.train], val, truth[split.val], test, truth[split.test],
        start_workers=start_workers,
    ) as ceiling, parallel.beside(
        score_baselines, train, y[split.train], val, y[split.val], test, y[split.test], seed,
        start_workers=start_workers,
    ) as scored_baselines:
        model = _classifier(settings, seed)
        start = time.perf_counter()
        model.fit(train.cont, train.cat, y[split.train], val.cont, val.cat, y[split.val],
                  cardinalities=features.cardinalities)
        fit_seconds = time.perf_counter() - start
        predicted = model.predict(test.cont, test.cat)
        baselines = scored_baselines()
        truth_models, truth_trained = ceiling()

    def row(name: str, trained_on: str | None, scores: dict, predictions: np.ndarray) -> dict:
        return {"model": name, "trained_on": trained_on, **scores,
                "accuracy_vs_truth": classification_scores(truth[split.test], predictions)["accuracy"]}

    rows = [row("tabtransformer", "cluster_labels", classification_scores(y[split.test], predicted), predicted)]
    rows += [row(name, "cluster_labels", scores, p) for name, (scores, p, _) in baselines.items()]
    rows.append(row("cluster_labels", None, {"accuracy": 1.0, "macro_f1": 1.0}, y[split.test]))
    for name, p in truth_models.items():
        rows.append(row(f"{name}_on_truth", "latent_truth", classification_scores(y[split.test], p), p))
    labels_, counts = np.unique(truth[split.train], return_counts=True)
    majority = np.full(int(split.test.sum()), labels_[counts.argmax()])
    rows.append(row("majority_class_of_truth", "latent_truth", classification_scores(y[split.test], majority), majority))
    scores = pl.DataFrame(rows).with_columns(
        pl.lit(PAPER_ACCURACY).alias("paper_accuracy"),
        pl.lit(int(split.train.sum())).alias("train_rows"),
        pl.lit(int(split.test.sum())).alias("test_rows"),
    )
    platform = {
        "tabtransformer": lambda: model,
        "logistic_regression": lambda: LogisticEmotionModel.from_pipeline(baselines["logistic_regression"][2],
                                                                          features.cardinalities),
        "lightgbm": lambda: LightGBMEmotionModel.from_classifier(baselines["lightgbm"][2]),
        "truth_trained": lambda: TabTransformerClassifier.from_bytes(truth_trained, device="cpu"),
        "oracle": LatentEmotion,
    }[source]()
    return ModelResult(
        model=model,
        platform=platform,
        split=split,
        scores=scores,
        fit_seconds=fit_seconds,
        confusion=confusion(y[split.test], predicted),
        history=pl.DataFrame(model.history_),
    )


def predict_days(
    model: EmotionModel, logs: pl.DataFrame, labels: pl.DataFrame, seed: int, split: tuple[float, float, float]
) -> pl.DataFrame:
    """Class probabilities and the predicted label for every user-day, with the user's split
    (for the `oracle` source, the latent true emotion with probability 1)."""
    if isinstance(model, LatentEmotion):
        label = logs["true_emotion"].cast(pl.String).to_numpy()
        probabilities = (label[:, None] == np.asarray(TRUE_EMOTIONS)[None, :]).astype(np.float64)
    else:
        features, _ = model_features(logs, labels)
        label, probabilities = predict_classes(model, features)
    parts = split_users(logs["user_id"], seed, split)
    split_name = np.select(list(parts), list(SPLITS), default="")
    return logs.select("user_id", "day").with_columns(
        pl.Series("label", label, dtype=pl.Enum(TRUE_EMOTIONS)),
        pl.Series("split", split_name, dtype=pl.Enum(SPLITS)),
        **{f"p_{c}": pl.Series(probabilities[:, k]) for k, c in enumerate(TRUE_EMOTIONS)},
    )
