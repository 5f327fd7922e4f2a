"""Scheduled re-simulation sweeps (DESIGN §8), both off until switched on in the UI
(Automation) or with `dagster schedule start` / `dagster sensor start`:

- `seed_sweep_schedule` registers the next unused seeds as partitions and launches one
  `esmr_job` run per new seed. Dynamic partitions cannot come from a schedule's result, so
  the schedule adds them through the instance before asking for the runs.
- `sql_models_sensor` refreshes the cross-seed SQL models (`sql_job`) whenever a seed run
  of `esmr_job` succeeds, with that run's preset and data dir.

Settings come from the environment of the code location: ESMR_SWEEP_CRON (cron, default
"0 3 * * *"), ESMR_SWEEP_SEEDS (seeds per tick, default 3), ESMR_SWEEP_PRESET (default
"paper") and the usual ESMR_DATA_DIR.
"""

import os

import dagster as dg

from .partitions import seed_partitions
from .resources import run_config
from .settings import PRESETS, SettingsError
from .sweeps import next_unused_seeds


def sweep_settings() -> tuple[str, int, str]:
    """(cron, seeds per tick, preset) from the environment, validated."""
    cron = os.environ.get("ESMR_SWEEP_CRON", "0 3 * * *")
    count_text = os.environ.get("ESMR_SWEEP_SEEDS", "3")
    preset = os.environ.get("ESMR_SWEEP_PRESET", "paper")
    if not count_text.isdigit() or int(count_text) < 1:
        raise SettingsError(f"ESMR_SWEEP_SEEDS must be a positive integer, got {count_text!r}")
    if preset not in PRESETS:
        raise SettingsError(f"ESMR_SWEEP_PRESET must be one of {sorted(PRESETS)}, got {preset!r}")
    return cron, int(count_text), preset


def build_sweep_schedule(job, cron: str, seeds_per_tick: int, preset: str) -> dg.ScheduleDefinition:
    config = run_config(preset)

    @dg.schedule(
        name="seed_sweep_schedule",
        cron_schedule=cron,
        job=job,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=f"Every tick ({cron}): register the next {seeds_per_tick} unused seeds and run the "
        f"whole graph for each at the {preset!r} preset.",
    )
    def seed_sweep_schedule(context: dg.ScheduleEvaluationContext):
        registered = context.instance.get_dynamic_partitions(seed_partitions.name)
        seeds = [str(seed) for seed in next_unused_seeds(registered, seeds_per_tick)]
        context.instance.add_dynamic_partitions(seed_partitions.name, seeds)
        context.log.info(f"registered seeds {', '.join(seeds)}")
        return [dg.RunRequest(run_key=f"seed-{seed}", partition_key=seed, run_config=config) for seed in seeds]

    return seed_sweep_schedule


def build_sql_models_sensor(seed_job, sql_job) -> dg.RunStatusSensorDefinition:
    @dg.run_status_sensor(
        name="sql_models_sensor",
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[seed_job],
        request_job=sql_job,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Refresh the cross-seed SQL models after every successful seed run.",
    )
    def sql_models_sensor(context: dg.RunStatusSensorContext):
        esmr = context.dagster_run.run_config.get("resources", {}).get("esmr", {})
        return dg.RunRequest(run_key=f"after-{context.dagster_run.run_id}", run_config={"resources": {"esmr": esmr}})

    return sql_models_sensor
