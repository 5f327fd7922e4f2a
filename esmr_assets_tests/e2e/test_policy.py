"""The policy group materialized end to end at `smoke` (through `q_table`), checked through
the stored tables, the stored ranker and the asset metadata."""

import numpy as np
import polars as pl
import pytest

from esmr_assets.core.settings import load_settings
from esmr_assets.policy.learners.qlearning import N_STATES
from esmr_assets.policy.learners.ranker import FEATURE_NAMES, EngagementRanker
from esmr_assets.policy.loop.bandits import N_CONTEXT
from esmr_assets.policy.loop.feeds import ACTIONS
from esmr_assets.policy.loop.registry import AGENTS, BANDITS
from esmr_assets.policy.loop.users import policy_split
from esmr_assets.policy.training.models import AgentSet, BanditLearners
from esmr_assets.policy.training.stage import bandit_table, q_table_frame

pytestmark = pytest.mark.slow
SMOKE = load_settings("smoke")
SEED = 2


@pytest.fixture(scope="module")
def smoke_run(smoke_graph):
    root, result = smoke_graph

    def table(name: str) -> pl.DataFrame:
        return pl.read_parquet(root / name / f"scenario=baseline/seed={SEED}" / "part-0.parquet")

    return root, result, table


def metadata(result, asset: str) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == asset]
    return event.materialization.metadata


def test_ranker_is_stored_scored_and_explained(smoke_run):
    root, result, table = smoke_run
    importance = table("ranker_feature_importance")
    assert sorted(importance["feature"]) == sorted(FEATURE_NAMES)
    assert importance["rank"].to_list() == list(range(1, len(FEATURE_NAMES) + 1))
    assert (importance["gain"].diff().drop_nulls() <= 0).all()
    assert importance["gain_share"].sum() == pytest.approx(1.0)
    meta = metadata(result, "engagement_ranker")
    assert 0.5 < meta["test_auc"].value <= 1.0 and meta["paper_auc"].value == 0.81
    ranker = EngagementRanker.from_text((root / "engagement_ranker" / f"scenario=baseline/seed={SEED}" / "lightgbm_ranker.txt").read_text())
    assert ranker.best_iteration_ == meta["trees"].value
    assert meta["model_path"].value.endswith("lightgbm_ranker.txt")
    assert (root / "engagement_ranker" / f"scenario=baseline/seed={SEED}" / "feature_importance.png").stat().st_size > 0


def test_q_tables_cover_every_agent_state_and_action(smoke_run):
    root, result, table = smoke_run
    q = table("q_table")
    assert q.height == len(AGENTS) * N_STATES * len(ACTIONS)
    assert set(q["agent"]) == set(AGENTS) and set(q["action"]) == set(ACTIONS)
    policy = SMOKE.policy
    training, evaluation = policy_split(table("users"), SEED, policy)
    meta = metadata(result, "q_agents")
    assert meta["training_users"].value == training.size and meta["evaluation_users"].value == evaluation.size
    # every experienced transition is counted once: each day after day 0, each training user
    days = policy.epochs * (SMOKE.simulation.n_days - 1)
    visits = q.group_by("agent").agg(pl.col("visits").sum())["visits"]
    assert (visits == days * training.size).all()
    visited = q.group_by("agent", "state").agg(pl.col("visits").sum()).filter(pl.col("visits") > 0)
    assert (q.filter(pl.col("visits") == 0)["q"] == 0).all() and (q.filter(pl.col("visits") > 0)["q"] != 0).any()
    agents = AgentSet.from_bytes((root / "q_agents" / f"scenario=baseline/seed={SEED}" / "q_agents.npz").read_bytes())
    assert list(agents) == list(AGENTS) and q_table_frame(agents).equals(q)  # the table reports the stored agents
    assert 0 < visited.height < len(AGENTS) * N_STATES
    assert (root / "q_table" / f"scenario=baseline/seed={SEED}" / "esmr_greedy_actions.png").stat().st_size > 0


def test_learning_curve_has_every_epoch_and_the_reward_parts(smoke_run):
    root, _, table = smoke_run
    curve = table("q_learning_curve")
    assert curve.height == len(AGENTS) * SMOKE.policy.epochs
    for row in curve.iter_rows(named=True):
        alpha = 0.0 if row["agent"] == "esmr_no_emotion" else SMOKE.policy.alpha
        engagement = 0.0 if row["agent"] == "esmr_no_engagement" else 1.0
        expected = engagement * row["mean_r_eng"] + alpha * row["mean_r_emo"] + SMOKE.policy.beta * row["mean_r_cause"]
        assert row["mean_reward"] == pytest.approx(expected)  # Eq. 8, per agent's weights
    temperatures = curve.filter(pl.col("agent") == "esmr")["temperature"].to_numpy()
    assert np.allclose(temperatures[1:] / temperatures[:-1], SMOKE.policy.temperature_decay)
    assert (root / "q_learning_curve" / f"scenario=baseline/seed={SEED}" / "mean_reward_per_epoch.png").stat().st_size > 0


def test_bandit_learners_store_every_bandit_and_feed_esmr_igl(smoke_run):
    root, result, table = smoke_run
    policies = table("bandit_coefficients")
    assert policies["policy"].unique(maintain_order=True).to_list() == list(BANDITS)
    assert policies.height == len(BANDITS) * len(ACTIONS) * N_CONTEXT and policies["coef"].is_finite().all()
    learners = BanditLearners.from_bytes(
        (root / "bandit_learners" / f"scenario=baseline/seed={SEED}" / "bandit_learners.pt").read_bytes(), SMOKE.policy, SEED
    )
    assert bandit_table(learners).equals(policies)
    meta = metadata(result, "bandit_learners")
    assert "decoded_accuracy" in meta["training"].value
    # esmr_igl's R_eng is the decoded reward: a mean of values in {1 - 2/alpha, 0, 1}, not the watch/scroll ratio.
    curve = table("q_learning_curve")
    igl_eng = curve.filter(pl.col("agent") == "esmr_igl")["mean_r_eng"]
    assert igl_eng.len() == SMOKE.policy.epochs
    assert ((igl_eng >= 1 - 2 / SMOKE.policy.igl_alpha) & (igl_eng <= 1)).all()
    assert not np.allclose(igl_eng.to_numpy(), curve.filter(pl.col("agent") == "esmr")["mean_r_eng"].to_numpy())
