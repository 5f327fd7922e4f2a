"""Trained models as asset values: stored beside their partition's tables, handed to the
assets that use them as inputs (so lineage shows model -> consumer edges).

`<root>/<asset>/scenario=<name>/seed=<k>/<file>`, one file per model, written atomically; the bytes are the
model's own deterministic serialisation (LightGBM text, a torch state dict loaded with
`weights_only=True`, Q-tables as .npy arrays). A consumer annotates its input with the
model's class, which picks the file and the loader. A torch model is loaded on the CPU, where
its bytes are the same on every machine; `AssetIn(metadata={"device": "auto"})` would let a
consumer use a GPU.
"""


from pathlib import Path
from typing import Any

import dagster as dg

from ..storage.cells import parse_cell
from ..storage.files import atomic_write_bytes, partition_dir
from ..storage.models import LoadContext, codec_for, stored_model
from ..storage.reuse import invalidate
from .parquet_io import numerics_metadata
from .resources import EsmrConfig

#: the resource key of this IO manager: the `io_manager_key` of every model output
MODEL_IO = "model_io_manager"
#: the closed loop runs the emotion model on the CPU whatever the machine (the default, said
#: here where it matters most): a near-tie decided differently on a GPU would change a label,
#: then a streak, a feed and the rest of the user's days
ON_CPU = dg.AssetIn(metadata={"device": "cpu"})


class SeedModelIOManager(dg.IOManager):
    def __init__(self, esmr: EsmrConfig) -> None:
        self.esmr = esmr

    def _path(self, context: dg.InputContext | dg.OutputContext, file_name: str) -> Path:
        asset = context.asset_key
        cell = parse_cell(context.asset_partition_key)
        return partition_dir(self.esmr.storage_root().joinpath(*asset.path[:-1]), asset.path[-1], cell) / file_name

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        asset = context.asset_key.to_user_string()
        if not context.has_asset_partitions:
            raise dg.DagsterInvariantViolationError(f"asset {asset} is not partitioned; models are stored per cell")
        path = self._path(context, codec_for(type(obj), asset).file_name)
        invalidate(path.parent)
        atomic_write_bytes(path, obj.to_bytes())
        context.add_output_metadata({"model_path": dg.MetadataValue.path(str(path)), **numerics_metadata(path.parent)})

    def load_input(self, context: dg.InputContext) -> Any:
        asset = context.asset_key.to_user_string()
        device = (context.definition_metadata or {}).get("device", "cpu")  # the same bits on every machine
        cell = parse_cell(context.asset_partition_key)
        load_context = LoadContext(self.esmr.scenario_settings(cell.scenario), cell.seed, device)
        return stored_model(self._path(context, ""), context.dagster_type.typing_type, load_context, asset)


class ModelIOManager(dg.ConfigurableIOManagerFactory):
    """IO manager of the assets whose value is a trained model."""

    esmr: dg.ResourceDependency[EsmrConfig]

    def create_io_manager(self, context: dg.InitResourceContext) -> SeedModelIOManager:
        return SeedModelIOManager(self.esmr)
