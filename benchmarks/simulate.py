"""Throughput of the Phase I simulator: user-days per second (impressions included) and
peak RSS, at the paper's scale and at 100,000 users.

Each scale runs in a fresh subprocess so its peak RSS is its own. The reference figure is
the paper's own generator (about 3,000 user-days/s, as measured for the project's issue);
the ratio is printed beside ours.

    .venv/bin/python benchmarks/simulate.py              # paper and 100k users
    .venv/bin/python benchmarks/simulate.py --users 1000 # one scale
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

REFERENCE_NAME = "paper's generator (reference)"
REFERENCE_USER_DAYS_PER_S = 3_000.0


def measure(n_users: int, seed: int) -> dict[str, float]:
    from esmr_assets.core.rng import stream
    from esmr_assets.core.settings import load_settings
    from esmr_assets.sim.content import simulate_videos
    from esmr_assets.sim.logs import simulate_logs
    from esmr_assets.sim.population import simulate_users

    settings = load_settings("paper", {"simulation": {"n_users": n_users}}).simulation
    start = time.perf_counter()
    videos = simulate_videos(settings.n_videos, stream(seed, "videos"))
    users = simulate_users(settings, stream(seed, "users"))
    logs, impressions = simulate_logs(videos, users, settings, seed)
    seconds = time.perf_counter() - start
    return {
        "users": n_users,
        "user_days": logs.height,
        "impressions": impressions.height,
        "seconds": seconds,
        "user_days_per_s": logs.height / seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", default="1000,100000", help="comma-separated population sizes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.child, args.seed)))
        return
    print(f"{'users':>8} {'user-days':>10} {'impressions':>12} {'seconds':>8} {'user-days/s':>12} "
          f"{'vs reference':>12} {'peak RSS MB':>11}")
    for n in (int(x) for x in args.users.split(",")):
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(n), "--seed", str(args.seed)],
            check=True, capture_output=True, text=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{r['users']:>8} {r['user_days']:>10} {r['impressions']:>12} {r['seconds']:>8.2f} "
              f"{r['user_days_per_s']:>12,.0f} {r['user_days_per_s'] / REFERENCE_USER_DAYS_PER_S:>11.1f}x "
              f"{r['peak_rss_mb']:>11,.0f}")
    print(f"reference: {REFERENCE_NAME} = {REFERENCE_USER_DAYS_PER_S:,.0f} user-days/s")


if __name__ == "__main__":
    main()
