"""The model IO manager: models as asset values stored beside the partition's tables, read
back as the consumer's declared class, on the device the input asks for; bad values and
missing models named."""

from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from esmr_assets.emotion.tabtransformer import TabTransformerClassifier
from esmr_assets.orchestration.model_io import MODEL_IO, ON_CPU, ModelIOManager
from esmr_assets.orchestration.parquet_io import ParquetIOManager
from esmr_assets.orchestration.partitions import cell_partitions
from esmr_assets.orchestration.resources import EsmrConfig, run_config
from esmr_assets.policy.learners.qlearning import QLearningAgent
from esmr_assets.policy.training.models import AgentSet
from esmr_assets.storage.reuse import RECORD_FILE
from esmr_assets_tests.conftest import add_cell

SEEN: dict[str, object] = {}


@dg.asset(partitions_def=cell_partitions, io_manager_key=MODEL_IO)
def toy_agents(context: dg.AssetExecutionContext, esmr: EsmrConfig) -> AgentSet:
    agent = QLearningAgent(3, 2, random_state=esmr.seed(context)).initialize()
    agent.q_[:] = np.arange(6.0).reshape(3, 2) + esmr.seed(context)
    return AgentSet({"a": agent})


@dg.asset(partitions_def=cell_partitions)
def agents_reader(toy_agents: AgentSet) -> None:
    SEEN["agents"] = toy_agents


@dg.asset(partitions_def=cell_partitions, io_manager_key=MODEL_IO)
def toy_model() -> TabTransformerClassifier:
    rng = np.random.default_rng(0)
    cont, cat = rng.random((64, 2)).astype(np.float32), rng.integers(0, 3, (64, 1))
    y = np.where(cont[:, 0] > 0.5, "happy", "neutral")
    model = TabTransformerClassifier(d_model=4, n_heads=1, max_epochs=1, batch_size=32, random_state=0, device="cpu")
    return model.fit(cont, cat, y, cont, cat, y, cardinalities=(3,))


@dg.asset(partitions_def=cell_partitions)
def model_reader(toy_model: TabTransformerClassifier) -> None:
    SEEN["default"] = toy_model


@dg.asset(partitions_def=cell_partitions, ins={"toy_model": dg.AssetIn(metadata={"device": "auto"})})
def model_reader_anywhere(toy_model: TabTransformerClassifier) -> None:
    SEEN["auto"] = toy_model


@dg.asset(partitions_def=cell_partitions, ins={"toy_model": ON_CPU})
def model_reader_on_cpu(toy_model: TabTransformerClassifier) -> None:
    SEEN["cpu"] = toy_model


@dg.asset(partitions_def=cell_partitions, io_manager_key=MODEL_IO)
def not_a_model() -> dict:
    return {"q": [1, 2]}


def run(data_dir: Path, *assets, seed: int = 4, select=None) -> dg.ExecuteInProcessResult:
    esmr = EsmrConfig.configure_at_launch()
    defs = dg.Definitions(assets=list(assets), resources={
        "esmr": esmr, "io_manager": ParquetIOManager(esmr=esmr), MODEL_IO: ModelIOManager(esmr=esmr)})
    with dg.DagsterInstance.ephemeral() as instance:
        key = add_cell(instance, seed)
        return defs.resolve_implicit_global_asset_job_def().execute_in_process(
            run_config=run_config("smoke", data_dir), instance=instance, partition_key=key,
            asset_selection=select, raise_on_error=False,
        )


def test_a_model_is_stored_beside_its_partition_and_read_back_as_its_class(data_dir):
    assert run(data_dir, toy_agents, agents_reader).success
    path = data_dir / "smoke" / "toy_agents" / "scenario=baseline/seed=4" / AgentSet.file_name
    restored = SEEN["agents"]
    assert isinstance(restored, AgentSet) and np.array_equal(restored["a"].q_, np.arange(6.0).reshape(3, 2) + 4)
    first = path.read_bytes()
    assert run(data_dir, toy_agents, agents_reader).success and path.read_bytes() == first  # deterministic bytes
    assert sorted(p.name for p in path.parent.iterdir()) == [RECORD_FILE, AgentSet.file_name]  # no temp files left


def test_the_input_chooses_the_device(data_dir):
    assert run(data_dir, toy_model, model_reader, model_reader_on_cpu, model_reader_anywhere).success
    assert SEEN["default"].device == "cpu" and SEEN["cpu"].device == "cpu" and SEEN["auto"].device == "auto"
    assert (data_dir / "smoke" / "toy_model" / "scenario=baseline/seed=4" / "tabtransformer.pt").is_file()


def test_a_value_that_is_no_model_fails_naming_the_asset_before_writing(data_dir, failure_text):
    result = run(data_dir, not_a_model)
    assert not result.success
    assert "asset not_a_model: 'dict' is not a stored model type" in failure_text(result)
    assert not (data_dir / "smoke" / "not_a_model").exists()


def test_a_missing_model_is_named(data_dir, failure_text):
    result = run(data_dir, toy_agents, agents_reader, select=[dg.AssetKey("agents_reader")])
    assert not result.success
    text = failure_text(result)
    assert "asset toy_agents: no stored model (q_agents.npz) under" in text and "materialize it first" in text


@pytest.mark.parametrize("seed", [4, 5])
def test_partitions_do_not_share_files(data_dir, seed):
    assert run(data_dir, toy_agents, seed=seed).success
    assert (data_dir / "smoke" / "toy_agents" / f"scenario=baseline/seed={seed}" / AgentSet.file_name).is_file()
