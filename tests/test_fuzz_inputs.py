"""Fuzzed input (issue 9): generated scenario files, Python API calls and command lines get either
a runnable scenario or the documented validation error naming the field — never a traceback,
never anything written. The default run tries a few hundred cases per target; the large run is
`make fuzz` (10,000 cases, figures in RELIABILITY.md).

Also here: the holes the fuzzer found, pinned as plain tests, and tests that the oracle itself
can fail (so a passing fuzz run means something).
"""
from __future__ import annotations

import numpy as np
import pytest

from opioidsim import Cohort, Conditions, Scenario, ScenarioError, cli
from opioidsim import fuzz
from opioidsim.errors import MISSING
from opioidsim.scenarios import course, load_scenario
from opioidsim.scenarios.course import Life, Trial
from opioidsim.scenarios.schema import LIMITS

COMMUNITY = {"kind": "community", "duration": "30d"}


def _field(make) -> ScenarioError:
    with pytest.raises(ScenarioError) as e:
        make()
    assert fuzz.check_rejection(e.value)  # the documented form: field, value, what is allowed
    return e.value


# commands: 400, as 300 left `bench` without a broken case once the trial generator gained the
# placebo (hypothesis's draws shift with every generator; `bench` has few flags to break)
@pytest.mark.parametrize("target, cases", [("toml", 300), ("api", 200), ("cli", 100), ("commands", 400)])
def test_fuzz_reduced(target, cases, tmp_path):
    r = fuzz.run_target(target, cases, seed=20240, workdir=tmp_path)
    assert r["failures"] == 0
    assert r["cases"] == cases
    # the generators reach both sides: valid inputs are accepted, broken ones rejected. The mix
    # shifts between machines (hypothesis adapts its generation), so only a floor on each side
    assert r["accepted"] >= cases // 20 and r["rejected"] >= cases // 4, r
    if target in ("toml", "api"):  # and the [life] and [trial] tables, valid and broken
        for kind in ("life", "trial"):
            assert r["accepted_by_kind"].get(kind, 0) > 0 and r["rejected_by_field"].get(kind, 0) > 0, r
    if target == "commands":  # every subcommand is reached both ways
        from opioidsim.fuzz_commands import COMMANDS

        for command in COMMANDS:
            assert r["accepted_by_kind"].get(command, 0) > 0 and r["rejected_by_field"].get(command, 0) > 0, r


@pytest.mark.slow
@pytest.mark.parametrize("target, cases", [("toml", 5000), ("api", 3000), ("cli", 2000), ("commands", 2000)])
def test_fuzz_full(target, cases, tmp_path):
    assert fuzz.run_target(target, cases, workdir=tmp_path)["failures"] == 0


# ---- the oracle can fail ----------------------------------------------------------------------
def test_oracle_flags_any_other_exception():
    with pytest.raises(fuzz.FuzzFailure, match="ZeroDivisionError"):
        fuzz.outcome(lambda: 1 / 0)
    with pytest.raises(fuzz.FuzzFailure, match="AttributeError"):
        fuzz.outcome(lambda: None.cohort)


def test_command_oracle_flags_a_crash_and_a_second_error_line(monkeypatch, tmp_path):
    from opioidsim import bench, fuzz_commands

    case = {"argv": ["bench"], "scenario": {}, "trial": {}, "csv": b""}
    assert fuzz_commands.target_command(case, tmp_path) == "accepted"  # the stub is reached

    def crash(*_a, **_k):
        raise ZeroDivisionError("inside the bench")

    monkeypatch.setattr(bench, "BenchConfig", crash)
    with pytest.raises(fuzz.FuzzFailure, match="ZeroDivisionError"):
        fuzz_commands.target_command(case, tmp_path)
    monkeypatch.undo()

    def two_lines(message):
        import sys

        print("opioidsim: error: first", file=sys.stderr)
        print("and a second line", file=sys.stderr)
        return 2

    monkeypatch.setattr(cli, "_error", two_lines)
    refused = {"argv": ["bench", "--days", "nan"], "scenario": {}, "trial": {}, "csv": b""}
    with pytest.raises(fuzz.FuzzFailure, match="exit 2"):
        fuzz_commands.target_command(refused, tmp_path)


@pytest.mark.parametrize("command", [["run", "acute-heroin-iv"], ["trial", "trial-contingency-management"],
                                     ["sensitivity", "acute-heroin-iv", "--readouts", "plasma_morphine",
                                      "--parameters", "morphine_clearance"]])
@pytest.mark.parametrize("out", ["", ".", "/", "../", "a/.."])
def test_out_must_name_a_results_folder(command, out, capsys):
    # found by the commands fuzzer: `--out ''` crashed with "PosixPath('.') has an empty name"; '.'
    # or '..' would have made the results replace the current folder or its parent
    assert cli.main([*command, "--out", out]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out" in err[0] and repr(out) in err[0], err


def test_oracle_flags_an_error_that_does_not_name_its_field():
    with pytest.raises(fuzz.FuzzFailure, match="does not name its field"):
        fuzz.check_rejection(ScenarioError("dose[0].amount", 5, "x", message="something is wrong"))
    with pytest.raises(fuzz.FuzzFailure, match="without a field"):
        fuzz.check_rejection(ScenarioError("", 5, "x"))
    assert fuzz.check_rejection(ScenarioError("dose[0].amount", MISSING, "required")) == "dose[0].amount"


def test_oracle_flags_an_accepted_scenario_that_cannot_run(monkeypatch):
    monkeypatch.setitem(LIMITS, "max_result_values", 10**30)  # switch the schema's guard off
    huge = Scenario(duration="100y", record_every="30min", cohort={"subjects": 1_000_000})
    with pytest.raises(fuzz.FuzzFailure, match="result values in memory"):
        fuzz.check_accepted(huge)


def test_oracle_flags_a_course_too_big_for_memory(monkeypatch):
    monkeypatch.setitem(LIMITS, "max_course_values", 10**30)  # switch the schema's guard off
    big = load_scenario("trial-methadone-vs-no-substitution").with_cohort(subjects=1_000_000)
    with pytest.raises(fuzz.FuzzFailure, match="per-step values in memory"):
        fuzz.check_accepted(big)


def test_oracle_flags_a_course_whose_timeline_has_another_length(monkeypatch):
    fuzz.check_accepted(Scenario(life={"period": [COMMUNITY]}))  # a sound one passes
    # fractional days: the runner builds whole days
    monkeypatch.setattr(course, "_duration", lambda v, *a, **k: v.strip())
    with pytest.raises(fuzz.FuzzFailure, match="not whole"):
        fuzz.check_accepted(Scenario(life={"period": [{"kind": "community", "duration": "1y"}]}))
    # a decision step of 1440/7 min is not whole engine quanta: seven steps are not a day
    odd = f"{1440 / 7!r}min"
    monkeypatch.setattr(course, "QUANTUM_MIN", 1440 / 7)
    with pytest.raises(fuzz.FuzzFailure, match="timeline lasts"):
        fuzz.check_accepted(Scenario(life={"decide_every": odd, "period": [COMMUNITY]}))


def test_oracle_flags_randomisation_blocks_off_the_allocation(monkeypatch):
    from opioidsim.trial import simulate

    blocked = Scenario(cohort={"subjects": 12}, trial={"block_size": 4, "arm": [{"name": "a"}, {"name": "b"}]})
    fuzz.check_accepted(blocked)  # the real blocks pass
    monkeypatch.setattr(simulate, "_permuted_blocks", lambda allocation, size, seed, places, stream:
                        np.zeros(len(places), int))
    with pytest.raises(fuzz.FuzzFailure, match="does not hold arm"):
        fuzz.check_accepted(blocked)
    # stratified: blocks over everyone, ignoring the strata, are flagged too
    monkeypatch.undo()
    stratified = Scenario(cohort={"subjects": 40, "depression": 0.5},
                          trial={"block_size": 2, "stratify": ["depression"], "arm": [{"name": "a"}, {"name": "b"}]})
    fuzz.check_accepted(stratified)
    plain = simulate.randomise
    monkeypatch.setattr(simulate, "randomise", lambda trial, seed, subjects, cohort=None:
                        plain(trial.model_copy(update={"stratify": []}), seed, subjects))
    with pytest.raises(fuzz.FuzzFailure, match="does not hold arm"):
        fuzz.check_accepted(stratified)


# ---- holes the fuzzer found ----------------------------------------------------------------------
def test_a_group_phase_change_to_none_is_refused_naming_the_field():
    """Found when the trial generator gained block_size: a Python dict can change a group's phase
    field to None, which was accepted and then could not be written back as TOML."""
    data = load_scenario("rat-heroin-short-vs-long-access").to_toml_dict()
    data["paradigm"]["group"][0]["phase"] = {"access": {"trigger": None}}
    e = _field(lambda: Scenario.from_toml_dict(data))
    assert e.field == "paradigm.group[0].phase.access.trigger" and "leave the field out" in str(e)


def test_a_result_too_big_for_memory_is_refused_naming_the_cohort():
    with pytest.raises(ScenarioError) as e:
        Scenario(duration="100y", record_every="30min", cohort={"subjects": 1_000_000})
    assert e.value.field == "cohort.subjects" and "16 GB" in str(e.value)
    with pytest.raises(ScenarioError) as e:  # one subject: it is the record interval
        Scenario(duration="100y", record_every="30s", readouts=None)
    assert e.value.field in ("record_every", "cohort.subjects")
    # an overridden cohort size is checked too (the CLI's --subjects)
    ok = Scenario(duration="12h", record_every="1min")
    with pytest.raises(ScenarioError) as e:
        ok.with_cohort(subjects=1_000_000)
    assert e.value.field == "cohort.subjects"
    assert ok.with_cohort(subjects=1000).cohort.subjects == 1000


def test_too_many_dose_cells_are_refused():
    with pytest.raises(ScenarioError) as e:
        Scenario(duration="60d", record_every="1d", readouts=["spo2"], cohort={"subjects": 1_000_000},
                 doses=[{"drug": "heroin", "amount": "1 mg", "every": "1h"}])
    assert e.value.field == "cohort.subjects" and "dose-event cells" in str(e.value)


def test_cli_huge_subjects_override_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_simulate", lambda s, p: pytest.fail("the engine must not start"))
    code = cli.main(["run", "acute-heroin-iv", "--out", str(tmp_path / "o"), "--subjects", "1000000"])
    err = capsys.readouterr().err
    assert code == 2 and "cohort.subjects" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_simulate_with_something_that_is_not_a_scenario():
    from opioidsim import simulate

    for bad in (None, 3, ["acute-heroin-iv"], {"duration": "1h"}):
        with pytest.raises(ScenarioError) as e:
            simulate(bad)
        assert e.value.field == "<scenario>" and type(bad).__name__ in str(e.value)
    with pytest.raises(ScenarioError) as e:
        simulate("no-such-scenario")
    assert "unknown scenario" in str(e.value)


def test_a_course_too_big_for_memory_is_refused_naming_the_cohort():
    """300,000 subjects × 15 years of 4-hourly decisions recording one readout passed validation
    (the size check counted readouts per day): 1.2·10¹¹ values of per-step records, as the runner
    keeps every step of every subject."""
    trial = {"decide_every": "4h", "history": "3652d", "follow_up": "260w", "arm": [{"name": "a"}]}
    e = _field(lambda: Scenario(cohort={"subjects": 300_000}, trial=trial, readouts=["cows"]))
    assert e.field == "cohort.subjects" and "decision steps" in str(e) and "12 GB" in str(e)
    e = _field(lambda: load_scenario("life-prison-release").with_cohort(subjects=1_000_000))
    assert e.field == "cohort.subjects"
    assert load_scenario("life-prison-release").with_cohort(subjects=1000).cohort.subjects == 1000
    # the guard counts what the runner holds: its recorded columns and default readouts
    from opioidsim.behavior.course import DEFAULT_READOUTS, RECORDED
    from opioidsim.engine.core import QUANTUM_MIN

    assert course.STEP_COLUMNS == len(RECORDED) and course.DEFAULT_COURSE_READOUTS == len(DEFAULT_READOUTS)
    assert course.QUANTUM_MIN == QUANTUM_MIN


def test_a_table_key_that_is_not_text_is_a_scenario_error():
    """{1: 2} as a table (Python only: TOML keys are text) ended in TypeError 'keywords must be strings'."""
    assert _field(lambda: Scenario(duration="1h", cohort={1: 2})).field == "cohort.1"
    assert _field(lambda: Scenario(life={"period": [{**COMMUNITY, None: 1}]})).field == "life.period[0].None"
    assert _field(lambda: Scenario(paradigm={0: "heroin"})).field == "paradigm.0"
    e = _field(lambda: Scenario.from_toml_dict({"scenario": {}, "trial": {"arm": [{"name": "a", 3: 4}]}}))
    assert e.field == "trial.arm[0].3" and "a key must be text" in str(e)
    assert _field(lambda: Life(period=[{True: 1}])).field == "life.periods[0].True"


def test_a_huge_python_int_is_out_of_range_not_an_overflow():
    """float(10**400) raised OverflowError in the range checks of the shares, scores and weeks."""
    huge = 10**400
    assert _field(lambda: Cohort(depression=huge)).field == "cohort.depression"
    assert _field(lambda: Cohort(ptsd=-huge)).field == "cohort.ptsd"
    assert _field(lambda: Cohort(age_at_first_use=huge)).field == "cohort.age_at_first_use"
    assert _field(lambda: Conditions(pain_stimulus=huge)).field == "conditions.pain_stimulus"
    arm = {"name": "b", "medication": "buprenorphine", "induction_cows": huge}
    assert _field(lambda: Trial(arm=[arm])).field == "trial.arms[0].induction_cows"
    arm = {"name": "c", "psychosocial": ["contingency_management"], "cm_weeks": huge}
    assert _field(lambda: Trial(arm=[arm], supply={"potency_cv": 1})).field == "trial.arms[0].cm_weeks"
    e = _field(lambda: Trial(arm=[{"name": "a"}], supply={"availability": huge}))
    assert e.field == "trial.supply.availability"


def test_course_lengths_are_whole_days():
    """"1y" (365.25 days) or "36h" was accepted, but the runner builds whole days: the course ran
    another length than the scenario's duration said."""
    e = _field(lambda: Scenario(life={"period": [COMMUNITY, {"kind": "community", "duration": "1y"}]}))
    assert e.field == "life.periods[1].duration" and "whole number of days" in str(e) and "365.25" in str(e)
    e = _field(lambda: Scenario.from_toml_text('[scenario]\n[trial]\nhistory = "7.5d"\n[[trial.arm]]\nname = "a"'))
    assert e.field == "trial.history"
    # whole days are fine, and the timeline the runner builds is exactly the scenario's length
    from opioidsim.behavior.course import compile_course
    from opioidsim.engine.core import QUANTUM_MIN

    s = Scenario(life={"period": [COMMUNITY, {"kind": "forced_abstinence", "duration": "2w"}]})
    tl = compile_course([(p.kind, p.length_min / 1440, None) for p in s.life.periods], s.life.decide_every_min, 0.8)
    assert tl.quanta.sum() * QUANTUM_MIN == s.duration_min == 44 * 1440


def test_a_long_life_course_keeps_its_exact_length():
    """The duration a [life] sets was written with 6 significant digits: 10,001 days became
    '1.44014e+07min' and the scenario was refused for a duration the user never wrote."""
    s = Scenario(life={"decide_every": "6h", "period": [{"kind": "community", "duration": "10001d"}]})
    assert s.duration_min == 10001 * 1440 and Scenario.from_toml_text(s.to_toml()) == s
    assert load_scenario("life-prison-release").duration == "914400min"  # short ones are written as before


def test_a_life_course_over_100_years_names_the_period():
    """It was refused as scenario.duration = '8.41536e+07min', a field the user never wrote."""
    e = _field(lambda: Scenario(life={"decide_every": "6h",
                                      "period": [{"kind": "community", "duration": "40y"}] * 3}))
    assert e.field == "life.periods[2].duration" and "100 years" in str(e)
    e = _field(lambda: Scenario.from_toml_text(
        '[scenario]\n[life]\ndecide_every = "6h"\n' + '[[life.period]]\nkind = "community"\nduration = "14610d"\n' * 3))
    assert e.field == "life.period[2].duration"


def test_decide_every_is_whole_engine_steps():
    """1440/7 min divides a day, but not into whole 3.75 s engine steps: seven steps were 3 quanta
    short of a day, and the clinic hour drifted."""
    e = _field(lambda: Scenario(trial={"decide_every": f"{1440 / 7!r}min", "arm": [{"name": "a"}]}))
    assert e.field == "trial.decide_every" and "3.75 s" in str(e)
    assert Scenario(trial={"decide_every": "20min", "arm": [{"name": "a"}]}).trial.decide_every_min == 20


def test_deeply_nested_toml_is_a_file_error():
    """tomllib reads nesting recursively: RecursionError."""
    for text in fuzz.DEEP_TEXT[:3]:
        e = _field(lambda: Scenario.from_toml_text(text, source="deep.toml"))
        assert e.field == "<file>" and "nested too deeply" in str(e)


def test_unusable_paths_are_a_scenario_error():
    """A name too long for a path raised OSError (Path.is_file), a NUL in a path ValueError."""
    from opioidsim import simulate

    for load in (load_scenario, simulate):
        assert "unknown scenario" in str(_field(lambda: load("a" * 300)))
        e = _field(lambda: load("a\x00.toml"))
        assert e.field == "<file>" and "NUL" in str(e)


def test_periods_and_arms_are_given_once():
    """[[life.period]] and periods = [...] together: the second was called an unknown key, in a
    message that listed it as allowed."""
    e = _field(lambda: Scenario(life={"period": [COMMUNITY], "periods": [COMMUNITY]}))
    assert e.field == "life.period" and "not both" in str(e)
    e = _field(lambda: Scenario.from_toml_text('[scenario]\n[trial]\narms = [{name = "a"}]\n[[trial.arm]]\nname = "b"'))
    assert e.field == "trial.arm" and "not both" in str(e)
    e = _field(lambda: Scenario.from_toml_text('[life]\n[[life.period]]\nkind = "community"\nduration = "9d"'))
    assert e.field == "scenario" and "[life] sets the duration" in str(e)


def test_a_course_beside_a_paradigm_is_refused_as_two_kinds():
    """A [life] beside a [paradigm] was refused for its duration ('shorter than the paradigm; leave
    duration out'), which the user had left out."""
    par = fuzz._builtin_table("rat-heroin-place-preference", "paradigm")
    e = _field(lambda: Scenario(life={"period": [{"kind": "community", "duration": "1d"}]}, paradigm=par))
    assert e.field in ("life", "paradigm") and "both" in str(e)


def test_a_course_field_replaced_from_python_is_validated_as_in_a_file():
    """validation.treatment.run_trial(..., follow_up="3d") used to copy the trial without checking it
    and failed deep in the outcome tables; a replaced field is now checked like a file's."""
    from opioidsim.validation.treatment import MAT1, run_trial

    sc = load_scenario(MAT1)
    e = _field(lambda: sc.with_course(follow_up="3d"))
    assert e.field == "trial.follow_up" and "3d" in str(e) and "weeks" in str(e)
    e = _field(lambda: run_trial(MAT1, subjects=2, follow_up="3d"))
    assert e.field == "trial.follow_up"
    assert _field(lambda: sc.with_course(follow_ups="4w")).field == "trial.follow_ups"
    assert _field(lambda: load_scenario("acute-heroin-iv").with_course(follow_up="4w")).field == "<scenario>"
    # a valid replacement: the scenario lasts the new history plus the new follow-up
    short = sc.with_course(history="7d", follow_up="4w")
    assert (short.trial.history, short.trial.follow_up) == ("7d", "4w")
    assert short.duration_min == pytest.approx((7 + 28) * 1440.0)
    assert short.trial.arms == sc.trial.arms  # what was not replaced is kept
    # a life course too: two of its periods, and the scenario lasts as long as they do
    life = load_scenario("life-prison-release")
    two = life.with_course(periods=life.life.model_dump()["periods"][:2])
    assert two.duration_min == pytest.approx(sum(p.length_min for p in life.life.periods[:2]))
    assert two.duration_min < life.duration_min
