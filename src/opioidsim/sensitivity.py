"""Global sensitivity analysis (issue 7): which parameters move a readout, over their sourced ranges.

    ranges      each chosen parameter's range: the 5th–95th percentile of its population
                distribution when it has one (lognormal cv), else an explicit range, else
                ×/÷ DEFAULT_FACTOR around its value (assumed; the table says so)
    sample      SALib: Sobol' (Saltelli's scheme, `SALib.sample.sobol`) or Morris trajectories
    evaluate    every sample is one typical subject with the sampled values written in; the samples
                run as one batched engine call (chunks of at most `SUBJECT_CHUNK`), or as chunks on
                Dask; each readout is reduced to a scalar by a statistic (peak, trough, …)
    analyse     SALib: Sobol' S1/ST or Morris mu*/sigma → one tidy pandas table

Sampling is uniform in the log of the parameter when its range is positive (physiological
parameters vary by ratios, and a ×/÷ range is symmetric only in the log), uniform otherwise.

The pipeline is generic: `analyse_function` runs it on any vectorised function (the tests check it
on the Ishigami function's analytic indices); `run_sensitivity` runs it on the engine. Printing,
flags and exit codes are in `opioidsim.cli`.

References: Saltelli A et al. 2010 Comput Phys Commun 181:259 (the Sobol' estimators SALib uses);
Morris MD 1991 Technometrics 33:161 and Campolongo F et al. 2007 Environ Model Softw 22:1509
(elementary effects, mu*); Herman J & Usher W 2017 JOSS 2:97 (SALib).
"""
from __future__ import annotations

import difflib
import json
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

__all__ = [
    "DEFAULT_FACTOR", "METHODS", "STATISTICS", "Output", "ParameterRange", "SensitivityError",
    "SensitivityResult", "analyse", "analyse_function", "batch_size", "check_samples", "check_scenario",
    "evaluate_samples", "indices_table", "lognormal_percentile_range", "parameter_ranges", "parse_outputs",
    "plot_indices", "ranges_table", "reduce_records", "run_sensitivity", "sample", "write_sensitivity",
]

METHODS = ("sobol", "morris")
#: statistic → what it reduces a readout's time course to (units: the readout's, unless noted)
STATISTICS = {
    "peak": "maximum over the run",
    "trough": "minimum over the run",
    "final": "value at the end of the run",
    "mean": "time average over the run (trapezoid rule)",
    "auc": "area under the curve over the run (trapezoid rule; readout units × min)",
    "time_to_peak": "time of the maximum from the start of the run (min)",
}
#: a fixed parameter with no explicit range varies ×/÷ this factor around its value (assumed)
DEFAULT_FACTOR = 2.0
#: the standard normal's 95th percentile: the 5th–95th percentile range is value·exp(±Z90·σ)
Z90 = 1.6448536269514722
#: Morris grid levels (Morris 1991; 4 is SALib's and the usual choice)
MORRIS_LEVELS = 4
#: bootstrap resamples and level of the SALib confidence intervals
NUM_RESAMPLES = 100
CONF_LEVEL = 0.95
#: the most model evaluations one analysis may ask for
MAX_EVALUATIONS = 10_000_000


class SensitivityError(ValueError):
    """A sensitivity analysis that cannot be run as asked (bad input): one line that names the
    field, the value and what is allowed."""


# ---------------------------------------------------------------------------------------------
# ranges
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParameterRange:
    """The range one parameter varies over, in the parameter's own unit (`unit`).

    `scale` "log": sampled uniformly in log(value) (needs 0 < low); "linear": uniformly in value.
    `source` says where the range comes from (the output tables print it)."""

    name: str
    low: float
    high: float
    unit: str = "1"
    scale: str = "log"
    source: str = ""
    value: float = math.nan  # the model's value (the typical subject's), for the table

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise SensitivityError(f"range of {self.name!r}: low {self.low:g} must be below high "
                                   f"{self.high:g} (both finite)")
        if self.scale not in ("log", "linear"):
            raise SensitivityError(f"range of {self.name!r}: scale {self.scale!r} must be 'log' or 'linear'")
        if self.scale == "log" and self.low <= 0:
            raise SensitivityError(f"range of {self.name!r}: a log-scale range needs low > 0 "
                                   f"(got {self.low:g})")

    @property
    def bounds(self) -> tuple[float, float]:
        """The range in sampling coordinates (log(value) for a log-scale range)."""
        if self.scale == "log":
            return math.log(self.low), math.log(self.high)
        return self.low, self.high

    def to_values(self, u: np.ndarray) -> np.ndarray:
        """Sampling coordinates → parameter values (in `unit`)."""
        u = np.asarray(u, dtype=float)
        return np.exp(u) if self.scale == "log" else u


def lognormal_percentile_range(value: float, cv: float, z: float = Z90) -> tuple[float, float]:
    """The central range of a lognormal population with median `value` and coefficient of
    variation `cv` (σ² = ln(1 + cv²), as `engine.subject_parameters` draws it): value·exp(±z·σ);
    z = Z90 gives the 5th–95th percentiles."""
    sigma = math.sqrt(math.log1p(cv * cv))
    return value * math.exp(-z * sigma), value * math.exp(z * sigma)


def _unknown(kind: str, name: str, known: Sequence[str], flag: str) -> SensitivityError:
    close = difflib.get_close_matches(name, list(known), n=4, cutoff=0.6)
    hint = (f"did you mean {', '.join(close)}?" if close
            else f"see the {kind}s with their values and sources in the documentation")
    return SensitivityError(f"{flag} {name!r}: no model {kind} has this name; {hint}")


def parameter_ranges(model: Any, names: Sequence[str], *,
                     explicit: Optional[Mapping[str, tuple[float, float]]] = None,
                     factor: float = DEFAULT_FACTOR, species: str = "human",
                     settings: Optional[Mapping[str, Any]] = None) -> list[ParameterRange]:
    """The range each of `names` varies over, in the parameter's unit (see the module docstring),
    around the species' value or the one a scenario's [parameters] (`settings`) set.

    A parameter of `explicit` (name → (low, high)) gets that range; one with a population cv the
    5th–95th percentile of its lognormal distribution (clipped to [0, 1] for a fraction); any
    other ×/÷ `factor` around its value (a value of 0 or below needs an explicit range).
    Unknown names raise SensitivityError listing close matches."""
    from .overrides import in_effect

    explicit = dict(explicit or {})
    pars = in_effect(model.parameters, settings or {}, species)
    if not names:
        raise SensitivityError("--parameters: give at least one model parameter to vary")
    seen: set[str] = set()
    for n in list(names) + list(explicit):
        if n not in model.parameters:
            raise _unknown("parameter", n, model.parameters, "--range" if n not in names else "--parameters")
    for n in explicit:
        if n not in names:
            raise SensitivityError(f"--range {n}=…: {n!r} is not among the --parameters varied "
                                   f"({', '.join(names)}); add it there or leave out its range")
    if not (factor > 1 and math.isfinite(factor)):
        raise SensitivityError(f"--factor {factor!r}: must be a number above 1 (a fixed parameter "
                               "varies from value/factor to value·factor)")
    out = []
    for name in names:
        if name in seen:
            raise SensitivityError(f"--parameters: {name!r} is given twice")
        seen.add(name)
        par = pars[name]
        value = float(par.value)
        if name in explicit:
            lo, hi = (float(x) for x in explicit[name])
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise SensitivityError(f"--range {name}={lo:g}:{hi:g}: LOW must be below HIGH "
                                       f"(in {par.unit})")
            if par.bounded_fraction and (lo < 0 or hi > 1):
                raise SensitivityError(f"--range {name}={lo:g}:{hi:g}: {name} is a fraction; the "
                                       "range must lie within 0:1")
            source = "given (--range)"
        elif par.cv > 0:
            lo, hi = lognormal_percentile_range(value, par.cv)
            if par.bounded_fraction:
                lo, hi = max(lo, 0.0), min(hi, 1.0)
            source = f"population cv {par.cv:g}, 5th–95th percentile ({par.cv_source})"
        else:
            if value <= 0:
                raise SensitivityError(
                    f"--parameters {name!r}: its value is {value:g} {par.unit} and it has no population "
                    f"spread, so it has no range to vary over; give one with --range {name}=LOW:HIGH "
                    f"(in {par.unit})")
            lo, hi = value / factor, value * factor
            if par.bounded_fraction:
                hi = min(hi, 1.0)
            source = f"assumed: ×/÷ {factor:g} around the value (the parameter has no population spread)"
        out.append(ParameterRange(name, lo, hi, par.unit, "log" if lo > 0 else "linear", source, value))
    return out


def ranges_table(ranges: Sequence[ParameterRange]):
    """One row per parameter: unit, model value, low, high, sampling scale, range source."""
    import pandas as pd

    return pd.DataFrame([{"parameter": r.name, "unit": r.unit, "value": r.value, "low": r.low, "high": r.high,
                          "scale": r.scale, "range_source": r.source} for r in ranges],
                        columns=["parameter", "unit", "value", "low", "high", "scale", "range_source"])


# ---------------------------------------------------------------------------------------------
# outputs: a readout reduced to a scalar by a statistic
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Output:
    readout: str
    statistic: str

    @property
    def label(self) -> str:
        return f"{self.readout}:{self.statistic}"


def parse_outputs(items: Sequence[str], statistic: str, readouts: Sequence[str]) -> list[Output]:
    """`items` are readout names, each optionally `NAME:STATISTIC` (else `statistic`); checked
    against the model's `readouts` and `STATISTICS`."""
    if statistic not in STATISTICS:
        raise SensitivityError(f"--statistic {statistic!r}: must be one of {', '.join(STATISTICS)}")
    out: list[Output] = []
    if not items:
        raise SensitivityError("--readouts: give at least one readout (e.g. plasma_heroin,spo2)")
    for item in items:
        name, _, stat = item.strip().partition(":")
        name, stat = name.strip(), (stat.strip() or statistic)
        if name not in readouts:
            raise _unknown("readout", name, readouts, "--readouts")
        if stat not in STATISTICS:
            raise SensitivityError(f"--readouts {item!r}: statistic {stat!r} must be one of "
                                   f"{', '.join(STATISTICS)}")
        o = Output(name, stat)
        if o in out:
            raise SensitivityError(f"--readouts: {o.label} is given twice")
        out.append(o)
    return out


def reduce_records(records: np.ndarray, times_min: np.ndarray, statistics: Sequence[str]) -> np.ndarray:
    """(samples, times, k) records → (samples, k) scalars, column j reduced by statistics[j].

    A sample with a NaN record (a failed integration) gets NaN."""
    recs = np.asarray(records, dtype=float)
    t = np.asarray(times_min, dtype=float)
    out = np.empty((recs.shape[0], len(statistics)))
    dt = np.diff(t)
    span = t[-1] - t[0] if t.size > 1 else 0.0
    for j, stat in enumerate(statistics):
        y = recs[:, :, j]
        if stat == "peak":
            v = y.max(axis=1)
        elif stat == "trough":
            v = y.min(axis=1)
        elif stat == "final":
            v = y[:, -1]
        elif stat in ("auc", "mean"):
            v = ((y[:, 1:] + y[:, :-1]) * 0.5 * dt).sum(axis=1) if t.size > 1 else np.zeros(len(y))
            if stat == "mean":
                v = v / span if span > 0 else y[:, 0]
        elif stat == "time_to_peak":
            v = t[np.argmax(y, axis=1)]
            v = np.where(np.isnan(y).any(axis=1), np.nan, v)
        else:
            raise SensitivityError(f"statistic {stat!r}: must be one of {', '.join(STATISTICS)}")
        out[:, j] = v
    return out


# ---------------------------------------------------------------------------------------------
# sampling and analysis (SALib)
# ---------------------------------------------------------------------------------------------
def _problem(ranges: Sequence[ParameterRange]) -> dict[str, Any]:
    return {"num_vars": len(ranges), "names": [r.name for r in ranges],
            "bounds": [list(r.bounds) for r in ranges]}


def check_samples(method: str, n: int, n_parameters: int, *, second_order: bool = False) -> int:
    """The number of model evaluations `method` with base sample size `n` needs; SensitivityError
    when `n` cannot be used."""
    if method not in METHODS:
        raise SensitivityError(f"--method {method!r}: must be one of {', '.join(METHODS)}")
    if method == "sobol":
        if n < 2 or n & (n - 1):
            raise SensitivityError(f"--samples {n}: Sobol' sampling needs a power of two (16, 32, 64, "
                                   "…; the sequence is balanced only then)")
        evals = n * (2 * n_parameters + 2 if second_order else n_parameters + 2)
    else:
        if n < 2:
            raise SensitivityError(f"--samples {n}: Morris needs at least 2 trajectories")
        evals = n * (n_parameters + 1)
    if evals > MAX_EVALUATIONS:
        raise SensitivityError(f"--samples {n}: {evals:,} model evaluations with {n_parameters} "
                               f"parameters; at most {MAX_EVALUATIONS:,} are allowed")
    return evals


def sample(ranges: Sequence[ParameterRange], method: str, n: int, seed: int, *,
           second_order: bool = False, levels: int = MORRIS_LEVELS) -> np.ndarray:
    """SALib's sample matrix in sampling coordinates (see `ParameterRange.bounds`), one row per
    model evaluation. Sobol': scrambled Sobol' sequence in Saltelli's scheme, n·(D+2) rows
    (n·(2D+2) with second order); Morris: n trajectories of D+1 points on a `levels` grid."""
    check_samples(method, n, len(ranges), second_order=second_order)
    problem = _problem(ranges)
    if method == "sobol":
        from SALib.sample import sobol

        return np.asarray(sobol.sample(problem, n, calc_second_order=second_order, scramble=True, seed=seed))
    from SALib.sample import morris

    return np.asarray(morris.sample(problem, n, num_levels=levels, seed=seed))


def analyse(ranges: Sequence[ParameterRange], x: np.ndarray, y: np.ndarray, method: str, seed: int, *,
            second_order: bool = False, levels: int = MORRIS_LEVELS) -> dict[str, np.ndarray]:
    """SALib's indices of one output `y` (one value per row of `x`): S1, S1_conf, ST, ST_conf
    (Sobol') or mu, mu_star, mu_star_conf, sigma (Morris); NaN where `y` has a NaN (a failed
    sample) or does not vary at all (the indices are undefined then)."""
    problem = _problem(ranges)
    y = np.asarray(y, dtype=float)
    d = len(ranges)
    keys = ("S1", "S1_conf", "ST", "ST_conf") if method == "sobol" else ("mu", "mu_star", "mu_star_conf", "sigma")
    if not np.isfinite(y).all() or (method == "sobol" and np.ptp(y) == 0):
        return {k: np.full(d, np.nan) for k in keys}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if method == "sobol":
            from SALib.analyze import sobol

            si = sobol.analyze(problem, y, calc_second_order=second_order, num_resamples=NUM_RESAMPLES,
                               conf_level=CONF_LEVEL, seed=seed)
        else:
            from SALib.analyze import morris

            si = morris.analyze(problem, np.asarray(x, dtype=float), y, num_resamples=NUM_RESAMPLES,
                                conf_level=CONF_LEVEL, num_levels=levels, seed=seed)
    return {k: np.asarray(si[k], dtype=float) for k in keys}


def indices_table(ranges: Sequence[ParameterRange], outputs: Sequence[Output], x: np.ndarray,
                  y: np.ndarray, method: str, seed: int, *, units: Optional[Mapping[str, str]] = None,
                  second_order: bool = False, levels: int = MORRIS_LEVELS):
    """The tidy table: one row per (readout, statistic, parameter) with the indices of `analyse`,
    the unit of the statistic and the mean and SD of the statistic over the samples."""
    import pandas as pd

    rows = []
    for j, o in enumerate(outputs):
        yj = y[:, j]
        si = analyse(ranges, x, yj, method, seed, second_order=second_order, levels=levels)
        ok = np.isfinite(yj)
        for i, r in enumerate(ranges):
            row = {"readout": o.readout, "statistic": o.statistic,
                   "units": _statistic_units(o.statistic, (units or {}).get(o.readout, "")),
                   "parameter": r.name}
            row.update({k: float(v[i]) for k, v in si.items()})
            row.update(output_mean=float(yj[ok].mean()) if ok.any() else math.nan,
                       output_sd=float(yj[ok].std()) if ok.any() else math.nan,
                       failed_samples=int((~ok).sum()))
            rows.append(row)
    keys = ["S1", "S1_conf", "ST", "ST_conf"] if method == "sobol" else ["mu_star", "mu_star_conf", "sigma", "mu"]
    cols = ["readout", "statistic", "units", "parameter"] + keys + ["output_mean", "output_sd", "failed_samples"]
    return pd.DataFrame(rows, columns=cols)


def _statistic_units(statistic: str, units: str) -> str:
    if statistic == "time_to_peak":
        return "min"
    if statistic == "auc":
        return f"{units}·min" if units and units != "1" else "min"
    return units


# ---------------------------------------------------------------------------------------------
# the result and the generic pipeline
# ---------------------------------------------------------------------------------------------
@dataclass
class SensitivityResult:
    """What one analysis computed. `x` in sampling coordinates, `values` in parameter units (one
    row per evaluation, one column per range), `y` one column per output; `table` the indices."""

    method: str
    samples: int
    seed: int
    ranges: list[ParameterRange]
    outputs: list[Output]
    x: np.ndarray
    values: np.ndarray
    y: np.ndarray
    table: Any
    second_order: bool = False
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def evaluations(self) -> int:
        return int(self.x.shape[0])

    @property
    def failed(self) -> int:
        """Samples with a non-finite statistic (an integration that failed)."""
        return int((~np.isfinite(self.y).all(axis=1)).sum()) if self.y.size else 0

    def samples_frame(self):
        """Every evaluation: the parameter values (columns named by parameter) and the outputs
        (columns readout:statistic)."""
        import pandas as pd

        data = {r.name: self.values[:, i] for i, r in enumerate(self.ranges)}
        data.update({o.label: self.y[:, j] for j, o in enumerate(self.outputs)})
        return pd.DataFrame(data)


def analyse_function(function: Callable[[np.ndarray], np.ndarray], ranges: Sequence[ParameterRange],
                     outputs: Sequence[Output], *, method: str = "sobol", samples: int = 64, seed: int = 0,
                     second_order: bool = False, levels: int = MORRIS_LEVELS,
                     units: Optional[Mapping[str, str]] = None) -> SensitivityResult:
    """The whole pipeline on `function`: (evaluations, parameters) values in parameter units →
    (evaluations, outputs) statistics. Same seed, same samples and numbers."""
    x = sample(ranges, method, samples, seed, second_order=second_order, levels=levels)
    values = np.column_stack([r.to_values(x[:, i]) for i, r in enumerate(ranges)]) if len(ranges) else x
    y = np.asarray(function(values), dtype=float)
    if y.ndim == 1:
        y = y[:, None]
    if y.shape != (x.shape[0], len(outputs)):
        raise ValueError(f"the function returned shape {y.shape}, expected {(x.shape[0], len(outputs))}")
    table = indices_table(ranges, outputs, x, y, method, seed, units=units, second_order=second_order,
                          levels=levels)
    return SensitivityResult(method, samples, seed, list(ranges), list(outputs), x, values, y, table,
                             second_order)


# ---------------------------------------------------------------------------------------------
# evaluation on the engine
# ---------------------------------------------------------------------------------------------
def check_scenario(scenario: Any) -> None:
    course = next((k for k in ("paradigm", "life", "trial") if getattr(scenario, k, None) is not None), None)
    if course is not None:
        raise SensitivityError(f"scenario {scenario.name!r} has a [{course}] table: sensitivity analysis "
                               "runs scenarios of doses and conditions (their behaviour layer is not "
                               "batched over parameter samples in this version)")


def batch_size(n: int, chunk: int) -> int:
    """Samples per compiled batch for n samples in batches of at most `chunk`: the n samples
    split evenly into ceil(n/chunk) batches, each rounded up to a multiple of 8 (to 2, 4 or 8
    below that; at least MIN_BATCH). Every batch of a run is padded to this size, so a run
    compiles the engine once, and pads at most 7 samples per batch."""
    from .engine.core import MIN_BATCH

    n, chunk = max(n, 1), max(chunk, MIN_BATCH)
    even = math.ceil(n / math.ceil(n / chunk))
    if even <= 8:
        return max(MIN_BATCH, 1 << (even - 1).bit_length())
    return 8 * math.ceil(even / 8)


def evaluate_chunk(scenario: Any, ranges: Sequence[ParameterRange], values: np.ndarray,
                   outputs: Sequence[Output], batch: int, model: Any = None) -> np.ndarray:
    """One batch on the engine (runs on a Dask worker too): (rows, parameters) values →
    (rows, outputs) statistics; rows ≤ batch, padded with copies of the last row to `batch`.

    Each row is a typical subject of the scenario (`subject_parameters(..., variability=False)`)
    with the row's values written in (converted to internal units)."""
    from .engine.core import integrate, integrate_settings, scenario_grid, subject_parameters
    from .engine.dosing import compile_doses
    from .model.glutamate import GLT1_DRUGS
    from .model.model import default_model
    from .units import to_internal

    model = model or default_model()
    values = np.asarray(values, dtype=float)
    rows = values.shape[0]
    if rows < batch:
        values = np.concatenate([values, np.repeat(values[-1:], batch - rows, axis=0)])
    grid = scenario_grid(scenario)
    p = subject_parameters(model, scenario, batch, scenario.cohort.seed, variability=False)
    for i, r in enumerate(ranges):
        scale = to_internal(1.0, r.unit)  # units here are ratios of internal ones (no offsets)
        p[r.name] = values[:, i] * scale
    # a GLT-1 drug condition copies its rate into glt1_restoration (subject_parameters): copy
    # the varied rate again, so that varying it is seen
    drug = GLT1_DRUGS.get(getattr(scenario.conditions, "glt1_drug", "none"))
    if drug is not None and drug in p and "glt1_restoration" in p and \
            "glt1_restoration" not in {r.name for r in ranges}:
        p["glt1_restoration"] = np.array(p[drug], dtype=float, copy=True)
    events = compile_doses(model, scenario.doses, scenario.duration_min, grid.h, p)
    names = tuple(dict.fromkeys(o.readout for o in outputs))
    y0 = model.initial_state(p)
    recs = integrate(model, grid, y0, p, events, names, **integrate_settings(scenario))
    cols = [names.index(o.readout) for o in outputs]
    return reduce_records(recs[:rows][:, :, cols], grid.record_times_min, [o.statistic for o in outputs])


def chunks_of(n: int, size: int) -> list[tuple[int, int]]:
    return [(a, min(n, a + size)) for a in range(0, n, size)]


def evaluate_samples(scenario: Any, ranges: Sequence[ParameterRange], values: np.ndarray,
                     outputs: Sequence[Output], *, model: Any = None, chunk: Optional[int] = None,
                     connection: Any = None, progress: Optional[Callable[[int, int], None]] = None) -> np.ndarray:
    """All samples on the engine: (evaluations, parameters) → (evaluations, outputs).

    In this process the samples run in batches of `batch_size` (≤ `chunk`, default
    SUBJECT_CHUNK); with `connection` (an entered `opioidsim.cluster.Connection`) each batch is a
    Dask task (default chunk: enough tasks for every worker thread). The engine computes a
    subject the same in any batch of two or more (`engine.core.MIN_BATCH`), so both give the
    same numbers. `progress(done, total)` counts batches."""
    from .engine.core import SUBJECT_CHUNK

    values = np.asarray(values, dtype=float)
    n = values.shape[0]
    if chunk is None:
        chunk = SUBJECT_CHUNK if connection is None else max(1, math.ceil(n / connection.threads()))
    batch = batch_size(n, min(chunk, SUBJECT_CHUNK))  # ≤ SUBJECT_CHUNK: integrate runs it whole
    parts = chunks_of(n, batch)
    out = np.empty((n, len(outputs)))
    if progress is not None:
        progress(0, len(parts))
    if connection is None:
        for k, (a, b) in enumerate(parts):
            out[a:b] = evaluate_chunk(scenario, ranges, values[a:b], outputs, batch, model)
            if progress is not None:
                progress(k + 1, len(parts))
        return out
    if model is not None:
        raise ValueError("on Dask the workers run the default model; leave out model=")
    from distributed import as_completed

    client = connection.client
    stamp = f"{os.getpid()}-{time.time_ns()}"
    futures = {client.submit(evaluate_chunk, scenario, list(ranges), values[a:b], list(outputs), batch,
                             key=f"opioidsim-sensitivity-{a}-{b}-{stamp}", pure=False): (a, b) for a, b in parts}
    done = 0
    try:
        for fut in as_completed(list(futures), loop=client.loop):
            a, b = futures[fut]
            out[a:b] = fut.result()
            done += 1
            if progress is not None:
                progress(done, len(parts))
    except BaseException:
        try:
            client.cancel(list(futures))
        except Exception:  # the scheduler may be gone already
            pass
        raise
    return out


def run_sensitivity(scenario: Any, parameters: Sequence[str], outputs: Sequence[Output], *,
                    method: str = "sobol", samples: int = 64, seed: int = 0,
                    ranges: Optional[Mapping[str, tuple[float, float]]] = None, factor: float = DEFAULT_FACTOR,
                    second_order: bool = False, levels: int = MORRIS_LEVELS, model: Any = None,
                    connection: Any = None, chunk: Optional[int] = None,
                    progress: Optional[Callable[[int, int], None]] = None) -> SensitivityResult:
    """Global sensitivity of `outputs` (readout + statistic) to `parameters` in `scenario` (a
    Scenario, built-in name or .toml path): ranges (`parameter_ranges`), SALib samples, one
    batched engine evaluation (on Dask with `connection`), SALib indices.

    Same scenario, parameters, ranges and seed → the same samples and the same numbers."""
    from .engine.core import _as_scenario
    from .model.model import default_model
    from .readouts import READOUTS

    scenario = _as_scenario(scenario)
    check_scenario(scenario)
    m = model or default_model()
    rngs = parameter_ranges(m, parameters, explicit=ranges, factor=factor,
                            species=getattr(scenario.cohort, "species", "human"), settings=scenario.parameters)
    for o in outputs:
        if o.readout not in m.readouts:
            raise _unknown("readout", o.readout, m.readouts, "--readouts")
        if o.statistic not in STATISTICS:
            raise SensitivityError(f"statistic {o.statistic!r}: must be one of {', '.join(STATISTICS)}")
    t0 = time.perf_counter()
    x = sample(rngs, method, samples, seed, second_order=second_order, levels=levels)
    values = np.column_stack([r.to_values(x[:, i]) for i, r in enumerate(rngs)])
    y = evaluate_samples(scenario, rngs, values, outputs, model=model, chunk=chunk, connection=connection,
                         progress=progress)
    wall = time.perf_counter() - t0
    units = {o.readout: READOUTS[o.readout].units for o in outputs}
    table = indices_table(rngs, outputs, x, y, method, seed, units=units, second_order=second_order, levels=levels)
    info = {"scenario": str(scenario.name), "evaluation_wall_time_s": round(wall, 3),
            "scenario_toml": scenario.to_toml()}
    return SensitivityResult(method, samples, seed, rngs, list(outputs), x, values, y, table, second_order, info)


# ---------------------------------------------------------------------------------------------
# figure and results folder
# ---------------------------------------------------------------------------------------------
def plot_indices(result: SensitivityResult, path: str | os.PathLike) -> None:
    """One panel per output: horizontal bars of ST with S1 inside (Sobol'), or mu* against sigma
    (Morris); written as PNG to `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = result.table
    n = len(result.outputs)
    d = len(result.ranges)
    names = [r.name for r in result.ranges]
    if result.method == "sobol":
        fig, axes = plt.subplots(n, 1, figsize=(7.5, 0.9 + (0.35 * d + 0.8) * n), squeeze=False)
    else:
        cols = min(n, 3)
        rows_ = math.ceil(n / cols)
        fig, axes = plt.subplots(rows_, cols, figsize=(4.6 * cols, 4.0 * rows_), squeeze=False)
    for j, o in enumerate(result.outputs):
        sub = table[(table.readout == o.readout) & (table.statistic == o.statistic)].set_index("parameter").loc[names]
        if result.method == "sobol":
            ax = axes[j, 0]
            pos = np.arange(d)[::-1]
            ax.barh(pos, sub["ST"], height=0.7, color="#9ecae1", label="total (ST)",
                    xerr=sub["ST_conf"], error_kw={"ecolor": "#555", "capsize": 2, "lw": 0.8})
            ax.barh(pos, sub["S1"], height=0.35, color="#08519c", label="first order (S1)",
                    xerr=sub["S1_conf"], error_kw={"ecolor": "#222", "capsize": 2, "lw": 0.8})
            ax.set_yticks(pos, names, fontsize=8)
            both = sub[["S1", "ST"]].to_numpy()
            # estimates scatter past 0 and 1 with few samples: show them, do not clip them
            ax.set_xlim(min(0.0, float(np.nanmin(both, initial=0.0))) - 0.02,
                        max(1.0, float(np.nanmax(both, initial=0.0))) + 0.05)
            ax.axvline(0, color="#999", lw=0.6)
            ax.set_title(f"{o.readout} ({o.statistic})", fontsize=9, loc="left")
            if j == 0:
                ax.legend(fontsize=7, loc="lower right")
            if j == n - 1:
                ax.set_xlabel("Sobol' index (share of the output's variance)")
        else:
            ax = axes[j // axes.shape[1], j % axes.shape[1]]
            ax.scatter(sub["mu_star"], sub["sigma"], color="#08519c", s=18)
            for name, row in sub.iterrows():
                ax.annotate(name, (row["mu_star"], row["sigma"]), fontsize=7, xytext=(3, 2),
                            textcoords="offset points")
            ax.set_title(f"{o.readout} ({o.statistic})", fontsize=9, loc="left")
            # from zero: the distance from the origin is the size of the effect
            top_x = float(np.nanmax(sub["mu_star"].to_numpy(), initial=0.0)) or 1.0
            top_y = float(np.nanmax(sub["sigma"].to_numpy(), initial=0.0))
            top_y = top_y if top_y > 1e-9 * top_x else top_x
            ax.set_xlim(0, 1.15 * top_x)
            ax.set_ylim(0, 1.15 * top_y)
            unit = sub["units"].iloc[0] if len(sub) else ""
            ax.set_xlabel(f"mu* (mean |elementary effect| per range{f', {unit}' if unit else ''})", fontsize=8)
            ax.set_ylabel("sigma (spread of the effects)", fontsize=8)
            ax.tick_params(labelsize=7)
    if result.method == "morris":
        for k in range(n, axes.size):
            axes.flat[k].set_visible(False)
    fig.suptitle(f"{'Sobol' if result.method == 'sobol' else 'Morris'} sensitivity, "
                 f"{result.evaluations:,} evaluations (research and teaching only)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.97))  # room for the title
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)


SENSITIVITY_FILES = ("indices.csv", "ranges.csv", "samples.csv", "sensitivity.png", "scenario.toml", "run.json")


def write_sensitivity(result: SensitivityResult, out_dir: str | os.PathLike, *, overwrite: bool = False,
                      command: Optional[Sequence[str]] = None, extra: Optional[dict[str, Any]] = None) -> Path:
    """Write the results folder (SENSITIVITY_FILES) in a temporary folder beside `out_dir` and
    rename it into place when complete: a reader never sees half of it, and a failure leaves
    nothing behind. A non-empty `out_dir` is replaced only with `overwrite`."""
    import shutil

    from .io.results import (_make_temp_dir, _move_into_place, _write_whole, check_out_dir,
                             package_version, utc_now)

    out = check_out_dir(out_dir, overwrite=overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _make_temp_dir(out.parent, out.name, "partial")
    try:
        _write_whole(tmp / "indices.csv", lambda p: result.table.to_csv(p, index=False))
        _write_whole(tmp / "ranges.csv", lambda p: ranges_table(result.ranges).to_csv(p, index=False))
        _write_whole(tmp / "samples.csv", lambda p: result.samples_frame().to_csv(p, index=False))
        _write_whole(tmp / "sensitivity.png", lambda p: plot_indices(result, p))
        toml = result.info.get("scenario_toml", "")
        _write_whole(tmp / "scenario.toml", lambda p: p.write_text(
            "# opioidsim scenario of a sensitivity analysis (research and teaching only)\n" + toml,
            encoding="utf-8"))
        info = {"opioidsim_version": package_version(), "status": "complete", "analysis": "sensitivity",
                "method": result.method, "samples": result.samples, "seed": result.seed,
                "second_order": result.second_order, "evaluations": result.evaluations,
                "failed_samples": result.failed,
                "parameters": [r.name for r in result.ranges], "outputs": [o.label for o in result.outputs],
                "scenario": result.info.get("scenario"), "command": list(command) if command else None,
                "finished_utc": utc_now(), "python": sys.version.split()[0],
                "files": list(SENSITIVITY_FILES)}
        info.update({k: v for k, v in result.info.items() if k != "scenario_toml"})
        info.update(extra or {})
        _write_whole(tmp / "run.json", lambda p: p.write_text(json.dumps(info, indent=2, default=str) + "\n",
                                                              encoding="utf-8"))
        _move_into_place(tmp, out, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
