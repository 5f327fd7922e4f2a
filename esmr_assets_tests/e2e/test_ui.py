"""The Dagster UI as a person uses it: the webserver and the daemon for `workspace.yaml`
(what `make ui` starts), checked over the webserver's GraphQL API: every asset present and
partitioned by seed, and a `smoke` materialization of one seed launched from the API
running to success through the daemon's run queue."""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import requests

from esmr_assets.definitions import defs
from esmr_assets.orchestration.resources import run_config

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

ASSET_NODES = """
{ assetNodes { assetKey { path } groupName isPartitioned dependencyKeys { path }
  partitionDefinition { type name dimensionTypes { name type dynamicPartitionsDefinitionName } } } }
"""
REPOSITORY = {"repositoryLocationName": "esmr_assets", "repositoryName": "__repository__"}
ADD_PARTITION = """
mutation($repo: RepositorySelector!, $name: String!, $key: String!) {
  addDynamicPartition(repositorySelector: $repo, partitionsDefName: $name, partitionKey: $key) { __typename }
}
"""
LAUNCH = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""
RUN_STATUS = """query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }"""


class GraphQL:
    """The webserver's GraphQL endpoint, as the UI itself calls it."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/graphql"

    def __call__(self, query: str, **variables) -> dict:
        reply = requests.post(self.url, json={"query": query, "variables": variables}, timeout=60)
        reply.raise_for_status()
        body = reply.json()
        assert "errors" not in body, body["errors"]
        return body["data"]


def make_variable(name: str) -> str:
    """A variable of the Makefile, as `make ui` expands it."""
    for line in (REPO / "Makefile").read_text().splitlines():
        if line.startswith(f"{name} :="):
            return line.partition(":=")[2].strip()
    raise AssertionError(f"the Makefile has no {name}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """(GraphQL endpoint, port, data dir) of a webserver and daemon on a fresh instance."""
    home, data = tmp_path_factory.mktemp("dagster_home"), tmp_path_factory.mktemp("ui_data")
    shutil.copy(REPO / "docs" / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "ESMR_DATA_DIR": str(data)}
    port = free_port()
    logs = home / "processes.log"
    initialized = subprocess.run([sys.executable, "-c", make_variable("INIT_INSTANCE")], env=env, capture_output=True,
                                 text=True, timeout=300)  # as `make ui` does: the storage before the processes
    assert initialized.returncode == 0, initialized.stderr[-2000:]
    with open(logs, "w") as log:
        processes = [
            subprocess.Popen([BIN / "dagster-daemon", "run", "-w", "workspace.yaml"], cwd=REPO, env=env,
                             stdout=log, stderr=subprocess.STDOUT),
            subprocess.Popen([BIN / "dagster-webserver", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
                             cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT),
        ]
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    if requests.get(f"http://127.0.0.1:{port}/server_info", timeout=2).ok:
                        break
                except requests.ConnectionError:
                    pass
                assert time.monotonic() < deadline, f"webserver did not come up:\n{logs.read_text()[-3000:]}"
                assert all(p.poll() is None for p in processes), logs.read_text()[-3000:]
                time.sleep(1)
            yield GraphQL(port), port, data
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def listening_addresses(port: int) -> set[str]:
    """Local IPv4/IPv6 addresses (hex, as the kernel lists them) listening on `port`."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_ui_serves_on_localhost_only(ui):
    _, port, _ = ui
    if not Path("/proc/net/tcp").exists():
        pytest.skip("no /proc/net/tcp to read listening sockets from (not Linux)")
    assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1 only, nothing on 0.0.0.0 or ::


def test_every_asset_is_present_and_partitioned_by_cell(ui):
    graphql, _, _ = ui
    nodes = graphql(ASSET_NODES)["assetNodes"]
    served = {"/".join(n["assetKey"]["path"]): n for n in nodes}
    expected = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert set(served) == expected
    for name, node in served.items():
        definition = node["partitionDefinition"]
        if node["groupName"] == "sql":  # cross-cell models
            assert not node["isPartitioned"], name
        elif node["groupName"] == "studies":  # one report per study
            assert definition["type"] == "DYNAMIC" and definition["name"] == "study", name
        else:  # the grid the UI shows: scenario x seed, both dynamic
            assert node["isPartitioned"] and definition["type"] == "MULTIPARTITIONED", name
            assert [(d["name"], d["type"], d["dynamicPartitionsDefinitionName"]) for d in definition["dimensionTypes"]] \
                == [("scenario", "DYNAMIC", "scenario"), ("seed", "DYNAMIC", "seed")], name


def test_lineage_shows_the_models_feeding_their_consumers(ui):
    """Models are asset values, so the UI draws model -> consumer edges."""
    graphql, _, _ = ui
    upstream = {"/".join(n["assetKey"]["path"]): {"/".join(k["path"]) for k in n["dependencyKeys"]}
                for n in graphql(ASSET_NODES)["assetNodes"]}
    assert {"engagement_ranker", "emotion_model", "q_agents", "bandit_learners"} <= upstream["policy_rollouts"]
    assert "emotion_model" in upstream["emotion_predictions"]
    assert {"engagement_ranker", "emotion_model", "bandit_learners"} <= upstream["q_agents"]


@pytest.mark.parametrize("scenario, seed, days", [("baseline", "7", 30), ("ui.days_24", "8", 24)])
def test_a_smoke_cell_launched_over_graphql_succeeds_with_its_scenarios_settings(ui, scenario, seed, days):
    """What the UI's partition picker launches: the baseline cell, and a study scenario's cell
    (registered as `esmr study run` registers it) whose overrides the run applies."""
    from esmr_assets.storage.cells import register_scenario

    graphql, _, data = ui
    if scenario != "baseline":
        register_scenario(data / "smoke", scenario, '{"simulation": {"n_days": 24}}')
    for name, key in (("scenario", scenario), ("seed", seed)):
        added = graphql(ADD_PARTITION, repo=REPOSITORY, name=name, key=key)["addDynamicPartition"]
        assert added["__typename"] == "AddDynamicPartitionSuccess"
    config = run_config("smoke", data)
    tags = {"dagster/partition": f"{scenario}|{seed}", "dagster/partition/scenario": scenario,
            "dagster/partition/seed": seed}
    params = {"selector": {**REPOSITORY, "jobName": "simulation_job"}, "runConfigData": config,
              "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]}}
    launched = graphql(LAUNCH, params=params)["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    deadline, status = time.monotonic() + 300, None
    while time.monotonic() < deadline:
        status = graphql(RUN_STATUS, id=run_id)["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(2)
    assert status == "SUCCESS"
    logs = pl.read_parquet(data / "smoke" / "user_day_logs" / f"scenario={scenario}/seed={seed}" / "part-0.parquet")
    assert logs.height == 60 * days


def chromium() -> str:
    """Debian's chromium, installed with apt-get when missing; skips (saying why) only
    where it cannot be installed."""
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    if not shutil.which("apt-get") or os.geteuid() != 0:
        pytest.skip("Chromium is not installed and apt-get is unavailable or needs root here")
    done = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "chromium"], capture_output=True,
                          text=True, timeout=900, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if done.returncode != 0 or not shutil.which("chromium"):
        pytest.skip(f"Chromium could not be installed with apt-get: {(done.stderr or done.stdout)[-300:]}")
    return shutil.which("chromium")


def rendered_text(browser: str, url: str, profile: Path) -> str:
    """The page's visible text after its JavaScript ran (headless, a window large enough
    that the graph renders every node of the largest group: 2400 px no longer was once the
    policy group had eight assets, 4000 px once it had ten)."""
    page = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         f"--user-data-dir={profile}", "--window-size=6000,6000", "--virtual-time-budget=30000", "--dump-dom", url],
        capture_output=True, text=True, timeout=180,
    )
    assert page.returncode == 0, page.stderr[-2000:]
    html = re.sub(r"<(style|script)[^>]*>.*?</\1>", " ", page.stdout, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_asset_graph_pages_show_every_asset_in_a_real_browser(ui, tmp_path):
    browser = chromium()
    _, port, _ = ui
    graph = defs.resolve_asset_graph()
    groups: dict[str, list[str]] = {}
    for key in graph.get_all_asset_keys():
        groups.setdefault(graph.get(key).group_name, []).append(key.to_user_string())
    overview = rendered_text(browser, f"http://127.0.0.1:{port}/asset-groups", tmp_path / "profile")
    assert "Global asset lineage" in overview and all(group in overview for group in groups)
    for group, names in sorted(groups.items()):
        text = rendered_text(browser, f"http://127.0.0.1:{port}/locations/esmr_assets/asset-groups/{group}/lineage",
                             tmp_path / "profile")
        missing = [name for name in names if f" {name} " not in text]
        assert not missing, f"group {group}: {missing} not on the rendered lineage page"
