import numpy as np
import pytest

from esmr_assets.core.vocabulary import TRUE_EMOTIONS
from esmr_assets.policy.learners.qlearning import N_STATES, QLearningAgent, encode_state

# Chain MDP: states 0,1,2 (3 = absorbing, never acted in).
# action 0 "grab": reward 1, episode ends. action 1 "go": reward 0, move right; from state 2
# "go" yields 10 and ends. Greedy one-step choice is "grab"; optimal is "go" everywhere.
GAMMA = 0.95


def chain_step(states, actions, rng):
    states = np.asarray(states)
    actions = np.asarray(actions)
    grab = actions == 0
    at_end = states == 2
    rewards = np.where(grab, 1.0, np.where(at_end, 10.0, 0.0))
    done = grab | at_end
    next_states = np.where(done, 3, states + 1)
    return rewards, next_states, done


def value_iteration(n_iter=500):
    q = np.zeros((4, 2))
    for _ in range(n_iter):
        new = np.zeros_like(q)
        for s in range(3):
            for a in range(2):
                r, s2, d = chain_step(np.array([s]), np.array([a]), None)
                new[s, a] = r[0] + (0 if d[0] else GAMMA * q[s2[0]].max())
        q = new
    return q


def trained_agent(seed=0):
    agent = QLearningAgent(4, 2, learning_rate=0.1, discount=GAMMA, replay_size=10_000, replay_batch=64,
                           random_state=seed)
    init = np.tile(np.arange(3), 30)
    return agent.train(chain_step, init, n_epochs=10, horizon=5)


def test_value_iteration_reference_is_as_expected():
    q = value_iteration()
    np.testing.assert_allclose(q[:3], [[1, GAMMA**2 * 10], [1, GAMMA * 10], [1, 10]])


def test_learns_delayed_reward_policy_and_bellman_fixed_point():
    agent = trained_agent()
    q_star = value_iteration()
    assert agent.greedy(np.arange(3)).tolist() == [1, 1, 1]
    np.testing.assert_allclose(agent.q_[:3], q_star[:3], atol=0.05)
    assert agent.visits_[:3].min() > 0
    assert len(agent.epoch_rewards_) == 10


def test_untrained_greedy_one_step_would_be_wrong():
    # after a single immediate-reward-only sweep grab looks better at state 0
    agent = QLearningAgent(4, 2, random_state=0)
    agent.update([0, 0], [0, 1], [1.0, 0.0], [3, 1], [True, False])
    assert agent.greedy([0])[0] == 0


def test_deterministic_for_fixed_random_state():
    a, b, c = trained_agent(3), trained_agent(3), trained_agent(4)
    np.testing.assert_array_equal(a.q_, b.q_)
    np.testing.assert_array_equal(a.visits_, b.visits_)
    assert a.epoch_rewards_ == b.epoch_rewards_
    assert not np.array_equal(a.visits_, c.visits_)


def sequential(agent, s, a, r, s2, d):
    q0 = agent.q_.copy()
    for i in range(len(s)):
        y = r[i] + (0 if d[i] else agent.discount * q0[s2[i]].max())
        agent.q_[s[i], a[i]] += agent.learning_rate * (y - agent.q_[s[i], a[i]])


def test_duplicate_pairs_equal_sequential_updates():
    rng = np.random.default_rng(1)
    n = 200
    s = rng.integers(0, 5, n)
    a = rng.integers(0, 3, n)
    r = rng.normal(size=n)
    s2 = rng.integers(5, 8, n)  # next-state rows are never modified by this batch
    d = rng.random(n) < 0.3
    q_init = rng.normal(size=(8, 3))
    batch = QLearningAgent(8, 3, learning_rate=0.3).initialize()
    batch.q_[:] = q_init
    batch.update(s, a, r, s2, d)
    loop = QLearningAgent(8, 3, learning_rate=0.3).initialize()
    loop.q_[:] = q_init
    sequential(loop, s, a, r, s2, d)
    np.testing.assert_allclose(batch.q_, loop.q_, rtol=0, atol=1e-12)
    assert batch.visits_.sum() == n
    np.testing.assert_array_equal(batch.visits_, np.bincount(s * 3 + a, minlength=24).reshape(8, 3))


def test_duplicate_terminal_updates_closed_form():
    agent = QLearningAgent(2, 2, learning_rate=0.5)
    agent.update([0, 0, 0], [1, 1, 1], [4.0, 0.0, 8.0], [1, 1, 1], True)
    # 0 -> 2 -> 1 -> 4.5
    assert agent.q_[0, 1] == pytest.approx(4.5)
    assert agent.q_.sum() == pytest.approx(4.5)


def test_temperature_decays_to_floor():
    agent = QLearningAgent(2, 2, temperature=1.0, temperature_decay=0.7, min_temperature=0.05)
    for _ in range(20):
        agent.end_epoch(0.0)
    np.testing.assert_allclose(agent.temperatures_[:3], [1.0, 0.7, 0.49])
    assert agent.temperature_ == 0.05
    assert min(agent.temperatures_) >= 0.05


def test_boltzmann_act_matches_probabilities_and_greedy_at_low_temperature():
    agent = QLearningAgent(1, 3, temperature=1.0).initialize()
    agent.q_[0] = [0.0, 1.0, 2.0]
    acts = agent.act(np.zeros(60_000, dtype=int), np.random.default_rng(0))
    freq = np.bincount(acts, minlength=3) / acts.size
    expected = np.exp([0, 1, 2]) / np.exp([0, 1, 2]).sum()
    np.testing.assert_allclose(freq, expected, atol=0.01)
    np.testing.assert_allclose(agent.action_probabilities([0])[0], expected)
    agent.temperature_ = 0.01
    assert (agent.act(np.zeros(1000, dtype=int), np.random.default_rng(1)) == 2).all()


def test_replay_buffer_wraps_at_capacity():
    agent = QLearningAgent(100, 2, replay_size=5, replay_batch=3)
    agent.remember(np.arange(3), np.zeros(3), np.arange(3.0), np.arange(3), False)
    assert agent.buffer_len_ == 3
    agent.remember(np.arange(3, 7), np.zeros(4), np.arange(3.0, 7.0), np.arange(3, 7), False)
    assert agent.buffer_len_ == 5
    assert agent.replay_buffer()["states"].tolist() == [2, 3, 4, 5, 6]
    agent.remember(np.arange(10, 22), np.ones(12), np.zeros(12), np.arange(12), True)
    buf = agent.replay_buffer()
    assert buf["states"].tolist() == [17, 18, 19, 20, 21]
    assert buf["done"].all() and (buf["actions"] == 1).all()
    assert agent.replay(np.random.default_rng(0)) == 3
    assert agent.visits_.sum() == 0  # replayed updates are not visits
    changed = np.flatnonzero(agent.q_[:, 1] != 0)  # targets: reward 0, terminal -> Q stays 0
    assert changed.size == 0
    agent.remember(np.array([40]), np.array([0]), np.array([1.0]), np.array([41]), True)
    assert agent.replay(np.random.default_rng(0), batch=50) == 50
    assert agent.q_[40, 0] > 0 and agent.visits_.sum() == 0


def test_replay_on_empty_buffer_is_noop():
    agent = QLearningAgent(3, 2)
    assert agent.replay(np.random.default_rng(0)) == 0
    assert agent.visits_.sum() == 0


def test_encode_state_bijective_and_buckets():
    labels, streaks, trends = [], [], []
    for lab in TRUE_EMOTIONS:
        for st in (0, 1, 2, 3):
            for tr in (-0.5, 0.0, 0.5):
                labels.append(lab), streaks.append(st), trends.append(tr)
    codes = encode_state(np.array(labels), np.array(streaks), np.array(trends))
    assert N_STATES == 72
    assert sorted(codes.tolist()) == list(range(72))
    assert encode_state("happy", 0, 0.0) == 1
    assert encode_state("churned", 9, 0.9) == 71
    assert encode_state("neutral", 7, 0.2) == encode_state("neutral", 3, -0.2) == encode_state("neutral", 3, 0.0)
    assert encode_state("neutral", 3, -0.21) != encode_state("neutral", 3, 0.21)
    with pytest.raises(ValueError):
        encode_state("angry", 0, 0.0)


def test_init_stores_parameters_only_and_first_use_validates():
    """scikit-learn's convention: no state before use, and bad parameters fail when the
    agent is first used, naming the problem."""
    agent = QLearningAgent(4, 2, learning_rate=0.5)
    assert not hasattr(agent, "q_") and agent.get_params()["learning_rate"] == 0.5
    agent.act([0, 1], np.random.default_rng(0))
    assert agent.q_.shape == (4, 2) and agent.buffer_len_ == 0
    with pytest.raises(ValueError, match="learning_rate"):
        QLearningAgent(4, 2, learning_rate=0.0).act([0], np.random.default_rng(0))
    with pytest.raises(ValueError, match="replay_size"):
        QLearningAgent(4, 2, replay_size=0).initialize()


def test_decaying_step_is_one_over_visits_to_the_omega():
    """learning_rate_decay=omega: the n-th experienced visit of a pair steps 1/n^omega; a
    replayed update uses the visits so far without counting itself. With omega = 1 and
    terminal targets, Q is the running mean of the targets."""
    agent = QLearningAgent(2, 2, learning_rate_decay=1.0)
    targets = [4.0, 0.0, 8.0, 2.0]
    agent.update([0, 0, 0], [1, 1, 1], targets[:3], [1, 1, 1], True)
    assert agent.q_[0, 1] == pytest.approx(4.0) and agent.visits_[0, 1] == 3
    agent.update([0], [1], [targets[3]], [1], True)
    assert agent.q_[0, 1] == pytest.approx(np.mean(targets)) and agent.visits_[0, 1] == 4
    agent.update([0], [1], [7.5], [1], True, count_visits=False)  # replayed: step 1/4, visits stay
    assert agent.q_[0, 1] == pytest.approx(3.5 + (7.5 - 3.5) / 4) and agent.visits_[0, 1] == 4

    half = QLearningAgent(2, 2, learning_rate_decay=0.6)
    half.update([1, 1], [0, 0], [1.0, 0.0], [0, 0], True)
    step = 2 ** -0.6  # the second visit's step; the first one's is 1
    assert half.q_[1, 0] == pytest.approx((1 - step) * 1.0 + step * 0.0)


def test_decaying_step_learns_the_chain_and_validates_omega():
    agent = QLearningAgent(4, 2, discount=GAMMA, replay_batch=64, learning_rate_decay=0.8, random_state=0)
    agent.train(chain_step, np.tile(np.arange(3), 30), n_epochs=10, horizon=5)
    assert agent.greedy(np.arange(3)).tolist() == [1, 1, 1]
    np.testing.assert_allclose(agent.q_[:3], value_iteration()[:3], atol=0.5)
    assert QLearningAgent(4, 2, learning_rate_decay=0.8).get_params()["learning_rate_decay"] == 0.8
    with pytest.raises(ValueError, match="learning_rate_decay"):
        QLearningAgent(4, 2, learning_rate_decay=0.4).initialize()
