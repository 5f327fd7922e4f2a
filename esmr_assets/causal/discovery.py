"""The causal stage end to end: per-user DAGs, the pooled DAG (what the paper's own code
fits), and per-user DAGs constrained by the pooled causal order; each scored against the
simulator's true graph; then the parents of the emotional targets (paper Table 2)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import polars as pl

from ..core import parallel
from ..core.rng import stream
from ..sim.causal_graph import CAUSAL_FEATURES, TARGETS, true_adjacency
from .dataset import causal_frame, condition_numbers, user_arrays
from .direct_lingam import BatchedDirectLiNGAM
from .scoring import mean_scores

METHODS = ("per_user", "pooled", "per_user_pooled_order")
MAX_CONDITION = 1e10  # users whose standardised data is this close to collinear are skipped
POOLED_USER = -1  # user_id of the pooled DAG's edges


@dataclass(frozen=True)
class DiscoveryResult:
    edges: pl.DataFrame  # method, user_id, cause, effect, weight
    scores: pl.DataFrame  # one row per method: precision, recall, f1, shd, edges, users, seconds
    users: list[int]
    skipped_users: list[int]  # too few usable day pairs
    collinear_users: list[int]  # data (near-)exactly collinear
    dropped_columns: dict[str, int]  # feature -> number of users it was constant for


def _edge_frame(method: str, user_ids: list[int], adjacency: np.ndarray) -> pl.DataFrame:
    b, effect, cause = np.nonzero(adjacency)
    names = np.array(CAUSAL_FEATURES)
    return pl.DataFrame(
        {
            "method": pl.Series([method] * b.size, dtype=pl.Enum(METHODS)),
            "user_id": np.asarray(user_ids, dtype=np.int32)[b],
            "cause": names[cause],
            "effect": names[effect],
            "weight": adjacency[b, effect, cause],
        }
    )


def _fit_pooled(arrays: list[np.ndarray], device: str) -> tuple[BatchedDirectLiNGAM, float]:
    """One DAG for all `arrays`' rows together, and its fit's seconds."""
    start = time.perf_counter()
    pooled = BatchedDirectLiNGAM(device=device, refit_ambiguous=False).fit([np.concatenate(arrays)],
                                                                           user_ids=["pooled"])
    return pooled, time.perf_counter() - start


def discover(
    logs: pl.DataFrame,
    predictions: pl.DataFrame,
    min_rows: int,
    device: str = "cpu",
    pooled_max_users: int | None = None,
    seed: int = 0,
) -> DiscoveryResult:
    """Fit the three kinds of DAG on the users with at least `min_rows` usable day pairs.

    The pooled DAG's cost grows with all users' rows together; `pooled_max_users` fits it
    on a seeded sample of users instead (None: all)."""
    frame = causal_frame(logs, predictions)
    user_ids, arrays, skipped = user_arrays(frame, min_rows)
    ok = condition_numbers(arrays) <= MAX_CONDITION
    collinear = [u for u, good in zip(user_ids, ok) if not good]
    user_ids = [u for u, good in zip(user_ids, ok) if good]
    arrays = [a for a, good in zip(arrays, ok) if good]
    if not arrays:
        raise ValueError(f"no user has {min_rows} pairs of consecutive active days; cannot fit causal DAGs")
    truth = true_adjacency()
    fits, rows = {}, []

    pooled_arrays = arrays
    if pooled_max_users is not None and len(arrays) > pooled_max_users:
        chosen = np.sort(stream(seed, "sampling", 2).choice(len(arrays), pooled_max_users, replace=False))
        pooled_arrays = [arrays[i] for i in chosen]
    # refit_ambiguous=False: the few regressions whose BIC selection hinges on rounding keep
    # the batched solver's own (portable) choice; sklearn's, which lingam uses, follows numpy's
    # CPU-dependent log (docs/portable_bytes.md).
    # The pooled DAG does not depend on the per-user ones: it is fitted meanwhile in a worker,
    # if one is running (a few seconds at `paper`: not worth starting one).
    with parallel.beside(_fit_pooled, pooled_arrays, device, start_workers=False) as pooled_fit:
        start = time.perf_counter()
        per_user = BatchedDirectLiNGAM(device=device, refit_ambiguous=False).fit(arrays, user_ids=user_ids)
        fits["per_user"] = (user_ids, per_user.adjacency_matrix_, time.perf_counter() - start)
        pooled, seconds = pooled_fit()
    fits["pooled"] = ([POOLED_USER], pooled.adjacency_matrix_, seconds)

    start = time.perf_counter()
    constrained = BatchedDirectLiNGAM(device=device, refit_ambiguous=False).fit(
        arrays, order_prior=list(pooled.causal_order_[0]), user_ids=user_ids
    )
    fits["per_user_pooled_order"] = (user_ids, constrained.adjacency_matrix_, time.perf_counter() - start)

    for method, (ids, adjacency, seconds) in fits.items():
        rows.append({"method": method, **mean_scores(adjacency, truth), "users": len(ids), "seconds": seconds})
    dropped: dict[str, int] = {}
    for columns in per_user.dropped_columns_:
        for c in columns:
            dropped[CAUSAL_FEATURES[c]] = dropped.get(CAUSAL_FEATURES[c], 0) + 1
    return DiscoveryResult(
        edges=pl.concat([_edge_frame(m, ids, adj) for m, (ids, adj, _) in fits.items()]),
        scores=pl.DataFrame(rows).with_columns(pl.col("method").cast(pl.Enum(METHODS))),
        users=user_ids,
        skipped_users=skipped,
        collinear_users=collinear,
        dropped_columns=dropped,
    )


def target_parents(edges: pl.DataFrame, method: str, n_users: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(Table 2 analogue, per-user parent weights) for the emotional targets under `method`.

    The summary has, per target and parent: sign of the median weight, the median weight
    (robust to the few users whose short, near-constant series give extreme weights), the share
    of users whose DAG has the edge, its rank by share, and whether and with which sign the
    simulator's true graph has it. The per-user table (user_id, target, parent, weight) holds
    the lambda_f of the causal reward term."""
    chosen = edges.filter((pl.col("method") == method) & pl.col("effect").is_in(TARGETS))
    per_user = chosen.select("user_id", pl.col("effect").alias("target"), pl.col("cause").alias("parent"), "weight")
    truth = true_adjacency()
    index = {name: i for i, name in enumerate(CAUSAL_FEATURES)}
    summary = (
        per_user.group_by("target", "parent")
        .agg(pl.col("weight").median().alias("median_weight"), (pl.len() / max(n_users, 1)).alias("user_share"))
        .with_columns(pl.col("median_weight").sign().cast(pl.Int8).alias("sign"))
        # group_by's row order is arbitrary: sort fully (ties broken by name) before ranking
        .sort(["target", "user_share", "parent"], descending=[False, True, False])
        .with_columns((pl.int_range(pl.len()).over("target") + 1).cast(pl.Int32).alias("rank"))
    )
    true_sign = [
        int(np.sign(truth[index[t], index[p]])) if truth[index[t], index[p]] else 0
        for t, p in zip(summary["target"], summary["parent"])
    ]
    in_truth = [bool(truth[index[t], index[p]]) for t, p in zip(summary["target"], summary["parent"])]
    summary = summary.with_columns(
        pl.Series("in_true_graph", in_truth, dtype=pl.Boolean),
        pl.Series("true_sign", true_sign, dtype=pl.Int8),
    )
    columns = ("target", "rank", "parent", "sign", "median_weight", "user_share", "in_true_graph", "true_sign")
    return summary.select(columns), per_user

