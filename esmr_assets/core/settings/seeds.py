"""Seeds: partition keys in ASCII digits, in the range every library accepts."""

from __future__ import annotations

import re

from .sections import MAX_SEED, SettingsError

_SEED = re.compile(r"0|[1-9][0-9]*")


def parse_seed(value: str | int) -> int:
    """A partition key must be a plain non-negative decimal integer ("0", "7", "42"), in ASCII
    digits only (`str.isdigit` would take "³" or "٣"), at most `MAX_SEED`."""
    text = str(value) if not isinstance(value, bool) else ""
    if not _SEED.fullmatch(text):
        raise SettingsError(f"seed must be a non-negative integer in ASCII digits without leading zeros, got {value!r}")
    seed = int(text)
    if seed > MAX_SEED:
        raise SettingsError(f"seed must be at most {MAX_SEED} (2**32 - 1: the random states scikit-learn and LightGBM "
                            f"accept), got {value!r}")
    return seed
