"""Chronic adaptation: directions and time courses with independent reasons (clinical facts and the
reference solver), not numbers copied from the model."""
import numpy as np
import pytest

from opioidsim.engine import integrate, make_grid, simulate, simulate_reference, subject_parameters
from opioidsim.engine.dosing import compile_doses
from opioidsim.model import default_model
from opioidsim.scenarios import Dose, Scenario
from opioidsim.validation.sim import run_typical, run_typical_batch

HEROIN_7D = [Dose("heroin", "20 mg", route="iv", at="8h", every="8h", until="7d")]


@pytest.fixture(scope="module")
def week_then_abstinence():
    return run_typical(HEROIN_7D, "21d", "1h")


def _at(run, day):
    return int(np.searchsorted(run.t, day * 1440.0))


def test_tolerance_develops_fastest_for_euphoria_and_slowest_for_breathing(week_then_abstinence):
    r = week_then_abstinence
    i = _at(r, 6.9)
    vta, dh, bs = (r[f"mor_capacity_{x}"][i] for x in ("vta", "dorsal_horn", "brainstem"))
    # White & Irvine 1999; Hill 2016: euphoria tolerance > analgesic > respiratory
    assert vta < dh < bs < 1.0


def test_the_same_dose_gives_less_pleasure_after_a_week_of_use(week_then_abstinence):
    r = week_then_abstinence
    first = r["hedonic_state"][(r.t >= 480) & (r.t < 960)].max()
    last = r["hedonic_state"][(r.t >= 6 * 1440 + 480) & (r.t < 6 * 1440 + 960)].max()
    assert last < 0.7 * first


def test_tolerance_and_withdrawal_resolve_in_abstinence(week_then_abstinence):
    r = week_then_abstinence
    end = len(r.t) - 1
    for x in ("vta", "dorsal_horn", "brainstem"):
        assert r[f"mor_capacity_{x}"][end] > 0.9  # largely lost within two weeks (Strang 2003)
    assert r["cows"][end] < 5.0
    assert abs(r["camp_lc"][end] - 1.0) < 0.05


def test_abstinence_after_use_brings_withdrawal_that_rises_then_falls(week_then_abstinence):
    r = week_then_abstinence
    after = r.t >= 7 * 1440 - 480
    cows = r["cows"][after]
    assert cows.max() >= 5.0  # at least mild withdrawal after a week of three doses a day
    assert 0 < int(np.argmax(cows)) < len(cows) - 1


def test_naloxone_precipitates_withdrawal_within_minutes_in_a_dependent_subject():
    doses = [Dose("heroin", "20 mg", route="iv", at="8h", every="8h", until="7d"),
             Dose("naloxone", "2 mg", route="iv", at="6d17h")]
    r = run_typical(doses, "6d18h", "1min")
    i0 = int(np.searchsorted(r.t, 6 * 1440 + 17 * 60))
    before = r["cows"][i0 - 1]
    # an hour after a dose a dependent subject is not in withdrawal; within ten minutes of the
    # antagonist they are (spontaneous withdrawal takes 6-12 h to begin: WHO 2009)
    assert before < 5.0
    assert r["cows"][i0 + 10] >= 5.0 and r["cows"][i0 + 10] - before >= 5.0
    # the locus coeruleus surge behind it (Rasmussen K et al. 1990 J Neurosci 10:2308)
    assert r["noradrenaline"][i0 + 15] > 1.5 * r["noradrenaline"][i0 - 1]


def test_withdrawal_drops_accumbens_dopamine_below_normal_and_dysphoria_comes_first():
    doses = [Dose("heroin", "20 mg", route="iv", at="8h", every="8h", until="7d"),
             Dose("naloxone", "2 mg", route="iv", at="6d17h")]
    r = run_typical(doses, "6d18h", "1min")
    basal = r["nac_dopamine"][0]
    i0 = int(np.searchsorted(r.t, 6 * 1440 + 17 * 60))
    # naloxone-precipitated withdrawal lowers NAc dopamine below its drug-free level (Pothos E et al.
    # 1991 Brain Res 566:348; Rossetti ZL et al. 1992 Eur J Pharmacol 221:227) ...
    assert r["nac_dopamine"][i0 + 15] < 0.97 * basal
    # ... and the dysphoria it brings is there within minutes, before CRF has had time to rise: the
    # within-system part of negative affect (Koob GF & Le Moal M 2008 Annu Rev Psychol 59:29)
    assert r["negative_affect"][i0 + 15] > r["negative_affect"][i0 - 1] + 0.5
    assert r["crf"][i0 + 15] < r["crf"][i0 - 1] + 0.05


def test_spontaneous_withdrawal_lowers_dopamine_which_recovers_in_abstinence(week_then_abstinence):
    r = week_then_abstinence
    basal = r["nac_dopamine"][0]
    # a day after the last dose, below normal (Crippens D & Robinson TE 1994 Brain Res 650:56:
    # 24 h of spontaneous morphine withdrawal lowers basal dialysate dopamine) ...
    assert r["nac_dopamine"][_at(r, 7 + 2 / 3)] < 0.97 * basal
    # ... back within a few percent after two weeks without drug
    assert abs(r["nac_dopamine"][-1] / basal - 1.0) < 0.05


def test_naloxone_in_a_naive_subject_does_nothing_to_cows():
    r = run_typical([Dose("naloxone", "2 mg", route="iv", at="10min")], "2h", "1min")
    assert r["cows"].max() < 1.0


def test_genotypes_are_drawn_and_change_baselines():
    ds = simulate(Scenario(duration="1h", record_every="30min", cohort={"subjects": 400, "seed": 3},
                           readouts=["d2_density", "mor_density_vta"]))
    a1 = ds["drd2_taq1a_a1_carrier"].values.astype(bool)
    g = ds["oprm1_a118g_g_carrier"].values.astype(bool)
    # carrier frequencies near the sourced ones (binomial, 400 draws)
    assert 0.25 < a1.mean() < 0.42 and 0.17 < g.mean() < 0.33
    d2 = ds["d2_density"].values[:, 0]
    assert d2[a1].mean() < d2[~a1].mean()  # Pohjalainen 1998: fewer D2 in A1 carriers
    assert np.all(ds["mor_density_vta"].values[g, 0] < ds["mor_density_vta"].values[~g, 0].min() + 1e-12)


def _engine_and_reference(days_of_use: int, days: int):
    model = default_model()
    scenario = Scenario(duration=f"{days}d", record_every="6h",
                        doses=[Dose("heroin", "20 mg", route="iv", at="8h", every="8h", until=f"{days_of_use}d")])
    grid = make_grid(scenario.duration_min, scenario.record_every_min)
    p = subject_parameters(model, scenario, 1, 0, variability=False)
    events = compile_doses(model, scenario.doses, scenario.duration_min, grid.h, p)
    y0 = model.initial_state(p)
    eng = integrate(model, grid, y0, p, events, SLOW_KEY)[0]
    # rtol 1e-6: the engine's errors against it are those against rtol 1e-7 to two digits (largest
    # 3.0·10⁻⁴, stop 52), 30 times below the bounds, and Radau takes three quarters of the time
    ref = simulate_reference(model, y0, p, events, 0, grid.h, grid.record_times_min, SLOW_KEY, rtol=1e-6, atol=1e-8)
    return {name: np.abs(eng[:, i] - ref[:, i]).max() / np.abs(ref[:, i]).max() for i, name in enumerate(SLOW_KEY)}


#: the slow readouts a chronic scenario is about (the fast ones are checked in test_engine.py)
SLOW_KEY = ("mor_capacity_vta", "mor_capacity_brainstem", "camp_lc", "crf", "da_stores", "d2_density",
            "hedonic_set_point", "reward_threshold")


#: Measured (stop 31, 20 days of use and 10 without): every slow readout within 3·10⁻⁴ of the Radau
#: reference with the default ROS34PW2 (2,800 steps); with ROS2 within 3.4·10⁻⁴ except CRF (2.3·10⁻³;
#: 1.9 % when first measured), which integrates the noradrenaline excess between doses, a sharply
#: bending function ROS2's first-order error estimate underrates (17,686 steps). The bounds hold both.
SLOW_TOL = {name: 0.01 for name in SLOW_KEY} | {"crf": 0.025}


def test_engine_matches_reference_through_use_and_abstinence():
    """20 days of daily use then 10 without drug: adaptive steps from seconds to hours."""
    errors = _engine_and_reference(20, 30)
    assert all(errors[n] < SLOW_TOL[n] for n in SLOW_KEY), errors


@pytest.mark.slow
def test_engine_matches_reference_over_180_days_of_daily_use():
    errors = _engine_and_reference(180, 200)
    assert all(errors[n] < SLOW_TOL[n] for n in SLOW_KEY), errors


# --- critical period, protracted abstinence, DAT --------------------------------------------------

def _typical_pair(doses, duration, record_every, overrides):
    """Two typical subjects under one schedule; `overrides` maps a parameter to its two values."""
    scenario = Scenario(duration=duration, record_every=record_every, doses=doses, cohort={"subjects": 2})
    model = default_model()
    grid = make_grid(scenario.duration_min, scenario.record_every_min)
    p = subject_parameters(model, scenario, 2, 0, variability=False)
    p.update({k: np.asarray(v, dtype=float) for k, v in overrides.items()})
    events = compile_doses(model, scenario.doses, scenario.duration_min, grid.h, p)
    recs = integrate(model, grid, model.initial_state(p), p, events, model.readouts)
    return grid.record_times_min, {n: recs[:, :, i] for i, n in enumerate(model.readouts)}


def test_adolescent_weight_is_on_before_18_and_off_for_adult_onset():
    from opioidsim.model.development import DevelopmentModule
    from opioidsim.units import to_internal

    p = {k: to_internal(v.value, v.unit) for k, v in default_model().parameters.items()}
    weight = lambda age: float(DevelopmentModule().outputs({}, {}, {**p, "age_at_first_use": to_internal(age, "year")})[  # noqa: E731
        "adolescent_onset"])
    assert weight(14) > 0.95 and weight(25) < 1e-3 and abs(weight(18) - 0.5) < 1e-9


@pytest.fixture(scope="module")
def adolescent_vs_adult():
    from opioidsim.units import to_internal

    ages = [to_internal(15.0, "year"), to_internal(25.0, "year")]
    return _typical_pair(HEROIN_7D, "120d", "12h", {"age_at_first_use": ages})


def test_adolescent_onset_tips_the_balance_further_and_recovers_slower(adolescent_vs_adult):
    t, r = adolescent_vs_adult
    week = int(np.searchsorted(t, 7 * 1440.0))
    # same drug, same physiology: only the age at first use differs (Chen 2009; Spear 2000)
    assert r["opponent_process"][0, week] > r["opponent_process"][1, week] * 1.2
    month3 = int(np.searchsorted(t, 90 * 1440.0))
    deficit = 1.0 - r["d2_density"][:, month3] / r["d2_density"][:, 0]
    assert deficit[0] > deficit[1] > 0


def test_protracted_abstinence_outlasts_acute_withdrawal(adolescent_vs_adult):
    t, r = adolescent_vs_adult
    adult = {k: v[1] for k, v in r.items()}
    # naive subject: exact baselines (the readouts are ratios to the drug-naive brain)
    assert abs(adult["natural_reward_response"][0] - 1.0) < 1e-9 and abs(adult["stress_reactivity"][0] - 1.0) < 1e-9
    day30 = int(np.searchsorted(t, 30 * 1440.0))
    assert adult["cows"][day30] < 5.0  # acute withdrawal over (V-WD-1: 5-10 days)
    assert adult["natural_reward_response"][day30] < 0.97  # anhedonia persists
    assert adult["stress_reactivity"][day30] > 1.02  # stressors still provoke more than before
    # and both heal with months of abstinence
    assert adult["natural_reward_response"][-1] > adult["natural_reward_response"][day30]
    assert adult["stress_reactivity"][-1] < adult["stress_reactivity"][day30]


def test_longer_use_gives_longer_withdrawal():
    # clinicians' rule (duration of use is a determinant of withdrawal; WHO 2009), carried here by the
    # slow transcriptional part of the cyclase up-regulation; the same dose schedule for 2 or 8 weeks
    weeks = (2, 8)
    r = run_typical_batch([[Dose("heroin", "20 mg", route="iv", at="8h", every="8h", until=f"{w * 7}d")]
                           for w in weeks], f"{max(weeks) * 7 + 21}d", "2h")

    def duration_above_mild(i):
        last = weeks[i] * 7 * 1440.0 - 480.0
        after = (r.t >= last) & (r.t <= last + 21 * 1440.0)
        above = np.nonzero(r["cows"][i, after] >= 5.0)[0]
        return (r.t[after][above[-1]] - last) / 1440.0

    assert duration_above_mild(1) > duration_above_mild(0) + 0.5


def test_dat_availability_falls_with_use_and_is_not_a_feedback(week_then_abstinence):
    r = week_then_abstinence
    i = _at(r, 7)
    assert r["dat_density"][i] < r["dat_density"][0]
    # DAT here is a readout: the same run's dopamine baseline after recovery is the naive one
    assert abs(r["nac_dopamine"][0] - 5.0) < 1e-6


def test_age_at_first_use_is_checked_and_round_trips():
    from opioidsim.errors import ScenarioError

    s = Scenario(duration="1d", cohort={"subjects": 2, "age_at_first_use": 16})
    assert Scenario.from_toml_text(s.to_toml()).cohort.age_at_first_use == 16.0
    for bad in (5, "sixteen", True, 200):
        with pytest.raises(ScenarioError, match="cohort.age_at_first_use"):
            Scenario(duration="1d", cohort={"age_at_first_use": bad})
