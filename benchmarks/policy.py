"""Closed-loop throughput at the paper's scale: user-days per second of the environment
stepping 1,000 users while the LightGBM ranker scores all 1,000 candidates per user-day and
the emotion model predicts each day's label, plus the ranker's test AUC and the time of one
batched 1,000 x 1,000 scoring.

Reads a materialized paper partition (videos, users, user_day_logs, impressions,
emotion_predictions, emotion_model); fits the ranker unless --ranker names a saved one.

    .venv/bin/python benchmarks/policy.py --data-dir data --seed 0
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import polars as pl

PAPER_AUC = 0.81  # §3.3.1: early stopping on AUC "stops on 0.81"
PAPER_CANDIDATES = 1_000  # §3.3.1: 1,000 candidate videos ranked per user-day


def main() -> None:
    from esmr_assets.emotion.pipeline import load_model
    from esmr_assets.policy.ranker import EngagementRanker
    from esmr_assets.settings import load_settings
    from esmr_assets.sim.environment import ClosedLoopEnv

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--days", type=int, default=30, help="closed-loop days to time")
    parser.add_argument("--ranker", type=Path, help="a saved ranker (skips fitting)")
    parser.add_argument("--save-ranker", type=Path, help="where to save the fitted ranker")
    args = parser.parse_args()

    root = args.data_dir / "paper"

    def table(asset: str) -> pl.DataFrame:
        return pl.read_parquet(root / asset / f"seed={args.seed}" / "part-0.parquet")

    videos, users = table("videos"), table("users")
    settings = load_settings("paper", {"simulation": {"n_days": args.days}}).simulation
    if args.ranker:
        ranker, fit_s = EngagementRanker.load(args.ranker, videos), float("nan")
    else:
        start = time.perf_counter()
        ranker = EngagementRanker(random_state=args.seed).fit(
            table("impressions"), table("user_day_logs"), table("emotion_predictions"), videos, users
        )
        fit_s = time.perf_counter() - start
        print(f"ranker: test AUC {ranker.auc_:.3f} (paper {PAPER_AUC}), best iteration "
              f"{ranker.best_iteration_}, fit {fit_s:.1f} s")
        if args.save_ranker:
            ranker.save(args.save_ranker)

    model = load_model(root / "emotion_model" / f"seed={args.seed}" / "tabtransformer.pt")
    env = ClosedLoopEnv(videos, users, settings, args.seed, emotion_model=model)
    observation = env.reset()
    start = time.perf_counter()
    scores = ranker.score(observation)
    one_scoring_s = time.perf_counter() - start
    print(f"one batched scoring: {scores.shape[0]:,} users x {scores.shape[1]:,} videos in {one_scoring_s:.2f} s "
          f"(paper: {PAPER_CANDIDATES:,} candidates per user-day)")

    score_s = step_s = 0.0
    start = time.perf_counter()
    while not env.done:
        t0 = time.perf_counter()
        feed, valid = ranker.rank(ranker.score(observation), settings.feed_length, env.recently_shown())
        t1 = time.perf_counter()
        env.step(feed, valid)
        observation = env.observation()
        step_s += time.perf_counter() - t1
        score_s += t1 - t0
    total_s = time.perf_counter() - start
    user_days = env.n_users * settings.n_days
    print(f"closed loop: {user_days:,} user-days in {total_s:.1f} s = {user_days / total_s:,.0f} user-days/s "
          f"(score+rank {score_s:.1f} s, step+emotion model {step_s:.1f} s); paper: no figure")


if __name__ == "__main__":
    main()
