"""Simulation and emotion groups materialized end to end at `smoke`, checked through the
stored tables and the stored model."""

import numpy as np
import polars as pl
import pytest

from esmr_assets.core.vocabulary import TRUE_EMOTIONS
from esmr_assets.emotion.tabtransformer import TabTransformerClassifier
from esmr_assets_tests.conftest import stored_and_recomputed_labels

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke_run(smoke_graph):
    root, _ = smoke_graph

    def table(name: str) -> pl.DataFrame:
        return pl.read_parquet(root / name / "scenario=baseline/seed=2" / "part-0.parquet")

    return root, table


def test_labels_cover_every_user_day_and_follow_the_churn_rule(smoke_run):
    _, table = smoke_run
    logs, labels = table("user_day_logs"), table("emotion_labels")
    joined = logs.join(labels, on=["user_id", "day"])
    assert joined.height == logs.height == labels.height
    inactive = (joined["n_impressions"] == 0) & (joined["logins"] == 0)
    assert ((joined["label"] == "churned") == inactive).all()
    assert set(labels["label"].cast(pl.String)) <= set(TRUE_EMOTIONS)


def test_model_table_compares_the_transformer_with_baselines(smoke_run):
    root, table = smoke_run
    scores = table("emotion_model_scores")
    assert set(scores.filter(pl.col("trained_on").ne_missing("latent_truth"))["model"]) == {
        "tabtransformer", "logistic_regression", "lightgbm", "cluster_labels"}
    assert scores["accuracy"].is_between(0, 1).all() and scores["accuracy_vs_truth"].is_between(0, 1).all()
    assert (scores["paper_accuracy"] == 0.983).all()
    for name in ("tabtransformer.pt", "confusion_matrix.png", "training_curve.png"):
        assert (root / "emotion_model" / "scenario=baseline/seed=2" / name).stat().st_size > 0


def test_predictions_are_distributions_and_match_the_stored_model(smoke_run):
    root, table = smoke_run
    predictions = table("emotion_predictions")
    proba = predictions.select(f"p_{e}" for e in TRUE_EMOTIONS).to_numpy()
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert set(predictions["split"].cast(pl.String)) == {"train", "val", "test"}
    # every user's days sit in one split only
    assert predictions.group_by("user_id").agg(pl.col("split").n_unique())["split"].max() == 1
    model = TabTransformerClassifier.load(root / "emotion_model" / "scenario=baseline/seed=2" / "tabtransformer.pt")
    stored, again = stored_and_recomputed_labels(model, root, "2")
    assert (again == stored).all()
    assert (root / "emotion_predictions" / "scenario=baseline/seed=2" / "trajectory.png").stat().st_size > 0
