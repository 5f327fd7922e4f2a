"""The whole graph for one `smoke` seed out of process: on the Dask executor against a local
Dask cluster (two worker processes), and on the code location's own executor (every step a
process forked from a server that preloaded the definitions, as UI, schedule and sensor runs
are): each succeeds and writes the same bytes as the in-process run."""

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from esmr_assets.definitions import CELL_ASSETS, defs
from esmr_assets.orchestration.resources import run_config
from esmr_assets_tests.conftest import add_cell

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


DASK_CLUSTER = {"execution": {"config": {"cluster": {"local": {"n_workers": 2, "threads_per_worker": 1}}}}}


@pytest.mark.parametrize("job, execution", [("esmr_dask_job", DASK_CLUSTER), ("esmr_job", {})])
def test_whole_graph_out_of_process_matches_the_in_process_run(smoke_graph, tmp_path, job, execution):
    in_process, _ = smoke_graph
    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.from_config(str(home)) as instance:  # Dask needs a persistent instance
        key = add_cell(instance, 2)
    config = {**run_config("smoke", data), **execution}
    (tmp_path / "config.json").write_text(json.dumps(config))
    done = subprocess.run(
        [BIN / "dagster", "job", "execute", "-m", "esmr_assets.definitions", "-j", job,
         "-c", tmp_path / "config.json", "--tags", json.dumps({"dagster/partition": key})],
        capture_output=True, text=True, timeout=600, env={"DAGSTER_HOME": str(home), "PATH": str(BIN)},
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "RUN_SUCCESS" in done.stdout + done.stderr
    ours = sorted(p.relative_to(data / "smoke") for p in (data / "smoke").rglob("scenario=baseline/seed=2/*") if p.is_file())
    seed_tables = CELL_ASSETS.resolve(defs.resolve_asset_graph())
    assert {p.parts[0] for p in ours} == {key.to_user_string() for key in seed_tables}  # every asset of the graph
    models = {"tabtransformer.pt", "lightgbm_ranker.txt", "bandit_learners.pt", "q_agents.npz", "deep_agents.zip"}
    assert models <= {p.name for p in ours}
    assert sum(p.name == "part-0.parquet" for p in ours) == len(seed_tables) - len(models)  # and every table
    for rel in ours:  # tables, models and plots
        assert (data / "smoke" / rel).read_bytes() == (in_process / rel).read_bytes(), rel


def test_runs_out_of_the_ui_fork_their_steps_from_a_server_that_preloaded_the_definitions():
    """Every job but the Dask one (and the UI's "Materialize", the implicit asset job) uses
    `step_executor`, whose fork server preloads the module that workspace.yaml loads (a step
    process would otherwise import it again: seconds each); the multiprocess executor's other
    options still reach it from run config."""
    import yaml

    from esmr_assets.definitions import DEFINITIONS_MODULE

    workspace = yaml.safe_load((Path(__file__).parents[2] / "workspace.yaml").read_text())
    assert [entry["python_module"]["module_name"] for entry in workspace["load_from"]] == [DEFINITIONS_MODULE]
    executors = {job.name: defs.resolve_job_def(job.name).executor_def for job in defs.jobs}
    assert executors.pop("esmr_dask_job").name == "dask"
    executors["implicit"] = defs.resolve_implicit_global_asset_job_def().executor_def
    assert {executor.name for executor in executors.values()} == {"step_executor"}
    config = executors["esmr_job"].apply_config_mapping({"config": {"max_concurrent": 1}}).value["config"]
    assert config["max_concurrent"] == 1
    assert config["start_method"]["forkserver"]["preload_modules"] == [DEFINITIONS_MODULE]
    run = {**run_config("smoke", "/tmp/unused"), "execution": {"config": {"max_concurrent": 1}}}
    resolved = dg.validate_run_config(defs.resolve_job_def("esmr_job"), run)["execution"]["step_executor"]
    assert resolved["max_concurrent"] == 1 and resolved["start_method"] == config["start_method"]
    with pytest.raises(dg.DagsterInvalidConfigError, match="max_concurent"):  # a typo is still named
        dg.validate_run_config(defs.resolve_job_def("esmr_job"), {**run, "execution": {"config": {"max_concurent": 1}}})
