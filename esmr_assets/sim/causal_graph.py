"""The simulator's own causal graph over the 19 causal-discovery features (docs/design.md §5).

Edges are read off the structural equations in `day.py` and `affect.py`: an edge
cause -> effect exists when the effect's equation takes the cause (or a quantity computed
only from it) as a direct argument. `valence` stands for today's latent valence (its proxy
in observed data is the valence score of today's emotion label); arousal has no node, so
it acts as a hidden confounder of the behavioural features, as real moods would.
Sign: +1 or -1 where the dependence is monotone, 0 where it changes sign (e.g. scroll time
is highest for stressed and lowest for disappointed users, both negative states).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

CAUSAL_FEATURES = (
    # behaviour and content of day t
    "valence",
    "scroll_minutes",
    "watch_minutes",
    "logins",
    "likes",
    "comments",
    "shares",
    "skip_rate",
    "engagement",
    "engagement_trend",
    "scroll_watch_ratio",
    "mean_intensity",
    "intensity_change",
    "content_valence",
    "content_arousal",
    "negative_share",
    # emotional targets of day t+1
    "next_day_stressed",
    "valence_change",
    "next_day_happy",
)
TARGETS = ("next_day_stressed", "valence_change", "next_day_happy")


class Edge(NamedTuple):
    cause: str
    effect: str
    sign: int


TRUE_EDGES: tuple[Edge, ...] = (
    # today's mood drives today's behaviour (behaviour multipliers, affect.BEHAVIOUR)
    Edge("valence", "scroll_minutes", 0),
    Edge("valence", "watch_minutes", +1),
    Edge("valence", "logins", 0),
    Edge("valence", "likes", +1),
    Edge("valence", "comments", +1),
    Edge("valence", "shares", +1),
    Edge("valence", "skip_rate", -1),
    # interactions are counts per watched video; engagement is engagement-weighted watch time
    Edge("watch_minutes", "likes", +1),
    Edge("watch_minutes", "comments", +1),
    Edge("watch_minutes", "shares", +1),
    Edge("watch_minutes", "engagement", +1),
    Edge("skip_rate", "likes", -1),
    Edge("skip_rate", "comments", -1),
    Edge("skip_rate", "shares", -1),
    Edge("engagement", "engagement_trend", +1),
    Edge("scroll_minutes", "scroll_watch_ratio", +1),
    Edge("watch_minutes", "scroll_watch_ratio", -1),
    Edge("mean_intensity", "intensity_change", +1),
    # tomorrow's valence: v' = v + r(b - v) + s dose cv + c dE + noise
    Edge("valence", "valence_change", -1),
    Edge("content_valence", "valence_change", +1),
    Edge("watch_minutes", "valence_change", 0),
    Edge("engagement_trend", "valence_change", +1),
    # tomorrow's label is the region of (v + dv, a'); a' moves with content arousal
    Edge("valence", "next_day_happy", +1),
    Edge("valence_change", "next_day_happy", +1),
    Edge("content_arousal", "next_day_happy", -1),
    Edge("engagement_trend", "next_day_happy", +1),  # rising engagement also lowers churn
    Edge("valence", "next_day_stressed", -1),
    Edge("valence_change", "next_day_stressed", -1),
    Edge("content_arousal", "next_day_stressed", +1),
    Edge("engagement_trend", "next_day_stressed", 0),  # raises valence, but also keeps users from churning
)


def true_adjacency() -> np.ndarray:
    """(19, 19) matrix in lingam's convention: B[effect, cause] = sign (or 1 for sign 0)."""
    index = {name: i for i, name in enumerate(CAUSAL_FEATURES)}
    b = np.zeros((len(CAUSAL_FEATURES), len(CAUSAL_FEATURES)))
    for e in TRUE_EDGES:
        b[index[e.effect], index[e.cause]] = e.sign if e.sign else 1.0
    return b


def true_parents(target: str) -> dict[str, int]:
    """The direct causes of one feature with their signs."""
    if target not in CAUSAL_FEATURES:
        raise KeyError(f"{target!r} is not a causal feature; known: {CAUSAL_FEATURES}")
    return {e.cause: e.sign for e in TRUE_EDGES if e.effect == target}
