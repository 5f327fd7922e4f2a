"""The one Definitions object: every asset, job and resource of the project.

`EsmrConfig.configure_at_launch()` is shared by the assets and the IO manager, so a preset
or data dir chosen at launch (UI launchpad, `esmr run`) reaches both.
"""

import dagster as dg

from esmr_assets.assets import causal, emotion, simulation
from esmr_assets.io_manager import ParquetIOManager
from esmr_assets.resources import EsmrConfig

all_assets = dg.load_assets_from_modules([simulation, emotion, causal])

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
esmr_job = dg.define_asset_job(
    name="esmr_job",
    selection=dg.AssetSelection.all(),
    description="The whole graph for one seed.",
)

esmr = EsmrConfig.configure_at_launch()

defs = dg.Definitions(
    assets=all_assets,
    jobs=[simulation_job, emotion_job, causal_job, esmr_job],
    resources={"esmr": esmr, "io_manager": ParquetIOManager(esmr=esmr)},
)
