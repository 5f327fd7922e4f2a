"""The one partitioning scheme: simulation seeds.

Keys are plain decimal seeds ("0", "7", "42"; see `settings.parse_seed`). The set is dynamic
because researchers add seeds for confidence intervals over time, from the CLI or the UI,
without redeploying code.
"""

import dagster as dg

seed_partitions = dg.DynamicPartitionsDefinition(name="seed")
