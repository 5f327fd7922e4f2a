"""Trained models as asset values: stored beside their partition's tables, handed to the
assets that use them as inputs (so lineage shows model -> consumer edges).

`<root>/<asset>/scenario=<name>/seed=<k>/<file>`, one file per model, written atomically; the bytes are the
model's own deterministic serialisation (LightGBM text, a torch state dict loaded with
`weights_only=True`, Q-tables as .npy arrays). A consumer annotates its input with the
model's class, which picks the file and the loader. A torch model is loaded on the CPU, where
its bytes are the same on every machine; `AssetIn(metadata={"device": "auto"})` would let a
consumer use a GPU.
"""


from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from ..core.settings import Settings
from ..storage.cells import parse_cell
from ..storage.files import atomic_write_bytes, partition_dir
from ..storage.reuse import invalidate
from .parquet_io import numerics_metadata
from .resources import EsmrConfig

#: the resource key of this IO manager: the `io_manager_key` of every model output
MODEL_IO = "model_io_manager"
#: the closed loop runs the emotion model on the CPU whatever the machine (the default, said
#: here where it matters most): a near-tie decided differently on a GPU would change a label,
#: then a streak, a feed and the rest of the user's days
ON_CPU = dg.AssetIn(metadata={"device": "cpu"})


@dataclass(frozen=True)
class LoadContext:
    settings: Settings
    seed: int
    device: str


@dataclass(frozen=True)
class ModelCodec:
    file_name: str
    load: Callable[[bytes, LoadContext], Any]


def model_codecs() -> dict[type, ModelCodec]:
    """Every model type an asset may return, with its file and loader (imported lazily:
    torch and LightGBM load only when a model is stored or read)."""
    from ..emotion.estimators import (
        LatentEmotion,
        LightGBMEmotionModel,
        LogisticEmotionModel,
    )
    from ..emotion.tabtransformer import TabTransformerClassifier
    from ..policy.learners.ranker import EngagementRanker
    from ..policy.training.models import AgentSet, BanditLearners

    return {
        TabTransformerClassifier: ModelCodec(
            "tabtransformer.pt", lambda data, ctx: TabTransformerClassifier.from_bytes(data, device=ctx.device)
        ),
        LogisticEmotionModel: ModelCodec("logistic_emotion.json", lambda data, ctx: LogisticEmotionModel.from_bytes(data)),
        LightGBMEmotionModel: ModelCodec("lightgbm_emotion.json", lambda data, ctx: LightGBMEmotionModel.from_bytes(data)),
        LatentEmotion: ModelCodec("latent_emotion.json", lambda data, ctx: LatentEmotion.from_bytes(data)),
        EngagementRanker: ModelCodec("lightgbm_ranker.txt", lambda data, ctx: EngagementRanker.from_text(data.decode())),
        AgentSet: ModelCodec(AgentSet.file_name, lambda data, ctx: AgentSet.from_bytes(data)),
        BanditLearners: ModelCodec(
            BanditLearners.file_name, lambda data, ctx: BanditLearners.from_bytes(data, ctx.settings.policy, ctx.seed)
        ),
    }


def model_families() -> dict[type, tuple[type, ...]]:
    """Input annotations that accept any of several stored types: the one stored is read."""
    from ..emotion.estimators import (
        EmotionModel,
        LatentEmotion,
        LightGBMEmotionModel,
        LogisticEmotionModel,
    )
    from ..emotion.tabtransformer import TabTransformerClassifier

    return {EmotionModel: (TabTransformerClassifier, LogisticEmotionModel, LightGBMEmotionModel, LatentEmotion)}


def _codec(kind: type, asset: str) -> ModelCodec:
    codecs = model_codecs()
    if kind not in codecs:
        names = ", ".join(sorted(t.__name__ for t in codecs))
        raise TypeError(f"asset {asset}: {getattr(kind, '__name__', kind)!r} is not a stored model type ({names})")
    return codecs[kind]


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
        path = self._path(context, _codec(type(obj), asset).file_name)
        invalidate(path.parent)
        atomic_write_bytes(path, obj.to_bytes())
        context.add_output_metadata({"model_path": dg.MetadataValue.path(str(path)), **numerics_metadata(path.parent)})

    def load_input(self, context: dg.InputContext) -> Any:
        asset = context.asset_key.to_user_string()
        kind = context.dagster_type.typing_type
        members = model_families().get(kind, (kind,))
        stored = [(codec, path) for codec in (_codec(member, asset) for member in members)
                  if (path := self._path(context, codec.file_name)).is_file()]
        if not stored:
            names = ", ".join(_codec(member, asset).file_name for member in members)
            raise FileNotFoundError(f"asset {asset}: no stored model ({names}) under "
                                    f"{self._path(context, '')}; materialize it first")
        if len(stored) > 1:
            raise ValueError(f"asset {asset}: several stored models {[str(p) for _, p in stored]}; keep one")
        codec, path = stored[0]
        device = (context.definition_metadata or {}).get("device", "cpu")  # the same bits on every machine
        cell = parse_cell(context.asset_partition_key)
        load_context = LoadContext(self.esmr.scenario_settings(cell.scenario), cell.seed, device)
        return codec.load(path.read_bytes(), load_context)


class ModelIOManager(dg.ConfigurableIOManagerFactory):
    """IO manager of the assets whose value is a trained model."""

    esmr: dg.ResourceDependency[EsmrConfig]

    def create_io_manager(self, context: dg.InitResourceContext) -> SeedModelIOManager:
        return SeedModelIOManager(self.esmr)
