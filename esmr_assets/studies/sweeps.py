"""Re-simulation sweeps over many seeds: which seeds come next, and the seed ranges the
CLI accepts. Plain Python; `definitions.py` wraps these in a schedule and a sensor."""

from __future__ import annotations

from collections.abc import Iterable

from ..core.settings import SettingsError, parse_seed


def next_unused_seeds(taken: Iterable[str | int], count: int) -> list[int]:
    """The `count` smallest non-negative seeds not in `taken` (seeds, or partition keys:
    those that are not plain seeds are ignored)."""
    if count < 1:
        raise ValueError(f"count must be positive, got {count}")
    used = set()
    for key in taken:
        try:
            used.add(parse_seed(key))
        except SettingsError:
            continue
    seeds, candidate = [], 0
    while len(seeds) < count:
        if candidate not in used:
            seeds.append(candidate)
        candidate += 1
    return seeds


def parse_seed_ranges(text: str, limit: int = 10_000) -> list[int]:
    """Seeds from "0-9", "3", "0-2,7,10-11" (inclusive ranges, comma separated), in order
    of first appearance; at most `limit` of them."""
    seeds: dict[int, None] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise SettingsError(f"empty item in seed list {text!r}")
        low, sep, high = part.partition("-")
        start = parse_seed(low.strip())
        end = parse_seed(high.strip()) if sep else start
        if end < start:
            raise SettingsError(f"seed range {part!r} runs backwards")
        if end - start + 1 + len(seeds) > limit:
            raise SettingsError(f"seed list {text!r} holds more than {limit} seeds")
        seeds.update(dict.fromkeys(range(start, end + 1)))
    return list(seeds)
