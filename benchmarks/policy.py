"""Phase III figures at the paper's scale, each beside a named reference:

1. the engagement ranker's fit: test AUC, trees and fit time of the configured ranker
   (learning rate 0.3, 15 leaves) beside `slow_ranker` (learning rate 0.05, 31 leaves,
   patience 30: the first configuration, 169 trees) when --reference is given;
2. closed-loop throughput of 1,000 users under the LightGBM policy: user-days per second
   including the candidate stage, LightGBM re-ranking and the emotion model, beside
   `full_scoring` (LightGBM over all 1,000 candidates per user-day, as the paper ranks) with
   the configured ranker and, with --reference, with the slow one;
3. Q-learning training: wall time of the three agents' 10 epochs (Table 3) and the
   transitions learnt per second.

Reads a materialized paper partition (`make run` writes one):

    .venv/bin/python benchmarks/policy.py --data-dir data --seed 0 [--reference]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import polars as pl

PAPER_AUC = 0.81  # §3.3.1: early stopping on AUC "stops on 0.81"


def main() -> None:
    from esmr_assets.core.settings import load_settings
    from esmr_assets.emotion.labeller import DailyLabeller
    from esmr_assets.emotion.tabtransformer import TabTransformerClassifier
    from esmr_assets.policy.learners.ranker import EngagementRanker
    from esmr_assets.policy.loop.feeds import feed_builder
    from esmr_assets.policy.loop.inputs import LoopInputs
    from esmr_assets.policy.loop.policies import LightGBMPolicy
    from esmr_assets.policy.loop.rollouts import rollout
    from esmr_assets.policy.loop.users import policy_split
    from esmr_assets.policy.training.stage import fit_agents, fit_ranker
    from esmr_assets.sim.environment import ClosedLoopEnv

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--days", type=int, default=5, help="closed-loop days to time")
    parser.add_argument("--reference", action="store_true", help="also fit the slow reference ranker (~100 s)")
    args = parser.parse_args()

    settings = load_settings("paper")
    root = args.data_dir / settings.preset

    def table(asset: str) -> pl.DataFrame:
        return pl.read_parquet(root / asset / f"scenario=baseline/seed={args.seed}" / "part-0.parquet")

    videos, users, logs, impressions = table("videos"), table("users"), table("user_day_logs"), table("impressions")
    predictions = table("emotion_predictions")
    inputs = (impressions, logs, predictions, videos, users)

    print("1. engagement ranker (paper: AUC 0.81)")
    rows = []
    start = time.perf_counter()
    ranker = fit_ranker(*inputs, settings, args.seed)
    rows.append(("configured", ranker, time.perf_counter() - start))
    if args.reference:
        start = time.perf_counter()
        slow = EngagementRanker(random_state=args.seed, learning_rate=0.05, num_leaves=31, early_stopping_rounds=30,
                                n_estimators=1000, n_jobs=1).fit(*inputs)
        rows.append(("slow_ranker", slow, time.perf_counter() - start))
    for name, fitted, seconds in rows:
        print(f"   {name:<12} test AUC {fitted.auc_:.4f}  trees {fitted.best_iteration_:>4}  fit {seconds:6.1f} s")

    model = TabTransformerClassifier.load(root / "emotion_model" / f"scenario=baseline/seed={args.seed}" / "tabtransformer.pt",
                                          device="cpu")
    days = load_settings("paper", {"simulation": {"n_days": args.days}})
    print(f"\n2. closed loop, {users.height:,} users x {args.days} days under the LightGBM policy")
    class FullScoring:
        """The paper's ranking: every eligible video of the pool scored for every user."""

        def __init__(self, ranker: EngagementRanker) -> None:
            self.ranker = ranker

        def act(self, env, tracker):
            scores = self.ranker.score(env.observation())
            feed, valid = self.ranker.rank(scores, settings.simulation.feed_length, env.recently_shown())
            return feed, valid, np.full(env.n_users, -1)

    policies = [("two_stage", f"{settings.policy.candidates} candidates re-ranked",
                 LightGBMPolicy(feed_builder(ranker, videos, impressions, settings)))]
    policies += [(f"full_scoring[{name}]", f"{videos.height:,} candidates scored", FullScoring(fitted))
                 for name, fitted, _ in rows]
    results = {}
    for name, what, policy in policies:
        env = ClosedLoopEnv(videos, users, days.simulation, args.seed, DailyLabeller(model))
        start = time.perf_counter()
        rollout(env, policy, "lightgbm")
        results[name] = users.height * args.days / (time.perf_counter() - start)
        ratio = "reference" if name == "two_stage" else f"{results['two_stage'] / results[name]:.1f}x slower"
        print(f"   {name:<26} {what:<24} {results[name]:8,.0f} user-days/s  ({ratio})")

    training, _ = policy_split(users, args.seed, settings.policy)
    result = fit_agents(LoopInputs(videos, users, impressions, ranker, model, settings, args.seed), table("user_causal_parents"))
    print(f"\n3. Q-learning: {len(result.agents)} agents (no IGL-P decoder given) x {training.size} training users x "
          f"{settings.policy.epochs} epochs x {settings.simulation.n_days} days")
    transitions = len(result.agents) * training.size * settings.policy.epochs * (settings.simulation.n_days - 1)
    print(f"   {result.seconds:.1f} s: {transitions / result.seconds:,.0f} transitions/s "
          f"({transitions:,} transitions; environment, ranking and emotion model included)")


if __name__ == "__main__":
    main()
