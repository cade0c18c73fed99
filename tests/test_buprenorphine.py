"""Buprenorphine: sublingual maintenance levels and mu-receptor occupancy against PET and plasma
figures, the ceiling on breathing depression, blockade of heroin, and challenges in maintained
volunteers: which precipitate withdrawal and which relieve it. Expected values come from the papers
named in each test, not from the model.

Research and teaching tool: these are population figures of published studies, not dosing advice."""
import numpy as np
import pytest

from opioidsim.model import default_model
from opioidsim.scenarios import Dose
from opioidsim.validation.sim import run_typical_batch, with_amount

HOUR, DAY = 60.0, 1440.0
MAINTENANCE_MG = [2.0, 16.0, 32.0]  # Greenwald MK et al. 2003 Neuropsychopharmacology 28:2000


def run_scaled(doses, drug, route, amounts_mg, nominal_mg, duration, record_every):
    """Typical subjects sharing a schedule, subject i getting amounts_mg[i]/nominal_mg times every
    dose of `drug` by `route` (a dose-response run as one batch)."""
    def scaled(dose, factor):
        return with_amount(dose, dose.amount_mg * factor) if (dose.drug, dose.route) == (drug, route) else [dose]

    return run_typical_batch([[s for d in doses for s in scaled(d, mg / nominal_mg)] for mg in amounts_mg],
                             duration, record_every)


def daily_sublingual(days, mg=8.0):
    return [Dose("buprenorphine", f"{mg:g} mg", route="sublingual", at=f"{d * 24}h") for d in range(days)]


@pytest.fixture(scope="module")
def maintenance():
    """Seven daily sublingual doses of 2, 16 and 32 mg, then a 25 mg IV heroin challenge 4 h after
    the 7th, and the same challenge in a subject never given buprenorphine (amount 0)."""
    doses = [*daily_sublingual(7), Dose("heroin", "25 mg", route="iv", at=f"{6 * 24 + 4}h")]
    return run_scaled(doses, "buprenorphine", "sublingual", [*MAINTENANCE_MG, 0.0], 8.0, "6d8h", "10min")


def test_maintenance_plasma_peaks_rise_with_dose_as_measured(maintenance):
    # Greenwald 2003 Table 1 (and Greenwald 2014 review): peak plasma ≈ 0.5-1, 5-6 and 13-14 ng/mL on
    # 2, 16 and 32 mg daily; accept ± about a third around those ranges
    r = maintenance
    day7 = (r.t >= 6 * DAY) & (r.t < 6 * DAY + 4 * HOUR)
    peaks = r["plasma_buprenorphine"][:3, day7].max(axis=1)
    for got, (lo, hi) in zip(peaks, [(0.35, 1.3), (3.5, 8.0), (9.0, 18.0)]):
        assert lo <= got <= hi, peaks


def test_receptor_occupancy_follows_pet_and_saturates(maintenance):
    # Greenwald 2003: whole-brain MOR availability fell by 41, 80 and 84 % 4 h after 2, 16 and 32 mg;
    # the step from 16 to 32 mg is small (saturation), from 2 to 16 mg large
    r = maintenance
    i4 = int(np.searchsorted(r.t, 6 * DAY + 4 * HOUR)) - 1  # just before the heroin challenge
    occ = r["mor_occupancy_vta"][:3, i4]
    for got, want in zip(occ, (0.41, 0.80, 0.84)):
        assert abs(got - want) <= 0.12, occ
    assert occ[1] - occ[0] > 3 * (occ[2] - occ[1])


def test_maintenance_blunts_heroin_in_proportion_to_dose(maintenance):
    # Comer SD, Collins ED & Fischman MW 2001 Psychopharmacology 154:28 (IV heroin self-administration
    # on 2, 8 and 16 mg sublingual): higher
    # maintenance doses blunt IV heroin's effects more; Greenwald 2003: heroin-like agonist effects
    # attenuated at 16 and 32 mg, hardly at 2 mg. Measured as heroin's extra NAc dopamine.
    r = maintenance
    before = int(np.searchsorted(r.t, 6 * DAY + 4 * HOUR)) - 1
    after = (r.t >= 6 * DAY + 4 * HOUR) & (r.t <= 6 * DAY + 6 * HOUR)
    rise = r["nac_dopamine"][:, after].max(axis=1) - r["nac_dopamine"][:, before]
    none, on2, on16, on32 = rise[3], rise[0], rise[1], rise[2]
    assert none > 2.0  # heroin alone: a strong response (the comparison is not vacuous)
    assert on32 < on16 < on2 <= none * 1.05, rise
    assert on16 < 0.5 * none, rise


def isohypercapnic_ventilation(signal):
    """Ventilation at a clamped end-tidal CO2 of 50 mmHg, normoxic, as a fraction of the drug-free
    value there (the measure of Dahan 2005): the model's own ventilation law at a given brainstem
    receptor signal. Free-breathing ventilation hides depression, as CO2 rises until VE·PaCO2 is
    back near the CO2 production."""
    model = default_model()
    p = {n: par.internal_value for n, par in model.parameters.items()}
    resp = next(b.module for b in model.blocks if b.module.name == "respiration")
    y = {"paco2": np.float64(50.0), "pao2": np.float64(99.0), "arrest": np.float64(0.0)}
    ve = lambda s: float(resp._ventilation(y, {"mor_signal_brainstem": np.float64(s)}, p))  # noqa: E731
    return np.array([ve(s) for s in np.atleast_1d(signal)]) / ve(0.0)


@pytest.fixture(scope="module")
def iv_dose_response():
    bup = run_scaled([Dose("buprenorphine", "1 mg", route="iv", at="10min")], "buprenorphine", "iv",
                     [0.2, 2.0, 8.0, 32.0], 1.0, "12h", "2min")
    fen = run_scaled([Dose("fentanyl", "0.1 mg", route="iv", at="10min")], "fentanyl", "iv",
                     [0.025, 0.05, 0.1, 0.2, 0.4], 0.1, "2h", "1min")
    return (isohypercapnic_ventilation(bup["mor_signal_brainstem"].max(axis=1)),
            isohypercapnic_ventilation(fen["mor_signal_brainstem"].max(axis=1)))


def test_breathing_depression_has_a_ceiling_that_fentanyl_lacks(iv_dose_response):
    # Dahan A et al. 2005 Br J Anaesth 94:825 (isohypercapnic ventilation, volunteers): buprenorphine's
    # depression levels off as the dose rises, fentanyl's goes on to apnoea (at ≈ 2.9 µg/kg)
    bup, fen = iv_dose_response
    # fentanyl: near apnoea at 0.2 mg (≈ 2.9 µg/kg), apnoea (< 10 % of baseline) at twice that
    assert np.all(np.diff(fen) < 0) and fen[3] < 0.2 and fen[-1] < 0.1, fen
    assert np.all(np.diff(bup) <= 0) and bup[-1] < 0.9, bup  # it does depress breathing (not vacuous)
    # a 4-fold step at the top of the range (8 → 32 mg) moves buprenorphine less than a tenth of
    # baseline, while a 4-fold step of fentanyl (25 → 100 µg) moves it by more than a quarter
    assert bup[2] - bup[3] < 0.1 and fen[0] - fen[2] > 0.25, (bup, fen)
    assert bup.min() > 0.35


@pytest.mark.xfail(strict=True, reason="known gap: the plateau lies at ≈ 80 % of baseline, not Dahan's ≈ 50 %, "
                   "and is reached only above ≈ 8 mg IV: a naive brain's receptor signal is efficacy × occupancy "
                   "(the brainstem's receptor reserve acts only on tolerance), so a partial agonist of efficacy "
                   "0.5 cannot depress breathing as far as a full agonist at the same occupancy, and the "
                   "PET-fitted Kd (1 ng/mL) leaves 0.2-0.6 mg IV at ≈ 10-30 % occupancy")
def test_the_breathing_plateau_is_near_half_of_baseline_from_low_doses(iv_dose_response):
    # Dahan 2005: ≈ 50 % of baseline from 0.2 mg/70 kg IV upward
    bup, _ = iv_dose_response
    assert np.all((bup >= 0.35) & (bup <= 0.65)), bup


def challenge(use, challenges, until):
    """Typical subjects on the same maintenance `use`, the first with no challenge, subject i + 1 also
    given challenges[i]. Returns excess(subject, at_min, (h0, h1)): that subject's COWS minus the
    unchallenged one's at every record from h0 to h1 hours after minute at_min."""
    run = run_typical_batch([list(use)] + [[*use, c] for c in challenges], until, "10min")

    def excess(subject, at_min, hours):
        lo, hi = (at_min + h * HOUR for h in hours)
        window = (run.t >= lo) & (run.t <= hi)
        return run["cows"][subject, window] - run["cows"][0, window]

    return excess


def test_buprenorphine_does_not_precipitate_during_morphine_maintenance_where_naloxone_does():
    # Schuh KJ et al. 1996 J Pharmacol Exp Ther 278:836: six volunteers on ascending morphine maintenance
    # (15-120 mg/day, 2 weeks a level): naloxone 0.3 mg IM precipitated withdrawal at the higher levels,
    # buprenorphine 6 mg IM failed to precipitate it even at 120 mg/day. Here 30 mg IM every 6 h for
    # 14 days, the challenge 1 h after the last dose; buprenorphine given IV, a faster and so at least
    # as strong a displacing challenge as Schuh's IM injection (the model has no IM buprenorphine).
    # "Precipitates": COWS ≥ 3 points over no challenge (one point on each of three items); "fails to":
    # never 1 point over it in 6 h (assumed thresholds; the study's own scales are not COWS)
    use = [Dose("morphine", "30 mg", route="im", at="6h", every="6h", until="13d19h")]
    at = 13 * DAY + 19 * HOUR
    excess = challenge(use, [Dose("buprenorphine", "6 mg", route="iv", at="13d19h"),
                             Dose("naloxone", "0.3 mg", route="im", at="13d19h")], "14d2h")
    assert excess(2, at, (0.25, 2)).max() >= 3.0, excess(2, at, (0.25, 2))
    assert excess(1, at, (0, 6)).max() < 1.0, excess(1, at, (0, 6))


@pytest.fixture(scope="module")
def methadone_challenges():
    """Strain EC et al.'s volunteers on 30 mg oral methadone a day (here 20 days, last dose at day
    19 + 8 h), challenged 2 h (Strain 1995) or 20 h (Strain 1992) after it: subject 1 buprenorphine
    2 mg IV at 2 h, 2 naloxone 0.2 mg IM at 2 h, 3 and 4 buprenorphine 2 and 8 mg IV at 20 h, 5
    naloxone 0.2 mg IM at 20 h (IV standing in for the studies' IM buprenorphine, see above)."""
    use = [Dose("methadone", "30 mg", route="oral", at="8h", every="24h", until="19d9h")]
    at2, at20 = "19d10h", "20d4h"
    return challenge(use, [Dose("buprenorphine", "2 mg", route="iv", at=at2),
                           Dose("naloxone", "0.2 mg", route="im", at=at2),
                           Dose("buprenorphine", "2 mg", route="iv", at=at20),
                           Dose("buprenorphine", "8 mg", route="iv", at=at20),
                           Dose("naloxone", "0.2 mg", route="im", at=at20)], "20d10h")


def test_buprenorphine_20_h_after_methadone_neither_relieves_nor_precipitates(methadone_challenges):
    # Strain EC et al. 1992 J Pharmacol Exp Ther 261:985: on 30 mg methadone a day, 0.5-8 mg
    # buprenorphine IM 20 h after the dose was neither agonist- nor antagonist-like on any measure,
    # while naloxone 0.1-0.2 mg IM was antagonist-like. Same thresholds as above (2 points for the
    # small naloxone doses)
    excess, at20 = methadone_challenges, 20 * DAY + 4 * HOUR
    assert excess(5, at20, (0.25, 2)).max() >= 2.0
    for subject in (3, 4):
        assert np.abs(excess(subject, at20, (0, 6))).max() < 1.0, excess(subject, at20, (0, 6))


@pytest.mark.xfail(strict=True, reason="known gap: the receptors' signal is the efficacy-weighted occupancy "
                   "Σ ε·B (model/receptor.py), and at equilibrium a partial agonist lowers it only where the full "
                   "agonist alone holds more than ε of the receptors; methadone's PET-fitted occupancy (Kling 2000) "
                   "is 0.22 of the brainstem's 2 h after 30 mg (0.36 after 60 mg), below buprenorphine's 0.5, so "
                   "buprenorphine relieves (COWS 0-0.2 below no challenge). A full agonist acting on a fifth of "
                   "the receptors through a reserve, and a partial one of low intrinsic efficacy, is the "
                   "operational model the roadmap describes")
def test_buprenorphine_2_h_after_methadone_is_antagonist_like(methadone_challenges):
    # Strain EC et al. 1995 J Pharmacol Exp Ther 272:628: the same design 2 h after the 30 mg dose:
    # buprenorphine IM (0.5-8 mg, most of all 1-2 mg) was antagonist-like, as naloxone was; and
    # Walsh SL et al. 1995 Psychopharmacology 119:268: buprenorphine 2-8 mg sublingual precipitated
    # withdrawal in methadone-maintained volunteers, more on 60 than on 30 mg a day
    excess, at2 = methadone_challenges, 19 * DAY + 10 * HOUR
    assert excess(2, at2, (0.25, 2)).max() >= 2.0  # naloxone: the measure sees an antagonist
    assert excess(1, at2, (0.25, 4)).max() >= 1.0, excess(1, at2, (0.25, 4))


def test_a_later_induction_relieves_withdrawal():
    # SAMHSA TIP 63 (2021): started 12-24 h after the last short-acting opioid, when withdrawal has
    # begun, buprenorphine relieves it. IV heroin 20 mg three times a day for 10 days, last dose at
    # 9d16h; 8 mg sublingual 24 h later, or none.
    use = [Dose("heroin", "20 mg", route="iv", at="8h", every="8h", until="9d17h")]
    last = 9 * DAY + 16 * HOUR
    late = run_scaled([*use, Dose("buprenorphine", "8 mg", route="sublingual", at="10d16h")], "buprenorphine",
                      "sublingual", [0.0, 8.0], 8.0, "11d2h", "10min")

    def cows(subject, hours_after_last):
        return late["cows"][subject, int(np.searchsorted(late.t, last + hours_after_last * HOUR))]

    assert cows(0, 24) >= 5.0  # the untreated subject is in withdrawal by then (not vacuous)
    assert cows(1, 24) == pytest.approx(cows(0, 24))  # same subject until the tablet
    assert cows(1, 28) < cows(0, 28) - 3.0, (cows(1, 28), cows(0, 28))
