"""The policy registry: one entry per policy, resolvable, with the fixed stream keys that
keep every earlier policy's random numbers where they were."""

import dataclasses

import pytest

from esmr_assets.policy.loop import registry
from esmr_assets.policy.loop.rollouts import Artifacts, build_policy


def test_every_entry_names_a_class_that_builds_and_acts():
    import importlib

    for spec in registry.POLICIES:
        module, name = spec.acts_with.split(":")
        cls = getattr(importlib.import_module(f"esmr_assets.policy.loop.{module}"), name)
        assert callable(getattr(cls, "from_artifacts", None)) and callable(getattr(cls, "act", None)), spec.name


def test_stream_keys_are_fixed():
    """Changing one would change that policy's draws, and so the stored results."""
    keys = {spec.name: spec.stream_key for spec in registry.POLICIES}
    assert keys == {"lightgbm": 1, "esmr": 2, "esmr_no_emotion": 3, "esmr_no_engagement": 4, "random": 5,
                    "igl_p3": 6, "igl_p2": 7, "cb_like": 8, "cb_comment": 9, "esmr_igl": 10, "oracle_esmr": 11,
                    "oracle_best_feed": 12, "hybrid_fixed_happy": 13, "always_happy": 14, "hybrid_best_fixed": 15,
                    "dqn_esmr": 16, "ppo_esmr": 17, "ppo_engagement": 18, "ppo_emotion": 19, "oracle_planner": 20}


def test_agents_and_bandits_come_from_the_entries():
    assert registry.AGENTS == ("esmr", "esmr_no_emotion", "esmr_no_engagement", "esmr_igl", "oracle_esmr")
    assert registry.BANDITS == ("igl_p3", "igl_p2", "cb_like", "cb_comment")
    assert all(registry.spec(name).learns_online for name in registry.BANDITS)
    assert not any(spec.learns_online for spec in registry.POLICIES if spec.name not in registry.BANDITS)
    with pytest.raises(ValueError, match="unknown policy 'nope'"):
        registry.spec("nope")


def test_a_policy_without_its_trained_model_is_left_out():
    artifacts = Artifacts(feeds=None, agents={}, learners={}, settings=None, seed=0)
    assert build_policy(registry.spec("esmr"), artifacts) is None
    assert build_policy(registry.spec("cb_like"), artifacts) is None
    assert build_policy(registry.spec("hybrid_best_fixed"), artifacts) is None  # no bucket chosen yet


@pytest.mark.parametrize("change, message", [
    ({"name": "oracle_peek"}, "oracle_"),  # named as an oracle without reading the latent state
    ({"reads_latent": True}, "oracle_"),  # reads it without the name
    ({"stream_key": 1}, "unique"),  # another policy's stream
    ({"name": "random@2"}, "replicates"),  # the mark of a training replicate
])
def test_the_registry_refuses_inconsistent_entries(monkeypatch, change, message):
    extra = dataclasses.replace(registry.spec("random"), name="random_2", stream_key=99)
    extra = dataclasses.replace(extra, **change)
    monkeypatch.setattr(registry, "BY_NAME", {**registry.BY_NAME, extra.name: extra})
    with pytest.raises(ValueError, match=message):
        registry._check((*registry.POLICIES, extra))


def test_replicates_follow_their_agent_and_resolve_to_its_entry():
    specs = registry.with_replicates(("esmr", "oracle_esmr"), 3)
    names = [spec.name for spec in specs]
    assert names[names.index("esmr"):names.index("esmr") + 3] == ["esmr", "esmr@1", "esmr@2"]
    assert names[-5:] == ["oracle_esmr", "oracle_esmr@1", "oracle_esmr@2", "oracle_best_feed", "oracle_planner"]
    assert len(names) == len(registry.POLICIES) + 4
    assert [spec.name for spec in registry.with_replicates(("esmr",), 1)] == list(registry.POLICY_NAMES)
    replicate = specs[names.index("esmr@2")]
    assert dataclasses.replace(replicate, name="esmr") == registry.spec("esmr")  # the same entry, renamed
    assert registry.base_name("oracle_esmr@2") == "oracle_esmr" and registry.base_name("esmr@all") == "esmr"
    assert registry.is_oracle("oracle_esmr@1") and not registry.is_oracle("esmr@1")
    assert registry.label_sources("oracle_esmr@1") == ("true",)
    with pytest.raises(ValueError, match="only agents"):
        registry.with_replicates(("lightgbm",), 2)


def test_policies_from_outside_the_package_are_checked_before_they_join(monkeypatch):
    from esmr_assets.core.settings import SettingsError, load_settings

    monkeypatch.setattr(registry, "_PLUGINS", {})
    outside = registry.PolicySpec("mine", "my_package.policy:Mine", 1001, "an outside policy")
    for bad, reason in ((dataclasses.replace(outside, stream_key=40), "stream keys below"),
                        (dataclasses.replace(outside, acts_with="policies:Mine"), "absolute"),
                        (dataclasses.replace(outside, heuristic=registry.HeuristicSpec("happy")), "trains nothing"),
                        (dataclasses.replace(outside, name="lightgbm"), "unique"),
                        (dataclasses.replace(outside, name="oracle_mine"), "oracle_")):
        with pytest.raises(ValueError, match=reason):
            registry.register(bad)
    registry.register(outside)
    registry.register(outside)  # again: nothing changes
    assert registry.registered_names()[-1] == "mine" and registry.spec("mine") is outside
    assert not registry.is_oracle("mine")
    # A cell runs the outside policies of the modules its settings name, whatever its process imported.
    assert "mine" in [p.name for p in registry.with_replicates(("esmr",), 1, ("my_package",))]
    assert "mine" in [p.name for p in registry.with_replicates(("esmr",), 1, ("my_package.policy",))]
    assert "mine" not in [p.name for p in registry.with_replicates(("esmr",), 1)]
    assert "mine" not in [p.name for p in registry.with_replicates(("esmr",), 1, ("my_pack",))]
    with pytest.raises(SettingsError, match="cannot import 'no_such_plugin'"):
        registry.graph_settings("smoke", '{"policy": {"plugins": ["no_such_plugin"]}}')
    assert load_settings("smoke").policy.plugins == ()


def test_a_cell_evaluates_the_opt_in_policies_only_when_its_settings_turn_them_on():
    from esmr_assets.core.settings import load_settings

    default = [spec.name for spec in registry.evaluated(load_settings("smoke"))]
    assert not set(registry.DEEP_LEARNERS) & set(default) and "oracle_planner" not in default
    assert default == [name for name in registry.POLICY_NAMES if name in default]  # table order
    on = load_settings("smoke", {"policy": {"deep_learners": ["ppo_esmr"], "agent_replicates": 2},
                                 "evaluation": {"planner_horizon": 3}})
    names = [spec.name for spec in registry.evaluated(on)]
    assert {"ppo_esmr", "oracle_planner", "esmr@1"} <= set(names) and "dqn_esmr" not in names
