"""The reference path: the very same vector field, one subject at a time, with scipy's Radau.

It is the accuracy yardstick for the batched engine (tests and benchmarks), not the workhorse.
Doses are applied at the same snapped times as in the engine; between doses Radau integrates
with tight tolerances and the exact Jacobian from JAX.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy.integrate import solve_ivp

from ..model.model import Model
from .dosing import DoseEvents


def simulate_reference(model: Model, y0: np.ndarray, p: dict[str, np.ndarray], events: DoseEvents, subject: int,
                       h: float, record_times_min: np.ndarray, readout_names, rtol: float = 1e-8,
                       atol: float = 1e-10) -> np.ndarray:
    """Records (n_records, n_readouts) of one subject, integrated with Radau."""
    p1 = {k: jnp.asarray(v[subject:subject + 1]) for k, v in p.items()}

    @jax.jit
    def f(t, y):
        return model.rhs(t, y[None, :], p1)[0]

    jac = jax.jit(jax.jacfwd(f, argnums=1))

    @jax.jit
    def readouts(ys):
        out = model.outputs(ys, p1)
        return jnp.stack([jnp.broadcast_to(out[r], ys.shape[:1]) for r in readout_names], axis=-1)

    y = np.array(y0[subject], dtype=float)
    steps = events.step[subject]
    valid = steps < np.iinfo(np.int64).max // 8
    ev_t, ev_target, ev_amount = steps[valid] * h, events.target[subject][valid], events.amount[subject][valid]
    t_end = float(record_times_min[-1])
    states = np.empty((len(record_times_min), y.size))
    states[0] = y  # the record at t = 0 is taken before any dose, as in the engine
    t0 = 0.0
    for tb in sorted({float(t) for t in ev_t if t <= t_end} | {t_end}):
        if tb > t0:
            idx = np.nonzero((record_times_min > t0 + 1e-9) & (record_times_min <= tb + 1e-9))[0]
            # tb must be last: it gives the state to continue from (unless it is a record time already)
            ends_on_record = len(idx) > 0 and abs(record_times_min[idx[-1]] - tb) < 1e-9
            t_eval = record_times_min[idx] if ends_on_record else np.append(record_times_min[idx], tb)
            sol = solve_ivp(lambda t, yy: np.asarray(f(t, yy)), (t0, tb), y, method="Radau", rtol=rtol,
                            atol=atol, t_eval=t_eval, jac=lambda t, yy: np.asarray(jac(t, yy)))
            if not sol.success:
                raise RuntimeError(f"reference integration failed at t={sol.t[-1] if sol.t.size else t0}: "
                                   f"{sol.message}")
            states[idx] = sol.y[:, :len(idx)].T
            y = sol.y[:, -1].copy()
            t0 = tb
        # doses given at tb enter after the record at tb (same convention as the engine)
        for t_e, tgt, amt in zip(ev_t, ev_target, ev_amount):
            if abs(t_e - tb) < 1e-9:
                y[tgt] += amt
    return np.asarray(readouts(jnp.asarray(states)))
