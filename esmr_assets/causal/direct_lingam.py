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
shim (`backend.ArrayOps`): the same code path, only the spelling of some calls differs.
The batched LassoLarsIC and OLS solvers live in `lars`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from ..core import portable
from .backend import ArrayOps, resolve_device
from .lars import lars_bic, masked_solve, prefix_regressions

__all__ = ["BatchedDirectLiNGAM"]

# lingam's maximum-entropy approximation constants (DirectLiNGAM._entropy)
_K1, _K2, _GAMMA = 79.047, 7.4129, 0.37457
_H0 = (1 + math.log(2 * math.pi)) / 2


# ----------------------------------------------------------------- causal order search
def _entropy_from_moments(a, b):
    """lingam's DirectLiNGAM._entropy given a = mean(log cosh u), b = mean(u exp(-u^2/2))."""
    return _H0 - _K1 * (a - _GAMMA) ** 2 - _K2 * b**2


def _entropy(ops: ArrayOps, u):
    """lingam's DirectLiNGAM._entropy along the last axis, written as lingam writes it."""
    a = ops.mean(ops.log(ops.cosh(u)), -1)
    b = ops.mean(u * ops.exp((-(u**2)) / 2), -1)
    return _entropy_from_moments(a, b)


def _pair_entropies(ops: ArrayOps, Zs, beta):
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
        T = ops.exp(R)
        E = np.reciprocal(T)
        T += E
        T *= 0.5  # cosh(u)
        a = ops.log(T.prod(-1)) / n
        if not np.isfinite(a).all():
            a = ops.log(ops.cosh(R)).mean(-1)
        np.multiply(R, R, out=T)
        T *= -0.5
        portable.exp(T, out=T)
        T *= R
        b = T.sum(-1) / n
        return _entropy_from_moments(a, b)
    R = Zs[:, :, None, :] - beta[..., None] * Zs[:, None, :, :]
    s2 = ops.sum(R * R, -1) / n - mR * mR
    u = R / xp.sqrt(s2)[..., None]
    e = ops.exp(u)
    a = ops.log(ops.prod((e + 1.0 / e) * 0.5, -1)) / n
    if not bool(xp.isfinite(a).all()):
        a = ops.mean(ops.log(ops.cosh(u)), -1)
    b = ops.mean(u * ops.exp(u * u * -0.5), -1)
    return _entropy_from_moments(a, b)


def _search_orders(ops: ArrayOps, XT, usable, precede, labels: Sequence[str]):
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
            cov = ops.matmul(Zsc, ops.swap_last(Zsc)) / n
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


# ------------------------------------------------------------------- connection strengths
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


def _estimate_adjacency(ops: ArrayOps, XT, X_np, order, n_usable, allowed, refit: bool, users_per_chunk: int):
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
    S = ops.matmul(Xs, ops.swap_last(Xs))  # (B, p, p)
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
        w, rss = prefix_regressions(ops, S)
    else:
        w = ops.zeros((B, m, m))
        for s in range(0, B, users_per_chunk):
            e = min(B, s + users_per_chunk)
            Sb = xp.broadcast_to(S[s:e, None, :m, :m], (e - s, m, m, m))
            w[s:e] = masked_solve(ops, Sb, S_py[s:e], mask[s:e])
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
        c, a = lars_bic(
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
        beta[s:e] = masked_solve(ops, Sb, S_py[s:e], support[s:e])
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
    device : {"cpu", "auto", "cuda", "torch-cpu"}
        "cpu" (the default) = numpy, the same bits on every machine; "auto" = CUDA through
        torch when a GPU is visible, else numpy; "torch-cpu" runs the torch code path on the
        CPU (used to test that path).
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
        device: str = "cpu",
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
        ops = ArrayOps(backend)
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

    def _fit_chunk(self, ops: ArrayOps, X_np, usable_np, precede_np, allowed_np, labels, budget: int):
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
