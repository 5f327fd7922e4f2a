"""The one Definitions object: every asset, job and resource of the project.

`EsmrConfig.configure_at_launch()` is shared by the assets and the IO manager, so a preset
or data dir chosen at launch (UI launchpad, `esmr run`) reaches both.

Runs from the UI, schedules and sensors run each step in its own process. Importing this
module costs seconds (torch, scikit-learn, LightGBM, numba), and a spawned step process
paid it again for every step; `step_executor` forks every step from a server that has
imported it once (a smoke cell: 137 s before, 54 s after, byte-identical outputs).
"""

import functools

import dagster as dg

from esmr_assets.assets import causal, emotion, evaluation, policy, simulation
from esmr_assets.assets.sql_models import GROUP as SQL_GROUP
from esmr_assets.assets.sql_models import sql_models
from esmr_assets.assets.studies import GROUP as STUDY_GROUP
from esmr_assets.assets.studies import study_report
from esmr_assets.orchestration.automation import (
    build_sql_models_sensor,
    build_study_reports_sensor,
    build_sweep_schedule,
    sweep_settings,
)
from esmr_assets.orchestration.dask_executor import seed_dask_executor
from esmr_assets.orchestration.model_io import MODEL_IO, ModelIOManager
from esmr_assets.orchestration.parquet_io import ParquetIOManager
from esmr_assets.orchestration.resources import EsmrConfig

#: what workspace.yaml loads and the fork server preloads: importing it must start no work
#: (no threads, no torch or polars computation), or the forked steps could deadlock
DEFINITIONS_MODULE = "esmr_assets.definitions"
FORKSERVER = {"forkserver": {"preload_modules": [DEFINITIONS_MODULE]}}


def _multiprocess_options() -> dict:
    """The multiprocess executor's config fields but its start method (ours is fixed)."""
    fields = dg.multiprocess_executor.config_schema.as_field().config_type.fields
    return {name: field for name, field in fields.items() if name != "start_method"}


step_executor = dg.multiprocess_executor.configured(
    lambda config: {**config, "start_method": FORKSERVER}, name="step_executor", config_schema=_multiprocess_options()
)

all_assets = [*dg.load_assets_from_modules([simulation, emotion, causal, policy, evaluation]), *sql_models, study_report]


def group_job(group: str, description: str):
    """`<group>_job`: the assets of one group."""
    return dg.define_asset_job(name=f"{group}_job", selection=dg.AssetSelection.groups(group), description=description)


simulation_job = group_job("simulation", "Phase I for one seed: videos, users, then the logged user-days and impressions.")
emotion_job = group_job("emotion", "Phase II (a) for one seed: cluster labels, the TabTransformer and its predictions.")
causal_job = group_job(
    "causal", "Phase II (b) for one seed: per-user causal DAGs and the parents of the emotional targets."
)
policy_job = group_job(
    "policy", "Phase III for one seed: the LightGBM engagement ranker, the bandits' learners and the Q-learning agents."
)
evaluation_job = group_job("evaluation", "Evaluation for one seed: every policy's 30-day rollouts and the paper's metrics.")
sql_job = group_job(SQL_GROUP, "The dbt-like SQL models over every materialized cell (not partitioned).")
study_report_job = group_job(STUDY_GROUP, "A study's report (partitioned by study): effects per scenario with intervals.")

CELL_ASSETS = dg.AssetSelection.all() - dg.AssetSelection.groups(SQL_GROUP, STUDY_GROUP)  # everything partitioned by cell
esmr_job = dg.define_asset_job(
    name="esmr_job",
    selection=CELL_ASSETS,
    description="The whole graph for one cell (scenario, seed).",
)
esmr_dask_job = dg.define_asset_job(
    name="esmr_dask_job",
    selection=CELL_ASSETS,
    executor_def=seed_dask_executor,
    description="The whole graph for one cell with every step on a Dask cluster: a local one by default, "
    "or an existing scheduler (`execution.config.cluster.existing.address`) to go beyond one machine.",
)



@functools.cache
def cell_steps():
    """The graph's partitioned steps in dependency order (what a cell is made of)."""
    from esmr_assets.orchestration.runner import plan_steps

    return [step for step in plan_steps(defs) if step.partitioned]


seed_sweep_schedule = build_sweep_schedule(cell_steps, esmr_job, *sweep_settings())
sql_models_sensor = build_sql_models_sensor(cell_steps, esmr_job, sql_job)
study_reports_sensor = build_study_reports_sensor(sql_job, study_report_job)

esmr = EsmrConfig.configure_at_launch()

defs = dg.Definitions(
    assets=all_assets,
    jobs=[simulation_job, emotion_job, causal_job, policy_job, evaluation_job, esmr_job, esmr_dask_job, sql_job,
          study_report_job],
    schedules=[seed_sweep_schedule],
    sensors=[sql_models_sensor, study_reports_sensor],
    executor=step_executor,
    resources={"esmr": esmr, "io_manager": ParquetIOManager(esmr=esmr), MODEL_IO: ModelIOManager(esmr=esmr)},
)
