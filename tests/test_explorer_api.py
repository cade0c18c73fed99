"""The explorer's JSON endpoints and job queue, without a browser (opioidsim.explorer).

Runs use one virtual subject (a batch of two) and at most four doses, so that every engine run here
shares one compiled program."""
from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest

from opioidsim.engine.core import simulate
from opioidsim.errors import ScenarioError
from opioidsim.explorer import pages as P
from opioidsim.explorer.jobs import Busy, JobManager
from opioidsim.explorer.server import MAX_BODY, make_server
from opioidsim.scenarios import Scenario


@pytest.fixture(scope="module")
def server():
    srv = make_server("127.0.0.1", 0, warmup=False)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def call(srv, method, path, body=None, *, headers=None, raw=None):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    hdrs = {"Content-Type": "application/json"} if data is not None else {}
    hdrs.update(headers or {})
    req = urllib.request.Request(srv.url.rstrip("/") + path, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def run(srv, body, timeout=600):
    status, out = call(srv, "POST", "/api/run", body)
    assert status == 202, out
    job = srv.jobs.wait(out["job"], timeout)
    status, view = call(srv, "GET", f"/api/jobs/{job.id}")
    assert view["status"] == "done", view
    return view["result"]


def series(result, panel, readout, which="median"):
    p = next(p for p in result["panels"] if p["id"] == panel)
    s = next(s for s in p["series"] if s["readout"] == readout)
    return np.array([np.nan if v is None else v for v in s[which]])


def at(result, t):
    return int(np.argmin(np.abs(np.array(result["time"]) - t)))


# ---------------------------------------------------------------------------------------------
# pages, validation, limits (no engine)
def test_pages_are_listed_with_their_controls_limits_and_the_research_notice(server):
    status, out = call(server, "GET", "/api/pages")
    assert status == 200
    ids = [p["id"] for p in out["pages"]]
    assert ids[:2] == ["five-steps", "chronic"]
    acute = out["pages"][0]
    names = {c["name"] for c in acute["controls"]}
    assert {"drug", "route", "amount", "naloxone1", "naloxone1_amount", "naloxone1_at", "subjects"} <= names
    route = next(c for c in acute["controls"] if c["name"] == "route")
    assert route["options_by"] == "drug" and route["options_map"]["fentanyl"] == ["iv", "intranasal"]
    assert "never a dosing guide" in out["notice"]
    assert out["limits"]["max_subjects"] == P.LIMITS["max_subjects"]
    assert "chronic-heroin" in out["builtins"]


def test_a_page_whose_mechanism_does_not_exist_is_not_offered():
    page = P.Page(id="future-page", title="A future mechanism", intro="", controls=(), panels=(),
                  build_data=lambda v: ({}, {}), params_from=lambda s: None,
                  requires=("readout_not_in_the_model",))
    P.register(page)
    try:
        assert "future-page" not in [p.id for p in P.pages()]
        with pytest.raises(ScenarioError, match="unknown page"):
            P.get_page("future-page")
    finally:
        P._REGISTRY.pop("future-page")


def test_a_bad_value_gets_the_message_a_scenario_file_gets(server):
    status, out = call(server, "POST", "/api/check", {"page": "five-steps", "params": {"amount": "ten mg"}})
    assert status == 400
    err = out["error"]
    assert err["field"] == "dose[0].amount" and err["control"] == "amount"
    text = Scenario(duration="6h").to_toml() + '\n[[dose]]\ndrug = "heroin"\namount = "ten mg"\n'
    with pytest.raises(ScenarioError) as file_error:
        Scenario.from_toml_text(text)
    assert err["message"] == str(file_error.value)
    assert "'ten mg'" in err["message"] and "must be a mass" in err["message"]


@pytest.mark.parametrize("page, params, field, control, words", [
    ("five-steps", {"route": "oral"}, "dose[0].route", "route", "heroin can be given by iv"),
    ("five-steps", {"naloxone1": True, "naloxone1_at": "7h"}, "dose[1].at", "naloxone1_at",
     "before the end of the scenario"),
    ("five-steps", {"subjects": "0"}, "cohort.subjects", "subjects", "whole number from 1"),
    ("five-steps", {"subjects": "21"}, "cohort.subjects", "subjects", "at most 20 subjects"),
    ("five-steps", {"duration": "4y"}, "scenario.duration", "duration", "at most 1,095 days"),
    ("chronic", {"subjects": "20"}, "cohort.subjects", "subjects", "subject-doses"),
    ("chronic", {"uses_per_day": "9"}, "uses_per_day", "uses_per_day", "whole number from 1 to 6"),
    ("chronic", {"abstinence": "soon"}, "abstinence", "abstinence", "a time with a unit"),
    ("chronic", {"use_for": "forever"}, "scenario.duration", "use_for", "'forever'"),
])
def test_each_bad_input_names_its_field_value_and_what_is_allowed(server, page, params, field, control, words):
    status, out = call(server, "POST", "/api/check", {"page": page, "params": params})
    assert status == 400, out
    assert out["error"]["field"] == field
    assert out["error"]["control"] == control
    assert words in out["error"]["message"]


def test_check_returns_the_toml_and_it_reads_back_into_the_same_controls(server):
    params = {"drug": "fentanyl", "route": "intranasal", "amount": "200 ug", "naloxone1": True,
              "naloxone1_route": "im", "naloxone1_amount": "2 mg", "naloxone1_at": "25min",
              "duration": "3h", "subjects": "4", "seed": "9", "name": "my-class-demo"}
    status, out = call(server, "POST", "/api/check", {"page": "five-steps", "params": params})
    assert status == 200
    scenario = Scenario.from_toml_text(out["toml"])
    assert out["name"] == scenario.name == "my-class-demo"
    assert scenario.readouts is None  # the downloaded file records every readout
    assert [(d.drug, d.route, d.amount, d.at) for d in scenario.doses] == [
        ("fentanyl", "intranasal", "200 ug", "10min"), ("naloxone", "im", "2 mg", "25min")]
    status, loaded = call(server, "POST", "/api/load", {"toml": out["toml"], "filename": "x.toml"})
    assert status == 200 and loaded["page"] == "five-steps"
    for key, value in params.items():
        assert loaded["params"][key] == value, key


def test_loading_built_in_scenarios_picks_the_page_and_keeps_what_does_not_fit(server):
    status, out = call(server, "POST", "/api/load", {"builtin": "fentanyl-overdose-naloxone"})
    assert status == 200 and out["page"] == "five-steps"
    assert out["params"]["naloxone1"] and out["params"]["naloxone2"]
    assert out["params"]["naloxone2_route"] == "intranasal"
    status, out = call(server, "POST", "/api/load", {"builtin": "chronic-heroin"})
    assert status == 200 and out["page"] == "chronic" and out["params"] is None  # escalating doses
    assert Scenario.from_toml_text(out["toml"]) == Scenario.from_toml_text(out["toml"])
    # as written it is too big for the explorer; with two subjects it fits
    status, err = call(server, "POST", "/api/check", {"page": "chronic", "toml": out["toml"]})
    assert status == 400 and err["error"]["control"] == "subjects"
    assert "subject-doses" in err["error"]["message"]
    status, ok = call(server, "POST", "/api/check", {"page": "chronic", "toml": out["toml"], "subjects": "2"})
    assert status == 200 and Scenario.from_toml_text(ok["toml"]).cohort.subjects == 2


def test_a_bad_scenario_file_is_refused_with_its_message(server):
    text = '[scenario]\nduration = "6h"\n\n[[dose]]\ndrug = "heroin"\nroute = "oral"\namount = "10 mg"\n'
    status, out = call(server, "POST", "/api/load", {"toml": text, "filename": "bad.toml"})
    assert status == 400
    assert out["error"]["field"] == "dose[0].route"
    assert "heroin can be given by" in out["error"]["message"]
    status, out = call(server, "POST", "/api/load", {"toml": "[scenario\n", "filename": "broken.toml"})
    assert status == 400 and "not valid TOML" in out["error"]["message"]
    status, out = call(server, "POST", "/api/load", {"builtin": "life-prison-release"})
    assert status == 400 and "no page for life courses yet" in out["error"]["message"]
    status, out = call(server, "GET", "/api/pages")
    assert "life-prison-release" not in out["builtins"]


def test_requests_that_could_come_from_another_site_or_abuse_the_server_are_refused(server):
    status, out = call(server, "POST", "/api/check", raw=b"page=five-steps",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415
    status, out = call(server, "GET", "/api/pages", headers={"Host": "evil.example:80"})
    assert status == 403 and "not allowed" in out["error"]["message"]
    status, out = call(server, "POST", "/api/load", raw=b"{" + b" " * MAX_BODY + b"}")
    assert status == 413
    status, out = call(server, "GET", "/api/jobs/0123456789abcdef")
    assert status == 404
    status, out = call(server, "POST", "/api/run", {"page": "five-steps", "params": ["not", "an", "object"]})
    assert status == 400 and "JSON object" in out["error"]["message"]


# ---------------------------------------------------------------------------------------------
# job queue (no engine)
def test_a_cancelled_job_stops_at_its_next_progress_report():
    jobs = JobManager()
    reached = []

    def work(progress):
        for i in range(1000):
            if i == 3:
                jobs.cancel(job.id)
            progress(i / 1000)
            reached.append(i)
        return "finished"

    job = jobs.submit(work)
    done = jobs.wait(job.id, 30)
    jobs.shutdown()
    assert done.status == "cancelled" and done.result is None
    assert max(reached) == 2


def test_one_browser_cannot_queue_more_than_the_limit():
    jobs = JobManager(max_waiting=2)
    release = threading.Event()
    blocked = [jobs.submit(lambda p: release.wait(30)) for _ in range(2)]
    warm = jobs.submit(lambda p: None, warmup=True)  # warm-ups do not count
    with pytest.raises(Busy, match="busy with 2 runs"):
        jobs.submit(lambda p: None)
    jobs.cancel(blocked[1].id)
    assert jobs.get(blocked[1].id).status == "cancelled"
    extra = jobs.submit(lambda p: "ran")  # room again
    release.set()
    assert jobs.wait(extra.id, 30).result == "ran"
    assert jobs.wait(warm.id, 30).status == "done"
    jobs.shutdown()


# ---------------------------------------------------------------------------------------------
# real engine runs (one subject, a batch of two, at most four doses: one compiled program)
ACUTE = {"drug": "heroin", "amount": "10 mg", "duration": "2h"}


def test_acute_run_gives_the_five_steps_aligned_in_time(server):
    res = run(server, {"page": "five-steps", "params": ACUTE})
    assert res["time_unit"] == "min" and res["time"][0] == 0 and res["time"][-1] == 120
    ids = [p["id"] for p in res["panels"]]
    assert ids == ["plasma", "occupancy", "dopamine", "pleasure", "pain", "breathing", "oxygen"]
    plasma = [s["readout"] for s in res["panels"][0]["series"]]
    assert plasma == ["plasma_heroin", "plasma_6mam", "plasma_morphine"]  # drugs never given are left out
    dose = at(res, 10)
    assert series(res, "occupancy", "mor_occupancy_vta")[dose + 10] > 0.5 > series(res, "occupancy", "mor_occupancy_vta")[0]
    da = series(res, "dopamine", "nac_dopamine")
    assert da[dose + 10:].max() > 1.5 * da[0]
    assert series(res, "pain", "pain")[dose + 20] < series(res, "pain", "pain")[0]
    rows = {r["readout"]: r for r in res["summary"]}
    assert rows["ventilation"]["kind"] == "min" and rows["ventilation"]["extreme"] < rows["ventilation"]["baseline"]
    assert Scenario.from_toml_text(res["toml"]).doses[0].amount == "10 mg"


def test_naloxone_rescues_breathing_after_a_fentanyl_overdose(server):
    base = {"drug": "fentanyl", "amount": "1.5 mg", "duration": "1h"}
    alone = run(server, {"page": "five-steps", "params": base})
    rescued = run(server, {"page": "five-steps", "params": {**base, "naloxone1": True, "naloxone1_route": "iv",
                                                              "naloxone1_amount": "2 mg", "naloxone1_at": "15min"}})
    k = at(alone, 25)
    assert series(alone, "breathing", "ventilation")[k] < 2.0  # near apnoea without rescue
    assert series(rescued, "breathing", "ventilation")[k] > 2 * series(alone, "breathing", "ventilation")[k]
    assert series(rescued, "oxygen", "spo2")[at(rescued, 40)] > series(alone, "oxygen", "spo2")[at(alone, 40)]
    assert "plasma_naloxone" in [s["readout"] for s in rescued["panels"][0]["series"]]
    assert "in 1 of 1 virtual subject" in alone["notes"][0]


def test_a_small_cohort_is_drawn_as_median_and_band_of_the_same_subjects_a_direct_run_gives(server):
    pair = run(server, {"page": "five-steps", "params": {**ACUTE, "subjects": "2", "seed": "5"}})
    assert pair["subjects"] == 2
    lo, mid, hi = (series(pair, "dopamine", "nac_dopamine", w) for w in ("lo", "median", "hi"))
    assert np.all(lo <= mid) and np.all(mid <= hi) and np.any(hi - lo > 0.1)  # a band, not a line
    # one subject runs in a compiled batch of two and is cut back: still the scenario's subject 0
    one = run(server, {"page": "five-steps", "params": {**ACUTE, "subjects": "1", "seed": "5"}})
    assert one["subjects"] == 1
    scenario = Scenario.from_toml_text(one["toml"])
    direct = simulate(scenario.model_copy(update={"readouts": list(P.explorer_readouts())}))
    np.testing.assert_allclose(series(one, "dopamine", "nac_dopamine"), direct["nac_dopamine"].values[0], rtol=1e-3)
    assert not np.allclose(series(one, "dopamine", "nac_dopamine"), mid, rtol=1e-3)


def test_chronic_run_shows_tolerance_withdrawal_and_the_balance(server):
    params = {"uses_per_day": "3", "use_for": "1d", "abstinence": "3d", "subjects": "1"}
    res = run(server, {"page": "chronic", "params": params})
    assert res["time_unit"] == "days" and res["phases"] == [{"start": 0, "end": 0.6667, "label": "use"}]
    capacity = series(res, "tolerance", "mor_capacity_vta")
    assert capacity.min() < 0.95 and capacity[0] == 1
    cows = series(res, "withdrawal", "cows")
    assert cows[at(res, 2.0)] > cows[0] + 2  # withdrawal the day after the last use
    assert any("Withdrawal after the last use" in n for n in res["notes"])
    balance = [s["label"] for s in next(p for p in res["panels"] if p["id"] == "balance")["series"]]
    assert len(balance) == 3


def test_a_real_run_can_be_cancelled_between_segments():
    scenario, n = P.get_page("five-steps").sim_scenario(P.get_page("five-steps").build(ACUTE).scenario)
    jobs = JobManager()
    seen = []

    def work(progress):
        def report(f):
            seen.append(f)
            if f > 0:
                jobs.cancel(job.id)
            progress(f)
        return simulate(scenario, progress=report)

    job = jobs.submit(work)
    done = jobs.wait(job.id, 600)
    jobs.shutdown()
    assert done.status == "cancelled"
    assert len(seen) == 1 and 0 < seen[0] < 1


# ---------------------------------------------------------------------------------------------
# the command
def test_explore_flags_are_checked_with_one_line_errors(capsys):
    from opioidsim import cli

    assert cli.main(["explore", "--port", "http"]) == 2
    assert "--port: must be a whole number from 0 to 65,535 (got 'http')" in capsys.readouterr().err
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        assert cli.main(["explore", "--port", str(port), "--no-warmup"]) == 2
    assert f"--port {port}: the port is in use" in capsys.readouterr().err


def test_opioidsim_explore_serves_the_page_on_localhost():
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "opioidsim.cli", "explore", "--port", "0", "--no-warmup"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("opioidsim explorer at http://127.0.0.1:"), (line, proc.stderr.read())
        url = line.split()[3]
        with urllib.request.urlopen(url, timeout=30) as r:
            page = r.read().decode()
        assert "<title>opioidsim explorer</title>" in page and "never a dosing guide" in page
        with urllib.request.urlopen(url + "static/app.js", timeout=30) as r:
            assert r.headers["Content-Type"].startswith("text/javascript")
    finally:
        proc.terminate()
        proc.wait(30)


def test_the_page_order_does_not_depend_on_which_page_module_is_imported_first():
    # CI once listed the trial before the animal lab: a test had imported animal_lab first
    import subprocess
    import sys

    orders = []
    for first in ("opioidsim.explorer.animal_lab", "opioidsim.explorer.trial_page", "opioidsim.explorer.server"):
        code = f"import {first}\nfrom opioidsim.explorer import pages as P\nprint(','.join(p.id for p in P.pages()))"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
        orders.append(out.stdout.strip())
    assert orders[0] == orders[1] == orders[2] == "five-steps,chronic,brain-scan,animal-lab,trial", orders
