"""Phase II (a) assets: cluster emotion labels, the TabTransformer emotion model with its
scores, and its per-day predictions. Thin wrappers over `esmr_assets.emotion.pipeline`."""

import dagster as dg
import polars as pl

from ..core.vocabulary import TRUE_EMOTIONS
from ..emotion.clustering import CLUSTER_FEATURES
from ..emotion.estimators import EmotionModel
from ..emotion.metrics import confusion_by_group
from ..emotion.pipeline import (
    PAPER_ACCURACY,
    label_days,
    predict_days,
    train_emotion_model,
)
from ..evaluation.plots.emotion import confusion_heatmap, elbow_curve, emotion_trajectory, training_curve
from ..evaluation.plots.simulation import daily_emotion_mix
from ..orchestration.metadata import markdown_table, plot_metadata, value_counts
from ..orchestration.model_io import MODEL_IO
from ..orchestration.partitions import cell_partitions
from ..orchestration.resources import EsmrConfig, reads

GROUP = "emotion"
TRAINING_READS = reads("emotion", "policy.emotion_source")


@dg.asset(group_name=GROUP, partitions_def=cell_partitions, kinds={"sklearn", "parquet"}, metadata=reads("emotion"))
def emotion_labels(context: dg.AssetExecutionContext, esmr: EsmrConfig, user_day_logs: pl.DataFrame):
    """One cluster-derived label per user-day (paper §3.2.1, Table 1): K-Means (k=5) on active
    days, the cluster -> emotion mapping solved from centroid traits, then the rules
    (inactivity -> churned, sharp engagement drop -> stressed). Scored against the latent
    truth, which the paper could not do."""
    settings, seed = esmr.settings_for(context).emotion, esmr.seed(context)
    result = label_days(user_day_logs, settings, seed)
    agreement = result.truth_agreement
    context.log.info(f"labels vs latent truth: ARI {agreement['ari']:.3f}, accuracy {agreement['accuracy']:.3f}")
    clusterer = result.clusterer
    return dg.MaterializeResult(
        value=result.labels,
        metadata={
            "label_counts": dg.MetadataValue.json(value_counts(result.labels["label"])),
            "cluster_emotion": dg.MetadataValue.json({str(k): v for k, v in clusterer.cluster_emotion_.items()}),
            "centroids": markdown_table(clusterer.centroids_.with_columns(pl.col("emotion").cast(pl.String))),
            "elbow": markdown_table(clusterer.elbow_),
            "truth_ari": float(agreement["ari"]),
            "truth_nmi": float(agreement["nmi"]),
            "truth_accuracy": float(agreement["accuracy"]),
            "cluster_features": dg.MetadataValue.json(list(CLUSTER_FEATURES)),
            **plot_metadata(context, esmr, "elbow_curve", elbow_curve(clusterer.elbow_, settings.n_clusters)),
            **plot_metadata(
                context, esmr, "labels_vs_truth",
                confusion_heatmap(agreement["confusion"], TRUE_EMOTIONS, "Cluster labels vs latent truth", "cluster label"),
            ),
        },
    )


@dg.multi_asset(
    group_name=GROUP,
    partitions_def=cell_partitions,
    outs={
        "emotion_model": dg.AssetOut(io_manager_key=MODEL_IO, kinds={"pytorch"}, metadata=TRAINING_READS, description=(
            "The emotion model the platform runs (policy.emotion_source): by default the TabTransformer (paper "
            "§3.2.2) trained on training users' cluster labels with early stopping on validation users, stored as "
            "tabtransformer.pt; else a baseline, the TabTransformer trained on the latent truth, or the truth itself "
            "(a diagnostic). The paper TabTransformer's confusion matrix and training curve in metadata."
        )),
        "emotion_model_scores": dg.AssetOut(kinds={"parquet"}, metadata=TRAINING_READS, description=(
            "Test-user scores of the TabTransformer, of two baselines (logistic regression, LightGBM) and of the "
            "cluster labels themselves: accuracy and macro-F1 against the labels, accuracy against the latent truth."
        )),
    },
)
def emotion_training(
    context: dg.AssetExecutionContext, esmr: EsmrConfig, user_day_logs: pl.DataFrame, emotion_labels: pl.DataFrame
):
    """Fit the emotion model on training users' cluster labels and score it, with the
    baselines, on test users against the labels and the latent truth."""
    full, seed = esmr.settings_for(context), esmr.seed(context)
    source = full.policy.emotion_source
    result = train_emotion_model(user_day_logs, emotion_labels, full.emotion, seed, source)
    scores = {row["model"]: row for row in result.scores.iter_rows(named=True)}
    tab = scores["tabtransformer"]
    context.log.info(f"TabTransformer test accuracy {tab['accuracy']:.3f} (paper {PAPER_ACCURACY:.3f})")
    yield dg.Output(
        result.platform,
        output_name="emotion_model",
        metadata={
            "emotion_source": source,
            "best_epoch": result.model.best_epoch_,
            "fit_seconds": round(result.fit_seconds, 2),
            **plot_metadata(
                context, esmr, "confusion_matrix",
                confusion_heatmap(result.confusion, TRUE_EMOTIONS, "TabTransformer on test users", ylabel="cluster label"),
                output="emotion_model",
            ),
            **plot_metadata(context, esmr, "training_curve", training_curve(result.history, result.model.best_epoch_),
                            output="emotion_model"),
        },
    )
    yield dg.Output(
        result.scores,
        output_name="emotion_model_scores",
        metadata={
            "accuracy": float(tab["accuracy"]),
            "macro_f1": float(tab["macro_f1"]),
            "accuracy_vs_truth": float(tab["accuracy_vs_truth"]),
            "paper_accuracy": PAPER_ACCURACY,
            "comparison": markdown_table(result.scores.select("model", "accuracy", "macro_f1", "accuracy_vs_truth")),
        },
    )


@dg.asset(group_name=GROUP, partitions_def=cell_partitions, kinds={"pytorch", "parquet"}, metadata=reads("emotion.split"))
def emotion_predictions(
    context: dg.AssetExecutionContext,
    esmr: EsmrConfig,
    user_day_logs: pl.DataFrame,
    emotion_labels: pl.DataFrame,
    emotion_model: EmotionModel,
):
    """Class probabilities and the predicted label for every user-day (the previous-day input
    is the cluster label of the previous day), with the user's train/val/test split."""
    settings, seed = esmr.settings_for(context).emotion, esmr.seed(context)
    predictions = predict_days(emotion_model, user_day_logs, emotion_labels, seed, settings.split)
    test = predictions.filter(pl.col("split") == "test")
    # The representative user: the test user whose predicted labels change most often.
    changes = (
        test.sort("user_id", "day")
        .group_by("user_id", maintain_order=True)
        .agg((pl.col("label") != pl.col("label").shift(1)).sum().alias("changes"))
        .sort(["changes", "user_id"], descending=[True, False])
    )
    user = int(changes["user_id"][0]) if changes.height else int(predictions["user_id"][0])
    return dg.MaterializeResult(
        value=predictions,
        metadata={
            "label_counts": dg.MetadataValue.json(value_counts(predictions["label"])),
            "representative_user": user,
            **plot_metadata(context, esmr, "trajectory", emotion_trajectory(predictions, user)),
            **plot_metadata(
                context, esmr, "predicted_mix",
                daily_emotion_mix(predictions, column="label", title="Predicted emotion by day"),
            ),
        },
    )


@dg.asset(group_name=GROUP, partitions_def=cell_partitions, kinds={"parquet"}, metadata=reads())
def emotion_confusion(emotion_predictions: pl.DataFrame, user_day_logs: pl.DataFrame, users: pl.DataFrame):
    """The deployed emotion model's predicted label against the latent emotion on active days,
    per split and communication style (user-days per pair): how often each group's upset days
    are read as pleased, from a table small enough to archive with the studies."""
    table = confusion_by_group(emotion_predictions, user_day_logs, users)
    test = table.filter(pl.col("split") == "test")
    agreement = test.group_by("feedback_style").agg(
        ((pl.col("true_emotion") == pl.col("label")) * pl.col("user_days")).sum() / pl.col("user_days").sum()
    ).sort("feedback_style")
    return dg.MaterializeResult(value=table, metadata={"test_agreement_by_style": markdown_table(agreement)})
