"""Scheduled re-simulation sweeps (docs/operations.md, sweeps), all off until switched on in the UI
(Automation) or with `dagster schedule start` / `dagster sensor start`:

- `seed_sweep_schedule` grows a study's grid (by default the `baseline` scenario alone) by
  the next seeds it lacks, and launches one `esmr_job` run per cell of the grid that is not
  done and not in flight (new, failed or never launched), selecting only the steps the cell
  cannot reuse from another cell (those it links before asking for the runs). A study's grid
  is its spec's seeds plus every seed its scenarios have begun. Dynamic partitions cannot
  come from a schedule's result, so the schedule adds them through the instance first.
- `sql_models_sensor` runs after every successful `esmr_job` run: it shares what the run
  computed with later cells (`planner.share_run_outputs`) and refreshes the cross-cell SQL
  models (`sql_job`) with that run's preset and data dir.
- `study_reports_sensor` runs after every successful `sql_job` run: it refreshes the
  `study_report` of every study registered under that run's data dir and preset.

Settings come from the environment of the code location: ESMR_SWEEP_CRON (cron, default
"0 3 * * *"), ESMR_SWEEP_SEEDS (seeds per tick, default 3), ESMR_SWEEP_PRESET (default
"paper"), ESMR_SWEEP_STUDY (a study file; its preset wins) and the usual ESMR_DATA_DIR.
"""

import os
from collections.abc import Sequence
from pathlib import Path

import dagster as dg

from ..core.settings import PRESETS, Settings, SettingsError, parse_seed
from ..storage.cells import BASELINE, Cell, parse_cell, register_scenario
from ..storage.files import config_root, resolve_data_dir, storage_root
from ..studies.spec import STUDY_DIR, load_study, register_study
from ..studies.sweeps import next_unused_seeds
from .partitions import cell_key, register_cells, study_partitions
from .planner import adopt_step, in_flight, plan_cell, share_run_outputs
from .resources import run_config


def sweep_settings() -> tuple[str, int, str, str]:
    """(cron, seeds per tick, preset, study file or "") from the environment, validated."""
    cron = os.environ.get("ESMR_SWEEP_CRON", "0 3 * * *")
    count_text = os.environ.get("ESMR_SWEEP_SEEDS", "3")
    preset = os.environ.get("ESMR_SWEEP_PRESET", "paper")
    study = os.environ.get("ESMR_SWEEP_STUDY", "")
    if not count_text.isdigit() or int(count_text) < 1:
        raise SettingsError(f"ESMR_SWEEP_SEEDS must be a positive integer, got {count_text!r}")
    if preset not in PRESETS:
        raise SettingsError(f"ESMR_SWEEP_PRESET must be one of {sorted(PRESETS)}, got {preset!r}")
    if study:
        preset = load_study(study).preset  # validated now, at code load, not at the first tick
    return cron, int(count_text), preset, study


def _register_grid(study_path: str, root: Path, instance: dg.DagsterInstance) -> tuple[list[tuple[str, Settings]], list[int]]:
    """Register the swept grid's scenarios under `root` (and a study's report partition);
    return (scenario name, settings) of each and the seeds the spec asks for (none for the
    baseline)."""
    if not study_path:
        return [(BASELINE, register_scenario(root, BASELINE))], []
    study = load_study(study_path)
    register_study(root, study)
    instance.add_dynamic_partitions(study_partitions.name, [study.name])
    return [(study.cell_scenario(scenario), scenario.settings) for scenario in study.scenarios], list(study.seeds)


def begun_cells(instance: dg.DagsterInstance, root: Path, first_asset: Sequence[str],
                scenarios: Sequence[str]) -> tuple[set[int], set[Cell]]:
    """(the seeds any of `scenarios` has begun: a folder of its first asset on disk or a run of
    any status in the instance, the cells with a run in flight)."""
    seeds, flying = set(), set()
    for scenario in scenarios:
        for folder in Path(root).joinpath(*first_asset, f"scenario={scenario}").glob("seed=*"):
            try:
                seeds.add(parse_seed(folder.name.removeprefix("seed=")))
            except SettingsError:
                continue  # not a cell's folder
        for run in instance.get_runs(dg.RunsFilter(tags={"dagster/partition/scenario": scenario})):
            try:
                cell = parse_cell(run.tags.get("dagster/partition", ""))
            except SettingsError:
                continue
            seeds.add(cell.seed)
            if in_flight(run):
                flying.add(cell)
    return seeds, flying


def build_sweep_schedule(defs_steps, job, cron: str, seeds_per_tick: int, preset: str, study: str = ""):
    """`defs_steps()` gives the partitioned steps of the graph (`runner.plan_steps`), lazily:
    the schedule is built while the Definitions that hold it are being built."""
    config = run_config(preset)
    what = f"study {study}" if study else "the baseline scenario"

    @dg.schedule(
        name="seed_sweep_schedule",
        cron_schedule=cron,
        job=job,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=f"Every tick ({cron}): add the next {seeds_per_tick} seeds {what} lacks to its grid and run "
        f"every cell of the grid not done and not in flight (new, failed or never launched) at the {preset!r} "
        "preset, reusing what other cells computed.",
    )
    def seed_sweep_schedule(context: dg.ScheduleEvaluationContext):
        root = storage_root(resolve_data_dir(), preset)
        steps = defs_steps()
        scenarios, spec_seeds = _register_grid(study, root, context.instance)
        begun, flying = begun_cells(context.instance, root, steps[0].asset_keys[0].path, [name for name, _ in scenarios])
        new = next_unused_seeds(set(spec_seeds) | begun, seeds_per_tick)
        cells = [(Cell(name, seed), settings) for name, settings in scenarios
                 for seed in sorted(set(spec_seeds) | begun | set(new))]
        register_cells(context.instance, [cell for cell, _ in cells])
        context.log.info(f"added seeds {', '.join(map(str, new))} to {what}")
        requests = []
        for cell, settings in cells:
            if cell in flying:
                continue
            plan = plan_cell(root, steps, cell, settings)
            for step in plan.reusable:
                adopt_step(root, plan, step, context.instance)
            selection = [key for step in plan.to_compute for key in step.asset_keys]
            if selection:  # a schedule's run keys are unique per tick: a failed cell is asked for again next tick
                requests.append(dg.RunRequest(run_key=f"cell-{cell.key}", partition_key=cell_key(cell),
                                              run_config=config, asset_selection=selection))
        return requests

    return seed_sweep_schedule


def _esmr_resource(run: dg.DagsterRun) -> dict:
    """The run's `esmr` resource config: what a sensor's follow-up runs are launched with."""
    return run.run_config.get("resources", {}).get("esmr", {})


def build_sql_models_sensor(defs_steps, seed_job, sql_job) -> dg.RunStatusSensorDefinition:
    @dg.run_status_sensor(
        name="sql_models_sensor",
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[seed_job],
        request_job=sql_job,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="After every successful cell run: share what it computed with later cells, and "
        "refresh the cross-cell SQL models.",
    )
    def sql_models_sensor(context: dg.RunStatusSensorContext):
        esmr = _esmr_resource(context.dagster_run)
        share_run_outputs(context.dagster_run, defs_steps(), esmr.get("config", {}))
        return dg.RunRequest(run_key=f"after-{context.dagster_run.run_id}", run_config={"resources": {"esmr": esmr}})

    return sql_models_sensor


def build_study_reports_sensor(sql_job, study_report_job) -> dg.RunStatusSensorDefinition:
    @dg.run_status_sensor(
        name="study_reports_sensor",
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[sql_job],
        request_job=study_report_job,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="After the SQL models refresh: refresh the report of every study registered in that run's "
        "data dir and preset, so a study grown by the schedule shows its current table.",
    )
    def study_reports_sensor(context: dg.RunStatusSensorContext):
        esmr = _esmr_resource(context.dagster_run)
        root = config_root(esmr.get("config", {}))
        names = [name for name in context.instance.get_dynamic_partitions(study_partitions.name)
                 if (root / STUDY_DIR / f"{name}.toml").is_file()]
        return [dg.RunRequest(run_key=f"after-{context.dagster_run.run_id}-{name}", partition_key=name,
                              run_config={"resources": {"esmr": esmr}}) for name in names]

    return study_reports_sensor
