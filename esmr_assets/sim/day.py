"""One simulated day for a whole cohort at once (paper Eq. 1-7, Algorithm 1 lines 16-32).

Given each user's ranked feed, users scroll it top-down, skipping with a probability that
rises as the video's engagement falls, until the day's watch-time budget is spent. The same
function serves the logging simulation and, later, the closed-loop environment: a policy
only decides the feed. All noise of a day is drawn up front in fixed shapes (`DayNoise`),
so two policies facing the same users see the same random numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..core import compiled
from ..core.portable import expit, log, power
from ..core.settings import SimulationSettings
from ..core.vocabulary import CATEGORIES, EMOTIONS
from .affect import (
    AROUSAL_NOISE_SCALE,
    behaviour_multipliers,
    true_emotion,
    update_latent,
)
from .content import NEGATIVE_EMOTIONS, VideoPool
from .feedback import emit, satisfaction
from .poisson import poisson_quantiles
from .population import Population

SKIP_SCALE = 1.3  # kappa of P(skip) = kappa * mood * preference * (1 - engagement)
SKIP_PROBABILITY_BOUNDS = (0.02, 0.95)
PARTIAL_VIEW_BOUNDS = (0.2, 0.7)  # gamma_i of Eq. 4: share of a skipped video that is seen
SPIKE_MULTIPLIER_BOUNDS = (1.2, 1.8)  # Eq. 2
# Session response (settings.session_response > 0): seconds of budget gained per watched
# second per unit of engagement above the pool's mean, the budget's bound (a share of the
# drawn budget), and the skips in a row after which a fully responsive user leaves.
SESSION_PULL = 2.0
SESSION_BOUND = 0.5
SKIP_RUN = 4
WEEKEND_MULTIPLIER = 1.2  # Eq. 2
LIKE_LOGNORMAL_SIGMA = 0.5  # long-tailed daily like intensity
POST_BURST_CONTINUE = 0.5  # a posting burst continues with this probability per post
# Gamma shapes of the daily comment and share propensities (mean 1): the rarer and more
# effortful the interaction, the more it varies from day to day (paper §3.1.3 tiers).
COMMENT_DISPERSION_SHAPE = 1.0
SHARE_DISPERSION_SHAPE = 0.4
_NEGATIVE_EMOTION_IDX = np.array([EMOTIONS.index(e) for e in NEGATIVE_EMOTIONS])


@dataclass(frozen=True)
class DayNoise:
    """Every random number one cohort-day needs, drawn before any decision is made."""

    preference: np.ndarray  # (n, 4) c_u^(t) ~ Dirichlet(alpha_u), Eq. 7
    session: np.ndarray  # (n,) M^(t) of Eq. 2
    is_spike: np.ndarray  # (n,) bool
    scroll_gamma: np.ndarray  # (n,) Gamma(k_p, theta_p) minutes, Eq. 1
    watch_uniform: np.ndarray  # (n,) U(0, 1), mapped to U(a_p, b_p) of Eq. 1
    skip_uniform: np.ndarray  # (n, F)
    partial_view: np.ndarray  # (n, F) gamma_i of Eq. 4
    like_intensity: np.ndarray  # (n,) lognormal with mean 1
    comment_intensity: np.ndarray  # (n,) gamma with mean 1
    share_intensity: np.ndarray  # (n,) gamma with mean 1
    count_uniform: np.ndarray  # (n, 4) inverse-CDF uniforms: likes, comments, shares, logins
    post_uniform: np.ndarray  # (n, 2) burst start, burst length
    churn_uniform: np.ndarray  # (n,)
    valence_noise: np.ndarray  # (n,) Laplace
    arousal_noise: np.ndarray  # (n,) Laplace
    feedback_uniform: np.ndarray  # (n, F) picks each impression's feedback signal
    oracle_uniform: np.ndarray  # (n, F) whether an r = -1 impression says "not interested"


def is_weekend(day: int) -> bool:
    """Day 0 is a Monday."""
    return day % 7 in (5, 6)


def session_multiplier(day: int, is_spike: np.ndarray, spike_value: np.ndarray) -> np.ndarray:
    """Eq. 2: M = U(1.2, 1.8) on spike days, 1.2 at weekends, else 1."""
    return np.where(is_spike, spike_value, WEEKEND_MULTIPLIER if is_weekend(day) else 1.0)


def smoothed_trend(previous: np.ndarray, engagement: np.ndarray, threshold: float) -> np.ndarray:
    """Eq. 5: dE_t = 0.8 dE_(t-1) + 0.2 sign(E_t - tau)."""
    return 0.8 * previous + 0.2 * np.sign(engagement - threshold)


def churn_probability(
    propensity: np.ndarray, trend: np.ndarray, valence: np.ndarray, settings: SimulationSettings
) -> np.ndarray:
    """Eq. 6: phi = sigmoid(p_u + alpha dE), plus a push from negative latent valence (scaled by
    `emotion_signal`: churning is behaviour too).

    p_u is a logit here: the paper's p_u in [0, 1] inside a sigmoid would make every user
    churn at least half the days."""
    valence_weight = settings.churn_valence_weight * settings.emotion_signal
    logit = propensity + settings.churn_trend_weight * trend + valence_weight * np.minimum(valence, 0.0)
    return expit(logit)


def draw_day_noise(
    rng: np.random.Generator, pop: Population, day: int, feed_length: int, settings: SimulationSettings
) -> DayNoise:
    n = pop.size
    # Feedback noise from a child stream: spawning draws nothing from `rng`, so every
    # other number of the day is what it was before feedback existed.
    feedback_rng = np.random.Generator(np.random.PCG64(rng.bit_generator.seed_seq.spawn(1)[0]))
    g = rng.gamma(pop.alpha)
    preference = g / g.sum(axis=1, keepdims=True)
    is_spike = rng.random(n) < settings.spike_probability
    session = session_multiplier(day, is_spike, rng.uniform(*SPIKE_MULTIPLIER_BOUNDS, n))
    sigma = LIKE_LOGNORMAL_SIGMA
    return DayNoise(
        preference=preference,
        session=session,
        is_spike=is_spike,
        scroll_gamma=rng.gamma(pop.scroll_shape, pop.scroll_scale),
        watch_uniform=rng.random(n),
        skip_uniform=rng.random((n, feed_length), dtype=np.float32),
        partial_view=rng.uniform(*PARTIAL_VIEW_BOUNDS, (n, feed_length)).astype(np.float32),
        like_intensity=rng.lognormal(-0.5 * sigma**2, sigma, n),
        comment_intensity=rng.gamma(COMMENT_DISPERSION_SHAPE, 1.0 / COMMENT_DISPERSION_SHAPE, n),
        share_intensity=rng.gamma(SHARE_DISPERSION_SHAPE, 1.0 / SHARE_DISPERSION_SHAPE, n),
        count_uniform=rng.random((n, 4)),
        post_uniform=rng.random((n, 2)),
        churn_uniform=rng.random(n),
        valence_noise=rng.laplace(0.0, settings.latent_noise_scale, n),
        arousal_noise=rng.laplace(0.0, AROUSAL_NOISE_SCALE, n),
        feedback_uniform=feedback_rng.random((n, feed_length), dtype=np.float32),
        oracle_uniform=feedback_rng.random((n, feed_length), dtype=np.float32),
    )


@dataclass(frozen=True)
class UserState:
    """What carries over from one day to the next."""

    valence: np.ndarray
    arousal: np.ndarray
    engagement_trend: np.ndarray  # Delta E of Eq. 5
    churned: np.ndarray  # bool: churned yesterday
    last_intensity: np.ndarray  # mean intensity of the last active day (for intensity_change)

    @classmethod
    def initial(cls, pop: Population) -> UserState:
        n = pop.size
        return cls(
            valence=pop.initial_valence.astype(float),
            arousal=pop.initial_arousal.astype(float),
            engagement_trend=np.zeros(n),
            churned=np.zeros(n, dtype=bool),
            last_intensity=np.zeros(n),
        )


def churn_today(state: UserState, pop: Population, noise: DayNoise, settings: SimulationSettings) -> np.ndarray:
    """Eq. 6 with re-engagement: an active user churns with `churn_probability`; a churned
    user returns each day with probability `reengage_probability`."""
    phi = churn_probability(pop.churn_propensity, state.engagement_trend, state.valence, settings)
    starts = ~state.churned & (noise.churn_uniform < phi)
    stays = state.churned & (noise.churn_uniform >= settings.reengage_probability)
    return starts | stays


def responsive_session(
    seconds: np.ndarray,
    started_before: np.ndarray,
    skipped: np.ndarray,
    engagement: np.ndarray,
    budget_s: np.ndarray,
    response: float,
    mean_engagement: float,
) -> np.ndarray:
    """(n, F) bool: the feed positions a user reaches when the session responds to the feed
    with strength `response` in (0, 1] (docs/simulator.md, "Session response").

    Each watched video pulls the remaining budget by SESSION_PULL x response x (its
    engagement - the pool's mean) x its seconds, the budget staying within 1 +- response x
    SESSION_BOUND of the drawn one; after ceil(SKIP_RUN / response) skips in a row the user
    leaves. A position is reached while it starts inside the budget pulled so far and the
    user has not left."""
    watched_pull = np.where(skipped, 0.0, (engagement - mean_engagement) * seconds)
    pull_before = np.cumsum(watched_pull, axis=1) - watched_pull
    budget = budget_s[:, None]
    budget_at = np.clip(budget + SESSION_PULL * response * pull_before,
                        budget * (1.0 - response * SESSION_BOUND), budget * (1.0 + response * SESSION_BOUND))
    # Skips in a row up to each position: the count since the last watched video.
    count = np.cumsum(skipped, axis=1)
    run = count - np.maximum.accumulate(np.where(skipped, 0, count), axis=1)
    run_before = np.concatenate([np.zeros((run.shape[0], 1), run.dtype), run[:, :-1]], axis=1)
    left = np.logical_or.accumulate(run_before >= int(np.ceil(SKIP_RUN / response)), axis=1)
    return np.logical_and.accumulate((started_before < budget_at) & ~left, axis=1)


def scroll_feeds(
    feed: np.ndarray, feed_valid: np.ndarray, skip_scale: np.ndarray, pool: VideoPool, noise: DayNoise
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each (user, position) of the feeds, as if the budget were endless: whether the video is
    skipped, the float32 seconds spent on it (0 past the feed's valid prefix) and the seconds
    spent before it, from the user's skip scale per category (n, 4). One compiled pass, in
    float32 as numpy's: P(skip) = clip(scale[category] * (1 - engagement)), skipped when the
    day's uniform falls below it; a skipped video is seen for its partial-view share; the
    seconds before a position are the running sum less its own seconds."""
    n, f = feed.shape
    if feed_valid.shape != feed.shape or noise.skip_uniform.shape != feed.shape:
        raise ValueError(f"feeds {feed.shape}, their mask {feed_valid.shape} and the day's noise "
                         f"{noise.skip_uniform.shape} must have one shape")
    if skip_scale.shape != (n, len(CATEGORIES)):
        raise ValueError(f"skip_scale must be (n_users, {len(CATEGORIES)}), got {skip_scale.shape}")
    if feed.size and (feed.min() < 0 or feed.max() >= pool.size):
        raise ValueError(f"feeds name videos outside 0..{pool.size - 1}")
    skipped = np.empty((n, f), dtype=np.bool_)
    seconds = np.empty((n, f), dtype=np.float32)
    started_before = np.empty((n, f), dtype=np.float32)
    _scroll(np.ascontiguousarray(feed, dtype=np.int64), np.ascontiguousarray(feed_valid, dtype=np.bool_),
            np.ascontiguousarray(skip_scale, dtype=np.float32), pool.category, pool.engagement, pool.duration_s,
            noise.skip_uniform, noise.partial_view, np.float32(SKIP_PROBABILITY_BOUNDS[0]),
            np.float32(SKIP_PROBABILITY_BOUNDS[1]), skipped, seconds, started_before)
    return skipped, seconds, started_before


@compiled.njit(nogil=True)
def _scroll(feed, valid, skip_scale, category, engagement, duration, skip_uniform, partial_view, low, high,
            skipped, seconds, started_before):  # pragma: no cover - compiled
    one, zero = np.float32(1.0), np.float32(0.0)
    for i in range(feed.shape[0]):
        total = zero
        for j in range(feed.shape[1]):
            video = feed[i, j]
            p = skip_scale[i, category[video]] * (one - engagement[video])
            p = min(max(p, low), high)
            skip = skip_uniform[i, j] < p
            spent = duration[video] * (partial_view[i, j] if skip else one)
            if not valid[i, j]:
                spent = zero
            total = total + spent
            skipped[i, j] = skip
            seconds[i, j] = spent
            started_before[i, j] = total - spent


@dataclass(frozen=True)
class DayResult:
    """The day's features per user plus the impressions, as flat arrays of equal length
    (one entry per feed position a user reached, in user-then-position order)."""

    features: dict[str, np.ndarray]  # one (n,) array per user-day column
    rows: np.ndarray  # index of the user within the cohort
    positions: np.ndarray  # feed position
    videos: np.ndarray  # video id
    watched: np.ndarray  # bool: not skipped
    seconds: np.ndarray  # float32 seconds spent
    satisfaction: np.ndarray  # int8 latent r in {-1, 0, 1} (evaluation only)
    feedback: np.ndarray  # int8 index into vocabulary.SIGNALS
    state: UserState  # tomorrow's state


def simulate_day(
    feed: np.ndarray,
    feed_valid: np.ndarray,
    day: int,
    pool: VideoPool,
    pop: Population,
    state: UserState,
    noise: DayNoise,
    churned: np.ndarray,
    settings: SimulationSettings,
) -> DayResult:
    """Consume the ranked `feed` (n, F video ids; `feed_valid` marks real entries, a prefix of
    each row) for every user at once, then compute the day's features and tomorrow's state."""
    n = pop.size
    active = ~churned
    loud = pop.feedback_style == settings.feedback_styles.index("outraged") if settings.outraged_logs else None
    mult = behaviour_multipliers(state.valence, state.arousal, settings.emotion_signal, loud)

    # Eq. 1-2: scroll time and the watch-time budget, modulated by the latent state.
    scroll = np.where(active, noise.scroll_gamma * noise.session * mult["scroll"], 0.0)
    budget_minutes = pop.watch_low + (pop.watch_high - pop.watch_low) * noise.watch_uniform
    budget_s = np.where(active, budget_minutes * noise.session * mult["watch"] * 60.0, 0.0)

    # Algorithm 1: skip probability rises as engagement falls; preferred categories are
    # skipped less, and the mood scales skipping (stressed users skip most).
    pref_factor = np.clip(power(0.25 / np.maximum(noise.preference, 1e-6), 0.25), 0.6, 1.6)
    skip_scale = (SKIP_SCALE * mult["skip"][:, None] * pref_factor).astype(np.float32)
    skipped, seconds, started_before = scroll_feeds(feed, feed_valid, skip_scale, pool, noise)
    if settings.session_response > 0:
        consumed = responsive_session(
            seconds, started_before, skipped, pool.engagement[feed], budget_s, settings.session_response,
            float(pool.engagement.mean()),
        ) & feed_valid & active[:, None]
        reached = np.where(consumed, seconds, 0.0).sum(axis=1)
        scroll = scroll * np.clip(np.divide(reached, budget_s, out=np.zeros(n), where=budget_s > 0),
                                  0.0, 1.0 + SESSION_BOUND)
    else:
        consumed = feed_valid & (started_before < budget_s[:, None]) & active[:, None]

    # From here on only the reached positions matter: aggregate them with bincount.
    rows, positions = np.nonzero(consumed)
    videos = feed[rows, positions]
    watched = ~skipped[rows, positions]
    sec = seconds[rows, positions].astype(np.float64)
    response = (pop.susceptibility[rows] * pool.intensity[videos] / 10.0 * pool.valence[videos]).astype(np.float64)
    appeal = 4.0 * noise.preference[rows, pool.category[videos]]
    r = satisfaction(response, appeal, watched, settings)
    signal = emit(pop.feedback_style[rows], r, watched, noise.feedback_uniform[rows, positions],
                  noise.oracle_uniform[rows, positions], settings)

    def per_user(weights: np.ndarray | None = None) -> np.ndarray:
        return np.bincount(rows, weights=weights, minlength=n)

    def per_user_mean(values: np.ndarray) -> np.ndarray:
        return np.divide(per_user(sec * values), total_s, out=np.zeros(n), where=total_s > 0)

    total_s = per_user(sec)
    watch_minutes = total_s / 60.0
    n_impressions = per_user().astype(np.int64)
    n_watched = per_user(watched.astype(np.float64)).astype(np.int64)
    intensity = pool.intensity[videos].astype(np.float64)
    mean_intensity = per_user_mean(intensity)
    content_valence = per_user_mean(intensity / 10.0 * pool.valence[videos])
    content_arousal = per_user_mean(intensity / 10.0 * pool.arousal[videos])
    engagement = pool.engagement[videos].astype(np.float64)
    mean_engagement = per_user_mean(engagement)

    # Eq. 5: composite engagement (engagement-weighted watch minutes) and its smoothed trend.
    daily_engagement = per_user(sec * engagement) / 60.0
    trend = smoothed_trend(state.engagement_trend, daily_engagement, settings.engagement_threshold)

    # Interactions: Poisson counts per watched video with a daily intensity: lognormal for
    # likes (long tail), increasingly over-dispersed gamma for comments and shares.
    u = noise.count_uniform
    likes = poisson_quantiles(u[:, 0], n_watched * pop.like_rate * mult["like"] * noise.like_intensity * (0.5 + mean_engagement))
    comments = poisson_quantiles(u[:, 1], n_watched * pop.comment_rate * mult["comment"] * noise.comment_intensity)
    shares = poisson_quantiles(u[:, 2], n_watched * pop.share_rate * mult["share"] * noise.share_intensity)
    logins = np.where(active, 1 + poisson_quantiles(u[:, 3], pop.login_rate * noise.session * mult["login"]), 0)
    burst = active & (noise.post_uniform[:, 0] < np.clip(pop.post_probability * mult["post"], 0, 1))
    burst_len = 1 + np.floor(log(noise.post_uniform[:, 1]) / math.log(POST_BURST_CONTINUE)).astype(np.int32)
    posts = np.where(burst, burst_len, 0)

    features: dict[str, np.ndarray] = {
        "is_weekend": np.full(n, is_weekend(day)),
        "is_spike": noise.is_spike & active,
        "churned": churned,
        "scroll_minutes": scroll,
        "watch_minutes": watch_minutes,
        "logins": logins,
        "posts": posts,
        "likes": likes,
        "comments": comments,
        "shares": shares,
        "engagement": daily_engagement,
        "engagement_trend": trend,
        "scroll_watch_ratio": scroll / np.maximum(watch_minutes, 1.0),
        "n_impressions": n_impressions,
        "n_watched": n_watched,
        "n_skipped": n_impressions - n_watched,
        "skip_rate": np.divide(n_impressions - n_watched, n_impressions, out=np.zeros(n), where=n_impressions > 0),
        "mean_intensity": mean_intensity,
        "intensity_change": np.where(n_impressions > 0, mean_intensity - state.last_intensity, 0.0),
        "content_valence": content_valence,
        "content_arousal": content_arousal,
        "mean_video_engagement": mean_engagement,
    }
    n_cat, n_emo = len(CATEGORIES), len(EMOTIONS)
    cat_time = np.bincount(rows * n_cat + pool.category[videos], weights=sec, minlength=n * n_cat).reshape(n, n_cat)
    emo_time = np.bincount(rows * n_emo + pool.emotion[videos], weights=sec, minlength=n * n_emo).reshape(n, n_emo)
    safe_total = np.maximum(total_s, 1e-9)[:, None]
    cat_share, emo_share = cat_time / safe_total, emo_time / safe_total
    for k, name in enumerate(CATEGORIES):
        features[f"time_{name}"] = cat_share[:, k]
    for k, name in enumerate(EMOTIONS):
        features[f"share_{name}"] = emo_share[:, k]
    features["negative_share"] = emo_share[:, _NEGATIVE_EMOTION_IDX].sum(axis=1)
    none = n_impressions == 0
    features["dominant_category"] = np.where(none, -1, cat_time.argmax(axis=1))
    features["dominant_emotion"] = np.where(none, -1, emo_time.argmax(axis=1))
    features["true_emotion"] = true_emotion(state.valence, state.arousal, churned)
    features["true_valence"] = state.valence
    features["true_arousal"] = state.arousal

    valence, arousal = update_latent(
        state.valence,
        state.arousal,
        baseline_valence=pop.baseline_valence,
        baseline_arousal=pop.baseline_arousal,
        recovery_rate=pop.recovery_rate,
        susceptibility=pop.susceptibility,
        content_valence=content_valence,
        content_arousal=content_arousal,
        watch_minutes=watch_minutes,
        engagement_trend=trend,
        engagement_valence_effect=settings.engagement_valence_effect,
        valence_noise=noise.valence_noise,
        arousal_noise=noise.arousal_noise,
        content_effect=settings.content_effect,
    )
    next_state = replace(
        state,
        valence=valence,
        arousal=arousal,
        engagement_trend=trend,
        churned=churned,
        last_intensity=np.where(n_impressions > 0, mean_intensity, state.last_intensity),
    )
    return DayResult(
        features=features,
        rows=rows,
        positions=positions,
        videos=videos,
        watched=watched,
        seconds=sec.astype(np.float32),
        satisfaction=r,
        feedback=signal,
        state=next_state,
    )

