"""The study report: per study, each scenario's paired effects with intervals across seeds,
as a table and a plot of effect against the knob. Partitioned by study (dynamic), since a
study is a set of cells, not one; `esmr study run` materializes it after the study's cells."""

import base64

import dagster as dg

from ..orchestration.metadata import markdown_table
from ..orchestration.parquet_io import numerics_metadata
from ..orchestration.partitions import study_partitions
from ..orchestration.resources import EsmrConfig, reads
from ..storage.files import PART_FILE, atomic_write_bytes, atomic_write_parquet
from ..studies.report import SOURCE, effects_plot, study_effects
from ..studies.spec import registered_study

GROUP = "studies"


@dg.asset(group_name=GROUP, partitions_def=study_partitions, deps=[dg.AssetKey(SOURCE)], kinds={"duckdb", "parquet"},
          metadata=reads())
def study_report(context: dg.AssetExecutionContext, esmr: EsmrConfig) -> dg.MaterializeResult:
    """Effects of the study's reported policies against the reference, per scenario, with
    95 % t intervals across seeds (from `policy_effects_across_seeds`), and their plot."""
    root = esmr.storage_root()
    study = registered_study(root, context.partition_key)
    effects = study_effects(root, study)
    folder = root / "study_report" / f"study={study.name}"
    atomic_write_parquet(folder / PART_FILE, effects)
    png = effects_plot(effects, study)
    atomic_write_bytes(folder / "effects.png", png)
    done = effects["scenario"].unique().len()
    context.log.info(f"study {study.name}: {done} of {len(study.scenarios)} scenarios have effects")
    return dg.MaterializeResult(metadata={
        "scenarios_with_effects": done,
        "effects": markdown_table(effects.drop("knob")),
        "effects_plot": dg.MetadataValue.md(f"![effects](data:image/png;base64,{base64.b64encode(png).decode()})"),
        "path": dg.MetadataValue.path(str(folder / PART_FILE)),
        **numerics_metadata(folder),
    })
