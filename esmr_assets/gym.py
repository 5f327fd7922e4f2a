"""The closed loop of a materialized cell as Gymnasium environments, registered on import:

    import gymnasium
    env = gymnasium.make_vec("esmr_assets.gym:esmr/ClosedLoop-v0", num_envs=200, data_dir="data",
                             preset="paper", seed=0, split="training")

(the `esmr_assets.gym:` prefix imports this module, which registers the ids). The cell must
have been materialized (`esmr run --seed 0 --preset paper`): the environment reads its
videos, users, logged impressions, ranker, emotion model and causal parents. Options are
`ClosedLoopVectorEnv`'s (docs/gym.md). `esmr/ClosedLoopUser-v0` is one user of the split
(`user`, an index) as a plain `gymnasium.Env`, with the same options.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium

from .policy.env.user import ClosedLoopUserEnv
from .policy.env.vector import ClosedLoopVectorEnv
from .storage.files import resolve_data_dir
from .storage.models import stored_loop_inputs

VECTOR_ID, USER_ID = "esmr/ClosedLoop-v0", "esmr/ClosedLoopUser-v0"


def make_vector_env(num_envs: int | None = None, *, data_dir: str | Path = "", preset: str = "paper", seed: int = 0,
                    scenario: str = "baseline", split: str = "training", **options) -> ClosedLoopVectorEnv:
    """`num_envs` users of the cell's `split` (None: all of them) as one vector environment."""
    inputs, parents = stored_loop_inputs(resolve_data_dir(str(data_dir)), preset, seed, scenario)
    return ClosedLoopVectorEnv(inputs, parents, split, num_envs, **options)


def make_user_env(*, data_dir: str | Path = "", preset: str = "paper", seed: int = 0, scenario: str = "baseline",
                  split: str = "training", user: int = 0, **options) -> ClosedLoopUserEnv:
    inputs, parents = stored_loop_inputs(resolve_data_dir(str(data_dir)), preset, seed, scenario)
    return ClosedLoopUserEnv(inputs, parents, split, user, **options)


for _id, _kwargs in ((VECTOR_ID, {"vector_entry_point": make_vector_env}), (USER_ID, {"entry_point": make_user_env})):
    if _id not in gymnasium.registry:
        gymnasium.register(_id, **_kwargs)
