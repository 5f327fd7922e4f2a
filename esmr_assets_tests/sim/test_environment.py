"""The closed-loop environment: determinism, common random numbers, per-user independence,
the content effect on latent valence, and agreement with the logging simulation."""

import numpy as np
import polars as pl
import pytest

from esmr_assets.core.rng import stream
from esmr_assets.core.schemas import USER_DAY_LOGS
from esmr_assets.core.settings import load_settings
from esmr_assets.core.vocabulary import EMOTIONS, TRUE_EMOTIONS
from esmr_assets.emotion.features import build_features, is_active
from esmr_assets.emotion.labeller import DailyLabeller, predict_classes
from esmr_assets.sim.content import simulate_videos
from esmr_assets.sim.environment import ClosedLoopEnv, logging_policy_feed
from esmr_assets.sim.logs import simulate_logs
from esmr_assets.sim.population import simulate_users

SMOKE = load_settings("smoke", {"simulation": {"n_days": 8}}, whole_graph=False).simulation
WIDE = load_settings("paper", {"simulation": {"n_users": 120, "n_days": 10, "feed_length": 60}}, whole_graph=False).simulation
SEED = 3


@pytest.fixture(scope="module")
def tables():
    return simulate_videos(SMOKE.n_videos, stream(SEED, "videos")), simulate_users(SMOKE, stream(SEED, "users"))


def run(env, policy):
    """All days of `env` under `policy(env) -> (feed, valid)`: the DaySteps."""
    env.reset()
    steps = []
    while not env.done:
        steps.append(env.step(*policy(env)))
    return steps


def logs_of(steps):
    return pl.concat([s.logs for s in steps])


def test_deterministic_and_contract(tables):
    first = run(ClosedLoopEnv(*tables, SMOKE, SEED, DailyLabeller()), logging_policy_feed)
    second = run(ClosedLoopEnv(*tables, SMOKE, SEED, DailyLabeller()), logging_policy_feed)
    assert logs_of(first).equals(logs_of(second))
    assert all(np.array_equal(a.videos, b.videos) for a, b in zip(first, second))
    assert logs_of(first).schema == USER_DAY_LOGS
    assert not logs_of(first).equals(logs_of(run(ClosedLoopEnv(*tables, SMOKE, SEED + 1, DailyLabeller()), logging_policy_feed)))


def test_identical_feeds_give_identical_trajectories(tables):
    """Replaying one policy's feeds as another 'policy' changes nothing: the noise does not
    depend on who ranked the feed."""
    feeds = []

    def recording(env):
        feeds.append(logging_policy_feed(env))
        return feeds[-1]

    original = run(ClosedLoopEnv(*tables, SMOKE, SEED, DailyLabeller()), recording)
    replay = iter(feeds)
    replayed = run(ClosedLoopEnv(*tables, SMOKE, SEED, DailyLabeller()), lambda env: next(replay))
    assert logs_of(original).equals(logs_of(replayed))


def test_other_users_unchanged_when_some_feeds_change(tables):
    changed = np.arange(SMOKE.n_users) % 3 == 0

    def perturbed(env):
        feed, valid = logging_policy_feed(env)
        feed[changed] = feed[changed][:, ::-1]
        valid[changed] = valid[changed][:, ::-1].cumprod(axis=1, dtype=bool)
        return feed, valid

    base = logs_of(run(ClosedLoopEnv(*tables, SMOKE, SEED, DailyLabeller()), logging_policy_feed))
    other = logs_of(run(ClosedLoopEnv(*tables, SMOKE, SEED, DailyLabeller()), perturbed))
    ids = tables[1]["user_id"].filter(pl.Series(changed))
    keep = ~pl.col("user_id").is_in(ids.implode())
    assert base.filter(keep).equals(other.filter(keep))
    assert not base.filter(~keep).equals(other.filter(~keep))


def emotion_feed(env, emotions):
    """Only videos of `emotions`, most engaging first, never a recently shown one."""
    allowed = np.isin(env.pool.emotion, [EMOTIONS.index(e) for e in emotions])
    scores = np.where(allowed[None, :] & ~env.recently_shown(), env.pool.engagement[None, :], -np.inf)
    order = np.argsort(-scores, axis=1, kind="stable")[:, : env.settings.feed_length]
    return order, np.isfinite(np.take_along_axis(scores, order, axis=1))


def test_calm_positive_content_raises_valence():
    videos = simulate_videos(WIDE.n_videos, stream(SEED, "videos"))
    users = simulate_users(WIDE, stream(SEED, "users"))
    happy = logs_of(run(ClosedLoopEnv(videos, users, WIDE, SEED, DailyLabeller()), lambda env: emotion_feed(env, ["happy"])))
    tense = logs_of(run(ClosedLoopEnv(videos, users, WIDE, SEED, DailyLabeller()), lambda env: emotion_feed(env, ["anxious", "angry"])))
    last = pl.col("day") == WIDE.n_days - 1
    assert happy.filter(last)["true_valence"].mean() > tense.filter(last)["true_valence"].mean() + 0.1
    assert happy["true_valence"].mean() > tense["true_valence"].mean()


class LoggingNoiseEnv(ClosedLoopEnv):
    """The environment on the logging simulation's streams (one chunk)."""

    def noise_rng(self, day):
        return stream(self.seed, "user_day", 0, day)


def test_equals_logging_simulation_given_its_noise(tables):
    """With the logs' noise and Algorithm 1's feeds the environment reproduces
    simulate_logs day by day (the two differ only in which streams they draw)."""
    logs, impressions = simulate_logs(*tables, SMOKE, SEED)
    env = LoggingNoiseEnv(*tables, SMOKE, SEED, DailyLabeller())
    steps = run(env, lambda env: logging_policy_feed(env, stream(SEED, "logging_policy", 0, env.day)))
    assert logs_of(steps).sort("user_id", "day").equals(logs)
    day0 = impressions.filter(pl.col("day") == 0)
    assert np.array_equal(steps[0].videos, day0["video_id"].to_numpy())
    assert np.array_equal(steps[0].watched, day0["watched"].to_numpy())


def test_predictions_use_history_and_previous_prediction(tables, threshold_model):
    env = ClosedLoopEnv(*tables, SMOKE, SEED, DailyLabeller(threshold_model))
    observation = env.reset()
    assert (observation["predicted_label"] == "none").all() and observation["watch_minutes"].is_null().all()
    steps = []
    while not env.done:
        steps.append(env.step(*logging_policy_feed(env)))
        assert (env.observation()["predicted_label"].cast(pl.String).to_numpy() == steps[-1].predicted).all()
    logs = logs_of(steps)
    predicted = pl.Series(np.concatenate([s.predicted for s in steps]).astype(str))
    previous = logs.select("user_id", "day").with_columns(label=predicted)
    previous = previous.select(pl.col("label").shift(1).over("user_id", order_by="day").fill_null("none"))
    features = build_features(logs.drop("true_emotion", "true_valence", "true_arousal"),
                              previous.to_series().cast(pl.Enum(("none", *TRUE_EMOTIONS))))
    expected, _ = predict_classes(threshold_model, features)
    inactive = ~logs.select(is_active()).to_series().to_numpy()
    assert np.array_equal(predicted.to_numpy(), np.where(inactive, "churned", expected))
    assert inactive.any() and len(set(expected[~inactive])) == 4  # every branch of the stand-in is hit
    probabilities = np.concatenate([s.probabilities for s in steps])
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert np.array_equal(np.asarray(TRUE_EMOTIONS)[probabilities.argmax(axis=1)], predicted.to_numpy())


def test_recently_shown_masks_the_seen_window(tables):
    env = ClosedLoopEnv(*tables, SMOKE, SEED, DailyLabeller())
    env.reset()
    assert not env.recently_shown().any()
    step = env.step(*logging_policy_feed(env))
    shown = env.recently_shown()
    assert shown[step.rows, step.videos].all() and shown.sum() == step.videos.size
    too_long = (SMOKE.n_users, SMOKE.feed_length + 1)
    with pytest.raises(ValueError):
        env.step(np.zeros(too_long, int), np.ones(too_long, bool))
