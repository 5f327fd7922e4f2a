"""Every asset declares the settings it reads (`resources.reads`), and reads nothing else:
`EsmrConfig.settings_for` hands it only what it declared, so a short declaration fails the
run instead of silently letting two scenarios share an output they should not."""

import re

import dagster as dg
import polars as pl
import pytest

from esmr_assets.core.settings import SettingsView, UndeclaredSettingError, load_settings
from esmr_assets.orchestration.partitions import cell_partitions
from esmr_assets.orchestration.resources import SETTINGS_READ, EsmrConfig, reads, run_config
from esmr_assets.policy.loop.inputs import LoopInputs
from esmr_assets_tests.conftest import add_cell


def test_every_partitioned_asset_of_the_graph_declares_its_settings():
    from esmr_assets.definitions import defs

    undeclared = [
        key.to_user_string()
        for assets_def in defs.resolve_asset_graph().assets_defs
        if assets_def.partitions_def is not None
        for key, spec in assets_def.specs_by_key.items()
        if SETTINGS_READ not in spec.metadata
    ]
    assert undeclared == []


def test_a_view_hands_out_what_was_declared_and_refuses_the_rest():
    view = SettingsView(load_settings("smoke"), ["simulation", "policy.alpha"], "toy")
    assert view.simulation.n_users == 60 and view.policy.alpha == 1.0 and view.preset == "smoke"
    with pytest.raises(UndeclaredSettingError, match=r"toy reads settings\.policy\.beta"):
        view.policy.beta
    with pytest.raises(UndeclaredSettingError, match=r"toy reads settings\.emotion"):
        view.emotion
    with pytest.raises(ValueError, match="policy has no setting 'alhpa'"):
        reads("policy.alhpa")
    with pytest.raises(ValueError, match="no settings section 'policies'"):
        reads("policies")


@dg.asset(partitions_def=cell_partitions, metadata=reads("simulation.n_users"))
def sneaky(context: dg.AssetExecutionContext, esmr: EsmrConfig) -> None:
    esmr.settings_for(context).policy.alpha  # not declared


@dg.asset(partitions_def=cell_partitions)
def silent(context: dg.AssetExecutionContext, esmr: EsmrConfig) -> None:
    esmr.settings_for(context)  # declares nothing at all


@pytest.mark.parametrize("asset, message", [
    (sneaky, r"sneaky reads settings\.policy without declaring it"),
    (silent, r"asset silent does not declare the settings it reads"),
])
def test_a_run_reading_an_undeclared_setting_fails_naming_it(tmp_path, asset, message, failure_text):
    with dg.instance_for_test() as instance:
        key = add_cell(instance, 0)
        result = dg.materialize([asset], instance=instance, partition_key=key, raise_on_error=False,
                                resources={"esmr": EsmrConfig.configure_at_launch()},
                                run_config=run_config("smoke", tmp_path))
    assert not result.success
    assert re.search(message, failure_text(result))


def _declared(asset: str) -> list[str]:
    from esmr_assets.definitions import defs

    spec = next(a.specs_by_key[k] for a in defs.resolve_asset_graph().assets_defs for k in a.keys
                if k.to_user_string() == asset)
    value = spec.metadata[SETTINGS_READ]
    return value.value if isinstance(value, dg.MetadataValue) else value


def test_the_policy_stage_reads_only_what_it_declares_under_every_variant(logged_world, threshold_model):
    """The policy stage's domain functions, handed only their assets' declared settings, with
    the non-default paths switched on (replicates, the last-bucket state, next-day credit, a
    decaying step, a responsive session, a sampled ranker, the pooled DAG, the deep learners,
    the planner): none reads more."""
    from esmr_assets.core.rng import stream
    from esmr_assets.policy.loop.rollouts import run_rollouts
    from esmr_assets.policy.training.deep import fit_deep_agents
    from esmr_assets.policy.training.stage import (
        choose_heuristic_buckets,
        fit_agents,
        fit_bandits,
        fit_ranker,
    )
    from esmr_assets.sim.content import simulate_videos
    from esmr_assets.sim.validation import check_videos

    settings = load_settings("smoke", {
        "simulation": {"n_days": 5, "session_response": 0.5},
        "policy": {"epochs": 1, "igl_epochs": 1, "agent_replicates": 2, "state_last_bucket": True,
                   "reward_timing": "next_day", "learning_rate_decay": 0.8, "ranker_max_users": 40,
                   "deep_learners": ["dqn_esmr", "ppo_emotion"]},
        "causal": {"method": "pooled"}, "evaluation": {"planner_horizon": 2},
    }, whole_graph=False)

    def view(asset: str) -> SettingsView:
        return SettingsView(settings, _declared(asset), asset)

    impressions, logs, predictions, videos, users = logged_world(settings.simulation, 6)
    check_videos(simulate_videos(view("videos").simulation.n_videos, stream(6, "videos")), view("videos").simulation)
    ranker = fit_ranker(impressions, logs, predictions, videos, users, view("engagement_ranker"), 6)
    bandits = fit_bandits(LoopInputs(videos, users, impressions, ranker, threshold_model, view("bandit_learners"), 6))
    no_parents = pl.DataFrame(schema={"user_id": pl.Int32, "target": pl.String, "parent": pl.String, "weight": pl.Float64})
    agents = fit_agents(LoopInputs(videos, users, impressions, ranker, threshold_model, view("q_agents"), 6), no_parents,
                        learners=bandits.learners)
    assert "esmr@1" in agents.agents
    buckets = choose_heuristic_buckets(LoopInputs(videos, users, impressions, ranker, threshold_model, view("heuristic_buckets"), 6))
    chosen = dict(buckets.filter(pl.col("chosen")).select("policy", "bucket").iter_rows())
    deep = fit_deep_agents(LoopInputs(videos, users, impressions, ranker, threshold_model, view("deep_agents"), 6),
                           no_parents)
    rollouts = run_rollouts(LoopInputs(videos, users, impressions, ranker, threshold_model, view("policy_rollouts"), 6),
                            agents.agents, learners=bandits.learners, heuristic_buckets=chosen, deep_agents=deep.agents)
    assert {"esmr@1", "hybrid_best_fixed", "igl_p3", "dqn_esmr", "ppo_emotion", "oracle_planner"} <= set(rollouts["policy"])


def test_the_closed_loop_steps_name_the_modules_of_their_jobs():
    """The planner starts workers for these steps, importing the modules they name."""
    import importlib

    from esmr_assets.definitions import defs
    from esmr_assets.orchestration.runner import plan_steps

    tagged = {step.label: step.job_modules for step in plan_steps(defs) if step.job_modules}
    assert set(tagged) == {"bandit_coefficients, bandit_learners", "heuristic_buckets", "deep_agents, deep_learning_curve",
                           "q_agents, q_learning_curve, q_table", "policy_rollouts"}
    for modules in tagged.values():
        for module in modules:
            importlib.import_module(module)
