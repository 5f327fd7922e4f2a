"""Study specs (studies.py): the shipped studies parse, and each kind of bad spec is refused
with a message naming the scenario and the field."""

from pathlib import Path

import pytest

from esmr_assets.studies.spec import StudyError, load_study, parse_study

STUDIES = sorted((Path(__file__).resolve().parents[2] / "studies").glob("*.toml"))

GOOD = """
description = "a study"
preset = "smoke"
seeds = "0-1,5"

[report]
policies = ["esmr", "oracle_esmr"]
metrics = ["negative_days"]

[[scenario]]
name = "alpha_0"
overrides = { policy = { alpha = 0.0 } }

[[scenario]]
name = "both"
overrides = { policy = { alpha = 2.0, beta = 0.0 } }
"""


def test_the_shipped_studies_parse_with_ten_seeds():
    assert {p.stem for p in STUDIES} >= {"fair_test", "observability", "content_effect", "sensitivity", "horizon",
                                        "training_budget", "engagement_tradeoff", "emotion_models", "igl_styles",
                                        "learners"}
    for path in STUDIES:
        study = load_study(path)
        assert study.preset == "paper" and study.seeds == tuple(range(10)), path.stem
        assert len({s.name for s in study.scenarios}) == len(study.scenarios) >= 2
    # what the pages render, and what the archive keeps for the figures they quote
    assert load_study(STUDIES[0].with_name("igl_styles.toml")).extras == ("styles", "confusion")
    assert set(load_study(STUDIES[0].with_name("fair_test.toml")).extras) >= {"q_values", "metrics"}


def test_a_spec_gives_its_scenarios_settings_seeds_and_knobs():
    study = parse_study(GOOD, "toy")
    assert study.seeds == (0, 1, 5) and study.preset == "smoke"
    alpha, both = study.scenarios
    assert alpha.settings.policy.alpha == 0.0 and alpha.settings.simulation.n_users == 60  # on the smoke preset
    assert alpha.knob == ("policy.alpha", 0.0) and both.knob is None  # two settings: no single axis
    assert both.settings.policy.beta == 0.0 and both.overrides == {"policy": {"alpha": 2.0, "beta": 0.0}}
    assert [(s.name, seed) for s, seed in study.cells] == [("alpha_0", 0), ("alpha_0", 1), ("alpha_0", 5),
                                                          ("both", 0), ("both", 1), ("both", 5)]
    assert parse_study(GOOD, "toy", seeds="7").seeds == (7,)  # --seeds replaces the spec's
    assert study.extras == () and parse_study(GOOD.replace("[report]", "[report]\nextras = [\"spread\"]"),
                                              "toy").extras == ("spread",)


@pytest.mark.parametrize("change, message", [
    (("alpha = 0.0 }", "alpha = 0.0, alpah = 1.0 }"), r"scenario 'alpha_0'.*policy\.alpah"),  # unknown field
    (("alpha = 2.0", 'alpha = "high"'), r"scenario 'both'.*policy\.alpha"),  # wrong type
    (("alpha = 2.0", 'alpha = "2"'), r"scenario 'both'.*policy\.alpha: expected float, got str"),  # not converted
    (("alpha = 2.0", "alpha = true"), r"scenario 'both'.*policy\.alpha: expected float, got bool"),
    (("alpha = 2.0", "alpha = 2.0, epochs = 3.0"), r"scenario 'both'.*policy\.epochs: expected int, got float"),
    (("alpha = 2.0", "alpha = 2.0, emotion_source = 1"),
     r"scenario 'both'.*policy\.emotion_source: expected one of its choices"),
    (("beta = 0.0 } }", 'beta = 0.0 }, simulation = { profile_shares = ["0.3", 0.4, 0.3] } }'),
     r"scenario 'both'.*simulation\.profile_shares\[0\]: expected float, got str"),  # inside a tuple
    (("beta = 0.0 } }", "beta = 0.0 }, simulation = { feedback_style_shares = "
                        "{ expressive = 0.4, critical = true, passive = 0.3 } } }"),
     r"simulation\.feedback_style_shares\['critical'\]: expected float, got bool"),  # inside a mapping
    (("beta = 0.0 } }", 'beta = 0.0, replicated_agents = ["esmr", 1] } }'),
     r"policy\.replicated_agents\[1\]: expected str, got int"),  # a tuple of any length
    (('name = "both"', 'name = "alpha_0"'), r"scenario 'alpha_0'.*duplicate"),
    (('seeds = "0-1,5"', 'seeds = ""'), r"seeds.*empty"),
    (('seeds = "0-1,5"', 'seeds = "5-1"'), r"seeds.*backwards"),
    (('preset = "smoke"', 'preset = "huge"'), r"study 'toy': preset: unknown preset 'huge'"),
    (('description = "a study"', 'descripton = "a study"'), r"unknown field.*descripton"),
    (('name = "both"', 'name = "Both|x"'), r"partition key"),
    (('policies = ["esmr", "oracle_esmr"]', 'policies = ["esmr_x"]'), r"report\.policies.*esmr_x"),
    (('policies = ["esmr", "oracle_esmr"]', 'policies = ["lightgbm@all"]'), r"report\.policies.*lightgbm@all"),
    (('metrics = ["negative_days"]', 'metrics = ["happiness"]'), r"report\.metrics.*happiness"),
    (('metrics = ["negative_days"]', 'metrics = ["negative_days"]\nextras = ["plots"]'), r"report\.extras.*plots"),
    (("alpha = 0.0 }", "training_users = 50 }"), r"scenario 'alpha_0'.*training_users.*only 30"),
])
def test_a_bad_spec_is_refused_naming_the_scenario_and_field(change, message):
    old, new = change
    assert old in GOOD
    with pytest.raises(StudyError, match=message):
        parse_study(GOOD.replace(old, new, 1), "toy")


def test_an_unreadable_or_invalid_file_is_named(tmp_path):
    with pytest.raises(StudyError, match="cannot read study"):
        load_study(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("preset = \n")
    with pytest.raises(StudyError, match="study 'broken': not valid TOML"):
        load_study(broken)


@pytest.mark.parametrize("change", [
    ("alpha = 0.0 }", "alpha = 0.0, alpah = 1.0 }"),  # unknown field
    ("alpha = 2.0", 'alpha = "high"'),  # wrong type
    ('name = "both"', 'name = "alpha_0"'),  # duplicate scenario
    ('seeds = "0-1,5"', 'seeds = ""'),  # empty seed range
    ('preset = "smoke"', 'preset = "huge"'),  # unknown preset
])
def test_esmr_study_refuses_a_bad_spec_before_writing_anything(tmp_path, capsys, change):
    from esmr_assets.cli import main

    spec = tmp_path / "toy.toml"
    spec.write_text(GOOD.replace(*change, 1))
    data_dir = tmp_path / "data"
    for command in ("run", "status"):
        assert main(["study", command, str(spec), "--data-dir", str(data_dir)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("esmr: error: study 'toy'") and err.count("\n") == 1
    assert not data_dir.exists()


def test_shared_overrides_apply_to_every_scenario_and_are_not_its_knob():
    study = parse_study(GOOD.replace("[report]", "overrides = { policy = { epochs = 2 } }\n\n[report]"), "toy")
    alpha, both = study.scenarios
    assert alpha.settings.policy.epochs == both.settings.policy.epochs == 2
    assert alpha.overrides == {"policy": {"alpha": 0.0, "epochs": 2}}
    assert alpha.knob == ("policy.alpha", 0.0)
    with pytest.raises(StudyError, match=r"study 'toy': overrides: .*policy\.epochs"):
        parse_study(GOOD.replace("[report]", "overrides = { policy = { epochs = 0 } }\n\n[report]"), "toy")
    assert study.cell_scenario(alpha) == "toy.alpha_0"


def test_a_study_name_is_one_dotless_token():
    """"<study>.<scenario>" must name one study's scenario: study "a.b" with scenario "c" and
    study "a" with scenario "b.c" would otherwise share a partition key."""
    with pytest.raises(StudyError, match="study name"):
        parse_study(GOOD, "a.b")
    with pytest.raises(StudyError, match="study name"):
        parse_study(GOOD, "x" * 33)


def test_a_study_run_keeps_one_timing_record_that_grows_with_its_cells(tmp_path):
    """Rewritten after each cell that did work, a run's record stays one file and lists those
    cells; a run stopped midway stays `complete: false`; a resumed run adds its own record,
    and marks itself complete even when it found every cell current but finished the work
    the stopped one left (the models and report). `study_timings` reads them back."""
    from esmr_assets.studies.report import StudyRunTiming, study_timings

    study, root = parse_study(GOOD, "toy"), tmp_path / "paper"
    first = StudyRunTiming(root, study, "20261206T100000Z-1", started=0.0)
    first.cell_done("toy.a", 0, {"users": 3.0, "videos": "reused"}, now=60.0)
    first.saved[("toy.a", "videos")] = 10.0
    first.cell_done("toy.a", 1, {"users": "current", "videos": "current"}, now=61.0)  # nothing done: no cell
    first.cell_done("toy.b", 0, {"users": 2.0, "videos": "reused"}, now=130.0)  # then stopped: no finish
    resumed = StudyRunTiming(root, study, "20261206T120000Z-2", started=0.0)
    resumed.cell_done("toy.a", 0, {"users": "current", "videos": "current"}, now=5.0)
    resumed.finish(now=20.0)  # every cell current, but the stopped run left the report undone
    again = StudyRunTiming(root, study, "20261206T130000Z-3", started=0.0)
    again.finish(now=1.0)  # nothing stopped, nothing done: no record
    assert sorted(p.name for p in (root / "studies").glob("toy.timing*.json")) == [
        "toy.timing-20261206T100000Z-1.json", "toy.timing-20261206T120000Z-2.json"]
    timings = study_timings(tmp_path).sort("wall_seconds")
    assert timings["complete"].to_list() == [True, False] and timings["wall_seconds"].to_list() == [20.0, 130.0]
    stopped = timings.row(1, named=True)
    assert stopped["cells"] == ["toy.a:0", "toy.b:0"] and stopped["seeds"] == "0"
    assert (stopped["steps_computed"], stopped["steps_reused"]) == (2, 2)
    assert stopped["share_saved"] == pytest.approx(10 / 140)


def test_a_timing_record_that_cannot_be_written_is_a_warning(tmp_path):
    from esmr_assets.studies.report import StudyRunTiming

    (tmp_path / "studies").write_text("a file where the folder goes")
    timing = StudyRunTiming(tmp_path, parse_study(GOOD, "toy"), "r", started=0.0)
    with pytest.warns(UserWarning, match="timing record"):
        timing.cell_done("toy.a", 0, {"users": 1.0}, now=1.0)
