"""The speed targets, measured for this checkout and a reference commit side by side in one
run, with the ratio current / reference:

1. `graph`: the whole graph for one seed at `paper` through `esmr run` (Dagster included),
   wall time and peak RSS;
2. `closed_loop`: user-days per second of 1,000 users x 30 days under the LightGBM policy,
   the emotion model's daily labels and the two-stage ranking included, after an untimed
   warm-up (on the partition the current code's `graph` wrote, so both codes score the same
   models);
3. `simulator`: user-days per second of the logging simulation at 100,000 users,
   impressions included, and its peak RSS;
4. `large`: `esmr run --preset large` end to end, wall time and peak RSS (~15 min each;
   only when asked for).

Each measure runs in a fresh process whose `esmr_assets` is the code under test: the
reference is checked out with `git worktree` into a temporary folder.

    .venv/bin/python benchmarks/speed.py                       # graph, closed_loop, simulator
    .venv/bin/python benchmarks/speed.py --reference fa4eaaf --measures graph,closed_loop
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: the last commit before the compiled-day speed work (issue 30); fa4eaaf was the one before the first
DEFAULT_REFERENCE = "cea72b0"
TARGETS = {  # measure: (figure, target, unit, higher is better)
    "graph": ("seconds", 30.0, "s", False),
    "closed_loop": ("user_days_per_s", 50_000.0, "user-days/s", True),
    "simulator": ("user_days_per_s", 100_000.0, "user-days/s", True),
    "large": ("seconds", 600.0, "s", False),
}
MEMORY_TARGET_MB = {"large": 6 * 1024}


def peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024


def graph(work: Path, preset: str = "paper") -> dict:
    """`esmr run` for seed 0; also each asset's seconds from its "wall time per asset" table."""
    from esmr_assets.cli import main

    printed = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(printed):
        code = main(["run", "--seed", "0", "--preset", preset, "--data-dir", str(work / "data")])
    if code:
        raise SystemExit(f"esmr run failed with exit code {code}")
    seconds = time.perf_counter() - start
    lines = printed.getvalue().splitlines()
    table = lines[lines.index("wall time per asset") + 2:]
    assets = {}
    for line in itertools.takewhile(lambda line: line.strip() and not line.startswith("total"), table):
        label, value = line.replace("<- slowest", "").rsplit(None, 1)
        assets[label.strip()] = float(value.rstrip("s"))
    return {"seconds": seconds, "peak_rss_mb": peak_mb(), "assets": assets}


def large(work: Path) -> dict:
    return graph(work, "large")


def closed_loop(work: Path, days: int = 30) -> dict:
    import polars as pl

    from esmr_assets.core.settings import load_settings
    from esmr_assets.emotion.labeller import DailyLabeller
    from esmr_assets.emotion.tabtransformer import TabTransformerClassifier
    from esmr_assets.policy.learners.ranker import EngagementRanker
    from esmr_assets.policy.loop.feeds import feed_builder
    from esmr_assets.policy.loop.policies import LightGBMPolicy
    from esmr_assets.policy.loop.rollouts import rollout
    from esmr_assets.sim.environment import ClosedLoopEnv

    def partial(overrides: dict):
        """Settings for the closed loop alone (a code from before `whole_graph` has no such check)."""
        try:
            return load_settings("paper", overrides, whole_graph=False)
        except TypeError:
            return load_settings("paper", overrides)

    settings = partial({"simulation": {"n_days": days}})
    root = work / "data" / "paper"

    def path(asset: str, file: str = "part-0.parquet") -> Path:
        cell = root / asset / "scenario=baseline" / "seed=0" / file
        return cell if cell.exists() else root / asset / "seed=0" / file  # a reference commit before cells

    videos, users = pl.read_parquet(path("videos")), pl.read_parquet(path("users"))
    ranker = EngagementRanker.from_text(path("engagement_ranker", "lightgbm_ranker.txt").read_text())
    model = TabTransformerClassifier.from_bytes(path("emotion_model", "tabtransformer.pt").read_bytes(), device="cpu")
    policy = LightGBMPolicy(feed_builder(ranker, videos, pl.scan_parquet(path("impressions")), settings))
    warm_up = partial({"simulation": {"n_days": 2}}).simulation  # one-off compilation, untimed
    rollout(ClosedLoopEnv(videos, users.head(10), warm_up, 0, DailyLabeller(model)), policy, "lightgbm")
    env = ClosedLoopEnv(videos, users, settings.simulation, 0, DailyLabeller(model))
    start = time.perf_counter()
    rollout(env, policy, "lightgbm")
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "user_days_per_s": users.height * days / seconds, "peak_rss_mb": peak_mb()}


def simulator(work: Path, n_users: int = 100_000) -> dict:
    from esmr_assets.core.rng import stream
    from esmr_assets.core.settings import load_settings
    from esmr_assets.sim.content import simulate_videos
    from esmr_assets.sim.logs import simulate_logs
    from esmr_assets.sim.population import simulate_users

    settings = load_settings("paper", {"simulation": {"n_users": n_users}}).simulation
    start = time.perf_counter()
    videos = simulate_videos(settings.n_videos, stream(0, "videos"))
    users = simulate_users(settings, stream(0, "users"))
    logs, impressions = simulate_logs(videos, users, settings, 0)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "user_days_per_s": logs.height / seconds, "impressions": impressions.height,
            "peak_rss_mb": peak_mb()}


MEASURES = {"graph": graph, "closed_loop": closed_loop, "simulator": simulator, "large": large}


def measure(name: str, code: Path, work: Path) -> dict:
    """Run measure `name` in a fresh process importing `esmr_assets` from `code`."""
    env = {**os.environ, "PYTHONPATH": str(code), "DAGSTER_HOME": str(work / ".dagster")}
    proc = subprocess.run([sys.executable, __file__, "--child", name, "--work", str(work)], cwd=code, env=env,
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{name} failed for {code}:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def checkout(reference: str, into: Path) -> Path:
    tree = into / "reference"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), reference], check=True,
                   capture_output=True)
    return tree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", default=DEFAULT_REFERENCE, help="commit to compare with")
    parser.add_argument("--measures", default="graph,closed_loop,simulator", help=f"of {', '.join(MEASURES)}")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(MEASURES[args.child](args.work)))
        return
    names = args.measures.split(",")
    if unknown := set(names) - set(MEASURES):
        raise SystemExit(f"unknown measures: {sorted(unknown)}")
    if "closed_loop" in names:
        names.append("graph")  # the closed loop reads the partition the graph writes
    names = [name for name in MEASURES if name in names]
    with tempfile.TemporaryDirectory(prefix="esmr-speed-") as tmp:
        reference = checkout(args.reference, Path(tmp))
        try:
            results = {}
            current_work = Path(tmp) / "current"
            for name in names:
                for label, code in (("reference", reference), ("current", REPO)):
                    shared = name == "closed_loop" or (name == "graph" and label == "current")
                    work = current_work if shared else Path(tmp) / f"{label}-{name}"
                    work.mkdir(exist_ok=True)
                    print(f"  {name} [{label}] ...", file=sys.stderr, flush=True)
                    results[name, label] = measure(name, code, work)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(reference)], check=False)
    revision = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip()
    print(f"reference: {args.reference}   current: {revision} (+ uncommitted changes, if any)   "
          f"{os.cpu_count()} CPUs")
    header = f"{'measure':<12} {'unit':<12} {'reference':>11} {'current':>11} {'current/ref':>11} {'target':>9}  met"
    print(header)
    for name in names:
        figure, target, unit, higher = TARGETS[name]
        ref, cur = results[name, "reference"][figure], results[name, "current"][figure]
        met = cur >= target if higher else cur <= target
        print(f"{name:<12} {unit:<12} {ref:>11,.1f} {cur:>11,.1f} {cur / ref:>10.2f}x {target:>9,.0f}  "
              f"{'yes' if met else 'no'}")
        ref_mb, cur_mb = results[name, "reference"]["peak_rss_mb"], results[name, "current"]["peak_rss_mb"]
        memory_target = MEMORY_TARGET_MB.get(name)
        memory = f"{memory_target:>9,.0f}  {'yes' if cur_mb <= memory_target else 'no'}" if memory_target else ""
        print(f"{'':<12} {'peak RSS MB':<12} {ref_mb:>11,.0f} {cur_mb:>11,.0f} {cur_mb / ref_mb:>10.2f}x {memory}")
    if "graph" in names:
        print_assets(results["graph", "reference"]["assets"], results["graph", "current"]["assets"])


def print_assets(reference: dict[str, float], current: dict[str, float]) -> None:
    """The graph's seconds per asset, reference beside current (the reference's `esmr run`
    ran one Dagster run per asset, whose overhead is inside each asset's figure)."""
    print(f"\n{'graph: seconds per asset':<46} {'reference':>9} {'current':>9} {'current/ref':>11}")
    for label in dict.fromkeys([*reference, *current]):
        ref, cur = reference.get(label), current.get(label)
        cells = [f"{ref:9.2f}" if ref is not None else f"{'-':>9}", f"{cur:9.2f}" if cur is not None else f"{'-':>9}"]
        ratio = f"{cur / ref:10.2f}x" if ref and cur is not None else f"{'':>11}"
        print(f"{label:<46} {cells[0]} {cells[1]} {ratio}")


if __name__ == "__main__":
    main()
