"""Fixtures for the Dagster plumbing: an empty data dir, a throwaway instance, and a toy
seed-partitioned graph (so storage, warehouse and CLI are tested without the simulator)."""

# isort: off
import esmr_assets  # noqa: F401 - first: it pins the numeric kernels before numpy and torch load
# isort: on
import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from esmr_assets.orchestration.parquet_io import ParquetIOManager
from esmr_assets.orchestration.partitions import cell_partitions, register_cells
from esmr_assets.orchestration.resources import EsmrConfig, run_config
from esmr_assets.storage.cells import Cell, overrides_scenario_name, register_scenario
from esmr_assets.storage.files import storage_root

#: the renderers of docs/: scripts, loaded by path
RENDER = Path(__file__).resolve().parents[1] / "docs" / "render"


def load_renderer(name: str):
    """docs/render/<name>.py as a module (`render_<name>`), its own helpers importable."""
    sys.path.insert(0, str(RENDER))
    spec = importlib.util.spec_from_file_location(f"render_{name}", RENDER / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # a dataclass finds its module here
    spec.loader.exec_module(module)
    return module


def add_cell(instance: dg.DagsterInstance, seed: int | str, scenario: str = "baseline") -> str:
    """Register the cell's partitions; return its partition key ("<scenario>|<seed>")."""
    cell = Cell(scenario, int(seed))
    register_cells(instance, [cell])
    return cell.key


def scenario_cell(instance: dg.DagsterInstance, data_dir: Path, preset: str, overrides_json: str, seed) -> str:
    """Register the scenario `esmr run --overrides` would, and its cell; return the cell's key."""
    name = overrides_scenario_name(preset, overrides_json)
    register_scenario(storage_root(data_dir, preset), name, overrides_json)
    return add_cell(instance, seed, name)


@dg.asset(partitions_def=cell_partitions, group_name="simulation")
def numbers(context: dg.AssetExecutionContext, esmr: EsmrConfig) -> pl.DataFrame:
    """seed + 3 rows, so row counts tell seeds apart."""
    size = esmr.seed(context) + 3
    return pl.DataFrame({"n": list(range(size)), "label": [f"row {i}" for i in range(size)]})


@dg.multi_asset(
    partitions_def=cell_partitions,
    group_name="simulation",
    outs={"evens": dg.AssetOut(), "odds": dg.AssetOut()},
)
def parity(numbers: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    return numbers.filter(pl.col("n") % 2 == 0), numbers.filter(pl.col("n") % 2 == 1)


@dg.asset(partitions_def=cell_partitions, group_name="simulation")
def doubled(numbers: pl.DataFrame) -> pl.DataFrame:
    return numbers.with_columns(pl.col("n") * 2)


@dg.asset(partitions_def=cell_partitions, group_name="simulation")
def lazy_total(numbers: pl.LazyFrame) -> pl.DataFrame:
    """Reads `numbers` as a lazy scan, as the large tables are read."""
    assert isinstance(numbers, pl.LazyFrame)
    return numbers.select(pl.col("n").sum().alias("total"), pl.len().alias("rows")).collect()


@dg.asset(partitions_def=cell_partitions)
def constant() -> pl.DataFrame:
    """Ignores its partition key, so only the IO manager can reject a bad one."""
    return pl.DataFrame({"x": [1, 2]})


@dg.asset(partitions_def=cell_partitions)
def not_a_frame() -> dict:
    return {"x": [1, 2]}


@dg.asset(partitions_def=cell_partitions)
def broken(evens: pl.DataFrame) -> pl.DataFrame:
    raise ValueError("boom: the toy asset failed")


TOY_ASSETS = {a.key.to_user_string(): a for a in (numbers, doubled, lazy_total, constant, not_a_frame, broken)}
TOY_ASSETS["parity"] = parity


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither a developer's data dir nor their Dagster instance may leak into a test."""
    monkeypatch.delenv("ESMR_DATA_DIR", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data dir that does not exist yet."""
    return tmp_path / "data"


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """In-memory instance: four times faster than a sqlite one, and enough for partitions."""
    with dg.DagsterInstance.ephemeral() as test_instance:
        yield test_instance


def _build_defs(*names: str) -> dg.Definitions:
    """Toy assets wired exactly like esmr_assets.definitions wires the real ones."""
    esmr = EsmrConfig.configure_at_launch()
    return dg.Definitions(
        assets=[TOY_ASSETS[name] for name in names],
        resources={"esmr": esmr, "io_manager": ParquetIOManager(esmr=esmr)},
    )


def _failure_text(result: dg.ExecuteInProcessResult) -> str:
    errors = [getattr(e.event_specific_data, "error", None) for e in result.all_events if e.is_failure]
    return "\n".join(error.to_string() for error in errors if error is not None)


@pytest.fixture
def toy_defs() -> Callable[..., dg.Definitions]:
    """toy_defs("numbers", "parity", ...) -> Definitions of those toy assets."""
    return _build_defs


@pytest.fixture
def failure_text() -> Callable[[dg.ExecuteInProcessResult], str]:
    """Every failure of a run with its causes, as Dagster recorded them."""
    return _failure_text


def _run_config(data_dir: Path, preset: str = "paper") -> dict:
    return run_config(preset, data_dir)


@pytest.fixture
def materialize(instance: dg.DagsterInstance, data_dir: Path) -> Callable[..., dg.ExecuteInProcessResult]:
    """materialize(names, seed, select=None, preset=..., overrides_json=..., data_dir=...):
    one run of the toy assets `names` for one cell (the scenario of the overrides, `baseline`
    without), not raising on failure. A seed that is not a plain seed is passed on as the
    partition key of the baseline scenario, for the IO manager to refuse."""

    def run(
        names: tuple[str, ...],
        seed: int | str,
        select: list[str] | None = None,
        preset: str = "paper",
        overrides_json: str = "{}",
        data_dir: Path = data_dir,
        register: bool = True,
    ) -> dg.ExecuteInProcessResult:
        if not (str(seed).isdigit() and str(seed) == str(int(seed))):
            instance.add_dynamic_partitions("scenario", ["baseline"])
            instance.add_dynamic_partitions("seed", [str(seed)])
            key = f"baseline|{seed}"
        elif register:
            key = scenario_cell(instance, data_dir, preset, overrides_json, seed)
        else:  # the scenario is registered already
            key = add_cell(instance, seed, overrides_scenario_name(preset, overrides_json))
        return _build_defs(*names).resolve_implicit_global_asset_job_def().execute_in_process(
            run_config=_run_config(data_dir, preset),
            instance=instance,
            partition_key=key,
            asset_selection=[dg.AssetKey(name) for name in select] if select else None,
            raise_on_error=False,
        )

    return run


class ThresholdModel:
    """Stands in for the TabTransformer (same predict_proba / classes_ interface): a one-hot
    label from engagement_change and the previous label, so tests see whether the
    environment feeds both correctly."""

    classes_ = np.array(["churned", "excited", "happy", "neutral", "stressed"])

    def predict_proba(self, cont, cat):
        change, previous = cont[:, 9], cat[:, 1]  # engagement_change, previous_label code
        labels = np.array(["happy", "stressed", "neutral", "excited"])
        chosen = labels[(change > 0).astype(int) + 2 * (previous % 2)]
        return (chosen[:, None] == self.classes_[None, :]).astype(float)

    def predict(self, cont, cat):
        return self.classes_[self.predict_proba(cont, cat).argmax(axis=1)]


@pytest.fixture
def threshold_model() -> ThresholdModel:
    return ThresholdModel()


@pytest.fixture(scope="session")
def logged_world() -> Callable[..., tuple[pl.DataFrame, ...]]:
    """logged_world(simulation_settings, seed) -> (impressions, logs, predictions, videos,
    users), the ranker's `fit` arguments: a logging simulation with the latent label
    standing in for the emotion model's predictions (the policy stage only needs a label
    column; the emotion model is tested elsewhere)."""
    from esmr_assets.core.rng import stream
    from esmr_assets.sim.content import simulate_videos
    from esmr_assets.sim.logs import simulate_logs
    from esmr_assets.sim.population import simulate_users

    def make(settings, seed: int) -> tuple[pl.DataFrame, ...]:
        videos = simulate_videos(settings.n_videos, stream(seed, "videos"))
        users = simulate_users(settings, stream(seed, "users"))
        logs, impressions = simulate_logs(videos, users, settings, seed)
        predictions = logs.select("user_id", "day", pl.col("true_emotion").alias("label"))
        return impressions, logs, predictions, videos, users

    return make


SMOKE_GRAPH_SEED = "2"


@pytest.fixture(scope="session")
def smoke_graph(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dg.ExecuteInProcessResult]:
    """The real whole graph (`esmr_job`) materialized once for one smoke seed:
    (storage root, run result). Shared by the end-to-end tests of every stage."""
    from esmr_assets.definitions import defs

    data_dir = tmp_path_factory.mktemp("smoke_graph")
    with dg.instance_for_test() as test_instance:
        result = defs.resolve_job_def("esmr_job").execute_in_process(
            instance=test_instance,
            partition_key=add_cell(test_instance, SMOKE_GRAPH_SEED),
            run_config=_run_config(data_dir, "smoke"),
        )
    assert result.success
    return data_dir / "smoke", result


@pytest.fixture(scope="session")
def feed_world(logged_world) -> Callable[..., tuple]:
    """feed_world(simulation_settings, seed) -> (videos, users, feeds): a logged world, the
    ranker fitted on it and two-stage feeds re-ranking 24 candidates, for closed-loop tests."""
    from esmr_assets.policy.learners.ranker import EngagementRanker
    from esmr_assets.policy.loop.feeds import FeedBuilder, video_popularity

    def make(settings, seed: int) -> tuple:
        impressions, logs, predictions, videos, users = logged_world(settings, seed)
        ranker = EngagementRanker(random_state=0).fit(impressions, logs, predictions, videos, users)
        feeds = FeedBuilder(ranker, video_popularity(impressions, videos.height), settings.feed_length, 24)
        return videos, users, feeds

    return make


def stored_and_recomputed_labels(model, root: Path, seed: str, scenario: str = "baseline") -> tuple[np.ndarray, np.ndarray]:
    """A seed's stored `emotion_predictions` labels, and `model`'s labels recomputed from the
    stored logs and cluster labels (previous-day input: the cluster label), user-day aligned."""
    from esmr_assets.emotion.features import build_features, previous_labels
    from esmr_assets.emotion.labeller import predict_classes

    logs, labels, predictions = (pl.read_parquet(root / name / f"scenario={scenario}" / f"seed={seed}" / "part-0.parquet")
                                 for name in ("user_day_logs", "emotion_labels", "emotion_predictions"))
    aligned = logs.select("user_id", "day").join(labels, on=["user_id", "day"], maintain_order="left")["label"]
    again, _ = predict_classes(model, build_features(logs.drop("true_emotion", "true_valence", "true_arousal"),
                                                    previous_labels(logs, aligned)))
    stored = logs.select("user_id", "day").join(predictions, on=["user_id", "day"], maintain_order="left")["label"]
    return stored.cast(pl.String).to_numpy(), again
