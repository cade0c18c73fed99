"""Overdose and tolerance: the dose a dependent user took every day becomes an overdose after a
month without opioids (tolerance is lost, the habit of the dose is not), the mechanism behind the
deaths after detoxification and prison release (Strang J et al. 2003 BMJ 326:959; Merrall ELC et
al. 2010 Addiction 105:1545). Expected outcomes come from those papers, not from the model.

Research and teaching tool: illustrative doses of a typical subject, not dosing advice."""
import numpy as np
import pytest

from opioidsim.scenarios import Dose
from opioidsim.validation.sim import run_typical_batch

DAY = 1440.0
#: a month of 20 mg IV heroin every 8 h (dependence), then one large dose
HISTORY = [Dose("heroin", "20 mg", route="iv", at="8h", every="8h", until="30d")]
LARGE_MG = 120.0  # six times the habitual dose
MASSIVE_MG = 480.0  # 24 times the habitual dose
IN_USE, AFTER_MONTH = 30 * DAY + 4 * 60, 60 * DAY  # 4 h after the last habitual dose; a month later


@pytest.fixture(scope="module")
def challenges():
    """Subject 0: the large dose while still in daily use; 1: the same dose after a month without
    opioids; 2: the massive dose while in daily use."""
    run = run_typical_batch([HISTORY + [Dose("heroin", f"{LARGE_MG:g} mg", route="iv", at="30d4h")],
                             HISTORY + [Dose("heroin", f"{LARGE_MG:g} mg", route="iv", at="60d")],
                             HISTORY + [Dose("heroin", f"{MASSIVE_MG:g} mg", route="iv", at="30d4h")]],
                            "60d2h", "2min")

    def after(subject, at):
        window = (run.t >= at) & (run.t <= at + 90)
        return {k: run[k][subject, window] for k in ("overdose", "spo2", "mor_capacity_brainstem")}

    return after(0, IN_USE), after(1, AFTER_MONTH), after(2, IN_USE)


def test_the_dose_survived_in_dependence_is_an_overdose_after_a_month_without(challenges):
    in_use, after_month, _ = challenges
    # in daily use the brainstem is tolerant and the large dose is survived ...
    assert in_use["mor_capacity_brainstem"][0] < 0.8
    assert in_use["overdose"].max() == 0
    # ... a month later tolerance is gone (Strang 2003: within 1-2 weeks) and the same dose is one
    assert after_month["mor_capacity_brainstem"][0] > 0.95
    assert after_month["overdose"].max() == 1 and after_month["spo2"].min() < 75.0


def test_a_dependent_user_still_overdoses_on_a_massive_dose(challenges):
    # respiratory tolerance is incomplete: monkeys on daily morphine for 40 weeks kept their ventilatory
    # ED50 (Paronis CA & Woods JH 1997 J Pharmacol Exp Ther 282:355), and most overdose deaths are of
    # experienced users (White JM & Irvine RJ 1999 Addiction 94:961): lost receptors shift the
    # dose-response, they do not cap it
    _, _, massive = challenges
    assert massive["mor_capacity_brainstem"][0] < 0.8
    assert massive["overdose"].max() == 1


def test_a_month_of_daily_use_shifts_breathing_toward_the_human_tolerance_measured_with_fentanyl(challenges):
    # Algera MH et al. 2021 Clin Pharmacol Ther 109:637: the fentanyl concentration halving
    # isohypercapnic ventilation was 1.82 ± 0.39 ng/mL in chronic high-dose opioid users against
    # 0.42 ± 0.07 in naive volunteers, 4.3-fold. With the brainstem's full receptor reserve the
    # occupancy odds needed for a given signal scale as 1/capacity (transduced_signal), so 1/capacity
    # is the model's shift. Monkeys kept their ventilatory ED50 (Paronis & Woods 1997), humans do not:
    # the shift must be well above 1 and not beyond Algera's upper range (2.21/0.35 = 6.3)
    in_use, _, _ = challenges
    shift = 1.0 / in_use["mor_capacity_brainstem"][0]
    assert 2.0 <= shift <= 6.3, shift
