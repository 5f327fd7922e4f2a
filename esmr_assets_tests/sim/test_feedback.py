"""Latent satisfaction and feedback signals (sim/feedback.py): the documented rule, the
definitely-negative oracle, the communication styles as the simulation emits them, and
that adding feedback left every other random number of a day where it was."""

import numpy as np
import polars as pl
import pytest

from esmr_assets.core.rng import stream
from esmr_assets.core.settings import STYLE_SIGNALS, SettingsError, load_settings
from esmr_assets.core.vocabulary import SIGNALS
from esmr_assets.sim.day import draw_day_noise
from esmr_assets.sim.feedback import NOT_INTERESTED, SKIP, emit, satisfaction
from esmr_assets.sim.population import Population, simulate_users

SIM = load_settings("paper").simulation
#: every style of the table in one population (outraged at 30 %)
FOUR_STYLES = {"expressive": 0.28, "critical": 0.21, "passive": 0.21, "outraged": 0.3}


def test_satisfaction_rule_on_hand_made_impressions():
    response = np.array([-0.5, -0.15, -0.149, 0.3, 0.0, 0.0])
    appeal = np.array([3.0, 3.0, 3.0, 1.3, 1.6, 1.59])
    watched = np.array([True, False, True, True, True, True])
    # -0.5 and -0.15 hurt (watched or not); 1.3 * 1.3 = 1.69 and 1.6 reach the 1.6 bar; 1.59 does not.
    assert satisfaction(response, appeal, watched, SIM).tolist() == [-1, -1, 1, 1, 1, 0]
    assert satisfaction(np.array([0.3]), np.array([3.0]), np.array([False]), SIM).tolist() == [0]  # skipped


def test_emitted_signals_follow_the_style_tables_and_the_oracle():
    sim = load_settings("paper", {"simulation": {"feedback_style_shares": FOUR_STYLES}}).simulation
    rng = np.random.default_rng(0)
    n = 80_000
    style = rng.integers(len(sim.feedback_styles), size=n)
    r = rng.integers(-1, 2, size=n)
    watched = rng.random(n) < 0.8
    signal = emit(style, r, watched, rng.random(n), rng.random(n), sim)
    assert (signal[~watched & (r != -1)] == SKIP).all()
    assert set(signal[~watched]) <= {SKIP, NOT_INTERESTED}
    assert (r[signal == NOT_INTERESTED] == -1).all()
    negative = r == -1
    assert abs((signal[negative] == NOT_INTERESTED).mean() - SIM.not_interested_rate) < 0.01
    assert sim.feedback_styles == tuple(FOUR_STYLES)
    for s, name in enumerate(sim.feedback_styles):
        for level in (-1, 0, 1):
            rows = (style == s) & (r == level) & watched
            if level == -1:
                rows &= signal != NOT_INTERESTED
            observed = np.bincount(signal[rows], minlength=len(SIGNALS)) / rows.sum()
            for sig, p in STYLE_SIGNALS[name][level].items():
                assert observed[SIGNALS.index(sig)] == pytest.approx(p, abs=0.02), (name, level, sig)


def test_the_same_signal_means_different_things_to_different_users(logged_world):
    impressions, _, _, _, users = logged_world(load_settings("paper", {"simulation": {"n_users": 150}}, whole_graph=False).simulation, 1)
    frame = impressions.join(users.select("user_id", "feedback_style"), on="user_id")
    comments = frame.filter(pl.col("feedback") == "comment").group_by("feedback_style").agg(
        (pl.col("satisfaction") == 1).mean().alias("pleased"), (pl.col("satisfaction") == -1).mean().alias("upset")
    )
    by_style = {row["feedback_style"]: row for row in comments.iter_rows(named=True)}
    assert by_style["expressive"]["pleased"] == 1.0  # expressive users comment when pleased
    assert by_style["critical"]["upset"] == 1.0  # critical users when displeased
    assert "passive" not in by_style  # passive users never comment
    shares = frame["satisfaction"].value_counts(normalize=True)
    zero = shares.filter(pl.col("satisfaction") == 0)["proportion"].item()
    assert zero > 0.5  # non-zero rewards are the rarer events, as IGL assumes


def test_feedback_noise_leaves_the_days_other_numbers_unchanged():
    pop = Population.from_frame(simulate_users(SIM, stream(3, "users")))
    noise = draw_day_noise(stream(3, "user_day", 0, 4), pop, 4, SIM.feed_length, SIM)
    plain = stream(3, "user_day", 0, 4)
    g = plain.gamma(pop.alpha)  # the first draw of the day, as before feedback existed
    assert np.array_equal(noise.preference, g / g.sum(axis=1, keepdims=True))
    again = draw_day_noise(stream(3, "user_day", 0, 4), pop, 4, SIM.feed_length, SIM)
    assert np.array_equal(noise.feedback_uniform, again.feedback_uniform)
    other_day = draw_day_noise(stream(3, "user_day", 0, 5), pop, 5, SIM.feed_length, SIM)
    assert not np.array_equal(noise.feedback_uniform, other_day.feedback_uniform)


def test_outraged_users_like_what_upsets_them(logged_world):
    """The outraged style's likes, shares and comments come mostly with r = -1, and its
    pleased impressions mostly give a plain watch: engagement that hides distress."""
    sim = load_settings("paper", {"simulation": {"n_users": 150, "feedback_style_shares": FOUR_STYLES}}, whole_graph=False).simulation
    impressions, _, _, _, users = logged_world(sim, 1)
    assert users["feedback_style"].dtype == pl.Enum(tuple(FOUR_STYLES))
    frame = impressions.join(users.select("user_id", "feedback_style"), on="user_id")
    likes = frame.filter(pl.col("feedback") == "like").group_by("feedback_style").agg(
        (pl.col("satisfaction") == -1).mean().alias("upset"), pl.len().alias("n"))
    by_style = {row["feedback_style"]: row for row in likes.iter_rows(named=True)}
    assert by_style["outraged"]["n"] > 500 and by_style["outraged"]["upset"] > 0.6
    assert by_style["expressive"]["upset"] == 0.0  # an expressive like never hides distress
    outraged = frame.filter(pl.col("feedback_style") == "outraged")
    pleased = outraged.filter((pl.col("satisfaction") == 1))
    assert (pleased["feedback"] == "watch").mean() > 0.85
    loud = outraged.filter(pl.col("feedback").is_in(["like", "share", "comment"]))
    assert (loud["satisfaction"] == -1).mean() > 0.6


def likes_per_watched_video(logs: pl.DataFrame, users: pl.DataFrame) -> dict[tuple[str, str], float]:
    """(style, "upset" or "pleased") -> likes per watched video on the user-days in that state."""
    mood = {"stressed": "upset", "disappointed": "upset", "happy": "pleased", "excited": "pleased"}
    frame = logs.join(users.select("user_id", "feedback_style"), on="user_id").with_columns(
        pl.col("true_emotion").cast(pl.Utf8).replace_strict(mood, default=None).alias("mood")).drop_nulls("mood")
    rates = frame.group_by("feedback_style", "mood").agg(pl.col("likes").sum() / pl.col("n_watched").sum())
    return {(style, m): rate for style, m, rate in rates.iter_rows()}


def test_outraged_logs_make_outraged_users_like_most_when_upset(logged_world):
    """With `outraged_logs`, outraged users' logged likes follow distress (more per watched
    video on upset days than on pleased ones: the reverse of everyone else, and of their own
    logs without it); nobody else's logs change, nor the outraged users' latent days."""
    sims = {loud: load_settings("paper", {"simulation": {"n_users": 150, "feedback_style_shares": FOUR_STYLES,
                                                         "outraged_logs": loud}}, whole_graph=False).simulation for loud in (False, True)}
    (_, quiet, _, _, users), (_, loud, _, _, _) = (logged_world(sims[flag], 1) for flag in (False, True))
    before, after = likes_per_watched_video(quiet, users), likes_per_watched_video(loud, users)
    assert before["outraged", "upset"] < 0.5 * before["outraged", "pleased"]
    assert after["outraged", "upset"] > 2 * after["outraged", "pleased"]
    for style in ("expressive", "critical", "passive"):
        assert after[style, "upset"] < after[style, "pleased"] and after[style, "upset"] == before[style, "upset"]
    outraged = users.filter(pl.col("feedback_style") == "outraged")["user_id"]
    others = ~pl.col("user_id").is_in(outraged.implode())
    assert quiet.filter(others).equals(loud.filter(others))
    assert quiet.select("true_valence", "true_emotion").equals(loud.select("true_valence", "true_emotion"))
    with pytest.raises(SettingsError, match="outraged_logs needs outraged users"):
        load_settings("paper", {"simulation": {"outraged_logs": True}})
    with pytest.raises(SettingsError, match="outraged_logs needs outraged users"):  # a zero share is none
        load_settings("paper", {"simulation": {"outraged_logs": True, "feedback_style_shares": {
            "expressive": 0.4, "critical": 0.3, "passive": 0.3, "outraged": 0.0}}})


def test_the_style_table_is_validated_naming_the_problem():
    with pytest.raises(SettingsError, match="styles without signals: \\['stoic'\\]"):
        load_settings("paper", {"simulation": {"feedback_style_shares": {"expressive": 0.5, "critical": 0.2,
                                                                         "passive": 0.1, "stoic": 0.2}}})
    with pytest.raises(SettingsError, match="must be non-negative and sum to 1"):
        load_settings("paper", {"simulation": {"feedback_style_shares": {"outraged": 0.3}}})  # merged: sums to 1.3
    with pytest.raises(SettingsError, match=r"feedback_style_signals\['outraged'\]\[-1\] must be a distribution"):
        load_settings("paper", {"simulation": {"feedback_style_signals": {"outraged": {-1: {"not_interested": 1.0}}}}})
    with pytest.raises(SettingsError, match="must be non-negative and sum to 1"):  # numpy's choice would refuse it
        load_settings("paper", {"simulation": {"feedback_style_shares": {"expressive": 0.3333333, "critical": 0.3333333,
                                                                         "passive": 0.3333334 + 1e-7}}})
    with pytest.raises(SettingsError, match=r"feedback_style_shares.expressive: Input should be a finite number"):
        load_settings("paper", {"simulation": {"feedback_style_shares": {"expressive": float("nan"), "critical": 0.5,
                                                                         "passive": 0.5}}})
    assert load_settings("paper").simulation.feedback_style_signals == STYLE_SIGNALS


def test_the_order_a_share_mapping_is_written_in_changes_nothing():
    """Reuse keys and scenario names sort the overrides, so the users must not depend on the
    order of the shares either: styles follow the table's order."""
    shares = list(FOUR_STYLES.items())
    forward = load_settings("paper", {"simulation": {"n_users": 300, "feedback_style_shares": dict(shares)}}, whole_graph=False).simulation
    backward = load_settings("paper", {"simulation": {"n_users": 300, "feedback_style_shares": dict(shares[::-1])}}, whole_graph=False).simulation
    assert forward.feedback_styles == backward.feedback_styles == tuple(STYLE_SIGNALS)
    assert simulate_users(forward, stream(3, "users")).equals(simulate_users(backward, stream(3, "users")))
