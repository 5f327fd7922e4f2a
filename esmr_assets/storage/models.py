"""Every model type an asset may return, with its file name and loader: what the model IO
manager stores and reads, and what `stored_model` reads from a data dir without Dagster."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.settings import Settings


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
    from ..policy.training.models import AgentSet, BanditLearners, DeepAgents

    return {
        TabTransformerClassifier: ModelCodec(
            "tabtransformer.pt", lambda data, ctx: TabTransformerClassifier.from_bytes(data, device=ctx.device)
        ),
        LogisticEmotionModel: ModelCodec("logistic_emotion.json", lambda data, ctx: LogisticEmotionModel.from_bytes(data)),
        LightGBMEmotionModel: ModelCodec("lightgbm_emotion.json", lambda data, ctx: LightGBMEmotionModel.from_bytes(data)),
        LatentEmotion: ModelCodec("latent_emotion.json", lambda data, ctx: LatentEmotion.from_bytes(data)),
        EngagementRanker: ModelCodec("lightgbm_ranker.txt", lambda data, ctx: EngagementRanker.from_text(data.decode())),
        AgentSet: ModelCodec(AgentSet.file_name, lambda data, ctx: AgentSet.from_bytes(data)),
        DeepAgents: ModelCodec(DeepAgents.file_name, lambda data, ctx: DeepAgents.from_bytes(data)),
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


def codec_for(kind: type, asset: str) -> ModelCodec:
    codecs = model_codecs()
    if kind not in codecs:
        names = ", ".join(sorted(t.__name__ for t in codecs))
        raise TypeError(f"asset {asset}: {getattr(kind, '__name__', kind)!r} is not a stored model type ({names})")
    return codecs[kind]


def stored_model(directory: Path, kind: type, context: LoadContext, asset: str = "model") -> Any:
    """The model of `kind` (or of one member of its family) stored in `directory`, one
    partition's folder; FileNotFoundError naming what is missing."""
    members = model_families().get(kind, (kind,))
    stored = [(codec, path) for codec in (codec_for(member, asset) for member in members)
              if (path := Path(directory) / codec.file_name).is_file()]
    if not stored:
        names = ", ".join(codec_for(member, asset).file_name for member in members)
        raise FileNotFoundError(f"asset {asset}: no stored model ({names}) under {directory}; materialize it first")
    if len(stored) > 1:
        raise ValueError(f"asset {asset}: several stored models {[str(p) for _, p in stored]}; keep one")
    codec, path = stored[0]
    return codec.load(path.read_bytes(), context)


def stored_loop_inputs(data_dir: Path | str, preset: str = "paper", seed: int = 0,
                       scenario: str = "baseline") -> tuple[Any, Any]:
    """What the closed loop of a materialized cell starts from, read from `data_dir` without
    Dagster: (`LoopInputs`, the users' causal parents). FileNotFoundError naming the command
    that materializes the cell when something is missing."""
    import polars as pl

    from ..emotion.estimators import EmotionModel
    from ..policy.learners.ranker import EngagementRanker
    from ..policy.loop.inputs import LoopInputs
    from .cells import BASELINE, Cell, check_scenario_name, scenario_overrides, scenario_settings
    from .files import PART_FILE, partition_dir, storage_root

    root = storage_root(Path(data_dir), preset)
    cell = Cell(check_scenario_name(scenario), int(seed))
    settings = scenario_settings(root, scenario)
    make = (f"esmr run --seed {seed} --preset {preset} --data-dir {data_dir}" if scenario == BASELINE else
            f"esmr run --seed {seed} --preset {preset} --data-dir {data_dir} --overrides "
            f"'{scenario_overrides(root, scenario)}' (or the study that defines {scenario!r})")

    def folder(asset: str) -> Path:
        path = partition_dir(root, asset, cell)
        if not path.is_dir():
            raise FileNotFoundError(f"{asset} of {cell} is not under {root}; materialize the cell first: {make}")
        return path

    def model(asset: str, kind: type):
        try:
            return stored_model(folder(asset), kind, LoadContext(settings, cell.seed, "cpu"), asset)
        except FileNotFoundError as err:
            raise FileNotFoundError(f"{err}: {make}") from None

    videos, users, parents = (pl.read_parquet(folder(a) / PART_FILE) for a in ("videos", "users", "user_causal_parents"))
    ranker, emotion_model = model("engagement_ranker", EngagementRanker), model("emotion_model", EmotionModel)
    impressions = pl.scan_parquet(folder("impressions") / PART_FILE)
    return LoopInputs(videos, users, impressions, ranker, emotion_model, settings, cell.seed), parents
