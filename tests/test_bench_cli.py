"""`opioidsim bench`: the JSON it promises, consistent figures, and clear messages (no timing assertions)."""
from __future__ import annotations

import json
import math

from opioidsim.cli import main

PROMISED = ("engine_subject_days_per_s", "scipy_subject_days_per_s", "roadrunner_subject_days_per_s",
            "max_relative_error")


def test_bench_json_has_the_promised_figures_and_they_agree(capsys):
    assert main(["bench", "--json", "--subjects", "2", "--days", "0.5"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
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
