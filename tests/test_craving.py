"""Glutamate and craving (model/glutamate.py): directions and time courses from published findings."""
import numpy as np
import pytest

from opioidsim.scenarios import Dose
from opioidsim.validation.sim import run_typical, run_typical_batch

USE_DAYS = 60


@pytest.fixture(scope="module")
def use_then_a_year_abstinent():
    doses = [Dose("heroin", "20 mg", route="iv", at="8h", every="8h", until=f"{USE_DAYS}d")]
    return run_typical(doses, f"{USE_DAYS + 366}d", "1d")


def _abstinent(run, days):
    return int(np.searchsorted(run.t, (USE_DAYS + days) * 1440.0))


def test_a_drug_naive_subject_has_no_cue_craving_and_full_glutamate_transport():
    r = run_typical([], "3d", "6h")
    assert np.all(r["glt1"] == 1.0) and np.all(r["nac_glutamate"] == 1.0)
    assert np.all(r["cue_craving"] == 0.0) and np.all(r["craving"] == 0.0)


def test_heroin_lowers_glt1_for_weeks_into_abstinence_then_it_recovers(use_then_a_year_abstinent):
    r = use_then_a_year_abstinent
    # Shen HW et al. 2014 J Neurosci 34:5649: lower GLT-1 and glutamate spillover in NAc core after
    # heroin self-administration, still there after weeks of extinction
    week3 = _abstinent(r, 21)
    assert r["glt1"][week3] < 0.9 and r["nac_glutamate"][week3] > 1.1
    # spillover is release over uptake
    assert np.allclose(r["nac_glutamate"], 1.0 / r["glt1"], rtol=1e-12)
    assert r["glt1"][-1] > 0.97  # back within a year


def test_cue_craving_incubates_in_abstinence_while_background_craving_fades(use_then_a_year_abstinent):
    r = use_then_a_year_abstinent
    cue, background = r["cue_craving"], r["craving"]
    day1, day3, day30 = _abstinent(r, 1), _abstinent(r, 3), _abstinent(r, 30)
    # incubation: a cue provokes more craving after a month without drug than on day 1 (heroin rats:
    # Shalev U et al. 2001 Psychopharmacology 156:98; humans: Bedi G et al. 2011 Biol Psychiatry 69:708)
    assert cue[day30] > cue[day1] * 1.05
    # ... and declines later: lower at 6 and 12 months than at its peak (Wang G et al. 2013 PLoS One
    # 8:e68791; Pickens CL et al. 2011 Trends Neurosci 34:411)
    after = cue[day1:]
    peak_day = int(np.argmax(after))
    assert 7 <= peak_day <= 120
    assert cue[_abstinent(r, 180)] < after.max() and cue[_abstinent(r, 365)] < 0.6 * after.max()
    # while background craving, carried by withdrawal and dysphoria, falls over the same month
    assert background[day30] < 0.7 * background[day3]


def test_incubation_needs_abstinence():
    # the same time since the cue memory formed, but still using: no incubation (potentiation of
    # the NAc cue pathway appears only after prolonged withdrawal: Conrad KL et al. 2008 Nature 454:118)
    r = run_typical_batch([[Dose("heroin", "20 mg", route="iv", at="8h", every="8h", until=until)]
                           for until in ("40d", "20d")], "40d", "1d")
    using, stopped = r["cue_incubation"][:, -1]
    assert using < 0.5 * stopped


def test_ceftriaxone_restores_glt1_and_lowers_cue_evoked_glutamate():
    # Shen HW et al. 2014 J Neurosci 34:5649: ceftriaxone given in abstinence restored NAc core
    # GLT-1 lowered by heroin and reduced cue-induced seeking. Same subject, same doses, with and
    # without the drug (given throughout the run).
    from opioidsim.engine.core import simulate
    from opioidsim.scenarios import Scenario

    def run(drug):
        s = Scenario(duration="30d", record_every="1d", readouts=["glt1", "cue_glutamate", "nac_dopamine"],
                     doses=[Dose("heroin", "20 mg", route="iv", at="8h", every="8h", until="20d")],
                     conditions={"glt1_drug": drug})
        return simulate(s)

    without, with_drug = run("none"), run("ceftriaxone")
    assert without.glt1.values[0, -1] < 0.95  # heroin lowered GLT-1 and it is still low 10 days on
    assert with_drug.glt1.values[0, -1] > without.glt1.values[0, -1] + 0.03
    assert with_drug.cue_glutamate.values[0, -1] < without.cue_glutamate.values[0, -1]
    # GLT-1 is all the drug acts on: dopamine is the same
    assert np.allclose(with_drug.nac_dopamine.values, without.nac_dopamine.values, rtol=1e-6)


def test_an_unknown_glt1_drug_is_refused_with_the_choices():
    from opioidsim.errors import ScenarioError
    from opioidsim.scenarios import Scenario

    with pytest.raises(ScenarioError) as e:
        Scenario(duration="1h", conditions={"glt1_drug": "aspirin"})
    assert e.value.field == "conditions.glt1_drug" and "ceftriaxone" in str(e.value)
    assert Scenario.from_toml_text(Scenario(duration="1h", conditions={"glt1_drug": "ceftriaxone"}).to_toml()) \
        .conditions.glt1_drug == "ceftriaxone"
