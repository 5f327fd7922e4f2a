"""Each equation and distribution of paper §3.1 against its definition, at fixed seeds."""

from dataclasses import replace

import numpy as np
import polars as pl
import pytest
from scipy import stats

from esmr_assets.core import portable
from esmr_assets.core.rng import stream
from esmr_assets.core.settings import load_settings
from esmr_assets.core.vocabulary import PROFILES, TRUE_EMOTIONS
from esmr_assets.sim import content, day, population
from esmr_assets.sim.affect import (
    BEHAVIOUR,
    behaviour_multipliers,
    memberships,
    true_emotion,
    update_latent,
)
from esmr_assets.sim.poisson import poisson_quantiles

N = 40_000


@pytest.fixture(scope="module")
def big_pool() -> pl.DataFrame:
    return content.simulate_videos(N, stream(11, "videos"))


@pytest.fixture(scope="module")
def big_population() -> pl.DataFrame:
    settings = load_settings("paper", {"simulation": {"n_users": N}}, whole_graph=False).simulation
    return population.simulate_users(settings, stream(11, "users"))


def clipped_normal_mean(mu: float, sigma: float, lo: float, hi: float) -> float:
    a, b = (lo - mu) / sigma, (hi - mu) / sigma
    n = stats.norm
    return lo * n.cdf(a) + hi * n.sf(b) + mu * (n.cdf(b) - n.cdf(a)) - sigma * (n.pdf(b) - n.pdf(a))


def test_duration_is_clipped_gaussian(big_pool):
    d = big_pool["duration_s"]
    assert d.min() >= 10 and d.max() <= 90
    expected = clipped_normal_mean(30, 15, 10, 90)
    assert abs(d.mean() - expected) < 4 * 15 / np.sqrt(N)
    # Clipping puts a point mass at 10 s: P(N(30,15) < 10) ~ 9.1 %.
    assert abs((d == 10).mean() - stats.norm.cdf(-20 / 15)) < 0.01


def test_emotion_frequencies_follow_the_imbalanced_distribution(big_pool):
    counts = big_pool["emotion"].value_counts()
    observed = dict(zip(counts["emotion"].cast(pl.String), counts["count"]))
    freq = np.array([observed[e] for e in content.EMOTIONS]) / N
    assert np.all(np.abs(freq - content.EMOTION_SHARES) < 4 * np.sqrt(0.25 / N))
    top3 = set(np.array(content.EMOTIONS)[np.argsort(-freq)[:3]])
    assert top3 == {"excited", "happy", "anxious"}


def test_intensity_follows_emotion_specific_gaussians(big_pool):
    for k, emotion in enumerate(content.EMOTIONS):
        x = big_pool.filter(pl.col("emotion") == emotion)["intensity"].to_numpy().astype(float)
        assert x.min() >= 1 and x.max() <= 10
        # Rounding and clipping move the mean a little; the sd of the clipped draw is at most sd.
        assert abs(x.mean() - content.INTENSITY_MEAN[k]) < 0.25, emotion
        assert x.std() <= content.INTENSITY_SD[k] + 0.1, emotion


def test_engagement_score_is_the_composite_product(big_pool):
    row = big_pool.row(0, named=True)
    cat = content.CATEGORIES.index(row["category"])
    expected = (
        content.CATEGORY_BASE_ENGAGEMENT[cat]
        * (30.0 / row["duration_s"]) ** 0.3
        * row["intensity"]
        / 10
        * (0.4 + row["arousal"])
        * row["virality"]
    )
    assert row["engagement_score"] == pytest.approx(expected)
    assert row["engagement"] == pytest.approx(1 - np.exp(-expected / content.ENGAGEMENT_SCALE))
    # virality is lognormal(0, 0.5): the log has mean 0 and sd 0.5
    logv = np.log(big_pool["virality"].to_numpy())
    assert abs(logv.mean()) < 0.02 and abs(logv.std() - 0.5) < 0.02


def test_high_arousal_content_engages_more_and_more_variably(big_pool):
    stats_by = big_pool.group_by("emotion").agg(pl.col("engagement").mean().alias("m"), pl.col("engagement").std().alias("s"))
    m = dict(zip(stats_by["emotion"].cast(pl.String), stats_by["m"]))
    s = dict(zip(stats_by["emotion"].cast(pl.String), stats_by["s"]))
    assert min(m["excited"], m["anxious"], m["angry"]) > max(m["neutral"], m["disappointed"], m["lonely"])
    # excited varies more than disappointed in raw score (paper §3.1.1)
    raw = big_pool.group_by("emotion").agg(pl.col("engagement_score").std().alias("s"))
    raw_s = dict(zip(raw["emotion"].cast(pl.String), raw["s"]))
    assert raw_s["excited"] > raw_s["disappointed"]
    assert s  # computed for every emotion


def test_profile_shares_and_parameters(big_population):
    shares = big_population["profile"].value_counts(normalize=True)
    observed = dict(zip(shares["profile"].cast(pl.String), shares["proportion"]))
    for p, expected in zip(PROFILES, (0.5, 0.35, 0.15)):
        assert abs(observed[p] - expected) < 4 * np.sqrt(0.25 / N)
    first = big_population.group_by("profile").agg(pl.col("watch_low").first(), pl.col("scroll_shape").first())
    lows = dict(zip(first["profile"].cast(pl.String), first["watch_low"]))
    assert lows["casual"] < lows["engaged"] < lows["highly_active"]


def test_session_draws_follow_eq1(big_population):
    settings = load_settings("paper", {"simulation": {"n_users": N}}, whole_graph=False).simulation
    pop = population.Population.from_frame(big_population)
    noise = day.draw_day_noise(stream(3, "user_day", 0, 2), pop, 2, 4, settings)
    for k in range(3):
        mask = pop.profile == k
        g = noise.scroll_gamma[mask]
        shape, scale = population.SCROLL_SHAPE[k], population.SCROLL_SCALE[k]
        assert abs(g.mean() - shape * scale) < 4 * np.sqrt(shape) * scale / np.sqrt(mask.sum())
        assert abs(g.var() / (shape * scale**2) - 1) < 0.1
    # Eq. 7: the Dirichlet preference has mean alpha / sum(alpha)
    mean_pref = noise.preference.mean(axis=0)
    expected = (pop.alpha / pop.alpha.sum(axis=1, keepdims=True)).mean(axis=0)
    assert np.allclose(mean_pref, expected, atol=0.01)
    assert np.allclose(noise.preference.sum(axis=1), 1.0)
    assert noise.partial_view.min() >= 0.2 and noise.partial_view.max() <= 0.7


def test_engaged_users_concentrate_preferences_casual_users_spread(big_population):
    pop = population.Population.from_frame(big_population)
    top_share = (pop.alpha.max(axis=1) / pop.alpha.sum(axis=1))
    assert top_share[pop.profile == 0].max() == pytest.approx(0.25)
    assert top_share[pop.profile == 1].mean() > 0.4


def test_session_multiplier_eq2():
    spike = np.array([True, False])
    value = np.array([1.5, 1.7])
    assert day.session_multiplier(0, spike, value).tolist() == [1.5, 1.0]  # Monday
    assert day.session_multiplier(5, spike, value).tolist() == [1.5, 1.2]  # Saturday
    assert day.session_multiplier(13, spike, value).tolist() == [1.5, 1.2]  # Sunday


def test_smoothed_trend_eq5():
    prev = np.array([0.0, 0.5, -1.0])
    e = np.array([20.0, 5.0, 14.0])
    assert day.smoothed_trend(prev, e, 14.0) == pytest.approx([0.2, 0.2, -0.8])


def test_churn_probability_eq6():
    settings = load_settings("paper").simulation
    p = day.churn_probability(np.array([-4.0, -4.0, -4.0]), np.array([0.0, 1.0, 0.0]), np.array([0.5, 0.5, -0.5]), settings)
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    assert p == pytest.approx([sig(-4.0), sig(-4.0 + settings.churn_trend_weight), sig(-4.0 - 0.5 * settings.churn_valence_weight)])
    assert p[1] < p[0] < p[2]  # rising engagement protects, low valence exposes


def test_churn_and_reengagement_rule():
    settings = load_settings("paper").simulation
    n = 4
    state = day.UserState(
        valence=np.zeros(n), arousal=np.zeros(n), engagement_trend=np.zeros(n),
        churned=np.array([False, False, True, True]), last_intensity=np.zeros(n),
    )
    pop = population.Population.from_frame(population.simulate_users(load_settings("paper", {"simulation": {"n_users": n}}, whole_graph=False).simulation, stream(0, "users")))
    phi = day.churn_probability(pop.churn_propensity, state.engagement_trend, state.valence, settings)
    u = np.array([phi[0] / 2, min(phi[1] * 2, 0.99), 0.05, 0.5])
    noise = replace(day.draw_day_noise(stream(0, "user_day", 0, 0), pop, 0, 4, settings), churn_uniform=u)
    assert day.churn_today(state, pop, noise, settings).tolist() == [True, False, False, True]


def test_poisson_by_inverse_cdf_has_poisson_moments():
    rng = np.random.default_rng(0)
    lam = np.full(200_000, 3.5)
    x = poisson_quantiles(rng.random(lam.size), lam)
    assert abs(x.mean() - 3.5) < 0.02 and abs(x.var() - 3.5) < 0.05
    assert poisson_quantiles(np.array([0.3]), np.array([0.0])).tolist() == [0]


def test_true_emotion_regions():
    v = np.array([0.5, 0.5, 0.0, -0.5, -0.5, 0.5])
    a = np.array([0.3, 0.8, 0.5, 0.7, 0.2, 0.3])
    churned = np.array([False] * 5 + [True])
    labels = [TRUE_EMOTIONS[i] for i in true_emotion(v, a, churned)]
    assert labels == ["happy", "excited", "neutral", "stressed", "disappointed", "churned"]


def test_memberships_are_a_partition_and_peak_in_their_region():
    v = np.array([0.8, 0.8, 0.0, -0.8, -0.8])
    a = np.array([0.2, 0.95, 0.5, 0.9, 0.1])
    m = memberships(v, a)
    assert np.allclose(m.sum(axis=1), 1.0)
    assert m.argmax(axis=1).tolist() == [0, 1, 2, 3, 4]


def test_latent_update_moves_toward_content_and_baseline():
    kw = dict(
        baseline_valence=np.zeros(2), baseline_arousal=np.full(2, 0.5), recovery_rate=np.full(2, 0.2),
        susceptibility=np.full(2, 0.4), content_arousal=np.full(2, 0.5), watch_minutes=np.full(2, 30.0),
        engagement_trend=np.zeros(2), engagement_valence_effect=0.03, valence_noise=np.zeros(2), arousal_noise=np.zeros(2),
    )
    v, _ = update_latent(np.zeros(2), np.full(2, 0.5), content_valence=np.array([0.5, -0.5]), **kw)
    dose = 1 - np.exp(-30 / 15)
    assert v == pytest.approx([0.4 * dose * 0.5, -0.4 * dose * 0.5])
    v2, _ = update_latent(np.full(2, 0.9), np.full(2, 0.5), content_valence=np.zeros(2), **kw)
    assert v2 == pytest.approx([0.9 - 0.2 * 0.9] * 2)  # recovery toward the baseline


def test_emotion_signal_scales_the_multipliers_deviation_from_one():
    """sigma = 1 is the table mixed by membership, bit for bit; 0 removes emotion from
    behaviour; 2 doubles every deviation from 1 (above the floor)."""
    rng = np.random.default_rng(0)
    v, a = rng.uniform(-1, 1, 200), rng.uniform(0, 1, 200)
    m = memberships(v, a)
    designed = behaviour_multipliers(v, a)
    assert all(np.array_equal(designed[k], portable.matmul(m, table)) for k, table in BEHAVIOUR.items())
    assert all(np.allclose(designed[k], m @ table, rtol=1e-14) for k, table in BEHAVIOUR.items())
    assert all(np.array_equal(behaviour_multipliers(v, a, 1.0)[k], designed[k]) for k in BEHAVIOUR)
    assert all(np.all(x == 1.0) for x in behaviour_multipliers(v, a, 0.0).values())
    doubled = behaviour_multipliers(v, a, 2.0)
    for k in BEHAVIOUR:
        expected = 1 + 2 * (designed[k] - 1)
        assert np.allclose(doubled[k], np.maximum(expected, 0.05)), k
    assert min(x.min() for x in behaviour_multipliers(v, a, 4.0).values()) == 0.05  # floored, never negative


def test_users_loud_when_upset_take_the_opposite_valences_interactions():
    """`outraged_logs`: deep in a region, a flagged user's likes, comments and shares take the
    multipliers of the state of opposite valence at the same arousal; the rest is unchanged."""
    v, a = np.array([-0.9, -0.9, 0.9, 0.9, 0.0]), np.array([0.9, 0.1, 0.1, 0.95, 0.5])  # stressed, disappointed, happy, excited, neutral
    loud = np.array([True, True, True, True, False])
    designed, swapped = behaviour_multipliers(v, a), behaviour_multipliers(v, a, 1.0, loud)
    column = {name: TRUE_EMOTIONS.index(name) for name in ("happy", "excited", "neutral", "stressed", "disappointed")}
    opposite = {"stressed": "excited", "disappointed": "happy", "happy": "disappointed", "excited": "stressed"}
    for row, state in enumerate(("stressed", "disappointed", "happy", "excited")):
        for name in ("like", "comment", "share"):
            assert swapped[name][row] == pytest.approx(BEHAVIOUR[name][column[opposite[state]]], abs=0.02), (state, name)
    assert swapped["like"][0] > 2 * designed["like"][0]  # a stressed outraged user likes like an excited one
    for name in set(BEHAVIOUR) - {"like", "comment", "share"}:
        assert np.array_equal(swapped[name], designed[name])
    assert all(np.array_equal(swapped[name][4], designed[name][4]) for name in BEHAVIOUR)  # unflagged


def test_content_effect_scales_only_the_content_terms():
    kw = dict(
        baseline_valence=np.zeros(2), baseline_arousal=np.full(2, 0.5), recovery_rate=np.full(2, 0.2),
        susceptibility=np.full(2, 0.4), content_arousal=np.full(2, 0.9), watch_minutes=np.full(2, 30.0),
        engagement_trend=np.full(2, 0.5), engagement_valence_effect=0.03, valence_noise=np.zeros(2),
        arousal_noise=np.zeros(2),
    )
    start = (np.full(2, 0.1), np.full(2, 0.4))
    designed = update_latent(*start, content_valence=np.array([0.5, -0.5]), **kw)
    assert all(np.array_equal(x, y) for x, y in zip(update_latent(*start, content_valence=np.array([0.5, -0.5]),
                                                                   content_effect=1.0, **kw), designed))
    none = update_latent(*start, content_valence=np.array([0.5, -0.5]), content_effect=0.0, **kw)
    unwatched = update_latent(*start, content_valence=np.zeros(2), **{**kw, "content_arousal": np.full(2, 0.5)})
    assert np.allclose(none[0], unwatched[0]) and np.allclose(none[1], unwatched[1])  # content moves nothing
    assert none[0][0] == none[0][1]  # positive and negative content land in the same place
    double = update_latent(*start, content_valence=np.array([0.5, -0.5]), content_effect=2.0, **kw)
    assert np.allclose(double[0] - none[0], 2 * (designed[0] - none[0]))
    assert np.allclose(double[1] - none[1], 2 * (designed[1] - none[1]))


def _scroll_in_numpy(feed, valid, skip_scale, pool, noise):
    """The feeds' scrolling as numpy computed it before the compiled pass."""
    cat_cells = np.arange(feed.shape[0])[:, None] * skip_scale.shape[1] + pool.category[feed]
    p_skip = skip_scale.ravel()[cat_cells] * (1.0 - pool.engagement[feed])
    np.clip(p_skip, *day.SKIP_PROBABILITY_BOUNDS, out=p_skip)
    skipped = noise.skip_uniform < p_skip
    seconds = pool.duration_s[feed] * np.where(skipped, noise.partial_view, np.float32(1.0))
    seconds *= valid
    return skipped, seconds, np.cumsum(seconds, axis=1) - seconds


def test_scrolling_the_feeds_equals_numpys_float32_arithmetic():
    settings = load_settings("paper", {"simulation": {"n_users": 300}}, whole_graph=False).simulation
    pool = content.VideoPool.from_frame(content.simulate_videos(settings.n_videos, stream(4, "videos")))
    pop = population.Population.from_frame(population.simulate_users(settings, stream(4, "users")))
    noise = day.draw_day_noise(stream(4, "user_day", 0, 0), pop, 0, settings.feed_length, settings)
    rng = np.random.default_rng(4)
    feed = rng.integers(0, pool.size, (pop.size, settings.feed_length))
    valid = np.arange(settings.feed_length)[None, :] < rng.integers(0, settings.feed_length + 1, (pop.size, 1))
    skip_scale = rng.uniform(0.3, 2.5, (pop.size, 4)).astype(np.float32)
    got = day.scroll_feeds(feed, valid, skip_scale, pool, noise)
    for mine, numpys in zip(got, _scroll_in_numpy(feed, valid, skip_scale, pool, noise)):
        assert mine.dtype == numpys.dtype
        np.testing.assert_array_equal(mine, numpys)
    with pytest.raises(ValueError, match="outside"):
        day.scroll_feeds(np.full_like(feed, pool.size), valid, skip_scale, pool, noise)
    with pytest.raises(ValueError, match="one shape"):
        day.scroll_feeds(feed[:, :10], valid[:, :10], skip_scale, pool, noise)
