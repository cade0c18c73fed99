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


def _after_use(nac_ratio: float, hedonic: float = 2.0):
    """What learn_from_infusion reads a few minutes after a use: NAc dopamine at `nac_ratio` times its
    level before, a pleasure of hedonic/10 and no relief (the drive is as before)."""
    out = {"nac_dopamine": 5.0 * nac_ratio, "hedonic_state": hedonic, "negative_affect": 0.0}
    return out, 5.0


DRUG_FREE = 1e6  # minutes since the previous use: the first use ever, or one after days off


def test_without_a_surge_a_use_from_a_drug_free_state_is_learned_like_any_outcome():
    # a use that raised no dopamine (a receptor blocked by naltrexone): plain temporal-difference
    # learning, value moves a learning rate's share of the way to the outcome (pleasure 0.2)
    p = _typical()
    out, pre_da = _after_use(1.0)
    pre_drive = float(ag.drive(out, p))
    new = float(ag.learn_from_infusion(1.0, out, pre_drive, pre_da, DRUG_FREE, p))
    assert new == pytest.approx(1.0 + p["value_learning_rate"] * (0.2 - 1.0))


def test_in_the_drug_state_redishs_floor_holds_in_full():
    # the same use taken within drug_state_window of the previous one (a rat's run of infusions):
    # Redish's rule, δ = max(o - v, D) with D = 0 here, so value cannot fall; just past the window
    # it falls as above
    p = _typical()
    w = p["drug_state_window"]
    out, pre_da = _after_use(1.0)
    pre_drive = float(ag.drive(out, p))
    for gap in (0.0, 5.0, 0.99 * w):
        assert float(ag.learn_from_infusion(1.0, out, pre_drive, pre_da, gap, p)) == pytest.approx(1.0), gap
    assert float(ag.learn_from_infusion(1.0, out, pre_drive, pre_da, 1.01 * w, p)) < 1.0
    # with a surge, value grows by the learning rate times D, slowed as it nears the ceiling
    out, pre_da = _after_use(1.3)
    d = p["dopamine_reward_weight"] * 0.3
    new = float(ag.learn_from_infusion(1.0, out, pre_drive, pre_da, 5.0, p))
    assert new == pytest.approx(1.0 + p["value_learning_rate"] * d * (1.0 - 1.0 / p["value_max"]))


def test_a_small_surge_holds_value_at_the_outcome_plus_its_square_over_the_half():
    # constant outcome o = 0.2 and dopamine term D = 0.5 × surge 0.3 = 0.15: the update is zero where
    # (o - v) + D/(D + h)·(D - (o - v)) = 0, i.e. v = o + D²/h (0.425 with h = 0.1), below the ceiling
    p = _typical()
    h = p["surge_floor_half"]
    out, pre_da = _after_use(1.3)
    pre_drive = float(ag.drive(out, p))
    d = p["dopamine_reward_weight"] * 0.3
    expected = 0.2 + d * d / h
    assert expected < p["value_max"]
    for start in (1.2, 0.0):  # from the ceiling down (a tolerant user), and from naive up
        v = start
        for _ in range(200):
            v = float(ag.learn_from_infusion(v, out, pre_drive, pre_da, DRUG_FREE, p))
        assert v == pytest.approx(expected, rel=1e-6), start


def test_a_large_surge_keeps_most_of_redishs_floor():
    # a naive brain's surge (dopamine tripled: D = 1) keeps D/(D + h) of the floor, so value grows
    # from 1.0 although the outcome (0.2) is far below it, and settles at the ceiling, not above
    p = _typical()
    out, pre_da = _after_use(3.0)
    pre_drive = float(ag.drive(out, p))
    d, h, v0 = 1.0, p["surge_floor_half"], 1.0
    room = 1.0 - v0 / p["value_max"]
    redish = v0 + p["value_learning_rate"] * d * room
    new = float(ag.learn_from_infusion(v0, out, pre_drive, pre_da, DRUG_FREE, p))
    blended = (0.2 - v0) + d / (d + h) * (d - (0.2 - v0))
    assert new == pytest.approx(v0 + p["value_learning_rate"] * blended * room)
    assert v0 < new < redish and (new - v0) > 0.8 * (redish - v0)
    v = v0
    for _ in range(500):
        v = float(ag.learn_from_infusion(v, out, pre_drive, pre_da, DRUG_FREE, p))
    assert p["value_max"] - 0.01 < v <= p["value_max"]


def _vta_on_board(**bound) -> tuple[dict, dict]:
    """The receptor module's outputs and parameters with the VTA fractions bound by each named drug
    and nothing else on board, in a naive brain."""
    from opioidsim.model import receptor as rc
    from opioidsim.model.tolerance import REGIONS as TOLERANT

    p = {k: par.internal_value for k, par in check_parameters(rc.PARAMETERS).items()}
    y = {rc.bound_state(r, lig): (bound.get(lig.drug, 0.0) if r == "vta" else 0.0)
         for r in rc.REGIONS for lig in rc.LIGANDS}
    u = {f"mor_capacity_{r}": 1.0 for r in TOLERANT}
    return rc.ReceptorModule().outputs(y, u, p), p


def _hill(x, half, n):
    return x ** n / (half ** n + x ** n)


def test_satiety_counts_each_ligand_for_its_efficacy():
    """An agonist satisfies by its occupancy, a partial agonist by efficacy × occupancy (it signals a
    fraction of a full agonist's effect at the same occupancy), an antagonist not at all."""
    p = _typical()
    half, n = p["satiety_half_occupancy"], p["satiety_hill"]
    methadone, _ = _vta_on_board(methadone=0.7)
    bup, rp = _vta_on_board(buprenorphine=0.7)
    naltrexone, _ = _vta_on_board(naltrexone=0.7)
    efficacy = rp["buprenorphine_efficacy"]
    assert 0.0 < efficacy < 1.0  # a partial agonist
    for out in (methadone, bup, naltrexone):
        assert float(out["mor_occupancy_vta"]) == pytest.approx(0.7)  # all three occupy alike
    assert float(ag.satiety(methadone, p)) == pytest.approx(_hill(0.7, half, n))
    assert float(ag.satiety(bup, p)) == pytest.approx(_hill(efficacy * 0.7, half, n))
    assert float(ag.satiety(naltrexone, p)) == 0.0
    # ligands add: heroin beside buprenorphine
    both, _ = _vta_on_board(heroin=0.2, buprenorphine=0.5)
    assert float(ag.satiety(both, p)) == pytest.approx(_hill(0.2 + efficacy * 0.5, half, n))


def test_wanting_is_scaled_by_what_is_left_unsated():
    p = _typical()
    out = {"cue_glutamate": 1.0}  # no cue-evoked glutamate: salience 1
    value, habit = 0.8, 0.4
    full = value + p["habit_weight"] * habit
    assert float(hu.wanting(value, habit, 0.5, 0.0, 0.0, 0.0, out, p)) == pytest.approx(full)
    assert float(hu.wanting(value, habit, 0.5, 0.0, 0.0, 0.25, out, p)) == pytest.approx(0.75 * full)
    assert float(hu.wanting(value, habit, 0.5, 0.0, 0.0, 1.0, out, p)) == pytest.approx(0.0)
