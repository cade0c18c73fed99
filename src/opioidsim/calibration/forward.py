"""The differentiable forward model of a calibration: chosen parameters → readouts at the data times.

Three choices, each measured in benchmarks/bench_calibration.py:

- **Only the modules the readouts need.** The fitted readouts are computed by a sub-model: the
  modules that provide them and, transitively, every module whose outputs those read (inputs and
  rate inputs). Their states evolve exactly as in the full model: the ROS2 step solves with the
  block lower-triangular Jacobian, and a kept module's block only couples to modules it reads,
  all kept. For plasma readouts this is the PK module, 34 of 94 states; one Jacobian cost ~280×
  less than on the full model, whose forward-mode compile took 8 minutes on a loaded machine.
- **Fixed steps.** With a fixed step h (default 15 s, the engine's fixed-step baseline) the
  readouts are smooth functions of the parameters and their forward-mode derivatives are the
  exact derivatives of what is computed (central differences agree to ~1e-9). The engine's
  adaptive controller takes its accept/reject and step-size decisions by comparisons, piecewise
  constant in the parameters; in the cases measured its finite differences settled to within
  1-3e-3 of the fixed-step derivative (its tolerance), with one visible flip (0.2 %) between
  differences of 1 % and 0.1 %. Fixed steps keep the fit free of such flips.
- **Forward-mode AD.** With a handful of parameters, `jax.jvp` (one tangent per parameter,
  vmapped) gives the Jacobian of all predictions in one pass, without storing every step as
  reverse mode would (and reverse mode cannot pass the engine's while loops).

Readouts are recorded after every step and interpolated linearly to the data times (a time that is
a multiple of h is hit exactly). Doses are applied as in the engine (at the start of the step at
their time snapped to the grid), with amounts scaled by the current bioavailability, which may be
a fitted parameter. The initial state is computed by the model's (NumPy) `initial_state`; its
derivative with respect to the fitted parameters is a central finite difference (zero for PK
parameters, whose initial state is empty).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from ..engine import core  # noqa: F401  (enables 64-bit floats and the compile cache)
from ..engine.core import MAX_STEP_MIN
from ..engine.stepper import ros2_step
from ..model.model import Model
from ..model.pk import DOSE_TARGETS

__all__ = ["submodel", "ForwardProblem"]


def submodel(model: Model, readouts: tuple[str, ...]) -> Model:
    """The smallest model, in the same module order, that computes `readouts` exactly as `model` does."""
    provider = {name: b.module for b in model.blocks for name in b.module.provides}
    missing = [r for r in readouts if r not in provider]
    if missing:
        raise ValueError(f"readouts {missing} are not computed by this model")
    return _submodel(model, _needed(model, tuple(readouts)))


def _needed(model: Model, readouts: tuple[str, ...]) -> tuple[str, ...]:
    provider = {name: b.module for b in model.blocks for name in b.module.provides}
    need: set[str] = set()
    stack = [provider[r] for r in readouts]
    while stack:
        m = stack.pop()
        if m.name in need:
            continue
        need.add(m.name)
        stack.extend(provider[i] for i in (*m.inputs, *m.rate_inputs))
    return tuple(m.name for m in model.modules if m.name in need)


class _Reads(dict):
    """A parameter dict that notes which names are read."""

    def __init__(self, *args, seen: set):
        super().__init__(*args)
        self.seen = seen

    def __getitem__(self, key):
        self.seen.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.seen.add(key)
        return super().get(key, default)


def parameters_read(model: Model, p: dict[str, np.ndarray]) -> set[str]:
    """Names of the parameters the model's rates, outputs and initial state read (traced
    abstractly: nothing is compiled). A parameter outside this set cannot change any readout."""
    seen: set[str] = set()
    y0 = model.initial_state(_Reads(p, seen=seen))

    def trace(y, values):
        q = _Reads(values, seen=seen)
        return model.rhs(0.0, y, q), model.outputs(y, q)

    jax.eval_shape(trace, jnp.asarray(y0), {k: jnp.asarray(v) for k, v in p.items()})
    return seen


@lru_cache(maxsize=16)
def _submodel(model: Model, names: tuple[str, ...]) -> Model:
    if len(names) == len(model.modules):
        return model
    return Model([m for m in model.modules if m.name in names])


@lru_cache(maxsize=16)
def _compiled(model: Model, parameters: tuple[str, ...], readouts: tuple[str, ...]):
    """jit-compiled predictions and their forward-mode Jacobian for one (sub)model."""

    def records(theta, p, y0, dose_step, dose_onehot, dose_mg, dose_const, dose_param, h, n_steps):
        p = dict(p)
        for j, name in enumerate(parameters):
            p[name] = theta[:, j]
        # a dose's amount is scaled by its bioavailability, which may be one of the fitted parameters
        scale = jnp.where(dose_param[None, :] >= 0, theta[:, jnp.maximum(dose_param, 0)], dose_const)
        amount = dose_mg[None, :] * scale  # (U, E)

        def read(y):
            out = model.outputs(y, p)
            return jnp.stack([jnp.broadcast_to(out[r], y.shape[:1]) for r in readouts], axis=-1)

        def body(y, n):
            y = y + (amount * (dose_step == n)[None, :]) @ dose_onehot
            y = ros2_step(model, n * h, y, p, h)[0]
            return y, read(y)

        _, recs = jax.lax.scan(body, y0, jnp.arange(n_steps))
        return jnp.concatenate([read(y0)[None], recs], axis=0)  # (N+1, U, R)

    def predictions(theta, y0, args, obs):
        recs = records(theta, *args[:1], y0, *args[1:])
        unit, step, w, r = obs
        return (1.0 - w) * recs[step, unit, r] + w * recs[step + 1, unit, r]

    def jacobian(theta, y0, dy0, args, obs):
        k = theta.shape[1]

        def along(j):
            e = jnp.zeros_like(theta).at[:, j].set(1.0)
            return jax.jvp(lambda th, y: predictions(th, y, args, obs), (theta, y0), (e, dy0[j]))

        pred, tangents = jax.vmap(along, out_axes=(None, 0))(jnp.arange(k))
        return pred, tangents.T  # (M,), (M, k)

    static = ("n_steps",)
    rec_jit = jax.jit(records, static_argnames=static)
    pred_jit = jax.jit(lambda theta, y0, args, obs, n_steps: predictions(theta, y0, (*args, n_steps), obs),
                       static_argnames=static)
    jac_jit = jax.jit(lambda theta, y0, dy0, args, obs, n_steps: jacobian(theta, y0, dy0, (*args, n_steps), obs),
                      static_argnames=static)
    return rec_jit, pred_jit, jac_jit


@dataclass
class ForwardProblem:
    """Predictions of `readouts` at observation points for U independent parameter sets.

    `base` holds every parameter of the model per fit unit (shape (U,), internal units); the
    fitted ones (`parameters`) are replaced by `theta` (shape (U, k), internal units) on each
    call. `doses` is the scenario's dose list, `duration_min` its length."""

    model: Model
    parameters: tuple[str, ...]
    readouts: tuple[str, ...]
    base: dict[str, np.ndarray]
    doses: list
    duration_min: float
    obs_unit: np.ndarray
    obs_time_min: np.ndarray
    obs_readout: np.ndarray  # index into readouts
    step_min: float = MAX_STEP_MIN
    prune: bool = True  # integrate only the modules the readouts need (False: the whole model, to compare)

    def __post_init__(self) -> None:
        if self.prune:
            self.model = submodel(self.model, self.readouts)
        h = self.step_min
        s = self.obs_time_min / h
        s = np.where(np.abs(s - np.round(s)) < 1e-9, np.round(s), s)
        self.n_steps = max(1, int(math.ceil(float(s.max()) - 1e-9)))
        step = np.minimum(np.floor(s).astype(np.int64), self.n_steps - 1)
        self._obs = (jnp.asarray(self.obs_unit, jnp.int64), jnp.asarray(step), jnp.asarray(s - step),
                     jnp.asarray(self.obs_readout, jnp.int64))
        n_units = len(next(iter(self.base.values())))
        rows = []
        for dose in self.doses:
            target, fraction, _ka = DOSE_TARGETS[(dose.drug, dose.route)]
            for t in dose.times_min(self.duration_min):
                k = int(round(t / h))
                if k < self.n_steps:  # a dose after the last observation changes nothing observed
                    rows.append((k, self.model.index[target], fraction, dose.amount_mg))
        rows = rows or [(self.n_steps + 1, 0, None, 0.0)]  # no dose: one that never comes
        onehot = np.zeros((len(rows), self.model.n_states))
        const = np.ones((n_units, len(rows)))
        param = np.full(len(rows), -1, dtype=np.int64)
        for e, (k, idx, fraction, _mg) in enumerate(rows):
            onehot[e, idx] = 1.0
            if fraction in self.parameters:
                param[e] = self.parameters.index(fraction)
            elif fraction:
                const[:, e] = self.base[fraction]
        self._args = ({k: jnp.asarray(v) for k, v in self.base.items()},
                      jnp.asarray([r[0] for r in rows], jnp.int64), jnp.asarray(onehot),
                      jnp.asarray([r[3] for r in rows], float), jnp.asarray(const), jnp.asarray(param),
                      jnp.asarray(h, float))
        self._rec, self._pred, self._jac = _compiled(self.model, self.parameters, self.readouts)

    @property
    def record_times_min(self) -> np.ndarray:
        return np.arange(self.n_steps + 1) * self.step_min

    def _y0(self, theta: np.ndarray) -> np.ndarray:
        p = dict(self.base)
        for j, name in enumerate(self.parameters):
            p[name] = theta[:, j]
        return self.model.initial_state(p)

    def _dy0(self, theta: np.ndarray) -> np.ndarray:
        """d y0 / d theta_j by central differences, shape (k, U, n_states)."""
        out = []
        for j in range(theta.shape[1]):
            d = 1e-6 * np.maximum(np.abs(theta[:, j]), 1e-12)
            up, down = theta.copy(), theta.copy()
            up[:, j] += d
            down[:, j] -= d
            out.append((self._y0(up) - self._y0(down)) / (2 * d[:, None]))
        return np.stack(out)

    def predict(self, theta: np.ndarray) -> np.ndarray:
        """Predicted readouts at the observation points, shape (M,)."""
        theta = np.asarray(theta, dtype=float)
        return np.asarray(self._pred(jnp.asarray(theta), jnp.asarray(self._y0(theta)), self._args, self._obs,
                                     n_steps=self.n_steps))

    def predict_with_jacobian(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predictions (M,) and their derivatives with respect to each observation's own fit
        unit's parameters (M, k), by forward-mode AD."""
        theta = np.asarray(theta, dtype=float)
        pred, jac = self._jac(jnp.asarray(theta), jnp.asarray(self._y0(theta)), jnp.asarray(self._dy0(theta)),
                              self._args, self._obs, n_steps=self.n_steps)
        return np.asarray(pred), np.asarray(jac)

    def curves(self, theta: np.ndarray) -> np.ndarray:
        """Readouts after every step, shape (n_steps + 1, U, R), at `record_times_min`."""
        theta = np.asarray(theta, dtype=float)
        p, *rest = self._args
        return np.asarray(self._rec(jnp.asarray(theta), p, jnp.asarray(self._y0(theta)), *rest,
                                    n_steps=self.n_steps))
