"""Error sizes shared between states (`State.error_scale_with`, `engine.core.error_magnitude`).

A precursor's vanishing tail (heroin beside the 6-MAM it becomes) and one ligand's share of a
receptor pool are measured against what they act with downstream, not against themselves: the
adaptive step then stops following a tail nothing can see, while the product stays within a few
rtol of the exact solution of a two-compartment chain.
"""
from __future__ import annotations

import numpy as np
import pytest

import opioidsim.engine.core as core  # noqa: I001  (enables 64-bit JAX first)
import jax.numpy as jnp

from opioidsim.engine import integrate, make_grid
from opioidsim.engine.dosing import DoseEvents
from opioidsim.engine.stepper import ros2_step, ros34pw2_step
from opioidsim.model.base import Module, State
from opioidsim.model.model import Model, default_model
from opioidsim.model.receptor import LIGANDS, REGIONS, bound_state
from opioidsim.params import Parameter

K_PRECURSOR, K_PRODUCT, DOSE = 0.25, 0.02, 20.0  # 1/min, 1/min, mg: heroin → 6-MAM-like half-lives


def _chain(scale_with: tuple[str, ...]) -> Model:
    class Chain(Module):
        """precursor' = −k1·precursor, product' = k1·precursor − k2·product."""

        name = "chain"
        states = (State("precursor", "mg", DOSE, "precursor", atol=1e-6, error_scale_with=scale_with),
                  State("product", "mg", 0.0, "product", atol=1e-6))
        parameters = (Parameter("k1", K_PRECURSOR, "1/min", "assumed: test (heroin's ≈ 3 min half-life)"),
                      Parameter("k2", K_PRODUCT, "1/min", "assumed: test (a slower product)"))
        provides = ("precursor_out", "product_out")

        def outputs(self, y, u, p):
            return {"precursor_out": y["precursor"], "product_out": y["product"]}

        def rates(self, t, y, u, p):
            return {"precursor": -p["k1"] * y["precursor"],
                    "product": p["k1"] * y["precursor"] - p["k2"] * y["product"]}

    return Model([Chain()])


def _run(model: Model, step=None):
    grid = make_grid(180.0, 10.0)
    n = 2
    ev = DoseEvents(np.full((n, 1), np.iinfo(np.int64).max // 4), np.zeros((n, 1), np.int32), np.zeros((n, 1)),
                    np.array([]))
    p = {"k1": np.full(n, K_PRECURSOR), "k2": np.full(n, K_PRODUCT)}
    st: dict = {}
    got = integrate(model, grid, np.tile([DOSE, 0.0], (n, 1)), p, ev, ("precursor_out", "product_out"), stats=st,
                    step=step or ros34pw2_step)
    t = grid.record_times_min
    exact_product = DOSE * K_PRECURSOR / (K_PRODUCT - K_PRECURSOR) * (np.exp(-K_PRECURSOR * t) - np.exp(-K_PRODUCT * t))
    return got[0], np.exp(-K_PRECURSOR * t) * DOSE, exact_product, st["record_tries"][0]


@pytest.mark.parametrize("step, fraction", [(ros2_step, 0.2), (ros34pw2_step, 0.5)])
def test_a_precursor_measured_with_its_product_stops_holding_the_step_and_the_product_stays_exact(step, fraction):
    own, own_pre, exact, own_tries = _run(_chain(()), step)
    shared, _, _, shared_tries = _run(_chain(("product",)), step)
    # From 20 to 60 min the precursor is under 1 % of the product (e^(−0.25·20) = 0.7 %). Alone, its
    # tail is followed to its own relative tolerance down to atol 1e-6 mg (ln(20/1e-6)/k1 ≈ 67 min):
    # with ROS2 (estimate ∝ h²) at steps of ≈ √(2·rtol)/k1 ≈ 0.3 min, with the third-order ROS34PW2
    # (estimate ∝ h³) at steps ∝ rtol^(1/3), a few times longer; measured with its product, the
    # product's slow decay (k2 = k1/12.5) sets the step.
    window = slice(2, 6)  # the records' intervals 20-30, ..., 50-60 min
    assert shared_tries[window].sum() < fraction * own_tries[window].sum(), (shared_tries, own_tries)
    assert shared_tries.sum() < own_tries.sum()
    # Both keep the product within a few rtol of the exact solution (relative to its peak)...
    for got in (own, shared):
        assert np.max(np.abs(got[:, 1] - exact)) < 3 * core.RTOL * exact.max(), np.abs(got[:, 1] - exact)
    # ... and the precursor within a few rtol of the product's size (its declared scale). Alone, each
    # step's error is within rtol of its own size, and on a decay an error made earlier shrinks with
    # the solution: the relative error at t is at most rtol times the steps taken by then (ROS2, whose
    # estimate overstates its error many times, stays within a few rtol; ROS34PW2's long steps
    # reach 2.6 % at 50 min, 35 tries in)
    assert np.max(np.abs(shared[:, 0] - own_pre)) < 3 * core.RTOL * exact.max()
    steps_by = np.concatenate([[0], np.cumsum(own_tries)])
    assert np.all(np.abs(own[:, 0] - own_pre) <= steps_by * core.RTOL * own_pre + 1e-5)
    if step is ros2_step:
        assert np.all(np.abs(own[:, 0] - own_pre) <= 3 * core.RTOL * own_pre + 1e-5)


def test_error_magnitude_adds_a_regions_other_ligands_and_heroins_products():
    model = default_model()
    rng = np.random.default_rng(7)
    size = rng.uniform(0.0, 1.0, (3, model.n_states))
    got = np.asarray(core.error_magnitude(model, jnp.asarray(size)))
    ix = model.index
    for r in REGIONS:  # every ligand's bound fraction is measured against the region's occupancy
        pool = [ix[bound_state(r, lig)] for lig in LIGANDS]
        for i in pool:
            np.testing.assert_allclose(got[:, i], size[:, pool].sum(axis=1))
    chains = {"heroin_central": ("heroin_central", "sixmam_central", "morphine_central"),
              "sixmam_central": ("sixmam_central", "morphine_central"),
              "effect_heroin": ("effect_heroin", "effect_6mam", "effect_morphine"),
              "effect_6mam": ("effect_6mam", "effect_morphine"),
              # an absorption depot feeds its drug's blood compartment (heroin's, its chain) ...
              "heroin_smoked_depot": ("heroin_smoked_depot", "heroin_central", "sixmam_central", "morphine_central"),
              "morphine_oral_depot": ("morphine_oral_depot", "morphine_central"),
              "methadone_oral_depot": ("methadone_oral_depot", "methadone_central"),
              "buprenorphine_sublingual_depot": ("buprenorphine_sublingual_depot", "buprenorphine_central"),
              "naloxone_intranasal_depot": ("naloxone_intranasal_depot", "naloxone_central")}
    for name, members in chains.items():
        np.testing.assert_allclose(got[:, ix[name]], size[:, [ix[m] for m in members]].sum(axis=1))
    others = [i for i, s in enumerate(model.states) if not s.error_scale_with]
    # ... but naltrexone's feed the blood through first-pass metabolism or the injection site
    assert {"morphine_central", "effect_morphine", "effect_fentanyl", "pao2", "naltrexone_oral_depot",
            "naltrexone_xr_depot"} <= {model.state_names[i] for i in others}
    np.testing.assert_array_equal(got[:, others], size[:, others])  # the rest: their own size


@pytest.mark.parametrize("scale_with, words", [
    (("nothing_here",), ["'a'", "'nothing_here'", "no state"]),
    (("b",), ["'a'", "(mg)", "'b'", "(1)", "share a unit"]),
])
def test_a_bad_error_scale_declaration_is_refused_naming_both_states(scale_with, words):
    class Bad(Module):
        name = "bad"
        states = (State("a", "mg", 0.0, "a", error_scale_with=scale_with), State("b", "1", 0.0, "b"))

    with pytest.raises(ValueError) as err:
        Model([Bad()])
    assert all(w in str(err.value) for w in words), str(err.value)


def test_maintenance_doses_through_their_depots_stay_within_a_percent_of_the_reference():
    # Methadone 80 mg orally (subject 0) and buprenorphine 16 mg sublingually (subject 1) once a day
    # for 2 days: the emptying depots are now measured with the blood they feed, so the step no
    # longer follows their tails; what the drugs do must still match Radau at rtol 1e-8 within 1 %
    # of each readout's largest size (issue 7's accuracy goal for key readouts)
    from opioidsim.engine import reference, subject_parameters
    from opioidsim.engine.core import run_model
    from opioidsim.engine.dosing import compile_doses
    from opioidsim.scenarios import Dose, Scenario

    drugs = (("methadone", "oral", "80 mg"), ("buprenorphine", "sublingual", "16 mg"))
    sc = Scenario(name="maintenance", duration="2d", record_every="30min", cohort={"subjects": 2, "seed": 0},
                  doses=[Dose(drug, mg, route=route, at="0h", every="24h", until="2d") for drug, route, mg in drugs])
    model = run_model(sc, default_model())  # as `simulate` integrates it (tests/test_inert.py checks that)
    grid = make_grid(sc.duration_min, sc.record_every_min)
    p = subject_parameters(model, sc, 2, 0)
    ev = compile_doses(model, sc.doses, sc.duration_min, grid.h, p)
    for subject, (drug, route, _mg) in enumerate(drugs):  # each subject takes one of the two drugs
        depot = model.index[f"{drug}_{route}_depot"]
        ev.amount[subject, (ev.target[subject] != depot)] = 0.0
    names = ("plasma_methadone", "plasma_buprenorphine", "mor_occupancy_vta", "mor_signal_brainstem", "ventilation",
             "nac_dopamine", "camp_lc")
    got = integrate(model, grid, model.initial_state(p), p, ev, names)
    for subject in range(2):
        ref = reference.simulate_reference(model, model.initial_state(p), p, ev, subject, grid.h,
                                           grid.record_times_min, names)
        mine, other = (0, 1) if subject == 0 else (1, 0)
        assert np.max(ref[:, mine]) > 1.0 and np.max(ref[:, other]) == 0.0  # ng/mL: one drug each (not vacuous)
        keep = [i for i in range(len(names)) if i != other]
        err = np.max(np.abs(got[subject][:, keep] - ref[:, keep]), axis=0) / np.max(np.abs(ref[:, keep]), axis=0)
        assert np.all(err < 0.01), dict(zip([names[i] for i in keep], err))
