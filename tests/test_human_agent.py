"""The person's decision rules (behavior/human.py) and the per-subject readiness trait: checked
against their definitions (closed forms), not against the model's own output."""
from __future__ import annotations

import math

import numpy as np
import pytest

from opioidsim.behavior import agent as ag
from opioidsim.behavior import human as hu
from opioidsim.behavior.course import course_parameters
from opioidsim.params import check_parameters
from opioidsim.scenarios import load_scenario
from opioidsim.scenarios.course import Supply


def _typical(**change) -> dict:
    p = {k: par.internal_value for k, par in check_parameters(ag.PARAMETERS + hu.PARAMETERS).items()}
    p["readiness"] = 1.0
    p.update(change)
    return p


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def test_medication_relief_moves_toward_the_share_of_distress_gone():
    p = _typical()
    rate = p["medication_relief_learning_rate"]
    # distress halved since the dose: relief 0.5; from 0 the estimate moves a rate's share of the way
    assert float(hu.learn_medication_relief(0.0, 2.0, 1.0, p)) == pytest.approx(rate * 0.5)
    # distress grew (naltrexone relieves nothing): relief 0, the estimate decays toward it
    assert float(hu.learn_medication_relief(0.4, 1.0, 1.5, p)) == pytest.approx(0.4 * (1 - rate))
    # all gone: relief 1, never above it
    assert float(hu.learn_medication_relief(1.0, 1.0, 0.0, p)) == pytest.approx(1.0)


def test_a_patient_enrols_expecting_relief_only_from_an_agonist():
    p = _typical()
    assert 0.0 < p["medication_expectation"] < 1.0  # a share of the distress
    assert float(hu.enrolment_relief(1.0, p)) == p["medication_expectation"]  # methadone, buprenorphine
    assert float(hu.enrolment_relief(0.0, p)) == 0.0  # naltrexone, a drug-free programme


def test_a_dose_is_judged_only_without_a_street_use_around_it():
    p = _typical()
    window = p["relief_attribution_window"]
    assert window == pytest.approx(8.0 * 60.0)  # declared in hours, compared in minutes
    uses_since = np.array([0.0, 4 * 60.0, window, window + 1.0, 1e6])  # minutes since the last use
    assert hu.relief_attributable(uses_since, p).tolist() == [False, False, False, True, True]


def test_attendance_without_learned_relief_is_the_programme_against_the_street():
    p = _typical()
    want, drive = 0.9, 0.4
    need = p["street_pull_weight"] * want + p["distress_weight"] * drive
    expected = _sigmoid(p["attend_gain"] * (p["programme_commitment"] - need))
    assert float(hu.attend_probability(want, drive, 0.0, 0.0, 0.0, p)) == pytest.approx(expected)


@pytest.mark.parametrize("share, direction", [(0.0, -1), (1.0, 0), (2.0, +1)])
def test_distress_draws_to_the_clinic_once_the_dose_is_known_to_relieve_it(share, direction):
    """`share` × 1/medication_pull is the learned relief at which distress stops pulling to the
    street (1) and starts pulling to the clinic (2)."""
    p = _typical()
    relief = share / p["medication_pull"]
    low, high = (float(hu.attend_probability(0.5, d, 0.0, 0.0, relief, p)) for d in (0.1, 1.0))
    assert np.sign(round(high - low, 12)) == direction


def test_readiness_scales_attendance_and_the_brake_on_use_only_in_a_programme():
    p = _typical()
    ready, reluctant = _typical(readiness=2.0), _typical(readiness=0.5)
    assert hu.attend_probability(1.0, 0.3, 0, 0, 0, ready) > hu.attend_probability(1.0, 0.3, 0, 0, 0, reluctant)
    outside = [float(hu.use_motivation(1.0, 0.3, 1.0, 0.0, 0.0, 0.0, q)) for q in (ready, reluctant)]
    assert outside[0] == outside[1]  # outside a programme readiness does nothing
    inside = float(hu.use_motivation(1.0, 0.3, 1.0, 0.0, 0.0, 1.0, ready))
    assert inside == pytest.approx(outside[0] - 2.0 * p["quit_brake"])


def test_readiness_is_lognormal_with_median_one_and_the_declared_cv_and_follows_the_subject():
    sc = load_scenario("trial-methadone-vs-no-substitution")
    supply = Supply()
    n = 20000
    r = course_parameters(sc, supply, n, 0)["readiness"]
    cv = check_parameters(hu.PARAMETERS)["readiness_cv"].internal_value
    sigma = math.sqrt(math.log1p(cv ** 2))
    # log-readiness ~ N(0, σ²): the sample sd has standard error σ/√(2n) ≈ 0.002
    assert abs(np.log(r).mean()) < 4 * sigma / math.sqrt(n)
    assert np.log(r).std() == pytest.approx(sigma, abs=4 * sigma / math.sqrt(2 * n))
    # counter-based: subjects 100-109 drawn alone are the same people
    assert np.array_equal(course_parameters(sc, supply, 10, 100)["readiness"], r[100:110])
