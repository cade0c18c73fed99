"""Naltrexone: oral tablets and the extended-release (XR) injection, against label figures, the
analytic one-compartment solution and a molar balance; its blockade of heroin and the withdrawal
it precipitates in a dependent subject. Expected values come from the labels and the PK algebra,
not from running the model."""
import math

import numpy as np
import pytest

from opioidsim.model import default_model
from opioidsim.model.pk import MW
from opioidsim.scenarios import Dose
from opioidsim.validation.sim import auc, half_life, run_typical, run_typical_test_doses

ORAL_MG, XR_MG = 50.0, 380.0
HOUR, DAY = 60.0, 1440.0


@pytest.fixture(scope="module")
def p():
    """Typical parameter values in internal units (min, L, mg); typical weight = reference weight."""
    return {name: par.internal_value for name, par in default_model().parameters.items()}


@pytest.fixture(scope="module")
def oral():
    return run_typical([Dose("naltrexone", f"{ORAL_MG:g} mg", route="oral", at="0min")], "96h", "5min")


@pytest.fixture(scope="module")
def xr():
    return run_typical([Dose("naltrexone", f"{XR_MG:g} mg", route="xr_injection", at="0min")], "42d", "1h")


def _auc_to_infinity(t, c, tail_from, tail_to):
    """AUC up to `tail_to` plus the log-linear tail beyond it (C(tail_to) / k, k fitted on
    [tail_from, tail_to]), as in PK studies."""
    k = math.log(2.0) / half_life(t, c, tail_from, tail_to)
    upto = t <= tail_to
    return auc(t[upto], c[upto]) + c[upto][-1] / k


# ---- oral ------------------------------------------------------------------------------------
def test_oral_naltrexone_peaks_within_two_hours(oral):
    # ReVia label: naltrexone and 6β-naltrexol peak about an hour after a tablet
    assert 0.5 * HOUR <= oral.peak_time("plasma_naltrexone") <= 2.0 * HOUR
    assert 0.5 * HOUR <= oral.peak_time("plasma_naltrexol") <= 3.0 * HOUR
    # and the metabolite circulates well above the parent (first-pass metabolism; SmPC: ≈ 108 vs
    # 13 ng/mL at the peak; 10- to 30-fold at steady state)
    assert oral["plasma_naltrexol"].max() > 5.0 * oral["plasma_naltrexone"].max()


def test_oral_naltrexone_half_life_is_about_four_hours_and_its_metabolites_thirteen(oral):
    # label: elimination half-lives ≈ 4 h (naltrexone) and ≈ 13 h (6β-naltrexol); Meyer 1984: ≈ 4 and 12 h
    t12 = half_life(oral.t, oral["plasma_naltrexone"], 8 * HOUR, 24 * HOUR) / HOUR
    assert 3.3 <= t12 <= 4.8, t12
    t12_nol = half_life(oral.t, oral["plasma_naltrexol"], 24 * HOUR, 96 * HOUR) / HOUR
    assert 11.0 <= t12_nol <= 15.0, t12_nol


def test_oral_exposure_is_dose_times_bioavailability_over_clearance(oral, p):
    # one compartment: AUC = F·D / CL whatever the absorption rate and volume
    want = p["naltrexone_oral_bioavailability"] * ORAL_MG / p["naltrexone_clearance"]  # mg·min/L
    # ng·min/mL → mg·min/L
    got = _auc_to_infinity(oral.t, oral["plasma_naltrexone"], 12 * HOUR, 36 * HOUR) / 1000.0
    assert got == pytest.approx(want, rel=0.02)


def test_everything_absorbed_ends_up_as_6b_naltrexol_in_the_formation_fraction(oral, p):
    # molar balance: every absorbed molecule is metabolised, on first pass or later, and the formation
    # fraction of them becomes 6β-naltrexol, which is then cleared: AUC·CL = f_m·F_abs·D·(MW ratio)
    formed = (p["naltrexol_formation_fraction"] * p["naltrexone_oral_absorbed_fraction"] * ORAL_MG
              * MW["naltrexol"] / MW["naltrexone"])
    auc_nol = _auc_to_infinity(oral.t, oral["plasma_naltrexol"], 24 * HOUR, 72 * HOUR) / 1000.0
    got = auc_nol * p["naltrexol_clearance"]
    assert got == pytest.approx(formed, rel=0.02)


# ---- extended-release injection --------------------------------------------------------------
def _at(run, day):
    return int(np.searchsorted(run.t, day * DAY))


def test_xr_injection_holds_naltrexone_near_1_to_2_ng_per_ml_for_four_weeks(xr):
    t_day, c = xr.t / DAY, xr["plasma_naltrexone"]
    month = (t_day >= 2.0) & (t_day <= 28.0)
    # Vivitrol label: concentrations of the order of 1-2 ng/mL for about a month (±: first-order release)
    assert c[month].min() >= 0.5 and c[month].max() <= 5.0, (c[month].min(), c[month].max())
    # the sustained peak 2-3 days after the injection (label), not within the first day
    assert 1.5 <= t_day[np.argmax(c)] <= 4.0
    # then a decline with the label's apparent half-life of 5-10 days (release-limited)
    assert c[_at(xr, 35)] < c[_at(xr, 28)] < c[_at(xr, 21)]
    t12 = half_life(xr.t, c, 28 * DAY, 42 * DAY) / DAY
    assert 4.5 <= t12 <= 10.5, t12


def test_xr_exposure_is_three_to_four_times_a_month_of_daily_tablets(xr, oral):
    # Vivitrol label: over 28 days one 380 mg injection gives 3-4× the naltrexone exposure of a 50 mg
    # tablet daily (linear PK: 28 tablets give 28× one tablet's AUC)
    month = xr.t <= 28 * DAY
    xr_auc = auc(xr.t[month], xr["plasma_naltrexone"][month])
    oral_auc = _auc_to_infinity(oral.t, oral["plasma_naltrexone"], 12 * HOUR, 36 * HOUR)
    assert 3.0 <= xr_auc / (28 * oral_auc) <= 4.0, xr_auc / (28 * oral_auc)


def test_xr_levels_keep_mu_receptors_blocked_for_the_month(xr):
    # Castillo F et al. 2024 J Addict Med 18:110: ≥ 2 ng/mL blocks the liking of 25 mg IV heroin, 1-2 ng/mL
    # is taken as therapeutic; Vivitrol label: blockade for about 4 weeks
    month = (xr.t >= 2 * DAY) & (xr.t <= 28 * DAY)
    assert xr["mor_occupancy_vta"][month].min() > 0.9
    # no agonist on board: occupancy without signal
    assert np.abs(xr["mor_signal_vta"]).max() < 1e-9


# ---- pharmacodynamics --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def heroin_challenge():
    """25 mg IV heroin 24 h after a 50 mg tablet (subject 1) or after none (subject 0)."""
    return run_typical_test_doses([Dose("heroin", "25 mg", route="iv", at="24h")],
                                  Dose("naltrexone", "50 mg", route="oral", at="0min"), [0.0, 50.0], "26h", "1min")


def test_a_50_mg_tablet_blocks_25_mg_iv_heroin_a_day_later(heroin_challenge):
    # ReVia label: 50 mg blocks the effects of 25 mg IV heroin for 24 h
    r = heroin_challenge
    before = int(np.searchsorted(r.t, 24 * HOUR)) - 1
    after = (r.t >= 24 * HOUR) & (r.t <= 26 * HOUR)
    signal = r["mor_signal_vta"][:, after].max(axis=1)
    da_rise = r["nac_dopamine"][:, after].max(axis=1) - r["nac_dopamine"][:, before]
    assert signal[0] > 0.5 and da_rise[0] > 2.0  # heroin alone: a strong response (not vacuous)
    assert signal[1] < 0.5 * signal[0], signal
    assert da_rise[1] < 0.5 * da_rise[0], da_rise
    # the receptors were already held by the antagonist when the heroin came
    assert r["mor_occupancy_vta"][1, before] > 0.9 and r["mor_occupancy_vta"][0, before] < 1e-6


def test_naltrexone_precipitates_withdrawal_in_a_dependent_subject():
    # as naloxone does (tests/test_chronic.py); the ReVia and Vivitrol labels warn that naltrexone given
    # to an opioid-dependent person precipitates withdrawal, hence the 7-10 opioid-free days first
    doses = [Dose("heroin", "20 mg", route="iv", at="8h", every="8h", until="7d"),
             Dose("naltrexone", "50 mg", route="oral", at="6d17h")]
    r = run_typical(doses, "6d20h", "5min")
    i0 = int(np.searchsorted(r.t, 6 * DAY + 17 * HOUR))
    before = r["cows"][i0 - 1]
    # an hour after a dose the subject is not in withdrawal; within two hours of the tablet they are
    # (absorption: t_max ≈ 1 h), long before spontaneous withdrawal would begin (6-12 h: WHO 2009)
    assert before < 5.0
    window = slice(i0, i0 + int(2 * HOUR / 5))
    assert r["cows"][window].max() - before >= 5.0
    assert r["noradrenaline"][window].max() > 1.5 * r["noradrenaline"][i0 - 1]


def test_naltrexone_in_a_naive_subject_does_nothing_to_cows():
    r = run_typical([Dose("naltrexone", "50 mg", route="oral", at="10min")], "6h", "5min")
    assert r["cows"].max() < 1.0
    assert r["mor_occupancy_vta"].max() > 0.9  # it did bind (not vacuous)
