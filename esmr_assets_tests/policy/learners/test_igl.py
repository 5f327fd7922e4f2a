"""IGL-P (policy/igl.py): the decoding rules on hand-made numbers, the paper's §4.1
"normal and bizarro users" experiment rebuilt without any download, and the two-state
pathology that the third latent state removes (the paper's Table 1)."""

import numpy as np
import pytest

from esmr_assets.policy.learners.igl import (
    IGLLearner,
    InverseKinematics,
    decode_rewards,
    extreme_events,
)
from esmr_assets.policy.learners.linear_bandit import LinearBandit


def test_extreme_event_rule_is_k_times_posterior_above_two():
    p = np.array([0.1, 0.25, 0.2500001, 0.9])
    assert extreme_events(p, 8).tolist() == [False, False, True, True]
    assert extreme_events(np.array([0.5, 0.51]), 4).tolist() == [False, True]


def test_oracle_disambiguation_and_two_state_variant():
    extreme = np.array([False, True, True, False])
    negative = np.array([True, True, False, False])
    assert decode_rewards(extreme, None, 0.3).tolist() == [0, 1, 1, 0]  # two states: every extreme is +1
    assert decode_rewards(extreme, negative, 1.0).tolist() == [0, -1, 1, 0]
    three = decode_rewards(extreme, negative, 0.25)
    assert three.tolist() == [0, 1 - 2 / 0.25, 1, 0]
    # Unbiased: a latent r = -1 flagged with probability alpha decodes to -1 on average.
    alpha = 0.25
    assert alpha * (1 - 2 / alpha) + (1 - alpha) * 1 == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="alpha"):
        decode_rewards(extreme, negative, 0.0)


def test_learners_store_parameters_only_until_first_use():
    """scikit-learn's convention: state ending in `_` appears on first use, and the same
    random_state gives the same initial decoder whenever it is created."""
    bandit, ik = LinearBandit(3, 2), InverseKinematics(3, 4, 2, 2, random_state=5)
    assert not hasattr(bandit, "coef_") and not hasattr(ik, "signal_maps_")
    assert np.array_equal(bandit.estimates(np.ones((1, 2))), np.zeros((1, 3)))
    first = ik.predict_proba(np.ones((1, 2)), np.ones((1, 2)), [0])
    again = InverseKinematics(3, 4, 2, 2, random_state=5).predict_proba(np.ones((1, 2)), np.ones((1, 2)), [0])
    assert np.array_equal(first, again) and ik.n_updates_ == 0


def test_bandit_probabilities_are_a_distribution_and_learn_the_best_action():
    bandit = LinearBandit(n_actions=3, n_features=2, epsilon=0.3)
    x = np.tile([[1.0, 0.0], [0.0, 1.0]], (50, 1))
    actions = np.tile([0, 1, 2, 0, 1, 2], 100)[: len(x)]
    rewards = (actions == np.where(x[:, 0] == 1, 2, 1)).astype(float)
    bandit.learn(x, actions, rewards)
    p = bandit.probabilities(np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert np.allclose(p.sum(axis=1), 1) and p[0].argmax() == 2 and p[1].argmax() == 1
    assert p.max() == pytest.approx(0.7 + 0.1)
    drawn, prob = bandit.sample(np.repeat([[1.0, 0.0]], 4000, axis=0), np.random.default_rng(0))
    assert abs((drawn == 2).mean() - 0.8) < 0.03 and np.allclose(prob[drawn == 2], 0.8)


class BizarroWorld:
    """Supervised-to-bandit: contexts from K Gaussian classes, the action is a class guess,
    r = 1 when it is right. Users reveal only a word: half the words are "good"; normal
    users say a good word when r = 1 and a bad one when r = 0, bizarro users the opposite.
    The learner sees the user id (as c) and the features (as x), never r."""

    def __init__(self, seed: int, n_actions: int = 5, n_features: int = 6, n_users: int = 20, n_words: int = 10):
        rng = np.random.default_rng(seed)
        self.rng = rng
        self.K, self.n_users, self.n_words = n_actions, n_users, n_words
        self.means = rng.normal(0, 1.5, (n_actions, n_features))
        self.bizarro = np.arange(n_users) >= n_users // 2
        self.good = np.arange(n_words) < n_words // 2

    def contexts(self, n: int):
        label = self.rng.integers(self.K, size=n)
        x = np.column_stack([self.means[label] + self.rng.normal(size=(n, self.means.shape[1])), np.ones(n)])
        user = self.rng.integers(self.n_users, size=n)
        return np.eye(self.n_users)[user], x, user, label

    def feedback(self, user: np.ndarray, r: np.ndarray) -> np.ndarray:
        says_good = (r == 1) != self.bizarro[user]
        half = self.n_words // 2
        return np.where(says_good, 0, half) + self.rng.integers(half, size=len(r))


def test_igl_p2_learns_from_personal_words_of_normal_and_bizarro_users():
    world = BizarroWorld(seed=1)
    learner = IGLLearner(
        LinearBandit(world.K, 7, epsilon=0.2),
        InverseKinematics(world.K, world.n_words, world.n_users, 7, random_state=0),
        three_state=False,
    )
    decoded, truth = [], []
    for _ in range(200):
        c, x, user, label = world.contexts(250)
        actions, p = learner.act(x, world.rng)
        r = (actions == label).astype(int)
        r_hat = learner.learn(c, x, world.feedback(user, r), actions, p)
        decoded.append(r_hat), truth.append(r)
    c, x, user, label = world.contexts(5000)
    greedy = learner.bandit.estimates(x).argmax(axis=1)
    assert (greedy == label).mean() > 0.7  # chance: 1 / 5
    # The inverse-kinematics model reads each group's words the right way round: late in
    # training, r-hat agrees with the latent r for normal and bizarro users alike.
    late_hat, late_r = np.concatenate(decoded[-40:]), np.concatenate(truth[-40:])
    assert (late_hat == late_r).mean() > 0.85
    words = np.arange(world.n_words)
    for group in (False, True):
        members = np.flatnonzero(world.bizarro == group)
        # Play the right class for a context and ask which words make it an extreme event.
        c1, x1, _, label1 = world.contexts(len(members) * world.n_words * 4)
        u1 = np.repeat(members, world.n_words * 4)
        y1 = np.tile(np.repeat(words, 4), len(members))
        p = learner.inverse_kinematics.predict_proba(np.eye(world.n_users)[u1], x1, y1)[np.arange(len(y1)), label1]
        extreme_share = np.array([extreme_events(p[y1 == w], world.K).mean() for w in words])
        positive_words = world.good if not group else ~world.good
        assert extreme_share[positive_words].mean() > 0.7 and extreme_share[~positive_words].mean() < 0.1


class NegativeSignalWorld:
    """One context, K actions: action 0 pleases (r = +1 half the time), action 1 upsets
    (r = -1 half the time), the rest are indifferent. Pleased users mostly just watch;
    upset users comment (a loud signal) or, with probability alpha, say "not interested"."""

    WATCH, LIKE, COMMENT, NOT_INTERESTED = 0, 1, 2, 3

    def __init__(self, seed: int, alpha: float, n_actions: int = 5):
        self.rng = np.random.default_rng(seed)
        self.K, self.alpha = n_actions, alpha

    def latent(self, actions: np.ndarray) -> np.ndarray:
        hit = self.rng.random(len(actions)) < 0.5
        return np.where(hit & (actions == 0), 1, np.where(hit & (actions == 1), -1, 0))

    def feedback(self, r: np.ndarray) -> np.ndarray:
        u = self.rng.random(len(r))
        pleased = np.where(u < 0.3, self.LIKE, self.WATCH)
        upset = np.where(u < self.alpha, self.NOT_INTERESTED, self.COMMENT)
        return np.where(r == 1, pleased, np.where(r == -1, upset, self.WATCH))


@pytest.mark.parametrize("seed", [0, 1])
def test_three_states_avoid_what_two_states_are_drawn_to(seed):
    negatives = {}
    for three_state in (False, True):
        world = NegativeSignalWorld(seed, alpha=0.4)
        learner = IGLLearner(
            LinearBandit(world.K, 1, epsilon=0.1),
            InverseKinematics(world.K, 4, 1, 1, random_state=seed),
            three_state=three_state, alpha=0.4, negative_signal=world.NOT_INTERESTED,
        )
        late = []
        for step in range(150):
            x = np.ones((200, 1))
            actions, p = learner.act(x, world.rng)
            r = world.latent(actions)
            learner.learn(x, x, world.feedback(r), actions, p)
            if step >= 100:
                late.append(r)
        negatives[three_state] = (np.concatenate(late) == -1).mean()
    # Two-state IGL takes loud complaints for delight and serves the upsetting action;
    # the oracle's third state turns it away.
    assert negatives[False] > 0.3
    assert negatives[True] < 0.1
