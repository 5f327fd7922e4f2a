"""The large preset's code paths at smoke size: users simulated in several chunks, and every
seeded sample that bounds a fit at 100,000 users (K-Means days, emotion-model users, the
pooled DAG's users, ranker users, evaluation users) switched on, end to end."""

import dagster as dg
import numpy as np
import polars as pl
import pytest

from esmr_assets.causal.dataset import causal_frame, user_arrays
from esmr_assets.causal.direct_lingam import BatchedDirectLiNGAM
from esmr_assets.causal.discovery import POOLED_USER
from esmr_assets.core.rng import stream
from esmr_assets.core.settings import PRESETS, load_settings
from esmr_assets.orchestration.resources import run_config
from esmr_assets.policy.loop.registry import evaluated
from esmr_assets_tests.conftest import scenario_cell

pytestmark = pytest.mark.slow
SEED = "5"
# Every cap of the large preset, scaled down so that each one bites.
OVERRIDES = {
    "simulation": {"n_users": 120, "user_chunk_size": 50},
    "emotion": {"cluster_sample_days": 1_500, "max_model_users": 60},
    "causal": {"device": "torch-cpu", "pooled_max_users": 40},
    "policy": {"ranker_max_users": 50, "max_evaluation_users": 20},
}
SETTINGS = load_settings("smoke", OVERRIDES)
POLICIES = tuple(spec.name for spec in evaluated(SETTINGS))


def test_large_preset_switches_on_every_cap():
    large = PRESETS["large"]
    assert large.simulation.n_users == 100_000 and large.simulation.user_chunk_size < large.simulation.n_users
    for section, fields in OVERRIDES.items():
        for field in fields:
            if field != "n_users":
                assert getattr(getattr(large, section), field) is not None, f"{section}.{field}"


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    import json

    from esmr_assets.definitions import defs

    data_dir = tmp_path_factory.mktemp("large_shape")
    with dg.instance_for_test() as instance:
        key = scenario_cell(instance, data_dir, "smoke", json.dumps(OVERRIDES), SEED)
        result = defs.resolve_job_def("esmr_job").execute_in_process(
            run_config=run_config("smoke", data_dir), instance=instance, partition_key=key, raise_on_error=False,
        )
    assert result.success
    return data_dir / "smoke", result


def table(root, name: str) -> pl.DataFrame:
    (part,) = (root / name).glob(f"scenario=*/seed={SEED}/part-0.parquet")  # the overrides' scenario
    return pl.read_parquet(part)


def test_chunked_simulation_is_ordered_and_passes_its_checks(graph):
    root, result = graph
    impressions = table(root, "impressions")
    assert impressions.equals(impressions.sort("user_id", "day", "position"))
    assert impressions["user_id"].n_unique() > SETTINGS.simulation.user_chunk_size  # several chunks
    failed = [c.check_name for c in result.get_asset_check_evaluations() if not c.passed and c.severity.value == "ERROR"]
    assert failed == []


def test_models_fit_on_samples_and_still_cover_every_user_day(graph):
    root, result = graph
    n_users, n_days = SETTINGS.simulation.n_users, SETTINGS.simulation.n_days
    scores = table(root, "emotion_model_scores")
    # 120 users split 84/18/18, each part thinned to half: 42 training and 9 test users.
    assert scores["train_rows"][0] == 42 * n_days and scores["test_rows"][0] == 9 * n_days
    assert table(root, "emotion_predictions").height == n_users * n_days
    assert table(root, "emotion_labels").height == n_users * n_days
    [ranker] = [m for m in result.get_asset_materialization_events() if m.asset_key.to_user_string() == "engagement_ranker"]
    ranker = ranker.materialization
    assert 45 <= ranker.metadata["users_fitted"].value <= 55
    rollouts = table(root, "policy_rollouts")
    assert rollouts.height == len(POLICIES) * 20 * n_days
    assert rollouts.group_by("policy").agg(pl.col("user_id").n_unique())["user_id"].to_list() == [20] * len(POLICIES)


def test_pooled_dag_is_fitted_on_the_seeded_sample_of_users(graph):
    root, _ = graph
    dags = table(root, "causal_dags")
    ids, arrays, _ = user_arrays(causal_frame(table(root, "user_day_logs"), table(root, "emotion_predictions")),
                                 SETTINGS.causal.min_rows)
    fitted = dags.filter(pl.col("method") == "per_user")["user_id"].unique()
    assert fitted.len() > SETTINGS.causal.pooled_max_users  # every eligible user has a DAG
    chosen = np.sort(stream(int(SEED), "sampling", 2).choice(fitted.len(), SETTINGS.causal.pooled_max_users,
                                                             replace=False))
    kept = set(fitted.to_list())
    usable = [a for u, a in zip(ids, arrays) if u in kept]
    reference = BatchedDirectLiNGAM(device="torch-cpu").fit([np.concatenate([usable[i] for i in chosen])])
    pooled = dags.filter((pl.col("method") == "pooled") & (pl.col("user_id") == POOLED_USER))
    assert pooled.height == np.count_nonzero(reference.adjacency_matrix_[0])
    assert np.allclose(np.sort(pooled["weight"].to_numpy()), np.sort(reference.adjacency_matrix_[0][reference.adjacency_matrix_[0] != 0]))
