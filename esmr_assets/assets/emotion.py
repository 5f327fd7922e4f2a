"""Phase II (a) assets: cluster emotion labels, the TabTransformer emotion model, and its
per-day predictions. Thin wrappers over `esmr_assets.emotion.pipeline`."""

import dagster as dg
import polars as pl

from ..emotion.clustering import CLUSTER_FEATURES
from ..emotion.pipeline import PAPER_ACCURACY, label_days, load_model, predict_days, train_emotion_model
from ..evaluation.plots import confusion_heatmap, daily_emotion_mix, elbow_curve, emotion_trajectory, training_curve
from ..partitions import seed_partitions
from ..resources import EsmrConfig
from ..sim.affect import TRUE_EMOTIONS
from ..storage import atomic_write_bytes, partition_dir
from .common import markdown_table, plot_metadata, value_counts

GROUP = "emotion"
MODEL_FILE = "tabtransformer.pt"


@dg.asset(group_name=GROUP, partitions_def=seed_partitions, kinds={"sklearn", "parquet"})
def emotion_labels(context: dg.AssetExecutionContext, esmr: EsmrConfig, user_day_logs: pl.DataFrame):
    """One cluster-derived label per user-day (paper §3.2.1, Table 1): K-Means (k=5) on active
    days, the cluster -> emotion mapping solved from centroid traits, then the rules
    (inactivity -> churned, sharp engagement drop -> stressed). Scored against the latent
    truth, which the paper could not do."""
    settings, seed = esmr.settings().emotion, esmr.seed(context)
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
            **plot_metadata(esmr, "emotion_labels", seed, "elbow_curve", elbow_curve(clusterer.elbow_, settings.n_clusters)),
            **plot_metadata(
                esmr,
                "emotion_labels",
                seed,
                "labels_vs_truth",
                confusion_heatmap(agreement["confusion"], TRUE_EMOTIONS, "Cluster labels vs latent truth", "cluster label"),
            ),
        },
    )


@dg.asset(group_name=GROUP, partitions_def=seed_partitions, kinds={"pytorch", "parquet"})
def emotion_model(
    context: dg.AssetExecutionContext, esmr: EsmrConfig, user_day_logs: pl.DataFrame, emotion_labels: pl.DataFrame
):
    """The TabTransformer (paper §3.2.2) trained on training users' cluster labels with early
    stopping on validation users; the table holds test-user scores of it, of two baselines
    (logistic regression, LightGBM) and of the labels themselves against the latent truth.
    The weights are stored beside the table as `tabtransformer.pt`."""
    settings, seed = esmr.settings().emotion, esmr.seed(context)
    result = train_emotion_model(user_day_logs, emotion_labels, settings, seed)
    path = partition_dir(esmr.storage_root(), "emotion_model", seed) / MODEL_FILE
    atomic_write_bytes(path, result.model.to_bytes())
    scores = {row["model"]: row for row in result.scores.iter_rows(named=True)}
    tab = scores["tabtransformer"]
    context.log.info(f"TabTransformer test accuracy {tab['accuracy']:.3f} (paper {PAPER_ACCURACY:.3f})")
    return dg.MaterializeResult(
        value=result.scores,
        metadata={
            "accuracy": float(tab["accuracy"]),
            "macro_f1": float(tab["macro_f1"]),
            "accuracy_vs_truth": float(tab["accuracy_vs_truth"]),
            "paper_accuracy": PAPER_ACCURACY,
            "best_epoch": result.model.best_epoch_,
            "fit_seconds": round(result.fit_seconds, 2),
            "comparison": markdown_table(result.scores.select("model", "accuracy", "macro_f1", "accuracy_vs_truth")),
            "model_path": dg.MetadataValue.path(str(path)),
            **plot_metadata(
                esmr,
                "emotion_model",
                seed,
                "confusion_matrix",
                confusion_heatmap(result.confusion, TRUE_EMOTIONS, "TabTransformer on test users", ylabel="cluster label"),
            ),
            **plot_metadata(
                esmr, "emotion_model", seed, "training_curve", training_curve(result.history, result.model.best_epoch_)
            ),
        },
    )


@dg.asset(group_name=GROUP, partitions_def=seed_partitions, deps=[emotion_model], kinds={"pytorch", "parquet"})
def emotion_predictions(
    context: dg.AssetExecutionContext, esmr: EsmrConfig, user_day_logs: pl.DataFrame, emotion_labels: pl.DataFrame
):
    """Class probabilities and the predicted label for every user-day (the previous-day input
    is the cluster label of the previous day), with the user's train/val/test split."""
    settings, seed = esmr.settings().emotion, esmr.seed(context)
    model = load_model(partition_dir(esmr.storage_root(), "emotion_model", seed) / MODEL_FILE)
    predictions = predict_days(model, user_day_logs, emotion_labels, seed, settings.split)
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
            **plot_metadata(esmr, "emotion_predictions", seed, "trajectory", emotion_trajectory(predictions, user)),
            **plot_metadata(
                esmr,
                "emotion_predictions",
                seed,
                "predicted_mix",
                daily_emotion_mix(predictions, column="label", title="Predicted emotion by day"),
            ),
        },
    )
