"""Independent, reproducible random streams.

Every draw of a partition comes from ``SeedSequence(seed, spawn_key=(stage, *keys))``, so a
stage's numbers depend only on the seed and on where they are used (stage, chunk, day), never
on what ran before. Day-level streams always draw arrays of a fixed shape, so two policies
that serve different feeds still see the same noise: common random numbers.
"""

from __future__ import annotations

import numpy as np

STAGES = {
    "videos": 1,
    "users": 2,
    "user_day": 3,  # the users' own daily noise (session lengths, skips, churn, affect)
    "logging_policy": 4,  # the randomness of Algorithm 1's feed selection
    "closed_loop": 5,  # the closed-loop environment's daily user noise (policy-independent)
    "policy": 6,  # policies' own randomness: exploration, random feeds
    "sampling": 7,  # seeded samples of users or days that bound model fits at large scale
    "evaluation": 8,  # the bootstrap resamples of the paired effects
}


def stream(seed: int, stage: str, *keys: int) -> np.random.Generator:
    """A generator for one stage of one partition, optionally keyed further (chunk, day)."""
    if stage not in STAGES:
        raise KeyError(f"unknown random stream {stage!r}; known: {sorted(STAGES)}")
    seq = np.random.SeedSequence(entropy=int(seed), spawn_key=(STAGES[stage], *map(int, keys)))
    return np.random.Generator(np.random.PCG64(seq))
