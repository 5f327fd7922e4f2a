"""Cost of the paired effects and of the two oracle policies, on a materialized `paper` seed.

1. `user_metrics` + `policy_effects` (2,000 bootstrap resamples, every policy, label source and
   metric) from the seed's `policy_rollouts`: the target is at most 5 s per seed.
2. One closed-loop rollout of the evaluation users under `lightgbm` (the reference) beside
   `oracle_best_feed` (8 bucket feeds and `evaluation.oracle_draws` simulated days per bucket
   each day) and `oracle_esmr` (the hybrid on latent labels), with the ratio to the reference.

The oracles' share of the whole graph is read from `esmr run`'s per-asset table (README,
"Performance").

    .venv/bin/python benchmarks/effects.py --data-dir data --seed 0
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def best_of(repeats: int, run) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    import numpy as np
    import polars as pl

    from esmr_assets.core.settings import load_settings
    from esmr_assets.emotion.tabtransformer import TabTransformerClassifier
    from esmr_assets.evaluation.effects import paired_effects, user_metrics
    from esmr_assets.policy.learners.ranker import EngagementRanker
    from esmr_assets.policy.loop import registry
    from esmr_assets.policy.loop.feeds import feed_builder
    from esmr_assets.policy.loop.rollouts import (
        Artifacts,
        build_policy,
        labeller_for,
        rollout,
    )
    from esmr_assets.policy.loop.users import policy_split, users_in
    from esmr_assets.policy.training.models import AgentSet
    from esmr_assets.sim.environment import ClosedLoopEnv
    from esmr_assets.storage.files import storage_root

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    settings = load_settings("paper")
    root = storage_root(args.data_dir.absolute(), settings.preset)

    def part(asset: str, name: str = "part-0.parquet") -> Path:
        path = root / asset / f"scenario=baseline/seed={args.seed}" / name
        if not path.is_file():
            raise SystemExit(f"{path} is missing: materialize seed {args.seed} at paper first (esmr run)")
        return path

    rollouts = pl.read_parquet(part("policy_rollouts"))
    rng = np.random.default_rng(0)
    metrics = user_metrics(rollouts)
    seconds = best_of(3, lambda: paired_effects(user_metrics(rollouts), settings.evaluation.reference_policy,
                                                settings.evaluation.bootstrap_resamples, rng, "oracle_best_feed"))
    n_policies = rollouts["policy"].n_unique()
    print(f"1. user_metrics + policy_effects, seed {args.seed}: {seconds:.2f} s (target <= 5 s; "
          f"{n_policies} policies x {metrics['user_id'].n_unique()} users x 2 label sources, "
          f"{settings.evaluation.bootstrap_resamples} resamples)")

    videos, users = pl.read_parquet(part("videos")), pl.read_parquet(part("users"))
    impressions = pl.scan_parquet(part("impressions"))
    ranker = EngagementRanker.from_text(part("engagement_ranker", "lightgbm_ranker.txt").read_text())
    model = TabTransformerClassifier.load(part("emotion_model", "tabtransformer.pt"), device="cpu")
    agents = AgentSet.from_bytes(part("q_agents", "q_agents.npz").read_bytes())
    feeds = feed_builder(ranker, videos, impressions, settings)
    artifacts = Artifacts(feeds, agents, {}, settings, args.seed)
    _, evaluation_users = policy_split(users, args.seed, settings.policy)
    cohort = users_in(users, evaluation_users)

    def run(name: str) -> float:
        spec = registry.spec(name)
        env = ClosedLoopEnv(videos, cohort, settings.simulation, args.seed, labeller_for(spec, model))
        policy = build_policy(spec, artifacts)
        start = time.perf_counter()
        rollout(env, policy, name)
        return time.perf_counter() - start

    print(f"\n2. one rollout of {cohort.height} evaluation users x {settings.simulation.n_days} days "
          "(after an untimed one that compiles the ranker's scorer)")
    run("lightgbm")
    reference = run("lightgbm")
    print(f"   {'lightgbm (reference)':<22} {reference:6.1f} s")
    for name in ("oracle_best_feed", "oracle_esmr"):
        seconds = run(name)
        print(f"   {name:<22} {seconds:6.1f} s  ({seconds / reference:.1f}x the reference)")


if __name__ == "__main__":
    main()
