"""Records interpolated inside steps ([solver] records = "interpolated", `integrate(..., dense=True)`).

The continuous extension's coefficients are checked against the Rosenbrock order conditions, the
interpolated records of a toy model against its exact solution, and the setting's way in from a
scenario file and the command line. The physiology against the Radau reference: tests/test_engine.py.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import opioidsim.engine.core as core  # noqa: I001  (enables 64-bit JAX first)

import jax.numpy as jnp

from opioidsim.engine import integrate, make_grid
from opioidsim.engine.dosing import DoseEvents
from opioidsim.engine.stepper import ROS34PW2_DENSE, ROS34PW2_TABLEAU, _ROS34PW2, ros34pw2_dense_weights
from opioidsim.errors import ScenarioError
from opioidsim.scenarios import Dose, Scenario
from toy_models import BOLUS, BOLUS_NAMES

NO_EVENT = np.iinfo(np.int64).max // 4


@pytest.mark.parametrize("theta", [0.1, 0.25, 0.5, 0.75, 0.9, 1.0])
def test_continuous_extension_meets_the_third_order_conditions(theta):
    """y(t + θh) = y + Σ b_i(θ) k_i is third order at every θ where (Hairer & Wanner 1996, IV.7,
    Table 7.1, with θ^q/… on the right): Σ b = θ, Σ b β' = θ²/2 − γθ, Σ b α² = θ³/3,
    Σ b (β' β'-products) = θ³/6 − γθ² + γ²θ, with α_i = Σ_j α_ij and β'_i = Σ_j (α_ij + γ_ij)."""
    alpha = np.asarray(ROS34PW2_TABLEAU["alpha"])
    off = np.asarray(ROS34PW2_TABLEAU["gamma_offdiag"])
    g = ROS34PW2_TABLEAU["gamma"]
    b = ROS34PW2_DENSE @ np.array([theta, theta**2, theta**3])
    beta = (alpha + off).sum(axis=1)
    assert b.sum() == pytest.approx(theta, abs=1e-14)
    assert b @ beta == pytest.approx(theta**2 / 2 - g * theta, abs=1e-14)
    assert b @ alpha.sum(axis=1) ** 2 == pytest.approx(theta**3 / 3, abs=1e-14)
    assert b @ ((alpha + off) @ beta) == pytest.approx(theta**3 / 6 - g * theta**2 + g**2 * theta, abs=1e-14)


def test_continuous_extension_ends_on_the_step():
    """At θ = 1 the interpolant is the step's own solution (weights m = b Γ⁻¹) and at θ = 0 its start."""
    np.testing.assert_allclose(ROS34PW2_DENSE.sum(axis=1), ROS34PW2_TABLEAU["b"], atol=1e-14)
    np.testing.assert_allclose(np.asarray(ros34pw2_dense_weights(jnp.asarray(1.0))), _ROS34PW2[2], atol=1e-13)
    np.testing.assert_array_equal(np.asarray(ros34pw2_dense_weights(jnp.asarray(0.0))), np.zeros(4))


# ---- a toy model with a known solution ------------------------------------------------------------
KEL, K, AMP, OMEGA, DOSE_MG, DOSE_AT = 0.05, 0.7, 1.3, 0.05, 10.0, 20.0
GRID = make_grid(600.0, 0.5, max_step=0.125)  # records every 30 s, stride 4


def exact(t):
    """amount: an IV bolus at DOSE_AT decaying at KEL; y' = −K y + AMP sin(Ω t), y(0) = 0.5."""
    amount = np.where(t > DOSE_AT, DOSE_MG * np.exp(-KEL * (t - DOSE_AT)), 0.0)  # a record at the dose: before it
    d = K * K + OMEGA * OMEGA
    particular = AMP * (K * np.sin(OMEGA * t) - OMEGA * np.cos(OMEGA * t)) / d
    y = particular + (0.5 + AMP * OMEGA / d) * np.exp(-K * t)
    return np.stack([amount, y], axis=-1)


def toy_run(dense: bool):
    p = {k: np.full(1, v.internal_value) for k, v in BOLUS.parameters.items()}
    p.update(kel=np.full(1, KEL), k=np.full(1, K), amp=np.full(1, AMP), omega=np.full(1, OMEGA))
    step = np.full((1, 2), NO_EVENT, dtype=np.int64)
    step[0, 0] = round(DOSE_AT / GRID.h)
    events = DoseEvents(step, np.zeros((1, 2), dtype=np.int32), np.array([[DOSE_MG, 0.0]]), np.array([DOSE_AT]))
    stats: dict = {}
    recs = integrate(BOLUS, GRID, BOLUS.initial_state(p), p, events, BOLUS_NAMES, stats=stats, dense=dense)
    return recs[0], stats


def test_interpolated_records_follow_the_exact_solution():
    """Steps of up to 16 min over 30 s records: every record within 1 % of the exact solution's
    scale (measured: 3.2e-4 for the bolus, 5.9e-3 for the forced state, in 69 steps). A straight line
    between the steps' ends would miss the bolus's decay by ≈ (h·kel)²/8 ≈ 8 % over 16 min; the
    stepped run, capped at one record a step, takes ≥ 1,200 steps (measured: 1,203)."""
    dense, stats = toy_run(True)
    want = exact(GRID.record_times_min)
    err = np.abs(dense - want) / np.abs(want).max(axis=0)
    assert err.max() <= 0.01, (err.max(axis=0), GRID.record_times_min[err.argmax(axis=0)])
    stepped, stepped_stats = toy_run(False)
    assert stepped_stats["steps"][0] >= GRID.n_records - 1
    assert stats["steps"][0] * 10 <= stepped_stats["steps"][0], (stats["steps"], stepped_stats["steps"])
    # records inside a step carry the tries of the step that spans them: no tries between them
    assert (stats["record_tries"][0] == 0).sum() >= (GRID.n_records - 1) // 2


def test_a_record_at_a_dose_is_taken_before_the_dose():
    """A step never crosses a dose: the record at the dose time is the state just before it (the
    engine's convention), interpolated or stepped alike."""
    dense, _ = toy_run(True)
    i = int(round(DOSE_AT / 0.5))
    assert dense[i, 0] == 0.0 and dense[i + 1, 0] == pytest.approx(DOSE_MG * math.exp(-KEL * 0.5), rel=1e-3)


def test_records_can_be_interpolated_only_by_the_queue_runner_with_ros34pw2():
    from opioidsim.engine.stepper import ros2_step

    p = {k: np.full(1, v.internal_value) for k, v in BOLUS.parameters.items()}
    events = DoseEvents(np.full((1, 1), NO_EVENT), np.zeros((1, 1), np.int32), np.zeros((1, 1)), np.array([]))
    y0 = BOLUS.initial_state(p)
    with pytest.raises(ValueError, match="continuous extension"):
        integrate(BOLUS, GRID, y0, p, events, BOLUS_NAMES, dense=True, step=ros2_step)
    with pytest.raises(ValueError, match="queue runner"):
        integrate(BOLUS, GRID, y0, p, events, BOLUS_NAMES, dense=True, runner="barrier")


# ---- the setting ----------------------------------------------------------------------------------
def _scenario(**solver) -> Scenario:
    return Scenario(duration="1h", record_every="1min", doses=[Dose("heroin", "10 mg", route="iv", at="5min")],
                    solver=solver)


def test_the_records_setting_is_checked_and_written_back():
    sc = _scenario(records="Interpolated")
    assert sc.solver.records == "interpolated"
    assert 'records = "interpolated"' in sc.to_toml()
    assert Scenario.from_toml_text(sc.to_toml()).solver.records == "interpolated"
    assert core.solver_records(_scenario(records="stepped")) == "stepped"
    assert core.solver_step_rtol(sc) == core.RTOL  # an explicit choice keeps the tolerance
    with pytest.raises(ScenarioError) as bad:
        _scenario(records="dense")
    assert bad.value.field == "solver.records" and "'auto', 'stepped', 'interpolated'" in bad.value.allowed
    with pytest.raises(ScenarioError) as clash:
        _scenario(records="interpolated", method="ros2")
    assert clash.value.field == "solver.method" and "continuous extension" in clash.value.allowed
    assert _scenario().with_solver(records="interpolated").solver.records == "interpolated"


def test_the_cli_flag_names_itself(tmp_path, capsys):
    from opioidsim.cli import main

    code = main(["run", "acute-heroin-iv", "--out", str(tmp_path / "o"), "--records", "dense"])
    err = capsys.readouterr().err
    assert code == 2 and "--records 'dense'" in err and "'auto', 'stepped', 'interpolated'" in err
    assert not (tmp_path / "o").exists()


# ---- "auto", the default --------------------------------------------------------------------------
def test_auto_interpolates_records_5_min_apart_or_closer_at_a_thirtieth_of_rtol():
    for every, rtol, want in (("1min", None, "interpolated"), ("5min", 1e-4, "interpolated"),
                              ("6min", None, "stepped"), ("1h", None, "stepped")):
        sc = Scenario(duration="1d", record_every=every, doses=[Dose("heroin", "10 mg", route="iv", at="5min")],
                      solver={} if rtol is None else {"rtol": rtol})
        assert core.solver_records(sc) == want, every
        asked = core.RTOL if rtol is None else rtol
        assert core.solver_step_rtol(sc) == pytest.approx(asked / 30 if want == "interpolated" else asked), every
    # a method without a continuous extension steps to its records whatever their interval
    assert core.solver_records(_scenario(method="ros2")) == "stepped"
    assert core.solver_step_rtol(_scenario(method="ros2")) == core.RTOL


def test_auto_records_of_the_flagship_are_as_accurate_as_stepped_ones_in_a_fifth_of_the_steps():
    """acute-heroin-iv (10 mg IV, 12 h, records every 30 s) as `simulate` runs it, subject 0 against
    the Radau reference (rtol 1e-8, engine/reference.py): the key readouts within 1e-3 of their
    largest value (measured for this subject: 1.2e-4, with stepped records 3.4e-4), in at most a
    fifth of the 1,440 steps that stepped records must take (one a record at least; measured over
    200 subjects: 157 on average against 1,454, benchmarks/bench_records.py)."""
    from opioidsim.engine import simulate_reference
    from opioidsim.scenarios import load_scenario

    sc = load_scenario("acute-heroin-iv").with_cohort(subjects=1)
    names = ("mor_occupancy_vta", "nac_dopamine", "hedonic_state", "pain", "ventilation", "spo2")
    ds = core.simulate(sc)
    assert ds.attrs["solver_records"] == "interpolated" and ds.attrs["solver_step_rtol"] == 1e-4
    model = core.run_model(sc)
    grid, p, events, _ = core._setup(sc, model, range(1))
    y0 = model.initial_state(p)
    ref = simulate_reference(model, y0, p, events, 0, grid.h, grid.record_times_min, names)
    got = np.stack([ds[n].values[0] for n in names], axis=-1)
    err = np.abs(got - ref).max(axis=0) / np.abs(ref).max(axis=0)
    assert err.max() <= 1e-3, dict(zip(names, err))
    # the same run through `integrate`, counting its steps (to the last bits, which a batch's shape
    # can change on some CPUs: docs/guide/11-engine.md, *All the cores*)
    stats: dict = {}
    recs = core.integrate(model, grid, y0, p, events, names, stats=stats, **core.integrate_settings(sc))
    np.testing.assert_allclose(recs[0], got, rtol=1e-12, atol=1e-15)
    assert stats["steps"][0] * 5 <= grid.n_records - 1, stats["steps"]
