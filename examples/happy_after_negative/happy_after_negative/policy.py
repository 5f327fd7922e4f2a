"""The policy: what it needs from the testbed is the trained artifacts (`from_artifacts`) and
the day's observable state (`act`: the environment's observation, the tracker of the days
so far). It never sees the simulator's latent state."""

import numpy as np

from esmr_assets.core.vocabulary import NEGATIVE
from esmr_assets.policy.loop.feeds import ACTIONS
from esmr_assets.policy.loop.policies import serve_buckets


class HappyAfterNegativeDay:
    def __init__(self, feeds) -> None:
        self.feeds = feeds

    @classmethod
    def from_artifacts(cls, artifacts, spec):
        return cls(artifacts.feeds)

    def act(self, env, tracker):
        """(feeds, valid, the bucket per user: -1 for the ranker's feed)."""
        after_negative = np.isin(tracker.label, NEGATIVE) & (env.day > 0)
        return serve_buckets(self.feeds, env, np.where(after_negative, ACTIONS.index("happy"), -1))
