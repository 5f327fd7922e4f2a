"""The one Definitions object: every asset, job and resource of the project.

`EsmrConfig.configure_at_launch()` is shared by the assets and the IO manager, so a preset
or data dir chosen at launch (UI launchpad, `esmr run`) reaches both.
"""

import dagster as dg

from esmr_assets.assets import simulation
from esmr_assets.io_manager import ParquetIOManager
from esmr_assets.resources import EsmrConfig

simulation_assets = dg.load_assets_from_modules([simulation])

simulation_job = dg.define_asset_job(
    name="simulation_job",
    selection=dg.AssetSelection.groups("simulation"),
    description="Phase I for one seed: videos, users, then the logged user-days and impressions.",
)

esmr = EsmrConfig.configure_at_launch()

defs = dg.Definitions(
    assets=simulation_assets,
    jobs=[simulation_job],
    resources={"esmr": esmr, "io_manager": ParquetIOManager(esmr=esmr)},
)
