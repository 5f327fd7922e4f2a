"""The compiled pair scorer against LightGBM's own predict: bit-identical scores on
models with numerical and categorical splits, NaN and zero values, missing-value
handling, one-leaf trees and keyed features."""

import lightgbm as lgb
import numpy as np
import pytest

from esmr_assets.policy.learners.forest import Forest, PairLayout, PairScorer

N_USER, N_VIDEO, KEY_SIZES, N_PAIR = 4, 3, (3, 5), 1
LAYOUT = PairLayout(n_user=N_USER, n_video=N_VIDEO, keys=(0, 1), n_pair=N_PAIR)


def pair_world(rng: np.random.Generator, n_users: int = 60, n_videos: int = 40, c: int = 15):
    """Users, videos (columns 0 and 1 are the keys), candidates, keyed tables, extras."""
    users = rng.normal(size=(n_users, N_USER)).astype(np.float32)
    users[:, 0] = rng.integers(0, 4, n_users)  # a categorical user feature
    users[rng.random(users.shape) < 0.1] = 0.0
    users[:, 3][rng.random(n_users) < 0.2] = np.nan
    videos = rng.normal(size=(n_videos, N_VIDEO)).astype(np.float32)
    videos[:, 0] = rng.integers(0, KEY_SIZES[0], n_videos)
    videos[:, 1] = rng.integers(0, KEY_SIZES[1], n_videos)
    keyed = tuple(rng.random((n_users, k)).astype(np.float32) for k in KEY_SIZES)
    candidates = np.stack([rng.permutation(n_videos)[:c] for _ in range(n_users)])
    extras = rng.normal(size=(n_users, c, N_PAIR)).astype(np.float32)
    return users, videos, candidates, keyed, extras


def assembled(users, videos, candidates, keyed, extras) -> np.ndarray:
    """The rows LightGBM sees, in LAYOUT's order."""
    n, c = candidates.shape
    rows, v = np.repeat(np.arange(n), c), videos[candidates.ravel()]
    shares = [table[rows, v[:, key].astype(int)] for table, key in zip(keyed, LAYOUT.keys)]
    return np.column_stack([users[rows], v, *shares, extras.reshape(n * c, -1)])


def booster(rng: np.random.Generator, X: np.ndarray, **params) -> lgb.Booster:
    logit = np.nan_to_num(X[:, 1]) - X[:, 5] + 2 * X[:, 7] * X[:, 8] + (X[:, 4] == 1) + X[:, 9]
    y = (rng.random(len(X)) < 1 / (1 + np.exp(-logit))).astype(float)
    data = lgb.Dataset(X, y, categorical_feature=[0, 4], params={"verbose": -1})
    return lgb.train({"objective": "binary", "verbose": -1, "min_data_in_leaf": 5, "seed": 0, **params}, data, 25)


@pytest.mark.parametrize(
    "params",
    [
        {"num_leaves": 15},
        {"num_leaves": 64, "learning_rate": 0.3},
        {"num_leaves": 7, "zero_as_missing": True},
        {"num_leaves": 7, "use_missing": False},
        {"num_leaves": 31, "min_data_in_leaf": 100_000},  # no split possible: one-leaf trees
    ],
)
def test_pair_scores_are_lightgbm_bit_for_bit(params):
    rng = np.random.default_rng(0)
    world = pair_world(rng)
    X = assembled(*world)
    model = booster(rng, X, **params)
    scorer = PairScorer(Forest.from_model_text(model.model_to_string()), LAYOUT)
    n, c = world[2].shape
    assert np.array_equal(scorer.raw(*world), model.predict(X, raw_score=True).reshape(n, c))
    assert np.array_equal(scorer.probability(*world), model.predict(X).reshape(n, c))


def test_threads_do_not_change_the_scores():
    rng = np.random.default_rng(1)
    world = pair_world(rng, n_users=101)
    model = booster(rng, assembled(*world), num_leaves=15)
    forest = Forest.from_model_text(model.model_to_string())
    one, three = PairScorer(forest, LAYOUT, n_threads=1), PairScorer(forest, LAYOUT, n_threads=3)
    assert np.array_equal(one.raw(*world), three.raw(*world))


def test_unsupported_models_and_shapes_are_refused():
    rng = np.random.default_rng(2)
    world = pair_world(rng)
    X = assembled(*world)
    with pytest.raises(ValueError, match="up to 64 leaves"):
        PairScorer(Forest.from_model_text(booster(rng, X, num_leaves=80, min_data_in_leaf=1).model_to_string()), LAYOUT)
    multiclass = lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1},
                           lgb.Dataset(X, rng.integers(0, 3, len(X))), 2)
    with pytest.raises(ValueError, match="binary"):
        Forest.from_model_text(multiclass.model_to_string())
    model = booster(rng, X, num_leaves=7)
    with pytest.raises(ValueError, match="features"):
        PairScorer(Forest.from_model_text(model.model_to_string()), PairLayout(N_USER, N_VIDEO))
    scorer = PairScorer(Forest.from_model_text(model.model_to_string()), LAYOUT)
    users, videos, candidates, keyed, extras = world
    with pytest.raises(ValueError, match="do not fit"):
        scorer.raw(users[:-1], videos, candidates, keyed, extras)


def test_categories_are_truncated_as_lightgbm_truncates_them():
    """LightGBM casts a categorical value to int: -0.5 and 0.7 are category 0, -1 and 70
    (off the bitset) go right."""
    rng = np.random.default_rng(3)
    world = pair_world(rng)
    model = booster(rng, assembled(*world), num_leaves=15)
    users = world[0].copy()
    users[:, 0] = rng.choice([-0.5, 0.7, -1.0, -3.0, 70.0, 2.9], size=len(users))
    odd = (users, *world[1:])
    scorer = PairScorer(Forest.from_model_text(model.model_to_string()), LAYOUT)
    n, c = world[2].shape
    assert np.array_equal(scorer.raw(*odd), model.predict(assembled(*odd), raw_score=True).reshape(n, c))


def test_no_users_no_scores():
    rng = np.random.default_rng(4)
    users, videos, candidates, keyed, extras = pair_world(rng)
    model = booster(rng, assembled(users, videos, candidates, keyed, extras), num_leaves=7)
    scorer = PairScorer(Forest.from_model_text(model.model_to_string()), LAYOUT)
    empty = scorer.raw(users[:0], videos, candidates[:0], tuple(t[:0] for t in keyed), extras[:0])
    assert empty.shape == (0, candidates.shape[1])
