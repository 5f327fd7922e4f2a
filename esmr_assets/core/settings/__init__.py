"""Validated run settings with named presets.

One frozen pydantic object holds every size and model knob, so that a partition is fully
described by (preset, overrides, seed). Invalid values fail before anything is written, with
one line naming the offending field. The rooms: the sections and their limits (`sections`),
the whole object and its presets (`presets`), the type checks of overrides (`overrides`),
seeds (`seeds`) and what an asset may read (`view`).
"""

from .presets import (
    PRESETS,
    SPLIT_FIELDS,
    Settings,
    deep_merge,
    held_out_users,
    load_settings,
    load_settings_json,
    split_sizes,
)
from .sections import (
    MAX_DAYS,
    MAX_SEED,
    MAX_USER_DAYS,
    MAX_USERS,
    MIN_SPLIT_USERS,
    RANKER_SPLIT,
    STYLE_SIGNAL_CHOICES,
    STYLE_SIGNALS,
    CausalSettings,
    EmotionSettings,
    EvaluationSettings,
    PolicySettings,
    SettingsError,
    SimulationSettings,
)
from .seeds import parse_seed
from .view import SettingsView, UndeclaredSettingError, check_setting_paths

__all__ = [
    "MAX_DAYS", "MAX_SEED", "MAX_USERS", "MAX_USER_DAYS", "MIN_SPLIT_USERS", "PRESETS", "RANKER_SPLIT",
    "SPLIT_FIELDS", "STYLE_SIGNALS", "STYLE_SIGNAL_CHOICES", "CausalSettings", "EmotionSettings",
    "EvaluationSettings", "PolicySettings", "Settings", "SettingsError", "SettingsView", "SimulationSettings",
    "UndeclaredSettingError", "check_setting_paths", "deep_merge", "held_out_users", "load_settings",
    "load_settings_json", "parse_seed", "split_sizes",
]
