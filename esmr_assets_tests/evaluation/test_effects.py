"""Paired per-user effects (evaluation/effects.py): exact zeros for a policy against itself,
coverage of a planted shift, determinism, and the per-user metrics they are built from."""

import io

import numpy as np
import polars as pl
import pytest

from esmr_assets.core.vocabulary import TRUE_EMOTIONS
from esmr_assets.evaluation.effects import (
    USER_METRICS,
    paired_effects,
    pool_replicates,
    replicate_spread,
    resample_counts,
    user_metrics,
)
from esmr_assets.evaluation.metrics import summarise


def synthetic_rollouts(n_users: int = 40, n_days: int = 12, seed: int = 0, policies=("lightgbm", "esmr")):
    """Rollout rows with random labels, minutes and valence for each policy."""
    rng = np.random.default_rng(seed)
    frames = []
    for policy in policies:
        n = n_users * n_days
        frames.append(pl.DataFrame({
            "policy": policy,
            "user_id": np.repeat(np.arange(n_users), n_days).astype(np.int32),
            "day": np.tile(np.arange(n_days), n_users).astype(np.int16),
            "watch_minutes": rng.gamma(2.0, 10.0, n),
            "scroll_minutes": rng.gamma(2.0, 10.0, n),
            "true_valence": rng.normal(0, 0.3, n),
            "predicted_label": rng.choice(TRUE_EMOTIONS, n, p=[0.25, 0.1, 0.2, 0.2, 0.2, 0.05]),
            "true_emotion": rng.choice(TRUE_EMOTIONS, n, p=[0.25, 0.1, 0.2, 0.2, 0.2, 0.05]),
        }))
    return pl.concat(frames)


def synthetic_metrics(values: dict[str, np.ndarray]) -> pl.DataFrame:
    """User metrics of several policies where every metric column holds the same values."""
    return pl.concat(
        pl.DataFrame({"policy": name, "label_source": "true", "user_id": np.arange(len(v), dtype=np.int32),
                      **{m: v.astype(float) for m in USER_METRICS}})
        for name, v in values.items()
    )


def test_user_metrics_average_to_the_population_figures():
    rollouts = synthetic_rollouts()
    metrics = user_metrics(rollouts)
    assert metrics.height == 2 * 2 * 40 and metrics.columns[:4] == ["policy", "oracle", "label_source", "user_id"]
    frame = rollouts.filter(pl.col("policy") == "esmr").sort("user_id", "day")
    shape = (40, 12)
    figures = summarise(frame["true_emotion"].to_numpy().reshape(shape), frame["watch_minutes"].to_numpy().reshape(shape),
                        frame["scroll_minutes"].to_numpy().reshape(shape), frame["true_valence"].to_numpy().reshape(shape))
    mine = metrics.filter((pl.col("policy") == "esmr") & (pl.col("label_source") == "true"))
    for name in ("negative_days", "happy_at_least_once", "volatility", "engagement_reward", "mean_latent_valence",
                 "recovery_time", "full_recovery"):
        assert mine[name].mean() == pytest.approx(figures[name]), name
    assert mine["bounce_rate"].mean() == pytest.approx(figures["bounce_rate"])
    assert mine["full_recovery_eligible"].sum() == figures["full_recovery_eligible"]
    # full recovery is defined only for the eligible users
    assert (mine["full_recovery"].is_null() == (mine["full_recovery_eligible"] == 0)).all()


def test_a_policy_against_an_identical_copy_has_exactly_zero_effect():
    rollouts = synthetic_rollouts()
    copy = rollouts.filter(pl.col("policy") == "lightgbm").with_columns(pl.lit("same").alias("policy"))
    effects = paired_effects(user_metrics(pl.concat([rollouts, copy])), "lightgbm", 500, np.random.default_rng(0))
    same = effects.filter((pl.col("policy") == "same") & pl.col("n").gt(0))
    assert same.height > 0
    assert (same["effect"] == 0).all() and (same["ci95_low"] == 0).all() and (same["ci95_high"] == 0).all()
    assert not (effects.filter(pl.col("policy") == "esmr")["effect"] == 0).all()


def test_effects_pair_users_and_skip_undefined_values():
    base = np.array([1.0, 2.0, 3.0, np.nan])
    other = np.array([2.0, np.nan, 5.0, 7.0])
    effects = paired_effects(synthetic_metrics({"ref": base, "p": other}), "ref", 200, np.random.default_rng(1))
    row = effects.filter(pl.col("metric") == "negative_days").row(0, named=True)
    assert row["n"] == 2 and row["effect"] == pytest.approx(1.5)  # users 0 and 2: +1 and +2
    assert row["reference_mean"] == pytest.approx(2.0) and row["relative_effect"] == pytest.approx(0.75)
    assert 1.0 <= row["ci95_low"] <= row["effect"] <= row["ci95_high"] <= 2.0


def test_the_interval_covers_a_planted_shift():
    """95 % intervals from 200 synthetic repetitions cover the true shift at least 90 % of the time."""
    rng = np.random.default_rng(7)
    shift, covered = 0.3, 0
    for _ in range(200):
        base = rng.normal(0.0, 1.0, 150)
        treated = base + shift + rng.normal(0.0, 0.8, 150)
        effects = paired_effects(synthetic_metrics({"ref": base, "p": treated}), "ref", 2000, rng)
        row = effects.row(0, named=True)
        covered += row["ci95_low"] <= shift <= row["ci95_high"]
    assert covered >= 180


def test_ceiling_share_and_determinism():
    values = {"ref": np.zeros(30), "p": np.full(30, 1.0), "oracle_best_feed": np.full(30, 4.0)}
    first = paired_effects(synthetic_metrics(values), "ref", 300, np.random.default_rng(3), ceiling="oracle_best_feed")
    shares = first.filter(pl.col("metric") == "negative_days")["share_of_ceiling"].to_list()
    assert shares == [0.25, 1.0]
    again = paired_effects(synthetic_metrics(values), "ref", 300, np.random.default_rng(3), ceiling="oracle_best_feed")

    def parquet(frame: pl.DataFrame) -> bytes:
        buffer = io.BytesIO()
        frame.write_parquet(buffer)
        return buffer.getvalue()

    assert parquet(first) == parquet(again)


def test_resample_counts_draw_every_user_equally():
    counts = resample_counts(5, 4000, np.random.default_rng(0))
    assert counts.shape == (4000, 5) and (counts.sum(axis=1) == 5).all()
    assert np.allclose(counts.mean(axis=0), 1.0, atol=0.05)


def test_missing_reference_is_named():
    with pytest.raises(ValueError, match="reference policy 'nope'"):
        paired_effects(synthetic_metrics({"ref": np.zeros(3)}), "nope", 100, np.random.default_rng(0))


def test_a_policy_measured_on_one_label_source_only_is_compared_there():
    metrics = synthetic_metrics({"ref": np.zeros(5), "p": np.ones(5)})
    predicted = metrics.filter(pl.col("policy") == "ref").with_columns(pl.lit("predicted").alias("label_source"))
    effects = paired_effects(pl.concat([metrics, predicted]), "ref", 200, np.random.default_rng(0))
    assert set(effects.select("policy", "label_source").unique().rows()) == {("p", "true")}


def test_pooled_replicates_average_the_replicates_and_report_their_spread():
    """esmr, esmr@1, esmr@2: the pooled effect is the mean of the three effects (all
    defined), its replicate_sd their sample SD; the other rows carry no spread."""
    rng = np.random.default_rng(3)
    base = rng.normal(size=50)
    shifts = {"esmr": 0.1, "esmr@1": 0.5, "esmr@2": -0.3}
    metrics = synthetic_metrics({"lightgbm": base, **{k: base + s + rng.normal(0, 0.1, 50) for k, s in shifts.items()},
                                 "random": base + 1.0})
    pooled = pool_replicates(metrics)
    assert pooled.filter(pl.col("policy") == "esmr@all").height == 50
    assert pooled["policy"].unique(maintain_order=True).to_list() == [
        "lightgbm", "esmr", "esmr@1", "esmr@2", "esmr@all", "random"]  # pooled after its replicates
    effects = replicate_spread(paired_effects(pooled, "lightgbm", 2000, np.random.default_rng(0)))
    rows = effects.filter(pl.col("metric") == "negative_days")
    each = {p: rows.filter(pl.col("policy") == p)["effect"][0] for p in shifts}
    all_row = rows.filter(pl.col("policy") == "esmr@all")
    assert all_row["effect"][0] == pytest.approx(np.mean(list(each.values())))
    assert all_row["replicate_sd"][0] == pytest.approx(np.std(list(each.values()), ddof=1))
    assert all_row["replicates"][0] == 3 and all_row["ci95_low"][0] < all_row["effect"][0] < all_row["ci95_high"][0]
    assert rows.filter(pl.col("policy") != "esmr@all")["replicate_sd"].null_count() == 4
    # without replicates nothing is pooled, and the effects are those of paired_effects alone
    plain = synthetic_metrics({"lightgbm": base, "random": base + 1.0})
    assert pool_replicates(plain).equals(plain)
