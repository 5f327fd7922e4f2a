"""Batched regression solvers from Gram data, for DirectLiNGAM's adjacency stage.

`lars_bic` is `sklearn.linear_model.LassoLarsIC(criterion="bic")` for many independent
problems at once: a batched LARS-lasso that follows sklearn's `_lars_path_solver` step by
step and scores each breakpoint with sklearn's BIC. `prefix_regressions` and
`masked_solve` give the OLS weights and refits around it. They live here, apart from the
estimator in `direct_lingam`, because they are a self-contained numerical replica of
sklearn whose exactness is tested breakpoint by breakpoint on its own; which results are
"ambiguous" and why they are re-solved by sklearn is explained in `direct_lingam`'s
module docstring.
"""

from __future__ import annotations

import math

import numpy as np

from .backend import ArrayOps

__all__ = ["lars_bic", "masked_solve", "prefix_regressions"]

# sklearn's _lars_path_solver constants
_TINY32 = float(np.finfo(np.float32).tiny)
_EQ_TOL = float(np.finfo(np.float32).eps)
_EPS = float(np.finfo(np.float64).eps)
_COV_PRECISION = int(np.finfo(np.float64).precision)
_MAX_ITER = 500
# Cholesky pivot below which sklearn drops a regressor as degenerate (1e-7); we hand
# anything within a factor 10 of it to sklearn.
_DEGENERATE_PIVOT = 1e-6


def masked_solve(ops: ArrayOps, A, b, mask):
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


def prefix_regressions(ops: ArrayOps, S):
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


def _min_pos(ops: ArrayOps, a, lane):
    """sklearn's arrayfuncs.min_pos over the lanes in `lane` (inf when none is > 0)."""
    xp = ops.xp
    return ops.amin(xp.where(lane & (a > 0), a, math.inf), -1)


def _matvec(ops: ArrayOps, A, v):
    return ops.matmul(A, v[..., None])[..., 0]


def lars_bic(ops: ArrayOps, G, Xy, yy, sigma2, mask, n: int, trace: list | None = None):
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
    ambiguous problems must be re-solved by sklearn (see `direct_lingam`'s module
    docstring). `trace`, if a list, receives (problem ids, alpha, coef) for every
    breakpoint (for the tests).
    """
    xp = ops.xp
    Q, m = Xy.shape
    log_n = math.log(n)
    out_coef = ops.zeros((Q, m))
    with ops.errstate():
        const_all = n * ops.log(2 * math.pi * sigma2)
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
        rss = yy - 2 * ops.sum(coef * Xy, 1) + ops.sum(coef * _matvec(ops, G, coef), 1)
        big = xp.abs(coef) > _EPS
        crit = const + rss / sigma2 + log_n * ops.sum(ops.astype(big, "float"), 1)
        # A breakpoint reached by dropping a variable carries sklearn's rounding residue
        # for it (zero or an ulp: lingam keeps the variable iff nonzero, and it may or may
        # not count in df). Keep such breakpoints out of our own selection; if one could
        # score at or below the winner, sklearn decides (see `direct_lingam`'s module
        # docstring).
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
            u = _matvec(ops, P, b)
            d = G[r, c_idx, c_idx] - ops.sum(b * u, 1)
            flag = flag | (add & ~(xp.sqrt(xp.abs(d)) >= _DEGENERATE_PIVOT))
            v = xp.where(onehot, -1.0, u) * ops.astype(add, "float")[:, None]
            d = xp.where(add, d, 1.0)
            P = P + v[:, :, None] * (v / d[:, None])[:, None, :]
            active = active | onehot
            sign = xp.where(onehot, xp.sign(C_)[:, None], sign)
            # --- equiangular direction: G_AA ls = sign_A, normalised by AA
            ls = _matvec(ops, P, sign)
            AA = 1.0 / xp.sqrt(ops.sum(ls * sign, 1))
            flag = flag | (~stop & ~xp.isfinite(AA))
            ls = ls * AA[:, None]
            corr = ops.round(_matvec(ops, G, ls), _COV_PRECISION)
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
            cov[dq] = xp.where(didx, Xy[dq] - _matvec(ops, G[dq], coef[dq]), cov[dq])
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
