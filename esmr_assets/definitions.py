"""The one Definitions object: every asset, job and resource of the project.

`EsmrConfig.configure_at_launch()` is shared by the assets and the IO manager, so a preset
or data dir chosen at launch (UI launchpad, `esmr run`) reaches both.
"""

import dagster as dg

from esmr_assets.assets import causal, emotion, evaluation, policy, simulation
from esmr_assets.assets.sql_models import GROUP as SQL_GROUP
from esmr_assets.assets.sql_models import sql_models
from esmr_assets.dask_executor import seed_dask_executor
from esmr_assets.automation import build_sql_models_sensor, build_sweep_schedule, sweep_settings
from esmr_assets.io_manager import ParquetIOManager
from esmr_assets.resources import EsmrConfig

all_assets = [*dg.load_assets_from_modules([simulation, emotion, causal, policy, evaluation]), *sql_models]

simulation_job = dg.define_asset_job(
    name="simulation_job",
    selection=dg.AssetSelection.groups("simulation"),
    description="Phase I for one seed: videos, users, then the logged user-days and impressions.",
)
emotion_job = dg.define_asset_job(
    name="emotion_job",
    selection=dg.AssetSelection.groups("emotion"),
    description="Phase II (a) for one seed: cluster labels, the TabTransformer and its predictions.",
)
causal_job = dg.define_asset_job(
    name="causal_job",
    selection=dg.AssetSelection.groups("causal"),
    description="Phase II (b) for one seed: per-user causal DAGs and the parents of the emotional targets.",
)
policy_job = dg.define_asset_job(
    name="policy_job",
    selection=dg.AssetSelection.groups("policy"),
    description="Phase III for one seed: the LightGBM engagement ranker and the Q-learning agents.",
)
evaluation_job = dg.define_asset_job(
    name="evaluation_job",
    selection=dg.AssetSelection.groups("evaluation"),
    description="Evaluation for one seed: every policy's 30-day rollouts and the paper's metrics.",
)
esmr_job = dg.define_asset_job(
    name="esmr_job",
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups(SQL_GROUP),
    description="The whole graph for one seed.",
)
esmr_dask_job = dg.define_asset_job(
    name="esmr_dask_job",
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups(SQL_GROUP),
    executor_def=seed_dask_executor,
    description="The whole graph for one seed with every step on a Dask cluster: a local one by default, "
    "or an existing scheduler (`execution.config.cluster.existing.address`) to go beyond one machine.",
)
sql_job = dg.define_asset_job(
    name="sql_job",
    selection=dg.AssetSelection.groups(SQL_GROUP),
    description="The dbt-like SQL models over every materialized seed (not partitioned).",
)

seed_sweep_schedule = build_sweep_schedule(esmr_job, *sweep_settings())
sql_models_sensor = build_sql_models_sensor(esmr_job, sql_job)

esmr = EsmrConfig.configure_at_launch()

defs = dg.Definitions(
    assets=all_assets,
    jobs=[simulation_job, emotion_job, causal_job, policy_job, evaluation_job, esmr_job, esmr_dask_job, sql_job],
    schedules=[seed_sweep_schedule],
    sensors=[sql_models_sensor],
    resources={"esmr": esmr, "io_manager": ParquetIOManager(esmr=esmr)},
)
