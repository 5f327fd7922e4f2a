"""Scheduled re-simulation sweeps (DESIGN §8), both off until switched on in the UI
(Automation) or with `dagster schedule start` / `dagster sensor start`:

- `seed_sweep_schedule` adds the next unused seeds to a study's grid (by default the
  `baseline` scenario alone) and launches one `esmr_job` run per new cell, selecting only
  the steps the cell cannot reuse from another cell (those it links before asking for the
  runs). Dynamic partitions cannot come from a schedule's result, so the schedule adds them
  through the instance first.
- `sql_models_sensor` runs after every successful `esmr_job` run: it shares what the run
  computed with later cells (`planner.share_run_outputs`) and refreshes the cross-cell SQL
  models (`sql_job`) with that run's preset and data dir.

Settings come from the environment of the code location: ESMR_SWEEP_CRON (cron, default
"0 3 * * *"), ESMR_SWEEP_SEEDS (seeds per tick, default 3), ESMR_SWEEP_PRESET (default
"paper"), ESMR_SWEEP_STUDY (a study file; its preset wins) and the usual ESMR_DATA_DIR.
"""

import os

import dagster as dg

from .cells import BASELINE, Cell, register_scenario
from .partitions import cell_key, seed_partitions
from .resources import run_config
from .settings import PRESETS, SettingsError
from .storage import resolve_data_dir, storage_root
from .studies import load_study, register_study
from .sweeps import next_unused_seeds


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


def _scenarios(study_path: str, root) -> list[tuple[str, object]]:
    """(scenario name, settings) of the swept grid's scenarios, registered under `root`."""
    if not study_path:
        return [(BASELINE, register_scenario(root, BASELINE))]
    study = load_study(study_path)
    register_study(root, study)
    return [(study.cell_scenario(scenario), scenario.settings) for scenario in study.scenarios]


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
        description=f"Every tick ({cron}): add the next {seeds_per_tick} unused seeds to {what} and run "
        f"every new cell at the {preset!r} preset, reusing what other cells computed.",
    )
    def seed_sweep_schedule(context: dg.ScheduleEvaluationContext):
        from .planner import adopt_step, plan_cell

        root = storage_root(resolve_data_dir(), preset)
        scenarios = _scenarios(study, root)
        registered = context.instance.get_dynamic_partitions(seed_partitions.name)
        seeds = next_unused_seeds(registered, seeds_per_tick)
        cells = [(Cell(name, seed), settings) for name, settings in scenarios for seed in seeds]
        from .partitions import register_cells

        register_cells(context.instance, [cell for cell, _ in cells])
        context.log.info(f"registered seeds {', '.join(map(str, seeds))} for {what}")
        requests = []
        for cell, settings in cells:
            plan = plan_cell(root, defs_steps(), cell, settings)
            for step in plan.reusable:
                adopt_step(root, plan, step, context.instance)
            selection = [key for step in plan.to_compute for key in step.asset_keys]
            if selection:
                requests.append(dg.RunRequest(run_key=f"cell-{cell.key}", partition_key=cell_key(cell),
                                              run_config=config, asset_selection=selection))
        return requests

    return seed_sweep_schedule


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
        from .planner import share_run_outputs

        esmr = context.dagster_run.run_config.get("resources", {}).get("esmr", {})
        share_run_outputs(context.dagster_run, defs_steps(), esmr.get("config", {}))
        return dg.RunRequest(run_key=f"after-{context.dagster_run.run_id}", run_config={"resources": {"esmr": esmr}})

    return sql_models_sensor
