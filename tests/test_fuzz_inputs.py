"""Fuzzed input (issue 9): generated scenario files, Python API calls and command lines get either
a runnable scenario or the documented validation error naming the field — never a traceback,
never anything written. The default run tries a few hundred cases per target; the large run is
`make fuzz` (10,000 cases, figures in RELIABILITY.md).

Also here: the holes the fuzzer found, pinned as plain tests, and tests that the oracle itself
can fail (so a passing fuzz run means something).
"""
from __future__ import annotations

import pytest

from opioidsim import Scenario, ScenarioError, cli
from opioidsim import fuzz
from opioidsim.errors import MISSING
from opioidsim.scenarios.schema import LIMITS


@pytest.mark.parametrize("target, cases", [("toml", 300), ("api", 200), ("cli", 100)])
def test_fuzz_reduced(target, cases, tmp_path):
    r = fuzz.run_target(target, cases, seed=20240, workdir=tmp_path)
    assert r["failures"] == 0
    assert r["cases"] == cases
    # the generators reach both sides: valid inputs are accepted, broken ones rejected
    assert r["accepted"] > 0 and r["rejected"] > cases // 2, r


@pytest.mark.slow
@pytest.mark.parametrize("target, cases", [("toml", 5000), ("api", 3000), ("cli", 2000)])
def test_fuzz_full(target, cases, tmp_path):
    assert fuzz.run_target(target, cases, workdir=tmp_path)["failures"] == 0


# ---- the oracle can fail ----------------------------------------------------------------------
def test_oracle_flags_any_other_exception():
    with pytest.raises(fuzz.FuzzFailure, match="ZeroDivisionError"):
        fuzz.outcome(lambda: 1 / 0)
    with pytest.raises(fuzz.FuzzFailure, match="AttributeError"):
        fuzz.outcome(lambda: None.cohort)


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


# ---- holes the fuzzer found ----------------------------------------------------------------------
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
