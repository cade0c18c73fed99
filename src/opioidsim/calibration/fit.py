"""Fit chosen model parameters to observed readouts, within bounds, by gradients through the engine.

The fit works on unconstrained coordinates u: x = lo + (hi − lo)·σ(u), on a log scale
(log x = log lo + log(hi/lo)·σ(u)) when lo > 0, so no iterate can leave [lo, hi]. Each fit unit
(a subject, a group, or all data) has its own parameters; all units run as one batch.

Loss: ½ Σ w_i r_i², r_i = prediction − observation (or log prediction − log observation with
`log_scale`), w_i = 1/sd_i² when the data give sds, else 1.

Methods:
- ``"lm"`` (default): Levenberg–Marquardt in u, with the Jacobian of the residuals from forward-mode
  AD. With a few parameters it converges in ~5-20 evaluations (benchmarks/bench_calibration.py).
- ``"adam"``: optax.adam on the same loss, its gradient Jᵀ W r from the same Jacobian. Slower to
  converge; there for comparison and for losses LM handles badly.

Standard errors come from the Gauss–Newton approximation of the Hessian at the optimum, in the
parameters' own units: cov = s²·(JᵀWJ)⁻¹ with s² = (Σ w r²)/(n − k), or (JᵀWJ)⁻¹ when the data give
sds (taken as known). They are approximate (local, asymptotic) and meaningless for a parameter
that ends at a bound (`at_bound`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from ..engine.core import MAX_STEP_MIN, subject_parameters
from ..model.model import Model, default_model
from ..readouts import READOUTS
from ..units import to_internal
from .data import CalibrationDataError, Observations, read_observations
from ..model.pk import DOSE_TARGETS
from .forward import ForwardProblem, parameters_read, submodel

__all__ = ["CalibrationError", "CalibrationResult", "calibrate", "default_bounds"]

METHODS = ("lm", "adam")
#: log-scale residuals floor the prediction here (relative to the largest observation)
LOG_FLOOR = 1e-9
#: a fitted value this close to a bound (a fraction of the range, on the log scale where lo > 0) is
#: reported as at the bound: the optimum lies there or beyond, and its SE means nothing
AT_BOUND = 1e-4
#: JᵀJ (scaled to unit diagonal) with a larger condition number than this: the data fix only a
#: combination of the parameters, and no standard error is given
MAX_CONDITION = 1e10
#: estimates correlated beyond this are named under the table
HIGH_CORRELATION = 0.99


class CalibrationError(ValueError):
    """A calibration that cannot be run as asked (names the parameter or option and what is allowed)."""


def _factor(unit: str) -> float:
    """Internal units per one `unit` (parameters are reported in their declared unit)."""
    return to_internal(1.0, unit)


def default_bounds(model: Model, name: str, start: float) -> tuple[float, float]:
    """[0, 1] for a fraction, [start/10, 10·start] for a positive parameter (declared units)."""
    par = model.parameters[name]
    if par.bounded_fraction:
        return 0.0, 1.0
    if start > 0:
        return start / 10.0, start * 10.0
    raise CalibrationError(f"parameter {name!r} starts at {start:g} {par.unit}: give its bounds "
                           f"(--bounds {name}=LO:HI), there is no default for a parameter that is not positive")


@dataclass(frozen=True)
class _Transform:
    lo: np.ndarray  # (k,) internal units
    hi: np.ndarray
    log: np.ndarray  # (k,) bool

    def _span(self):
        a = np.where(self.log, np.log(np.where(self.log, self.lo, 1.0)), self.lo)
        b = np.where(self.log, np.log(np.where(self.log, self.hi, 1.0)), self.hi)
        return a, b

    def to_x(self, u: np.ndarray) -> np.ndarray:
        a, b = self._span()
        z = a + (b - a) / (1.0 + np.exp(-u))
        x = np.where(self.log, np.exp(z), z)
        return np.clip(x, self.lo, self.hi)  # rounding at the ends of exp(log ...) stays inside

    def dx_du(self, u: np.ndarray) -> np.ndarray:
        a, b = self._span()
        s = 1.0 / (1.0 + np.exp(-u))
        dz = (b - a) * s * (1.0 - s)
        return np.where(self.log, self.to_x(u) * dz, dz)

    def to_u(self, x: np.ndarray) -> np.ndarray:
        a, b = self._span()
        z = np.where(self.log, np.log(np.maximum(x, 1e-300)), x)
        q = np.clip((z - a) / (b - a), 1e-9, 1.0 - 1e-9)  # a start on a bound begins just inside it
        return np.log(q) - np.log1p(-q)


@dataclass
class CalibrationResult:
    """What a calibration found. Values are in each parameter's declared unit (`units`)."""

    parameters: tuple[str, ...]
    units: tuple[str, ...]
    fit_units: tuple[str, ...]  # subjects, groups or ("all",)
    kind: str
    start: np.ndarray  # (U, k)
    fitted: np.ndarray  # (U, k)
    se: np.ndarray  # (U, k); NaN where it cannot be estimated (n ≤ k, not identifiable)
    correlation: np.ndarray  # (U, k, k) of the estimates (Gauss-Newton); NaN where not identifiable
    bounds: np.ndarray  # (k, 2)
    at_bound: np.ndarray  # (U, k) bool: within AT_BOUND of a bound (on the log scale for lo > 0)
    loss_history: list[float]  # total loss after each iteration (index 0: at the start)
    iterations: int
    converged: bool
    method: str
    log_scale: bool
    observations: Observations
    predicted: np.ndarray  # (M,) at the fitted values
    residuals: np.ndarray  # (M,) observed − predicted, in the readout's unit
    curve_times_min: np.ndarray = field(repr=False, default=None)
    curves: np.ndarray = field(repr=False, default=None)  # (T, U, R) fitted readouts
    curve_readouts: tuple[str, ...] = ()

    def table(self) -> str:
        """A plain-text table: one row per fit unit and parameter."""
        head = ["fit", "parameter", "start", "fitted", "SE", "unit", "bounds"]
        rows = []
        for u, label in enumerate(self.fit_units):
            for j, name in enumerate(self.parameters):
                se = "—" if not np.isfinite(self.se[u, j]) else f"{self.se[u, j]:.4g}"
                flag = " (at bound)" if self.at_bound[u, j] else ""
                rows.append([label, name, f"{self.start[u, j]:.4g}", f"{self.fitted[u, j]:.4g}{flag}", se,
                             self.units[j], f"[{self.bounds[j, 0]:.4g}, {self.bounds[j, 1]:.4g}]"])
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)), "  ".join("-" * w for w in widths)]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
        for u, label in enumerate(self.fit_units):
            if np.isnan(self.correlation[u]).all():
                lines.append(f"note ({label}): the data do not fix every parameter separately (J^T J is singular); "
                             "no standard errors")
                continue
            for a in range(len(self.parameters)):
                for b in range(a + 1, len(self.parameters)):
                    r = self.correlation[u, a, b]
                    if abs(r) > HIGH_CORRELATION:
                        lines.append(f"note ({label}): {self.parameters[a]} and {self.parameters[b]} are correlated "
                                     f"(r = {r:+.4f}): the data fix mainly a combination of them")
        status = "converged" if self.converged else "stopped at the iteration limit"
        lines.append(f"loss {self.loss_history[0]:.6g} -> {self.loss_history[-1]:.6g} after {self.iterations} "
                     f"iterations ({self.method}, {status}); {len(self.residuals)} observations")
        return "\n".join(lines)

    def parameters_csv(self) -> str:
        out = ["fit,parameter,start,fitted,se,unit,lower_bound,upper_bound,at_bound"]
        for u, label in enumerate(self.fit_units):
            for j, name in enumerate(self.parameters):
                out.append(f"{_csv(label)},{name},{_num(self.start[u, j])},{_num(self.fitted[u, j])},{_num(self.se[u, j])},"
                           f"{_csv(self.units[j])},{_num(self.bounds[j, 0])},{_num(self.bounds[j, 1])},"
                           f"{str(bool(self.at_bound[u, j])).lower()}")
        return "\n".join(out) + "\n"

    def residuals_csv(self) -> str:
        obs = self.observations
        out = ["fit,line,time_min,readout,observed,predicted,residual"]
        for i in range(len(obs)):
            out.append(f"{_csv(self.fit_units[obs.unit_index[i]])},{obs.line[i]},{_num(obs.time_min[i])},"
                       f"{obs.readout[i]},{_num(obs.value[i])},{_num(self.predicted[i])},{_num(self.residuals[i])}")
        return "\n".join(out) + "\n"


def _num(x) -> str:
    """A float written so that reading it back gives the same number."""
    return repr(float(x))


def _csv(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text


def _residuals(pred, jac, obs: Observations, log_scale: bool):
    """Weighted residuals √w·r and their Jacobian (rows of jac scaled alike)."""
    w = np.ones_like(obs.value) if obs.sd is None else 1.0 / obs.sd
    if log_scale:
        floor = LOG_FLOOR * float(np.max(obs.value))
        safe = np.maximum(pred, floor)
        r = np.log(safe) - np.log(obs.value)
        d = np.where(pred > floor, 1.0 / safe, 0.0)
        if obs.sd is not None:  # an sd on the log scale is the relative sd
            w = obs.value / obs.sd
        return w * r, None if jac is None else (w * d)[:, None] * jac
    return w * (pred - obs.value), None if jac is None else w[:, None] * jac


def _unit_loss(r, unit, n_units) -> np.ndarray:
    return 0.5 * np.bincount(unit, weights=r * r, minlength=n_units)


def _insensitive(name: str, readouts, scenario, sub: Model) -> str:
    return (f"parameter {name!r} does not change the observed readouts ({', '.join(readouts)}) in scenario "
            f"{scenario.name!r}; choose parameters of the modules that compute them "
            f"({', '.join(m.name for m in sub.modules)})")


def calibrate(scenario, data: Observations | str, parameters: Sequence[str], *,
              bounds: Mapping[str, tuple[float, float]] | None = None,
              start: Mapping[str, float] | None = None, iterations: int = 50, method: str = "lm",
              log_scale: bool = False, tolerance: float = 1e-8, learning_rate: float = 0.05,
              step_min: float = MAX_STEP_MIN, model: Model | None = None,
              curves: bool = True) -> CalibrationResult:
    """Fit `parameters` of the model to `data` (an Observations or a CSV path) under `scenario`'s doses.

    `bounds` and `start` are in each parameter's declared unit (``model.parameters[name].unit``);
    the start defaults to the model's typical value (the scenario's species) and the bounds to
    `default_bounds`. Every other parameter keeps its typical value (no between-subject
    variability). Stops when the loss changes by less than `tolerance` (relative) or after
    `iterations`. Deterministic: the same inputs give the same numbers."""
    from ..engine.core import _as_scenario

    scenario = _as_scenario(scenario)
    model = model or default_model()
    obs = read_observations(data) if not isinstance(data, Observations) else data
    parameters = tuple(parameters)
    if not parameters:
        raise CalibrationError("no parameters to fit: name at least one (e.g. morphine_clearance)")
    for name in parameters:
        if name not in model.parameters:
            near = [k for k in model.parameters if name and (name in k or k in name)][:4]
            hint = f" (did you mean {', '.join(near)}?)" if near else ""
            raise CalibrationError(f"parameter {name!r} is not a model parameter{hint}")
    if len(set(parameters)) != len(parameters):
        raise CalibrationError(f"a parameter is named twice in {list(parameters)}")
    for name in (bounds or {}):
        if name not in parameters:
            raise CalibrationError(f"bounds given for {name!r}, which is not fitted (fitted: {', '.join(parameters)})")
    for name in (start or {}):
        if name not in parameters:
            raise CalibrationError(f"a start given for {name!r}, which is not fitted (fitted: {', '.join(parameters)})")
    if method not in METHODS:
        raise CalibrationError(f"method {method!r} is not known; allowed: {', '.join(METHODS)}")
    if not (isinstance(iterations, int) and iterations >= 0):
        raise CalibrationError(f"iterations must be a whole number ≥ 0, got {iterations!r}")
    if not step_min > 0:
        raise CalibrationError(f"step_min must be > 0 minutes, got {step_min!r}")
    for key in ("paradigm", "life", "trial"):
        if getattr(scenario, key, None) is not None:
            raise CalibrationError(f"scenario {scenario.name!r} has a [{key}] table; calibration runs dose "
                                   "schedules only (a scenario with [[dose]] entries)")
    late = obs.time_min > scenario.duration_min + 1e-9
    if late.any():
        i = int(np.argmax(late))
        raise CalibrationDataError(f"{obs.source}: line {obs.line[i]}: time {obs.time_min[i]:g} min is after the end "
                                   f"of scenario {scenario.name!r} ({scenario.duration_min:g} min)")
    readouts = obs.readouts
    absent = [r for r in readouts if r not in model.readouts]
    if absent:
        raise CalibrationDataError(f"{obs.source}: readout {absent[0]!r} is not computed by this model")
    if log_scale and (obs.value <= 0).any():
        i = int(np.argmax(obs.value <= 0))
        raise CalibrationDataError(f"{obs.source}: line {obs.line[i]}: value {obs.value[i]:g} is not > 0; a fit on "
                                   "the log scale needs positive values")

    n_units = len(obs.fit_units)
    typical = subject_parameters(model, scenario, n_units, scenario.cohort.seed, variability=False)
    units = tuple(model.parameters[n].unit for n in parameters)
    factors = np.array([_factor(u) for u in units])
    x0 = np.array([(start or {}).get(n, typical[n][0] / f) for n, f in zip(parameters, factors)], dtype=float)
    b = np.array([(bounds or {}).get(n) or default_bounds(model, n, x) for n, x in zip(parameters, x0)], dtype=float)
    for j, name in enumerate(parameters):
        lo, hi = b[j]
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise CalibrationError(f"bounds of {name!r}: [{lo:g}, {hi:g}] {units[j]}; need finite LO < HI")
        if not lo <= x0[j] <= hi:
            raise CalibrationError(f"parameter {name!r} starts at {x0[j]:g} {units[j]}, outside its bounds "
                                   f"[{lo:g}, {hi:g}]; give a start inside or wider bounds")
    transform = _Transform(b[:, 0] * factors, b[:, 1] * factors, b[:, 0] > 0)

    sub = submodel(model, readouts)
    used = parameters_read(sub, typical) | {DOSE_TARGETS[(d.drug, d.route)][1] for d in scenario.doses}
    for name in parameters:
        if name not in used:
            raise CalibrationError(_insensitive(name, readouts, scenario, sub))
    problem = ForwardProblem(
        model=model, parameters=parameters, readouts=readouts, base=typical, doses=list(scenario.doses),
        duration_min=scenario.duration_min, obs_unit=obs.unit_index, obs_time_min=obs.time_min,
        obs_readout=np.array([readouts.index(r) for r in obs.readout]), step_min=step_min)

    u = np.tile(transform.to_u(x0 * factors), (n_units, 1))
    unit = obs.unit_index

    def evaluate(u):
        x = transform.to_x(u)
        pred, jac_x = problem.predict_with_jacobian(x)
        r, jr = _residuals(pred, jac_x, obs, log_scale)
        ju = jr * transform.dx_du(u)[unit]
        return r, ju, pred, jac_x

    r, ju, pred, jac_x = evaluate(u)
    loss = _unit_loss(r, unit, n_units)
    insensitive = ~np.array([np.any(jac_x[:, j] != 0) for j in range(len(parameters))])
    if insensitive.any():
        raise CalibrationError(_insensitive(parameters[int(np.argmax(insensitive))], readouts, scenario, sub))
    history = [float(loss.sum())]
    converged = False
    it = 0
    if method == "lm":
        lam = np.full(n_units, 1e-3)
        k = len(parameters)
        for it in range(1, iterations + 1):
            step = np.zeros_like(u)
            for g in range(n_units):
                rows = unit == g
                J, rg = ju[rows], r[rows]
                A = J.T @ J
                A_damped = A + lam[g] * np.diag(np.diag(A) + 1e-12 * max(np.trace(A), 1e-300) / k)
                step[g] = -np.linalg.solve(A_damped, J.T @ rg)
            r_new, ju_new, pred_new, jac_new = evaluate(u + step)
            loss_new = _unit_loss(r_new, unit, n_units)
            better = loss_new < loss
            keep = better[unit]
            u = np.where(better[:, None], u + step, u)
            r, pred = np.where(keep, r_new, r), np.where(keep, pred_new, pred)
            ju, jac_x = np.where(keep[:, None], ju_new, ju), np.where(keep[:, None], jac_new, jac_x)
            change = np.where(better, (loss - loss_new) / np.maximum(loss, 1e-300), 0.0)
            loss = np.where(better, loss_new, loss)
            lam = np.where(better, lam / 3.0, lam * 4.0)
            history.append(float(loss.sum()))
            # done when every unit's accepted step changed its loss by < tolerance, or no step can help
            tiny = np.max(np.abs(step), axis=1) < 1e-9 * (1.0 + np.max(np.abs(u), axis=1))
            if np.all((better & (change < tolerance)) | (~better & (tiny | (lam > 1e12))) | (loss == 0)):
                converged = True
                break
    else:
        import optax

        opt = optax.adam(learning_rate)
        state = opt.init(u)
        for it in range(1, iterations + 1):
            grad = np.zeros_like(u)
            np.add.at(grad, unit, ju * r[:, None])  # d(½ Σ r²)/du per unit
            updates, state = opt.update(grad, state, u)
            u = np.asarray(optax.apply_updates(u, updates))
            r, ju, pred, jac_x = evaluate(u)
            new = _unit_loss(r, unit, n_units)
            change = np.abs(loss - new) / np.maximum(loss, 1e-300)
            loss = new
            history.append(float(loss.sum()))
            if np.all(change < tolerance):
                converged = True
                break

    x = transform.to_x(u)
    # standard errors in the parameters' own units, from the Jacobian with respect to x
    _, jw = _residuals(pred, jac_x, obs, log_scale)
    k = len(parameters)
    se = np.full((n_units, k), np.nan)
    corr = np.full((n_units, k, k), np.nan)
    for g in range(n_units):
        rows = unit == g
        n_obs = int(rows.sum())
        J = jw[rows] / factors  # per declared unit
        A = J.T @ J
        d = np.sqrt(np.diag(A))
        if not np.all(d > 0) or np.linalg.cond(A / np.outer(d, d)) > MAX_CONDITION:
            continue  # the data do not fix every parameter: no SE (the table says so)
        cov = np.linalg.inv(A)
        sd = np.sqrt(np.diag(cov))
        corr[g] = cov / np.outer(sd, sd)
        if obs.sd is None:
            if n_obs <= k:
                continue
            cov = cov * (2.0 * loss[g]) / (n_obs - k)
        se[g] = np.sqrt(np.maximum(np.diag(cov), 0.0))
    s = 1.0 / (1.0 + np.exp(-u))  # position within the bounds on the transformed scale
    at_bound = (s < AT_BOUND) | (s > 1.0 - AT_BOUND)

    result = CalibrationResult(
        parameters=parameters, units=units, fit_units=obs.fit_units, kind=obs.kind,
        start=np.tile(x0, (n_units, 1)), fitted=x / factors, se=se, correlation=corr, bounds=b, at_bound=at_bound,
        loss_history=history, iterations=it, converged=converged, method=method, log_scale=log_scale,
        observations=obs, predicted=pred, residuals=obs.value - pred, curve_readouts=readouts)
    if curves:
        result.curve_times_min = problem.record_times_min
        result.curves = problem.curves(x)
    return result


def readout_units(names: Sequence[str]) -> dict[str, str]:
    return {n: READOUTS[n].units for n in names}
