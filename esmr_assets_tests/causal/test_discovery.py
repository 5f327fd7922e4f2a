"""The causal stage around the batched DirectLiNGAM: datasets, scores, parents, guards,
and the causal group materialized end to end."""

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import precision_score, recall_score

from esmr_assets.causal.dataset import causal_frame, condition_numbers, user_arrays
from esmr_assets.causal.discovery import target_parents
from esmr_assets.causal.scoring import edge_scores
from esmr_assets.core.vocabulary import TRUE_EMOTIONS, VALENCE_SCORE
from esmr_assets.sim.causal_graph import CAUSAL_FEATURES, TARGETS, true_adjacency

BEHAVIOUR = CAUSAL_FEATURES[1:16]


def _logs(active: dict[int, list[bool]]) -> pl.DataFrame:
    rows = []
    for user, days in active.items():
        for day, on in enumerate(days):
            row = {"user_id": user, "day": day, **{c: float(day + user) for c in BEHAVIOUR}}
            row |= {"n_impressions": 5 if on else 0, "logins": 1.0 if on else 0.0}
            rows.append(row)
    return pl.DataFrame(rows)


def _predictions(probs: dict[tuple[int, int], dict[str, float]]) -> pl.DataFrame:
    rows = []
    for (user, day), p in probs.items():
        rows.append({"user_id": user, "day": day, **{f"p_{e}": p.get(e, 0.0) for e in TRUE_EMOTIONS}})
    return pl.DataFrame(rows)


def test_causal_frame_pairs_consecutive_active_days_with_next_day_targets():
    logs = _logs({1: [True, True, False, True, True]})
    probs = {
        (1, 0): {"happy": 1.0},
        (1, 1): {"stressed": 0.5, "neutral": 0.5},
        (1, 2): {"churned": 1.0},
        (1, 3): {"happy": 0.25, "excited": 0.75},
        (1, 4): {"disappointed": 1.0},
    }
    frame = causal_frame(logs, _predictions(probs))
    assert frame["day"].to_list() == [0, 3]  # (1,2) touches the inactive day 2; day 4 has no next day
    first, second = frame.row(0, named=True), frame.row(1, named=True)
    assert first["valence"] == pytest.approx(VALENCE_SCORE["happy"])
    assert first["next_day_stressed"] == 0.5 and first["next_day_happy"] == 0.0
    assert first["valence_change"] == pytest.approx(0.5 * VALENCE_SCORE["stressed"] - VALENCE_SCORE["happy"])
    expected = 0.25 * VALENCE_SCORE["happy"] + 0.75 * VALENCE_SCORE["excited"]
    assert second["valence"] == pytest.approx(round(expected, 2))
    assert second["valence_change"] == pytest.approx(VALENCE_SCORE["disappointed"] - round(expected, 2))
    assert frame.columns == ["user_id", "day", *CAUSAL_FEATURES]


def test_user_arrays_keep_users_with_enough_rows():
    frame = pl.DataFrame({"user_id": [1] * 3 + [2] * 5, "day": list(range(3)) + list(range(5)),
                          **{c: np.arange(8.0) for c in CAUSAL_FEATURES}})
    ids, arrays, skipped = user_arrays(frame, min_rows=4)
    assert ids == [2] and skipped == [1] and arrays[0].shape == (5, 19)
    assert arrays[0][:, 0].tolist() == [3.0, 4.0, 5.0, 6.0, 7.0]


def test_condition_number_flags_collinear_users():
    rng = np.random.default_rng(0)
    x = rng.laplace(size=(30, 4))
    collinear = np.column_stack([x, x[:, 0] - 2 * x[:, 1]])
    numbers = condition_numbers([x, collinear])
    assert numbers[0] < 100 and numbers[1] > 1e10


def test_edge_scores_match_sklearn_and_a_hand_count_of_shd():
    rng = np.random.default_rng(1)
    truth = true_adjacency()
    est = (rng.random((5, 19, 19)) < 0.1).astype(float)
    scores = edge_scores(est, truth)
    off = ~np.eye(19, dtype=bool)
    for b in range(5):
        y_true, y_pred = truth[off] != 0, est[b][off] != 0
        assert scores["precision"][b] == pytest.approx(precision_score(y_true, y_pred, zero_division=0))
        assert scores["recall"][b] == pytest.approx(recall_score(y_true, y_pred))
    t = np.zeros((3, 3))
    t[1, 0] = t[2, 1] = 1  # 0 -> 1 -> 2
    e = np.zeros((3, 3))
    e[0, 1] = 1  # reversed 0 <- 1
    e[2, 0] = 1  # extra 0 -> 2; 1 -> 2 missing
    assert float(edge_scores(e, t)["shd"]) == 3.0
    assert float(edge_scores(t, t)["f1"]) == 1.0 and float(edge_scores(t, t)["shd"]) == 0.0


def test_target_parents_summarises_shares_signs_and_truth():
    edges = pl.DataFrame(
        {
            "method": ["per_user"] * 5,
            "user_id": [1, 2, 3, 1, 2],
            "cause": ["valence", "valence", "valence", "likes", "likes"],
            "effect": ["next_day_stressed"] * 3 + ["next_day_happy"] * 2,
            "weight": [-0.5, -0.3, 0.1, 0.2, 0.4],
        }
    )
    summary, per_user = target_parents(edges, "per_user", n_users=4)
    row = summary.filter((pl.col("target") == "next_day_stressed") & (pl.col("parent") == "valence")).row(0, named=True)
    assert row["user_share"] == 0.75 and row["sign"] == -1 and row["median_weight"] == pytest.approx(-0.3)
    assert row["in_true_graph"] and row["true_sign"] == -1 and row["rank"] == 1
    likes = summary.filter(pl.col("parent") == "likes").row(0, named=True)
    assert likes["user_share"] == 0.5 and not likes["in_true_graph"] and likes["true_sign"] == 0
    assert per_user.height == 5 and set(per_user["target"]) <= set(TARGETS)


@pytest.mark.slow
def test_causal_group_materializes_at_smoke(smoke_graph):
    root, result = smoke_graph
    edges = pl.read_parquet(root / "causal_dags/scenario=baseline/seed=2/part-0.parquet")
    assert set(edges["method"].cast(pl.String)) == {"per_user", "pooled", "per_user_pooled_order"}
    assert set(edges.filter(pl.col("method") == "pooled")["user_id"]) == {-1}
    assert set(edges["cause"]) | set(edges["effect"]) <= set(CAUSAL_FEATURES)
    assert (edges["cause"] != edges["effect"]).all() and edges["weight"].is_finite().all()
    parents = pl.read_parquet(root / "causal_parents/scenario=baseline/seed=2/part-0.parquet")
    user_parents = pl.read_parquet(root / "user_causal_parents/scenario=baseline/seed=2/part-0.parquet")
    assert set(parents["target"]) <= set(TARGETS) and parents["user_share"].is_between(0, 1).all()
    per_user_targets = edges.filter((pl.col("method") == "per_user") & pl.col("effect").is_in(TARGETS))
    assert user_parents.height == per_user_targets.height
    assert (root / "causal_parents/scenario=baseline/seed=2/parents_dag.png").stat().st_size > 0
    materialized = result.asset_materializations_for_node("causal_dags")[0].metadata
    assert materialized["users_fitted"].value > 0
