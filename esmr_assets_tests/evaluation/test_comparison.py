"""The comparison table: metrics per policy and label source, changes against lightgbm and
the paper's figures, on hand-made rollouts."""

import numpy as np
import polars as pl
import pytest

from esmr_assets.evaluation.comparison import evaluation_table, representative_user
from esmr_assets.evaluation.metrics import (
    PAPER_BASELINE,
    PAPER_FIGURES,
    PAPER_VOLATILITY_CHANGE,
)

DAYS = 8


def rollout(policy: str, labels: dict[int, list[str]], watch: float, rl: dict[int, list[bool]] | None = None):
    rows = []
    for user, sequence in labels.items():
        for day, label in enumerate(sequence):
            rows.append({"policy": policy, "user_id": user, "day": day,
                         "rl_active": bool(rl and rl.get(user, [False] * DAYS)[day]), "churned": label == "churned",
                         "watch_minutes": watch, "scroll_minutes": 0.0, "predicted_label": label,
                         "true_emotion": "happy" if label != "churned" else "churned", "true_valence": 0.5})
    return pl.DataFrame(rows)


STRESSED = ["stressed"] * DAYS
HAPPY = ["happy"] * DAYS


def test_changes_and_paper_columns():
    base = rollout("lightgbm", {1: STRESSED, 2: STRESSED}, watch=30.0)
    esmr = rollout("esmr", {1: STRESSED, 2: HAPPY}, watch=15.0, rl={1: [False, True] + [True] * (DAYS - 2)})
    table = evaluation_table(pl.concat([base, esmr]))
    assert table.select("policy", "label_source").rows() == [
        ("lightgbm", "predicted"), ("lightgbm", "true"), ("esmr", "predicted"), ("esmr", "true")]
    predicted = table.filter(pl.col("label_source") == "predicted")
    # negative days: lightgbm 8 per user; esmr (8 + 0) / 2 = 4, a change of -50 %
    assert predicted["negative_days"].to_list() == [8.0, 4.0]
    assert predicted["change_negative_days"].to_list() == [0.0, -0.5]
    # engagement reward: 8 days of tanh(watch / 30) / 1.5 per user
    expected = [8 * np.tanh(1.0) / 1.5, 8 * np.tanh(0.5) / 1.5]
    assert predicted["engagement_reward"].to_list() == pytest.approx(expected)
    assert predicted["change_engagement_reward"][1] == pytest.approx(expected[1] / expected[0] - 1)
    # a zero baseline has no relative change: happy at least once is 0 under lightgbm
    assert predicted["happy_at_least_once"].to_list() == [0.0, 0.5]
    assert predicted["change_happy_at_least_once"].to_list() == [None, None]
    # latent truth is happy everywhere: no negative days under either policy
    assert table.filter(pl.col("label_source") == "true")["negative_days"].to_list() == [0.0, 0.0]
    # the paper's figures: ESMR's on esmr rows, LightGBM's on lightgbm rows
    assert (table.filter(pl.col("policy") == "esmr")["paper_negative_days"] == PAPER_FIGURES["negative_days"]).all()
    assert (table.filter(pl.col("policy") == "lightgbm")["paper_negative_days"] == PAPER_BASELINE["negative_days"]).all()
    assert table.filter(pl.col("policy") == "lightgbm")["paper_happy_at_least_once"].is_null().all()
    assert table.filter(pl.col("policy") == "esmr")["paper_change_volatility"].to_list() == [PAPER_VOLATILITY_CHANGE] * 2
    assert representative_user(pl.concat([base, esmr])) == 1
    # the acting share: esmr acted on 7 of user 1's 8 days and none of user 2's
    assert table["rl_active_share"].to_list() == [0.0, 0.0, 7 / 16, 7 / 16]


def test_requires_the_baseline():
    with pytest.raises(ValueError, match="lightgbm"):
        evaluation_table(rollout("esmr", {1: HAPPY}, watch=10.0))
