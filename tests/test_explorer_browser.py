"""The explorer end to end in a real headless browser: Playwright driving Debian's chromium.

`make test` installs both where missing (the `test` extra brings playwright; the Makefile installs
the chromium package). Set OPIOIDSIM_CHROMIUM to use another chromium binary. Runs are one subject
and a few doses, so they share the engine's compiled program with tests/test_explorer_api.py."""
from __future__ import annotations

import os
import shutil
import threading
import urllib.parse

import pytest
import xarray as xr

from opioidsim import cli
from opioidsim.scenarios import Scenario

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is installed by `make test` (the test extra)")

from opioidsim.explorer.server import make_server  # noqa: E402

#: the first run compiles the engine: minutes on a busy 2-core machine without the disk cache
FIRST_RUN_MS = 600_000
RUN_MS = 180_000


def _chromium() -> str:
    for candidate in (os.environ.get("OPIOIDSIM_CHROMIUM"), shutil.which("chromium"),
                      shutil.which("chromium-browser"), "/usr/bin/chromium"):
        if candidate and os.path.exists(candidate):
            return candidate
    pytest.fail("no chromium found: `make test` installs Debian's chromium package (apt-get install "
                "chromium), or set OPIOIDSIM_CHROMIUM to a chromium binary")


@pytest.fixture(scope="module")
def server():
    srv = make_server("127.0.0.1", 0, warmup=False)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 1400}, accept_downloads=True)
    context._server = server  # for the diagnostics of settled()
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert not errors, errors  # no script errors on the page


def settled(pg, timeout=RUN_MS, state="ready"):
    """Wait until nothing is on its way (no debounced change, request or run) and the figure is in
    ``state``."""
    try:
        pg.wait_for_selector(f'#figure[data-pending="0"][data-state="{state}"]', timeout=timeout, state="attached")
    except sync_api.TimeoutError:
        figure = pg.evaluate("() => ({...document.querySelector('#figure').dataset})")
        jobs = {j.id: (j.label, j.status, j.progress) for j in list(pg.context._server.jobs._jobs.values())}
        pytest.fail(f"the figure did not settle in state {state!r}: figure {figure}, error "
                    f"{pg.inner_text('#error')!r}, progress {pg.inner_text('#progress-text')!r}, jobs {jobs}")


def extreme(pg, readout) -> float:
    return float(pg.get_attribute(f'#summary tr[data-readout="{readout}"]', "data-extreme"))


def open_acute(pg, server, **values):
    """The five-steps page with these control values (from the address, as a shared link gives them)."""
    query = urllib.parse.urlencode(values)
    pg.goto(server.url + "#five-steps" + (f"?{query}" if query else ""))
    settled(pg, FIRST_RUN_MS)
    for name, value in values.items():
        assert pg.input_value(f"#ctl-{name}") == value


def test_the_page_loads_with_the_notice_the_pages_and_the_five_steps(page, server):
    open_acute(page, server, duration="2h")
    assert "never a dosing guide" in page.inner_text("#notice")
    assert page.locator("nav button").all_inner_texts() == ["The five steps", "Chronic use and recovery", "The brain scan",
                                                                  "The animal lab", "A treatment trial"]
    panels = page.locator("#panels .panel").evaluate_all("els => els.map(e => e.dataset.panel)")
    assert panels == ["plasma", "occupancy", "dopamine", "pleasure", "pain", "breathing", "oxygen"]
    assert page.locator('#panels path.median[data-readout="nac_dopamine"]').get_attribute("d").count("L") > 100
    assert page.is_hidden("#error")


def test_a_larger_dose_raises_the_curves_and_naloxone_adds_its_own(page, server):
    open_acute(page, server, duration="2h")
    before_heroin, before_occ = extreme(page, "plasma_heroin"), extreme(page, "mor_occupancy_vta")
    path = page.get_attribute('path.median[data-readout="mor_occupancy_vta"]', "d")
    runs = int(page.get_attribute("#figure", "data-runs"))
    page.fill("#ctl-amount", "40 mg")
    settled(page)
    assert int(page.get_attribute("#figure", "data-runs")) > runs
    assert 3.5 < extreme(page, "plasma_heroin") / before_heroin < 4.5  # linear kinetics: 4× the dose
    assert extreme(page, "mor_occupancy_vta") > before_occ
    assert page.get_attribute('path.median[data-readout="mor_occupancy_vta"]', "d") != path
    assert "amount=40+mg" in page.url  # the address keeps the settings (a link shows the same run)
    assert page.locator('path.median[data-readout="plasma_naloxone"]').count() == 0
    page.check("#ctl-naloxone1")
    settled(page)
    assert page.locator('path.median[data-readout="plasma_naloxone"]').count() == 1
    # the route list follows the drug
    page.select_option("#ctl-drug", "morphine")
    settled(page)
    assert page.locator("#ctl-route option").all_inner_texts() == ["iv", "im", "oral"]


def test_a_bad_value_shows_its_message_and_clears_when_fixed(page, server):
    open_acute(page, server, duration="2h")
    page.fill("#ctl-amount", "ten mg")
    settled(page, state="error")
    message = page.inner_text("#error")
    assert "dose[0].amount" in message and "'ten mg'" in message and "must be a mass" in message
    assert "must be a mass" in page.inner_text('.field-error[data-for="amount"]')
    assert page.get_attribute("#ctl-amount", "aria-invalid") == "true"
    page.fill("#ctl-amount", "5 mg")
    page.fill("#ctl-subjects", "50")
    settled(page, state="error")
    assert "at most 20 subjects" in page.inner_text('.field-error[data-for="subjects"]')
    assert page.get_attribute("#ctl-amount", "aria-invalid") is None
    assert page.inner_text('.field-error[data-for="amount"]') == ""
    page.fill("#ctl-subjects", "1")
    settled(page)
    assert page.is_hidden("#error")
    assert page.get_attribute("#ctl-subjects", "aria-invalid") is None


def test_a_downloaded_scenario_runs_with_opioidsim_run(page, server, tmp_path):
    open_acute(page, server, drug="morphine", amount="5 mg", duration="90min", name="morphine-lesson")
    with page.expect_download() as info:
        page.click("#download")
    download = info.value
    assert download.suggested_filename == "morphine-lesson.toml"
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    scenario = Scenario.from_file(path)
    assert [(d.drug, d.route, d.amount) for d in scenario.doses] == [("morphine", "iv", "5 mg")]
    assert scenario.duration == "90min" and scenario.cohort.subjects == 1
    out = tmp_path / "out"
    assert cli.main(["run", str(path), "--out", str(out), "--no-progress"]) == 0
    assert Scenario.from_file(out / "scenario.toml") == scenario
    with xr.open_dataset(out / "results.nc") as ds:
        assert float(ds["plasma_morphine"].max()) > 0 and float(ds["plasma_heroin"].max()) == 0
        assert ds.sizes["time"] == 361  # 90 min recorded every 15 s (the explorer's "auto")


def test_a_scenario_file_loads_into_the_controls_and_a_bad_one_shows_its_message(page, server, tmp_path):
    open_acute(page, server, duration="2h")
    good = tmp_path / "rescue.toml"
    good.write_text('[scenario]\nname = "rescue"\nduration = "1h"\n\n[[dose]]\ndrug = "fentanyl"\n'
                    'amount = "1 mg"\nat = "5min"\n\n[[dose]]\ndrug = "naloxone"\nroute = "im"\n'
                    'amount = "2 mg"\nat = "12min"\n')
    page.set_input_files("#upload", str(good))
    settled(page)
    assert page.input_value("#ctl-drug") == "fentanyl" and page.input_value("#ctl-amount") == "1 mg"
    assert page.is_checked("#ctl-naloxone1") and page.input_value("#ctl-naloxone1_route") == "im"
    assert page.locator('path.median[data-readout="plasma_fentanyl"]').count() == 1
    bad = tmp_path / "bad.toml"
    bad.write_text('[scenario]\nduration = "1h"\n\n[[dose]]\ndrug = "heroine"\namount = "10 mg"\n')
    page.set_input_files("#upload", str(bad))
    page.wait_for_selector("#error:not([hidden])")
    assert "dose[0].drug" in page.inner_text("#error") and "did you mean 'heroin'" in page.inner_text("#error")


def test_a_file_that_does_not_fit_the_controls_runs_as_written(page, server, tmp_path):
    open_acute(page, server, duration="2h")
    page.click('nav button[data-page="chronic"]')
    text = ('[scenario]\nname = "two-drugs"\nduration = "2d"\nrecord_every = "15min"\n\n'
            '[[dose]]\ndrug = "heroin"\namount = "10 mg"\nat = "1h"\nevery = "12h"\nuntil = "1d"\n\n'
            '[[dose]]\ndrug = "naloxone"\namount = "0.4 mg"\nat = "1d 2h"\n')
    path = tmp_path / "two-drugs.toml"
    path.write_text(text)
    page.set_input_files("#upload", str(path))
    settled(page)
    assert page.is_visible("#file-box") and page.is_hidden("#controls")
    assert "runs exactly as written" in page.inner_text("#file-box")
    assert page.locator('path.median[data-readout="plasma_naloxone"]').count() == 1
    with page.expect_download() as info:
        page.click("#download")
    saved = tmp_path / "saved.toml"
    info.value.save_as(saved)
    assert Scenario.from_file(saved) == Scenario.from_toml_text(text)


def test_the_chronic_page_runs_on_request_and_a_waiting_run_can_be_cancelled(page, server):
    page.goto(server.url + "#chronic")
    page.wait_for_selector("#ctl-use_for")
    assert page.get_attribute("#figure", "data-state") == "empty"  # slow pages wait for "Run"
    page.fill("#ctl-use_for", "1d")
    page.fill("#ctl-abstinence", "2d")
    page.fill("#ctl-subjects", "1")
    settled(page, state="empty")
    page.click("#run")
    settled(page, FIRST_RUN_MS)
    panels = page.locator("#panels .panel").evaluate_all("els => els.map(e => e.dataset.panel)")
    assert panels == ["tolerance", "withdrawal", "dopamine", "balance", "craving"]
    assert "Withdrawal after the last use" in page.inner_text("#notes")
    # hold the engine with another job, so that this run waits in the queue, then cancel it
    release = threading.Event()
    blocker = server.jobs.submit(lambda progress: release.wait(60))
    try:
        page.click("#run")
        page.wait_for_selector("#progress-box:not([hidden])")
        job_ids = [j for j in list(server.jobs._jobs) if j != blocker.id and server.jobs.get(j).status == "queued"]
        assert len(job_ids) == 1
        page.click("#cancel")
        settled(page, state="cancelled")
        server.jobs.wait(job_ids[0], 10)
        assert server.jobs.get(job_ids[0]).status == "cancelled"
    finally:
        release.set()


# ---------------------------------------------------------------------------------------------
# the study pages: the animal lab, the trial, the brain scan
def series_values(pg, figure_id, key) -> list:
    import json

    return json.loads(pg.get_attribute(f'section[data-panel="{figure_id}"] path.median[data-series="{key}"]',
                                       "data-values"))


def test_the_animal_lab_runs_a_control_changes_the_figure_and_a_bad_value_shows_its_message(page, server):
    # 2 rats (the API tests' compiled batch), a training and an access session
    page.goto(server.url + "#animal-lab?training=1&sessions=1&access=4h&seed=5")
    page.wait_for_selector("#ctl-access")
    assert page.get_attribute("#figure", "data-state") == "empty"  # a slow page waits for "Run"
    page.click("#run")
    settled(page, FIRST_RUN_MS)
    figures = page.locator("#panels .panel").evaluate_all("els => els.map(e => e.dataset.panel)")
    assert figures[:2] == ["intake", "first-hour"] and "sessions" in figures
    short = series_values(page, "intake", "short access (1 h)")
    four = series_values(page, "intake", "long access (4h)")
    assert len(four) == 2 and four[1] > short[1] and four[0] == short[0]  # training is the same
    assert page.locator("#table-sessions tbody tr").count() == 2
    # longer access: the long-access line changes (more time with the drug), the short one does not
    page.fill("#ctl-access", "5h")
    settled(page, state="ready")
    page.click("#run")
    settled(page)
    five = series_values(page, "intake", "long access (5h)")
    assert series_values(page, "intake", "short access (1 h)") == short
    assert five[1] > four[1], (four, five)
    assert "access=5h" in page.url
    # a bad value: its message under the control, nothing runs
    runs = page.get_attribute("#figure", "data-runs")
    page.fill("#ctl-rats", "9")
    settled(page, state="error")
    assert "whole number from 1 to 8" in page.inner_text('.field-error[data-for="rats"]')
    assert page.get_attribute("#ctl-rats", "aria-invalid") == "true"
    page.click("#run")
    settled(page, state="error")
    assert page.get_attribute("#figure", "data-runs") == runs


def test_an_animal_experiment_file_opens_on_the_animal_lab(page, server, tmp_path):
    open_acute(page, server, duration="2h")
    from opioidsim.explorer import pages as P

    built = P.get_page("animal-lab").build({"paradigm": "place_preference", "cpp_pairs": "3", "name": "cpp-class"})
    path = tmp_path / "cpp-class.toml"
    path.write_text(built.scenario.to_toml())
    page.set_input_files("#upload", str(path))
    page.wait_for_selector('nav button[data-page="animal-lab"][aria-current="page"]')
    settled(page, state="empty")  # a slow page: its controls are filled, it waits for "Run"
    assert page.input_value("#ctl-paradigm") == "place_preference" and page.input_value("#ctl-cpp_pairs") == "3"
    # a design the controls cannot make runs as written, with the cohort editable
    text = built.scenario.to_toml().replace('session_length = "15min"', 'session_length = "20min"')
    path.write_text(text)
    page.click('nav button[data-page="five-steps"]')
    settled(page)
    page.set_input_files("#upload", str(path))
    page.wait_for_selector("#file-box:not([hidden])")
    assert "an animal experiment" in page.inner_text("#file-box") and page.is_hidden("#controls")
    page.fill("#file-subjects", "9")
    page.wait_for_selector('.field-error[data-for="subjects"]:not(:empty)')
    assert "at most 8 rats" in page.inner_text('.field-error[data-for="subjects"]')


def test_the_trial_page_shows_its_controls_and_a_bad_value_its_message(page, server):
    page.goto(server.url + "#trial")
    page.wait_for_selector("#ctl-people_per_arm")
    assert page.is_checked("#ctl-arm_methadone") and not page.is_checked("#ctl-arm_buprenorphine")
    assert page.is_disabled("#ctl-buprenorphine_dose")  # until its arm is ticked
    page.uncheck("#ctl-arm_methadone")
    settled(page, state="error")
    assert "tick at least one treatment arm" in page.inner_text('.field-error[data-for="arm_methadone"]')
    page.check("#ctl-arm_buprenorphine")
    page.fill("#ctl-people_per_arm", "0")
    settled(page, state="error")
    assert "whole number from 1 to 10" in page.inner_text('.field-error[data-for="people_per_arm"]')
    page.fill("#ctl-people_per_arm", "3")
    settled(page, state="empty")
    assert page.is_hidden("#error")
    with page.expect_download() as info:
        page.click("#download")
    text = open(info.value.path()).read()
    arms = [a.name for a in Scenario.from_toml_text(text).trial.arms]
    assert arms == ["drug-free", "buprenorphine"] and Scenario.from_toml_text(text).cohort.subjects == 6


def test_the_brain_scan_page_runs_in_the_browser_and_draws_its_forest_plot(page, server, monkeypatch):
    """The study on the slow damage model with the pattern's drives fixed and drug-free controls
    (as tests/test_explorer_brain_scan.py's default test runs it; the full model takes minutes)."""
    from test_explorer_brain_scan import _drug_free

    from opioidsim.explorer import brain_scan as B

    monkeypatch.setattr(B, "BATCH", 12)
    monkeypatch.setattr(B, "use_pattern_drives", lambda *a: (0.3, 0.0))
    monkeypatch.setattr(B, "_control_batch", lambda seed: _drug_free(12, seed))
    page.goto(server.url + "#brain-scan?users=8&controls=10&years_min=2&years_max=20&abstinence=30d&seed=5")
    page.wait_for_selector("#ctl-users")
    assert page.get_attribute("#figure", "data-state") == "empty"
    page.click("#run")
    settled(page, FIRST_RUN_MS)
    dots = page.locator("circle.effect")
    assert dots.count() == 6  # one per region
    assert all(float(g) < 0 for g in dots.evaluate_all("els => els.map(e => e.dataset.g)"))  # less grey matter
    assert page.locator("#effects-table tbody tr").count() == 6
    assert "8 virtual users" in page.inner_text("#notes")
