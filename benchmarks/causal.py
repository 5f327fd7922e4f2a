"""Per-user DirectLiNGAM: lingam.DirectLiNGAM looped over users vs BatchedDirectLiNGAM,
at the paper's shape (n = 30 daily rows, p = 19 features per user).

Data: a linear non-Gaussian SEM per user (random sparse DAG, random column order,
uniform / Laplace / centred-exponential noise), generated here with numpy. lingam is timed
on a small sample of users (it takes ~1.7 s each); the batched estimator on the same users
(to check agreement) and on 1,000 users. The 100,000-user figure is measured directly if
the 1,000-user rate says it takes under ~2 minutes, otherwise it is extrapolated from a
10,000-user run (and the output says so). GPU rows are added when torch sees CUDA.

lingam is a test dependency, not a runtime one: it comes with `pip install -e '.[test]'`
(what `make test` installs).

    .venv/bin/python benchmarks/causal.py
    .venv/bin/python benchmarks/causal.py --sample 3 --users 1000 --big 100000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

N_ROWS, N_FEATURES = 30, 19
DIRECT_LIMIT_S = 120.0


def simulate(n_users: int, seed: int, n: int = N_ROWS, p: int = N_FEATURES) -> np.ndarray:
    """(n_users, n, p) data, one random non-Gaussian linear SEM per user."""
    rng = np.random.default_rng(seed)
    X = np.empty((n_users, n, p))
    tri = np.tril(np.ones((p, p), dtype=bool), -1)
    for u in range(n_users):
        order = rng.permutation(p)
        B = np.where(tri & (rng.random((p, p)) < 0.3), rng.uniform(0.5, 1.5, (p, p)), 0.0)
        B *= rng.choice([-1.0, 1.0], (p, p))
        W = np.zeros((p, p))
        W[np.ix_(order, order)] = B  # W[i, j] != 0: x_j -> x_i, acyclic along `order`
        kind = u % 3
        E = (rng.uniform(-1, 1, (n, p)) if kind == 0 else rng.laplace(size=(n, p)) if kind == 1
             else rng.exponential(size=(n, p)) - 1.0) * rng.uniform(0.5, 2.0, p)
        X[u] = E @ np.linalg.inv(np.eye(p) - W).T
    return X


def time_batched(X: np.ndarray, device: str) -> tuple[float, object]:
    from esmr_assets.causal.direct_lingam import BatchedDirectLiNGAM

    if device == "cuda":
        import torch

        torch.cuda.synchronize()
    start = time.perf_counter()
    est = BatchedDirectLiNGAM(device=device).fit(X)
    return time.perf_counter() - start, est


def human(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=5, help="users fitted by lingam")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    try:
        import lingam
    except ImportError:
        sys.exit("benchmarks/causal.py needs lingam, a test dependency: pip install -e '.[test]' (or make test)")
    import torch

    from esmr_assets.causal.direct_lingam import BatchedDirectLiNGAM

    devices = ["cpu", "torch-cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"DirectLiNGAM per user at n={N_ROWS}, p={N_FEATURES}; lingam {lingam.__version__}, "
          f"numpy {np.__version__}, torch {torch.__version__}, {os.cpu_count()} CPU cores"
          + (f", GPU {torch.cuda.get_device_name(0)}" if "cuda" in devices else ", no GPU"))

    X = simulate(max(args.users, args.sample), args.seed)
    sample = X[: args.sample]

    # --- lingam, looped
    refs = []
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for Xu in sample:
            refs.append(lingam.DirectLiNGAM().fit(Xu))
    lingam_per_user = (time.perf_counter() - start) / args.sample

    # warm-up (imports, torch kernels), then the timed runs
    for d in devices:
        BatchedDirectLiNGAM(device=d).fit(X[:4])
    rows = [(f"lingam.DirectLiNGAM, looped ({args.sample} users)", lingam_per_user)]
    agreement = {}
    per_user = {}
    for d in devices:
        t, est = time_batched(sample, d)
        rows.append((f"batched [{d}], same {args.sample} users", t / args.sample))
        same = sum(list(est.causal_order_[u]) == list(refs[u].causal_order_) for u in range(args.sample))
        diff = max(np.abs(est.adjacency_matrix_[u] - refs[u].adjacency_matrix_).max() for u in range(args.sample))
        agreement[d] = (same, diff)
        t, _ = time_batched(X[: args.users], d)
        per_user[d] = t / args.users
        rows.append((f"batched [{d}], {args.users:,} users", per_user[d]))

    print(f"\n{'':50s} {'s per user':>12s} {'speed-up vs lingam':>19s}")
    for name, s in rows:
        print(f"{name:50s} {s:12.5f} {lingam_per_user / s:18.0f}x")

    print(f"\nagreement with lingam on the {args.sample} sampled users:")
    for d, (same, diff) in agreement.items():
        print(f"  [{d}] causal orders identical: {same}/{args.sample} "
              f"({'yes' if same == args.sample else 'NO'}); max |adjacency difference| = {diff:.1e}")

    print(f"\n{'wall time':50s} {f'{args.users:,} users':>14s} {f'{args.big:,} users':>16s}")
    print(f"{'lingam.DirectLiNGAM (projected)':50s} {human(lingam_per_user * args.users):>14s} "
          f"{human(lingam_per_user * args.big):>16s}")
    for d in devices:
        projected = per_user[d] * args.big
        if projected <= DIRECT_LIMIT_S:
            t, _ = time_batched(simulate(args.big, args.seed + 1), d)
            big = f"{human(t)} (measured)"
        else:
            n_mid = min(10_000, args.big)
            t, _ = time_batched(simulate(n_mid, args.seed + 1), d)
            big = f"{human(t * args.big / n_mid)} (extrapolated from {n_mid:,} users: {human(t)})"
        print(f"{f'batched [{d}]':50s} {human(per_user[d] * args.users):>14s} {big:>16s}")


if __name__ == "__main__":
    main()
