"""`policy.emotion_source`: the emotion estimate the platform runs in the loop. The stored
baselines predict what sklearn and LightGBM predict, the truth-trained TabTransformer is the
one the observability ceiling scored, and with the truth itself every policy is a
diagnostic that sees the latent label."""

import dagster as dg
import numpy as np
import polars as pl
import pytest

from esmr_assets.core.settings import load_settings
from esmr_assets.core.vocabulary import EMOTION_SOURCES
from esmr_assets.emotion.baselines import fit_lightgbm, fit_logistic
from esmr_assets.emotion.estimators import (
    LatentEmotion,
    LightGBMEmotionModel,
    LogisticEmotionModel,
)
from esmr_assets.emotion.features import EmotionFeatures
from esmr_assets.policy.loop.inputs import LoopInputs
from esmr_assets_tests.conftest import scenario_cell, stored_and_recomputed_labels


def synthetic_features(n: int, seed: int) -> tuple[EmotionFeatures, np.ndarray]:
    rng = np.random.default_rng(seed)
    cont = rng.normal(size=(n, 5)).astype(np.float32)
    cat = np.column_stack([rng.integers(0, 3, n), rng.integers(0, 4, n)]).astype(np.int64)
    score = cont[:, 0] + (cat[:, 0] == 1) - 0.5 * cont[:, 1]
    y = np.where(score > 0.8, "happy", np.where(score < -0.5, "stressed", "neutral"))
    return EmotionFeatures(cont, cat, (3, 4)), y


def test_stored_baselines_predict_what_the_fitted_ones_do_and_round_trip():
    train, y = synthetic_features(600, 0)
    val, y_val = synthetic_features(200, 1)
    test, _ = synthetic_features(300, 2)
    stacked = np.hstack([test.cont.astype(np.float64), test.cat.astype(np.float64)])
    logistic = fit_logistic(train, y)
    mine = LogisticEmotionModel.from_pipeline(logistic, train.cardinalities)
    assert np.allclose(mine.predict_proba(test.cont, test.cat), logistic.predict_proba(stacked), atol=1e-12)
    assert list(mine.classes_) == list(logistic.classes_)
    boosted = fit_lightgbm(train, y, val, y_val)
    tree = LightGBMEmotionModel.from_classifier(boosted)
    assert np.array_equal(tree.predict_proba(test.cont, test.cat), boosted.predict_proba(stacked))
    for model, kind in ((mine, LogisticEmotionModel), (tree, LightGBMEmotionModel)):
        data = model.to_bytes()
        again = kind.from_bytes(data)
        assert again.to_bytes() == data  # deterministic bytes
        assert np.array_equal(again.predict_proba(test.cont, test.cat), model.predict_proba(test.cont, test.cat))
        assert np.array_equal(again.predict(test.cont, test.cat), model.predict(test.cont, test.cat))
    assert isinstance(LatentEmotion.from_bytes(LatentEmotion().to_bytes()), LatentEmotion)


def test_the_setting_accepts_the_sources_and_names_a_bad_one():
    for source in EMOTION_SOURCES:
        assert load_settings("smoke", {"policy": {"emotion_source": source}}).policy.emotion_source == source
    from esmr_assets.core.settings import SettingsError

    with pytest.raises(SettingsError, match="policy.emotion_source"):
        load_settings("smoke", {"policy": {"emotion_source": "gut_feeling"}})


@pytest.mark.slow
def test_truth_trained_is_the_ceilings_model(smoke_graph):
    """The emotion stage on the smoke graph's logs with the truth_trained source: the
    platform's model is the ceiling's TabTransformer (its test accuracy against the truth is
    the `tabtransformer_on_truth` row's), and the paper's model is what the default run
    stored."""
    from esmr_assets.emotion.pipeline import train_emotion_model
    from esmr_assets.emotion.tabtransformer import TabTransformerClassifier

    root, _ = smoke_graph
    logs = pl.read_parquet(root / "user_day_logs" / "scenario=baseline/seed=2" / "part-0.parquet")
    labels = pl.read_parquet(root / "emotion_labels" / "scenario=baseline/seed=2" / "part-0.parquet")
    settings = load_settings("smoke").emotion
    result = train_emotion_model(logs, labels, settings, 2, "truth_trained")
    assert isinstance(result.platform, TabTransformerClassifier) and result.platform is not result.model
    from esmr_assets.emotion.pipeline import model_features

    features, _ = model_features(logs, labels)
    test = features.take(result.split.test)
    truth = logs["true_emotion"].cast(pl.String).to_numpy()[result.split.test]
    accuracy = float((result.platform.predict(test.cont, test.cat) == truth).mean())
    row = result.scores.filter(pl.col("model") == "tabtransformer_on_truth")
    assert accuracy == pytest.approx(row["accuracy_vs_truth"][0])
    stored = TabTransformerClassifier.load(root / "emotion_model" / "scenario=baseline/seed=2" / "tabtransformer.pt")
    assert stored.to_bytes() == result.model.to_bytes()  # the paper's model, stored by the default run


@pytest.mark.slow
def test_a_baseline_source_flows_through_the_graph(tmp_path):
    """emotion_source = logistic_regression: the stage stores the baseline (and no
    TabTransformer), and the predictions are the stored baseline's."""
    from esmr_assets.definitions import defs
    from esmr_assets.orchestration.resources import run_config

    overrides = '{"policy": {"emotion_source": "logistic_regression"}}'
    with dg.instance_for_test() as instance:
        key = scenario_cell(instance, tmp_path, "smoke", overrides, 3)
        result = defs.resolve_job_def("simulation_job").execute_in_process(
            instance=instance, partition_key=key, run_config=run_config("smoke", tmp_path))
        assert result.success
        result = defs.resolve_job_def("emotion_job").execute_in_process(
            instance=instance, partition_key=key, run_config=run_config("smoke", tmp_path))
        assert result.success
    root, scenario = tmp_path / "smoke", key.split("|")[0]
    folder = root / "emotion_model" / f"scenario={scenario}" / "seed=3"
    assert (folder / "logistic_emotion.json").is_file() and not (folder / "tabtransformer.pt").exists()
    model = LogisticEmotionModel.from_bytes((folder / "logistic_emotion.json").read_bytes())
    stored, again = stored_and_recomputed_labels(model, root, "3", scenario)
    assert (again == stored).all()


def test_with_the_truth_as_source_every_policy_sees_it_and_is_marked(logged_world):
    """Rollouts under the `oracle` source: each policy's predicted label is the latent one,
    and every row is marked a diagnostic."""
    from esmr_assets.policy.learners.ranker import EngagementRanker
    from esmr_assets.policy.loop.rollouts import run_rollouts

    settings = load_settings("smoke", {"simulation": {"n_days": 6}, "policy": {"emotion_source": "oracle"}}, whole_graph=False)
    impressions, logs, predictions, videos, users = logged_world(settings.simulation, 4)
    ranker = EngagementRanker(random_state=0).fit(impressions, logs, predictions, videos, users)
    rollouts = run_rollouts(LoopInputs(videos, users, impressions, ranker, LatentEmotion(), settings, 4), {})
    assert {"lightgbm", "random", "hybrid_fixed_happy", "oracle_best_feed"} <= set(rollouts["policy"])
    assert rollouts["oracle"].all()
    assert (rollouts["predicted_label"] == rollouts["true_emotion"]).all()
