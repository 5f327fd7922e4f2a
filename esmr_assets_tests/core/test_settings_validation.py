"""Validation is complete (docs/integrity.md): generated settings overrides and study specs,
valid and invalid, mixing types, extremes, NaN and infinities, unicode and nesting.

Each one is either accepted, and then the splits the graph will really make (its own split
functions, run on a population of that size: a dry run, not a run) leave every part enough
users, or it is refused: `esmr` exits 2 with one line naming what is wrong, and nothing is
written to the data dir or the instance.

Hypothesis runs derandomized (the same examples on every machine); `HYPOTHESIS_PROFILE=explore`
draws ten times as many at random."""

import json
import math
import os
import tomllib

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from esmr_assets.cli import main
from esmr_assets.core.settings import (
    MAX_USER_DAYS,
    MIN_SPLIT_USERS,
    RANKER_SPLIT,
    Settings,
    SettingsError,
)
from esmr_assets.emotion.features import limit_split, split_users
from esmr_assets.policy.loop.registry import graph_settings
from esmr_assets.policy.loop.users import policy_split
from esmr_assets.storage.cells import check_scenario_name
from esmr_assets.studies.spec import StudyError, parse_study

settings.register_profile("ci", max_examples=1_000, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("explore", max_examples=10_000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

SECTIONS = {name: field.annotation.model_fields for name, field in Settings.model_fields.items() if name != "preset"}

# ------------------------------------------------------------------------------ values
hostile_scalars = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, 2, -1, 27, 10**6, 10**12, 0.5, 1e-300, 1e23, 2**32, -0.0]),
    st.text(max_size=12), st.sampled_from(["３", "٣", "²", "1e3", "nan", "", "baseline\n", "é"]),
    st.booleans(), st.none(),
)
values = st.recursive(hostile_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=8)


def _plausible(field) -> st.SearchStrategy:
    """A value of the field's own type, near and beyond its bounds."""
    default = field.default
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int):
        return st.one_of(st.integers(min_value=0, max_value=3 * max(default, 30)), st.sampled_from([1, 4, 27, 60]))
    if isinstance(default, float):
        return st.one_of(st.floats(min_value=-0.5, max_value=2 * max(abs(default), 1.0)),
                         st.sampled_from([0.0, 0.5, 1.0, math.nan]))
    return values


sized_overrides = st.fixed_dictionaries({}, optional={
    "simulation": st.fixed_dictionaries({}, optional={
        "n_users": st.integers(min_value=1, max_value=2_000), "n_days": st.integers(min_value=1, max_value=60),
        "n_videos": st.integers(min_value=50, max_value=2_000), "feed_length": st.integers(min_value=1, max_value=300),
    }),
    "policy": st.fixed_dictionaries({}, optional={
        "training_users": st.integers(min_value=1, max_value=600),
        "evaluation_share": st.floats(min_value=0.01, max_value=0.99),
        "max_evaluation_users": st.one_of(st.none(), st.integers(min_value=1, max_value=600)),
        "candidates": st.integers(min_value=1, max_value=300),
    }),
    "emotion": st.fixed_dictionaries({}, optional={
        "split": st.tuples(*[st.sampled_from([0.1, 0.15, 0.2, 0.7, 0.75, 0.05])] * 3).map(list),
        "max_model_users": st.one_of(st.none(), st.integers(min_value=1, max_value=500)),
    }),
})


@st.composite
def field_overrides(draw) -> dict:
    """Overrides of real fields (a plausible or a hostile value each), with now and then an
    unknown section or field."""
    out: dict = {}
    for section in draw(st.lists(st.sampled_from(sorted(SECTIONS)), max_size=3, unique=True)):
        fields = SECTIONS[section]
        chosen = draw(st.lists(st.sampled_from(sorted(fields)), min_size=1, max_size=3, unique=True))
        out[section] = {name: draw(st.one_of(_plausible(fields[name]), values)) for name in chosen}
    if draw(st.integers(0, 9)) == 0:
        out[draw(st.sampled_from(["simulaton", "seed", "preset", "ünïcode"]))] = draw(values)
    return out


overrides = st.one_of(field_overrides(), sized_overrides, sized_overrides, values)


def _keys(tree) -> set[str]:
    """Every key at any depth, as written and as a message quotes an odd one (repr)."""
    if isinstance(tree, dict):
        return {form for k in tree for form in (str(k), repr(str(k)))} | {k for v in tree.values() for k in _keys(v)}
    if isinstance(tree, list):
        return {k for v in tree for k in _keys(v)}
    return set()


# ------------------------------------------------------------------------------ the dry run
def _dry_run(settings: Settings, seed: int = 0) -> None:
    """The splits the graph's own code makes for a population of this size, each part with
    enough users; the sizes a run can hold; the scenario a valid partition key."""
    n, sim, policy = settings.simulation.n_users, settings.simulation, settings.policy
    assert sim.n_users * sim.n_days <= MAX_USER_DAYS and sim.n_days > settings.causal.min_rows
    assert sim.feed_length <= sim.n_videos and policy.candidates <= sim.n_videos
    ids = np.arange(n)
    for shares, max_users in ((settings.emotion.split, settings.emotion.max_model_users),
                              (RANKER_SPLIT, policy.ranker_max_users)):
        parts = limit_split(split_users(ids, seed, shares), ids, max_users, np.random.default_rng(seed))
        assert min(int(part.sum()) for part in parts) >= MIN_SPLIT_USERS, (shares, max_users)
    training, evaluation = policy_split(pl.DataFrame({"user_id": ids}), seed, policy)
    assert training.size == policy.training_users and evaluation.size >= 1  # as many as asked: none capped
    assert not set(training) & set(evaluation)
    check_scenario_name(settings.overrides_scenario)


def _refused_in_one_line(capsys, argv: list[str], data_dir, mentions: set[str]) -> None:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("esmr: error: ") and "Traceback" not in err, err
    assert not data_dir.exists(), list(data_dir.rglob("*"))  # nothing written: data, instance, scenario files
    assert any(word in err for word in mentions), (err, mentions)


# ------------------------------------------------------------------------------ the properties
@pytest.mark.parametrize("preset", ["smoke", "paper"])
@given(generated=overrides)
def test_every_override_is_feasible_or_refused_in_one_line(generated, preset, tmp_path_factory, capsys):
    text = json.dumps(generated)  # NaN and infinities travel as JSON's NaN / Infinity
    try:
        accepted = graph_settings(preset, text)
    except SettingsError:
        event("refused")
        data_dir = tmp_path_factory.mktemp("refused") / "data"
        mentions = _keys(generated) | {"overrides"}  # a field the overrides give, or the overrides as a whole
        _refused_in_one_line(capsys, ["run", "--seed", "0", "--preset", preset, f"--overrides={text}",
                                      "--data-dir", str(data_dir)], data_dir, mentions)
        return
    event("accepted")
    _dry_run(accepted)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int | str):
        return json.dumps(value) if isinstance(value, str) else str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}"
                               for k, v in value.items() if v is not None) + "}"
    return '"none"'  # TOML has no null


spec_scenarios = st.lists(st.fixed_dictionaries({
    "name": st.one_of(st.sampled_from(["a", "b.1", "alpha_0.5", "x-y"]), st.text(max_size=10),
                      st.sampled_from(["Bad", "a\n", "a|b", "a/b", "", "é"])),
    "overrides": st.one_of(sized_overrides, field_overrides(), values),
}), max_size=4)


@st.composite
def plausible_specs(draw) -> tuple[str, str]:
    """A study as a researcher writes one: a preset, seeds and named scenarios of sized overrides."""
    lines = [f"preset = {_toml_value(draw(st.sampled_from(['smoke', 'paper'])))}",
             f"seeds = {_toml_value(draw(st.sampled_from(['0', '0-2', '3,5', '0-9'])))}"]
    if draw(st.booleans()):
        lines.append(f"overrides = {_toml_value(draw(sized_overrides))}")
    names = draw(st.lists(st.sampled_from(["a", "b.1", "alpha_0.5", "x-y", "n100"]), min_size=1, max_size=3,
                          unique=True))
    for name in names:
        lines += ["", "[[scenario]]", f"name = {_toml_value(name)}",
                  f"overrides = {_toml_value(draw(st.one_of(sized_overrides, st.just({}))))}"]
    return draw(st.sampled_from(["study", "tiny-1", "a_b"])), "\n".join(lines) + "\n"


@st.composite
def hostile_specs(draw) -> tuple[str, str]:
    """(study name, TOML text) of a generated study, of any shape."""
    lines = []
    if draw(st.booleans()):
        lines.append(f"description = {_toml_value(draw(st.text(max_size=20)))}")
    if draw(st.integers(0, 9)):
        lines.append(f"preset = {_toml_value(draw(st.sampled_from(['smoke', 'paper', 'huge', ''])))}")
    if draw(st.integers(0, 9)):
        seeds = draw(st.one_of(st.sampled_from(["0-1", "0", "3,5", "2-1", "0-99999", "٣", "4294967296", ""]), values))
        lines.append(f"seeds = {_toml_value(seeds)}")
    if draw(st.integers(0, 3)) == 0:
        lines.append(f"overrides = {_toml_value(draw(st.one_of(sized_overrides, values)))}")
    if draw(st.integers(0, 9)) == 0:
        lines.append(f"{draw(st.sampled_from(['extra', 'seed', 'Preset']))} = 1")
    for scenario in draw(spec_scenarios):
        lines += ["", "[[scenario]]", f"name = {_toml_value(scenario['name'])}",
                  f"overrides = {_toml_value(scenario['overrides'])}"]
    name = draw(st.one_of(st.sampled_from(["study", "tiny-1", "a_b"]), st.text(max_size=8)))
    return name, "\n".join(lines) + "\n"


@given(spec=st.one_of(plausible_specs(), hostile_specs()))
@settings(max_examples=500)
def test_every_study_spec_is_feasible_or_refused_in_one_line(spec, tmp_path_factory, capsys):
    name, text = spec
    try:
        study = parse_study(text, name)
    except (StudyError, SettingsError):
        event("refused")
        folder = tmp_path_factory.mktemp("spec")
        data_dir = folder / "data"
        try:
            path = folder / f"{name}.toml"
            path.write_text(text)
        except (OSError, ValueError):  # a name no file can have: the same text under a file's name
            path = folder / "study.toml"
            path.write_text(text)
            try:
                parse_study(text, "study")
                return  # refused for its name alone, which no file can carry
            except (StudyError, SettingsError):
                pass
        try:
            spec_keys = _keys(tomllib.loads(text))
        except tomllib.TOMLDecodeError:
            spec_keys = {"TOML"}
        _refused_in_one_line(capsys, ["study", "run", str(path), "--data-dir", str(data_dir)], data_dir,
                             spec_keys | {"TOML", "study name", "at least one [[scenario]]", "missing field"})
        return
    event("accepted")
    for scenario in study.scenarios:
        _dry_run(scenario.settings, study.seeds[0])
        check_scenario_name(study.cell_scenario(scenario))


def test_the_generators_reach_both_sides():
    """Of what the strategies above draw, plenty is accepted and plenty refused: the
    properties test both sides."""
    seen = {"accepted": 0, "refused": 0}

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(generated=overrides, spec=st.one_of(plausible_specs(), hostile_specs()))
    def classify(generated, spec):
        for check in (lambda: graph_settings("smoke", json.dumps(generated)), lambda: parse_study(spec[1], spec[0])):
            try:
                check()
                seen["accepted"] += 1
            except (SettingsError, StudyError):
                seen["refused"] += 1

    classify()
    assert seen["accepted"] >= 30 and seen["refused"] >= 300, seen
