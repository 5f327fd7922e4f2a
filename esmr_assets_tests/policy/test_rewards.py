import numpy as np
import polars as pl
import pytest

from esmr_assets.core.vocabulary import TRUE_EMOTIONS
from esmr_assets.policy.loop import streak as switching
from esmr_assets.policy.rewards import (
    causal_reward,
    emotion_reward,
    engagement_reward,
    is_vulnerable,
    parent_weight_matrix,
    total_reward,
)

# ---------------------------------------------------------------- rewards


def test_engagement_reward_formula_bounded_monotone():
    r = engagement_reward(np.array([0.0, 30.0, 1e6]), np.array([0.0, 30.0, 1e6]))
    np.testing.assert_allclose(r, [0.0, np.tanh(1.0), 1.0])
    r2 = engagement_reward(np.array([30.0, 0.0]), np.array([0.0, 30.0]))
    np.testing.assert_allclose(r2, [np.tanh(1) / 1.5, 0.5 * np.tanh(1) / 1.5])
    grid = engagement_reward(np.linspace(0, 500, 50), np.zeros(50))
    assert (np.diff(grid) > 0).all() and grid.max() < 1.0


def test_emotion_reward_only_negative_to_neutral_or_positive():
    prev, cur, expected = [], [], []
    for p in TRUE_EMOTIONS:
        for c in TRUE_EMOTIONS:
            prev.append(p), cur.append(c)
            expected.append(2.0 if p in ("stressed", "disappointed") and c in ("neutral", "happy", "excited") else 0.0)
    np.testing.assert_array_equal(emotion_reward(np.array(prev), np.array(cur), eta=2.0), expected)
    assert emotion_reward(np.array(["stressed"]), np.array(["churned"]))[0] == 0.0
    with pytest.raises(ValueError):
        emotion_reward(np.array(["sad"]), np.array(["happy"]))


def test_causal_reward_weighted_and_amplified():
    prev = np.array([[1.0, 2.0, 5.0], [0.0, 0.0, 0.0]])
    cur = np.array([[2.0, 0.0, 9.0], [1.0, 0.5, np.nan]])
    lam = np.array([[0.5, -0.5, 0.0], [1.0, 2.0, 3.0]])
    r = causal_reward(prev, cur, lam, np.array([False, False]))
    # user0: 0.5*1 + (-0.5)*(-2) + 0 = 1.5 ; user1: 1*1 + 2*0.5 + nan->0 = 2
    np.testing.assert_allclose(r, [1.5, 2.0])
    ra = causal_reward(prev, cur, lam, np.array([True, False]), amplification=2.0)
    np.testing.assert_allclose(ra, [3.0, 2.0])
    np.testing.assert_array_equal(is_vulnerable(np.array(["stressed", "disappointed", "neutral", "churned"])),
                                  [True, True, False, False])


def test_parent_weight_matrix_signs_and_filters():
    tbl = pl.DataFrame({
        "user_id": [1, 1, 1, 2, 2, 9],
        "target": ["next_day_happy", "valence_change", "next_day_stressed", "next_day_stressed", "other", "next_day_happy"],
        "parent": ["watch", "watch", "scroll", "watch", "watch", "watch"],
        "weight": [0.5, 0.25, 0.4, 0.3, 7.0, 1.0],
    })
    lam = parent_weight_matrix(tbl, [2, 1, 3], ["scroll", "watch", "unused"])
    np.testing.assert_allclose(lam, [[0.0, -0.3, 0.0], [-0.4, 0.75, 0.0], [0.0, 0.0, 0.0]])
    definitional = pl.DataFrame({"user_id": [1, 1], "target": ["valence_change", "next_day_stressed"],
                                 "parent": ["valence", "valence"], "weight": [-1.0, -0.5]})
    assert parent_weight_matrix(definitional, [1], ["valence"])[0, 0] == 0.5  # valence -> valence_change dropped
    empty = parent_weight_matrix(tbl.head(0), [1], ["watch"])
    assert empty.shape == (1, 1) and empty[0, 0] == 0


def test_total_reward_eq8():
    np.testing.assert_allclose(total_reward(np.array([0.5]), np.array([1.0]), np.array([2.0])), [2.5])
    np.testing.assert_allclose(total_reward([0.5], [1.0], [2.0], alpha=0.0, beta=1.0), [2.5])


# ---------------------------------------------------------------- hybrid switching

P, N, S, D, C = "happy", "neutral", "stressed", "disappointed", "churned"


def active(seq):
    return switching.rl_active(np.array([seq]))[0].tolist()


def test_three_negative_or_neutral_days_activate_next_day():
    assert active([S, D, N, P, P]) == [False, False, False, True, False]
    assert active([S, D, N, S, P, N]) == [False, False, False, True, True, False]
    assert active([S, S, P, S, S, N, N]) == [False] * 6 + [True]


def test_first_three_days_never_active():
    rng = np.random.default_rng(0)
    labels = rng.choice(np.array(TRUE_EMOTIONS), size=(200, 10))
    act = switching.rl_active(labels)
    assert not act[:, :3].any()
    assert not switching.rl_active(np.array([[S, S, S]])).any()


def test_positive_day_breaks_streak():
    assert active([N, N, "excited", N, N, N, N]) == [False] * 6 + [True]


def test_churn_days_neither_extend_nor_break():
    assert active([S, C, C, S, N, P]) == [False] * 5 + [True]
    assert active([S, S, S, C, C, P, N]) == [False, False, False, True, True, True, False]
    assert active([C, C, C, C]) == [False] * 4
    assert switching.streaks(np.array([[S, C, N, C, P]]))[0].tolist() == [1, 1, 2, 2, 0]


def test_incremental_form_agrees_with_array_form():
    rng = np.random.default_rng(42)
    labels = rng.choice(np.array(TRUE_EMOTIONS), size=(300, 25), p=[0.1, 0.05, 0.3, 0.25, 0.2, 0.1])
    expected = switching.rl_active(labels)
    for u in range(labels.shape[0]):
        streak = 0
        for t in range(labels.shape[1]):
            assert switching.is_active(streak) == expected[u, t]
            streak = switching.update_streak(streak, labels[u, t])
    # vectorised incremental form too
    streak = np.zeros(labels.shape[0], dtype=int)
    for t in range(labels.shape[1]):
        np.testing.assert_array_equal(switching.is_active(streak), expected[:, t])
        streak = switching.update_streak(streak, labels[:, t])
    assert expected.any() and not expected.all()


def test_unknown_label_rejected():
    with pytest.raises(ValueError):
        switching.rl_active(np.array([["sad", S, S]]))


def test_next_day_timing_credits_the_label_change_to_the_action_before_it():
    """A hand-made trajectory: stressed on days 0-1, happy on day 2. The paper's same-day
    timing pays R_emo to day 2's action; the next-day variant pays it to day 1's action,
    whose feed could have caused the change, with day 1's own R_eng."""
    from esmr_assets.policy.rewards import NextDayCredit, RewardModel, emotion_reward, total_reward

    labels = [np.array(["stressed"]), np.array(["stressed"]), np.array(["happy"])]
    r_eng = [np.array([0.1]), np.array([0.2]), np.array([0.4])]
    states, actions = [np.array([10 + d]) for d in range(3)], [np.array([d]) for d in range(3)]
    credit = NextDayCredit(alpha=1.0, beta=0.5)
    learnt = []
    for day in (1, 2):  # day 0 only yields the first observation
        r_emo = emotion_reward(labels[day - 1], labels[day])
        r_cause = np.array([0.3 * day])
        same_day = total_reward(r_eng[day], r_emo, r_cause, alpha=1.0, beta=0.5)
        learnt.append((same_day, credit.push(states[day], actions[day], r_eng[day], states[day] + 100, r_emo, r_cause)))
    (same_1, next_after_1), (same_2, next_after_2) = learnt
    assert next_after_1 is None  # day 1's action waits for day 2's observation
    assert same_1[0] == pytest.approx(0.2 + 0.5 * 0.3) and same_2[0] == pytest.approx(0.4 + 1.0 + 0.5 * 0.6)
    s, a, r, s2 = next_after_2
    assert (s[0], a[0], s2[0]) == (11, 1, 111)  # day 1's transition
    assert r[0] == pytest.approx(0.2 + 1.0 + 0.5 * 0.6)  # its own R_eng, the change into day 2
    with pytest.raises(ValueError, match="timing"):
        RewardModel(np.zeros((1, 1)), None, timing="yesterday")
