"""The Gymnasium environment's throughput and the deep learners' training time, on a
materialized `paper` cell.

- **Steps.** User-days per second of the training users' episode: the native closed loop
  (the reference: `rollout` under the ranker's feed), the Gymnasium vector environment, and the
  same through the SB3 adapter with `VecNormalize`, as the learners step it. Ratios against
  the native loop are printed beside each.
- **Training.** Seconds to train each deep learner at the paper's budget (one tabular agent's
  user-days) and, with `--budget-10`, at ten times it.

    .venv/bin/python benchmarks/gym.py                       # ./data/paper, seed 0
    .venv/bin/python benchmarks/gym.py --data-dir /tmp/d --seed 1 --budget-10
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import esmr_assets  # noqa: F401  (pins the numeric kernels before numpy loads)


def steps(data_dir: Path, seed: int) -> list[tuple[str, float]]:
    import numpy as np
    from stable_baselines3.common.vec_env import VecNormalize

    from esmr_assets.policy.env.sb3 import Sb3VecEnv
    from esmr_assets.policy.env.vector import ClosedLoopVectorEnv
    from esmr_assets.policy.loop.inputs import LoopState
    from esmr_assets.policy.loop.policies import LightGBMPolicy
    from esmr_assets.policy.loop.registry import spec
    from esmr_assets.policy.loop.rollouts import labeller_for, rollout
    from esmr_assets.sim.environment import ClosedLoopEnv
    from esmr_assets.storage.models import stored_loop_inputs

    inputs, parents = stored_loop_inputs(data_dir, "paper", seed)
    state = LoopState(inputs)
    users, days = state.cohort("training"), inputs.settings.simulation.n_days
    rollout(ClosedLoopEnv(inputs.videos, users.head(10), inputs.settings.simulation, seed,
                          labeller_for(spec("lightgbm"), inputs.emotion_model), 1),
            LightGBMPolicy(state.feed_builder()), "lightgbm")  # compile and warm up, untimed
    start = time.perf_counter()
    rollout(ClosedLoopEnv(inputs.videos, users, inputs.settings.simulation, seed,
                          labeller_for(spec("lightgbm"), inputs.emotion_model), 1), LightGBMPolicy(state.feed_builder()),
            "lightgbm")
    native = users.height * days / (time.perf_counter() - start)

    env = ClosedLoopVectorEnv(inputs, parents, "training")
    actions = np.random.default_rng(0).integers(0, 9, (days, env.num_envs))
    start = time.perf_counter()
    env.reset(seed=1)
    for t in range(days - 1):
        env.step(actions[t])
    vector = env.num_envs * days / (time.perf_counter() - start)

    adapter = VecNormalize(Sb3VecEnv(ClosedLoopVectorEnv(inputs, parents, "training")), norm_reward=False)
    start = time.perf_counter()
    adapter.reset()
    for t in range(days - 1):
        adapter.step(actions[t])
    sb3 = adapter.num_envs * days / (time.perf_counter() - start)
    return [("native closed loop (rollout, ranker's feed)", native), ("Gymnasium vector environment", vector),
            ("through the SB3 adapter and VecNormalize", sb3)]


def training(data_dir: Path, seed: int, budget: float) -> list[tuple[str, float, int]]:
    from esmr_assets.policy.env.vector import ClosedLoopVectorEnv
    from esmr_assets.policy.loop.registry import DEEP_LEARNERS, spec
    from esmr_assets.policy.training.deep import budget_episodes, learner_seed, train_deep_agent
    from esmr_assets.storage.models import stored_loop_inputs

    inputs, parents = stored_loop_inputs(data_dir, "paper", seed)
    settings = inputs.settings.model_copy(update={"policy": inputs.settings.policy.model_copy(
        update={"deep_budget": budget})})
    rows = []
    for name in DEEP_LEARNERS:
        deep = spec(name).deep
        env = ClosedLoopVectorEnv(inputs, parents, "training", terms=deep.terms)
        start = time.perf_counter()
        _, curve = train_deep_agent(env, deep.algorithm, budget_episodes(settings), learner_seed(seed, name), settings)
        rows.append((name, time.perf_counter() - start, len(curve)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget-10", action="store_true", help="also train at ten times the paper's budget")
    args = parser.parse_args()
    figures = steps(args.data_dir, args.seed)
    native = figures[0][1]
    print(f"{'user-days per second':<48} {'figure':>10} {'vs native':>10}")
    for name, value in figures:
        print(f"{name:<48} {value:>10,.0f} {value / native:>9.2f}x")
    print(f"\n{'training (one process, one torch thread)':<30} {'budget':>7} {'episodes':>9} {'seconds':>9}")
    for budget in (1.0, 10.0) if args.budget_10 else (1.0,):
        for name, seconds, episodes in training(args.data_dir, args.seed, budget):
            print(f"{name:<30} {budget:>6.0f}x {episodes:>9} {seconds:>9.1f}")


if __name__ == "__main__":
    main()
