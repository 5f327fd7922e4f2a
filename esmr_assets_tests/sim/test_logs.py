"""Algorithm 1, the logs it produces, their checks, and the latent emotion model's effect."""

from dataclasses import replace

import numpy as np
import polars as pl
import pytest

from esmr_assets.core.rng import stream
from esmr_assets.core.schemas import LATENT_COLUMNS
from esmr_assets.core.settings import load_settings
from esmr_assets.core.vocabulary import EMOTIONS, TRUE_EMOTIONS
from esmr_assets.sim import causal_graph, logging_policy, validation
from esmr_assets.sim.content import VideoPool, simulate_videos
from esmr_assets.sim.day import UserState, churn_today, draw_day_noise, simulate_day
from esmr_assets.sim.logging_policy import logging_feed, mixture_weights, top_k_feed
from esmr_assets.sim.logs import simulate_logs
from esmr_assets.sim.population import Population, simulate_users

SMOKE = load_settings("smoke").simulation
MEDIUM = load_settings("paper", {"simulation": {"n_users": 300}}, whole_graph=False).simulation


@pytest.fixture(scope="module")
def smoke_tables():
    videos = simulate_videos(SMOKE.n_videos, stream(5, "videos"))
    users = simulate_users(SMOKE, stream(5, "users"))
    logs, impressions = simulate_logs(videos, users, SMOKE, 5)
    return videos, users, logs, impressions


@pytest.fixture(scope="module")
def medium_tables():
    videos = simulate_videos(MEDIUM.n_videos, stream(1, "videos"))
    users = simulate_users(MEDIUM, stream(1, "users"))
    logs, impressions = simulate_logs(videos, users, MEDIUM, 1)
    return videos, users, logs, impressions


def test_mixture_weights_follow_the_70_30_rule():
    videos = simulate_videos(1000, stream(2, "videos"))
    pool = VideoPool.from_frame(videos)
    w = mixture_weights(pool, MEDIUM)
    assert np.allclose(w.sum(axis=1), 1.0)
    for k in range(4):
        members = np.flatnonzero(pool.category == k)
        n_top = int(np.ceil(0.25 * members.size))
        top = members[np.argsort(-pool.engagement[members])[:n_top]]
        rest = np.setdiff1d(members, top)
        assert w[k, top].sum() == pytest.approx(0.7 + 0.3 * n_top / members.size)
        assert np.allclose(w[k, rest], 0.3 / members.size)
        assert w[k, np.setdiff1d(np.arange(1000), members)].sum() == 0


def test_top_k_feed_samples_in_proportion_to_weight_without_replacement():
    rng = np.random.default_rng(0)
    weights = np.tile(np.array([4.0, 2.0, 1.0, 1.0, 0.0]), (40_000, 1))
    feed, valid = top_k_feed(weights, rng, 3)
    first = np.bincount(feed[:, 0], minlength=5) / len(feed)
    assert first == pytest.approx([0.5, 0.25, 0.125, 0.125, 0.0], abs=0.01)
    assert valid.all() and all(len(set(r)) == 3 for r in feed[:100])
    assert not (feed == 4).any()  # zero weight is never sampled
    short_feed, short_valid = top_k_feed(weights[:5], rng, 5)
    assert short_valid.sum(axis=1).tolist() == [4] * 5  # the zero-weight video is not a valid entry


def _sorted_top(keys: np.ndarray, f: int, feed_length: int) -> tuple[np.ndarray, np.ndarray]:
    """The definition: each row stably sorted by descending key, cut at f, valid where positive."""
    order = np.argsort(-keys, axis=1, kind="stable")[:, :f]
    ranked = np.take_along_axis(keys, order, axis=1)
    feed = np.where(ranked > 0, order, 0).astype(np.int32)
    pad = ((0, 0), (0, feed_length - f))
    return np.pad(feed, pad), np.pad(ranked > 0, pad)


@pytest.mark.parametrize("feed_length", [1, 7, 40, 50, 64])
def test_top_k_feed_is_a_stable_sort_by_key_cut_at_the_feed(feed_length):
    """The keys of the Gumbel-top-k trick, ranked: zero weights (seen videos) end the feed, and
    a feed longer than the pool is padded."""
    weights = np.random.default_rng(3).integers(0, 4, (300, 50)).astype(np.float32) / 4
    exponential = np.maximum(np.random.default_rng(4).standard_exponential(weights.shape, dtype=np.float32),
                             np.float32(1e-30))
    feed, valid = top_k_feed(weights.copy(), np.random.default_rng(4), feed_length)
    expected_feed, expected_valid = _sorted_top(weights / exponential, min(feed_length, 50), feed_length)
    np.testing.assert_array_equal(feed, expected_feed)
    np.testing.assert_array_equal(valid, expected_valid)


@pytest.mark.parametrize("f", [1, 5, 29, 30])
def test_ranked_top_breaks_ties_by_the_lower_id(f):
    keys = np.random.default_rng(5).integers(0, 4, (500, 30)).astype(np.float32)  # many ties, zeros too
    feed, valid = np.zeros((500, f), np.int32), np.zeros((500, f), np.bool_)
    logging_policy._ranked_top(keys.view(np.uint32), f, feed, valid)
    expected_feed, expected_valid = _sorted_top(keys, f, f)
    np.testing.assert_array_equal(feed, expected_feed)
    np.testing.assert_array_equal(valid, expected_valid)


def test_top_k_feed_refuses_negative_weights():
    with pytest.raises(ValueError, match="non-negative"):
        top_k_feed(np.array([[0.5, -0.1, 0.2]]), np.random.default_rng(0), 2)


def test_seen_filter_excludes_recent_videos():
    rng = np.random.default_rng(1)
    pool = VideoPool.from_frame(simulate_videos(50, stream(2, "videos")))
    last_seen = np.full((2, 50), -(10**6))
    last_seen[0, :45] = 7  # seen yesterday
    settings = load_settings("smoke", {"simulation": {"feed_length": 10}}).simulation
    feed, valid = logging_feed(np.full((2, 4), 0.25), mixture_weights(pool, settings), last_seen, 8, settings, rng)
    assert set(feed[0][valid[0]]) <= set(range(45, 50)) and valid[0].sum() <= 5
    assert valid[1].all()


def test_logs_pass_every_contract_check(smoke_tables):
    videos, users, logs, impressions = smoke_tables
    outcomes = (
        validation.check_videos(videos, SMOKE)
        + validation.check_users(users, SMOKE)
        + validation.check_user_day_logs(logs, SMOKE)
        + validation.check_impressions(impressions, logs, videos, SMOKE)
    )
    failed = [o.name for o in outcomes if o.severity == "error" and not o.passed]
    assert failed == []
    assert logs.height == SMOKE.n_users * SMOKE.n_days
    features = [c for c in logs.columns if c not in ("user_id", "day", "profile", *LATENT_COLUMNS)]
    assert len(features) >= 25


def test_check_names_match_declared_specs(smoke_tables):
    videos, users, logs, impressions = smoke_tables
    produced = {
        "videos": validation.check_videos(videos, SMOKE),
        "users": validation.check_users(users, SMOKE),
        "user_day_logs": validation.check_user_day_logs(logs, SMOKE),
        "impressions": validation.check_impressions(impressions, logs, videos, SMOKE),
    }
    for table, outcomes in produced.items():
        assert tuple(o.name for o in outcomes) == validation.CHECK_NAMES[table]


@pytest.mark.parametrize(
    "corrupt, table, check",
    [
        (lambda t: t.head(t.height - 1), "user_day_logs", "row_count"),
        (lambda t: t.with_columns(pl.lit(-1, dtype=pl.Int32).alias("likes")), "user_day_logs", "value_ranges"),
        (lambda t: t.with_columns(pl.col("watch_minutes").cast(pl.Float32)), "user_day_logs", "schema"),
        (lambda t: pl.concat([t, t.head(1)]), "user_day_logs", "unique_user_id_day"),
        (lambda t: t.with_columns(pl.when(pl.col("day") == 0).then(None).otherwise(pl.col("engagement")).alias("engagement")), "user_day_logs", "no_nulls"),
        (lambda t: t.with_columns(pl.col("n_skipped") + 1), "user_day_logs", "watched_plus_skipped"),
        (lambda t: t.with_columns(pl.when(pl.col("churned")).then(3).otherwise(pl.col("logins")).alias("logins")), "user_day_logs", "churned_days_idle"),
        (lambda t: t.with_columns(pl.col("seconds") * 10), "impressions", "seconds_within_duration"),
        (lambda t: t.filter(pl.col("position") != 0), "impressions", "matches_user_day_logs"),
        (lambda t: pl.concat([t, t.filter(pl.col("day") == 0).with_columns(pl.lit(2, pl.Int16).alias("day"))]), "impressions", "seen_window"),
    ],
)
@pytest.mark.parametrize("user_chunk", [None, 16], ids=["whole", "user_chunks"])
def test_checks_catch_corruption(smoke_tables, corrupt, table, check, user_chunk):
    videos, users, logs, impressions = smoke_tables
    settings = SMOKE if user_chunk is None else SMOKE.model_copy(update={"user_chunk_size": user_chunk})
    if table == "user_day_logs":
        outcomes = validation.check_user_day_logs(corrupt(logs), settings)
    else:
        outcomes = validation.check_impressions(corrupt(impressions), logs, videos, settings)
    assert not {o.name: o.passed for o in outcomes}[check]


def test_impression_checks_by_user_chunk_agree_with_the_whole_table(smoke_tables):
    videos, _, logs, impressions = smoke_tables
    chunked = SMOKE.model_copy(update={"user_chunk_size": 16})
    whole = validation.check_impressions(impressions, logs, videos, SMOKE)
    assert validation.check_impressions(impressions, logs, videos, chunked) == whole
    doubled = pl.concat([impressions, impressions.filter(pl.col("user_id").is_in([0, 40]))])
    duplicates = {o.name: o.metadata.get("duplicates") for o in validation.check_impressions(doubled, logs, videos, chunked)}
    expected = impressions.filter(pl.col("user_id").is_in([0, 40])).height  # two users in different chunks
    assert duplicates["unique_user_id_day_position"] == expected
    stranger = pl.concat([impressions, impressions.head(1).with_columns(pl.lit(10_000, pl.Int32).alias("user_id"))])
    outcomes = validation.check_impressions(stranger, logs, videos, chunked)
    assert not {o.name: o.passed for o in outcomes}["matches_user_day_logs"]


def test_skips_fall_as_video_engagement_rises(medium_tables):
    videos, _, _, impressions = medium_tables
    joined = impressions.join(videos.select("video_id", "engagement"), on="video_id")
    q = joined["engagement"].quantile(0.25), joined["engagement"].quantile(0.75)
    low = 1 - joined.filter(pl.col("engagement") <= q[0])["watched"].mean()
    high = 1 - joined.filter(pl.col("engagement") >= q[1])["watched"].mean()
    assert high < low
    overall = 1 - joined["watched"].mean()
    assert 0.15 < overall < 0.5  # Eq. 3 expects about 40 % skipped; mood and preference move it


def test_latent_state_shapes_behaviour(medium_tables):
    _, _, logs, _ = medium_tables
    by = logs.filter(~pl.col("churned")).group_by("true_emotion").agg(
        pl.col("scroll_watch_ratio").mean(), pl.col("likes").mean(), pl.col("shares").mean(), pl.col("watch_minutes").mean()
    )
    m = {row["true_emotion"]: row for row in by.iter_rows(named=True)}
    assert m["stressed"]["scroll_watch_ratio"] > max(m[e]["scroll_watch_ratio"] for e in ("happy", "excited", "neutral"))
    assert m["disappointed"]["watch_minutes"] < m["neutral"]["watch_minutes"] < m["happy"]["watch_minutes"]
    assert m["excited"]["shares"] > max(m[e]["shares"] for e in ("happy", "neutral", "stressed", "disappointed"))
    assert m["disappointed"]["likes"] < m["happy"]["likes"]


def test_realism_interaction_tiers_and_churn_by_profile(medium_tables):
    _, _, logs, _ = medium_tables
    corr = validation.interaction_correlations(logs)
    assert corr["likes"] > corr["comments"] > corr["shares"] > 0
    churn = validation.churn_rate_by_profile(logs)
    assert churn["casual"] > churn["engaged"] > churn["highly_active"]


def _run_fixed_content(emotions: tuple[str, ...], seed: int = 3, days: int = 20) -> np.ndarray:
    """Feed every user only videos of `emotions` (random order) with the same user noise."""
    settings = MEDIUM
    videos = simulate_videos(settings.n_videos, stream(seed, "videos"))
    pool = VideoPool.from_frame(videos)
    pop = Population.from_frame(simulate_users(settings, stream(seed, "users")))
    allowed = np.flatnonzero(np.isin(videos["emotion"].cast(pl.String).to_numpy(), emotions))
    state = UserState.initial(pop)
    order_rng = np.random.default_rng(0)
    for d in range(days):
        noise = draw_day_noise(stream(seed, "user_day", 0, d), pop, d, settings.feed_length, settings)
        churned = churn_today(state, pop, noise, settings)
        feed = np.stack([order_rng.permutation(allowed)[: settings.feed_length] for _ in range(pop.size)])
        valid = np.ones_like(feed, dtype=bool)
        if feed.shape[1] < settings.feed_length:
            pad = settings.feed_length - feed.shape[1]
            feed, valid = np.pad(feed, ((0, 0), (0, pad))), np.pad(valid, ((0, 0), (0, pad)))
        state = simulate_day(feed, valid, d, pool, pop, state, noise, churned, settings).state
    return state.valence


def test_calm_positive_content_raises_valence_over_anxious_angry_content():
    calm = _run_fixed_content(("happy",))
    harsh = _run_fixed_content(("anxious", "angry"))
    assert calm.mean() > harsh.mean() + 0.2
    assert (calm > harsh).mean() > 0.9  # same users, same noise: nearly every user is better off


def test_simulation_is_deterministic_and_seed_dependent():
    videos = simulate_videos(SMOKE.n_videos, stream(9, "videos"))
    users = simulate_users(SMOKE, stream(9, "users"))
    a = simulate_logs(videos, users, SMOKE, 9)
    b = simulate_logs(videos, users, SMOKE, 9)
    c = simulate_logs(videos, users, SMOKE, 10)
    assert a[0].equals(b[0]) and a[1].equals(b[1])
    assert not a[0].equals(c[0])


def test_chunking_bounds_memory_without_changing_the_shape_of_results():
    settings = load_settings("smoke", {"simulation": {"user_chunk_size": 16}}).simulation
    videos = simulate_videos(settings.n_videos, stream(4, "videos"))
    users = simulate_users(settings, stream(4, "users"))
    logs, impressions = simulate_logs(videos, users, settings, 4)
    outcomes = validation.check_user_day_logs(logs, settings) + validation.check_impressions(impressions, logs, videos, settings)
    assert [o.name for o in outcomes if o.severity == "error" and not o.passed] == []
    assert logs["user_id"].n_unique() == settings.n_users


def test_true_causal_graph_is_a_dag_over_the_19_features():
    b = causal_graph.true_adjacency()
    assert b.shape == (19, 19) and len(set(causal_graph.CAUSAL_FEATURES)) == 19
    # acyclic: repeatedly remove nodes without parents
    remaining = set(range(19))
    while remaining:
        roots = {i for i in remaining if not any(b[i, j] for j in remaining)}
        assert roots, "cycle in the true graph"
        remaining -= roots
    for target in causal_graph.TARGETS:
        assert causal_graph.true_parents(target)


def test_true_graph_signs_hold_in_simulated_data(medium_tables):
    """Regress next-day valence change on its true parents: every signed parent keeps its sign."""
    _, _, logs, _ = medium_tables
    nxt = logs.select("user_id", (pl.col("day") - 1).alias("day"), pl.col("true_valence").alias("next_valence"))
    df = logs.join(nxt, on=["user_id", "day"]).filter(~pl.col("churned"))
    parents = causal_graph.true_parents("valence_change")
    names = {"valence": "true_valence"}
    cols = [names.get(p, p) for p in parents]
    x = np.column_stack([np.ones(df.height), df.select(cols).to_numpy()])
    y = (df["next_valence"] - df["true_valence"]).to_numpy()
    coef = np.linalg.lstsq(x, y, rcond=None)[0][1:]
    for (parent, sign), c in zip(parents.items(), coef):
        if sign:
            assert np.sign(c) == sign, parent


def test_label_vocabulary_is_stable():
    assert TRUE_EMOTIONS == ("happy", "excited", "neutral", "stressed", "disappointed", "churned")
    assert len(EMOTIONS) == 8


def _one_day(settings, feed_of) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Day 0 of the same users with the same noise under the feed `feed_of(videos)` serves
    every user: (watch minutes, scroll minutes, impressions) per user."""
    videos = simulate_videos(settings.n_videos, stream(5, "videos"))
    pool = VideoPool.from_frame(videos)
    pop = Population.from_frame(simulate_users(settings, stream(5, "users")))
    noise = draw_day_noise(stream(5, "user_day", 0, 0), pop, 0, settings.feed_length, settings)
    state = UserState.initial(pop)
    feed = np.broadcast_to(feed_of(videos)[: settings.feed_length], (pop.size, settings.feed_length)).copy()
    result = simulate_day(feed, np.ones_like(feed, dtype=bool), 0, pool, pop, state, noise,
                          churn_today(state, pop, noise, settings), settings)
    return result.features["watch_minutes"], result.features["scroll_minutes"], result.features["n_impressions"]


def _by_engagement(videos: pl.DataFrame, descending: bool) -> np.ndarray:
    return videos.sort("engagement_score", descending=descending)["video_id"].to_numpy()


def test_session_response_zero_is_the_exogenous_budget():
    """The default (0) is today's budget: simulation outputs are byte-identical to an explicit
    0, and a feed's engagement barely moves the watch time (the budget is spent either way)."""
    zero = load_settings("smoke", {"simulation": {"session_response": 0.0}}).simulation
    assert zero == load_settings("smoke").simulation
    videos = simulate_videos(zero.n_videos, stream(2, "videos"))
    users = simulate_users(zero, stream(2, "users"))
    default_logs, default_impressions = simulate_logs(videos, users, load_settings("smoke").simulation, 2)
    logs, impressions = simulate_logs(videos, users, zero, 2)
    assert logs.equals(default_logs) and impressions.equals(default_impressions)
    high, _, _ = _one_day(MEDIUM, lambda v: _by_engagement(v, True))
    low, _, _ = _one_day(MEDIUM, lambda v: _by_engagement(v, False))
    active = high > 0
    assert abs(high[active].mean() / low[active].mean() - 1) < 0.1


def test_a_responsive_session_grows_with_engaging_videos_and_ends_on_skips():
    """session_response = 1: the same users with the same noise watch longer (and scroll
    longer) when served the most engaging videos than the least engaging ones; the least
    engaging feed, skipped in runs, ends sessions early."""
    responsive = MEDIUM.model_copy(update={"session_response": 1.0})
    high_watch, high_scroll, high_seen = _one_day(responsive, lambda v: _by_engagement(v, True))
    low_watch, low_scroll, low_seen = _one_day(responsive, lambda v: _by_engagement(v, False))
    base_watch, _, _ = _one_day(MEDIUM, lambda v: _by_engagement(v, True))
    active = high_watch > 0
    assert high_watch[active].mean() > 1.2 * low_watch[active].mean()
    assert (high_watch[active] >= low_watch[active]).mean() > 0.9  # nearly every user
    assert high_scroll[active].mean() > low_scroll[active].mean()
    assert high_watch[active].mean() > base_watch[active].mean()  # extended beyond the drawn budget
    assert high_watch[active].max() <= 1.5 * base_watch[active].max() + 1.5  # up to the bound (+ the last video)


@pytest.mark.parametrize("signal, carries", [(0.0, False), (1.0, True)])
def test_emotion_signal_zero_leaves_no_emotion_in_behaviour(signal, carries):
    """The same users, noise, feed and churn on one day, once glad and once low: with
    emotion_signal 0 every behaviour column is identical; as designed (1) they differ."""
    settings = MEDIUM.model_copy(update={"emotion_signal": signal})
    videos = simulate_videos(settings.n_videos, stream(5, "videos"))
    pool = VideoPool.from_frame(videos)
    pop = Population.from_frame(simulate_users(settings, stream(5, "users")))
    noise = draw_day_noise(stream(5, "user_day", 0, 0), pop, 0, settings.feed_length, settings)
    feed = np.broadcast_to(videos["video_id"].to_numpy()[: settings.feed_length], (pop.size, settings.feed_length)).copy()
    start = UserState.initial(pop)
    churned = churn_today(start, pop, noise, settings)

    def day(valence: float, arousal: float) -> dict:
        state = replace(start, valence=np.full(pop.size, valence), arousal=np.full(pop.size, arousal))
        return simulate_day(feed, np.ones_like(feed, dtype=bool), 0, pool, pop, state, noise, churned, settings).features

    glad, low = day(0.8, 0.3), day(-0.8, 0.8)
    columns = ("watch_minutes", "scroll_minutes", "likes", "shares", "comments", "n_impressions")
    same = [np.array_equal(glad[c], low[c]) for c in columns]
    assert not any(same) if carries else all(same)
