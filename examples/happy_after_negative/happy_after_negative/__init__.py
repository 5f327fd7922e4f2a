"""Registers `happy_after_negative` with the ESMR testbed on import."""

from esmr_assets.policy.loop.registry import PolicySpec, register

register(PolicySpec(
    "happy_after_negative", "happy_after_negative.policy:HappyAfterNegativeDay", 1001,
    "the happy bucket leads the feed on the day after a predicted negative day (an example plugin)",
))
