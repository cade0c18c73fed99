"""Animal paradigms (issue 4): the [paradigm] table, the timeline, rat physiology and the agent."""
import math

import numpy as np
import pytest

from opioidsim.behavior import simulate_paradigm
from opioidsim.behavior.timeline import CHAMBER, HOME, compile_timeline, progressive_ratio
from opioidsim.engine.core import subject_parameters
from opioidsim.errors import ScenarioError
from opioidsim.model.model import default_model
from opioidsim.scenarios import Scenario, load_scenario
from opioidsim.scenarios.schema import Cohort

SA = """
[scenario]
name = "tiny-sa"
[cohort]
subjects = 2
seed = 3
species = "rat"
[paradigm]
infusion = "60 ug/kg"
decide_every = "1min"
[[paradigm.phase]]
kind = "self_administration"
sessions = 2
session_length = "1h"
[[paradigm.phase]]
kind = "extinction"
sessions = 2
session_length = "30min"
[[paradigm.phase]]
kind = "progressive_ratio"
session_length = "1h"
"""


def tiny() -> Scenario:
    return Scenario.from_toml_text(SA)


# --- the scenario format -------------------------------------------------------------------------

def test_paradigm_sets_duration_and_round_trips_through_toml():
    s = tiny()
    assert s.duration_min == pytest.approx(5 * 24 * 60)  # 2 + 2 + 1 days of daily sessions
    assert s.cohort.species == "rat"
    assert Scenario.from_toml_text(s.to_toml()) == s


@pytest.mark.parametrize("name", ["rat-heroin-long-access", "rat-heroin-place-preference"])
def test_builtin_experiments_load_and_round_trip(name):
    s = load_scenario(name)
    assert s.paradigm is not None and s.cohort.species == "rat"
    assert Scenario.from_toml_text(s.to_toml()) == s


@pytest.mark.parametrize("edit, field, words", [
    (('trigger = "footshock"', 'trigger = "shock"'), "paradigm.phase[3].trigger", "cue, footshock, priming"),
    (('kind = "extinction"', 'kind = "extinktion"'), "paradigm.phase[1].kind", "self_administration"),
    (('infusion = "60 ug/kg"', 'infusion = "60 ug"'), "paradigm.infusion", "per kg"),
    (('sessions = 2\nsession_length = "1h"', 'sessions = 2\nsession_length = "1h"\nspeed = 3'),
     "paradigm.phase[0].speed", "unknown key"),
    (('species = "rat"', 'species = "mouse"'), "cohort.species", "human, rat"),
    (('session_length = "30min"', 'session_length = "30min"\nsessions_per_day = 2\n'), None, None),
])
def test_bad_paradigm_input_names_the_field(edit, field, words):
    text = SA + '[[paradigm.phase]]\nkind = "reinstatement"\ntrigger = "footshock"\n'
    text = text.replace(*edit)
    if field is None:  # a valid edit: two 30 min sessions a day fit
        Scenario.from_toml_text(text)
        return
    with pytest.raises(ScenarioError) as e:
        Scenario.from_toml_text(text)
    assert e.value.field == field
    assert words in str(e.value)


def test_priming_test_needs_a_priming_dose_and_doses_are_refused_beside_a_paradigm():
    with pytest.raises(ScenarioError) as e:
        Scenario.from_toml_text(SA + '[[paradigm.phase]]\nkind = "reinstatement"\ntrigger = "priming"\n')
    assert e.value.field == "paradigm.phase[3].priming_dose"
    with pytest.raises(ScenarioError) as e:
        Scenario.from_toml_text(SA + '[[dose]]\ndrug = "heroin"\namount = "1 mg"\n')
    assert "paradigm" in str(e.value)


def test_a_duration_shorter_than_the_paradigm_is_refused():
    with pytest.raises(ScenarioError) as e:
        Scenario.from_toml_text(SA.replace('name = "tiny-sa"', 'name = "tiny-sa"\nduration = "2d"'))
    assert e.value.field == "scenario.duration" and "5 days" in str(e.value)


# --- the timeline ----------------------------------------------------------------------------------

def test_progressive_ratio_is_the_richardson_roberts_series():
    # Richardson & Roberts 1996 J Neurosci Methods 66:1, the published series
    published = [1, 2, 4, 6, 9, 12, 15, 20, 25, 32, 40, 50, 62, 77, 95, 118, 145, 178, 219, 268]
    assert [progressive_ratio(k) for k in range(20)] == published


def test_timeline_starts_sessions_each_day_and_covers_the_paradigm():
    s = tiny()
    tl = compile_timeline(s.paradigm, s.record_every_min)
    starts = [x["start_min"] for x in tl.sessions]
    assert starts == [0.0, 1440.0, 2880.0, 4320.0, 5760.0]
    assert tl.quanta.sum() * (1 / 16) == pytest.approx(s.duration_min)
    in_session = tl.session >= 0
    assert (tl.lever[~in_session] == 0).all() and (tl.context[~in_session] == HOME).all()
    assert (tl.context[in_session] == CHAMBER).all()
    first = tl.session == 0
    assert tl.reinforced[first].all() and not tl.reinforced[tl.session == 2].any()  # extinction: no drug


# --- rat physiology ---------------------------------------------------------------------------------

def test_rat_pk_scales_allometrically():
    model = default_model()
    human = subject_parameters(model, Scenario(duration="1h"), 1, 0, variability=False)
    rat = subject_parameters(model, Scenario(duration="1h", cohort=Cohort(species="rat")), 1, 0, variability=False)
    w = rat["body_weight"][0] / human["body_weight"][0]
    assert w == pytest.approx(0.35 / 70)
    # clearance ∝ W^0.75 and volume ∝ W inside the PK module: the rate constant CL/V ∝ W^-0.25
    # (Boxenbaum 1982); the half-life given as a parameter is scaled by W^0.25
    assert rat["sixmam_half_life"][0] / human["sixmam_half_life"][0] == pytest.approx(w ** 0.25)


# --- the agent in the box -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_run():
    return simulate_paradigm(tiny())


def test_rats_acquire_self_administration_and_extinguish(tiny_run):
    ds = tiny_run
    inf = ds.session_infusions.values
    assert (inf[:, :2].sum(axis=1) >= 2).all()  # every rat found the drug
    assert (inf[:, 2:4] == 0).all()  # the extinction lever gives nothing
    # progressive ratio: the breakpoint is a ratio of the series the rat completed, and it took
    # at least the sum of the ratios up to it in presses
    bp, pr_presses = ds.breakpoint.values[:, 4], ds.session_presses.values[:, 4]
    series = [progressive_ratio(k) for k in range(60)]
    for b, n_inf, n_pr in zip(bp, ds.session_infusions.values[:, 4], pr_presses):
        assert (b in series and n_inf >= 1) or (b == 0 and n_inf == 0)
        assert n_pr >= sum(series[:int(n_inf)])
    # infusions never exceed presses (FR1), and nothing happens in the home cage
    assert (ds.infusions.values <= ds.lever_presses.values).all()
    home = ds.step_session.values < 0
    assert ds.lever_presses.values[:, home].sum() == 0
    # learning: the drug's value rose with its first infusions (the dopamine surge is a floor on
    # the prediction error, so it cannot fall while the drug is delivered)
    sa_end = np.nonzero(ds.step_session.values == 1)[0][-1]
    assert (ds.drug_value.values[:, sa_end] > 0.3).all()
    assert np.isfinite(ds.craving.values).all()


def test_cli_runs_an_experiment_and_writes_session_rows(tmp_path, tiny_run):
    from opioidsim.cli import main

    path = tmp_path / "tiny.toml"
    path.write_text(SA)
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--no-progress"]) == 0
    import pandas as pd
    import xarray as xr

    table = pd.read_csv(out / "summary.csv")
    assert list(table["kind"]) == ["self_administration"] * 2 + ["extinction"] * 2 + ["progressive_ratio"]
    with xr.open_dataset(out / "results.nc") as ds:  # the same run as in memory (same seed)
        assert np.array_equal(ds.session_infusions.values, tiny_run.session_infusions.values)
    html = (out / "report.html").read_text()
    assert "never a dosing guide" in html.lower() or "not medical advice" in html.lower()


def test_same_seed_same_choices_and_a_subject_is_the_same_alone():
    s = tiny()
    a = simulate_paradigm(s, subjects=range(1, 2))
    b = simulate_paradigm(s, subjects=range(0, 2)).isel(subject=[1])
    assert np.array_equal(a.lever_presses.values, b.lever_presses.values)
    assert np.array_equal(a.nac_dopamine.values, b.nac_dopamine.values)


def test_fixed_ratio_requirement_is_met_before_each_infusion():
    text = SA.replace('session_length = "1h"', 'session_length = "1h"\nratio = 5', 1)
    ds = simulate_paradigm(Scenario.from_toml_text(text).with_cohort(subjects=2))
    inf, pr = ds.session_infusions.values[:, :2], ds.session_presses.values[:, :2]
    assert (inf * 5 <= pr).all()


def test_heroin_conditions_a_place_preference():
    s = load_scenario("rat-heroin-place-preference").with_cohort(subjects=2)
    ds = simulate_paradigm(s)
    score = ds.cpp_score.values[:, -1]
    # heroin conditions a place preference in rats (e.g. Schenk et al. 1983): time in the paired
    # side exceeds the other side, within the 15 min (900 s) test
    assert (score > 60).all() and (score < 900).all()
