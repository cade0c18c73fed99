"""The fast ROS2 step: the coloured Jacobian, the component-wise solve, and their agreement with
the dense step they replace.

Expected values come from outside the code under test: jax.jacfwd's full Jacobian (one tangent per
state), numpy's dense solve of the same matrix, hand-derived Jacobian patterns of toy modules, and
`ros2_step_dense` (the step as first written: dense Jacobian, explicit inverses of module blocks).
"""
from __future__ import annotations

import numpy as np
import pytest

import opioidsim.engine.core as core  # noqa: I001  (enables 64-bit JAX before jnp is used)
import jax
import jax.numpy as jnp

from opioidsim.engine import stepper
from opioidsim.model import default_model
from opioidsim.model.base import SAFE_POW_OFFSET, Module, State, safe_pow
from opioidsim.model.model import Model
from opioidsim.params import Parameter
from opioidsim.scenarios import Scenario

SRC = "test-only parameter (toy problem)"


class FeedModule(Module):
    """a → ∅ and a ⇄ b (a 2-state cycle), publishing b."""

    name = "feed"
    states = (State("a", "mg", 1.0, "A"), State("b", "mg", 0.0, "B"))
    parameters = (Parameter("ka", 0.5, "1/min", SRC), Parameter("kab", 0.2, "1/min", SRC),
                  Parameter("kba", 0.1, "1/min", SRC))
    provides = ("b_level",)

    def outputs(self, y, u, p):
        return {"b_level": y["b"]}

    def rates(self, t, y, u, p):
        flow = p["kab"] * y["a"] - p["kba"] * y["b"]
        return {"a": -p["ka"] * y["a"] - flow, "b": flow}


class SwitchedModule(Module):
    """c driven by b through a switch that is off (0) by default, d driven by nothing but itself:
    the entry dc'/db vanishes at the default parameters and must still be found."""

    name = "switched"
    states = (State("c", "1", 0.0, "C"), State("d", "1", 1.0, "D"))
    parameters = (Parameter("switch", 0.0, "1", SRC), Parameter("kc", 0.3, "1/min", SRC))
    inputs = ("b_level",)

    def rates(self, t, y, u, p):
        return {"c": p["switch"] * u["b_level"] ** 2 - p["kc"] * y["c"], "d": -p["kc"] * y["d"] ** 2}


def test_toy_pattern_colouring_and_solve_order_match_the_hand_derived_structure():
    model = Model([FeedModule(), SwitchedModule()])
    st = stepper.jacobian_structure(model)
    a, b, c, d = (model.index[n] for n in "abcd")
    want = np.zeros((4, 4), dtype=bool)
    for r, col in ((a, a), (a, b), (b, a), (b, b), (c, b), (c, c), (d, d)):
        want[r, col] = True
    np.testing.assert_array_equal(st.pattern, want)
    # columns sharing a colour share no row
    for k in range(st.n_colours):
        cols = np.nonzero(st.colour == k)[0]
        assert (st.pattern[:, cols].sum(axis=1) <= 1).all()
    assert st.n_colours == 2  # a, b both feed row b: ≥ 2; {a, c} or {a, d} … fit in 2
    # {a, b} is one component, solved before c (which reads b); d stands alone
    levels = [set(st.order[lev.start:lev.start + lev.size].tolist()) for lev in st.levels]
    assert {a, b} <= levels[0] and d in levels[0] and levels[1] == {c}
    assert [lev.groups for lev in st.levels][0] == ((2, 1),)


@pytest.fixture(scope="module")
def full():
    """The default model at physiological states: subjects of a cohort with variability, a pain
    stimulus and a GLT-1 drug, their initial state with drug present in every state that holds one
    (every state starting at 0 given a positive amount), and with every state scattered ±30 %."""
    model = default_model()
    sc = Scenario(name="t", duration="1h", record_every="1h", cohort={"subjects": 6, "seed": 3},
                  conditions={"pain_stimulus": 0.5})
    p = core.subject_parameters(model, sc, 6, 3)
    y0 = model.initial_state(p)
    rng = np.random.default_rng(7)
    y = np.where(y0 == 0.0, rng.uniform(0.0, 2.0, y0.shape), y0) * rng.uniform(0.7, 1.3, y0.shape)
    y = np.clip(y, model.lower, model.upper)
    y[:2] = y0[:2]  # and two at the initial state itself
    t = rng.uniform(0.0, 1440.0, 6)
    return model, jnp.asarray(t), jnp.asarray(y), {k: jnp.asarray(v) for k, v in p.items()}


def test_coloured_jacobian_equals_jacfwd_at_physiological_states(full):
    model, t, y, p = full
    want = np.asarray(jax.jit(lambda t, y, p: stepper.full_jacobian(model, t, y, p))(t, y, p))
    got = np.asarray(jax.jit(lambda t, y, p: stepper.coloured_jacobian(model, t, y, p))(t, y, p))
    st = stepper.jacobian_structure(model)
    outside = (want != 0) & ~st.pattern[None]
    assert not outside.any(), f"nonzeros outside the pattern at (subject, row, column) {np.argwhere(outside)[:5]}"
    scale = np.maximum(np.abs(want).max(axis=2, keepdims=True), 1e-300)  # per row
    assert np.max(np.abs(got - want) / scale) < 1e-12


def test_coloured_jacobian_equals_jacfwd_in_use(full):
    """States of a brain in use rather than scattered: each receptor region's bound fractions sum to
    less than 1 and tolerance is partial (every bounded state within its lowest tenth, the others
    near their initial value plus a little drug), so the brainstem signal lies inside the range the
    respiration module clips it to. A pattern sampled only far out missed entries that matter here:
    it held the wrong Jacobian and a rat's breathing ran away between sessions (PaCO2 rising while
    ventilation rose eightfold), where the dense step of the same method stayed at rest. The
    sample depends on a caller's extra inputs (a paradigm's infusion size), so both are checked."""
    model, t, _, p = full
    y0 = np.asarray(model.initial_state({k: np.asarray(v) for k, v in p.items()}))
    rng = np.random.default_rng(11)
    lo, hi = model.lower, model.upper
    bounded = np.isfinite(lo) & np.isfinite(hi)
    y = np.where(bounded, lo + (hi - lo) * rng.uniform(0.0, 0.1, y0.shape),
                 y0 + np.maximum(1.0, np.abs(y0)) * rng.uniform(0.0, 0.1, y0.shape))
    y = jnp.asarray(y)
    want = np.asarray(jax.jit(lambda t, y, p: stepper.full_jacobian(model, t, y, p))(t, y, p))
    for q in (p, {**p, "infusion_mg": jnp.full(t.shape, 0.02)}):
        got = np.asarray(jax.jit(lambda t, y, q: stepper.coloured_jacobian(model, t, y, q))(t, y, q))
        outside = (want != 0) & ~stepper.jacobian_structure(model, stepper.extra_inputs(model, q)).pattern[None]
        assert not outside.any(), [(model.state_names[r], model.state_names[c]) for _, r, c in np.argwhere(outside)[:3]]
        scale = np.maximum(np.abs(want).max(axis=2, keepdims=True), 1e-300)  # per row
        assert np.max(np.abs(got - want) / scale) < 1e-12


@pytest.mark.parametrize("n", [0.5, 0.844, 1.0, 1.5, 2.0])
def test_safe_pow_is_zero_at_zero_close_to_x_to_the_n_and_has_a_bounded_slope(n):
    """safe_pow(x, n) = (x + ε)^n − ε^n. Analytic bounds: it is 0 at 0; for n ≤ 1, x^n is
    subadditive, so it lies within ε^n below x^n; for n > 1 the mean value theorem puts it within
    n·ε·(x + ε)^(n−1) above x^n; its slope n·(x + ε)^(n−1) is at most n·ε^(n−1) for n < 1."""
    eps = SAFE_POW_OFFSET
    x = jnp.concatenate([jnp.zeros(1), jnp.logspace(-300, 2, 61)])
    got = np.asarray(safe_pow(x, n))
    exact = np.asarray(x) ** n
    assert got[0] == 0.0
    rounding = 4 * np.spacing(eps**n + exact)  # (x + ε)^n − ε^n cancels where x ≪ ε
    if n <= 1:
        assert np.all((got <= exact + rounding) & (got >= exact - eps**n - rounding)), got - exact
    else:
        above = n * eps * (np.asarray(x) + eps) ** (n - 1)
        assert np.all((got >= exact - rounding) & (got <= exact + above + rounding)), got - exact
    slope = np.asarray(jax.vmap(jax.grad(lambda v: safe_pow(v, n)))(x))
    assert np.all(np.isfinite(slope)) and slope.max() <= max(n * eps ** (n - 1), n * 100.0 ** (n - 1)) * (1 + 1e-9)
    assert slope[0] > 0  # the Jacobian at zero drug already sees the slope a first molecule meets


def test_a_vanishing_fentanyl_tail_does_not_make_the_jacobian_stiff():
    """Fentanyl's Hill coefficient (0.844) is below 1, and a plain x^n has the slope n·x^(n−1):
    8e46 per minute at an effect-site tail of 1e-300 (5e15 at 1e-100), so ROS2 solved with an
    astronomical Jacobian after a laced bag and returned receptors bound twice over (a false
    overdose death). A vanishing amount of drug cannot make the brain stiffer than the drug-free
    brain is: the largest Jacobian entry at any tail stays within 2× that at zero."""
    model = default_model()
    p = core.subject_parameters(model, Scenario(name="t", duration="1h", cohort={"subjects": 1, "seed": 3}), 1, 3)
    y0 = np.asarray(model.initial_state(p))
    jac = jax.jit(lambda t, y, p: stepper.full_jacobian(model, t, y, p))
    pj = {k: jnp.asarray(v) for k, v in p.items()}
    fent = model.state_names.index("effect_fentanyl")
    largest = []
    for tail in (0.0, 1e-300, 1e-100, 1e-20):
        y = y0.copy()
        y[:, fent] = tail
        largest.append(np.abs(np.asarray(jac(jnp.zeros(1), jnp.asarray(y), pj))).max())
    assert np.all(np.isfinite(largest)) and max(largest) <= 2.0 * largest[0], largest


def test_level_solve_equals_a_dense_solve_of_the_same_matrix(full):
    model, t, y, p = full
    st = stepper.jacobian_structure(model)
    gh = jnp.asarray(stepper.GAMMA * np.array([0.0625, 0.5, 2.0, 8.0, 30.0, 60.0]))
    v = jnp.asarray(np.random.default_rng(2).normal(size=y.shape))

    def go(t, y, p, gh, v):
        _, jc = stepper.rhs_and_compressed_jacobian(model, st, t, y, p)
        return stepper.level_solver(st, jc, gh)(v)

    got = np.asarray(jax.jit(go)(t, y, p, gh, v))
    jac = np.asarray(jax.jit(lambda t, y, p: stepper.full_jacobian(model, t, y, p))(t, y, p))
    n = model.n_states
    for s in range(y.shape[0]):
        a = np.eye(n) - float(gh[s]) * jac[s] * st.used
        want = np.linalg.solve(a, np.asarray(v[s]))
        assert np.max(np.abs(got[s] - want)) <= 1e-10 * np.max(np.abs(want))


def test_fast_step_agrees_with_the_dense_step_to_rounding(full):
    model, t, y, p = full
    h = jnp.asarray([0.0625, 0.25, 1.0, 4.0, 15.0, 60.0])
    dense = jax.jit(lambda t, y, p, h: stepper.ros2_step_dense(model, t, y, p, h))(t, y, p, h)
    fast = jax.jit(lambda t, y, p, h: stepper.ros2_step(model, t, y, p, h))(t, y, p, h)
    for a, b in zip(dense, fast):
        a, b = np.asarray(a), np.asarray(b)
        assert np.max(np.abs(a - b) / np.maximum(np.abs(a), 1e-6)) < 1e-9
