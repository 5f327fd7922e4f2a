"""Hybrid LightGBM / RL switching rule (paper §3.3.2; docs/design.md §6).

RL is active on day t+1 when the user's predicted labels show three or more
CONSECUTIVE negative-or-neutral days (stressed, disappointed, neutral) ending on day t.
It is off again from the day after a positive (happy / excited) day, which resets the
streak to 0.

Decisions:

* ``churned`` days neither extend nor break the streak (the user was not there; there
  is no evidence about their affect).  A streak that spans churn days keeps counting
  from where it stood when the user returns.
* Day 0 has no history, so it is never active; days 1 and 2 cannot be active either
  (at most 2 observed days before them).
* ``streak`` is the count of consecutive negative-or-neutral observed days, so it can also
  serve as the "negative streak" component of the Q-learning state.
"""

from __future__ import annotations

import numpy as np

from ...core.vocabulary import NEGATIVE, POSITIVE, check_labels

RL_STREAK_THRESHOLD = 3
STREAK_LABELS = (*NEGATIVE, "neutral")  # extend the streak
RESET_LABELS = POSITIVE  # break the streak
# "churned" neither extends nor breaks it.


def update_streak(streak, label):
    """Streak after observing ``label`` (scalar or arrays of equal shape)."""
    lab = check_labels(label)
    s = np.asarray(streak, dtype=np.int64)
    out = np.where(np.isin(lab, STREAK_LABELS), s + 1, np.where(np.isin(lab, RESET_LABELS), 0, s))
    return out if out.ndim else int(out)


def is_active(streak):
    """Whether RL runs on the next day given the streak after today's label."""
    out = np.asarray(streak) >= RL_STREAK_THRESHOLD
    return out if out.ndim else bool(out)


def streaks(labels) -> np.ndarray:
    """(n_users, n_days) streak after each day's label."""
    lab = check_labels(labels)
    if lab.ndim != 2:
        raise ValueError("labels must be (n_users, n_days)")
    out = np.zeros(lab.shape, dtype=np.int64)
    s = np.zeros(lab.shape[0], dtype=np.int64)
    for t in range(lab.shape[1]):
        s = update_streak(s, lab[:, t])
        out[:, t] = s
    return out


def rl_active(labels) -> np.ndarray:
    """(n_users, n_days) bool: RL active on day t (decided from labels of days < t)."""
    st = streaks(labels)
    active = np.zeros(st.shape, dtype=bool)
    active[:, 1:] = is_active(st[:, :-1])
    return active
