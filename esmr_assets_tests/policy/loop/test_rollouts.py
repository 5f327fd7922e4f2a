"""The closed-loop evaluation's rows do not depend on how many processes run it."""

import polars as pl

from esmr_assets.core.settings import load_settings
from esmr_assets.policy.learners.ranker import EngagementRanker
from esmr_assets.policy.loop.inputs import LoopInputs
from esmr_assets.policy.loop.rollouts import run_rollouts


def test_rollouts_in_two_processes_are_the_rows_of_one(logged_world, threshold_model, monkeypatch):
    settings = load_settings("smoke", {"simulation": {"n_users": 80, "n_days": 8}}, whole_graph=False)
    impressions, logs, predictions, videos, users = logged_world(settings.simulation, 4)
    ranker = EngagementRanker(random_state=0).fit(impressions, logs, predictions, videos, users)
    inputs = LoopInputs(videos, users, impressions, ranker, threshold_model, settings, 4)
    monkeypatch.setenv("ESMR_WORKERS", "1")
    one = run_rollouts(inputs, {})
    monkeypatch.setenv("ESMR_WORKERS", "2")
    two = run_rollouts(inputs, {})
    assert one.height > 0 and set(one["policy"]) >= {"lightgbm", "random", "oracle_best_feed"}
    assert one.equals(two)
    assert one.select(pl.col("policy").unique(maintain_order=True)).equals(
        two.select(pl.col("policy").unique(maintain_order=True)))
