"""The partitioning schemes: cells (scenario × seed, both dimensions dynamic) for every cell
asset, and studies (dynamic) for the study reports.

Seed keys are plain decimal seeds ("0", "7", "42"; see `settings.parse_seed`); scenario keys
are scenario names (`cells.SCENARIO_NAME`), `baseline` being the preset without overrides.
Both sets grow without redeploying code: researchers add seeds for tighter intervals and
scenarios for studies, from the CLI, a study schedule or the UI. A cell's key is
"<scenario>|<seed>" (`cells.Cell.key`).
"""

from collections.abc import Iterable

import dagster as dg

from ..storage.cells import Cell

scenario_partitions = dg.DynamicPartitionsDefinition(name="scenario")
seed_partitions = dg.DynamicPartitionsDefinition(name="seed")
cell_partitions = dg.MultiPartitionsDefinition({"scenario": scenario_partitions, "seed": seed_partitions})
#: a study is a set of cells, not one: its report is partitioned by study name
study_partitions = dg.DynamicPartitionsDefinition(name="study")


def cell_key(cell: Cell) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"scenario": cell.scenario, "seed": str(cell.seed)})


def register_cells(instance: dg.DagsterInstance, cells: Iterable[Cell]) -> None:
    """Add the cells' scenarios and seeds as partitions (idempotent), so runs and the UI can
    address them."""
    cells = list(cells)
    instance.add_dynamic_partitions(scenario_partitions.name, sorted({cell.scenario for cell in cells}))
    instance.add_dynamic_partitions(seed_partitions.name, [str(s) for s in sorted({cell.seed for cell in cells})])
