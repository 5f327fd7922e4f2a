"""Scores of estimated DAGs against the simulator's true graph (edge presence)."""

from __future__ import annotations

import numpy as np


def edge_scores(estimated: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall and F1 of directed edges, structural Hamming distance, edge count.

    `estimated` is (p, p) or a batch (B, p, p); `truth` is (p, p). Both use lingam's
    convention (row = effect, column = cause); an entry != 0 is an edge. SHD counts the
    node pairs whose relation differs (missing, extra or reversed edge), each pair once.
    Returns arrays with the batch shape (0-d for a single matrix)."""
    est, tru = np.asarray(estimated) != 0, np.asarray(truth) != 0
    off = ~np.eye(tru.shape[-1], dtype=bool)
    est = est & off
    tru = tru & off
    tp = (est & tru).sum(axis=(-2, -1))
    n_est, n_tru = est.sum(axis=(-2, -1)), tru.sum()
    precision = np.divide(tp, n_est, out=np.zeros(np.shape(tp)), where=n_est > 0)
    recall = tp / n_tru if n_tru else np.zeros(np.shape(tp))
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros(np.shape(tp)), where=total > 0)
    # relation of each unordered pair {i, j}, i < j: 0 none, 1 j->i, 2 i->j, 3 both
    swap = np.swapaxes(est, -2, -1)
    rel_est = est.astype(int) + 2 * swap.astype(int)
    rel_tru = tru.astype(int) + 2 * tru.T.astype(int)
    shd = ((rel_est != rel_tru) & np.triu(off)).sum(axis=(-2, -1))
    return {"precision": precision, "recall": recall, "f1": f1, "shd": shd.astype(float), "edges": n_est.astype(float)}


def mean_scores(adjacencies: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """`edge_scores` averaged over a batch of (B, p, p) adjacency matrices."""
    return {name: float(np.mean(values)) for name, values in edge_scores(adjacencies, truth).items()}
