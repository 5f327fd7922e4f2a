"""Evaluation metrics on small hand-made label matrices, with answers worked out by hand.

Rows are written as strings of one letter per day:
H happy, E excited, N neutral, S stressed, D disappointed, C churned (day 0 first).
"""

import subprocess
import sys
import warnings

import numpy as np
import polars as pl
import pytest

from esmr_assets.core.vocabulary import TRUE_EMOTIONS
from esmr_assets.evaluation import metrics as m

LETTER = {"H": "happy", "E": "excited", "N": "neutral", "S": "stressed", "D": "disappointed", "C": "churned"}


def lab(*rows: str) -> np.ndarray:
    return np.array([[LETTER[c] for c in row] for row in rows])


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    # NaN-producing metrics must stay silent (no "Mean of empty slice" and friends)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def test_module_is_pure():
    code = "import sys, esmr_assets.evaluation.metrics; assert 'dagster' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_negative_days_ignores_churn():
    labels = lab(
        "SCCSDHN",  # S, S, D -> 3; the churned days between the stresses count for nothing
        "HHEHHEH",  # all positive -> 0
        "NNNNNNN",  # -> 0
        "CCCCCCC",  # -> 0
    )
    got = m.negative_days(labels)
    np.testing.assert_array_equal(got, [3, 0, 0, 0])
    assert np.issubdtype(got.dtype, np.integer)


def test_happy_at_least_once():
    labels = lab(
        "NNNNNNH",  # happy on the last day
        "EEEEEEE",  # excited is not happy
        "CCCCCCC",
    )
    np.testing.assert_array_equal(m.happy_at_least_once(labels), [True, False, False])


def test_final_dominant_happy_window_ties_and_churn():
    labels = lab(
        "SSHHHSSNE",  # last 7: HHH SS N E -> happy 3 > 2 -> True
        "HHHHSSSNE",  # last 7: HH SSS N E -> 2 < 3 (the first two H fall outside) -> False
        "NNHHHSSSN",  # last 7: HHH SSS N -> tie 3 = 3 -> False
        "NNHHHCCCC",  # last 7: HHH CCCC -> churned 4 beats happy 3 -> False
        "SSSSSSHHN",  # last 7: SSSS HH N -> False
    )
    np.testing.assert_array_equal(m.final_dominant_happy(labels), [True, False, False, False, False])
    # window 3: "SNE" F, "SNE" F, "SSN" F, "CCC" F, "HHN" -> happy 2 > 1 -> True
    np.testing.assert_array_equal(m.final_dominant_happy(labels, window=3), [False, False, False, False, True])
    # window 2 on "..HN": tie 1 = 1 -> False
    assert not m.final_dominant_happy(lab("SSSSSSSHN"), window=2)[0]
    for bad in (0, 10):
        with pytest.raises(ValueError, match="window"):
            m.final_dominant_happy(labels, window=bad)


def test_full_recovery_eligibility_and_recovery():
    labels = lab(
        "SDN" + "HHHHNNN",  # 2 of 3 negative -> eligible; 4 of 7 positive -> recovered
        "SSS" + "HHHNNNN",  # eligible; 3 of 7 positive is not a majority -> not recovered
        "SNN" + "HHHHHHH",  # 1 of 3 negative -> not eligible (so not recovered, whatever the end)
        "HHE" + "EEHHHEE",  # all positive, no negative start -> not eligible
        "SCD" + "EEHHCCC",  # S, D negative (C is not) -> eligible; E E H H = 4 of 7 -> recovered
        "SCC" + "HHHHHHH",  # churn is not negative: 1 of 3 -> not eligible
    )
    eligible, recovered = m.full_recovery(labels)
    np.testing.assert_array_equal(eligible, [True, True, False, False, True, False])
    np.testing.assert_array_equal(recovered, [True, False, False, False, True, False])
    assert recovered.sum() / eligible.sum() == pytest.approx(2 / 3)
    # start=4: "SDNH" has 2 of 4 negative, not a strict majority
    eligible4, _ = m.full_recovery(labels[:1], start=4)
    assert not eligible4[0]
    # end=3: last 3 of row 0 are NNN -> no longer recovered
    _, recovered3 = m.full_recovery(labels[:1], end=3)
    assert not recovered3[0]
    with pytest.raises(ValueError, match="end"):
        m.full_recovery(labels, end=11)


def test_volatility_matches_np_std_over_non_churned_days():
    labels = lab(
        "SCCSHNE",  # churned days excluded, both stresses kept: -0.7 -0.7 0.8 0.0 0.7
        "HCCCCCS",  # two days: 0.8, -0.7 -> std 0.75
        "DDDDDDD",  # constant -> 0
        "CCCCCCH",  # one non-churned day -> NaN
        "CCCCCCC",  # none -> NaN
    )
    got = m.volatility(labels)
    np.testing.assert_allclose(got[0], np.std([-0.7, -0.7, 0.8, 0.0, 0.7]))
    np.testing.assert_allclose(got[1], np.std([0.8, -0.7]))
    assert got[1] == pytest.approx(0.75)
    assert got[2] == pytest.approx(0.0)
    assert np.isnan(got[3]) and np.isnan(got[4])


def test_mean_valence_score():
    labels = lab(
        "SCCSHNE",  # (-0.7 - 0.7 + 0.8 + 0.0 + 0.7) / 5 = 0.02
        "HHHHHHH",  # 0.8
        "CCCCCCC",  # NaN
    )
    got = m.mean_valence_score(labels)
    np.testing.assert_allclose(got[:2], [0.02, 0.8])
    assert np.isnan(got[2])


def test_bounces_count_swings_between_excited_and_stressed():
    labels = lab(
        "ESESNNN",  # E S E S -> 3 swings -> bounced
        "ESENNNN",  # E S E -> exactly 2 swings -> not bounced (needs > 2)
        "EHSNDSE",  # H, N, D ignored: E S S E -> 2
        "ECSCECS",  # churn ignored: E S E S -> 3 -> bounced
        "HDHDHDH",  # low-arousal poles only -> 0
        "EEEESSS",  # one swing
        "SNNNNNE",  # days between do not break the swing -> 1
    )
    np.testing.assert_array_equal(m.bounces(labels), [3, 2, 2, 3, 0, 1, 1])
    np.testing.assert_array_equal(m.bounced(labels), [True, False, False, True, False, False, False])


def test_recovery_times_mean_over_recovered_runs():
    labels = lab(
        "NNNSNHNN",  # run at day 3, first positive day 5 -> 2
        "SSNHNDNH",  # run at 0 -> H at 3: 3; run at 5 -> H at 7: 2 -> mean 2.5
        "SHNNNSNN",  # run at 0 -> 1; run at 5 never recovers (censored) -> 1.0
        "NNSSDNNN",  # only run censored -> NaN
        "HHEEHHEH",  # all positive, no run -> NaN
        "SCSHNNNN",  # churn ends a run: runs at 0 (-> 3) and 2 (-> 1) -> 2.0
        "SDSDSDSE",  # one run 0..6, E at 7 -> 7
        "HSNNNNNN",  # a positive day before the run does not count -> censored -> NaN
    )
    got = m.recovery_times(labels)
    np.testing.assert_allclose(got, [2.0, 2.5, 1.0, np.nan, np.nan, 2.0, 7.0, np.nan])


def test_engagement_reward_total_sums_days():
    watch = np.array([[30.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    scroll = np.array([[0.0, 30.0, 0.0], [0.0, 0.0, 0.0]])
    # user 0: tanh(1)/1.5 + 0.5 tanh(1)/1.5 + 0 = tanh(1); user 1: 0
    np.testing.assert_allclose(m.engagement_reward_total(watch, scroll), [np.tanh(1.0), 0.0])
    with pytest.raises(ValueError):
        m.engagement_reward_total(watch, scroll[:, :2])


@pytest.mark.parametrize(
    "metric",
    [m.negative_days, m.happy_at_least_once, m.final_dominant_happy, m.volatility, m.bounces, m.recovery_times],
)
def test_unknown_label_and_bad_shape_rejected(metric):
    labels = lab("HHHHHHH", "SSSSSSS")
    labels[1, 3] = "sad"
    with pytest.raises(ValueError, match="sad"):
        metric(labels)
    with pytest.raises(ValueError, match="2-d"):
        metric(np.array(["happy"] * 7))


def _summary_inputs():
    labels = lab(
        "SDNHHHHNNN",
        "SSSEESESNN",
        "CCCCCCCCCC",
    )
    watch = np.zeros(labels.shape)
    watch[0] = 30.0  # user 0 earns tanh(1)/1.5 a day, the others nothing
    latent = np.arange(30, dtype=float).reshape(3, 10) / 100.0  # mean 0.145
    return labels, watch, np.zeros(labels.shape), latent


def test_summarise_population_figures():
    labels, watch, scroll, latent = _summary_inputs()
    got = m.summarise(labels, watch, scroll, latent)
    assert tuple(got) == m.METRICS
    u0 = [-0.7, -0.6, 0.0, 0.8, 0.8, 0.8, 0.8, 0.0, 0.0, 0.0]
    u1 = [-0.7, -0.7, -0.7, 0.7, 0.7, -0.7, 0.7, -0.7, 0.0, 0.0]
    expected = {
        "negative_days": (2 + 5 + 0) / 3,
        "happy_at_least_once": 1 / 3,  # user 0 only
        "final_dominant_happy": 1 / 3,  # user 0: HHHH NNN in the last 7
        "full_recovery": 1 / 2,  # both start negative; user 1 ends with 3 of 7 positive
        "full_recovery_eligible": 2.0,
        "volatility": (np.std(u0) + np.std(u1)) / 2,  # user 2 (all churned) is NaN, left out
        "bounce_rate": 1 / 3,  # user 1: S S S E E S E S -> 4 swings
        "engagement_reward": 10 * np.tanh(1.0) / 1.5 / 3,
        "mean_valence": (np.mean(u0) + np.mean(u1)) / 2,
        "mean_latent_valence": 0.145,
        "recovery_time": (3.0 + (3.0 + 1.0) / 2) / 2,  # user 0: 3; user 1: 3, 1, one censored
    }
    for key, value in expected.items():
        assert got[key] == pytest.approx(value), key


def test_summarise_nan_when_undefined():
    labels = lab("HHHHHHHHHH", "EEEEEEEEEE")
    zeros = np.zeros(labels.shape)
    got = m.summarise(labels, zeros, zeros, zeros)
    assert np.isnan(got["full_recovery"]) and got["full_recovery_eligible"] == 0.0
    assert np.isnan(got["recovery_time"])
    assert got["negative_days"] == 0.0 and got["bounce_rate"] == 0.0
    with pytest.raises(ValueError):
        m.summarise(labels, zeros, zeros, zeros[:, :5])


def test_paper_constants_are_summarise_keys():
    assert set(m.PAPER_FIGURES) <= set(m.METRICS)
    assert set(m.PAPER_BASELINE) <= set(m.METRICS)
    # the paper's ESMR has fewer negative days and bounces than the baseline, at some engagement cost
    for key in ("negative_days", "bounce_rate", "engagement_reward"):
        assert m.PAPER_FIGURES[key] < m.PAPER_BASELINE[key]


def _long_frame():
    rows = [(2, 1, "happy"), (1, 1, "excited"), (2, 0, "stressed"), (1, 0, "neutral"), (1, 2, "churned"), (2, 2, "happy")]
    return pl.DataFrame(rows, schema={"user_id": pl.Int64, "day": pl.Int64, "e": pl.String}, orient="row").with_columns(
        pl.col("e").cast(pl.Enum(TRUE_EMOTIONS)), x=pl.col("user_id") * 10 + pl.col("day")
    )


def test_label_and_value_matrix_sort_by_user_then_day():
    frame = _long_frame()
    user_ids, labels = m.label_matrix(frame, "e")
    np.testing.assert_array_equal(user_ids, [1, 2])
    np.testing.assert_array_equal(labels, [["neutral", "excited", "churned"], ["stressed", "happy", "happy"]])
    user_ids, values = m.value_matrix(frame, "x")
    np.testing.assert_array_equal(user_ids, [1, 2])
    np.testing.assert_array_equal(values, [[10.0, 11.0, 12.0], [20.0, 21.0, 22.0]])
    assert values.dtype == float


def test_label_matrix_rejects_missing_or_duplicate_user_days():
    frame = _long_frame()
    with pytest.raises(ValueError, match="1 .*missing"):
        m.label_matrix(frame.filter(~((pl.col("user_id") == 2) & (pl.col("day") == 1))), "e")
    with pytest.raises(ValueError, match="2 .*missing"):  # user 2 has only day 2
        m.value_matrix(frame.filter((pl.col("user_id") == 1) | (pl.col("day") == 2)), "x")
    with pytest.raises(ValueError, match="duplicate"):
        m.label_matrix(pl.concat([frame, frame.head(1)]), "e")
    with pytest.raises(ValueError, match="null"):
        m.label_matrix(frame.with_columns(e=pl.when(pl.col("day") == 0).then(pl.col("e"))), "e")
