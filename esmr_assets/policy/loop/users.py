"""Which users train the policies and which evaluate them."""

from __future__ import annotations

import numpy as np
import polars as pl

from ...core.rng import stream
from ...core.settings import PolicySettings


def policy_split(users: pl.DataFrame, seed: int, policy: PolicySettings) -> tuple[np.ndarray, np.ndarray]:
    """(training user ids, evaluation user ids): a seeded, disjoint split of `users`. The
    `evaluation_share` held out is capped at `max_evaluation_users`; at most
    `training_users` of the others train the agents."""
    ids = np.sort(users["user_id"].to_numpy())
    shuffled = stream(seed, "policy", 0).permutation(ids)
    n_held_out, n_training, n_eval = split_sizes(ids.size, policy)
    return np.sort(shuffled[n_held_out:][:n_training]), np.sort(shuffled[:n_eval])


def split_sizes(n_users: int, policy: PolicySettings) -> tuple[int, int, int]:
    """(held out, training, evaluation) user counts of `policy_split` for `n_users` users."""
    n_held_out = max(1, round(policy.evaluation_share * n_users))
    if n_held_out >= n_users:
        raise ValueError(f"{n_users} users cannot be split into training and evaluation users")
    n_evaluation = min(n_held_out, policy.max_evaluation_users or n_held_out)
    return n_held_out, min(n_users - n_held_out, policy.training_users), n_evaluation


def users_in(users: pl.DataFrame, user_ids: np.ndarray) -> pl.DataFrame:
    """The rows of `users` whose ids are in `user_ids`, in id order."""
    return users.filter(pl.col("user_id").is_in(user_ids)).sort("user_id")
