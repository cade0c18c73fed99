"""The receptor reserve of model/receptor.py against the properties that define it in receptor theory
(Black JW & Leff P 1983 Proc R Soc Lond B 220:141; Kenakin's receptor-inactivation experiments):
without spare receptors, losing receptors scales the response down; with them, a full agonist's
dose-response shifts to the right at an unchanged maximum while a partial agonist loses maximum."""
import numpy as np
import pytest

from opioidsim.model.receptor import PARAMETERS, transduced_signal

STIMULUS = np.linspace(0.0, 1.0, 41)


@pytest.mark.parametrize("reserve", [0.0, 0.5, 1.0])
def test_a_naive_brain_signals_its_stimulus_whatever_the_reserve(reserve):
    np.testing.assert_allclose(transduced_signal(STIMULUS, 1.0, reserve), STIMULUS, rtol=0, atol=1e-15)


def test_without_reserve_lost_receptors_scale_the_signal_down():
    for capacity in (0.3, 0.6, 0.9):
        np.testing.assert_allclose(transduced_signal(STIMULUS, capacity, 0.0), capacity * STIMULUS, atol=1e-15)


def test_with_full_reserve_a_full_agonist_is_shifted_to_the_right_not_capped():
    # occupancy of a hill-1 agonist at concentration A (in units of Kd) is A/(1 + A); a tolerant brain
    # with capacity c then signals what a naive one signals at c·A: a pure potency shift of 1/c
    conc = np.logspace(-3, 4, 50)
    for capacity in (0.2, 0.6):
        tolerant = transduced_signal(conc / (1 + conc), capacity, 1.0)
        np.testing.assert_allclose(tolerant, capacity * conc / (1 + capacity * conc), rtol=1e-12)
        assert transduced_signal(1.0, capacity, 1.0) == pytest.approx(1.0)  # the naive maximum is still reached


def test_with_full_reserve_a_partial_agonist_loses_maximal_effect():
    for efficacy in (0.2, 0.5):
        ceiling = transduced_signal(efficacy, 0.6, 1.0)
        assert 0.6 * efficacy < ceiling < efficacy  # less than naive, more than without reserve


def test_every_region_has_a_reserve_between_none_and_full():
    reserves = {p.name: p for p in PARAMETERS if p.name.startswith("mor_reserve_")}
    assert set(reserves) == {"mor_reserve_vta", "mor_reserve_dorsal_horn", "mor_reserve_brainstem", "mor_reserve_lc"}
    assert all(0.0 <= p.value <= 1.0 and p.unit == "1" and p.source for p in reserves.values())
