"""The `opioidsim` command and the results folder (the engine is replaced by a fake here)."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import xarray as xr

from opioidsim import cli
from opioidsim.errors import OutputExistsError
from opioidsim.io.results import RESULT_FILES, package_version, write_results
from opioidsim.scenarios import Scenario, load_scenario
from opioidsim.units import UnitError


def fake_dataset(scenario: Scenario) -> xr.Dataset:
    n = scenario.cohort.subjects
    t_min = np.arange(0, 61, 1.0)
    time = (t_min * 60).astype("timedelta64[s]").astype("timedelta64[ns]")
    rng = np.random.default_rng(scenario.cohort.seed)
    scale = 1 + 0.1 * rng.standard_normal((n, 1))
    bump = np.exp(-((t_min - 20) / 5) ** 2)[None, :]
    da = 5 + 10 * bump * scale
    spo2 = 98 - 8 * bump * scale
    return xr.Dataset(
        {
            "nac_dopamine": (("subject", "time"), da,
                             {"units": "nM", "long_name": "extracellular dopamine in the NAc"}),
            "spo2": (("subject", "time"), spo2,
                     {"units": "%", "long_name": "arterial oxygen saturation"}),
        },
        coords={"subject": np.arange(n), "time": time},
        attrs={"scenario": scenario.name},
    )


class FakeEngine:
    def __init__(self, fail: Exception | None = None):
        self.calls: list[Scenario] = []
        self.fail = fail
        self.progress_seen: list[float] = []

    def __call__(self, scenario, progress):
        self.calls.append(scenario)
        for f in (0.0, 0.5, 1.0):
            progress(f)
            self.progress_seen.append(f)
        if self.fail is not None:
            raise self.fail
        return fake_dataset(scenario)


def _write_report(ds, path, scenario_toml):
    path.write_text(f"<html><body><pre>{scenario_toml}</pre></body></html>")


@pytest.fixture
def engine(monkeypatch):
    fake = FakeEngine()
    monkeypatch.setattr(cli, "_simulate", fake)
    # Decouple from the real report module (written separately): plain summary + tiny report.
    monkeypatch.setattr(cli, "_report_helpers",
                        lambda: (cli.fallback_summary_table, _write_report))
    return fake


def _one_error_line(err: str, *, started: bool = False) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if started:  # the run had begun: its "running ..." notice precedes the error
        assert lines and lines[0].startswith("opioidsim: running "), err
        lines = lines[1:]
    assert len(lines) == 1, err
    assert lines[0].startswith("opioidsim: error: "), err
    assert "Traceback" not in err
    return lines[0]


def _no_leftovers(parent, name):
    left = [p for p in os.listdir(parent) if p == name or p.startswith(f".{name}.")]
    assert left == [], left


# ------------------------------------------------------------------------------------------------
# help and listing
# ------------------------------------------------------------------------------------------------
def test_help_explains_itself(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "opioidsim simulates the brain under heroin" in out
    assert "never a dosing guide" in out and "Research and teaching" in out
    for command in ("scenarios", "run", "validate"):
        assert f"\n  {command} " in out
    assert "examples:" in out and "opioidsim run acute-heroin-iv --out" in out


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 2
    assert "commands:" in capsys.readouterr().out


def test_unknown_command_is_one_line(capsys):
    assert cli.main(["simulate"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "'simulate'" in line


def test_version(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"opioidsim {package_version()}"


def test_scenarios_lists_builtins(capsys):
    assert cli.main(["scenarios"]) == 0
    out = capsys.readouterr().out
    for name in ("acute-heroin-iv", "acute-heroin-routes", "fentanyl-overdose-naloxone",
                 "morphine-analgesia"):
        line = next(ln for ln in out.splitlines() if ln.startswith(name + " "))
        assert len(line.split(None, 1)[1]) > 10  # has a description


def test_scenarios_name_prints_loadable_toml(capsys):
    assert cli.main(["scenarios", "morphine-analgesia"]) == 0
    text = capsys.readouterr().out
    assert Scenario.from_toml_text(text) == load_scenario("morphine-analgesia")


# ------------------------------------------------------------------------------------------------
# run: success
# ------------------------------------------------------------------------------------------------
def test_run_writes_complete_folder(engine, tmp_path, capsys):
    out = tmp_path / "demo"
    rc = cli.main(["run", "acute-heroin-iv", "--out", str(out), "--subjects", "3", "--seed", "7",
                   "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert sorted(os.listdir(out)) == sorted(RESULT_FILES)
    _no_leftovers(tmp_path, "demo.partial")  # no temp folders beside it

    # the engine got the overridden cohort
    [sc] = engine.calls
    assert (sc.cohort.subjects, sc.cohort.seed) == (3, 7)
    assert engine.progress_seen == [0.0, 0.5, 1.0]

    ds = xr.load_dataset(out / "results.nc")
    assert ds.sizes["subject"] == 3 and ds["nac_dopamine"].attrs["units"] == "nM"
    assert ds.attrs["seed"] == 7 and ds.attrs["opioidsim_version"] == package_version()

    again = Scenario.from_file(out / "scenario.toml")
    assert again == sc
    header = (out / "scenario.toml").read_text().splitlines()[:5]
    assert any("opioidsim version:" in h for h in header)
    assert any("seed: 7" in h for h in header)
    assert any("UTC" in h for h in header)

    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and run["seed"] == 7 and run["subjects"] == 3
    assert run["opioidsim_version"] == package_version()
    assert run["scenario"] == "acute-heroin-iv" and run["duration"] == "12h"
    assert run["command"][:3] == ["opioidsim", "run", "acute-heroin-iv"]

    summary = (out / "summary.csv").read_text().splitlines()
    assert summary[0].startswith("readout,units,baseline_median,peak_median")
    assert any(s.startswith("spo2,%,") for s in summary)

    assert "acute-heroin-iv" in (out / "report.html").read_text()

    # a short table on stdout: dopamine peaks ~15 nM at 20 min, SpO2 dips
    table = captured.out
    assert "nac_dopamine" in table and "spo2" in table
    spo2_row = next(ln for ln in table.splitlines() if ln.startswith("spo2"))
    assert spo2_row.split()[-1] == "min" and "90" in spo2_row  # nadir 98 - 8
    assert str(out) in table


def test_run_from_file_and_default_out(engine, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    f = tmp_path / "mine.toml"
    f.write_text('[scenario]\nname = "mine"\nduration = "1h"\n\n[[dose]]\ndrug = "morphine"\n'
                 'amount = "10 mg"\nat = "5min"\n')
    assert cli.main(["run", str(f), "--no-progress"]) == 0
    assert sorted(os.listdir(tmp_path / "out" / "mine")) == sorted(RESULT_FILES)


def test_run_overwrite(engine, tmp_path, capsys):
    out = tmp_path / "res"
    out.mkdir()
    (out / "old.txt").write_text("precious")
    rc = cli.main(["run", "acute-heroin-routes", "--out", str(out), "--no-progress"])
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 2 and "--overwrite" in line and "already exists" in line
    assert engine.calls == []  # refused before simulating
    assert (out / "old.txt").read_text() == "precious"

    rc = cli.main(["run", "acute-heroin-routes", "--out", str(out), "--overwrite",
                   "--no-progress"])
    assert rc == 0
    assert sorted(os.listdir(out)) == sorted(RESULT_FILES)
    assert [p for p in os.listdir(tmp_path) if p.startswith(".res.")] == []


def test_run_into_existing_empty_folder(engine, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert cli.main(["run", "morphine-analgesia", "--out", str(out), "--no-progress"]) == 0
    assert sorted(os.listdir(out)) == sorted(RESULT_FILES)


# ------------------------------------------------------------------------------------------------
# run: bad input → one line, exit 2, nothing run, nothing written
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("flags,words", [
    (["--subjects", "0"], ["--subjects", "1 to 1,000,000", "'0'"]),
    (["--subjects", "abc"], ["--subjects", "'abc'"]),
    (["--subjects", "1000001"], ["--subjects"]),
    (["--subjects", "2.5"], ["--subjects"]),
    (["--seed", "-1"], ["--seed", "'-1'"]),
    (["--seed", "x"], ["--seed"]),
    (["--bogus"], ["--bogus"]),
])
def test_bad_flags(engine, tmp_path, capsys, flags, words):
    out = tmp_path / "o"
    rc = cli.main(["run", "acute-heroin-iv", "--out", str(out)] + flags)
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 2
    for w in words:
        assert w in line
    assert engine.calls == []
    _no_leftovers(tmp_path, "o")


def test_bad_scenario_file_names_field_and_value(engine, tmp_path, capsys):
    f = tmp_path / "bad.toml"
    f.write_text('[scenario]\nduration = "6h"\n\n[[dose]]\ndrug = "heroin"\nroute = "oral"\n'
                 'amount = "10 mg"\n')
    out = tmp_path / "o"
    assert cli.main(["run", str(f), "--out", str(out)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line == ("opioidsim: error: scenario field 'dose[0].route' = 'oral': "
                    "heroin can be given by iv, smoked, intranasal, im")
    assert engine.calls == []
    _no_leftovers(tmp_path, "o")


def test_amount_without_unit(engine, tmp_path, capsys):
    f = tmp_path / "bad.toml"
    f.write_text('[scenario]\nduration = "6h"\n\n[[dose]]\ndrug = "heroin"\namount = 10\n')
    assert cli.main(["run", str(f), "--out", str(tmp_path / "o")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "dose[0].amount" in line and '"10 mg"' in line


def test_toml_syntax_error(engine, tmp_path, capsys):
    f = tmp_path / "broken.toml"
    f.write_text('[scenario]\nduration = "6h"\nname = "x\n')
    assert cli.main(["run", str(f), "--out", str(tmp_path / "o")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "broken.toml" in line and "line 3" in line
    _no_leftovers(tmp_path, "o")


def test_unknown_scenario_name(engine, tmp_path, capsys):
    assert cli.main(["run", "heroin-please", "--out", str(tmp_path / "o")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "'heroin-please'" in line and "acute-heroin-iv" in line


def test_unit_error_from_engine_is_one_line(monkeypatch, tmp_path, capsys):
    fake = FakeEngine(fail=UnitError("'3 parsec' is not a time"))
    monkeypatch.setattr(cli, "_simulate", fake)
    assert cli.main(["run", "acute-heroin-iv", "--out", str(tmp_path / "o"),
                     "--no-progress"]) == 2
    line = _one_error_line(capsys.readouterr().err, started=True)
    assert "parsec" in line
    _no_leftovers(tmp_path, "o")


def test_out_under_a_file_is_refused_before_running(engine, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    assert cli.main(["run", "acute-heroin-iv", "--out", str(tmp_path / "afile" / "res")]) == 2
    assert "not a folder" in _one_error_line(capsys.readouterr().err)
    assert engine.calls == []


def test_engine_crash_leaves_nothing(monkeypatch, tmp_path):
    monkeypatch.setattr(cli, "_simulate", FakeEngine(fail=RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        cli.main(["run", "acute-heroin-iv", "--out", str(tmp_path / "o"), "--no-progress"])
    _no_leftovers(tmp_path, "o")


def test_engine_unavailable_is_one_line(monkeypatch, tmp_path, capsys):
    def missing(scenario, progress):
        raise cli.Unavailable("the simulation engine cannot be loaded (no module)")

    monkeypatch.setattr(cli, "_simulate", missing)
    assert cli.main(["run", "acute-heroin-iv", "--out", str(tmp_path / "o")]) == 1
    assert "engine" in _one_error_line(capsys.readouterr().err, started=True)


# ------------------------------------------------------------------------------------------------
# write_results: atomic
# ------------------------------------------------------------------------------------------------
def test_write_results_failure_removes_temp(tmp_path):
    sc = load_scenario("acute-heroin-routes")
    ds = fake_dataset(sc)

    def broken_report(ds, path, toml):
        path.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        write_results(ds, tmp_path / "r", sc, report_writer=broken_report)
    assert os.listdir(tmp_path) == []


def test_write_results_refuses_nonempty_and_keeps_old_on_failure(tmp_path):
    sc = load_scenario("acute-heroin-routes")
    ds = fake_dataset(sc)
    out = write_results(ds, tmp_path / "r", sc)
    assert sorted(os.listdir(out)) == ["results.nc", "run.json", "scenario.toml"]
    with pytest.raises(OutputExistsError):
        write_results(ds, tmp_path / "r", sc)

    def broken_summary(ds, path):
        raise ValueError("bad summary")

    with pytest.raises(ValueError):
        write_results(ds, tmp_path / "r", sc, overwrite=True, summary_writer=broken_summary)
    # the old results are untouched and nothing else is left beside them
    assert sorted(os.listdir(out)) == ["results.nc", "run.json", "scenario.toml"]
    assert os.listdir(tmp_path) == ["r"]


def test_write_results_refuses_a_file(tmp_path):
    sc = load_scenario("acute-heroin-routes")
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputExistsError):
        write_results(fake_dataset(sc), tmp_path / "f", sc, overwrite=True)


# ------------------------------------------------------------------------------------------------
# validate
# ------------------------------------------------------------------------------------------------
RESULTS = [
    {"id": "resp.spo2_nadir", "finding": "SpO2 falls after fentanyl", "target": 85.0,
     "simulated": np.float64(84.2), "passed": True, "source": "doi:10/xyz"},
    {"id": "da.nac_peak", "finding": "NAc dopamine rises", "target": 2.0,
     "simulated": math.nan, "passed": False, "source": "doi:10/abc"},
]


@pytest.fixture
def validation(monkeypatch):
    seen = {}

    def fake(only, reduced=False, parameters=None):
        seen["only"], seen["reduced"], seen["parameters"] = only, reduced, parameters
        return [{**r, "form": "reduced" if reduced and r["id"] == "da.nac_peak" else "full"}
                for r in RESULTS if only is None or r["id"].startswith(only)]

    monkeypatch.setattr(cli, "_run_validation", fake)
    return seen


def test_validate_table_and_exit_codes(validation, capsys):
    assert cli.main(["validate"]) == 1
    out = capsys.readouterr().out
    assert "resp.spo2_nadir" in out and "pass" in out and "FAIL" in out
    assert "1 of 2" in out
    assert cli.main(["validate", "--only", "resp"]) == 0
    assert validation["only"] == "resp"
    assert "da.nac_peak" not in capsys.readouterr().out


def test_validate_json(validation, capsys):
    assert cli.main(["validate", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert [d["id"] for d in data] == ["resp.spo2_nadir", "da.nac_peak"]
    assert data[0]["simulated"] == pytest.approx(84.2) and data[0]["passed"] is True
    assert data[1]["simulated"] is None  # NaN is not JSON
    assert set(data[0]) == {"id", "finding", "target", "simulated", "passed", "source", "form"}


def test_validate_reduced_says_which_rows_are_reduced(validation, capsys):
    assert cli.main(["validate"]) == 1
    assert validation["reduced"] is False and "reduced" not in capsys.readouterr().out
    assert cli.main(["validate", "--reduced"]) == 1
    out = capsys.readouterr().out
    assert validation["reduced"] is True
    assert "FAIL (reduced)" in out and "pass (reduced)" not in out  # only the row run reduced
    assert "1 of 2 validation targets passed (1 in their reduced form" in out


def test_validate_set_says_what_was_set(validation, capsys):
    assert cli.main(["validate", "--set", "heroin_clearance=120 L/h", "--set", "quit_brake=0.5"]) == 1
    assert validation["parameters"] == {"heroin_clearance": "120 L/h", "quit_brake": 0.5}
    out = capsys.readouterr().out
    assert out.startswith("parameters set (not their sourced values): heroin_clearance = 120 L/h, quit_brake = 0.5")
    assert cli.main(["validate", "--json", "--set", "quit_brake=0.5"]) == 1
    assert all(r["parameters_set"] == "quit_brake = 0.5" for r in json.loads(capsys.readouterr().out))
    assert cli.main(["validate"]) == 1 and validation["parameters"] == {}
    assert "parameters set" not in capsys.readouterr().out


def test_validate_bad_set_is_one_line(capsys):
    # the real check, before any target runs (no target matches the prefix anyway)
    assert cli.main(["validate", "--only", "V-NOPE", "--set", "heroin_clearence=1"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "--set heroin_clearence=1.0" in line and "did you mean 'heroin_clearance'" in line


def test_validate_unknown_prefix(validation, capsys):
    assert cli.main(["validate", "--only", "zzz"]) == 2
    assert "zzz" in _one_error_line(capsys.readouterr().err)


# -- what `opioidsim trial` and a life course print after the run -------------------------------
def test_a_trial_prints_its_effect_estimates_not_blank_rows(capsys):
    # a 2×2 worked by hand (tests/test_trial_stats.py): 15/100 events on the arm, 30/100 on the
    # control give RR 0.5 (95 % CI 0.2872-0.8704); an outcome without events is not estimable
    from opioidsim.trial.stats import OUTCOME_COLUMNS, risk_ratio

    est = risk_ratio(15, 100, 30, 100)
    rows = [["retention", "methadone", "drug-free", 100, 100, 0.15, 0.30, "RR", est.value, est.lower, est.upper,
             est.p_value, 15, 30],
            ["mortality", "methadone", "drug-free", 100, 100, 0.0, 0.0, "RR", math.nan, math.nan, math.nan,
             math.nan, 0, 0],
            ["days_abstinent", "methadone", "drug-free", 100, 100, 19.5, 7.0, "d", 0.47, 0.18, 0.75, 0.001,
             math.nan, math.nan]]
    import pandas as pd

    cli._print_summary(pd.DataFrame(rows, columns=OUTCOME_COLUMNS), 200)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("effect estimates") and "200 subjects" in lines[0]
    assert all(line.strip() for line in lines), lines  # no blank rows (what was printed before)
    body = lines[3:]
    assert len(body) == 3
    assert "retention" in body[0] and "methadone vs drug-free" in body[0] and "15.0 %" in body[0]
    assert "30.0 %" in body[0] and "0.5 (0.2872 to 0.8704)" in body[0]
    assert "not estimable" in body[1]
    assert "19.5" in body[2] and "0.47 (0.18 to 0.75)" in body[2]


def test_a_life_course_prints_one_row_per_period(capsys):
    import pandas as pd

    table = pd.DataFrame([
        {"period": 1, "kind": "community", "start_day": 0, "days": 60, "alive_at_start": 16, "person_years": 2.6,
         "use_day_share_median": 0.9, "uses_per_day_median": 2.5, "overdoses": 1, "deaths": 1,
         "deaths_per_1000py": 384.6},
        {"period": 2, "kind": "forced_abstinence", "start_day": 60, "days": 60, "alive_at_start": 15,
         "person_years": 2.46, "use_day_share_median": 0.0, "uses_per_day_median": 0.0, "overdoses": 0,
         "deaths": 0, "deaths_per_1000py": 0.0},
        {"period": "all", "kind": "whole course", "start_day": 0, "days": 120, "alive_at_start": 16,
         "person_years": 5.06, "use_day_share_median": 0.45, "uses_per_day_median": 1.2, "overdoses": 1,
         "deaths": 1, "deaths_per_1000py": 197.6}])
    cli._print_summary(table, 16)
    lines = capsys.readouterr().out.splitlines()
    assert all(line.strip() for line in lines), lines
    body = lines[3:]
    assert [row.split()[:2] for row in body] == [["1", "community"], ["2", "forced_abstinence"], ["all", "whole"]]
    assert body[0].split()[-3:] == ["1", "1", "384.6"]
