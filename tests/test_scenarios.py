"""Scenario schema: built-ins, round-trips, dose expansion, one clear error per problem."""
from __future__ import annotations

import copy
import math

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opioidsim.drugs import DRUGS
from opioidsim.errors import MISSING, ScenarioError
from opioidsim.fuzz import key_paths
from opioidsim.readouts import READOUTS
from opioidsim.scenarios import (
    Cohort,
    Conditions,
    Dose,
    Scenario,
    builtin_scenarios,
    load_scenario,
)

BUILTINS = ["acute-heroin-iv", "acute-heroin-routes", "fentanyl-overdose-naloxone",
            "morphine-analgesia"]

VALID = {
    "scenario": {"name": "t", "description": "a test", "duration": "2d", "record_every": "1min",
                 "readouts": ["spo2", "nac_dopamine"]},
    "cohort": {"subjects": 3, "seed": 4},
    "conditions": {"pain_stimulus": 0.5},
    "dose": [
        {"drug": "heroin", "route": "iv", "amount": "10 mg", "at": "10min", "every": "8h",
         "until": "1d"},
        {"drug": "naloxone", "route": "im", "amount": "2 mg", "at": "30min"},
    ],
}


def valid() -> dict:
    return copy.deepcopy(VALID)


# ------------------------------------------------------------------------------------------------
# built-ins
# ------------------------------------------------------------------------------------------------
def test_builtin_list_has_the_four_with_descriptions():
    items = builtin_scenarios()
    for name in BUILTINS:
        assert name in items
        assert items[name] and "\n" not in items[name]


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_loads_and_round_trips(name):
    s = load_scenario(name)
    assert s.name == name
    assert s.doses
    assert Scenario.from_toml_text(s.to_toml()) == s


def test_acute_heroin_iv_contents():
    s = load_scenario("acute-heroin-iv")
    assert s.duration_min == pytest.approx(720)
    assert s.record_every_min == pytest.approx(0.5)
    assert (s.cohort.subjects, s.cohort.seed) == (20, 1)
    [d] = s.doses
    assert (d.drug, d.route, d.amount_mg, d.at_min) == ("heroin", "iv", 10.0, 10.0)


def test_fentanyl_naloxone_contents():
    s = load_scenario("fentanyl-overdose-naloxone")
    assert s.duration_min == pytest.approx(180) and s.record_every_min == pytest.approx(0.25)
    assert s.cohort.subjects == 10
    got = [(d.drug, d.route, d.amount_mg, d.at_min) for d in s.doses]
    assert got == [("fentanyl", "iv", 1.5, 10.0), ("naloxone", "im", 2.0, 14.0),
                   ("naloxone", "intranasal", 4.0, 20.0)]


def test_routes_and_morphine_contents():
    r = load_scenario("acute-heroin-routes")
    assert r.duration_min == 360 and r.cohort.subjects == 1
    assert [(d.drug, d.route, d.amount_mg, d.at_min) for d in r.doses] == [
        ("heroin", "smoked", 10.0, 10.0)]
    assert "acute-heroin-iv" in r.description
    m = load_scenario("morphine-analgesia")
    assert m.duration_min == 480 and m.conditions.pain_stimulus == 0.6
    assert [(d.drug, d.route, d.amount_mg, d.at_min) for d in m.doses] == [
        ("morphine", "iv", 10.0, 30.0)]


def test_load_from_path_and_unknown_name(tmp_path):
    p = tmp_path / "mine.toml"
    p.write_text(tomli_w.dumps(valid()))
    s = load_scenario(str(p))
    assert s.cohort.subjects == 3
    assert load_scenario(p) == s
    with pytest.raises(ScenarioError) as e:
        load_scenario("acute-heroine-iv")
    msg = str(e.value)
    assert "acute-heroine-iv" in msg and "acute-heroin-iv" in msg and "morphine-analgesia" in msg
    with pytest.raises(ScenarioError) as e:
        load_scenario(str(tmp_path / "missing.toml"))
    assert e.value.field == "<file>" and "does not exist" in str(e.value)


def test_file_without_name_takes_the_file_stem(tmp_path):
    d = valid()
    del d["scenario"]["name"]
    p = tmp_path / "my-run.toml"
    p.write_text(tomli_w.dumps(d))
    assert Scenario.from_file(p).name == "my-run"


# ------------------------------------------------------------------------------------------------
# Python API
# ------------------------------------------------------------------------------------------------
def test_dose_positional_and_units():
    d = Dose("heroin", "10 mg", route="iv", at="10min")
    assert d.drug == "heroin" and d.amount_mg == 10.0 and d.at_min == 10.0
    assert Dose("morphine", "0.5 g", "oral", "1h").amount_mg == pytest.approx(500)
    assert Dose("fentanyl", "250 ug").amount_mg == pytest.approx(0.25)
    with pytest.raises(TypeError):
        Dose("heroin", "10 mg", drug="heroin")


def test_scenario_defaults_and_round_trip():
    s = Scenario(duration="6h", doses=[Dose("heroin", "10 mg", route="smoked", at="10min")])
    assert s.name == "custom" and s.record_every_min == 1.0
    assert s.cohort == Cohort() and s.conditions == Conditions()
    assert s.recorded_readouts == list(READOUTS)
    assert Scenario.from_toml_text(s.to_toml()) == s
    s2 = Scenario.from_toml_dict(valid())
    assert Scenario.from_toml_text(s2.to_toml()) == s2
    assert s2.readouts == ["spo2", "nac_dopamine"]


def test_with_cohort_overrides_and_validates():
    s = Scenario.from_toml_dict(valid())
    t = s.with_cohort(subjects=50)
    assert (t.cohort.subjects, t.cohort.seed) == (50, 4)
    assert s.cohort.subjects == 3  # the original is unchanged
    assert s.with_cohort(seed=9).cohort == Cohort(subjects=3, seed=9)
    with pytest.raises(ScenarioError) as e:
        s.with_cohort(subjects=0)
    assert e.value.field == "cohort.subjects"


# ------------------------------------------------------------------------------------------------
# dose expansion
# ------------------------------------------------------------------------------------------------
def test_repeat_expansion_example():
    d = Dose("heroin", "10 mg", at="10min", every="8h", until="1d")
    assert d.times_min(2 * 1440) == [10.0, 490.0, 970.0]


def test_repeat_expansion_edges():
    assert Dose("heroin", "10 mg", at="10min").times_min(60) == [10.0]
    # no until: repeats to the end of the scenario, end excluded
    assert Dose("heroin", "10 mg", at="0min", every="8h").times_min(1440) == [0, 480, 960]
    # until exactly on a repeat time excludes it
    assert Dose("heroin", "10 mg", at="0min", every="8h", until="16h").times_min(5000) == [0, 480]
    # the scenario end cuts an until that lies beyond it
    assert Dose("heroin", "10 mg", at="0min", every="1h", until="30d").times_min(180) == [0, 60, 120]
    d = Dose("heroin", "10 mg", at="5min", every="7min")
    times = d.times_min(1000)
    assert len(times) == d.count(1000) and times[-1] < 1000 and times[-1] + 7 >= 1000


def test_dose_schedule_sorted():
    s = Scenario.from_toml_dict(valid())
    sched = s.dose_schedule()
    assert [t for t, _ in sched] == [10.0, 30.0, 490.0, 970.0]
    assert sched[1][1].drug == "naloxone"


# ------------------------------------------------------------------------------------------------
# validation: each rule → ScenarioError with the right field
# ------------------------------------------------------------------------------------------------
def _set(d: dict, path: tuple, value) -> dict:
    target = d
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return d


class _Deleted:
    """The marker of a field removed from the scenario; its repr is the same in every run, so the test
    ids are too (pytest --lf and --deselect name tests by them)."""

    def __repr__(self) -> str:
        return "<deleted>"


_DELETE = _Deleted()

RULES = [
    # (path, bad value, expected field, words the message must contain)
    (("dose", 0, "drug"), "heroine", "dose[0].drug", ["heroin", "morphine", "fentanyl"]),
    (("dose", 0, "route"), "oral", "dose[0].route", ["heroin can be given by iv, smoked, intranasal, im"]),
    (("dose", 1, "route"), "smoked", "dose[1].route", ["naloxone can be given by"]),
    (("dose", 0, "amount"), "10 s", "dose[0].amount", ["mass"]),
    (("dose", 0, "amount"), "0 mg", "dose[0].amount", ["more than 0"]),
    (("dose", 0, "amount"), "-5 mg", "dose[0].amount", ["more than 0"]),
    (("dose", 0, "amount"), "6 kg", "dose[0].amount", ["5,000 mg"]),
    (("dose", 0, "amount"), 10, "dose[0].amount", ['"10 mg"']),
    (("dose", 0, "amount"), "ten mg", "dose[0].amount", ["mass"]),
    (("dose", 0, "at"), "10 mg", "dose[0].at", ["time"]),
    (("dose", 0, "at"), "-1min", "dose[0].at", ["0 or later"]),
    (("dose", 0, "at"), 10, "dose[0].at", ["unit"]),
    (("dose", 1, "at"), "2d", "dose[1].at", ["before the end"]),
    (("dose", 1, "at"), "3d", "dose[1].at", ["before the end"]),
    (("dose", 0, "every"), "0min", "dose[0].every", ["at least 1 min"]),
    (("dose", 0, "every"), "30s", "dose[0].every", ["at least 1 min"]),
    (("dose", 0, "every"), "-8h", "dose[0].every", ["at least 1 min"]),
    (("dose", 0, "until"), "5min", "dose[0].until", ["later than at"]),
    (("dose", 0, "until"), "5 mg", "dose[0].until", ["time"]),
    (("dose", 1, "until"), "1d", "dose[1].until", ["every"]),
    (("dose", 0, "drug"), _DELETE, "dose[0].drug", ["missing"]),
    (("dose", 0, "amount"), _DELETE, "dose[0].amount", ["missing", '"10 mg"']),
    (("dose", 0, "dose_mg"), 10, "dose[0].dose_mg", ["unknown key", "amount"]),
    (("scenario", "duration"), "0h", "scenario.duration", ["more than 0"]),
    (("scenario", "duration"), "-1h", "scenario.duration", ["more than 0"]),
    (("scenario", "duration"), "101y", "scenario.duration", ["100 years"]),
    (("scenario", "duration"), "12 mg", "scenario.duration", ["time"]),
    (("scenario", "duration"), 12, "scenario.duration", ["unit"]),
    (("scenario", "duration"), _DELETE, "scenario.duration", ["missing"]),
    (("scenario", "record_every"), "0s", "scenario.record_every", ["more than 0"]),
    (("scenario", "record_every"), "3d", "scenario.record_every", ["longer than duration"]),
    (("scenario", "record_every"), "10ms", "scenario.record_every", ["2,000,000"]),
    (("scenario", "readouts"), ["spo2", "dopamine"], "scenario.readouts[1]", ["unknown readout", "nac_dopamine"]),
    (("scenario", "readouts"), "spo2", "scenario.readouts", ["list"]),
    (("scenario", "readouts"), [], "scenario.readouts", ["leave readouts out"]),
    (("scenario", "name"), "../../etc", "scenario.name", ["letters"]),
    (("scenario", "colour"), "red", "scenario.colour", ["unknown key"]),
    (("cohort", "subjects"), 0, "cohort.subjects", ["1 to 1,000,000"]),
    (("cohort", "subjects"), 1_000_001, "cohort.subjects", ["1 to 1,000,000"]),
    (("cohort", "subjects"), "20", "cohort.subjects", ["whole number"]),
    (("cohort", "subjects"), 2.5, "cohort.subjects", ["whole number"]),
    (("cohort", "seed"), -1, "cohort.seed", ["whole number"]),
    (("cohort", "seed"), 1.5, "cohort.seed", ["whole number"]),
    (("cohort", "seed"), True, "cohort.seed", ["whole number"]),
    (("cohort", "size"), 3, "cohort.size", ["unknown key", "subjects"]),
    (("conditions", "pain_stimulus"), 1.5, "conditions.pain_stimulus", ["0 to 1"]),
    (("conditions", "pain_stimulus"), -0.1, "conditions.pain_stimulus", ["0 to 1"]),
    (("conditions", "pain_stimulus"), "high", "conditions.pain_stimulus", ["0 to 1"]),
    (("conditions", "pain_stimulus"), math.nan, "conditions.pain_stimulus", ["0 to 1"]),
    (("conditions", "temperature"), 37, "conditions.temperature", ["unknown key"]),
    (("cohort",), 5, "cohort", ["table"]),
    (("dose",), {"drug": "heroin"}, "dose", ["[[dose]]"]),
    (("dose", 0), "heroin", "dose[0]", ["[[dose]]"]),
    (("treatment",), {"x": 1}, "treatment", ["unknown table"]),
]


@pytest.mark.parametrize("path,bad,field,words", RULES,
                         ids=[f"{r[2]}={r[1]!r}"[:60] for r in RULES])
def test_each_rule_names_the_field(path, bad, field, words):
    d = _set(valid(), path, bad)
    with pytest.raises(ScenarioError) as e:
        Scenario.from_toml_dict(d)
    err = e.value
    assert err.field == field, str(err)
    msg = str(err)
    assert "\n" not in msg
    assert f"'{field}'" in msg
    for w in words:
        assert w in msg, msg
    if bad is not _DELETE and not (isinstance(bad, float) and math.isnan(bad)):
        assert err.value == bad or err.field in ("cohort", "dose") or err.value in bad
    else:
        assert err.value is MISSING or isinstance(err.value, float)


def test_message_format_for_route():
    d = valid()
    d["dose"][0]["route"] = "oral"
    with pytest.raises(ScenarioError) as e:
        Scenario.from_toml_dict(d)
    assert str(e.value) == ("scenario field 'dose[0].route' = 'oral': "
                            "heroin can be given by iv, smoked, intranasal, im")
    assert e.value.allowed == "heroin can be given by iv, smoked, intranasal, im"


def test_too_many_dose_events():
    d = valid()
    d["scenario"]["duration"] = "100d"
    d["dose"][0].update(every="1min", until="100d")
    with pytest.raises(ScenarioError) as e:
        Scenario.from_toml_dict(d)
    assert e.value.field == "dose[0].every" and "100,000" in str(e.value)
    d["dose"][0]["every"] = "2min"  # (144,000 - 10) / 2 = 71,995 events: fine
    assert Scenario.from_toml_dict(d).doses[0].count(100 * 1440) == 71_995


def test_several_problems_reported_as_one_with_count():
    d = valid()
    d["cohort"]["subjects"] = 0
    d["cohort"]["seed"] = -3
    d["conditions"]["pain_stimulus"] = 7
    with pytest.raises(ScenarioError) as e:
        Scenario.from_toml_dict(d)
    assert e.value.field == "cohort.subjects"
    assert str(e.value).endswith("(and 2 more problems)")
    assert e.value.more == 2
    d["dose"][0]["drug"] = "x"
    d["dose"][1]["amount"] = "1"
    with pytest.raises(ScenarioError) as e:
        Scenario.from_toml_dict(d)
    assert e.value.field == "cohort.subjects" and e.value.more == 4


def test_python_construction_errors_use_python_names():
    with pytest.raises(ScenarioError) as e:
        Scenario(duration="1h", doses=[{"drug": "heroin", "amount": "1 mg", "route": "oral"}])
    assert e.value.field == "doses[0].route"
    with pytest.raises(ScenarioError) as e:
        Scenario(duration="1h", doses=[Dose("heroin", "1 mg", at="2h")])
    assert e.value.field == "doses[0].at"
    with pytest.raises(ScenarioError) as e:
        Dose("heroin", "10 mg", route="oral")
    assert e.value.field == "dose.route"
    with pytest.raises(ScenarioError) as e:
        Scenario(duration="1h", dose=[])
    assert e.value.field == "dose" and "doses" in str(e.value)
    with pytest.raises(ScenarioError) as e:
        Conditions(pain_stimulus=2)
    assert e.value.field == "conditions.pain_stimulus"


def test_toml_syntax_error_has_line_number():
    text = '[scenario]\nduration = "1h"\nname = \n'
    with pytest.raises(ScenarioError) as e:
        Scenario.from_toml_text(text, source="bad.toml")
    assert e.value.field == "<file>"
    assert "line 3" in str(e.value) and "bad.toml" in str(e.value)


def test_missing_scenario_table():
    with pytest.raises(ScenarioError) as e:
        Scenario.from_toml_text('[cohort]\nsubjects = 2\n')
    assert e.value.field == "scenario" and "duration" in str(e.value)


def test_error_is_a_value_error_and_picklable():
    import pickle

    err = ScenarioError("dose[0].route", "oral", "heroin can be given by iv", more=1)
    assert isinstance(err, ValueError)
    back = pickle.loads(pickle.dumps(err))
    assert (back.field, back.value, back.allowed, str(back)) == (
        err.field, err.value, err.allowed, str(err))


# ------------------------------------------------------------------------------------------------
# property tests: bad input gives ScenarioError naming a field, never any other exception
# ------------------------------------------------------------------------------------------------
PATHS = key_paths(VALID)
UNITS = ["mg", "g", "ug", "kg", "s", "min", "h", "d", "y", "w", "ms", "", "banana", "mg/h",
         "1/min", "mmHg", "degC", "min**2", "m", "%", "mg mg", "e", "nan"]
numbers = st.one_of(st.integers(-10**6, 10**12), st.floats(allow_nan=True, allow_infinity=True))
quantities = st.builds(lambda n, sep, u: f"{n}{sep}{u}", numbers, st.sampled_from(["", " ", "  "]),
                       st.sampled_from(UNITS))
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=12), quantities,
                    st.sampled_from(list(DRUGS) + ["iv", "oral", "smoked", "spo2", "pain"]))
junk = st.one_of(scalars, st.lists(scalars, max_size=3),
                 st.dictionaries(st.text(max_size=6), scalars, max_size=3))
mutation = st.tuples(st.sampled_from(["replace", "delete", "add"]), st.sampled_from(PATHS), junk,
                     st.text(min_size=1, max_size=8))


def _mutate(d, op, path, value, newkey):
    target = d
    try:
        for key in path[:-1]:
            target = target[key]
        if op == "replace":
            target[path[-1]] = value
        elif op == "delete":
            del target[path[-1]]
        else:
            inner = target[path[-1]]
            if isinstance(inner, dict):
                inner[newkey] = value
            else:
                target[path[-1]] = value
    except (KeyError, IndexError, TypeError):
        pass  # an earlier mutation changed the shape; skip this one
    return d


def _check_outcome(fn):
    try:
        s = fn()
    except ScenarioError as err:
        assert isinstance(err.field, str) and err.field
        assert "\n" not in str(err)
        return None
    assert isinstance(s, Scenario)
    # anything that loads is really valid: it round-trips and its schedule expands
    assert Scenario.from_toml_text(s.to_toml()) == s
    assert len(s.dose_schedule()) <= 100_000
    return s


FAST = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@FAST
@given(st.lists(mutation, min_size=1, max_size=3))
def test_fuzz_mutated_dicts_load_or_raise_scenario_error(mutations):
    d = valid()
    for op, path, value, newkey in mutations:
        d = _mutate(d, op, path, value, newkey)
    _check_outcome(lambda: Scenario.from_toml_dict(d))


@FAST
@given(st.lists(mutation, min_size=1, max_size=2))
def test_fuzz_mutated_toml_text_loads_or_raises_scenario_error(mutations):
    d = valid()
    for op, path, value, newkey in mutations:
        d = _mutate(d, op, path, value, newkey)
    try:
        text = tomli_w.dumps(d)
    except (TypeError, ValueError):  # None or NaN keys etc. have no TOML form
        return
    _check_outcome(lambda: Scenario.from_toml_text(text))


@FAST
@given(st.text(max_size=200))
def test_fuzz_random_text_never_crashes(text):
    _check_outcome(lambda: Scenario.from_toml_text(text))


@FAST
@given(drug=scalars, amount=scalars, route=scalars, at=scalars, every=scalars)
def test_fuzz_python_dose(drug, amount, route, at, every):
    try:
        d = Dose(drug, amount, route=route, at=at, every=every)
    except ScenarioError as err:
        assert err.field.startswith("dose.")
        return
    assert d.drug in DRUGS and d.route in DRUGS[d.drug].routes and d.amount_mg > 0


def test_compound_times_are_summed_like_a_clock_reading():
    # 6 days and 18 hours is 162 hours; 1 h 30 min is 90 min
    assert Scenario(duration="6d18h").duration_min == 162 * 60
    assert Scenario(duration="1h 30min").duration_min == 90
    with pytest.raises(ScenarioError) as err:
        Scenario(duration="6d18mg")
    assert "duration" in str(err.value) and "6d18mg" in str(err.value)
