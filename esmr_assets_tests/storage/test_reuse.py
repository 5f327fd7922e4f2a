"""Reuse on the toy graph (no settings declared, so two scenarios agree on every key): the
second scenario links the first's outputs and records them without a run; a write through
the IO manager drops a cell's key; recomputing clears stale files; a run launched outside
the planner is shared only on inputs known to be current; the real graph's keys follow the
settings each asset declares."""

import dagster as dg
import pytest

from esmr_assets.core.settings import load_settings
from esmr_assets.orchestration.partitions import register_cells
from esmr_assets.orchestration.planner import (
    materialize_cells,
    plan_cell,
    share_run_outputs,
    step_keys,
)
from esmr_assets.orchestration.resources import run_config
from esmr_assets.orchestration.runner import plan_steps
from esmr_assets.storage import reuse
from esmr_assets.storage.cells import Cell, register_scenario

TOY = ("numbers", "parity", "doubled")


@pytest.fixture
def toy(toy_defs, data_dir, instance):
    """(defs, steps, root, run): run(cells) brings `cells` up to date with materialize_cells."""
    defs = toy_defs(*TOY)
    steps = [step for step in plan_steps(defs) if step.partitioned]
    root = data_dir / "paper"
    settings = register_scenario(root, "other", '{"policy": {"alpha": 0.5}}')

    def run(*cells: Cell):
        return materialize_cells(defs, steps, [(cell, settings) for cell in cells], root, run_config("paper", data_dir),
                                 instance)

    return defs, steps, root, run


def test_a_second_scenario_links_what_the_first_computed(toy, instance):
    _, steps, root, run = toy
    first, second = Cell("baseline", 1), Cell("other", 1)
    computed = run(first)[first]
    assert all(isinstance(computed[step.label], float) for step in steps)

    reused = run(second)[second]
    assert all(reused[step.label] == "reused" for step in steps)
    for name in ("numbers", "evens", "odds", "doubled"):
        mine = root / name / "scenario=other" / "seed=1" / "part-0.parquet"
        assert mine.stat().st_ino == (root / name / "scenario=baseline" / "seed=1" / "part-0.parquet").stat().st_ino
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(name), asset_partitions=["other|1"]), limit=5).records
        assert len(records) == 1 and records[0].run_id == ""  # recorded, without a run
    assert len(instance.get_runs()) == 1  # the first cell's only
    assert all(v == "current" for k, v in run(first, second)[second].items() if k in {s.label for s in steps})


def test_a_write_through_the_io_manager_drops_the_key_and_recomputing_clears_stale_files(toy, materialize):
    _, steps, root, run = toy
    cell = Cell("baseline", 2)
    run(cell)
    folder = root / "numbers" / "scenario=baseline" / "seed=2"
    assert (folder / reuse.KEY_FILE).is_file()
    assert materialize(("numbers",), 2).success  # a run launched outside the planner
    assert not (folder / reuse.KEY_FILE).exists()
    (folder / "stale.txt").write_text("another definition's")
    plan = plan_cell(root, steps, cell, load_settings("paper"))
    assert [step.op_name for step in plan.reusable] == ["numbers"]  # parity, doubled: their keys still hold
    run(cell)  # linked back from the shared output, which has no stale file
    assert sorted(p.name for p in folder.iterdir()) == [reuse.KEY_FILE, reuse.RECORD_FILE, "part-0.parquet"]

    key = step_keys(steps, load_settings("paper"), 2)["numbers"]
    for path in (root / "_shared" / "numbers" / key).iterdir():
        path.unlink()
    (root / "_shared" / "numbers" / key).rmdir()
    (folder / reuse.KEY_FILE).unlink()
    (folder / "stale.txt").write_text("another definition's")
    assert [step.op_name for step in plan_cell(root, steps, cell, load_settings("paper")).to_compute] == ["numbers"]
    run(cell)  # recomputed: the stale file is cleared first, so it is not shared either
    assert sorted(p.name for p in folder.iterdir()) == [reuse.KEY_FILE, reuse.RECORD_FILE, "part-0.parquet"]
    assert sorted(p.name for p in (root / "_shared" / "numbers" / key).iterdir()) == [
        reuse.KEY_FILE, reuse.RECORD_FILE, reuse.SECONDS_FILE, "part-0.parquet"]


def test_a_run_outside_the_planner_is_shared_only_on_current_inputs(toy, materialize, data_dir, instance):
    _, steps, root, _ = toy
    cell = Cell("baseline", 3)
    register_cells(instance, [cell])
    config = run_config("paper", data_dir)["resources"]["esmr"]["config"]
    only_doubled = dg.DagsterRun(job_name="__ASSET_JOB", run_id="r1", tags={"dagster/partition": cell.key},
                                 asset_selection=frozenset({dg.AssetKey("doubled")}))
    assert materialize(TOY, 3).success
    assert share_run_outputs(only_doubled, steps, config) == []  # numbers has no key: doubled's input is unknown

    everything = dg.DagsterRun(job_name="__ASSET_JOB", run_id="r2", tags={"dagster/partition": cell.key})
    assert share_run_outputs(everything, steps, config) == ["numbers", "parity", "doubled"]
    assert plan_cell(root, steps, cell, load_settings("paper")).to_compute == ()


def test_keys_follow_the_settings_each_asset_declares():
    from esmr_assets.definitions import cell_steps

    base = step_keys(cell_steps(), load_settings("paper"), 0)
    alpha = step_keys(cell_steps(), load_settings("paper", {"policy": {"alpha": 0.5}}), 0)
    signal = step_keys(cell_steps(), load_settings("paper", {"simulation": {"emotion_signal": 0.5}}), 0)
    other_seed = step_keys(cell_steps(), load_settings("paper"), 1)
    changed = {op for op in base if base[op] != alpha[op]}
    assert changed == {"agent_training", "deep_agent_training", "policy_rollouts", "action_shares", "evaluation_metrics",
                       "user_metrics",
                       "policy_effects", "style_effects"}
    assert {op for op in base if base[op] == signal[op]} == {"videos"}  # the content pool reads n_videos only
    assert all(base[op] != other_seed[op] for op in base)


@pytest.mark.parametrize("overrides, recomputed", [
    # the deep learners: only their own stage and what follows the rollouts; the tabular agents stay
    ({"deep_learners": ["ppo_esmr"], "deep_budget": 10.0}, {"deep_agent_training", "policy_rollouts"}),
    # how the tabular agents learn: the agents, and the rollouts only through them
    ({"epochs": 30}, {"agent_training", "deep_agent_training", "policy_rollouts"}),
])
def test_a_stage_recomputes_only_for_what_it_or_its_inputs_read(overrides, recomputed):
    from esmr_assets.definitions import cell_steps

    base = step_keys(cell_steps(), load_settings("paper"), 0)
    changed = step_keys(cell_steps(), load_settings("paper", {"policy": overrides}), 0)
    evaluation = {"action_shares", "evaluation_metrics", "user_metrics", "policy_effects", "style_effects"}
    assert {op for op in base if base[op] != changed[op]} == recomputed | evaluation


def test_a_code_version_is_part_of_the_key_of_its_step_and_every_later_one(toy_defs):
    """Bumping an asset's Dagster code_version retires its shared outputs and its dependents'."""
    import polars as pl

    from esmr_assets.orchestration.partitions import cell_partitions

    @dg.asset(partitions_def=cell_partitions, code_version="2")
    def numbers() -> pl.DataFrame:
        return pl.DataFrame({"n": [1]})

    plain = [s for s in plan_steps(toy_defs(*TOY)) if s.partitioned]
    versioned_defs = dg.Definitions(assets=[numbers, *[a for a in toy_defs("parity", "doubled").assets]],
                                    resources=toy_defs(*TOY).resources)
    versioned = [s for s in plan_steps(versioned_defs) if s.partitioned]
    assert [s.code_version for s in versioned] == ["2", None, None]
    before, after = step_keys(plain, load_settings("paper"), 0), step_keys(versioned, load_settings("paper"), 0)
    assert all(before[op] != after[op] for op in before)  # numbers, and parity and doubled after it
    assert step_keys(plain, load_settings("paper"), 0) == before  # unversioned: unchanged


def test_keys_hold_only_what_differs_from_the_defaults():
    """So a setting added later with a default that changes nothing keeps every key."""
    paper, smoke = load_settings("paper"), load_settings("smoke")
    assert reuse.declared_values(paper, ["simulation", "policy.alpha"]) == {"simulation": {}}
    assert reuse.declared_values(smoke, ["simulation", "policy.epochs"]) == {
        "simulation": {"n_videos": 160, "n_users": 60, "feed_length": 120}, "policy.epochs": 3}
    alpha = load_settings("paper", {"policy": {"alpha": 0.5}})
    assert reuse.declared_values(alpha, ["policy.alpha"]) == {"policy.alpha": 0.5}
    assert reuse.declared_values(load_settings("paper", {"policy": {"alpha": 1.0}}), ["policy"]) == {"policy": {}}


def test_each_finished_cell_is_reported_before_the_next_one_starts(toy, data_dir, instance):
    """`on_cell` follows every finished cell with its outcome: a run stopped in a later cell
    (here by the callback itself) has already reported the cells it finished."""
    defs, steps, root, _ = toy
    first, second = Cell("baseline", 3), Cell("baseline", 4)
    reported = []

    class Stopped(Exception):
        pass

    def on_cell(cell, outcome):
        reported.append((cell, dict(outcome)))
        raise Stopped

    with pytest.raises(Stopped):
        materialize_cells(defs, steps, [(first, load_settings("paper")), (second, load_settings("paper"))], root,
                          run_config("paper", data_dir), instance, on_cell=on_cell)
    ((cell, outcome),) = reported
    assert cell == first and all(isinstance(outcome[step.label], float) for step in steps)
    assert (root / "numbers" / "scenario=baseline" / "seed=3" / reuse.KEY_FILE).is_file()
    assert not (root / "numbers" / "scenario=baseline" / "seed=4").exists()
