"""The explorer's animal-lab page (issue 8 with issue 4's paradigms) through the JSON API.

Runs are 2 rats (one compiled batch of two), a 1 h training session and two or three access
sessions, recording the three readouts tutorial 03 records, so that every run here shares one
compiled program of the paradigm runner with the tutorial and with each other."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from opioidsim import cli
from opioidsim.explorer import animal_lab as A
from opioidsim.explorer import pages as P
from opioidsim.scenarios import Scenario, load_scenario

from test_explorer_api import call, run, server  # noqa: F401  (server: the module's fixture)

TINY = {"paradigm": "escalation", "training": "1", "sessions": "2", "access": "4h", "rats": "2", "seed": "5"}


def figure(res, fig_id):
    return next(f for f in res["figures"] if f["id"] == fig_id)


def line(res, fig_id, key):
    s = next(s for s in figure(res, fig_id)["series"] if s["key"] == key)
    return np.array(s["x"]), np.array([np.nan if v is None else v for v in s["median"]])


# ---------------------------------------------------------------------------------------------
# listing, messages, limits (no engine)
def test_the_animal_lab_is_offered_with_its_controls(server):
    status, out = call(server, "GET", "/api/pages")
    assert status == 200
    page = next(p for p in out["pages"] if p["id"] == "animal-lab")
    assert page["result_kind"] == "figures" and page["course"] == "paradigm" and not page["auto_run"]
    names = {c["name"] for c in page["controls"]}
    assert {"paradigm", "access", "sessions", "training", "infusion", "rats", "seed", "cpp_dose"} <= names
    options = next(c for c in page["controls"] if c["name"] == "paradigm")["options"]
    assert options == ["escalation", "progressive_ratio", "reinstatement", "place_preference"]
    # the built-in animal experiments are offered now that a page shows them
    assert {"rat-heroin-long-access", "rat-heroin-place-preference"} <= set(out["builtins"])


@pytest.mark.parametrize("params, field, control, words", [
    ({"rats": "0"}, "rats", "rats", "whole number from 1 to 8"),
    ({"rats": "9"}, "rats", "rats", "whole number from 1 to 8"),
    ({"access": "30h"}, "access", "access", "from 1 h to 23 h"),
    ({"access": "soon"}, "access", "access", "from 1 h to 23 h"),
    ({"sessions": "15"}, "sessions", "sessions", "whole number from 1 to 14"),
    ({"training": "2.5"}, "training", "training", "whole number from 0 to 5"),
    ({"paradigm": "maze"}, "paradigm", "paradigm", "must be one of escalation"),
    ({"infusion": "60 mg"}, "paradigm.infusion", "infusion", "per kg of body weight"),
    ({"paradigm": "place_preference", "cpp_dose": "1 mg"}, "paradigm.phase[0].dose", "cpp_dose", "per kg"),
    ({"paradigm": "reinstatement", "extinction": "0"}, "extinction", "extinction", "whole number from 1 to 10"),
    ({"seed": "-1"}, "cohort.seed", "seed", "-1: must be a whole number from 0"),
])
def test_each_bad_value_names_its_control_and_what_is_allowed(server, params, field, control, words):
    status, out = call(server, "POST", "/api/check", {"page": "animal-lab", "params": params})
    assert status == 400, out
    assert out["error"]["field"] == field and out["error"]["control"] == control
    assert words in out["error"]["message"]


def test_files_beyond_the_limits_are_refused_with_the_field_named(server):
    builtin = load_scenario("rat-heroin-long-access")  # 8 rats, 14 sessions of 12 h: fits as written
    status, ok = call(server, "POST", "/api/check", {"page": "animal-lab", "toml": builtin.to_toml()})
    assert status == 200
    status, err = call(server, "POST", "/api/check", {"page": "animal-lab", "toml": builtin.to_toml(), "subjects": "9"})
    assert status == 400 and err["error"]["field"] == "cohort.subjects" and err["error"]["control"] == "subjects"
    assert "at most 8 rats" in err["error"]["message"]
    # 30 sessions of 23 h: about 21,000 decision steps per rat
    data = builtin.to_toml_dict()
    del data["scenario"]["duration"]  # the paradigm's own length
    data["paradigm"]["phase"][1].update(sessions=30, session_length="23h")
    long_ = Scenario.from_toml_dict(data)
    status, err = call(server, "POST", "/api/check", {"page": "animal-lab", "toml": long_.to_toml()})
    assert status == 400 and err["error"]["field"] == "paradigm.phase"
    assert "decision steps per rat" in err["error"]["message"] and "opioidsim run" in err["error"]["message"]
    # an animal experiment is not a time course: the other pages say where it goes
    status, err = call(server, "POST", "/api/check", {"page": "chronic", "toml": builtin.to_toml()})
    assert status == 400 and "open this file" in err["error"]["message"]


def test_animal_files_open_on_the_animal_lab_and_life_courses_are_still_refused(server):
    for name in ("rat-heroin-long-access", "rat-heroin-place-preference"):
        status, out = call(server, "POST", "/api/load", {"builtin": name})
        assert status == 200 and out["page"] == "animal-lab", out
        assert out["params"] is None  # designs the controls do not make: they run as written
    status, out = call(server, "POST", "/api/load", {"builtin": "life-prison-release"})
    assert status == 400 and out["error"]["field"] == "life"
    assert "no page for life courses" in out["error"]["message"]


@pytest.mark.parametrize("extra", [
    {},
    {"paradigm": "progressive_ratio", "access": "1h", "training": "0"},
    {"paradigm": "reinstatement", "extinction": "4", "infusion": "30 ug/kg"},
    {"paradigm": "place_preference", "cpp_pairs": "3", "cpp_dose": "0.5 mg/kg"},
])
def test_the_downloaded_scenario_reads_back_into_the_same_controls(server, extra):
    params = {**TINY, **extra, "name": "my-rats"}
    status, out = call(server, "POST", "/api/check", {"page": "animal-lab", "params": params})
    assert status == 200, out
    scenario = Scenario.from_toml_text(out["toml"])
    assert out["name"] == scenario.name == "my-rats" and scenario.cohort.species == "rat"
    assert Scenario.from_toml_text(scenario.to_toml()) == scenario
    status, loaded = call(server, "POST", "/api/load", {"toml": out["toml"], "filename": "my-rats.toml"})
    assert status == 200 and loaded["page"] == "animal-lab"
    page = P.get_page("animal-lab")
    expected = {**page.defaults(), **params}
    relevant = set(params) - ({"access", "training", "sessions", "extinction"} if params["paradigm"] == "place_preference"
                              else {"cpp_pairs", "cpp_dose"})
    for key in relevant:
        assert loaded["params"][key] == expected[key], key


def test_the_design_is_the_experiment_the_tutorial_writes():
    """The page's escalation design is the tutorial's scenario: training at 1 h, access at the
    chosen length, FR1 heroin at 60 ug/kg decided every 2 min."""
    built = P.get_page("animal-lab").build({**TINY, "training": "2", "sessions": "4", "access": "6h"})
    ph = built.scenario.paradigm.phases
    assert [(p.kind, p.sessions, p.session_length) for p in ph] == [
        ("self_administration", 2, "1h"), ("self_administration", 4, "6h")]
    assert built.scenario.paradigm.infusion == "60 ug/kg" and built.scenario.paradigm.decide_every == "2min"
    assert built.scenario.duration_min == pytest.approx(6 * 1440)  # one session a day
    # the comparison group: the same design at 1 h
    short = Scenario.from_toml_dict(built.design["compare"])
    assert [p.session_length for p in short.paradigm.phases] == ["1h", "1h"]
    assert short.cohort == built.scenario.cohort
    # 1 h access has nothing to compare with
    assert P.get_page("animal-lab").build({**TINY, "access": "1h"}).design["compare"] is None


# ---------------------------------------------------------------------------------------------
# real runs (2 rats: one compiled batch)
@pytest.fixture(scope="module")
def escalation(server):
    return run(server, {"page": "animal-lab", "params": TINY})


def test_long_access_rats_take_more_per_session_than_the_same_rats_with_short_access(escalation):
    res = escalation
    assert res["kind"] == "figures" and res["groups"] == ["short access (1 h)", "long access (4h)"]
    x, short = line(res, "intake", "short access (1 h)")
    _, long_ = line(res, "intake", "long access (4h)")
    assert list(x) == [1, 2, 3]
    # session 1 is training: the same rats under the same schedule, so the same infusions exactly
    assert long_[0] == short[0]
    # four times the time with the drug: more infusions in every access session
    assert np.all(long_[1:] > short[1:] + 5), (short, long_)
    # the first hour is part of the session: never more infusions than the whole session
    _, first_long = line(res, "first-hour", "long access (4h)")
    assert np.all(first_long <= long_)
    assert first_long[0] == long_[0]  # a 1 h training session is all first hour
    # the within-session figure spans each group's own last session
    for key, minutes in (("short access (1 h)", 60), ("long access (4h)", 240)):
        t, da = line(res, "within-dopamine", key)
        assert t[0] == 0 and minutes - 2 <= t[-1] < minutes and np.nanmax(da) > da[0]
    rows = figure(res, "sessions")["rows"]
    assert [r[0] for r in rows] == [1, 2, 3] and rows[1][2] == 1 and rows[1][5] == 4  # hours per group


def test_the_downloaded_long_access_group_runs_with_opioidsim_run_and_gives_the_drawn_numbers(
        escalation, server, tmp_path):
    status, out = call(server, "POST", "/api/check", {"page": "animal-lab", "params": TINY})
    path = tmp_path / "rats.toml"
    path.write_text(out["toml"])
    assert cli.main(["run", str(path), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    assert Scenario.from_file(tmp_path / "out" / "scenario.toml") == Scenario.from_file(path)
    with xr.open_dataset(tmp_path / "out" / "results.nc") as ds:
        per_session = np.median(ds["session_infusions"].values, axis=0)
    _, drawn = line(escalation, "intake", "long access (4h)")
    np.testing.assert_array_equal(per_session, drawn)  # the same rats, the same choices


def test_a_file_that_the_controls_cannot_make_runs_as_written(server):
    text = f"""
[scenario]
name = "fr-and-relapse"
readouts = {A.READOUTS!r}
[cohort]
subjects = 1
seed = 2
species = "rat"
[paradigm]
infusion = "100 ug/kg"
decide_every = "2min"
[[paradigm.phase]]
kind = "self_administration"
sessions = 2
session_length = "2h"
ratio = 2
[[paradigm.phase]]
kind = "extinction"
sessions = 2
session_length = "1h"
[[paradigm.phase]]
kind = "reinstatement"
trigger = "cue"
session_length = "1h"
""".replace("'", '"')
    status, loaded = call(server, "POST", "/api/load", {"toml": text, "filename": "fr2.toml"})
    assert status == 200 and loaded["page"] == "animal-lab" and loaded["params"] is None
    assert loaded["what"] == "an animal experiment: 3 phases, 5 sessions over 5 days"
    res = run(server, {"page": "animal-lab", "toml": loaded["toml"], "filename": "fr2.toml"})
    assert res["groups"] == ["fr-and-relapse"] and res["subjects"] == 1
    assert any("runs exactly as written" in n for n in res["notes"])
    bars = figure(res, "reinstatement")
    assert bars["categories"] == ["extinction (last)", "cue test"]
    x, intake = line(res, "intake", "fr-and-relapse")
    assert list(x) == [1, 2] and intake[1] > 0


def test_the_start_up_warm_up_runs_the_pages_smallest_experiment():
    seen: list[float] = []
    A.warm_up(seen.append)
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)
    assert A.ANIMAL_LAB.warmup is A.warm_up  # queued by ExplorerServer.warm_up
