"""The explorer's brain-scan page (issue 8): a cross-sectional imaging study through the JSON API.

The default run checks the page's listing, its input messages and the study's arithmetic on the
slow damage model (the pattern's drives fixed, controls scanned drug-free on the same slow model,
a small batch); the slow run goes through /api/run end to end with the full model."""
from __future__ import annotations


import numpy as np
import pytest

from opioidsim import imaging
from opioidsim.explorer import brain_scan as B
from opioidsim.explorer import pages as P
from opioidsim.scenarios import Scenario

# the JSON helpers of the explorer's API tests (one copy)
from test_explorer_api import call, run, server  # noqa: E402,F401  (server: the module's fixture)


def test_the_brain_scan_page_is_offered_as_a_study_with_its_controls(server):
    status, out = call(server, "GET", "/api/pages")
    assert status == 200
    kinds = {p["id"]: p["result_kind"] for p in out["pages"]}
    assert kinds["brain-scan"] == "effects" and kinds["five-steps"] == kinds["chronic"] == "series"
    page = next(p for p in out["pages"] if p["id"] == "brain-scan")
    assert {"route", "amount", "uses_per_day", "years_min", "years_max", "abstinence", "users", "controls",
            "seed"} <= {c["name"] for c in page["controls"]}
    assert page["panels"] == []  # no time courses: the result is a table of effect sizes
    # it needs the imaging readouts: without them it is not offered
    assert set(B.REGION_LABELS) <= set(P.get_page("brain-scan").requires)


@pytest.mark.parametrize("params, field, control, words", [
    ({"users": "3"}, "users", "users", "whole number from 5 to 200"),
    ({"controls": "201"}, "controls", "controls", "whole number from 5 to 200"),
    ({"users": "12.5"}, "users", "users", "whole number"),
    ({"years_min": "0"}, "years_min", "years_min", "from 0.1 to 30"),
    ({"years_max": "31"}, "years_max", "years_max", "from 0.1 to 30"),
    ({"years_min": "8", "years_max": "2"}, "years_max", "years_max", "at least the fewest years of use (8)"),
    ({"abstinence": "soon"}, "abstinence", "abstinence", "a time from 0 to 3650 days"),
    ({"abstinence": "11y"}, "abstinence", "abstinence", "a time from 0 to 3650 days"),
    ({"uses_per_day": "7"}, "uses_per_day", "uses_per_day", "whole number from 1 to 6"),
    ({"measured_over": "3d"}, "measured_over", "measured_over", "from 7 to 60 days"),
    ({"amount": "lots"}, "dose[0].amount", "amount", "'lots'"),
    ({"route": "oral"}, "dose[0].route", "route", "heroin can be given by iv"),
    ({"seed": "-1"}, "seed", "seed", "whole number from 0"),
])
def test_each_bad_study_input_names_its_field_value_and_what_is_allowed(server, params, field, control, words):
    status, out = call(server, "POST", "/api/check", {"page": "brain-scan", "params": params})
    assert status == 400, out
    assert out["error"]["field"] == field
    assert out["error"]["control"] == control
    assert words in out["error"]["message"]
    assert repr(params[control]) in out["error"]["message"]  # the value as it was typed


def test_the_downloaded_scenario_is_the_use_pattern_and_files_do_not_run_on_the_page(server):
    status, out = call(server, "POST", "/api/check",
                       {"page": "brain-scan", "params": {"uses_per_day": "4", "amount": "15 mg", "route": "smoked"}})
    assert status == 200
    s = Scenario.from_toml_text(out["toml"])
    assert s.duration_min == 30 * 1440 and s.cohort.subjects == 1
    (dose,) = s.doses
    assert (dose.drug, dose.route, dose.amount, dose.every_min) == ("heroin", "smoked", "15 mg", 360.0)
    assert len(s.dose_schedule()) == 4 * 30  # four a day from the start, to the end of the run
    status, err = call(server, "POST", "/api/check", {"page": "brain-scan", "toml": out["toml"]})
    assert status == 400 and "runs from its own controls" in err["error"]["message"]
    # a loaded file goes to a time-course page, never to the study
    status, loaded = call(server, "POST", "/api/load", {"toml": out["toml"], "filename": "pattern.toml"})
    assert status == 200 and loaded["page"] != "brain-scan"


def _hedges_g(u: np.ndarray, c: np.ndarray) -> float:
    """Hedges & Olkin 1985: the standardised mean difference with the pooled SD, times
    J = 1 − 3/(4(n1 + n2) − 9)."""
    n1, n2 = len(u), len(c)
    s = np.sqrt(((n1 - 1) * u.var(ddof=1) + (n2 - 1) * c.var(ddof=1)) / (n1 + n2 - 2))
    return (u.mean() - c.mean()) / s * (1 - 3 / (4 * (n1 + n2) - 9))


def _drug_free(n: int, seed: int) -> dict[str, np.ndarray]:
    """Drug-free scans on the slow damage model: the population's anatomy, no years of use."""
    return imaging.life_course(np.zeros(n), 0.0, 0.0, seed=seed, measures=imaging.VBM_MEASURES)[1]


def test_a_study_gives_lower_grey_matter_in_users_growing_with_years_of_use(monkeypatch):
    """The slow damage model under a fixed drive (about a third of full VTA activation, the order
    of daily heroin use): every region is lower in users (Hedges' g < 0, as in the VBM studies of
    V-GMV-1) and prefrontal grey matter falls with years of use (V-GMV-2)."""
    monkeypatch.setattr(B, "BATCH", 12)
    monkeypatch.setattr(B, "use_pattern_drives", lambda *a: (0.3, 0.0))
    monkeypatch.setattr(B, "_control_batch", lambda seed: _drug_free(12, seed))
    page = P.get_page("brain-scan")
    built = page.build({**page.defaults(), "users": "8", "controls": "10", "years_min": "2", "years_max": "20",
                        "abstinence": "30d", "seed": "5"})
    seen = []
    res = page.study(built.scenario, built.design, seen.append)
    assert seen[0] == 0.0 and seen == sorted(seen)
    assert res["kind"] == "effects" and (res["users"], res["controls"]) == (8, 10)
    rows = {r["measure"]: r for r in res["rows"]}
    assert list(rows) == list(imaging.VBM_MEASURES)
    # the same study by hand: users 0..7 of seed 5, controls 0..9 of seed 6 (a subject is the same
    # in any batch), g by the textbook formula
    years = np.linspace(2, 20, 8)
    users = imaging.life_course(years, 30.0, 0.3, seed=5, measures=imaging.VBM_MEASURES)[1]
    controls = _drug_free(10, 6)
    for m in imaging.VBM_MEASURES:
        g = _hedges_g(users[m], controls[m])
        assert rows[m]["g"] == pytest.approx(g, rel=1e-3), m
        assert rows[m]["g"] < 0 and rows[m]["g_low"] < rows[m]["g"] < rows[m]["g_high"]
    pfc = next(c for c in res["correlation"] if c["measure"] == "vbm_pfc")
    assert pfc["r"] < 0 and pfc["n"] == 8


@pytest.mark.slow
def test_a_brain_scan_through_the_api_end_to_end(server):
    """The full path: the pattern's drives from the full model, controls scanned in the full model.
    Minutes on 2 cores (three engine shapes compile)."""
    params = {"measured_over": "7d", "uses_per_day": "2", "users": "10", "controls": "10", "years_min": "2",
              "years_max": "15", "abstinence": "30d", "seed": "3"}
    res = run(server, {"page": "brain-scan", "params": params}, timeout=1800)
    assert res["kind"] == "effects" and Scenario.from_toml_text(res["toml"]).doses[0].every == "12h"
    assert all(r["g"] < 0 for r in res["rows"]), res["rows"]
    assert next(c for c in res["correlation"] if c["measure"] == "vbm_pfc")["r"] < 0
    assert 0.0 < res["drives"]["mor_signal_vta"] < 1.0
    # the drug-free controls of the full model are the slow model's drug-free anatomy (what the
    # default test above relies on)
    full = B._control_batch(4)
    slow = _drug_free(B.BATCH, 4)
    for m in imaging.VBM_MEASURES:
        np.testing.assert_allclose(full[m], slow[m], rtol=1e-6, atol=1e-9)
