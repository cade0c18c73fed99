"""The explorer's treatment-trial page (issue 8 with issue 5's virtual trials) through the JSON API.

A simulated trial takes minutes on 2 cores even for a handful of people (the course runner runs
each arm as a batch of 16 and compiles for minutes), so the default run checks the page's
controls, messages, limits and downloads without the engine, and draws a hand-made trial whose
numbers are worked out by hand below; the slow run simulates a small trial end to end."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import xarray as xr

from opioidsim import cli
from opioidsim.explorer import pages as P
from opioidsim.explorer import trial_page as T
from opioidsim.scenarios import Scenario
from opioidsim.trial.simulate import randomise

from test_explorer_api import call, run, server  # noqa: F401  (server: the module's fixture)

TINY = {"arm_methadone": True, "people_per_arm": "2", "follow_up_weeks": "1", "history_days": "7", "seed": "7"}


def figure(res, fig_id):
    return next(f for f in res["figures"] if f["id"] == fig_id)


def curve(res, fig_id, key):
    s = next(s for s in figure(res, fig_id)["series"] if s["key"] == key)
    return np.array(s["x"]), np.array([np.nan if v is None else v for v in s["median"]])


# ---------------------------------------------------------------------------------------------
# listing, messages, limits, downloads (no engine)
def test_the_trial_page_is_offered_with_its_arms_and_sizes(server):
    status, out = call(server, "GET", "/api/pages")
    page = next(p for p in out["pages"] if p["id"] == "trial")
    assert page["result_kind"] == "figures" and page["course"] == "trial" and not page["auto_run"]
    names = {c["name"] for c in page["controls"]}
    assert {"arm_methadone", "methadone_dose", "arm_buprenorphine", "buprenorphine_dose", "arm_cm",
            "people_per_arm", "follow_up_weeks", "seed"} <= names
    assert {"trial-buprenorphine-dose", "trial-methadone-vs-no-substitution"} <= set(out["builtins"])


@pytest.mark.parametrize("params, field, control, words", [
    ({"people_per_arm": "0"}, "people_per_arm", "people_per_arm", "whole number from 1 to 10"),
    ({"people_per_arm": "11"}, "people_per_arm", "people_per_arm", "whole number from 1 to 10"),
    ({"follow_up_weeks": "9"}, "follow_up_weeks", "follow_up_weeks", "whole number from 1 to 8"),
    ({"follow_up_weeks": "two"}, "follow_up_weeks", "follow_up_weeks", "whole number from 1 to 8"),
    ({"history_days": "3"}, "history_days", "history_days", "whole number from 7 to 30"),
    ({"arm_methadone": False}, "arm_methadone", "arm_methadone", "tick at least one treatment arm"),
    ({"methadone_dose": "80"}, "trial.arm[1].dose", "methadone_dose", "with a mass unit"),
    ({"arm_buprenorphine": True, "buprenorphine_dose": "lots"}, "trial.arm[2].dose", "buprenorphine_dose",
     "with a mass unit"),
    ({"urine_tests_per_week": "8"}, "trial.urine_tests_per_week", "urine_tests_per_week", "from 1 to 7"),
    ({"street_dose": "20"}, "trial.supply.dose", "street_dose", "mass"),
    # 4 arms × (30 days + 8 weeks) at 4 h steps: too much work for one browser
    ({"arm_buprenorphine": True, "arm_cm": True, "follow_up_weeks": "8", "history_days": "30"}, "trial.follow_up",
     "follow_up_weeks", "= 2,064 arm-steps; the trial page runs at most 1,024"),
])
def test_each_bad_value_names_its_control_and_what_is_allowed(server, params, field, control, words):
    status, out = call(server, "POST", "/api/check", {"page": "trial", "params": {**TINY, **params}})
    assert status == 400, out
    assert out["error"]["field"] == field and out["error"]["control"] == control
    assert words in out["error"]["message"], out["error"]["message"]


def test_the_page_randomises_in_blocks_so_every_arm_gets_the_people_asked_for():
    params = {**TINY, "arm_buprenorphine": True, "arm_cm": True, "people_per_arm": "3"}
    for seed in range(30):
        s = P.get_page("trial").build({**params, "seed": str(seed)}).scenario
        assert s.trial.block_size == 4 and s.cohort.subjects == 12
        assert set(T.arm_sizes(s).values()) == {3}, seed  # 3 blocks of one per arm


def _seed_leaving_an_arm_empty(trial, arms: int, people: int) -> int:
    for seed in range(200):
        if len(np.unique(randomise(trial, seed, np.arange(people)))) < arms:
            return seed
    raise AssertionError("no seed leaves an arm empty")


def test_a_file_whose_simple_randomisation_leaves_an_arm_empty_is_refused(server):
    params = {**TINY, "arm_buprenorphine": True, "arm_cm": True, "people_per_arm": "1"}
    status, out = call(server, "POST", "/api/check", {"page": "trial", "params": params})
    assert status == 200 and "block_size = 4" in out["toml"]
    simple = Scenario.from_toml_text(out["toml"].replace("block_size = 4\n", ""))
    assert simple.trial.block_size == 0
    seed = _seed_leaving_an_arm_empty(simple.trial, 4, 4)
    toml = out["toml"].replace("block_size = 4\n", "").replace("seed = 7\n", f"seed = {seed}\n")
    status, out = call(server, "POST", "/api/check", {"page": "trial", "toml": toml})
    assert status == 400 and out["error"]["field"] == "cohort.subjects"
    assert "simple randomisation of 4 people puts no one in arm" in out["error"]["message"]
    assert "zero people" in out["error"]["message"]


def test_files_beyond_the_limits_are_refused_with_the_field_named(server):
    status, loaded = call(server, "POST", "/api/load", {"builtin": "trial-methadone-vs-no-substitution"})
    assert status == 200 and loaded["page"] == "trial" and loaded["params"] is None  # its own arm names
    body = {"page": "trial", "toml": loaded["toml"]}
    status, err = call(server, "POST", "/api/check", body)
    assert status == 400 and err["error"]["control"] == "subjects" and "at most 40 people" in err["error"]["message"]
    status, err = call(server, "POST", "/api/check", {**body, "subjects": "8"})  # 12 weeks: too long here
    assert status == 400 and err["error"]["field"] == "trial.follow_up" and "at most 8 weeks" in err["error"]["message"]
    short = (loaded["toml"].replace('follow_up = "12w"', 'follow_up = "4w"').replace('history = "30d"', 'history = "14d"')
             .replace('duration = "164160min"\n', ""))  # the trial's own length
    status, ok = call(server, "POST", "/api/check", {**body, "toml": short, "subjects": "8"})
    assert status == 200 and Scenario.from_toml_text(ok["toml"]).cohort.subjects == 8


@pytest.mark.parametrize("extra", [{}, {"arm_methadone": False, "arm_buprenorphine": True, "buprenorphine_dose": "8 mg"},
                                   {"arm_buprenorphine": True, "arm_cm": True, "methadone_dose": "60 mg",
                                    "people_per_arm": "5", "follow_up_weeks": "4", "urine_tests_per_week": "3"}])
def test_the_downloaded_trial_reads_back_into_the_same_controls(server, extra):
    params = {**TINY, **extra, "name": "my-trial"}
    status, out = call(server, "POST", "/api/check", {"page": "trial", "params": params})
    assert status == 200, out
    s = Scenario.from_toml_text(out["toml"])
    arms = [a.name for a in s.trial.arms]
    assert arms[0] == "drug-free" and s.cohort.subjects == int(params["people_per_arm"]) * len(arms)
    assert s.trial.follow_up_weeks == int(params["follow_up_weeks"])
    status, loaded = call(server, "POST", "/api/load", {"toml": out["toml"], "filename": "my-trial.toml"})
    assert status == 200 and loaded["page"] == "trial"
    expected = {**P.get_page("trial").defaults(), **params}
    for key in params:
        assert loaded["params"][key] == expected[key], key


def test_a_waiting_trial_run_can_be_cancelled(server):
    release = threading.Event()
    blocker = server.jobs.submit(lambda progress: release.wait(60))
    try:
        status, out = call(server, "POST", "/api/run", {"page": "trial", "params": TINY})
        assert status == 202
        status, view = call(server, "GET", f"/api/jobs/{out['job']}")
        assert view["status"] == "queued"
        status, view = call(server, "POST", f"/api/jobs/{out['job']}/cancel", {})
        assert view["status"] == "cancelled"
    finally:
        release.set()
    server.jobs.wait(blocker.id, 30)
    assert server.jobs.get(out["job"]).status == "cancelled" and server.jobs.get(out["job"]).result is None


# ---------------------------------------------------------------------------------------------
# drawing a trial whose numbers are known by hand
def _hand_made_trial() -> xr.Dataset:
    """Seven people, two weeks: drug-free 4 (two leave, on days 3 and 7), methadone 3 (one
    leaves on day 10); weekly urines with some missed (NaN)."""
    arm = ["drug-free"] * 4 + ["methadone"] * 3
    retained = [1, 0, 0, 1, 1, 1, 0]
    dropout = [np.nan, 3, 7, np.nan, np.nan, np.nan, 10]
    urine = [[1, 1], [1, np.nan], [np.nan, np.nan], [0, 1], [0, 0], [1, 0], [np.nan, 1]]
    one = np.ones(7)
    ds = xr.Dataset({
        "enrolled": ("subject", one), "started_treatment": ("subject", one), "retained": ("subject", np.array(retained, float)),
        "dropout_day": ("subject", np.array(dropout)), "days_in_treatment": ("subject", np.nan_to_num(dropout, nan=14.0)),
        "lost_to_follow_up": ("subject", np.zeros(7)), "alive": ("subject", one), "relapse": ("subject", np.zeros(7)),
        "overdose_events": ("subject", np.zeros(7)), "days_abstinent": ("subject", np.arange(7.0)),
        "urine_positive": (("subject", "week"), np.array(urine, float)),
    }, coords={"subject": np.arange(7), "week": [1, 2], "arm": ("subject", np.array(arm))})
    ds.attrs.update({"arms": "drug-free,methadone", "control_arm": "drug-free", "follow_up_weeks": 2,
                     "missing_urine_rule": "positive", "trial_name": "hand-made"})
    return ds


def test_the_figures_of_a_hand_made_trial_are_the_textbook_numbers():
    res = T.trial_figures(_hand_made_trial())
    # conservation: everyone randomised is in exactly one arm
    assert [(a["name"], a["randomised"]) for a in res["arms"]] == [("drug-free", 4), ("methadone", 3)]
    flow = figure(res, "consort")
    assert flow["columns"] == ["stage", "drug-free", "methadone"]
    randomised = next(r for r in flow["rows"] if r[0] == "randomised")
    assert randomised[1] + randomised[2] == 7
    # Kaplan–Meier by hand: drug-free 4 at risk, one leaves on day 3 (3/4), one of 3 on day 7
    # (3/4 · 2/3 = 1/2), two censored at day 14; methadone one of 3 leaves on day 10 (2/3)
    x, y = curve(res, "retention", "drug-free")
    assert list(x) == [0, 3, 7, 14, 14] and list(y) == pytest.approx([100, 75, 50, 50, 50], rel=1e-3)
    x, y = curve(res, "retention", "methadone")
    assert list(x) == [0, 10, 14, 14] and list(y) == pytest.approx([100, 66.67, 66.67, 66.67], abs=0.01)
    # urines: a missed sample counts as positive (solid), or only the samples given count
    # (figures are rounded to 4 significant digits)
    assert list(curve(res, "urine", "drug-free")[1]) == pytest.approx([75, 100], rel=1e-3)
    assert list(curve(res, "urine", "drug-free-given")[1]) == pytest.approx([200 / 3, 100], rel=1e-3)
    assert list(curve(res, "urine", "methadone")[1]) == pytest.approx([200 / 3, 100 / 3], rel=1e-3)
    assert list(curve(res, "urine", "methadone-given")[1]) == pytest.approx([50, 100 / 3], rel=1e-3)
    # retention risk ratio by hand: (2/3) / (2/4)
    rr = next(o for o in res["outcomes"] if o["outcome"] == "retention" and o["measure"] == "RR")
    assert rr["estimate"] == pytest.approx(4 / 3, rel=1e-3)
    row = next(r for r, k in zip(figure(res, "effects")["rows"], figure(res, "effects")["keys"])
               if k == "retention:methadone:RR")
    assert row[1] == "methadone vs drug-free" and row[2] == "3 / 4" and row[6].startswith("1.33 (")


# ---------------------------------------------------------------------------------------------
# a simulated trial end to end (minutes)
@pytest.mark.slow
def test_a_small_trial_through_the_api_and_its_download_through_opioidsim_trial(server, tmp_path):
    res = run(server, {"page": "trial", "params": TINY}, timeout=3600)
    s = Scenario.from_toml_text(res["toml"])
    sizes = {a["name"]: a["randomised"] for a in res["arms"]}
    assert sum(sizes.values()) == s.cohort.subjects == 4  # conservation: everyone is in one arm
    assert sizes == T.arm_sizes(s)  # the allocation known before the run is the one it made
    for arm in sizes:
        x, y = curve(res, "retention", arm)
        assert x[0] == 0 and y[0] == 100 and np.all(np.diff(y) <= 0) and x[-1] == 7
    path = tmp_path / "trial.toml"
    path.write_text(res["toml"])
    assert cli.main(["trial", str(path), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    import pandas as pd

    flow = pd.read_csv(tmp_path / "out" / "consort.csv", index_col="arm")
    drawn = figure(res, "consort")
    assert list(flow.index) == drawn["columns"][1:] == ["drug-free", "methadone"]
    for stage, *counts in drawn["rows"]:
        assert list(flow[stage.replace(" ", "_")]) == counts, stage  # the same people, the same course


def test_a_trial_with_published_figures_shows_them_beside_its_own():
    """Retention RR by hand (2/3)/(2/4) = 4/3; its interval holds 1.5 and not 10, both of which
    the hand-made trial names as published; without published figures the table is not drawn."""
    import json

    ds = _hand_made_trial()
    assert "published" not in [f["id"] for f in T.trial_figures(ds)["figures"]]
    ds.attrs["published"] = json.dumps([
        dict(outcome="retention", arm="methadone", measure="RR", estimate=1.5, lower=1.0, upper=2.0, source="near"),
        dict(outcome="retention", arm="methadone", measure="OR", estimate=10.0, source="far, no interval")])
    table = figure(T.trial_figures(ds), "published")
    assert table["keys"] == ["retention:methadone:RR", "retention:methadone:OR"]
    near, far = table["rows"]
    assert near[3].startswith("1.33 (") and near[4] == "1.50 (1.00 to 2.00)" and near[5:7] == ["yes", "yes"]
    assert far[4] == "10.00" and far[5] == "–" and far[7] == "far, no interval"
