"""The settings' sections: what each stage reads, every field bounded by what the code can
run (docs/integrity.md), with the limits the sections and the settings share."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..vocabulary import DEFAULT_STYLES, EMOTION_SOURCES, REWARD_TIMINGS, STYLES


class SettingsError(ValueError):
    """Raised for an unknown preset, an invalid field or an invalid seed."""


class _Frozen(BaseModel):
    # allow_inf_nan=False: NaN and infinities are refused in every float, inside tuples and maps too
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


# What the code can actually run (docs/integrity.md): beyond these a run would exhaust memory
# or never end, below MIN_SPLIT_USERS a model has nothing to fit, validate or test on.
MAX_USERS = 1_000_000
MAX_DAYS = 365
#: users x days: the large preset simulates 3 million user-days in about 9 GB; twice that fits 24 GB
MAX_USER_DAYS = 6_000_000
#: users in each part of every split: the emotion models' and the ranker's train / validation /
#: test users, the agents' training and held-out evaluation users
MIN_SPLIT_USERS = 4
#: the seeds every library accepts (scikit-learn's and LightGBM's random states are 32-bit)
MAX_SEED = 2**32 - 1
#: the ranker's train / validation / test shares of users (policy/ranker.py)
RANKER_SPLIT = (0.7, 0.15, 0.15)


#: P(signal | r) per communication style for a watched video (sim/feedback.py), r in -1, 0, +1.
#: The same signal means different things to different users: expressive users comment when
#: pleased, critical users when displeased, passive users watch to the end what they dislike,
#: and outraged users like, share and comment on what upsets them while their pleasure is quiet
#: (engagement that hides distress; in no population unless its share is set).
STYLE_SIGNALS: dict[str, dict[int, dict[str, float]]] = {
    "expressive": {
        1: {"like": 0.45, "share": 0.2, "comment": 0.2, "watch": 0.15},
        0: {"watch": 0.9, "like": 0.1},
        -1: {"watch": 1.0},
    },
    "critical": {
        1: {"watch": 0.7, "like": 0.3},
        0: {"watch": 0.95, "like": 0.05},
        -1: {"comment": 0.6, "watch": 0.4},
    },
    "passive": {
        1: {"watch": 0.85, "like": 0.15},
        0: {"watch": 1.0},
        -1: {"watch": 1.0},
    },
    "outraged": {
        1: {"watch": 0.95, "like": 0.05},
        0: {"watch": 1.0},
        -1: {"like": 0.5, "share": 0.2, "comment": 0.2, "watch": 0.1},
    },
}
#: what a watched video's signal may be (a skip is not watching; "not_interested" comes only
#: with r = -1, at `not_interested_rate`, whatever the style)
STYLE_SIGNAL_CHOICES = ("watch", "like", "comment", "share")
assert tuple(STYLE_SIGNALS) == STYLES, "the style table follows the vocabulary's styles"


class SimulationSettings(_Frozen):
    """Phase I: content pool, user population and the 30-day logging simulation."""

    n_videos: int = Field(1_000, le=100_000, gt=0, description="size of the content pool")
    n_users: int = Field(1_000, le=MAX_USERS, gt=0, description="users simulated per seed")
    n_days: int = Field(30, le=MAX_DAYS, ge=2, description="days per user")
    feed_length: int = Field(200, le=2_000, gt=0, description="videos ranked into one user-day feed")
    user_chunk_size: int = Field(
        20_000, le=MAX_USERS, gt=0, description="users simulated at once; bounds memory for the large preset"
    )
    seen_window_days: int = Field(5, le=MAX_DAYS, ge=0, description="a video shown within this many days is not shown again")
    top_share: float = Field(0.7, ge=0, le=1, description="share of a feed drawn from top-engagement videos")
    top_quantile: float = Field(0.25, gt=0, le=1, description="the top-engagement pool: this quantile of each category")
    spike_probability: float = Field(0.1, ge=0, le=1, description="chance a day is a usage spike (Eq. 2)")
    mean_video_seconds: float = Field(45.0, le=3_600, gt=0, description="v-bar of Eq. 3-4")
    engagement_threshold: float = Field(
        14.0, le=10_000, gt=0, description="tau of Eq. 5: daily engagement above it counts as rising"
    )
    churn_trend_weight: float = Field(-1.0, ge=-100, le=100, description="alpha of Eq. 6 (negative: rising engagement lowers churn)")
    churn_valence_weight: float = Field(-1.0, ge=-100, le=100, description="extra churn logit per unit of negative latent valence")
    reengage_probability: float = Field(0.1, ge=0, le=1, description="daily chance a churned user returns")
    profile_shares: tuple[float, float, float] = Field(
        (0.5, 0.35, 0.15), description="shares of casual, engaged, highly_active users"
    )
    feedback_style_shares: dict[str, float] = Field(
        dict(zip(DEFAULT_STYLES, (0.4, 0.3, 0.3))), description="the population's communication "
        "styles and their shares (give every style: overrides merge into the default), styles of "
        "feedback_style_signals; the users' feedback_style categories follow that table's order"
    )
    feedback_style_signals: dict[str, dict[int, dict[str, float]]] = Field(
        STYLE_SIGNALS, description="P(signal | r) per communication style for a watched video, r in -1, 0, 1 "
        "(sim/feedback.py); signals: watch, like, comment, share"
    )
    satisfied_appeal: float = Field(
        1.6, le=100, gt=0, description="IGL-P latent satisfaction: a watched video with appeal * (1 + response) at or above "
        "this is r = +1 (sim/feedback.py)"
    )
    dissatisfied_response: float = Field(
        0.15, le=100, gt=0, description="IGL-P latent satisfaction: a video whose pull on the user's valence is at or below "
        "minus this is r = -1"
    )
    not_interested_rate: float = Field(
        0.3, ge=0, le=1, description="chance that an r = -1 impression gives the definitely-negative "
        "'not_interested' signal instead of the style's own"
    )
    latent_noise_scale: float = Field(0.06, le=10, ge=0, description="Laplace scale of daily valence noise")
    engagement_valence_effect: float = Field(0.03, ge=-10, le=10, description="c of the valence update: weight of Delta E")
    emotion_signal: float = Field(
        1.0, le=100, ge=0, description="how strongly the latent state shapes behaviour: scales the behaviour multipliers' "
        "deviation from 1 and the churn push of negative valence (0: behaviour carries no emotion, though what is "
        "watched and the engagement trend still move it; 1: as designed)"
    )
    content_effect: float = Field(
        1.0, le=100, ge=0, description="scales the watched-content term of the valence and arousal update (0: content has "
        "no direct pull on emotion, the feed only reaches it through the engagement trend; 1: as designed)"
    )
    session_response: float = Field(
        0.0, ge=0, le=1, description="how much the day's session responds to what is served (docs/simulator.md): 0 "
        "is the paper's exogenous watch budget; above 0, engaging videos extend the session and a run of skips "
        "ends it, and scroll time follows the session's length"
    )
    outraged_logs: bool = Field(
        False, description="outraged users' engagement hides distress in the logs too: their likes, comments and "
        "shares take the behaviour multipliers of the state of opposite valence at the same arousal, so they are "
        "loud when upset and quiet when pleased (false: the style shapes only the per-impression signals)"
    )

    @model_validator(mode="after")
    def _shares_are_distributions(self) -> SimulationSettings:
        for name in ("profile_shares", "feedback_style_shares"):
            shares = getattr(self, name)
            values = list(shares.values()) if isinstance(shares, dict) else list(shares)
            if not values or not all(math.isfinite(v) and v >= 0 for v in values) or abs(sum(values) - 1.0) > 1e-9:
                raise ValueError(f"{name} must be non-negative and sum to 1, got {shares}")
        unknown = set(self.feedback_style_shares) - set(self.feedback_style_signals)
        if unknown:
            raise ValueError(f"feedback_style_shares names styles without signals: {sorted(unknown)} "
                             f"(feedback_style_signals has {sorted(self.feedback_style_signals)})")
        for style, rows in self.feedback_style_signals.items():
            if set(rows) != {-1, 0, 1}:
                raise ValueError(f"feedback_style_signals[{style!r}] needs rows for r = -1, 0 and 1, got {sorted(rows)}")
            for r, probabilities in rows.items():
                bad = set(probabilities) - set(STYLE_SIGNAL_CHOICES)
                finite = all(math.isfinite(v) and v >= 0 for v in probabilities.values())
                if bad or not probabilities or not finite or abs(sum(probabilities.values()) - 1) > 1e-9:
                    raise ValueError(f"feedback_style_signals[{style!r}][{r}] must be a distribution over "
                                     f"{STYLE_SIGNAL_CHOICES}, got {probabilities}")
        if self.outraged_logs and not self.feedback_style_shares.get("outraged", 0.0) > 0:
            raise ValueError("outraged_logs needs outraged users: give feedback_style_shares a positive 'outraged' share")
        return self

    @property
    def feedback_styles(self) -> tuple[str, ...]:
        """The population's communication styles (those with a share), in the order of
        `feedback_style_signals`: canonical, so that the order a share mapping is written in
        (which reuse keys and scenario names ignore) cannot change the users."""
        return tuple(style for style in self.feedback_style_signals if style in self.feedback_style_shares)


class EmotionSettings(_Frozen):
    """Phase II (a): cluster labels and the TabTransformer emotion model."""

    n_clusters: int = Field(5, ge=2, le=5, description="K-Means clusters on active days (paper: 5)")
    drop_threshold: float = Field(0.5, gt=0, lt=1, description="engagement below this share of the previous active day's is a sharp drop (-> stressed)")
    cluster_sample_days: int | None = Field(
        None, le=MAX_USER_DAYS, ge=100, description="active days K-Means is fitted on, a seeded sample when there are more "
        "(None: all); every day is still labelled. Bounds the fit at the large preset"
    )
    standardise_within: Literal["profile", "global"] = Field(
        "profile", description="scale cluster features per profile, or once globally as the paper does"
    )
    split: tuple[float, float, float] = Field((0.7, 0.15, 0.15), description="train/validation/test shares of users")
    max_model_users: int | None = Field(
        None, le=MAX_USERS, gt=0, description="users whose days train, validate and test the models: a seeded sample of "
        "each split part, shares kept, when the population is larger (None: all); every day is still predicted"
    )
    d_model: int = Field(16, le=512, gt=0, description="TabTransformer embedding width")
    n_heads: int = Field(2, le=64, gt=0, description="attention heads")
    n_layers: int = Field(1, le=16, gt=0, description="transformer encoder layers")
    layer_norm_continuous: bool = Field(
        False,
        description="layer-normalise the continuous inputs as Huang et al. do; off by default because it "
        "removes each day's overall activity level, the main signal (test accuracy 0.948 vs 0.972, seed 0)",
    )
    max_epochs: int = Field(30, le=1_000, gt=0, description="training epochs at most")
    patience: int = Field(6, le=1_000, gt=0, description="epochs without validation-loss improvement before stopping")
    batch_size: int = Field(1024, le=1_000_000, gt=0)
    learning_rate: float = Field(4e-3, le=10, gt=0)

    @model_validator(mode="after")
    def _valid_split(self) -> EmotionSettings:
        if min(self.split) <= 0 or abs(sum(self.split) - 1.0) > 1e-6:
            raise ValueError(f"split must be three positive shares summing to 1, got {self.split}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        return self


class CausalSettings(_Frozen):
    """Phase II (b): per-user DirectLiNGAM causal DAGs."""

    min_rows: int = Field(21, le=MAX_DAYS, ge=21, description="usable day pairs a user needs (more than the 19 features)")
    method: Literal["per_user", "pooled", "per_user_pooled_order"] = Field(
        "per_user", description="which DAGs feed the parents used downstream (chosen by F1 against the true graph)"
    )
    device: Literal["auto", "cpu", "torch-cpu", "cuda"] = Field(
        "cpu", description="numpy on the CPU (cpu, the same bytes on every machine); torch-cpu runs the torch code "
        "on the CPU's threads; cuda, or auto where a GPU is present, computes on the GPU, whose bytes differ"
    )
    pooled_max_users: int | None = Field(
        None, le=MAX_USERS, gt=0, description="users whose days the pooled DAG is fitted on: a seeded sample when there are "
        "more (None: all); its cost grows with all users' rows together"
    )


class PolicySettings(_Frozen):
    """Phase III: the engagement ranker, the candidate stage and the Q-learning agents
    (paper Table 3 for the agents' hyper-parameters)."""

    ranker_learning_rate: float = Field(
        0.3, gt=0, le=1, description="LightGBM shrinkage; 0.3 and 15 leaves reach the test AUC of 0.05 and 31 "
        "leaves (0.838, seed 0) with 27 small trees instead of 169, which keeps closed-loop ranking cheap"
    )
    ranker_num_leaves: int = Field(15, le=4_096, ge=2)
    ranker_max_trees: int = Field(500, le=100_000, gt=0, description="boosting rounds at most (early stopping on AUC)")
    ranker_early_stopping_rounds: int = Field(10, le=10_000, gt=0)
    ranker_max_users: int | None = Field(
        None, le=MAX_USERS, gt=0, description="users whose logged impressions train, validate and test the ranker: a seeded "
        "sample, split shares kept, when the population is larger (None: all)"
    )
    candidates: int = Field(
        112, le=2_000, gt=0, description="videos per user-day re-ranked by LightGBM after the popularity candidate stage "
        "(users scroll past 54 a day on average, 108 at the 90th percentile)"
    )
    evaluation_share: float = Field(
        0.5, gt=0, lt=1, description="share of users held out for evaluation; the agents train on others"
    )
    max_evaluation_users: int | None = Field(
        None, le=MAX_USERS, gt=0, description="held-out users the policies are evaluated on at most (None: all held out); "
        "the closed-loop rollouts cost is linear in it"
    )
    training_users: int = Field(
        200, le=MAX_USERS, gt=0, description="users the agents train on, drawn from those not held out (training cost is linear in it)"
    )
    epochs: int = Field(10, gt=0, lt=1000, description="Q-learning epochs (Table 3: 10)")
    learning_rate: float = Field(0.1, gt=0, le=1, description="Q-learning step size (Table 3: 0.1)")
    state_last_bucket: bool = Field(
        False, description="the agents' state also holds the bucket that led the user's feed yesterday (9 x 72 "
        "states), so a delayed effect of a bucket can be credited to it"
    )
    reward_timing: Literal[REWARD_TIMINGS] = Field(
        "same_day", description="which observation scores an action's R_emo and R_cause: the day it was served "
        "(the paper's), or the next day, which the served feed can have moved (credited to the action before it)"
    )
    learning_rate_decay: float | None = Field(
        None, gt=0.5, le=1, description="None: Table 3's fixed step; omega in (0.5, 1]: the step of a "
        "state-action pair's n-th visit is 1 / n^omega (learning_rate is then unused)"
    )
    emotion_source: Literal[EMOTION_SOURCES] = Field(
        "tabtransformer", description="the emotion estimate the platform uses in the loop (agent state, R_emo, the "
        "hybrid trigger, the ranker's emotion feature): the paper's TabTransformer, a baseline trained on the same "
        "cluster labels, the TabTransformer trained on the latent truth, or the truth itself (oracle: a diagnostic)"
    )
    agent_replicates: int = Field(
        1, le=100, ge=1, description="agents trained per seed for each of replicated_agents, each on its own random stream "
        "(exploration and training noise); replicate r >= 1 of esmr is evaluated as policy esmr@r. Replicates "
        "1..K-1 train together in one cohort, so esmr@r is reproducible for a given K (its noise rows depend on K)"
    )
    replicated_agents: tuple[str, ...] = Field(
        ("esmr",), description="the agents (policy names) trained agent_replicates times"
    )
    plugins: tuple[str, ...] = Field(
        (), description="modules outside the package that register policies (`policy.loop.registry.register`): "
        "imported before the graph runs, their policies act in the rollouts beside the package's own"
    )
    deep_learners: tuple[str, ...] = Field(
        (), description="the stable-baselines3 learners of the registry the policy stage trains (dqn_esmr, ppo_esmr, "
        "ppo_engagement, ppo_emotion); none by default, to keep a seed's graph fast"
    )
    deep_budget: float = Field(
        1.0, gt=0, le=100, description="each deep learner's training in user-days, as a multiple of one tabular agent's "
        "(epochs x training users x days)"
    )
    discount: float = Field(0.95, ge=0, lt=1, description="gamma (Table 3: 0.95)")
    eta: float = Field(1.0, le=100, ge=0, description="emotional recovery bonus of Algorithm 2 (Table 3: 1.0)")
    alpha: float = Field(1.0, le=100, ge=0, description="weight of R_emo in Eq. 8")
    beta: float = Field(0.5, le=100, ge=0, description="weight of R_cause in Eq. 8 (Table 3: 0.5)")
    causal_amplification: float = Field(2.0, le=100, ge=1, description="R_cause multiplier while the user is vulnerable")
    replay_size: int = Field(10_000, le=10_000_000, gt=0, description="replay buffer (Table 3: 10,000)")
    replay_batch: int = Field(256, le=1_000_000, ge=0, description="transitions replayed after each simulated day")
    temperature: float = Field(1.0, le=1_000_000, gt=0, description="initial Boltzmann temperature")
    temperature_decay: float = Field(0.7, gt=0, le=1, description="temperature multiplier per epoch")
    min_temperature: float = Field(0.05, le=1_000_000, gt=0)
    rl_streak: int = Field(3, le=MAX_DAYS, ge=1, description="negative-or-neutral days after which the hybrid hands over to RL")
    bandit_epsilon: float = Field(0.1, gt=0, le=1, description="exploration of the IGL-P and hand-reward bandits")
    igl_alpha: float = Field(
        0.3, gt=0, le=1, description="IGL-P(3)'s negative labelling propensity: the assumed chance that a latent "
        "r = -1 says 'not interested' (the simulator's not_interested_rate)"
    )
    igl_learning_rate: float = Field(0.05, le=10, gt=0, description="Adam step of the inverse-kinematics model")
    igl_epochs: int = Field(3, le=100, gt=0, description="passes of the bandits over the training users' 30 days")
    bandit_context: Literal["shared", "personal"] = Field(
        "shared", description="the bandits' decision context: yesterday's predicted label and the profile "
        "(shared), or those and the user's own mix of feedback signals so far (personal: lets a bandit serve "
        "communication styles differently without being told them)"
    )


class EvaluationSettings(_Frozen):
    """How policies are compared: paired per-user effects against a reference policy, and
    the diagnostic oracle that looks one day ahead."""

    reference_policy: str = Field(
        "lightgbm", description="the policy every other is compared with (a name of policy.registry.POLICIES)"
    )
    bootstrap_resamples: int = Field(
        2000, le=100_000, ge=2000, description="per-user bootstrap resamples behind each effect's 95 % interval"
    )
    oracle_draws: int = Field(
        2, le=100, ge=1, description="oracle_best_feed: days simulated per bucket to estimate the expected next-day "
        "latent valence (the same draws for every bucket)"
    )
    planner_horizon: int = Field(
        0, ge=0, le=30, description="oracle_planner's look-ahead in days (today's bucket, then the ranker's feed); "
        "0 leaves it out (its cost grows with horizon x buckets x oracle_draws); 1 is oracle_best_feed"
    )
