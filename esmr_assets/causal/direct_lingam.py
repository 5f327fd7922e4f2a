"""DirectLiNGAM for many small datasets at once, reproducing `lingam.DirectLiNGAM`.

The pipeline fits one DAG per simulated user on ~30 daily rows x 19 features.
`lingam.DirectLiNGAM` loops over variable pairs in Python (about 1.7 s per user), so this
module runs the same algorithm with every user of a batch in one set of array operations
(a Python loop over the p steps of the order search and over LARS iterations, none over
users or pairs):

1. Causal order (lingam's `fit` loop with `_search_causal_order`, measure="pwling"): at
   each step, every remaining pair (i, j) of every user is scored at once, as a
   (users, k, k, rows) array of pairwise residuals. Standardisation, residualisation,
   the entropy approximation, the score M_i = sum_j min(0, diff_ij)^2 and the
   first-index tie-break are lingam's; `_pair_entropies` documents two rewrites that
   change values only at rounding level (~1e-15).
2. Connection strengths (lingam's `_estimate_adjacency_matrix` ->
   `predict_adaptive_lasso`): for every user and every position in the order, OLS
   weights, `LassoLarsIC(criterion="bic")` on the rescaled predictors, then an OLS refit
   of the selected parents on the original scale. All of it is computed from each user's
   cross-product matrix in causal order: the OLS weights of all prefixes come from one
   Gauss-Jordan sweep; LassoLarsIC is a batched LARS-lasso that follows sklearn's
   `_lars_path_solver` step by step (sklearn also works from the Gram matrix when rows >
   predictors) and scores each breakpoint with sklearn's BIC (OLS noise variance on
   n - k - 1 dof, df = number of coefficients above eps). It differs from sklearn only in
   keeping the inverse of the active Gram block instead of its Cholesky factor, which
   gives the same breakpoints to rounding (checked breakpoint by breakpoint in the
   tests). A few regressions have a selection that hinges on rounding: the BIC picks,
   or nearly picks, the breakpoint where a variable leaves the path (sklearn's
   coefficient there is a rounding residue, zero or one ulp, and lingam keeps the
   variable iff it is nonzero), BIC near-ties, degenerate pivots. Those are flagged and
   re-solved with sklearn exactly as lingam calls it, so the selected parents match.

Convention (lingam's): `adjacency_matrix_[b, i, j] != 0` means x_j -> x_i in user b
(row = effect, column = cause).

Not reproduced: measure="kernel"/"pwling_fast" and soft prior knowledge. Columns that are
exact linear combinations of others leave lingam with residuals of pure rounding noise
mid-search; its order is then arbitrary and cannot be matched.

Numerics run on numpy, or on torch (CUDA when available) through a thin array-module
shim (`_Ops`): the same code path, only the spelling of some calls differs.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

__all__ = ["BatchedDirectLiNGAM", "resolve_device"]

# lingam's maximum-entropy approximation constants (DirectLiNGAM._entropy)
_K1, _K2, _GAMMA = 79.047, 7.4129, 0.37457
_H0 = (1 + math.log(2 * math.pi)) / 2
# sklearn's _lars_path_solver constants
_TINY32 = float(np.finfo(np.float32).tiny)
_EQ_TOL = float(np.finfo(np.float32).eps)
_EPS = float(np.finfo(np.float64).eps)
_COV_PRECISION = int(np.finfo(np.float64).precision)
_MAX_ITER = 500
# Cholesky pivot below which sklearn drops a regressor as degenerate (1e-7); we hand
# anything within a factor 10 of it to sklearn.
_DEGENERATE_PIVOT = 1e-6


# --------------------------------------------------------------------------- backends
def resolve_device(device: str = "auto") -> str:
    """Map a user-facing device name to a backend: "numpy", "torch-cpu" or "cuda".

    "auto" picks CUDA when torch sees a GPU (the batch is large and the work is
    elementwise), else numpy; "cpu" means numpy.
    """
    if device in ("cpu", "numpy"):
        return "numpy"
    if device == "torch-cpu":
        return "torch-cpu"
    if device in ("auto", "cuda"):
        try:
            import torch
        except ImportError:  # pragma: no cover - torch is a project dependency
            torch = None
        if torch is not None and torch.cuda.is_available():
            return "cuda"
        if device == "cuda":
            raise ValueError("device='cuda' requested but torch sees no CUDA device")
        return "numpy"
    raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'torch-cpu', got {device!r}")


class _Ops:
    """The array operations whose spelling differs between numpy and torch."""

    def __init__(self, backend: str):
        self.backend = backend
        self.is_torch = backend != "numpy"
        if self.is_torch:
            import torch

            self.xp = torch
            self.device = torch.device("cuda" if backend == "cuda" else "cpu")
            self._dtypes = {"float": torch.float64, "int": torch.int64, "bool": torch.bool}
        else:
            self.xp = np
            self._dtypes = {"float": np.float64, "int": np.int64, "bool": np.bool_}

    def asarray(self, a: Any, kind: str = "float"):
        if self.is_torch:
            if isinstance(a, self.xp.Tensor):
                return a.to(device=self.device, dtype=self._dtypes[kind])
            return self.xp.as_tensor(np.asarray(a), dtype=self._dtypes[kind], device=self.device)
        return np.asarray(a, dtype=self._dtypes[kind])

    def to_numpy(self, a) -> np.ndarray:
        return a.detach().cpu().numpy() if self.is_torch else np.asarray(a)

    def astype(self, a, kind: str):
        return a.to(self._dtypes[kind]) if self.is_torch else a.astype(self._dtypes[kind])

    def zeros(self, shape, kind: str = "float"):
        if self.is_torch:
            return self.xp.zeros(shape, dtype=self._dtypes[kind], device=self.device)
        return np.zeros(shape, dtype=self._dtypes[kind])

    def full(self, shape, value, kind: str = "float"):
        if self.is_torch:
            return self.xp.full(shape, value, dtype=self._dtypes[kind], device=self.device)
        return np.full(shape, value, dtype=self._dtypes[kind])

    def arange(self, n: int):
        if self.is_torch:
            return self.xp.arange(n, device=self.device)
        return np.arange(n)

    def eye(self, n: int):
        if self.is_torch:
            return self.xp.eye(n, dtype=self.xp.float64, device=self.device)
        return np.eye(n)

    def swap_last(self, a):
        return a.transpose(-1, -2) if self.is_torch else np.swapaxes(a, -1, -2)

    def copy(self, a):
        return a.clone() if self.is_torch else a.copy()

    def sum(self, a, axis, keepdims: bool = False):
        return a.sum(dim=axis, keepdim=keepdims) if self.is_torch else a.sum(axis=axis, keepdims=keepdims)

    def mean(self, a, axis, keepdims: bool = False):
        return a.mean(dim=axis, keepdim=keepdims) if self.is_torch else a.mean(axis=axis, keepdims=keepdims)

    def amin(self, a, axis):
        return a.amin(dim=axis) if self.is_torch else a.min(axis=axis)

    def amax(self, a, axis):
        return a.amax(dim=axis) if self.is_torch else a.max(axis=axis)

    def argmin(self, a, axis):
        return a.argmin(dim=axis) if self.is_torch else a.argmin(axis=axis)

    def argmax(self, a, axis):
        return a.argmax(dim=axis) if self.is_torch else a.argmax(axis=axis)

    def prod(self, a, axis):
        return a.prod(dim=axis) if self.is_torch else a.prod(axis=axis)

    def any(self, a, axis):
        return a.any(dim=axis) if self.is_torch else a.any(axis=axis)

    def argsort_stable(self, a, axis):
        if self.is_torch:
            return self.xp.argsort(a, dim=axis, stable=True)
        return np.argsort(a, axis=axis, kind="stable")

    def take_along(self, a, idx, axis):
        if self.is_torch:
            return self.xp.take_along_dim(a, idx, dim=axis)
        return np.take_along_axis(a, idx, axis=axis)

    def round(self, a, decimals: int):
        return self.xp.round(a, decimals=decimals) if self.is_torch else np.around(a, decimals)

    def solve(self, A, b):
        """Batched solve (b: (..., m, r)); pseudo-inverse if some system is singular
        (exactly collinear columns), which gives lstsq's minimum-norm answer."""
        try:
            return self.xp.linalg.solve(A, b)
        except (np.linalg.LinAlgError, RuntimeError):
            return self.xp.linalg.pinv(A) @ b

    def nonzero(self, mask):
        return self.xp.nonzero(mask)[0] if not self.is_torch else self.xp.nonzero(mask).flatten()

    def errstate(self):
        """Silence numpy's warnings for masked-out lanes (torch never warns)."""
        return contextlib.nullcontext() if self.is_torch else np.errstate(all="ignore")


# ----------------------------------------------------------------- causal order search
def _entropy_from_moments(a, b):
    """lingam's DirectLiNGAM._entropy given a = mean(log cosh u), b = mean(u exp(-u^2/2))."""
    return _H0 - _K1 * (a - _GAMMA) ** 2 - _K2 * b**2


def _entropy(ops: _Ops, u):
    """lingam's DirectLiNGAM._entropy along the last axis, written as lingam writes it."""
    xp = ops.xp
    a = ops.mean(xp.log(xp.cosh(u)), -1)
    b = ops.mean(u * xp.exp((-(u**2)) / 2), -1)
    return _entropy_from_moments(a, b)


def _pair_entropies(ops: _Ops, Zs, beta):
    """H(r_i^(j) / std(r_i^(j))) for every slot pair: (B, k, k) from Zs (B, k, n).

    r_i^(j) = xi_std - beta_ij * xj_std is lingam's `_residual` on standardised columns,
    divided by its own population std as in `_diff_mutual_info`. Three rewrites keep
    the arithmetic to rounding (~1e-15) but cut the cost, which on CPUs without AVX-512 is
    mostly numpy's scalar exp/log:
    - var(r) = mean(r^2) - mean(r)^2 with mean(r) from the column means (it is ~1e-17,
      so this is np.var(r) to rounding) - one pass instead of three;
    - cosh(u) = (e^u + e^-u) / 2, one exp and a reciprocal instead of cosh;
    - mean(log cosh u) = log(prod cosh u) / n, one log per pair instead of per element.
      cosh >= 1 and prod cosh u <= e^(sum |u|) <= e^n since sum u^2 = n, so the product
      cannot overflow below n ~ 700; if it does, the chunk is recomputed directly.
    """
    xp = ops.xp
    B, k, n = Zs.shape
    mZ = ops.mean(Zs, 2)
    mR = mZ[:, :, None] - beta * mZ[:, None, :]  # mean of each residual
    if not ops.is_torch:
        R = np.multiply(beta[..., None], Zs[:, None, :, :])
        np.subtract(Zs[:, :, None, :], R, out=R)
        s2 = np.einsum("...n,...n->...", R, R)
        s2 /= n
        s2 -= mR * mR  # np.std(r): mean of squares about the mean
        np.divide(R, np.sqrt(s2)[..., None], out=R)  # u
        T = np.exp(R)
        E = np.reciprocal(T)
        T += E
        T *= 0.5  # cosh(u)
        a = np.log(T.prod(-1)) / n
        if not np.isfinite(a).all():
            a = np.log(np.cosh(R)).mean(-1)
        np.multiply(R, R, out=T)
        T *= -0.5
        np.exp(T, out=T)
        T *= R
        b = T @ np.ones(n) / n
        return _entropy_from_moments(a, b)
    R = Zs[:, :, None, :] - beta[..., None] * Zs[:, None, :, :]
    s2 = ops.sum(R * R, -1) / n - mR * mR
    u = R / xp.sqrt(s2)[..., None]
    e = xp.exp(u)
    a = xp.log(ops.prod((e + 1.0 / e) * 0.5, -1)) / n
    if not bool(xp.isfinite(a).all()):
        a = ops.mean(xp.log(xp.cosh(u)), -1)
    b = ops.mean(u * xp.exp(u * u * -0.5), -1)
    return _entropy_from_moments(a, b)


def _search_orders(ops: _Ops, XT, usable, precede, labels: Sequence[str]):
    """Causal order of every user: lingam's fit loop with `_search_causal_order` (pwling).

    XT (B, p, n) float (columns as rows, so each column's samples are contiguous);
    usable (B, p) bool (False for dropped columns); precede (B, p, p) bool or None,
    precede[b, f, t] = x_f must come before x_t (lingam's partial orders in the strong
    form: a variable is not a candidate while one of its required predecessors is still
    unordered). Returns (B, p) int: the order of the usable columns, then the unusable
    ones in index order.
    """
    xp = ops.xp
    B, p, n = XT.shape
    Xr = ops.copy(XT)
    U = ops.copy(usable)
    pos = ops.full((B, p), p, "int")
    cols = ops.arange(p)
    rows = ops.arange(B)
    # Stand-in columns for padded slots: distinct and never degenerate, so masked lanes
    # stay finite. Their scores are discarded.
    filler = ops.asarray(np.random.default_rng(0).standard_normal((p, n)))
    for t in range(p):
        counts = ops.sum(ops.astype(U, "int"), 1)
        k = int(ops.amax(counts, 0)) if B else 0
        if k == 0:
            break
        alive = counts > 0
        # Compact the remaining variables of each user into k slots, in index order
        # (lingam iterates U in index order, and argmax keeps the first maximum).
        slot_idx = ops.argsort_stable(ops.astype(~U, "int"), 1)[:, :k]
        valid = ops.take_along(U, slot_idx, 1)
        Z = ops.take_along(Xr, slot_idx[:, :, None], 1)
        Z = xp.where(valid[:, :, None], Z, filler[None, :k, :])
        # candidates: not blocked by a still-unordered required predecessor
        cand = valid
        if precede is not None:
            blocked = ops.any(U[:, :, None] & precede, 1)  # (B, p)
            cand = cand & ~ops.take_along(blocked, slot_idx, 1)
        stuck = alive & ~ops.any(cand, 1)
        if bool(ops.any(stuck, 0)):
            b = int(ops.nonzero(stuck)[0])
            raise ValueError(
                f"user {labels[b]}: the order constraints (order_prior / prior_knowledge) are "
                "cyclic among the remaining variables "
                f"{[int(c) for c in ops.to_numpy(ops.nonzero(U[b]))]}"
            )
        if bool(ops.amax(ops.sum(ops.astype(cand, "int"), 1), 0) <= 1):
            # A full order prior leaves one candidate per user: nothing to score, so the
            # entropies (most of the cost) are skipped; the choice is the same.
            M = ops.zeros((B, k))
        else:
            # xi_std = (x_i - mean) / std
            Zc = Z - ops.mean(Z, 2, keepdims=True)
            Zs = Zc / xp.sqrt(ops.mean(Zc * Zc, 2, keepdims=True))
            # _residual(xi_std, xj_std): coefficient cov(xi_std, xj_std) / var(xj_std)
            Zsc = Zs - ops.mean(Zs, 2, keepdims=True)
            cov = (Zsc @ ops.swap_last(Zsc)) / n
            var = ops.mean(Zsc * Zsc, 2)
            slots = ops.arange(k)
            off = slots[:, None] != slots[None, :]
            beta = xp.where(off, cov / var[:, None, :], 0.0)  # diagonal lanes: harmless, dropped
            H_r = _pair_entropies(ops, Zs, beta)  # [b, i, j] = H(r_i^(j) / std)
            H_x = _entropy(ops, Zs)  # (B, k)
            # _diff_mutual_info(i, j) = (H(x_j) + H(r_i^(j))) - (H(x_i) + H(r_j^(i)))
            diff = (H_x[:, None, :] + H_r) - (H_x[:, :, None] + ops.swap_last(H_r))
            pair = valid[:, :, None] & valid[:, None, :] & off
            neg = xp.where(diff < 0, diff, 0.0)
            M = ops.sum(xp.where(pair, neg * neg, 0.0), 2)
        score = xp.where(cand, M, math.inf)
        m = slot_idx[rows, ops.argmin(score, 1)]
        # remove x_m from every other remaining column: _residual(X_[:, i], X_[:, m])
        xm = Xr[rows, m][:, None, :]  # (B, 1, n)
        xmc = xm - ops.mean(xm, 2, keepdims=True)
        Xc = Xr - ops.mean(Xr, 2, keepdims=True)
        coef = (ops.sum(Xc * xmc, 2) / n) / ops.mean(xmc * xmc, 2)  # (B, p)
        chosen = cols[None, :] == m[:, None]
        upd = U & ~chosen & alive[:, None]
        Xr = xp.where(upd[:, :, None], Xr - coef[:, :, None] * xm, Xr)
        pos = xp.where(chosen & alive[:, None], t, pos)
        U = U & ~chosen
    key = xp.where(pos < p, pos, p + cols[None, :])
    return ops.argsort_stable(key, 1)


# ----------------------------------------------------------------- LassoLarsIC, batched
def _masked_solve(ops: _Ops, A, b, mask):
    """Solve A[mask, mask] x = b[mask] per problem; x is 0 off the mask.

    Off-mask rows/columns are replaced by the identity, so every system stays
    non-singular and the masked block is solved exactly as on its own.
    """
    xp = ops.xp
    m = A.shape[-1]
    mm = mask[..., :, None] & mask[..., None, :]
    Am = xp.where(mm, A, ops.eye(m))
    bm = xp.where(mask, b, 0.0)
    return ops.solve(Am, bm[..., None])[..., 0]


def _prefix_regressions(ops: _Ops, S):
    """OLS of every ordered column i on columns 0..i-1, from the cross-product matrix S.

    One Gauss-Jordan sweep through the pivots in order: after sweeping 0..i-1, column i
    above the diagonal holds S[:i, :i]^-1 S[:i, i] and the diagonal entry the residual sum
    of squares. Returns (coef (B, p-1, p-1) with row t = target t+1, rss (B, p-1)).
    """
    B, p, _ = S.shape
    m = p - 1
    A = ops.copy(S)
    W = ops.zeros((B, m, m))
    rss = ops.zeros((B, m))
    with ops.errstate():
        for t in range(m):
            a = A[:, t, t][:, None]
            row = A[:, t, :] / a
            col = ops.copy(A[:, :, t])
            A = A - col[:, :, None] * row[:, None, :]
            A[:, t, :] = row
            A[:, :, t] = col / a
            A[:, t, t] = -1.0 / a[:, 0]
            W[:, t, : t + 1] = A[:, : t + 1, t + 1]
            rss[:, t] = A[:, t + 1, t + 1]
    return W, rss


def _min_pos(ops: _Ops, a, lane):
    """sklearn's arrayfuncs.min_pos over the lanes in `lane` (inf when none is > 0)."""
    xp = ops.xp
    return ops.amin(xp.where(lane & (a > 0), a, math.inf), -1)


def _matvec(A, v):
    return (A @ v[..., None])[..., 0]


def _lars_bic(ops: _Ops, G, Xy, yy, sigma2, mask, n: int, trace: list | None = None):
    """`LassoLarsIC(criterion="bic")` for Q independent problems given their Gram data.

    Follows sklearn's `_lars_path_solver(method="lasso")` with a Gram matrix, step by
    step: the same entering rule, equiangular direction, step lengths (`min_pos` of the
    same ratios, with the same `tiny32` guards and the rounding of `corr_eq_dir` to 15
    decimals), sign-change drops and stopping rules. Where sklearn updates a Cholesky
    factor of the active Gram block, this keeps its inverse, updated by bordering when a
    variable enters and by the matching downdate when one leaves (same quantities, and the
    pivot c - w'w that sklearn tests for degeneracy falls out of the bordering). Each
    breakpoint is scored as sklearn does, n log(2 pi sigma2) + RSS / sigma2 +
    log(n) * #{|coef| > eps}, and the first minimum wins. Problems that finish are
    dropped from the working set, so long paths do not hold up short ones.

    G (Q, m, m), Xy (Q, m), yy (Q,), sigma2 (Q,), mask (Q, m) = which slots are
    predictors. Returns (coef (Q, m) at the selected breakpoint, ambiguous (Q,) bool):
    ambiguous problems must be re-solved by sklearn (see module docstring). `trace`, if
    a list, receives (problem ids, alpha, coef) for every breakpoint (for the tests).
    """
    xp = ops.xp
    Q, m = Xy.shape
    log_n = math.log(n)
    out_coef = ops.zeros((Q, m))
    with ops.errstate():
        const_all = n * xp.log(2 * math.pi * sigma2)
    nfeat_all = ops.sum(ops.astype(mask, "int"), 1)
    bad = ~xp.isfinite(const_all) | ~(sigma2 > 0)
    out_amb = bad & (nfeat_all > 0)
    ids = ops.nonzero((nfeat_all > 0) & ~bad)
    # working set (compacted as problems finish)
    G, Xy, yy, sigma2, mask = G[ids], Xy[ids], yy[ids], sigma2[ids], mask[ids]
    const, nfeat = const_all[ids], nfeat_all[ids]
    q = int(ids.shape[0])
    active = ops.zeros((q, m), "bool")
    sign = ops.zeros((q, m))
    coef = ops.zeros((q, m))
    cov = ops.copy(Xy)
    P = ops.zeros((q, m, m))  # inverse of the active Gram block, zero elsewhere
    drop = ops.zeros((q,), "bool")
    prev_alpha = ops.zeros((q,))
    best_crit = ops.full((q,), math.inf)
    best_coef = ops.zeros((q, m))
    drop_crit = ops.full((q,), math.inf)
    near_tie = ops.zeros((q,), "bool")
    done = ops.zeros((q,), "bool")  # finished, output written, awaiting compaction
    slots = ops.arange(m)

    for n_iter in range(_MAX_ITER + 1):
        if q == 0:
            break
        r = ops.arange(q)
        # --- top of sklearn's loop: C = max |Cov| over inactive predictors
        avail = mask & ~active
        c_idx = ops.argmax(xp.where(avail, xp.abs(cov), -1.0), 1)
        C_ = cov[r, c_idx]
        C = xp.where(ops.any(avail, 1), xp.abs(C_), 0.0)
        alpha = C / n
        if trace is not None:
            live = ops.nonzero(~done)
            trace.append(tuple(ops.to_numpy(a[live]) for a in (ids, alpha, coef)))
        # --- this breakpoint's BIC (sklearn scores every row of coef_path_)
        rss = yy - 2 * ops.sum(coef * Xy, 1) + ops.sum(coef * _matvec(G, coef), 1)
        big = xp.abs(coef) > _EPS
        crit = const + rss / sigma2 + log_n * ops.sum(ops.astype(big, "float"), 1)
        # A breakpoint reached by dropping a variable carries sklearn's rounding residue
        # for it (zero or an ulp: lingam keeps the variable iff nonzero, and it may or may
        # not count in df). Keep such breakpoints out of our own selection; if one could
        # score at or below the winner, sklearn decides (see module docstring).
        crit_lo = const + rss / sigma2 + log_n * ops.sum(ops.astype(big & active, "float"), 1)
        drop_crit = xp.where(drop, xp.minimum(drop_crit, crit_lo), drop_crit)
        tol = 1e-8 * xp.clip(xp.abs(crit), 1.0, None)
        better = ~drop & (crit < best_crit - tol)
        close = ~drop & ~better & (xp.abs(crit - best_crit) <= tol)
        near_tie = xp.where(better, False, near_tie | close)
        take = better | (close & (crit < best_crit))
        best_crit = xp.where(take, crit, best_crit)
        best_coef = xp.where(take[:, None], coef, best_coef)
        # --- stopping rules (alpha_min = 0, so sklearn never interpolates)
        stop = (alpha <= _EQ_TOL) | (ops.sum(ops.astype(active, "int"), 1) >= nfeat)
        if n_iter >= _MAX_ITER:
            stop = stop | True
        # lasso: alpha increasing -> sklearn bails out; rounding decides that, so defer
        flag = ~stop & (prev_alpha < alpha)
        if n_iter == 0:
            flag = flag & False
        with ops.errstate():
            # --- the entering variable j joins the active set (unless the last step
            # dropped one): border the inverse with u = P b, d = c - b'u
            add = ~stop & ~drop
            onehot = (slots[None, :] == c_idx[:, None]) & add[:, None]
            b = xp.where(active, G[r, :, c_idx], 0.0)
            u = _matvec(P, b)
            d = G[r, c_idx, c_idx] - ops.sum(b * u, 1)
            flag = flag | (add & ~(xp.sqrt(xp.abs(d)) >= _DEGENERATE_PIVOT))
            v = xp.where(onehot, -1.0, u) * ops.astype(add, "float")[:, None]
            d = xp.where(add, d, 1.0)
            P = P + v[:, :, None] * (v / d[:, None])[:, None, :]
            active = active | onehot
            sign = xp.where(onehot, xp.sign(C_)[:, None], sign)
            # --- equiangular direction: G_AA ls = sign_A, normalised by AA
            ls = _matvec(P, sign)
            AA = 1.0 / xp.sqrt(ops.sum(ls * sign, 1))
            flag = flag | (~stop & ~xp.isfinite(AA))
            ls = ls * AA[:, None]
            corr = ops.round(_matvec(G, ls), _COV_PRECISION)
            lane = mask & ~active
            g1 = _min_pos(ops, (C[:, None] - cov) / (AA[:, None] - corr + _TINY32), lane)
            g2 = _min_pos(ops, (C[:, None] + cov) / (AA[:, None] + corr + _TINY32), lane)
            gamma = xp.minimum(xp.minimum(g1, g2), C / AA)
            z = -coef / (ls + _TINY32)
            z_pos = _min_pos(ops, z, active)
        dropnow = z_pos < gamma
        gamma = xp.where(dropnow, z_pos, gamma)
        coef = xp.where(active, coef + gamma[:, None] * ls, 0.0)
        cov = cov - gamma[:, None] * corr
        go = ~stop & ~flag & ~done
        dq = ops.nonzero(dropnow & go)
        if int(dq.shape[0]):
            # the variable(s) whose coefficient reached zero leave the active set; their
            # covariance is recomputed from the original Xy and Gram, as sklearn does
            didx = active[dq] & (z[dq] == z_pos[dq][:, None])
            cov[dq] = xp.where(didx, Xy[dq] - _matvec(G[dq], coef[dq]), cov[dq])
            Pd = P[dq]
            rd = ops.arange(int(dq.shape[0]))
            left = ops.copy(didx)
            while bool(ops.any(ops.any(left, 1), 0)):
                has = ops.any(left, 1)
                j = ops.argmax(ops.astype(left, "int"), 1)
                pj = Pd[rd, :, j]
                piv = xp.where(has, Pd[rd, j, j], 1.0)
                upd = pj * ops.astype(has, "float")[:, None]
                Pd = Pd - upd[:, :, None] * (Pd[rd, j, :] / piv[:, None])[:, None, :]
                keep = ~((slots[None, :] == j[:, None]) & has[:, None])
                Pd = Pd * ops.astype(keep[:, :, None] & keep[:, None, :], "float")
                left = left & keep
            P[dq] = Pd
            active[dq] = active[dq] & ~didx
            sign[dq] = xp.where(didx, 0.0, sign[dq])
        prev_alpha = alpha
        drop = dropnow
        # --- retire finished problems: write their result now; rows of finished
        # problems keep being computed (and ignored) until a quarter of the working set
        # has finished, then the working set is compacted
        fin = ops.nonzero(~go & ~done)
        if int(fin.shape[0]):
            out_coef[ids[fin]] = best_coef[fin]
            out_amb[ids[fin]] = flag[fin] | near_tie[fin] | (
                drop_crit[fin] <= best_crit[fin] + 1e-8 * (1 + xp.abs(best_crit[fin]))
            )
            done = done | ~go
            n_done = int(ops.sum(ops.astype(done, "int"), 0))
            if n_done == q or 4 * n_done >= q:
                keep = ops.nonzero(~done)
                ids = ids[keep]
                (G, Xy, yy, sigma2, mask, const, nfeat, active, sign, coef, cov, P, drop,
                 prev_alpha, best_crit, best_coef, drop_crit, near_tie, done) = (
                    a[keep] for a in (G, Xy, yy, sigma2, mask, const, nfeat, active, sign, coef,
                                      cov, P, drop, prev_alpha, best_crit, best_coef, drop_crit,
                                      near_tie, done)
                )
                q = int(ids.shape[0])
    return out_coef, out_amb


def _reference_support(X_user: np.ndarray, predictors: list[int], target: int) -> np.ndarray:
    """Parents kept by lingam's predict_adaptive_lasso, computed with sklearn itself."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LassoLarsIC, LinearRegression
    from sklearn.preprocessing import StandardScaler

    X_std = StandardScaler().fit_transform(X_user)
    lr = LinearRegression().fit(X_std[:, predictors], X_std[:, target])
    weight = np.abs(lr.coef_)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg = LassoLarsIC(criterion="bic").fit(X_std[:, predictors] * weight, X_std[:, target])
    return np.abs(reg.coef_ * weight) > 0.0


def _estimate_adjacency(ops: _Ops, XT, X_np, order, n_usable, allowed, refit: bool, users_per_chunk: int):
    """lingam's _estimate_adjacency_matrix for every user: adaptive lasso on predecessors.

    Works in causal-order coordinates: the problem for position i regresses column i on
    columns 0..i-1 (minus those prior knowledge forbids), so the problems of a user share
    one cross-product matrix and are (p-1)-slot masked problems.
    Returns (adjacency (B, p, p) float, number of regressions re-solved by sklearn).
    """
    xp = ops.xp
    B, p, n = XT.shape
    if p < 2:
        return ops.zeros((B, p, p)), 0
    m = p - 1
    Xo = ops.take_along(XT, order[:, :, None], 1)  # (B, p, n), rows in causal order
    mu = ops.mean(Xo, 2, keepdims=True)
    sd = xp.sqrt(ops.mean((Xo - mu) ** 2, 2, keepdims=True))
    sd = xp.where(sd > 0, sd, 1.0)  # StandardScaler leaves constant columns unscaled
    Xs = (Xo - mu) / sd
    Xs = Xs - ops.mean(Xs, 2, keepdims=True)  # sklearn re-centres before fitting
    S = Xs @ ops.swap_last(Xs)  # (B, p, p)
    sd = sd[:, :, 0]

    pos = ops.arange(p)
    tri = pos[None, :m] <= pos[:m, None]  # (T, m): target t + 1 has predictor slots j <= t
    valid_target = pos[None, 1:] < n_usable[:, None]  # (B, T)
    mask = tri[None] & valid_target[:, :, None]
    if allowed is not None:
        # allowed[b, effect, cause] in original indices -> causal-order coordinates
        al = ops.take_along(allowed, order[:, :, None], 1)
        al = ops.take_along(al, order[:, None, :], 2)
        mask = mask & al[:, 1:, :m]
    S_py = ops.swap_last(S[:, :m, 1:])  # (B, T, m): [b, t, j] = S[b, j, t + 1]
    yy = S[:, pos[1:], pos[1:]]  # (B, T)
    k = ops.sum(ops.astype(mask, "float"), 2)

    # 1. OLS weights on standardised data (LinearRegression in predict_adaptive_lasso)
    if allowed is None:
        w, rss = _prefix_regressions(ops, S)
    else:
        w = ops.zeros((B, m, m))
        for s in range(0, B, users_per_chunk):
            e = min(B, s + users_per_chunk)
            Sb = xp.broadcast_to(S[s:e, None, :m, :m], (e - s, m, m, m))
            w[s:e] = _masked_solve(ops, Sb, S_py[s:e], mask[s:e])
        rss = yy - ops.sum(w * S_py, 2)
    w = xp.where(mask, w, 0.0)
    rss = xp.where(valid_target, rss, 1.0)
    with ops.errstate():
        sigma2 = rss / (n - k - 1)
    weight = xp.abs(w)

    # 2. LassoLarsIC(bic) on X_std[:, predictors] * weight, user chunk by user chunk.
    # A zero weight zeroes its column: sklearn can never activate it (its covariance
    # stays 0), so it is left out of the path; it still counts in sigma2's dof above.
    lars_mask = mask & (weight > 0)
    coef = ops.zeros((B, m, m))
    ambiguous = ops.zeros((B, m), "bool")
    for s in range(0, B, users_per_chunk):
        e = min(B, s + users_per_chunk)
        Q = (e - s) * m
        wq = weight[s:e]
        G = wq[..., :, None] * S[s:e, None, :m, :m] * wq[..., None, :]
        c, a = _lars_bic(
            ops, G.reshape(Q, m, m), (wq * S_py[s:e]).reshape(Q, m), yy[s:e].reshape(Q),
            sigma2[s:e].reshape(Q), lars_mask[s:e].reshape(Q, m), n,
        )
        coef[s:e] = c.reshape(e - s, m, m)
        ambiguous[s:e] = a.reshape(e - s, m)
    support = (coef * weight != 0) & mask
    n_refit = 0
    if refit:
        amb = ops.to_numpy(ambiguous & ops.any(mask, 2))
        if amb.any():
            order_np = ops.to_numpy(order)
            mask_np = ops.to_numpy(mask)
            sup_np = ops.to_numpy(support).copy()
            for b, t in zip(*np.nonzero(amb)):
                slots_ = np.flatnonzero(mask_np[b, t])
                preds = [int(order_np[b, j]) for j in slots_]
                kept = _reference_support(X_np[b], preds, int(order_np[b, t + 1]))
                sup_np[b, t] = False
                sup_np[b, t, slots_[kept]] = True
                n_refit += 1
            support = ops.asarray(sup_np, "bool")

    # 3. OLS refit of the kept parents on the original scale (with intercept)
    beta = ops.zeros((B, m, m))
    for s in range(0, B, users_per_chunk):
        e = min(B, s + users_per_chunk)
        Sb = xp.broadcast_to(S[s:e, None, :m, :m], (e - s, m, m, m))
        beta[s:e] = _masked_solve(ops, Sb, S_py[s:e], support[s:e])
    beta = beta * sd[:, 1:, None] / sd[:, None, :m]
    A_ord = ops.zeros((B, p, p))
    A_ord[:, 1:, :m] = xp.where(support, beta, 0.0)
    inv = ops.argsort_stable(order, 1)
    A = ops.take_along(A_ord, inv[:, :, None], 1)
    return ops.take_along(A, inv[:, None, :], 2), n_refit


# ------------------------------------------------------------------------ prior knowledge
def _extract_partial_orders(pk: np.ndarray) -> np.ndarray:
    """lingam's DirectLiNGAM._extract_partial_orders: (from, to) pairs of a (p, p) matrix."""
    path_pairs = np.array(np.where(pk == 1)).transpose()
    no_path_pairs = np.array(np.where(pk == 0)).transpose()
    check_pairs = np.concatenate([path_pairs, path_pairs[:, [1, 0]]])
    if len(check_pairs) > 0:
        pairs, counts = np.unique(check_pairs, axis=0, return_counts=True)
        if len(pairs[counts > 1]) > 0:
            raise ValueError(
                "The prior knowledge contains inconsistencies at the following indices: "
                f"{pairs[counts > 1].tolist()}"
            )
    check_pairs = np.concatenate([no_path_pairs, no_path_pairs[:, [1, 0]]])
    if len(check_pairs) > 0:
        pairs, counts = np.unique(check_pairs, axis=0, return_counts=True)
        check_pairs = np.concatenate([no_path_pairs, pairs[counts > 1]])
        pairs, counts = np.unique(check_pairs, axis=0, return_counts=True)
        no_path_pairs = pairs[counts < 2]
    check_pairs = np.concatenate([path_pairs, no_path_pairs[:, [1, 0]]])
    if len(check_pairs) == 0:
        return check_pairs.reshape(0, 2).astype(int)
    pairs = np.unique(check_pairs, axis=0)
    return pairs[:, [1, 0]]


def _prior_to_masks(pk: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """(precede (p, p), allowed (p, p)) from one lingam prior-knowledge matrix."""
    pk = np.asarray(pk, dtype=float)
    if pk.shape != (p, p):
        raise ValueError("The shape of prior knowledge must be (n_features, n_features)")
    pk = np.where(pk < 0, np.nan, pk)
    precede = np.zeros((p, p), dtype=bool)
    orders = _extract_partial_orders(pk)
    if len(orders):
        precede[orders[:, 0], orders[:, 1]] = True
    no_diag = pk.copy()
    np.fill_diagonal(no_diag, 0)
    allowed = no_diag != 0  # NaN != 0 is True: unknown keeps the predictor
    return precede, allowed


def _order_prior_to_precede(order_prior: Any, B: int, p: int) -> np.ndarray:
    """(B, p, p) bool precede matrix from an order prior (see `fit`)."""
    arr = np.asarray(order_prior)
    if arr.dtype == bool or arr.ndim >= 2:
        if arr.shape == (p, p):
            arr = np.broadcast_to(arr, (B, p, p))
        if arr.shape != (B, p, p):
            raise ValueError(
                f"order_prior matrix must have shape ({p}, {p}) or ({B}, {p}, {p}), got {arr.shape}"
            )
        arr = np.array(arr, dtype=bool)
        arr[:, np.arange(p), np.arange(p)] = False
        return arr
    seq = [int(v) for v in arr.ravel()]
    if len(set(seq)) != len(seq) or any(not 0 <= v < p for v in seq):
        raise ValueError(f"order_prior must list distinct column indices in [0, {p}), got {seq}")
    precede = np.zeros((p, p), dtype=bool)
    for a, f in enumerate(seq):
        precede[f, seq[a + 1:]] = True  # every earlier entry precedes every later one
    return np.broadcast_to(precede, (B, p, p))


# ------------------------------------------------------------------------------ estimator
_DEFAULT_CHUNK_ELEMENTS = {"numpy": 2**19, "torch-cpu": 2**21, "cuda": 2**25}
_USERS_PER_TRANSFER = 8192


class BatchedDirectLiNGAM(BaseEstimator):
    """DirectLiNGAM (lingam's algorithm, measure="pwling") fitted to many users at once.

    Gives lingam's causal order and adjacency matrix for each user: identical orders and
    parent sets, adjacency entries equal to ~1e-11 or better (the module docstring says
    how LassoLarsIC is matched).

    Parameters
    ----------
    prior_knowledge : array (p, p) or (B, p, p), optional
        lingam's prior-knowledge matrix (0: no path, 1: path, -1: unknown, read exactly as
        lingam reads it), applied as lingam does with `apply_prior_knowledge_softly=False`:
        it restricts the causal-order candidates and removes forbidden predictors from the
        adjacency regressions. The soft mode is not supported.
    device : {"auto", "cpu", "cuda", "torch-cpu"}
        "auto" = CUDA through torch when a GPU is visible, else numpy; "cpu" = numpy;
        "torch-cpu" runs the torch code path on the CPU (used to test that path).
    drop_tol : float
        A column whose standard deviation is <= drop_tol * max|column| for a user is
        treated as constant for that user (lingam would divide by ~0 and return noise).
    chunk_elements : int, optional
        Working-set size: users are processed in chunks whose (users, k, k, rows)
        pairwise array holds about this many float64 values. Default per backend: small
        on numpy so temporaries stay in cache, large on CUDA.
    refit_ambiguous : bool
        Re-solve with sklearn the few regressions whose BIC selection hinges on rounding,
        so that the selected parents match lingam's (see the module docstring). False
        keeps the batched solver's own choice (drop breakpoints scored as exact zeros).

    Attributes
    ----------
    causal_order_ : ndarray (B, p) of int
        Per user, the columns in causal order; dropped columns come last, in index order.
    adjacency_matrix_ : ndarray (B, p, p)
        lingam's convention: row = effect, column = cause; `[b, i, j] != 0` means
        x_j -> x_i for user b. Dropped columns have no edges.
    dropped_columns_ : list of list of int
        Per user, the near-constant columns left out of the fit.
    user_ids_ : list
        The user labels used in error messages (`user_ids` or batch indices).
    n_reference_refits_ : int
        How many regressions were re-solved by sklearn.
    backend_ : str
        "numpy", "torch-cpu" or "cuda".
    """

    def __init__(
        self,
        prior_knowledge=None,
        device: str = "auto",
        drop_tol: float = 1e-12,
        chunk_elements: int | None = None,
        refit_ambiguous: bool = True,
    ):
        self.prior_knowledge = prior_knowledge
        self.device = device
        self.drop_tol = drop_tol
        self.chunk_elements = chunk_elements
        self.refit_ambiguous = refit_ambiguous

    def fit(self, X_batch, y=None, *, order_prior=None, user_ids: Sequence[Any] | None = None):
        """Fit one DAG per user.

        Parameters
        ----------
        X_batch : array (B, n, p), or a sequence of B arrays (n_b, p)
            Users x rows x features. Users with different row counts may be passed as a
            list; they are grouped by row count and each group is fitted as a batch.
        y : ignored
            (scikit-learn convention.)
        order_prior : optional
            A causal-order constraint shared by all users (e.g. the pooled order):
            either a sequence of column indices, meaning every listed column precedes
            every column listed after it (unlisted columns are free), or a bool matrix
            (p, p) / (B, p, p) with `[f, t]` = x_f must precede x_t. Enforced like
            lingam's strong prior knowledge: a column is not a candidate while a required
            predecessor is still unordered. Constraints on dropped columns are ignored.
        user_ids : sequence of length B, optional
            Names for users in error messages.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            naming the user, for NaN/inf, for n <= number of non-constant columns (where
            lingam's LassoLarsIC cannot estimate the noise variance), or for cyclic order
            constraints.
        """
        groups, B, p = self._as_groups(X_batch)
        labels = [str(u) for u in user_ids] if user_ids is not None else [str(b) for b in range(B)]
        if len(labels) != B:
            raise ValueError(f"user_ids has {len(labels)} entries for {B} users")

        # --- validation and column dropping, vectorised per row-count group
        dropped: list[list[int]] = [[] for _ in range(B)]
        usable_all = np.ones((B, p), dtype=bool)
        for idx, Xg in groups:
            finite = np.isfinite(Xg).all(axis=(1, 2))
            if not finite.all():
                r = int(np.flatnonzero(~finite)[0])
                bad = sorted({int(c) for c in np.argwhere(~np.isfinite(Xg[r]))[:, 1]})
                raise ValueError(f"user {labels[idx[r]]}: X contains NaN or inf (columns {bad})")
            const = Xg.std(axis=1) <= self.drop_tol * np.abs(Xg).max(axis=1, initial=0.0)
            usable_all[idx] = ~const
            for r in np.flatnonzero(const.any(axis=1)):
                dropped[idx[r]] = [int(c) for c in np.flatnonzero(const[r])]
            n, p_eff = Xg.shape[1], (~const).sum(axis=1)
            short = n <= p_eff
            if short.any():
                r = int(np.flatnonzero(short)[0])
                raise ValueError(
                    f"user {labels[idx[r]]}: needs more rows than non-constant columns "
                    f"(X has shape ({n}, {p}) with {int(p_eff[r])} non-constant columns); "
                    "lingam's LassoLarsIC cannot estimate the noise variance when n <= p"
                )

        # --- constraints
        precede = allowed = None
        if self.prior_knowledge is not None:
            pk = np.asarray(self.prior_knowledge, dtype=float)
            if pk.ndim == 2:
                pre, al = _prior_to_masks(pk, p)
                precede, allowed = np.broadcast_to(pre, (B, p, p)), np.broadcast_to(al, (B, p, p))
            elif pk.shape == (B, p, p):
                pa = [_prior_to_masks(mk, p) for mk in pk]
                precede, allowed = np.stack([x[0] for x in pa]), np.stack([x[1] for x in pa])
            else:
                raise ValueError(f"prior_knowledge must have shape ({p}, {p}) or ({B}, {p}, {p})")
        if order_prior is not None:
            op = _order_prior_to_precede(order_prior, B, p)
            precede = op if precede is None else (precede | op)

        backend = resolve_device(self.device)
        ops = _Ops(backend)
        budget = int(self.chunk_elements or _DEFAULT_CHUNK_ELEMENTS[backend])
        order_out = np.zeros((B, p), dtype=np.int64)
        adj_out = np.zeros((B, p, p))
        n_refit = 0
        for idx, Xg in groups:
            for s in range(0, len(idx), _USERS_PER_TRANSFER):
                sel = idx[s : s + _USERS_PER_TRANSFER]
                order, adj, nr = self._fit_chunk(
                    ops, Xg[s : s + _USERS_PER_TRANSFER], usable_all[sel],
                    None if precede is None else precede[sel],
                    None if allowed is None else allowed[sel],
                    [labels[b] for b in sel], budget,
                )
                order_out[sel] = order
                adj_out[sel] = adj
                n_refit += nr

        self.causal_order_ = order_out
        self.adjacency_matrix_ = adj_out
        self.dropped_columns_ = dropped
        self.user_ids_ = list(user_ids) if user_ids is not None else list(range(B))
        self.n_reference_refits_ = n_refit
        self.backend_ = backend
        return self

    def _fit_chunk(self, ops: _Ops, X_np, usable_np, precede_np, allowed_np, labels, budget: int):
        B, n, p = X_np.shape
        XT = ops.asarray(np.ascontiguousarray(np.swapaxes(X_np, 1, 2)))  # (B, p, n)
        usable = ops.asarray(usable_np, "bool")
        precede = None if precede_np is None else ops.asarray(np.ascontiguousarray(precede_np), "bool")
        allowed = None if allowed_np is None else ops.asarray(np.ascontiguousarray(allowed_np), "bool")
        # dropped columns are zeroed so they cannot perturb anything (they are masked too)
        XT = ops.xp.where(usable[:, :, None], XT, 0.0)
        step = max(1, budget // (p * p * n))
        orders = []
        with ops.errstate():
            for s in range(0, B, step):
                orders.append(_search_orders(
                    ops, XT[s : s + step], usable[s : s + step],
                    None if precede is None else precede[s : s + step], labels[s : s + step],
                ))
        order = ops.xp.concatenate(orders) if not ops.is_torch else ops.xp.cat(orders)
        n_usable = ops.sum(ops.astype(usable, "int"), 1)
        lars_users = max(1, 4 * budget // max(1, (p - 1) ** 3))
        adj, n_refit = _estimate_adjacency(
            ops, XT, X_np, order, n_usable, allowed, self.refit_ambiguous, lars_users
        )
        return ops.to_numpy(order).astype(np.int64), ops.to_numpy(adj), n_refit

    @staticmethod
    def _as_groups(X_batch) -> tuple[list[tuple[np.ndarray, np.ndarray]], int, int]:
        """[(user indices, stacked (B_g, n, p) array)] grouped by row count, B, p."""
        if not isinstance(X_batch, (list, tuple)):
            arr = np.asarray(X_batch, dtype=float)
            if arr.ndim != 3:
                raise ValueError(f"X_batch must have shape (users, rows, features), got {arr.shape}")
            if arr.shape[0] == 0:
                raise ValueError("X_batch holds no users")
            return [(np.arange(arr.shape[0]), arr)], arr.shape[0], arr.shape[2]
        users = [np.asarray(x, dtype=float) for x in X_batch]
        if not users:
            raise ValueError("X_batch holds no users")
        p = users[0].shape[-1] if users[0].ndim == 2 else -1
        by_rows: dict[int, list[int]] = {}
        for b, x in enumerate(users):
            if x.ndim != 2 or x.shape[1] != p:
                raise ValueError(f"user {b}: expected an (n, {p}) array, got shape {x.shape}")
            by_rows.setdefault(x.shape[0], []).append(b)
        groups = [(np.asarray(ix), np.stack([users[b] for b in ix])) for ix in by_rows.values()]
        return groups, len(users), p
