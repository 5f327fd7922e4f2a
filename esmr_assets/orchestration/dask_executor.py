"""Dask executor for partitioned (cell) runs.

dagster-dask 0.29.27's executor hands each step's arguments to `Client.submit` as they are,
and Dask walks tuples in task arguments looking for futures. Since Dagster 1.11 a
partitioned run's `DagsterRun` (a named tuple) carries a partitions subset that refuses
iteration, so every seed run failed before its first step ("Iteration is not allowed on
@record"). This executor is dagster-dask's, except that everything but the dependency
futures travels inside one opaque object.
"""

import dagster as dg
import dask.distributed
from dagster_dask.executor import (
    DaskExecutor,
    dask_executor,
    get_dask_resource_requirements,
    query_on_dask_worker,
)


class _Opaque:
    """Arguments Dask must not look into."""

    def __init__(self, *args) -> None:
        self.args = args


def _run_steps(dependencies, payload: _Opaque):
    return query_on_dask_worker(dependencies, *payload.args)


class SeedDaskExecutor(DaskExecutor):
    """dagster-dask's executor on a local or an existing cluster, partition-safe."""

    def execute(self, plan_context, execution_plan):
        if self.cluster_type == "existing":
            cluster = self.cluster_configuration["address"]
        elif self.cluster_type == "local":
            cluster = dask.distributed.LocalCluster(**self.build_dict(plan_context.job_name))
        else:
            raise ValueError(f"cluster {self.cluster_type!r}: only 'local' and 'existing' are supported")
        if not plan_context.instance.is_persistent:
            raise dg.DagsterInvariantViolationError("Dask execution requires a persistent DagsterInstance")
        with dask.distributed.Client(cluster) as client:
            futures = {}
            for level in execution_plan.get_steps_to_execute_by_level():
                for step in level:
                    dependencies = [futures[key] for step_input in step.step_inputs for key in step_input.dependency_keys]
                    payload = _Opaque(
                        plan_context.reconstructable_job,
                        plan_context.dagster_run,
                        plan_context.run_config,
                        [step.key],
                        plan_context.instance.get_ref(),
                        execution_plan.known_state,
                    )
                    futures[step.key] = client.submit(
                        _run_steps, dependencies, payload, key=f"{plan_context.job_name}.{step.key}",
                        resources=get_dask_resource_requirements(step.tags),
                    )
            for _, events in dask.distributed.as_completed(list(futures.values()), with_results=True):
                yield from events


@dg.executor(name="dask", config_schema=dask_executor.config_schema, requirements=dg.multiple_process_executor_requirements())
def seed_dask_executor(init_context):
    """dagster-dask's `dask_executor` configuration (cluster: local / existing, ...)."""
    ((cluster_type, cluster_configuration),) = init_context.executor_config["cluster"].items()
    return SeedDaskExecutor(cluster_type, cluster_configuration)
