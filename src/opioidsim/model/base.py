"""What a mechanism module is.

A module declares its states (name, unit, initial value, bounds), its parameters and the inputs
it reads from other modules' outputs, and provides two pure functions:

- ``outputs(y, u, p) -> dict``: algebraic quantities (readouts and signals for other modules);
- ``rates(t, y, u, p) -> dict``: d(state)/dt for each of its states.

``y`` holds this module's states only, ``u`` the named inputs, ``p`` all parameters (arrays of
shape (subjects,) or scalars). No module reaches into another's internals: the model wires
inputs to outputs by name. Functions must be written with ``jax.numpy`` so that the engine can
compile, batch and differentiate them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import jax.numpy as jnp

from ..params import Parameter

Arr = Any  # a jax or numpy array of shape (subjects,) or a scalar


@dataclass(frozen=True)
class State:
    name: str
    unit: str
    initial: float
    description: str
    lower: float = 0.0
    upper: float = math.inf
    #: absolute error (in `unit`) below which the adaptive step ignores this state; None: the
    #: engine's default. Set for drug amounts, whose vanishing tails matter only through binding.
    atol: float | None = None
    #: other states whose sizes add to this one's where the adaptive step sets its relative
    #: tolerance (they share its unit): what this state does downstream is swamped by them, so its
    #: vanishing share is not tracked to a relative accuracy nothing can see (heroin's tail beside
    #: the 6-MAM it becomes; one ligand's share of a receptor pool). Empty: its own size.
    error_scale_with: tuple[str, ...] = ()


class Module:
    name: str = "module"
    #: "fast" states move in minutes; "slow" states (hours to years) can be stepped coarser.
    timescale: str = "fast"
    states: tuple[State, ...] = ()
    parameters: tuple[Parameter, ...] = ()
    #: outputs of *earlier* modules that this module's outputs (and rates) read
    inputs: tuple[str, ...] = ()
    #: outputs of *any* module that only the rates read (lets slow adaptation read fast signals
    #: while fast modules read the adapted state, without an algebraic loop)
    rate_inputs: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()
    #: its states hold drug (amounts, concentrations, bound fractions), each 0 until a dose
    #: reaches it: the engine leaves out those no dose of a run can reach (engine/inert.py)
    carries_drug: bool = False

    def initial_state(self, p: Mapping[str, Arr]) -> dict[str, Arr]:
        """Initial values; a module may override to start at its own steady state."""
        return {s.name: s.initial for s in self.states}

    def outputs(self, y: Mapping[str, Arr], u: Mapping[str, Arr], p: Mapping[str, Arr]) -> dict[str, Arr]:
        return {}

    def rates(self, t: Arr, y: Mapping[str, Arr], u: Mapping[str, Arr], p: Mapping[str, Arr]) -> dict[str, Arr]:
        raise NotImplementedError


# --- small pure helpers shared by modules -------------------------------------------------

def hill(x: Arr, x50: Arr, n: Arr) -> Arr:
    """x^n / (x50^n + x^n) for x >= 0, safe (finite gradient) at x = 0."""
    xs = jnp.where(x > 0, x, 1.0)
    r = jnp.where(x > 0, (xs / x50) ** n, 0.0)
    return r / (1.0 + r)


SAFE_POW_OFFSET = 1e-9  # dimensionless; far below any ratio that matters (x is C/Kd or a 0–1 signal)


def safe_pow(x: Arr, n: Arr) -> Arr:
    """x^n for x >= 0, computed as (x + ε)^n − ε^n: exactly 0 at 0 and with a bounded slope there.

    For n < 1 (fentanyl's Hill coefficient is 0.84) the plain x^n has a slope that grows without
    bound as x → 0, so a drug's vanishing tail makes the Jacobian astronomically stiff: the
    Rosenbrock step then returns garbage (error estimates of 1e16, receptors 'bound' twice over) and
    a false overdose. With the offset the slope at 0 is n·ε^(n−1) (≈ 21 for n = 0.84), and the value
    moves by at most ε^n (3e-8) for n ≤ 1, or about n·ε·x^(n−1) for n > 1: nothing a readout shows."""
    eps = SAFE_POW_OFFSET
    xs = jnp.where(x >= 0, x, 0.0) + eps  # >=: the Jacobian at zero drug already sees the slope
    return xs**n - eps**n


def softplus(x: Arr, scale: float) -> Arr:
    """Smooth max(x, 0) with a transition width `scale` (keeps the vector field differentiable)."""
    return scale * jnp.logaddexp(0.0, x / scale)


def excess(x: Arr, scale: float) -> Arr:
    """Smooth max(x, 0) that is exactly 0 for x <= 0: x²/(x + scale) above 0, ≈ x − scale for
    x ≫ scale, with a continuous first derivative (0 at 0). A drive built on it vanishes in the
    drug-naive steady state (nothing drifts at baseline) and never turns negative below it."""
    xs = jnp.where(x > 0, x, 0.0)  # keeps the untaken branch finite for autodiff
    return xs * xs / (xs + scale)


def sigmoid(x: Arr) -> Arr:
    return 0.5 * (1.0 + jnp.tanh(0.5 * x))


def relax(level: Arr, target: Arr, up_time: Arr, down_time: Arr, width: Arr) -> Arr:
    """First-order approach of `level` to `target`, with one time constant on the way up and another
    on the way down (adaptations that build and fade at different speeds), switched smoothly over
    a band `width` around the target."""
    rising = sigmoid((target - level) / width)
    return (target - level) / (rising * up_time + (1.0 - rising) * down_time)
