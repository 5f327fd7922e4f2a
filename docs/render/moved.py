"""How each headline finding moved from the 5-seed figures of the old code to the archive's:
the block between `<!-- findings-moved:start -->` and `<!-- findings-moved:end -->`.

Per finding (HEADLINES: a scenario, a policy and a metric): the old effect against
`lightgbm` with its 95 % t interval (studies/previous/effects.parquet), the archive's, the
verdict of each (helps, null or harms: the interval wholly on the good side of zero, across
it, or wholly on the bad side), whether the verdict changed, and where the archive's interval
still crosses zero, how many seeds would exclude it if the mean and the SD across seeds
stayed as observed (the smallest n with t(0.975, n − 1) · SD / √n < |mean|).

    .venv/bin/python docs/render/moved.py
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import esmr_assets  # noqa: F401  (pins the numeric kernels before numpy loads)
import polars as pl
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the renderers' own helpers, run as scripts or loaded by path
from blocks import DOCS, write_block  # noqa: E402
from figures import DIGITS, PREVIOUS, Archive, interval  # noqa: E402
from sources import CELLS  # noqa: E402

from esmr_assets.orchestration.metadata import markdown_table_text  # noqa: E402

#: metrics on which a lower effect is the better one
LOWER_IS_BETTER = {"negative_days", "volatility", "bounce_rate", "recovery_time"}
#: seeds beyond which the estimate is not worth quoting
MAX_SEEDS = 1000
#: (finding, scenario, policy, metric): the figures the findings of the README and docs/ rest on
HEADLINES = (
    ("ESMR's agent, pooled over five replicates", "fair_test.paper", "esmr@all", "negative_days"),
    ("ESMR's agent, one replicate", "fair_test.paper", "esmr", "negative_days"),
    ("the fixed happy bucket on ESMR's trigger", "fair_test.paper", "hybrid_fixed_happy", "negative_days"),
    ("the best fixed bucket on the trigger", "fair_test.paper", "hybrid_best_fixed", "negative_days"),
    ("happy every day", "fair_test.paper", "always_happy", "negative_days"),
    ("the one-step best feed (oracle)", "fair_test.paper", "oracle_best_feed", "negative_days"),
    ("ESMR on the latent truth (oracle)", "fair_test.paper", "oracle_esmr", "negative_days"),
    ("ESMR pooled, next-day credit", "fair_test.next_day", "esmr@all", "negative_days"),
    ("ESMR pooled, yesterday's bucket in the state", "fair_test.last_bucket", "esmr@all", "negative_days"),
    ("ESMR pooled, both fixes", "fair_test.last_bucket.next_day", "esmr@all", "negative_days"),
    ("ESMR pooled, a decaying step", "fair_test.learning_rate_decay", "esmr@all", "negative_days"),
    ("ESMR pooled, a responsive session", "fair_test.session_response", "esmr@all", "negative_days"),
    ("ESMR pooled, a responsive session: engagement", "fair_test.session_response", "esmr@all", "engagement_reward"),
    ("ESMR, emotion unobservable (σ = 0)", "observability.signal_0", "esmr", "negative_days"),
    ("ESMR, emotion very observable (σ = 4)", "observability.signal_4", "esmr", "negative_days"),
    ("the fixed happy bucket, σ = 0", "observability.signal_0", "hybrid_fixed_happy", "negative_days"),
    ("ESMR when content pulls four times as hard", "content_effect.content_4", "esmr", "negative_days"),
    ("ESMR with a truth-trained emotion model", "emotion_models.truth_trained", "esmr", "negative_days"),
    ("ESMR fed the latent label", "emotion_models.oracle", "esmr", "negative_days"),
    ("ESMR without R_cause (β = 0)", "sensitivity.beta_0", "esmr", "negative_days"),
    ("ESMR acting after one bad day", "sensitivity.rl_streak_1", "esmr", "negative_days"),
    ("ESMR acting after five bad days", "sensitivity.rl_streak_5", "esmr", "negative_days"),
    ("ESMR without R_emo (α = 0)", "sensitivity.alpha_0", "esmr", "negative_days"),
    ("ESMR with R_emo at half weight (α = 0.5)", "sensitivity.alpha_0.5", "esmr", "negative_days"),
    ("ESMR over 90 days", "horizon.days_90", "esmr", "negative_days"),
    ("the fixed happy bucket over 90 days", "horizon.days_90", "hybrid_fixed_happy", "negative_days"),
    ("ESMR, 10 epochs over 600 users", "training_budget.epochs_10.users_600", "esmr", "negative_days"),
    ("ESMR, 30 epochs over 600 users", "training_budget.epochs_30.users_600", "esmr", "negative_days"),
    ("ESMR when the session half responds", "engagement_tradeoff.session_0.5", "esmr", "negative_days"),
    ("ESMR when the session responds fully", "engagement_tradeoff.session_1", "esmr", "negative_days"),
    ("ESMR when the session responds fully: engagement", "engagement_tradeoff.session_1", "esmr",
     "engagement_reward"),
    ("the like bandit when 30 % like what upsets them", "igl_styles.outraged_30", "cb_like", "negative_days"),
    ("ESMR when the logs hide distress", "igl_styles.outraged_30.loud_logs", "esmr", "negative_days"),
    ("IGL-P(3) when 30 % like what upsets them", "igl_styles.outraged_30", "igl_p3", "negative_days"),
    ("PPO on Eq. 8, the paper's budget", "learners.budget_1.session_0", "ppo_esmr", "negative_days"),
    ("PPO on R_eng alone, 10x", "learners.budget_10.session_0", "ppo_engagement", "negative_days"),
    ("DQN on Eq. 8, the paper's budget", "learners.budget_1.session_0", "dqn_esmr", "negative_days"),
    ("DQN on Eq. 8, 10x", "learners.budget_10.session_0", "dqn_esmr", "negative_days"),
    ("PPO on R_eng alone, 10x, a responsive session: engagement", "learners.budget_10.session_0.5",
     "ppo_engagement", "engagement_reward"),
    ("the 3-day planner (oracle)", "learners.budget_1.session_0", "oracle_planner", "negative_days"),
)


def verdict(metric: str, low: float | None, high: float | None) -> str:
    if low is None or high is None or low != low:
        return "–"
    good_low, good_high = (-high, -low) if metric in LOWER_IS_BETTER else (low, high)
    return "helps" if good_low > 0 else "harms" if good_high < 0 else "null"


def seeds_to_decide(mean: float, sd: float) -> str:
    """The seeds at which the interval would exclude zero, were the mean and SD to stay."""
    if not sd or mean == 0:
        return "–"
    for n in range(2, MAX_SEEDS + 1):
        if stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n) < abs(mean):
            return str(n)
    return f"> {MAX_SEEDS}"


def moved_table(cells: Path = CELLS) -> str:
    new = Archive(cells).effects
    old = pl.read_parquet(PREVIOUS)
    rows = []
    for finding, scenario, policy, metric in HEADLINES:
        def one(frame: pl.DataFrame) -> dict | None:
            hit = frame.filter((pl.col("scenario") == scenario) & (pl.col("policy") == policy)
                               & (pl.col("metric") == metric))
            return hit.row(0, named=True) if hit.height else None

        before, after = one(old), one(new)
        digits = DIGITS.get(metric, 3)

        def text(r):
            return "–" if r is None else f"{interval(r['effect'], r['ci95_low'], r['ci95_high'], digits)} ({r['seeds']})"

        was = verdict(metric, *(before[c] if before else None for c in ("ci95_low", "ci95_high")))
        now = verdict(metric, *(after[c] if after else None for c in ("ci95_low", "ci95_high")))
        rows.append({
            "finding": finding, "metric": metric.replace("_", " "), "scenario": f"`{scenario}`", "policy": f"`{policy}`",
            "old code (seeds)": text(before), "was": was, "final code (seeds)": text(after), "is": now,
            "verdict changed": "–" if "–" in (was, now) else ("yes" if was != now else "no"),
            "seeds to decide": seeds_to_decide(after["effect"], after["sd"]) if now == "null" else "–",
        })
    return markdown_table_text(pl.DataFrame(rows))


def render(docs: Path = DOCS, cells: Path = CELLS) -> Path:
    return write_block("findings-moved", [
        "How each headline figure moved (paired effect against `lightgbm` on the latent truth, mean over seeds "
        "[95 % t interval across seeds], the number of seeds in brackets; old: the 5-seed figures of the code before "
        "the 10-seed re-run; *seeds to decide*: for a null verdict, the seeds at which the interval would exclude zero "
        "were the mean and the SD across seeds to stay as now):",
        moved_table(cells),
    ], docs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=DOCS, help="the folder of pages holding the blocks")
    print(f"rewrote the findings-moved block of {render(parser.parse_args().docs)}")


if __name__ == "__main__":
    main()
