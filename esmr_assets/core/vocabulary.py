"""The ground floor: the names every stage shares, and nothing else.

Label sets, categories, themes, video emotions, feedback signals and profiles are
the vocabulary of the simulator, the models and the tables alike. Keeping them here, in a
module that imports nothing from the project, lets the simulator, the emotion, causal and
policy stages and the data contracts agree on them without importing one another.
"""

from __future__ import annotations

import numpy as np

# --- emotions of users (the paper's Table 1, with `neutral` as the sixth class: the hybrid
# policy switches on "negative or neutral" days, so neutral must be a class of its own).
TRUE_EMOTIONS = ("happy", "excited", "neutral", "stressed", "disappointed", "churned")
NEGATIVE = ("stressed", "disappointed")
POSITIVE = ("happy", "excited")
#: the previous-day label of a user's first day, when there is none
NO_LABEL = "none"
PREVIOUS_LABELS = (NO_LABEL, *TRUE_EMOTIONS)
#: valence of each active emotion on the circumplex (the same scale as the video emotions)
VALENCE_SCORE = {"happy": 0.8, "excited": 0.7, "neutral": 0.0, "stressed": -0.7, "disappointed": -0.6}


def check_labels(labels) -> np.ndarray:
    """`labels` as a str array, or ValueError naming the labels not in TRUE_EMOTIONS."""
    labels = np.asarray(labels).astype(str)
    bad = ~np.isin(labels, TRUE_EMOTIONS)
    if bad.any():
        raise ValueError(f"unknown emotion labels: {sorted(set(labels[bad].tolist()))}")
    return labels


# --- content
CATEGORIES = ("educational", "entertainment", "news", "inspirational")
THEMES = ("mental_health", "politics", "motivation", "relationships")
#: the emotion a video conveys; also the agents' and bandits' action buckets
EMOTIONS = ("happy", "neutral", "excited", "anxious", "angry", "disappointed", "lonely", "stressed")
#: a user-day's dominant category or video emotion, "none" on a day without watching
CATEGORY_LABELS = (NO_LABEL, *CATEGORIES)
EMOTION_LABELS = (NO_LABEL, *EMOTIONS)

# --- users
PROFILES = ("casual", "engaged", "highly_active")
#: communication styles, in the order of the style table (settings.STYLE_SIGNALS); the default
#: population has the first three, `outraged` joins only when given a share
STYLES = ("expressive", "critical", "passive", "outraged")
DEFAULT_STYLES = STYLES[:3]
#: the emotion estimate the platform runs in the loop (`policy.emotion_source`)
EMOTION_SOURCES = ("tabtransformer", "lightgbm", "logistic_regression", "truth_trained", "oracle")
#: the one feedback signal of an impression (IGL-P): what a learner may see
SIGNALS = ("skip", "watch", "like", "comment", "share", "not_interested")

#: When R_emo and R_cause score an action (`policy.reward_timing`): the change into the day it
#: was served (the paper's), or from that day into the next, which the served feed can cause.
REWARD_TIMINGS = ("same_day", "next_day")
#: Eq. 8's terms, by name: R_eng, R_emo and R_cause (what a learner on the environment is rewarded with)
REWARD_TERMS = ("engagement", "emotion", "cause")
