"""BatchedDirectLiNGAM against lingam.DirectLiNGAM (the reference it reproduces), on its
own (batch = users fitted alone, recovery, guard rails) and its LassoLarsIC replica
against sklearn's LARS path.

Achieved agreement with lingam: identical causal orders and identical parent sets on every
case; adjacency entries agree to ~1e-10 or better (asserted at ATOL below).
"""

from __future__ import annotations

import warnings

import lingam  # the reference implementation, from the test extra (make test installs it)
import numpy as np
import pytest

import esmr_assets.causal.direct_lingam as dl
from esmr_assets.causal.backend import ArrayOps
from esmr_assets.causal.direct_lingam import BatchedDirectLiNGAM
from esmr_assets.causal.lars import lars_bic

ATOL = 1e-8  # adjacency agreement with lingam (observed: <= ~1e-10)


def random_sem(rng, n, p, noise, density=0.35):
    """Linear non-Gaussian SEM on a random sparse DAG with a random column order.

    Returns X (n, p) and W with lingam's convention: W[i, j] != 0 means x_j -> x_i.
    """
    order = rng.permutation(p)
    W = np.zeros((p, p))
    for a in range(p):
        for b in range(a):
            if rng.random() < density:
                W[order[a], order[b]] = rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.5)
    if noise == "uniform":
        E = rng.uniform(-1, 1, (n, p))
    elif noise == "laplace":
        E = rng.laplace(size=(n, p))
    else:
        E = rng.exponential(size=(n, p)) - 1.0
    E *= rng.uniform(0.5, 2.0, p)
    X = E @ np.linalg.inv(np.eye(p) - W).T
    return X, W


def lingam_fit(X, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's ConvergenceWarning from LassoLarsIC
        return lingam.DirectLiNGAM(**kwargs).fit(X)


def assert_matches(est_order, est_adj, ref):
    assert list(est_order) == list(ref.causal_order_)
    assert np.array_equal(est_adj != 0, ref.adjacency_matrix_ != 0)
    np.testing.assert_allclose(est_adj, ref.adjacency_matrix_, rtol=0, atol=ATOL)


# (n, p, noise): p from 3 to 19, n from 30 to 500; lingam is slow, so few large p.
CASES = [
    (30, 3, "uniform"), (500, 3, "laplace"), (30, 4, "exp"), (100, 4, "uniform"),
    (30, 5, "laplace"), (200, 5, "exp"), (40, 6, "uniform"), (500, 6, "laplace"),
    (30, 7, "exp"), (80, 7, "uniform"), (30, 8, "laplace"), (150, 8, "exp"),
    (300, 8, "uniform"), (50, 9, "laplace"), (30, 10, "exp"), (60, 10, "uniform"),
    (30, 12, "laplace"), (100, 12, "exp"), (45, 14, "uniform"), (30, 15, "laplace"),
    (30, 19, "exp"), (30, 19, "uniform"), (100, 19, "laplace"),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_matches_lingam(case):
    n, p, noise = CASES[case]
    rng = np.random.default_rng(1000 + case)
    X, _ = random_sem(rng, n, p, noise, density=rng.uniform(0.15, 0.6))
    est = BatchedDirectLiNGAM(device="cpu").fit(X[None])
    assert_matches(est.causal_order_[0], est.adjacency_matrix_[0], lingam_fit(X))


def test_batch_equals_users_fitted_alone():
    rng = np.random.default_rng(1)
    X = np.stack([random_sem(rng, 30, 8, ["uniform", "laplace", "exp"][b % 3])[0] for b in range(7)])
    batch = BatchedDirectLiNGAM(device="cpu").fit(X)
    assert batch.causal_order_.shape == (7, 8) and batch.adjacency_matrix_.shape == (7, 8, 8)
    for b in range(7):
        alone = BatchedDirectLiNGAM(device="cpu").fit(X[b : b + 1])
        assert np.array_equal(batch.causal_order_[b], alone.causal_order_[0])
        np.testing.assert_allclose(batch.adjacency_matrix_[b], alone.adjacency_matrix_[0], atol=1e-12)
    # ...and lingam agrees on one of them (chunking must not mix users)
    assert_matches(batch.causal_order_[3], batch.adjacency_matrix_[3], lingam_fit(X[3]))


def test_ragged_rows_are_grouped():
    rng = np.random.default_rng(2)
    users = [random_sem(rng, n, 6, "laplace")[0] for n in (29, 30, 29, 30, 31)]
    est = BatchedDirectLiNGAM(device="cpu").fit(users)
    for b, Xb in enumerate(users):
        alone = BatchedDirectLiNGAM(device="cpu").fit(Xb[None])
        assert np.array_equal(est.causal_order_[b], alone.causal_order_[0])
        np.testing.assert_allclose(est.adjacency_matrix_[b], alone.adjacency_matrix_[0], atol=1e-12)


def test_recovers_true_order_with_many_rows():
    for seed in range(4):
        rng = np.random.default_rng(100 + seed)
        X, W = random_sem(rng, 1000, 8, ["uniform", "laplace", "exp"][seed % 3], density=0.4)
        est = BatchedDirectLiNGAM(device="cpu").fit(X[None])
        pos = np.argsort(est.causal_order_[0])
        effects, causes = np.nonzero(W)
        assert len(effects) > 0
        assert (pos[causes] < pos[effects]).all(), f"seed {seed}: a true edge points backwards"
        assert (est.adjacency_matrix_[0][W != 0] != 0).all()  # every true edge is found
        np.testing.assert_allclose(est.adjacency_matrix_[0][W != 0], W[W != 0], atol=0.25)


def test_constant_column_dropped_and_rest_unaffected():
    rng = np.random.default_rng(3)
    X0, _ = random_sem(rng, 50, 6, "uniform")
    X1, _ = random_sem(rng, 50, 6, "laplace")
    with_const = np.insert(X0, 2, 3.7, axis=1)  # column 2 constant
    X1n = np.insert(X1, 6, 1e6 + 1e-9 * rng.standard_normal(50), axis=1)  # near-constant
    est = BatchedDirectLiNGAM(device="cpu").fit(np.stack([with_const, X1n]))
    assert est.dropped_columns_ == [[2], [6]]
    assert est.causal_order_[0][-1] == 2 and est.causal_order_[1][-1] == 6
    assert not est.adjacency_matrix_[0][2].any() and not est.adjacency_matrix_[0][:, 2].any()
    assert not est.adjacency_matrix_[1][6].any() and not est.adjacency_matrix_[1][:, 6].any()
    # the rest is lingam's DAG on the data without that column
    ref = lingam_fit(X0)
    keep = [0, 1, 3, 4, 5, 6]
    assert [keep[c] for c in ref.causal_order_] == list(est.causal_order_[0][:-1])
    np.testing.assert_allclose(est.adjacency_matrix_[0][np.ix_(keep, keep)], ref.adjacency_matrix_, atol=ATOL)
    ref1 = lingam_fit(X1)
    assert list(ref1.causal_order_) == list(est.causal_order_[1][:-1])
    np.testing.assert_allclose(est.adjacency_matrix_[1][:6, :6], ref1.adjacency_matrix_, atol=ATOL)


def test_too_few_rows_names_the_user():
    rng = np.random.default_rng(4)
    users = [random_sem(rng, 30, 5, "laplace")[0], rng.laplace(size=(5, 5)), random_sem(rng, 30, 5, "exp")[0]]
    with pytest.raises(ValueError, match=r"user u-short: .*\(5, 5\)"):
        BatchedDirectLiNGAM(device="cpu").fit(users, user_ids=["u-ok", "u-short", "u-ok2"])
    with pytest.raises(ValueError, match=r"user 0: .*\(6, 6\)"):
        BatchedDirectLiNGAM(device="cpu").fit(rng.laplace(size=(2, 6, 6)))
    # the check counts usable columns: with one constant column, 6 rows x 5 usable fits
    X = rng.laplace(size=(1, 6, 6))
    X[0, :, 4] = 1.0
    est = BatchedDirectLiNGAM(device="cpu").fit(X)
    assert est.dropped_columns_ == [[4]]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_names_the_user(bad):
    rng = np.random.default_rng(5)
    X = np.stack([random_sem(rng, 30, 5, "laplace")[0] for _ in range(3)])
    X[2, 7, 3] = bad
    with pytest.raises(ValueError, match=r"user 2: .*NaN or inf .*\[3\]"):
        BatchedDirectLiNGAM(device="cpu").fit(X)
    with pytest.raises(ValueError, match="user carol"):
        BatchedDirectLiNGAM(device="cpu").fit(X, user_ids=["alice", "bob", "carol"])


def test_order_prior_is_respected_and_matches_lingam_prior_knowledge():
    rng = np.random.default_rng(6)
    p = 7
    X = np.stack([random_sem(rng, 60, p, "laplace", density=0.4)[0] for _ in range(4)])
    prior = [5, 0, 3, 1]  # x5 before x0 before x3 before x1
    est = BatchedDirectLiNGAM(device="cpu").fit(X, order_prior=prior)
    for b in range(4):
        pos = np.argsort(est.causal_order_[b])
        assert (np.diff(pos[prior]) > 0).all()
        # lingam's strong prior knowledge: pk[to, from] = 1 (path from -> to)
        pk = -np.ones((p, p))
        for a, f in enumerate(prior):
            pk[prior[a + 1 :], f] = 1
        assert_matches(est.causal_order_[b], est.adjacency_matrix_[b], lingam_fit(X[b], prior_knowledge=pk))
    # a full order pins the causal order
    full = list(rng.permutation(p))
    pinned = BatchedDirectLiNGAM(device="cpu").fit(X, order_prior=full)
    assert (pinned.causal_order_ == np.array(full)).all()
    # (one candidate per step, so no entropies are computed: the adjacency still matches lingam's)
    pk_full = -np.ones((p, p))
    for a, f in enumerate(full):
        pk_full[full[a + 1 :], f] = 1
    for b in range(4):
        assert_matches(pinned.causal_order_[b], pinned.adjacency_matrix_[b], lingam_fit(X[b], prior_knowledge=pk_full))
    # cyclic constraints are refused, naming the user
    cyc = np.zeros((p, p), dtype=bool)
    cyc[0, 1] = cyc[1, 2] = cyc[2, 0] = True
    with pytest.raises(ValueError, match="user 0: .*cyclic"):
        BatchedDirectLiNGAM(device="cpu").fit(X, order_prior=cyc)


def test_prior_knowledge_matches_lingam():
    rng = np.random.default_rng(7)
    p = 6
    X, _ = random_sem(rng, 80, p, "uniform", density=0.5)
    pk = -np.ones((p, p))
    pk[3, 1] = 1  # x1 has a path to x3
    pk[0, 4] = 0  # x4 has no path to x0
    pk[2, 5] = 0
    est = BatchedDirectLiNGAM(prior_knowledge=pk, device="cpu").fit(X[None])
    assert_matches(est.causal_order_[0], est.adjacency_matrix_[0], lingam_fit(X, prior_knowledge=pk))
    assert est.adjacency_matrix_[0][0, 4] == 0 and est.adjacency_matrix_[0][2, 5] == 0


def test_torch_path_equals_numpy():
    pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    X = np.stack([random_sem(rng, 30, 10, ["uniform", "laplace", "exp"][b % 3])[0] for b in range(6)])
    X[4, :, 7] = -2.0  # a dropped column on one user
    a = BatchedDirectLiNGAM(device="cpu").fit(X, order_prior=[9, 2])
    b = BatchedDirectLiNGAM(device="torch-cpu").fit(X, order_prior=[9, 2])
    assert b.backend_ == "torch-cpu" and a.backend_ == "numpy"
    assert np.array_equal(a.causal_order_, b.causal_order_)
    np.testing.assert_allclose(a.adjacency_matrix_, b.adjacency_matrix_, atol=1e-10)
    assert a.dropped_columns_ == b.dropped_columns_ == [[], [], [], [], [7], []]


def _adaptive_lasso_problems(rng, count, n, m, rho_range):
    """Correlated designs as predict_adaptive_lasso builds them (X_std * |OLS coef|)."""
    out = []
    for _ in range(count):
        rho = rng.uniform(*rho_range)
        Z = rng.standard_normal((n, m))
        Z = Z + rho * np.cumsum(Z, axis=1) / np.sqrt(np.arange(1, m + 1))
        beta = rng.standard_normal(m) * (rng.random(m) < 0.5)
        y = Z @ beta + rng.laplace(size=n) * rng.uniform(0.3, 3)
        Xf = np.column_stack([Z, y])
        Xs = (Xf - Xf.mean(0)) / Xf.std(0)
        Xs = Xs - Xs.mean(0)
        S = Xs.T @ Xs
        w = np.linalg.solve(S[:m, :m], S[:m, m])
        out.append((Xs[:, :m] * np.abs(w), Xs[:, m], S, w))
    return out


def test_lars_path_matches_sklearn_breakpoint_by_breakpoint():
    from sklearn.linear_model import LassoLarsIC, lars_path

    rng = np.random.default_rng(9)
    n, m = 30, 18
    probs = _adaptive_lasso_problems(rng, 250, n, m, (0.6, 0.99))
    G = np.stack([np.abs(w)[:, None] * S[:m, :m] * np.abs(w)[None] for _, _, S, w in probs])
    Xy = np.stack([np.abs(w) * S[:m, m] for _, _, S, w in probs])
    yy = np.array([S[m, m] for _, _, S, _ in probs])
    sigma2 = np.array([(S[m, m] - w @ S[:m, m]) / (n - m - 1) for _, _, S, w in probs])
    trace = []
    ops = ArrayOps("numpy")
    coef, amb = lars_bic(ops, G, Xy, yy, sigma2, np.ones((len(probs), m), bool), n, trace=trace)
    paths = [([], []) for _ in probs]
    for ids, alpha, c in trace:
        for k, q in enumerate(ids):
            paths[q][0].append(alpha[k])
            paths[q][1].append(c[k])
    n_drops = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for q, (Xw, y, _, _) in enumerate(probs):
            alphas, _, coefs = lars_path(Xw, y, Gram="auto", method="lasso")
            n_drops += coefs.shape[1] > m + 1
            assert len(paths[q][0]) == len(alphas), f"problem {q}: path length differs"
            np.testing.assert_allclose(paths[q][0], alphas, rtol=1e-9, atol=1e-14)
            np.testing.assert_allclose(np.array(paths[q][1]).T, coefs, rtol=1e-7, atol=1e-9)
            if not amb[q]:
                reg = LassoLarsIC(criterion="bic").fit(Xw, y)
                assert np.array_equal(coef[q] != 0, reg.coef_ != 0)
    assert n_drops > 0  # the sample exercises variables leaving the path


def test_reference_refit_path_agrees(monkeypatch):
    """Force every regression through the sklearn re-solve used for ambiguous cases."""
    real = dl.lars_bic  # the name the estimator looks up

    def all_ambiguous(*args, **kwargs):
        coef, amb = real(*args, **kwargs)
        return coef, amb | True

    monkeypatch.setattr(dl, "lars_bic", all_ambiguous)
    rng = np.random.default_rng(10)
    X, _ = random_sem(rng, 40, 7, "exp", density=0.5)
    est = BatchedDirectLiNGAM(device="cpu").fit(X[None])
    assert est.n_reference_refits_ == 6
    assert_matches(est.causal_order_[0], est.adjacency_matrix_[0], lingam_fit(X))


def test_estimator_api():
    rng = np.random.default_rng(11)
    X = np.stack([random_sem(rng, 30, 4, "laplace")[0] for _ in range(2)])
    est = BatchedDirectLiNGAM(device="cpu")
    assert est.fit(X) is est
    assert est.causal_order_.dtype == np.int64
    assert sorted(est.causal_order_[0]) == [0, 1, 2, 3]
    assert est.get_params()["device"] == "cpu"
    assert est.user_ids_ == [0, 1] and est.dropped_columns_ == [[], []]
    with pytest.raises(ValueError, match="device"):
        BatchedDirectLiNGAM(device="tpu").fit(X)
