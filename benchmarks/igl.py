"""Throughput of IGL-P (policy/igl.py): inverse-kinematics updates and rounds per second,
decoding and bandit updates per second, and, when a `paper` seed is materialized, one
closed-loop training pass of IGL-P(3) over the training users.

The reference is the same inverse-kinematics model trained in mini-batches of 32, close to
the one-example-at-a-time online learner of the paper's Algorithm 1; the ratio is printed
beside the configured batch size's figure.

    .venv/bin/python benchmarks/igl.py                   # synthetic rounds, then ./data/paper seed 0 if present
    .venv/bin/python benchmarks/igl.py --data-dir /tmp/d --seed 1
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

REFERENCE_BATCH = 32


def synthetic_rounds(n: int, rng: np.random.Generator):
    from esmr_assets.core.vocabulary import SIGNALS
    from esmr_assets.policy.loop.bandits import N_CONTEXT, N_PERSONAL
    from esmr_assets.policy.loop.feeds import ACTIONS

    c = np.column_stack([rng.dirichlet(np.ones(N_PERSONAL - 1), n), np.ones(n)])
    x = np.eye(N_CONTEXT)[rng.integers(N_CONTEXT, size=n)]
    return c, x, rng.integers(len(SIGNALS), size=n), rng.integers(len(ACTIONS), size=n), np.full(n, 0.5)


def ik_figures(batch_size: int, rounds, repeats: int = 3) -> dict[str, float]:
    from esmr_assets.core.vocabulary import SIGNALS
    from esmr_assets.policy.learners.igl import InverseKinematics
    from esmr_assets.policy.loop.bandits import N_CONTEXT, N_PERSONAL
    from esmr_assets.policy.loop.feeds import ACTIONS

    c, x, y, a, p = rounds
    # initialize(): the lazily created parameters are made before the clock starts
    ik = InverseKinematics(len(ACTIONS), len(SIGNALS), N_PERSONAL, N_CONTEXT, batch_size=batch_size).initialize()
    start = time.perf_counter()
    for _ in range(repeats):
        ik.partial_fit(c, x, y, a, 1.0 / (len(ACTIONS) * p))
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    ik.predict_proba(c, x, y)
    decode = time.perf_counter() - start
    return {"rounds_per_s": repeats * len(y) / seconds, "updates_per_s": ik.n_updates_ / seconds,
            "decode_rounds_per_s": len(y) / decode}


def closed_loop(data_dir: Path, seed: int) -> str | None:
    import polars as pl

    from esmr_assets.core.settings import load_settings
    from esmr_assets.emotion.labeller import DailyLabeller
    from esmr_assets.emotion.tabtransformer import TabTransformerClassifier
    from esmr_assets.policy.learners.ranker import EngagementRanker
    from esmr_assets.policy.loop.bandits import BanditPolicy, new_learner
    from esmr_assets.policy.loop.feeds import feed_builder
    from esmr_assets.policy.loop.rollouts import rollout
    from esmr_assets.policy.loop.users import policy_split
    from esmr_assets.sim.environment import ClosedLoopEnv

    root = data_dir / "paper"
    part = f"scenario=baseline/seed={seed}"
    needed = [root / "engagement_ranker" / part / "lightgbm_ranker.txt", root / "emotion_model" / part / "tabtransformer.pt"]
    if not all(path.exists() for path in needed):
        return None
    settings = load_settings("paper")
    videos, users = (pl.read_parquet(root / name / part / "part-0.parquet") for name in ("videos", "users"))
    impressions = pl.scan_parquet(root / "impressions" / part / "part-0.parquet")
    ranker = EngagementRanker.from_text(needed[0].read_text(), videos)
    model = TabTransformerClassifier.load(needed[1], device="cpu")
    training, _ = policy_split(users, seed, settings.policy)
    cohort = users.filter(pl.col("user_id").is_in(training))
    policy = BanditPolicy(feed_builder(ranker, videos, impressions, settings),
                          new_learner("igl_p3", settings.policy, seed), np.random.default_rng(seed))
    start = time.perf_counter()
    env = ClosedLoopEnv(videos, cohort, settings.simulation, seed, DailyLabeller(model), episode=1)
    frame = rollout(env, policy, "igl_p3")
    seconds = time.perf_counter() - start
    return (f"{frame.height:,} user-days ({int(frame['rounds'].sum()):,} rounds) in {seconds:.1f} s: "
            f"{frame.height / seconds:,.0f} user-days/s, {frame['rounds'].sum() / seconds:,.0f} rounds/s "
            "(environment, ranking and emotion model included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20_000)
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from esmr_assets.core.settings import load_settings
    from esmr_assets.policy.learners.linear_bandit import LinearBandit
    from esmr_assets.policy.loop.bandits import N_CONTEXT
    from esmr_assets.policy.loop.feeds import ACTIONS

    rounds = synthetic_rounds(args.rounds, np.random.default_rng(0))
    configured = load_settings("paper")
    from esmr_assets.policy.learners.igl import BATCH_SIZE as batch
    print(f"1. inverse kinematics, {args.rounds:,} synthetic rounds")
    figures = {b: ik_figures(b, rounds) for b in (batch, REFERENCE_BATCH)}
    ref = figures[REFERENCE_BATCH]
    for b, f in figures.items():
        tag = "(reference)" if b == REFERENCE_BATCH else f"({f['rounds_per_s'] / ref['rounds_per_s']:.1f}x the reference)"
        print(f"   mini-batch {b:>4}: {f['rounds_per_s']:>10,.0f} rounds/s  {f['updates_per_s']:>8,.0f} updates/s  "
              f"decode {f['decode_rounds_per_s']:>12,.0f} rounds/s  {tag}")

    bandit = LinearBandit(len(ACTIONS), N_CONTEXT, epsilon=configured.policy.bandit_epsilon).initialize()
    _, x, y, a, _ = rounds
    start = time.perf_counter()
    for chunk in np.array_split(np.arange(len(y)), 100):
        bandit.learn(x[chunk], a[chunk], (y[chunk] == 2).astype(float))
    print(f"2. linear bandit: {len(y) / (time.perf_counter() - start):,.0f} rounds/s learned in batches of "
          f"{len(y) // 100}")

    result = closed_loop(args.data_dir, args.seed)
    print("3. IGL-P(3) in the closed loop, one pass over the paper training users: "
          + (result or f"skipped (no paper seed {args.seed} under {args.data_dir}; run `make run` first)"))


if __name__ == "__main__":
    main()
