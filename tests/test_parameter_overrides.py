"""A scenario's [parameters] (opioidsim.overrides): typical values set in place of the sourced ones,
checked once when the scenario is built, reaching the physiology and the behaviour, and said in
the results. Expected values come from one-compartment PK algebra, unit conversion and the
lognormal draw that each subject keeps."""
from __future__ import annotations

import math

import numpy as np
import pytest

from opioidsim import cli
from opioidsim.behavior import agent as ag
from opioidsim.behavior.course import course_parameters
from opioidsim.behavior.runner import agent_parameters
from opioidsim.engine.core import subject_parameters
from opioidsim.errors import ScenarioError
from opioidsim.io.results import result_attrs
from opioidsim.model import default_model
from opioidsim.overrides import known_parameters
from opioidsim.report.html import render_report
from opioidsim.scenarios import Dose, Scenario, load_scenario
from opioidsim.trial.report import _parameters_set
from opioidsim.validation.sim import run_typical_batch

from test_cli import _no_leftovers, _one_error_line, engine  # noqa: F401  (the fake engine fixture)
from test_trial import PLACEBO_TRIAL


def test_set_values_reach_the_physiology_as_the_algebra_says():
    # naloxone has one-compartment disposition: after an IV bolus D, C(t) = D / V · exp(−ln2 t / t½),
    # with V the subject's weight-scaled volume. Both values set, one as a quantity in other units;
    # typical subjects (no between-subject draw) so that V and t½ are the values set.
    settings = {"naloxone_half_life": "0.5 h", "naloxone_volume": 100.0}
    run = run_typical_batch([[Dose("naloxone", "2 mg", route="iv", at="0min")]], "3h", "10min", parameters=settings)
    p = subject_parameters(default_model(), Scenario(duration="3h", parameters=settings), 1, 0, variability=False)
    assert p["naloxone_half_life"][0] == pytest.approx(30.0, rel=1e-12)  # min, from "0.5 h"
    t = run.t
    volume_l = 100.0 * p["body_weight"][0] / p["reference_weight"][0]
    expected = 2e6 / volume_l / 1000.0 * np.exp(-math.log(2) * t / 30.0)  # ng/mL
    got = run["plasma_naloxone"][0]
    keep = t >= 10.0  # past the bolus's first step
    assert np.allclose(got[keep], expected[keep], rtol=1e-2), (got[keep], expected[keep])
    # not vacuous: with the sourced half-life (64 min) the curve at 3 h would be 9 times higher
    assert got[-1] < 0.3 * 2e6 / volume_l / 1000.0 * math.exp(-math.log(2) * 180 / 64.0)


def test_each_subject_keeps_its_draw_around_the_new_value():
    # between-subject variability stays as declared: value · exp(η) with the subject's own η, so every
    # subject's value moves by the factor set / sourced
    model = default_model()
    base = Scenario(duration="1h", cohort={"subjects": 6, "seed": 3})
    par = model.parameters["heroin_clearance"]
    assert par.cv > 0  # a parameter that varies between subjects (the check is not vacuous)
    moved = base.with_parameters({"heroin_clearance": "1.5 L/min"})
    p0 = subject_parameters(model, base, 6, 3)
    p1 = subject_parameters(model, moved, 6, 3)
    assert np.ptp(p0["heroin_clearance"]) > 0
    assert np.allclose(p1["heroin_clearance"] / p0["heroin_clearance"], 1.5 / par.value, rtol=1e-12)
    untouched = [k for k in p0 if k != "heroin_clearance"]
    assert all(np.array_equal(p0[k], p1[k]) for k in untouched)


def test_units_convert_and_the_sourced_value_changes_nothing():
    model = default_model()
    base = Scenario(duration="1h", cohort={"subjects": 3})
    sourced = model.parameters["heroin_clearance"].value  # L/min
    p0 = subject_parameters(model, base, 3, 0)
    for same in (sourced, f"{sourced * 60} L/h", f"{sourced * 1000} mL/min"):
        p = subject_parameters(model, base.with_parameters({"heroin_clearance": same}), 3, 0)
        assert np.allclose(p["heroin_clearance"], p0["heroin_clearance"], rtol=1e-12), same


def test_a_species_value_is_replaced_by_the_scenarios():
    model = default_model()
    rat = Scenario(duration="1h", cohort={"species": "rat"})
    p_rat = subject_parameters(model, rat, 1, 0, variability=False)
    p_set = subject_parameters(model, rat.with_parameters({"body_weight": "0.4 kg"}), 1, 0, variability=False)
    assert p_rat["body_weight"][0] == pytest.approx(0.3e6, rel=0.2)  # the rat's (≈ 0.3 kg), not a person's
    assert p_set["body_weight"][0] == pytest.approx(0.4e6, rel=1e-12)  # mg internally


def test_behaviour_parameters_reach_courses_and_animal_experiments():
    trial = load_scenario("trial-buprenorphine-dose")
    sc = trial.with_parameters({"quit_brake": 0.5, "readiness_cv": 1.0})
    p0 = course_parameters(trial, trial.trial.supply, 400, 0)
    p = course_parameters(sc, sc.trial.supply, 400, 0)
    assert np.all(p0["quit_brake"] == 1.0) and np.all(p["quit_brake"] == 0.5)
    # readiness is lognormal with median 1 and the cv set: σ² = ln(1 + cv²)
    for q, cv in ((p0, 0.5), (p, 1.0)):
        assert np.std(np.log(q["readiness"])) == pytest.approx(math.sqrt(math.log1p(cv ** 2)), rel=0.1)
    threshold = next(x for x in ag.PARAMETERS if x.name == "press_threshold").value
    a = agent_parameters(2, {"press_threshold": 2 * threshold})
    assert np.all(a["press_threshold"] == 2 * threshold)
    assert np.all(agent_parameters(2)["press_threshold"] == threshold)


@pytest.mark.parametrize("settings, field, words", [
    ({"buprenorphin_efficacy": 0.3}, "parameters.buprenorphin_efficacy", ["did you mean 'buprenorphine_efficacy'"]),
    ({"heroin_clearance": "3 mg"}, "parameters.heroin_clearance", ["L/min", "2.156"]),
    ({"heroin_clearance": "fast"}, "parameters.heroin_clearance", ["L/min"]),
    ({"heroin_clearance": -1}, "parameters.heroin_clearance", ["0 or more"]),
    ({"heroin_clearance": True}, "parameters.heroin_clearance", ["a number"]),
    ({"heroin_clearance": [1]}, "parameters.heroin_clearance", ["a number"]),
    ({"quit_brake": float("nan")}, "parameters.quit_brake", ["finite"]),
    ({"mor_reserve_vta": 1.5}, "parameters.mor_reserve_vta", ["from 0 to 1"]),
    ({"naloxone_volume": 0}, "parameters.naloxone_volume", ["more than 0", "divide by zero"]),
    ({"naloxone_half_life": "0 h"}, "parameters.naloxone_half_life", ["more than 0"]),
    ({"heroin_mor_kd": 0.0}, "parameters.heroin_mor_kd", ["more than 0"]),
    ({"pain_stimulus": 0.2}, "parameters.pain_stimulus", ["[conditions] pain_stimulus"]),
    ({"oprm1_g_carrier": 1.0}, "parameters.oprm1_g_carrier", ["oprm1_g_carrier_frequency"]),
])
def test_bad_settings_name_the_field_the_value_and_what_is_allowed(settings, field, words):
    with pytest.raises(ScenarioError) as exc:
        Scenario(duration="1h", parameters=settings)
    assert exc.value.field == field
    message = str(exc.value)
    assert repr(next(iter(settings.values()))) in message or "nan" in message
    for w in words:
        assert w in message, message


def test_zero_removes_a_term_but_never_a_divisor():
    # a rate, an efficacy or a term's weight may be 0 (a what-if without it); a volume, an
    # affinity, a half-saturation or a time constant may not (0 would divide by zero: a run with a
    # naloxone volume of 0 gave NaN from its first dose)
    ok = Scenario(duration="1h", parameters={"heroin_clearance": 0, "buprenorphine_efficacy": 0})
    assert ok.parameters["heroin_clearance"] == 0
    course = load_scenario("trial-buprenorphine-dose").with_parameters({"quit_brake": 0, "cue_weight": 0.0})
    assert course.parameters["cue_weight"] == 0.0
    from opioidsim.overrides import must_be_positive

    known = known_parameters()
    assert all(must_be_positive(known[n]) for n in ("naloxone_volume", "body_weight", "heroin_mor_kd",
                                                     "satiety_half_occupancy", "crf_time_constant"))
    assert not any(must_be_positive(known[n]) for n in ("quit_brake", "cue_weight", "heroin_clearance",
                                                         "buprenorphine_efficacy", "co2_drive_offset"))


def test_a_file_round_trips_and_its_errors_use_file_paths(tmp_path):
    text = ('[scenario]\nduration = "1h"\n\n[parameters]\nbuprenorphine_efficacy = 0.3\n'
            'heroin_clearance = "120 L/h"\n')
    sc = Scenario.from_toml_text(text)
    assert sc.parameters == {"buprenorphine_efficacy": 0.3, "heroin_clearance": "120 L/h"}
    assert Scenario.from_toml_text(sc.to_toml()) == sc
    with pytest.raises(ScenarioError) as exc:
        Scenario.from_toml_text('[scenario]\nduration = "1h"\n\n[parameters]\nheroin_clearance = "3 mg"\n')
    assert exc.value.field == "parameters.heroin_clearance" and exc.value.value == "3 mg"
    with pytest.raises(ScenarioError) as exc:
        Scenario.from_toml_text('[scenario]\nduration = "1h"\n\n[parameter]\nquit_brake = 1\n')
    assert "[parameters]" in str(exc.value)


def test_every_name_a_scenario_may_set_is_a_parameter_somewhere():
    known = known_parameters()
    model = default_model()
    assert set(model.parameters) <= set(known)
    assert {x.name for x in ag.PARAMETERS} <= set(known)
    assert "quit_brake" in known and "heroin_clearance" in known


def test_results_and_reports_say_what_was_set():
    sc = Scenario(duration="1h", parameters={"naloxone_volume": 100, "heroin_clearance": "120 L/h"})
    attrs = result_attrs({}, sc, "2026-01-01T00:00:00Z", "0")
    assert attrs["parameters_set"] == "every subject: heroin_clearance = 120 L/h, naloxone_volume = 100"
    plain = result_attrs({}, Scenario(duration="1h"), "2026-01-01T00:00:00Z", "0")
    assert "parameters_set" not in plain
    from test_cli import fake_dataset

    page = render_report(fake_dataset(sc), sc.to_toml())
    assert "parameters set (not their sourced values)" in page
    assert "every subject: heroin_clearance = 120 L/h, naloxone_volume = 100" in page
    assert "parameters set" not in render_report(fake_dataset(sc), Scenario(duration="1h").to_toml())
    para = _parameters_set(sc.to_toml())
    assert len(para) == 1 and "heroin_clearance = 120 L/h, naloxone_volume = 100" in para[0]
    assert _parameters_set(Scenario(duration="1h").to_toml()) == []


def test_cli_set_adds_to_the_scenarios_parameters(engine, tmp_path):  # noqa: F811
    out = tmp_path / "o"
    rc = cli.main(["run", "acute-heroin-iv", "--out", str(out), "--no-progress",
                   "--set", "naloxone_volume=100", "--set", "heroin_clearance=120 L/h"])
    assert rc == 0
    assert engine.calls[0].parameters == {"naloxone_volume": 100, "heroin_clearance": "120 L/h"}
    written = Scenario.from_file(out / "scenario.toml")
    assert written.parameters == {"naloxone_volume": 100, "heroin_clearance": "120 L/h"}


@pytest.mark.parametrize("flag, words", [
    ("quit_brake", ["--set 'quit_brake'", "NAME=VALUE"]),
    ("quit_brak=0.5", ["--set quit_brak=0.5", "did you mean 'quit_brake'"]),
    ("heroin_clearance=3 mg", ["--set heroin_clearance='3 mg'", "L/min"]),
    # a behaviour parameter on a dose schedule: nothing would read it (stop 46)
    ("quit_brake=0.5", ["--set quit_brake=0.5", "[life] or [trial]", "change nothing"]),
])
def test_cli_bad_set_is_one_line_and_leaves_nothing(engine, tmp_path, capsys, flag, words):  # noqa: F811
    rc = cli.main(["run", "acute-heroin-iv", "--out", str(tmp_path / "o"), "--set", flag])
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 2
    for w in words:
        assert w in line, line
    assert engine.calls == []
    _no_leftovers(tmp_path, "o")


def test_params_lists_finds_and_shows_one(capsys):
    assert cli.main(["params", "buprenorphine_eff"]) == 0
    out = capsys.readouterr().out
    assert "buprenorphine_efficacy" in out and "0.5" in out and "1 parameter;" in out
    assert cli.main(["params", "heroin_clearance"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("heroin_clearance: 2.156 L/min") and "source: Inturrisi" in out
    assert cli.main(["params", "pain_stimulus"]) == 0
    assert "set by [conditions] pain_stimulus" in capsys.readouterr().out
    assert cli.main(["params", "quit_brake"]) == 0
    assert "read by life courses and trials" in capsys.readouterr().out
    assert cli.main(["params", "no_such_thing"]) == 2
    assert "no parameter name contains 'no_such_thing'" in capsys.readouterr().err


def test_sensitivity_varies_around_the_value_set():
    # a lognormal cv's 5th-95th percentiles scale with the typical value; a fixed parameter's
    # ×/÷ factor range is around it
    from opioidsim.sensitivity import parameter_ranges

    model = default_model()
    sourced = model.parameters["heroin_clearance"].value
    (base,) = parameter_ranges(model, ["heroin_clearance"])
    (moved,) = parameter_ranges(model, ["heroin_clearance"], settings={"heroin_clearance": f"{60 * sourced / 2} L/h"})
    assert (moved.low, moved.high) == pytest.approx((base.low / 2, base.high / 2), rel=1e-12)
    assert model.parameters["mor_reserve_brainstem"].cv == 0  # fixed: the factor's range
    (fixed,) = parameter_ranges(model, ["mor_reserve_brainstem"], factor=2.0, settings={"mor_reserve_brainstem": 0.5})
    assert (fixed.low, fixed.high) == pytest.approx((0.25, 1.0), rel=1e-12)


WHAT_IF_TRIAL = PLACEBO_TRIAL  # four subjects, a week of history, a week of follow-up, two arms


def test_an_arms_parameters_act_as_the_scenarios_do_for_its_subjects():
    """Four subjects, a week of history and a week of follow-up. The same settings given to every
    arm or to the whole scenario give the same trial, bit for bit; and they reach the person: a
    placebo patient enrols expecting the relief set (medication_expectation), moved that day by at
    most one judged tablet."""
    from opioidsim.behavior import human as hu
    from opioidsim.trial.simulate import simulate_trial

    settings = {"medication_expectation": 0.6, "heroin_clearance": "1.5 L/min"}
    base = Scenario.from_toml_text(WHAT_IF_TRIAL)
    whole = simulate_trial(base.with_parameters(settings))
    per_arm = base.model_copy(update={"trial": base.trial.model_copy(update={
        "arms": [a.model_copy(update={"parameters": settings}) for a in base.trial.arms]})})
    assert per_arm.parameters == {} and all(a.parameters == settings for a in per_arm.trial.arms)
    by_arm = simulate_trial(per_arm)
    for name in whole.data_vars:
        assert np.array_equal(whole[name].values, by_arm[name].values, equal_nan=True), name
    plain = simulate_trial(base)
    assert not np.array_equal(whole.medication_relief.values, plain.medication_relief.values)  # not vacuous
    rate = next(q.value for q in hu.PARAMETERS if q.name == "medication_relief_learning_rate")
    arm = whole.arm.values
    first = np.argmax(whole.in_treatment.values > 0, axis=1)
    for s in np.flatnonzero(arm == "placebo"):
        r0 = whole.medication_relief.values[s, first[s]]
        assert (1 - rate) * 0.6 - 1e-9 <= r0 <= 0.6 + rate * 0.4 + 1e-9, r0


def test_an_arms_parameters_round_trip_and_are_checked():
    text = WHAT_IF_TRIAL + "[trial.arm.parameters]\nbuprenorphine_efficacy = 0.3\n"
    sc = Scenario.from_toml_text(text)
    assert sc.trial.arms[1].parameters == {"buprenorphine_efficacy": 0.3} and sc.trial.arms[0].parameters == {}
    assert Scenario.from_toml_text(sc.to_toml()) == sc
    para = _parameters_set(sc.to_toml())
    assert len(para) == 1 and "arm placebo: buprenorphine_efficacy = 0.3" in para[0]
    attrs = result_attrs({}, sc, "2026-01-01T00:00:00Z", "0")
    assert attrs["parameters_set"] == "arm placebo: buprenorphine_efficacy = 0.3"
    with pytest.raises(ScenarioError) as exc:
        Scenario.from_toml_text(WHAT_IF_TRIAL + "[trial.arm.parameters]\nmor_reserve_vta = 3\n")
    assert exc.value.field == "trial.arm[1].parameters.mor_reserve_vta" and "from 0 to 1" in str(exc.value)


def test_sensitivity_takes_set_too(monkeypatch, tmp_path, capsys):
    # the command's --set reaches the ranges it varies over (stopped before any evaluation)
    import opioidsim.sensitivity as sa

    seen = {}

    def stop(model, names, **kw):
        seen.update(kw)
        raise sa.SensitivityError("stopped here")

    monkeypatch.setattr(sa, "parameter_ranges", stop)
    rc = cli.main(["sensitivity", "acute-heroin-iv", "--readouts", "plasma_heroin:auc", "--parameters",
                   "heroin_clearance", "--out", str(tmp_path / "s"), "--set", "heroin_clearance=1.0"])
    assert rc == 2 and "stopped here" in capsys.readouterr().err
    assert seen["settings"] == {"heroin_clearance": 1.0}


def test_params_csv_is_the_whole_table_with_sources(capsys):
    import csv
    import io

    assert cli.main(["params", "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    known = known_parameters()
    assert [r["name"] for r in rows] == sorted(known)  # every parameter, once
    for r in rows:
        par = known[r["name"]]
        assert float(r["value"]) == pytest.approx(par.value, rel=1e-11) and r["unit"] == par.unit
        assert r["source"] == par.source and r["source"]  # none without a source
    by_name = {r["name"]: r for r in rows}
    assert by_name["pain_stimulus"]["set_by"] == "[conditions] pain_stimulus"
    assert by_name["heroin_clearance"]["set_by"] == "[parameters]" and float(by_name["heroin_clearance"]["cv"]) > 0
    # read_by: the physiology's names are read everywhere, the agent's by experiments and courses,
    # the rest (behavior/human.py alone) by courses only
    from opioidsim.behavior import human as hu

    model, agent_names = default_model().parameters, {x.name for x in ag.PARAMETERS}
    for r in rows:
        want = "model" if r["name"] in model else "agent" if r["name"] in agent_names else "human"
        assert r["read_by"] == want, r["name"]
    assert by_name["quit_brake"]["read_by"] == "human" and "quit_brake" in {x.name for x in hu.PARAMETERS}
    assert cli.main(["params", "naloxone_", "--csv"]) == 0
    names = [r["name"] for r in csv.DictReader(io.StringIO(capsys.readouterr().out))]
    assert names and all("naloxone_" in n for n in names)


def test_the_sbml_export_carries_the_value_set_and_says_so():
    # interop: a what-if exported for libRoadRunner or COPASI holds the value set, and its notes
    # say it was set, beside the sourced value and source
    from opioidsim.io.sbml import export_sbml

    sc = Scenario(duration="1h", parameters={"heroin_clearance": "90 L/h"})
    export = export_sbml(scenario=sc, check=False)
    assert export.parameter_values["heroin_clearance"] == pytest.approx(1.5, rel=1e-12)  # L/min
    assert "set by the scenario&apos;s [parameters] (sourced value 2.156 L/min" in export.xml  # XML-escaped
    plain = export_sbml(check=False)
    assert plain.parameter_values["heroin_clearance"] == pytest.approx(2.156, rel=1e-12)
    assert "set by the scenario" not in plain.xml


def test_a_parameter_nothing_in_the_scenario_reads_is_refused():
    """Until stop 46 a behaviour parameter on a dose schedule (or a person's on a rat experiment)
    was accepted, written to the results and report as set, and changed nothing."""
    from opioidsim.behavior import human as hu
    from opioidsim.overrides import parameter_layer

    person_only = [x.name for x in hu.PARAMETERS if parameter_layer(x.name) == "human"]
    agent_only = [x.name for x in ag.PARAMETERS if parameter_layer(x.name) == "agent"]
    assert "quit_brake" in person_only and "cue_weight" in agent_only
    assert parameter_layer("heroin_clearance") == "model"
    with pytest.raises(KeyError):
        parameter_layer("no_such_parameter")
    for name in (person_only[0], agent_only[0]):  # on a dose schedule: neither is read
        with pytest.raises(ScenarioError) as exc:
            Scenario(duration="1h", parameters={name: 0.5})
        assert exc.value.field == f"parameters.{name}" and "[[dose]]" in str(exc.value)
    rat = load_scenario("rat-heroin-short-vs-long-access")
    with pytest.raises(ScenarioError) as exc:  # a rat's agent reads no person's parameter
        rat.with_parameters({"quit_brake": 0.5})
    assert exc.value.field == "parameters.quit_brake" and "[paradigm]" in str(exc.value)
    assert rat.with_parameters({"cue_weight": 0.5}).parameters["cue_weight"] == 0.5
    course = load_scenario("life-prison-release").with_parameters({"quit_brake": 0.5, "cue_weight": 0.5})
    assert course.parameters == {"quit_brake": 0.5, "cue_weight": 0.5}
    # a name the physiology and the behaviour both declare is the physiology's: read everywhere
    shared = [x.name for x in ag.PARAMETERS + hu.PARAMETERS if x.name in default_model().parameters]
    assert "craving_scale" in shared and all(parameter_layer(n) == "model" for n in shared)
    assert Scenario(duration="1h", parameters={"craving_scale": 8.0}).parameters["craving_scale"] == 8.0
