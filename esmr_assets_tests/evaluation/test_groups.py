"""Results per communication style (evaluation/groups.py): ratios and paired effects against
a hand recomputation, bootstrap intervals that cover the estimate and widen for small groups,
and in a closed loop with outraged users, the like bandit serving them more distress."""

import numpy as np
import polars as pl
import pytest

from esmr_assets.core.settings import load_settings
from esmr_assets.emotion.labeller import DailyLabeller
from esmr_assets.evaluation.effects import user_metrics
from esmr_assets.evaluation.groups import (
    effects_by_style,
    signal_value_lift,
    style_user_values,
)
from esmr_assets.policy.loop.bandits import BanditPolicy, new_learner
from esmr_assets.policy.loop.rollouts import rollout
from esmr_assets.sim.environment import ClosedLoopEnv

OUTRAGED_30 = {"expressive": 0.28, "critical": 0.21, "passive": 0.21, "outraged": 0.3}


def synthetic_values(n: int = 400, seed: int = 0) -> pl.DataFrame:
    """Two policies over the same users of two styles (the second rare), with known sums."""
    rng = np.random.default_rng(seed)
    style = np.where(rng.random(n) < 0.8, "a", "b")
    frames = []
    for policy, shift in (("lightgbm", 0.0), ("cb_like", 0.1)):
        shown = rng.integers(50, 150, n).astype(float)
        negative = rng.binomial(shown.astype(int), np.where(style == "b", 0.3 + shift, 0.15)).astype(float)
        frames.append(pl.DataFrame({
            "policy": policy, "oracle": False, "user_id": np.arange(n, dtype=np.int32), "negative_impressions": negative,
            "positive_impressions": np.floor(shown * 0.1), "n_impressions": shown,
            "decoded_agree": np.floor(shown * 0.6) if policy == "cb_like" else 0.0,
            "rounds": shown if policy == "cb_like" else None,
            "negative_days": rng.integers(0, 10, n).astype(float), "mean_latent_valence": rng.normal(0, 0.2, n),
            "engagement_reward": rng.normal(1, 0.5, n),
            "feedback_style": pl.Series(style, dtype=pl.Enum(["a", "b"])), "one": 1.0,
        }))
    return pl.concat(frames, how="vertical_relaxed")


def test_ratios_and_paired_effects_match_a_hand_recomputation():
    values = synthetic_values()
    effects = effects_by_style(values, "lightgbm", 2000, np.random.default_rng(1))
    assert effects["feedback_style"].unique(maintain_order=True).to_list() == ["a", "b"]
    for style in ("a", "b"):
        mine = values.filter(pl.col("feedback_style") == style)
        share = {p: mine.filter(pl.col("policy") == p).select(pl.col("negative_impressions").sum()
                                                               / pl.col("n_impressions").sum()).item()
                 for p in ("lightgbm", "cb_like")}
        row = effects.filter((pl.col("feedback_style") == style) & (pl.col("policy") == "cb_like")
                             & (pl.col("metric") == "negative_share")).row(0, named=True)
        assert row["value"] == pytest.approx(share["cb_like"]) and row["effect"] == pytest.approx(share["cb_like"] - share["lightgbm"])
        assert row["value_ci95_low"] < row["value"] < row["value_ci95_high"] and row["ci95_low"] < row["effect"] < row["ci95_high"]
        assert row["users"] == mine["user_id"].n_unique()
        days = mine.filter(pl.col("policy") == "cb_like")["negative_days"].mean()
        assert effects.filter((pl.col("feedback_style") == style) & (pl.col("policy") == "cb_like")
                              & (pl.col("metric") == "negative_days"))["value"].item() == pytest.approx(days)
    width = effects.filter(pl.col("metric") == "negative_share").with_columns(
        (pl.col("ci95_high") - pl.col("ci95_low")).alias("w")).filter(pl.col("policy") == "cb_like")
    assert width.filter(pl.col("feedback_style") == "b")["w"].item() > width.filter(pl.col("feedback_style") == "a")["w"].item()
    b = effects.filter((pl.col("feedback_style") == "b") & (pl.col("policy") == "cb_like") & (pl.col("metric") == "negative_share"))
    assert b["ci95_low"].item() > 0  # the planted +0.1 in the rare style is found
    reference = effects.filter(pl.col("policy") == "lightgbm")
    assert reference["effect"].is_null().all() and reference.filter(pl.col("metric") == "decoded_accuracy")["value"].is_null().all()
    learner = effects.filter((pl.col("policy") == "cb_like") & (pl.col("metric") == "decoded_accuracy"))
    assert learner["value"].to_list() == pytest.approx([0.6, 0.6], abs=0.01) and learner["effect"].is_null().all()
    again = effects_by_style(values, "lightgbm", 2000, np.random.default_rng(1))
    assert again.equals(effects)


def test_a_missing_reference_is_named():
    with pytest.raises(ValueError, match="reference policy 'random'"):
        effects_by_style(synthetic_values(), "random", 2000, np.random.default_rng(0))


@pytest.fixture(scope="module")
def outraged_world(feed_world):
    settings = load_settings("smoke", {"simulation": {"n_users": 120, "seen_window_days": 0,
                                                      "feedback_style_shares": OUTRAGED_30}})
    return settings, feed_world(settings.simulation, 6)


def test_the_like_bandit_serves_outraged_users_more_distress(outraged_world, threshold_model):
    """With 30 % outraged users, a bandit rewarded for likes learns to serve them what upsets
    them: their r = -1 share is above the expressive users' (whose likes are honest)."""
    settings, (videos, users, feeds) = outraged_world
    policy = BanditPolicy(feeds, new_learner("cb_like", settings.policy, 6), np.random.default_rng(1))
    frames = []
    for episode in range(2):
        env = ClosedLoopEnv(videos, users, settings.simulation, 6, DailyLabeller(threshold_model), episode=episode)
        frames.append(rollout(env, policy, "cb_like"))
    reference = frames[0].with_columns(pl.lit("lightgbm").alias("policy"))  # only the effect's baseline
    learned = pl.concat([reference, frames[1]]).with_columns(pl.lit(False).alias("oracle"))
    values = style_user_values(learned, user_metrics(learned), users)
    effects = effects_by_style(values, "lightgbm", 2000, np.random.default_rng(0))
    share = {r["feedback_style"]: r for r in effects.filter((pl.col("policy") == "cb_like")
                                                            & (pl.col("metric") == "negative_share")).iter_rows(named=True)}
    assert share["outraged"]["value"] > share["expressive"]["value"] + 0.02


def learned_like_lift(name: str, outraged_world, threshold_model) -> dict[str, float]:
    """`signal_value_lift` of likes per style after two closed-loop episodes of the bandit
    `name` with the personal context (as in the igl_styles study), over every round it learned."""
    settings, (videos, users, feeds) = outraged_world
    personal = load_settings("smoke", {"policy": {"bandit_context": "personal"}}).policy
    policy = BanditPolicy(feeds, new_learner(name, personal, 6), np.random.default_rng(1), "personal")
    rounds, learn = [], policy.learn

    def recording_learn(step):
        rounds.append(policy.rounds(step))
        return learn(step)

    policy.learn = recording_learn
    for episode in range(2):
        rollout(ClosedLoopEnv(videos, users, settings.simulation, 6, DailyLabeller(threshold_model), episode=episode),
                policy, name)
    rows, x, actions, y, _ = (np.concatenate(column) for column in zip(*rounds))
    styles = users["feedback_style"].cast(pl.Utf8).to_numpy()[rows]
    return signal_value_lift(policy.learner.bandit, x, actions, y, styles)


def test_only_igl_p3_learns_that_what_outraged_users_like_is_worse(outraged_world, threshold_model):
    """Eq. 4 never decodes a like as negative (test_bandits), but the three-state learner's
    bandit, taught by the definitely-negative rounds of the same contexts and buckets, values
    what outraged users like well below their average (in SDs of its learned reward), and what
    expressive users like above theirs. The like bandit values what outraged users like far
    above their average; the two-state learner, with no negative anchor, lies between."""
    lift = {name: learned_like_lift(name, outraged_world, threshold_model) for name in ("igl_p3", "igl_p2", "cb_like")}
    assert lift["igl_p3"]["outraged"] < -0.5 < 0 < lift["igl_p3"]["expressive"]
    assert lift["cb_like"]["outraged"] > 0.5 and lift["cb_like"]["expressive"] > 0
    assert lift["igl_p3"]["outraged"] < lift["igl_p2"]["outraged"] < lift["cb_like"]["outraged"]


def test_the_igl_predictions_are_checked_from_the_per_style_results():
    """docs/render/studies.py says held or not held from the r = -1 shares, with the figures."""
    from pathlib import Path

    from esmr_assets_tests.conftest import load_renderer

    repo = Path(__file__).resolve().parents[2]
    render_studies = load_renderer("studies")
    study = render_studies.load_study(repo / "studies" / "igl_styles.toml")
    shares = {  # r = -1 share per policy and style: cb_like hurts outraged users, IGL-P(3) is never worst
        "lightgbm": {"expressive": 0.15, "outraged": 0.18}, "cb_like": {"expressive": 0.10, "outraged": 0.25},
        "igl_p3": {"expressive": 0.11, "outraged": 0.12}, "igl_p2": {"expressive": 0.12, "outraged": 0.11},
    }
    outraged_30 = next(scenario for scenario in study.scenarios if scenario.name == "outraged_30")
    rows = [{"scenario": study.cell_scenario(outraged_30), "policy": policy, "oracle": False,
             "feedback_style": style, "metric": "negative_share", "seeds": 5, "value": value,
             "value_ci95_low": value - 0.01, "value_ci95_high": value + 0.01}
            for policy, by_style in shares.items() for style, value in by_style.items()]
    text = render_studies.igl_predictions(pl.DataFrame(rows), study)
    lines = text.splitlines()
    assert lines[0].startswith("- **outraged_30** (seeds: 5), 1. held") and "0.250 [0.240, 0.260]" in lines[0]
    assert lines[1].strip().startswith("2. held") and "outraged: cb_like (0.250)" in lines[1]
    assert lines[2].strip().startswith("3. not held") and "outraged 0.120 vs 0.110" in lines[2]
