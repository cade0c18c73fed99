"""`opioidsim bench`: the JSON it promises, consistent figures, and clear messages (no timing assertions)."""
from __future__ import annotations

import contextlib
import io
import json
import math

import pytest

from opioidsim.cli import main

PROMISED = ("engine_subject_days_per_s", "scipy_subject_days_per_s", "roadrunner_subject_days_per_s",
            "max_relative_error")


@pytest.fixture(scope="module")
def two_rounds() -> dict:
    """One small bench run of two rounds, read by both tests of its JSON (a run compiles the engine and
    integrates the Radau reference: about a minute)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["bench", "--json", "--subjects", "2", "--days", "0.5", "--rounds", "2"]) == 0
    return json.loads(out.getvalue().strip().splitlines()[-1])


def test_bench_json_has_the_promised_figures_and_they_agree(two_rounds):
    result = two_rounds
    for key in PROMISED:
        assert key in result, key
    assert result["engine_subject_days_per_s"] > 0 and result["scipy_subject_days_per_s"] > 0
    engine, scipy_path = result["rows"][0], result["rows"][1]
    # libRoadRunner runs the exported SBML for the same cohort, and agrees with the Radau reference
    rr = next(r for r in result["rows"] if "RoadRunner" in r["path"])
    assert rr["subjects"] == 2 and result["roadrunner_subject_days_per_s"] > 0
    assert math.isclose(rr["subject_days_per_s"], 2 * 0.5 / rr["run_s"], rel_tol=1e-9)
    assert math.isclose(result["engine_over_roadrunner"],
                        result["engine_subject_days_per_s"] / result["roadrunner_subject_days_per_s"], rel_tol=1e-9)
    assert result["roadrunner_max_relative_error"] < 1e-3
    # each throughput is the simulated subject-days over its run time, and the ratio is theirs
    assert math.isclose(engine["subject_days_per_s"], 2 * 0.5 / engine["run_s"], rel_tol=1e-9)
    assert math.isclose(scipy_path["subject_days_per_s"], 1 * 0.5 / scipy_path["run_s"], rel_tol=1e-9)
    assert math.isclose(result["engine_over_scipy"],
                        result["engine_subject_days_per_s"] / result["scipy_subject_days_per_s"], rel_tol=1e-9)
    # the engine agrees with an independent solver (Radau at rtol 1e-8) to a few percent at worst
    assert 0 <= result["max_relative_error"] < 0.05, result["errors"]
    assert result["max_relative_error"] == max(result["errors"].values())
    # the engine does real work per state update, so it cannot beat the trivial update's rate
    assert 0 < result["fraction_of_machine"] < 1


def test_bench_rejects_more_reference_subjects_than_the_cohort(capsys):
    assert main(["bench", "--subjects", "2", "--reference-subjects", "3"]) == 2
    err = capsys.readouterr().err
    assert "--reference-subjects 3" in err and "--subjects 2" in err


def test_bench_rejects_a_bad_flag_value(capsys):
    assert main(["bench", "--days", "-1"]) == 2
    err = capsys.readouterr().err
    assert "--days" in err and "-1" in err


def test_bench_rounds_keep_each_paths_fastest_run_and_the_ratio_of_every_round(two_rounds):
    result = two_rounds
    assert result["rounds"] == 2
    engine, scipy_path, rr = result["rows"]
    for row, days in ((engine, 2 * 0.5), (scipy_path, 1 * 0.5), (rr, 2 * 0.5)):
        assert len(row["run_s_rounds"]) == 2
        # the row is its path's fastest round, and its rate that round's
        assert row["run_s"] == min(row["run_s_rounds"])
        assert math.isclose(row["subject_days_per_s"], days / row["run_s"], rel_tol=1e-9)
    # each round's ratio is that round's engine against that round's other path
    for key, row, days in (("engine_over_scipy", scipy_path, 0.5), ("engine_over_roadrunner", rr, 1.0)):
        expect = [(1.0 / e) / (days / o) for e, o in zip(engine["run_s_rounds"], row["run_s_rounds"])]
        assert len(result[f"{key}_rounds"]) == 2
        for got, want in zip(result[f"{key}_rounds"], expect):
            assert math.isclose(got, want, rel_tol=1e-9)
        assert math.isclose(result[key], engine["subject_days_per_s"] / row["subject_days_per_s"], rel_tol=1e-9)


def test_bench_rejects_zero_rounds(capsys):
    assert main(["bench", "--rounds", "0"]) == 2
    err = capsys.readouterr().err
    assert "--rounds" in err and "0" in err
