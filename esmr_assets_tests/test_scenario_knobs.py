"""The studies' simulator knobs have the effect they promise, at smoke scale, through the
closed loop itself (their equations are tested in test_sim_equations.py)."""

import numpy as np
import polars as pl
import pytest

from esmr_assets.policy.ranker import EngagementRanker
from esmr_assets.policy.rollouts import run_rollouts
from esmr_assets.settings import load_settings


@pytest.mark.parametrize("content_effect, room", [(0.0, False), (1.0, True)])
def test_without_a_content_effect_no_feed_moves_emotion(logged_world, threshold_model, content_effect, room):
    """oracle_best_feed minus lightgbm in each user's mean latent valence (same users and
    noise): within noise (|mean| < 3 standard errors) when content cannot move emotion, well
    above it as designed."""
    settings = load_settings("smoke", {"simulation": {"content_effect": content_effect, "n_users": 120, "n_days": 12}})
    impressions, logs, _, videos, users = logged_world(settings.simulation, 3)
    predictions = logs.select("user_id", "day", pl.col("true_emotion").alias("label"))
    ranker = EngagementRanker(random_state=0).fit(impressions, logs, predictions, videos, users)
    rollouts = run_rollouts(videos, users, impressions, ranker, threshold_model, {}, settings, 3)
    valence = (rollouts.filter(pl.col("policy").is_in(["lightgbm", "oracle_best_feed"]))
               .group_by("policy", "user_id").agg(pl.col("true_valence").mean())
               .pivot("policy", index="user_id", values="true_valence"))
    d = (valence["oracle_best_feed"] - valence["lightgbm"]).to_numpy()
    t = d.mean() / (d.std(ddof=1) / np.sqrt(d.size))
    assert (t > 3) if room else (abs(t) < 3), t
