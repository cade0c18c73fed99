"""ROS34PW2, the engine's default step (stepper.ros34pw2_step): a third-order Rosenbrock W-method
with an embedded second-order solution (Rang & Angermann 2005, BIT 45:761).

Expected values come from outside the code under test: the method's stability function written
from the published (untransformed) tableau, closed-form solutions, and the exact Radau-free
reasoning of each docstring. The global order on exact solutions (also with a Jacobian that
leaves a coupling out) is in tests/test_engine.py (test_global_error_has_the_methods_order).
"""
from __future__ import annotations


import numpy as np
import pytest

import opioidsim.engine.core as core  # noqa: I001  (enables 64-bit JAX first)
import jax.numpy as jnp

from opioidsim.engine import integrate, make_grid, stepper
from opioidsim.engine.dosing import DoseEvents
from opioidsim.model.model import Model
from opioidsim.scenarios.schema import SOLVER_METHODS
from toy_models import CUBIC, StiffRelaxModule

# The tableau as Rang & Angermann (2005) publish it: k_i = h f(y + Σ α_ij k_j) + hJ Σ γ_ij k_j,
# y1 = y + Σ b_i k_i (γ_ii = γ)
GAMMA = 0.435866521508459
ALPHA = np.array([[0, 0, 0, 0], [0.87173304301691801, 0, 0, 0],
                  [0.84457060015369423, -0.11299064236484185, 0, 0], [0, 0, 1, 0]])
GAMMAS = np.array([[GAMMA, 0, 0, 0], [-0.87173304301691801, GAMMA, 0, 0],
                   [-0.90338057013044082, 0.054180672388095326, GAMMA, 0],
                   [0.24212380706095346, -1.2232505839045147, 0.54526025533510214, GAMMA]])
B = np.array([0.24212380706095346, -1.2232505839045147, 1.5452602553351020, 0.435866521508459])


def stability(z: float) -> float:
    """R(z) = 1 + z bᵀ (I − z(α + Γ))⁻¹ 𝟙 (Hairer & Wanner 1996, IV.7, eq. 7.16)."""
    return 1.0 + z * B @ np.linalg.solve(np.eye(4) - z * (ALPHA + GAMMAS), np.ones(4))


def test_the_published_tableau_is_third_order_and_stiffly_accurate():
    """Independent of the step's code: the tableau's own order conditions up to three (with
    β = α + Γ: Σb = 1, Σbβ𝟙 = 1/2, Σbc² = 1/3, bβ²𝟙 = 1/6, c = α𝟙) and stiff accuracy (b is the
    last row of β, so R(∞) = 0)."""
    beta = ALPHA + GAMMAS
    c = ALPHA.sum(axis=1)
    assert B.sum() == pytest.approx(1.0, abs=1e-14)
    assert B @ beta @ np.ones(4) == pytest.approx(0.5, abs=1e-14)
    assert B @ c**2 == pytest.approx(1 / 3, abs=1e-14)
    assert B @ beta @ beta @ np.ones(4) == pytest.approx(1 / 6, abs=1e-14)
    np.testing.assert_allclose(beta[3], B, atol=1e-15)
    assert abs(stability(-1e12)) < 1e-10


RELAX = Model([StiffRelaxModule()])  # y' = −λ (y − c): one step from 1 is c + R(−λh)(1 − c)


@pytest.mark.parametrize("lam", [0.5, 2.0, 40.0, 1e4])
def test_one_step_of_a_linear_problem_is_the_published_stability_function(lam):
    h, c = 0.25, 0.25
    y1, _ = stepper.ros34pw2_step(RELAX, jnp.zeros(1), jnp.ones((1, 1)),
                                  {"lam": jnp.full(1, lam), "c": jnp.full(1, c)}, jnp.full(1, h))
    assert float(y1[0, 0]) - c == pytest.approx(stability(-lam * h) * (1.0 - c), rel=1e-10, abs=1e-14)
    if lam == 1e4:  # L-stable: a far stiffer mode than the step is damped to its equilibrium at once
        assert abs(float(y1[0, 0]) - c) < 2e-3 * (1.0 - c)  # |R(z)| ≈ 2.9/|z| here




def test_the_error_estimate_is_third_order_and_bounds_the_steps_error():
    """On y' = −y³ from 1 (exact 1/√(1 + 2h)): the step's local error is O(h⁴) (falls ~16× per
    halving of h) and its estimate, the difference from the embedded second-order solution,
    O(h³) (~8×); so the estimate is the larger, by a factor growing as 1/h (a conservative
    step-size rule, as ROS2's first-order estimate is: tests/test_solver.py)."""
    hs = np.array([0.02, 0.01, 0.005, 0.0025])
    y1, est = stepper.ros34pw2_step(CUBIC, jnp.zeros(hs.size), jnp.ones((hs.size, 1)), {"lam": jnp.ones(hs.size)},
                                    jnp.asarray(hs))
    true = np.abs(np.asarray(y1)[:, 0] - 1.0 / np.sqrt(1.0 + 2.0 * hs))
    est = np.abs(np.asarray(est)[:, 0])
    assert np.all((est[:-1] / est[1:] > 7.0) & (est[:-1] / est[1:] < 9.0)), est
    assert np.all((true[:-1] / true[1:] > 14.0) & (true[:-1] / true[1:] < 18.0)), true
    assert np.all(est > 2.0 * true) and np.all(np.diff(est / true) > 0), est / true


def test_adaptive_steps_meet_the_tolerance_on_an_exact_solution_in_fewer_steps_than_ros2():
    """The adaptive engine on a one-compartment bolus (10 at 1 min, kel 0.05/min, 6 h): both methods
    keep the amount within a few rtol of 10·e^(−kel (t − 1)), and the third-order one needs fewer
    than half of ROS2's steps for it (its step grows as rtol^(1/3) instead of rtol^(1/2))."""
    from toy_models import BOLUS, BOLUS_NAMES

    grid = make_grid(360.0, 5.0)
    n = 2
    p = {k: np.full(n, v.internal_value) for k, v in BOLUS.parameters.items()}
    p["amp"] = np.zeros(n)  # the forced state decays from 0.5 alone: exact 0.5 e^(−k t)
    ev = DoseEvents(np.full((n, 1), 16, dtype=np.int64), np.zeros((n, 1), np.int32), np.full((n, 1), 10.0),
                    np.array([1.0]))
    t = grid.record_times_min
    exact_amount = np.where(t >= 1.0, 10.0 * np.exp(-p["kel"][0] * (t - 1.0)), 0.0)
    steps = {}
    for name, step in stepper.METHODS.items():
        st: dict = {}
        got = integrate(BOLUS, grid, BOLUS.initial_state(p), p, ev, BOLUS_NAMES, stats=st, step=step)[0]
        assert np.max(np.abs(got[:, 0] - exact_amount)) < 3 * core.RTOL * 10.0, name
        assert np.max(np.abs(got[:, 1] - 0.5 * np.exp(-p["k"][0] * t))) < 3 * core.RTOL * 0.5 + core.ATOL, name
        steps[name] = int(st["steps"][0])
    assert steps["ros34pw2"] < 0.5 * steps["ros2"], steps


def test_the_scenario_method_names_are_the_engines_steps():
    assert tuple(stepper.METHODS) == SOLVER_METHODS
    assert core.solver_step(None) is stepper.ros34pw2_step  # the default: the first name
