"""The whole graph for one `smoke` seed on the Dask executor against a local Dask cluster
(two worker processes): it succeeds and writes the same bytes as the in-process run."""

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from esmr_assets.definitions import CELL_ASSETS, defs
from esmr_assets.resources import run_config
from esmr_assets_tests.conftest import add_cell

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def test_whole_graph_on_a_local_dask_cluster_matches_the_in_process_run(smoke_graph, tmp_path):
    in_process, _ = smoke_graph
    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.from_config(str(home)) as instance:  # Dask needs a persistent instance
        key = add_cell(instance, 2)
    config = {
        **run_config("smoke", data),
        "execution": {"config": {"cluster": {"local": {"n_workers": 2, "threads_per_worker": 1}}}},
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    done = subprocess.run(
        [BIN / "dagster", "job", "execute", "-m", "esmr_assets.definitions", "-j", "esmr_dask_job",
         "-c", tmp_path / "config.json", "--tags", json.dumps({"dagster/partition": key})],
        capture_output=True, text=True, timeout=600, env={"DAGSTER_HOME": str(home), "PATH": str(BIN)},
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "RUN_SUCCESS" in done.stdout + done.stderr
    ours = sorted(p.relative_to(data / "smoke") for p in (data / "smoke").rglob("scenario=baseline/seed=2/*") if p.is_file())
    seed_tables = CELL_ASSETS.resolve(defs.resolve_asset_graph())
    assert {p.parts[0] for p in ours} == {key.to_user_string() for key in seed_tables}  # every asset of the graph
    models = {"tabtransformer.pt", "lightgbm_ranker.txt", "bandit_learners.pt", "q_agents.npz"}
    assert models <= {p.name for p in ours}
    assert sum(p.name == "part-0.parquet" for p in ours) == len(seed_tables) - len(models)  # and every table
    for rel in ours:  # tables, models and plots
        assert (data / "smoke" / rel).read_bytes() == (in_process / rel).read_bytes(), rel
