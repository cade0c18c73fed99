"""Batched simulation: a scenario in, an xarray Dataset out.

Time stepping: the fast physiology advances in adaptive steps of the scenario's method
(`stepper.METHODS`: ROS34PW2 by default, or ROS2);
records are taken every `stride` quanta (record_every = stride·h). The compiled unit is one
*segment* of SEGMENT_RECORDS records — one while_loop in which each subject advances to its own
next record (see RUNNERS) — reused for every segment and every subject chunk of the same shape,
so a long run compiles once and reports progress between segments. Subjects are processed in
chunks to bound memory.
"""
from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import jax

# The integrator compares against a Radau reference at 1e-8 tolerance: keep 64-bit floats.
jax.config.update("jax_enable_x64", True)
# Compiling the step takes tens of seconds; keep compiled programs on disk so that later runs
# (another CLI call, a test subprocess) reuse them. OPIOIDSIM_JAX_CACHE=0 turns this off.
_CACHE = os.environ.get("OPIOIDSIM_JAX_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "opioidsim", "jax"))
if _CACHE and _CACHE != "0":
    jax.config.update("jax_compilation_cache_dir", _CACHE)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 2.0)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from scipy.special import ndtri  # noqa: E402

from .. import OPENBLAS_THREADS_CHOSEN_BY_USER  # noqa: E402
from ..model.glutamate import GLT1_DRUGS  # noqa: E402
from ..model.model import Model, default_model  # noqa: E402
from ..readouts import READOUTS  # noqa: E402
from ..scenarios.schema import SOLVER_METHODS, SOLVER_RECORDS  # noqa: E402
from ..overrides import in_effect  # noqa: E402
from ..units import to_internal  # noqa: E402
from .dosing import EVENTS_PER_STEP, DoseEvents, compile_doses, dose_targets  # noqa: E402
from .devices import MIN_BATCH, checked_devices, pad_rows, padded_rows, shards_for, split_by_subject  # noqa: E402,F401
from .inert import for_targets  # noqa: E402
from .stepper import METHODS, ros34pw2_step  # noqa: E402

if not OPENBLAS_THREADS_CHOSEN_BY_USER:
    # one OpenBLAS thread also where scipy or numpy loaded OpenBLAS before opioidsim set
    # OPENBLAS_NUM_THREADS (see opioidsim/__init__.py: XLA's threads and OpenBLAS's oversubscribe)
    from threadpoolctl import threadpool_limits  # noqa: E402

    threadpool_limits(1, user_api="blas")

#: genotype indicator parameter → its carrier-frequency parameter
GENOTYPES = {"oprm1_g_carrier": "oprm1_g_carrier_frequency", "drd2_a1_carrier": "drd2_a1_carrier_frequency"}

#: the time quantum of the adaptive step (3.75 s): doses, records and every step are whole multiples
#: of it; the first step after an IV bolus is one quantum. See docs/guide/11-engine.md for the accuracy check.
QUANTUM_MIN = 1.0 / 16.0
#: the fixed-step baseline (`integrate(..., adaptive=False)`) takes steps of at most this (15 s)
MAX_STEP_MIN = 0.25
#: subjects integrated together in one compiled batch (a larger cohort runs as several batches).
#: Kept well below ~1,000: with jaxlib 0.10 on CPU a batch of 1,000 or 1,024 subjects hangs for
#: good (every XLA thread idle, the result never ready; found running a cohort on Dask, not
#: affected by --xla_cpu_multi_thread_eigen=false), while 512, 768 and 900 run.
SUBJECT_CHUNK = 512


@dataclass(frozen=True)
class Grid:
    h: float  # step, min
    stride: int  # steps per record
    n_records: int  # including t = 0

    @property
    def record_times_min(self) -> np.ndarray:
        return np.arange(self.n_records) * self.stride * self.h


def make_grid(duration_min: float, record_every_min: float, max_step: float = QUANTUM_MIN) -> Grid:
    stride = max(1, math.ceil(record_every_min / max_step - 1e-9))
    h = record_every_min / stride
    n_records = int(math.floor(duration_min / record_every_min + 1e-9)) + 1
    return Grid(h, stride, n_records)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser (Steele, Lea & Flood 2014 OOPSLA), elementwise on uint64 arrays."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def subject_uniforms(seed: int, stream: str, subjects: np.ndarray) -> np.ndarray:
    """One uniform number in (0, 1) per subject index, a pure function of (seed, stream, index).

    Counter-based: subject i of a cohort gets the same draw whatever the cohort size and however
    the cohort is cut into chunks (processes, machines), and adding a stream (a parameter) never
    changes another stream's draws. `stream` is the parameter's name."""
    key = int.from_bytes(hashlib.blake2b(stream.encode(), digest_size=8).digest(), "little")
    base = _splitmix64(np.array([int(seed) & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64)) ^ np.uint64(key)
    idx = np.asarray(subjects, dtype=np.uint64)
    z = _splitmix64(_splitmix64(base + idx * np.uint64(0xD1B54A32D192ED03)))
    return ((z >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


def subject_normals(seed: int, stream: str, subjects: np.ndarray) -> np.ndarray:
    """Standard normal draws per subject index (inverse CDF of `subject_uniforms`)."""
    return ndtri(subject_uniforms(seed, stream, subjects))


def lognormal_draws(seed: int, stream: str, subjects: np.ndarray, cv: float) -> np.ndarray:
    """Lognormal factors with median 1 and coefficient of variation `cv` per subject index:
    exp(σ·z), σ² = ln(1 + cv²), z from `subject_normals` (so as counter-based as they are)."""
    sigma = math.sqrt(math.log1p(float(cv) ** 2))
    return np.exp(sigma * subject_normals(seed, stream, subjects))


def subject_parameters(model: Model, scenario, n_subjects: int, seed: int, *, variability: bool = True,
                       first: int = 0) -> dict[str, np.ndarray]:
    """Per-subject parameter values in internal units for subjects first … first+n_subjects−1;
    `variability=False` gives typical subjects.

    Between-subject variability is lognormal with the parameter's cv (value·exp(η), η ~ N(0, σ²),
    σ² = ln(1 + cv²)); fraction-valued parameters are clipped to [0, 1]; genotypes are carriers
    with their population frequency; a species other than human replaces the parameters it
    changes (opioidsim.species). Every draw depends only on (seed, parameter name, subject
    index) — see `subject_uniforms` — so a subject is the same in a cohort of 10 or of a million,
    and a cohort run in chunks equals the cohort run whole."""
    idx = np.arange(first, first + n_subjects, dtype=np.uint64)
    p: dict[str, np.ndarray] = {}
    pars = in_effect(model.parameters, getattr(scenario, "parameters", {}),
                     getattr(scenario.cohort, "species", "human"))
    for name, par in pars.items():
        v = par.internal_value
        if variability and par.cv > 0 and n_subjects > 0:
            draws = v * lognormal_draws(seed, name, idx, par.cv)
            p[name] = np.clip(draws, 0.0, 1.0) if par.bounded_fraction else draws
        else:
            p[name] = np.full(n_subjects, v, dtype=float)
    if variability:
        for carrier, frequency in GENOTYPES.items():
            if carrier in p:
                p[carrier] = (subject_uniforms(seed, carrier, idx) < p[frequency]).astype(float)
    # Scenario conditions override the parameter of the same name for every subject.
    p["pain_stimulus"] = np.full(n_subjects, float(scenario.conditions.pain_stimulus))
    drug = GLT1_DRUGS.get(getattr(scenario.conditions, "glt1_drug", "none"))
    if drug is not None and "glt1_restoration" in p:
        p["glt1_restoration"] = np.array(p[drug], dtype=float, copy=True)
    age = scenario.cohort.age_at_first_use
    if age is not None and "age_at_first_use" in model.parameters:  # years → internal units
        p["age_at_first_use"] = np.full(n_subjects, to_internal(float(age), "year"))
    return p


#: error tolerances of the adaptive step: every state's |local error| ≤ atol + RTOL·|y|, atol from
#: the state's declaration or ATOL. A max norm, not an RMS: with ~70 states an RMS lets the one state
#: that matters (CO2 under a brainstem-occupancy drift) run 8× over. See docs/guide/11-engine.md.
RTOL = 3e-3
ATOL = 1e-5

#: most sub-steps a one-quantum step is split into when its error estimate is over the tolerance
#: (`_counted_try`, K ≈ estimate^(1/3) with ROS34PW2, √estimate with ROS2): 4 sub-steps of the
#: default 3.75 s quantum are 0.94 s each, where ROS2 follows a mode growing at 5.6/min (the closing
#: arrest latch of RELIABILITY.md) to 0.5 % per quantum
MAX_SUBSTEPS = 4
#: minutes after a dose in which a one-quantum step over the tolerance is taken as it is, not split:
#: a bolus's first-minute transient (bound fractions, effect sites) has one-quantum steps over the
#: tolerance after nearly every dose, the first-order estimate there overstates the error 5–38×
#: (docs/guide/11-engine.md), and splitting them made the bench cohort 2.6× slower for no gain
#: in accuracy (max error against Radau 3.07e-4 either way). Those are ROS2's figures; with ROS34PW2
#: such quanta are rare (128 on the bench cohort of 64 subjects × 5 days, against ROS2's 13,514)
DOSE_TRANSIENT_MIN = 2.0
#: ... unless its estimate is beyond anything that overstatement explains: such a quantum is split
#: in the window too. The first quantum of 1.5 mg IV fentanyl (receptor binding at a massive
#: concentration) has an estimate of 1.4-2.6e4; taken as it is, the ventilation nadir of
#: tests/test_engine.py missed the Radau reference's by 9 % of baseline, and without the split 3
#: of the reduced random-physiology subjects left their bounds (glt1 above 1). A life course's
#: forced quanta in the window had estimates of 4.7 (median), 36 (90th percentile) and 200 (99th)
#: (stop 28)
TRANSIENT_SPLIT_ESTIMATE = 1000.0

#: records per compiled segment; the last segment runs past the end and its extra records are dropped
SEGMENT_RECORDS = 64
#: most records one adaptive step may span where records are interpolated (`integrate(...,
#: dense=True)`), so the longest step is this many record intervals: on the flagship (30 s
#: records) 8, 16, 32 and 64 took 210, 123, 85 and 70 steps
RECORDS_PER_STEP = 32
#: `[solver] records = "auto"` (the default) interpolates records this many minutes apart or closer,
#: its steps held to rtol / AUTO_RTOL_DIVISOR: stepped records cap the steps, so at such intervals
#: they are more accurate than rtol and cost at least a step a record, while interpolated ones are
#: as accurate as the steps' tolerance. Measured against Radau (rtol 1e-8), largest error over the
#: key readouts, stepped at 3e-3 against interpolated at 1e-4 (docs/guide/11-engine.md,
#: *Interpolated records*): the flagship (30 s records) 1,455 steps and 3.5e-4 against 160 and 3.0e-4;
#: fentanyl-overdose-naloxone (15 s) 728 and 2.8e-2 against 152 and 1.4e-3; the bench cohort's IV
#: heroin every 8 h recorded every 1 / 5 / 10 min 1,472 / 347 / 214 steps a subject-day and 9.7e-4 /
#: 2.8e-3 / 1.2e-2 against 339 / 341 / 360 and 2.6e-4 / 1.9e-4 / 1.6e-4. A tenth of rtol was not
#: enough: ventilation 1.5e-3 off Radau on tests/test_sbml.py's acute scenario (1 min records),
#: against 2.8e-4 at a thirtieth and 2.1e-4 stepped
AUTO_INTERPOLATE_MAX_MIN = 5.0
AUTO_RTOL_DIVISOR = 30


def state_atol(model: Model):
    """Per-state absolute tolerance of the adaptive step (the state's own, else ATOL)."""
    return jnp.asarray(np.where(np.isnan(model.atol), ATOL, model.atol))


def error_magnitude(model: Model, size):
    """The size each state's relative tolerance applies to (traceable): its own (`size`, per subject
    and state), plus the sizes of the states it declares in `State.error_scale_with`."""
    if len(model.error_scale_rows) == 0:
        return size
    extra = size @ jnp.asarray(model.error_scale_weights, dtype=size.dtype).T
    return size.at[:, model.error_scale_rows].set(extra)


def _substeps_for(e, q=2):
    """Sub-steps that bring a one-quantum step whose error estimate is e tolerances down to one
    tolerance each: the estimate scales as h^q, so K ≥ e^(1/q), rounded up to a power of two (the
    sub-steps then end on the quantum in binary floating point) and capped at MAX_SUBSTEPS."""
    k = jnp.exp2(jnp.ceil(jnp.log2(jnp.maximum(e, 1.0) ** (1.0 / q))))
    return jnp.minimum(k, MAX_SUBSTEPS).astype(jnp.int64)


def _counted_try(model: Model, atol, y, n, m, limit, active, p, h, max_m, step=ros34pw2_step, rtol=RTOL, sub=None,
                 may_split=False, stages=False):
    """One attempt of the adaptive step for every subject of a batch (traceable; the dose-schedule
    engine's and the behaviour layer's).

    Each active subject tries a step of m quanta (m·h minutes), never past `limit` (its next
    event, in quanta); a step whose error estimate exceeds the tolerance is retried smaller, one
    of a single quantum is taken (or split, below). `step` is the method
    (`stepper.METHODS`; `stepper.ros2_step_dense` is the benchmarks' baseline); `rtol` the
    relative tolerance (a Python float or a traced scalar). It also returns per subject whether
    the step it took was accepted although its error estimate exceeded the tolerance (a
    one-quantum step, or a sub-step: the smallest steps there are, taken anyway; counting these
    tells the user the tolerance was not met).

    `sub` = (k, j), given by the callers' loops: subject i is taking the quantum after n in
    k[i] equal sub-steps and has taken j[i] of them (k = 0: not sub-stepping; sub=None: no
    sub-steps at all). Where `may_split` (past a dose's transient), or where the estimate exceeds
    TRANSIENT_SPLIT_ESTIMATE, a one-quantum step over the tolerance is not taken but redone as K
    sub-steps (`_substeps_for`), one per try, so a subject's time n still moves on the quantum
    grid. Why: a quantum is the shortest step the adaptive rule can choose, and taking it
    regardless of its error let a fast growing mode be damped into a false steady state. ROS2's
    stability function at z = hλ > 0 falls below 1 long before γz reaches 1 (R(0.35) ≈ 0.96, where
    the flow grows by e^0.35 ≈ 1.42): the closing cardiac-arrest latch of random subject 3,127
    (RELIABILITY.md), a loop through ventilation, PaO2 and the hypoxia timer growing at 5.6/min,
    stalled half-closed for hours at one quantum per step, while the Radau reference closed it
    within minutes. The sub-steps are tries of the same loop, not a loop of their own inside it
    (with a nested loop, XLA crashed (de)serialising the program for the persistent compilation
    cache).

    Returns (y, n, m, forced, sub), and where `stages` the step's stages too (`step.dense`)."""
    m_eff = jnp.maximum(1, jnp.minimum(jnp.minimum(m, max_m), limit - n))
    if sub is None:
        in_sub, t, hs = jnp.zeros_like(active), n * h, m_eff * h
    else:
        k, j = sub
        in_sub = k > 0
        h_sub = h / jnp.maximum(k, 1).astype(y.dtype)
        t = n * h + jnp.where(in_sub, j * h_sub, 0.0)
        hs = jnp.where(in_sub, h_sub, m_eff * h)
    if stages:
        y_new, err, us = step.dense.stages(model, t, y, p, jnp.where(active, hs, 0.0))
    else:
        y_new, err = step(model, t, y, p, jnp.where(active, hs, 0.0))
    scale = atol + rtol * error_magnitude(model, jnp.maximum(jnp.abs(y), jnp.abs(y_new)))
    e = jnp.max(jnp.abs(err) / scale, axis=-1)
    within = e <= 1.0
    # a fixed-step run (max_m = 1, `integrate(..., adaptive=False)`) takes its steps as they are;
    # a non-finite estimate (a failed subject, `STATUS_FAILED`) is not split, or it would retry forever
    split = (active & ~in_sub & ~within & jnp.isfinite(e) & (m_eff == 1) & (max_m > 1) & (sub is not None)
             & (may_split | (e > TRANSIENT_SPLIT_ESTIMATE)))
    accept = active & (within | (m_eff == 1) | in_sub) & ~split
    forced = accept & ~within
    y = jnp.where(accept[:, None], y_new, y)
    n = n + jnp.where(accept & ~in_sub, m_eff, 0)
    # the estimate ∝ h^q (q = 3 for ROS34PW2, 2 for ROS2): double the step where the doubled one is
    # predicted within 0.8 of the tolerance, quadruple where the quadrupled one is within 0.2; on
    # rejection shrink by 2, 8 or 64, whichever first brings the prediction within 0.8 (for q = 2
    # these are exactly ROS2's literals as first written: 0.0125, 0.2, 3.2, 51.2)
    q = getattr(step, "estimate_order", 2)
    grown = jnp.maximum(m, m_eff) * jnp.where(e < 0.2 / 4 ** q, 4, jnp.where(e < 0.8 / 2 ** q, 2, 1))
    shrunk = jnp.maximum(1, m_eff // jnp.where(e < 0.8 * 2 ** q, 2, jnp.where(e < 0.8 * 8 ** q, 8, 64)))
    m_next = jnp.where(accept, jnp.minimum(grown, max_m), shrunk)
    m = jnp.where(active & ~in_sub & ~split, m_next, m)  # sub-stepping keeps m = 1
    if sub is not None:
        j = jnp.where(active & in_sub, j + 1, j)
        done = in_sub & (j >= k)  # the quantum's last sub-step: back on the grid
        n = n + done.astype(n.dtype)
        k = jnp.where(split, _substeps_for(e, q), jnp.where(done, 0, k))
        j = jnp.where(split | done, 0, j)
        sub = (k, j)
    return (y, n, m, forced, sub, us) if stages else (y, n, m, forced, sub)


def advance_to(model: Model, atol, y, n, m, n_end, p, h, max_m, since_dose_min, step=ros34pw2_step):
    """Adaptive steps (`_counted_try`) until every subject of the batch reaches quantum n_end, with
    no events on the way (traceable; the gym's step: courses and animal experiments go through
    their decisions each subject at its own pace, `through_phases`).

    `since_dose_min` (per subject, minutes since its last dose at the start of the call: 0 for a
    dose given now, inf for none) lets a one-quantum step over the tolerance be redone in sub-steps
    as in the dose-schedule engine, except within DOSE_TRANSIENT_MIN of that dose. The sub-step
    state lives only in this loop: every subject ends it on the quantum grid, at n_end.
    `step`: the integration method (`stepper.METHODS`). Returns (y, n, m, tries): tries counts the
    attempts of the batch."""
    n_start = n

    def cond(c):
        return jnp.any(c[1] < n_end)

    def body(c):
        yy, nn, mm, k, sub = c
        past_transient = since_dose_min + (nn - n_start) * h >= DOSE_TRANSIENT_MIN
        yy, nn, mm, _, sub = _counted_try(model, atol, yy, nn, mm, n_end, nn < n_end, p, h, max_m, step,
                                          sub=sub, may_split=past_transient)
        return yy, nn, mm, k + 1, sub

    y, n, m, tries, _ = jax.lax.while_loop(cond, body, (y, n, m, jnp.asarray(0, jnp.int64), _no_substeps(n)))
    return y, n, m, tries


def through_phases(model: Model, atol, y, n, m, state, p, n_window: int, n_phases, start, end, widths: tuple,
                   h, step=ros34pw2_step, together: bool = False):
    """Take every subject of a batch through a window of `n_window` phases of a timeline, each at its
    own pace, in one loop of step tries (traceable; the behaviour layer's courses and animal
    experiments). A phase begins with what happens at once (a decision, doses) and lasts a whole
    number of quanta; a subject at the end of its phase records it and begins its next one in the
    same try in which the others go on stepping.

    `start(y, state, k)`, k the phase each subject begins (shape (S,)), returns (y, state, quanta,
    dosed, since_dose_min, recs): the state after the phase's doses, the phase's length, whether the
    subject was dosed (its step goes back to one quantum), minutes since its last dose (0 if dosed:
    sub-steps are kept out of DOSE_TRANSIENT_MIN after it, as in `advance_to`) and the phase's
    records, one (S, width) array per entry of `widths`. It is computed for the whole batch and kept
    for the subjects beginning a phase. `end(y, state, recs)` returns (state, recs) at a phase's end,
    before it is recorded (None: nothing happens then). `n_phases` (a scalar or per subject): how
    many of the window's phases are real; the rest pad it and are not run.

    Why not a phase at a time for the whole batch (`advance_to`): each phase then lasts as many tries
    as its slowest subject needs, so one fresh IV use in a batch makes every subject pay that use's
    tries (docs/guide/11-engine.md, *Courses and animal experiments go at each subject's pace*).
    A subject takes the steps and draws it would take alone; `together` (the baseline of
    benchmarks/bench_pace.py) holds every subject at a phase's end until the whole batch is there,
    which takes the same steps in as many tries as a phase at a time. Returns (y, n, m, state,
    recs), recs one (n_window, S, width) array per width."""
    n_sub = y.shape[0]
    rows = jnp.arange(n_sub)
    n_phases = jnp.broadcast_to(n_phases, (n_sub,))
    pending = tuple(jnp.zeros((n_sub, w), dtype=y.dtype) for w in widths)
    # per subject: the phase it is in (−1: none yet), where it began and ends, whether it began with a
    # dose and the minutes since the last one then, its longest step, and its records to come
    c = dict(y=y, n=n, m=m, state=state, sub=_no_substeps(n), phase=jnp.full((n_sub,), -1, dtype=jnp.int64),
             n_start=n, n_end=n, since=jnp.zeros((n_sub,), dtype=y.dtype), max_m=jnp.ones_like(n),
             pending=pending, recs=tuple(jnp.zeros((n_window,) + r.shape, dtype=y.dtype) for r in pending))

    def cond(c):
        return jnp.any(c["phase"] < n_phases)

    def body(c):
        c = dict(c)
        y, n, phase = c["y"], c["n"], c["phase"]
        # -- a subject at the end of its phase records it ---------------------------------------------
        ended = (n >= c["n_end"]) & (phase < n_phases)
        if together:
            ended = ended & jnp.all((n >= c["n_end"]) | (phase >= n_phases))
        finished = ended & (phase >= 0)
        state, pending = c["state"], c["pending"]
        if end is not None:
            state_e, pending_e = end(y, state, pending)
            state = jax.tree.map(lambda new, old: _where_rows(finished, new, old), state_e, state)
            pending = tuple(_where_rows(finished, new, old) for new, old in zip(pending_e, pending))
        row = jnp.maximum(phase, 0)
        c["recs"] = tuple(r.at[row, rows].set(_where_rows(finished, new, r[row, rows]))
                          for r, new in zip(c["recs"], pending))
        # -- and begins its next one -----------------------------------------------------------------
        phase = jnp.where(ended, phase + 1, phase)
        starts = ended & (phase < n_phases)
        y_s, state_s, quanta, dosed, since, pending_s = start(y, state, jnp.minimum(phase, n_window - 1))
        c.update(y=_where_rows(starts, y_s, y),
                 state=jax.tree.map(lambda new, old: _where_rows(starts, new, old), state_s, state),
                 pending=tuple(_where_rows(starts, new, old) for new, old in zip(pending_s, pending)),
                 phase=phase, n_start=jnp.where(starts, n, c["n_start"]),
                 n_end=jnp.where(starts, n + quanta, c["n_end"]), since=jnp.where(starts, since, c["since"]),
                 m=jnp.where(starts & dosed, 1, c["m"]), max_m=jnp.where(starts, jnp.maximum(quanta, 1), c["max_m"]))
        # -- one step try for every subject inside its phase -----------------------------------------
        past_transient = c["since"] + (n - c["n_start"]) * h >= DOSE_TRANSIENT_MIN
        c["y"], c["n"], c["m"], _, c["sub"] = _counted_try(model, atol, c["y"], n, c["m"], c["n_end"], n < c["n_end"],
                                                           p, h, c["max_m"], step, sub=c["sub"],
                                                           may_split=past_transient)
        return c

    c = jax.lax.while_loop(cond, body, c)
    return c["y"], c["n"], c["m"], c["state"], c["recs"]


def _where_rows(mask, new, old):
    """new where mask (one entry per subject, the first axis), else old."""
    return jnp.where(mask.reshape(mask.shape + (1,) * (jnp.ndim(new) - 1)), new, old)


def apply_doses(y, ptr, n, active, ev_step, ev_target, ev_amount):
    """Add every dose due at or before quantum n (at most EVENTS_PER_STEP per call) to each active
    subject's state (traceable). Returns the new (y, ptr, dosed)."""
    n_states, n_ev = y.shape[-1], ev_step.shape[1]
    dosed = jnp.zeros(y.shape[:1], dtype=bool)
    for _ in range(EVENTS_PER_STEP):
        idx = jnp.minimum(ptr, n_ev - 1)[:, None]
        due = active & (ptr < n_ev) & (jnp.take_along_axis(ev_step, idx, 1)[:, 0] <= n)
        amount = jnp.where(due, jnp.take_along_axis(ev_amount, idx, 1)[:, 0], 0.0)
        target = jnp.take_along_axis(ev_target, idx, 1)[:, 0]
        y = y + jax.nn.one_hot(target, n_states, dtype=y.dtype) * amount[:, None]
        ptr = ptr + due.astype(ptr.dtype)
        dosed = dosed | due
    return y, ptr, dosed


def _dose_and_try(model: Model, atol, y, ptr, n, m, sub, n_end, active, p, ev, h, max_m, step, rtol,
                  stages=False, span=None):
    """One attempt for every active subject toward its quantum n_end: first the doses due now
    (dosing resets the step to one quantum: a bolus starts the fastest transient there is), then
    an adaptive step never past n_end (its next record, or the last record it may span) or the
    next dose; a one-quantum step over the tolerance is redone in sub-steps (`_counted_try`) unless
    it lies within DOSE_TRANSIENT_MIN of the last dose. `sub` is the sub-step state of
    `_counted_try`; every subject is off it (k = 0) once at its record. Returns (y, ptr, n, m, sub,
    forced), forced as in `_counted_try`, and where `stages` also the state the step started from
    (after the doses) and the step's stages (`_counted_try`)."""
    ev_step, ev_target, ev_amount = ev
    n_ev = ev_step.shape[1]
    y, ptr, dosed = apply_doses(y, ptr, n, active, ev_step, ev_target, ev_amount)
    m = jnp.where(dosed, 1, m)
    nxt = jnp.where(ptr < n_ev, jnp.take_along_axis(ev_step, jnp.minimum(ptr, n_ev - 1)[:, None], 1)[:, 0], n_end)
    last = jnp.take_along_axis(ev_step, jnp.maximum(ptr - 1, 0)[:, None], 1)[:, 0]
    past_transient = (ptr == 0) | ((n - last) * h >= DOSE_TRANSIENT_MIN)
    limit = jnp.minimum(n_end, nxt)
    if span is not None:
        # (stride, n_far): a step that would reach past the record after next (n_end + stride) may
        # go on to n_far, spanning the records between (interpolated by the caller)
        stride, n_far = span
        wide = jnp.minimum(jnp.minimum(m, max_m), nxt - n) >= n_end + stride - n
        limit = jnp.where(wide, jnp.minimum(n_far, nxt), limit)
    y_start = y
    out = _counted_try(model, atol, y, n, m, limit, active, p, h, max_m, step, rtol, sub=sub,
                       may_split=past_transient, stages=stages)
    y, n, m, forced, sub = out[:5]
    if stages:
        return y, ptr, n, m, sub, forced, y_start, out[5]
    return y, ptr, n, m, sub, forced


def _no_substeps(n):
    """The sub-step state of `_counted_try` for subjects on the quantum grid (a segment starts and
    ends with every subject at a record, so the state lives only inside a segment's loop)."""
    return jnp.zeros_like(n), jnp.zeros_like(n)


#: how a compiled segment walks its records (`integrate(..., runner=...)`):
#: "queue": one while_loop in which each subject advances to its own next record and writes it
#: into its own row, so a batch costs per segment the tries of its slowest subject over the
#: segment; "barrier": the runner as first written (the benchmarks' baseline), a scan over
#: records with a while_loop per record that waits for every subject, so a batch costs per
#: record the tries of that record's slowest subject. Both take the same steps (same records,
#: bit for bit). The queue runner alone can also interpolate records (`integrate(..., dense=True)`).
RUNNERS = ("queue", "barrier")


@lru_cache(maxsize=16)
def _segment_runner(model: Model, readout_names: tuple[str, ...], step=ros34pw2_step, runner: str = "queue",
                    dense: bool = False):
    """The compiled unit. Step quantum, steps per record, the largest step and the relative
    tolerance are traced arguments, so one compilation serves every scenario with the same cohort
    size, event count and readouts, adaptive or fixed-step, at any tolerance.

    `run(y, ptr, n, m, p, ev_step, ev_target, ev_amount, h, stride, max_m, rtol, take)` integrates
    `take` (at most SEGMENT_RECORDS, traced) records from a point where every subject is at the same
    quantum, so the run's last, partial segment stops at the run's end (it integrated the whole
    segment until stop 44: 6.7 % of the bench cohort's steps fell after its 30 days, a quarter of
    a 2-day run's with hourly records); it returns
    (y, ptr, n, m, work, over, recs, record_work): work the tries of each subject, over its steps
    accepted above the tolerance (`_counted_try`), recs (records, subjects, readouts),
    record_work (records, subjects) each subject's tries up to each record (records past `take`:
    not integrated, their rows meaningless). `dense`: records inside steps (the queue runner with a
    step that has a continuous extension; `integrate`)."""
    if runner not in RUNNERS:
        raise ValueError(f"runner must be one of {RUNNERS}, got {runner!r}")
    atol = state_atol(model)

    @jax.jit
    def readouts(y, p):
        out = model.outputs(y, p)
        return jnp.stack([jnp.broadcast_to(out[r], y.shape[:1]) for r in readout_names], axis=-1)

    @jax.jit
    def run_barrier(y, ptr, n, m, p, ev_step, ev_target, ev_amount, h, stride, max_m, rtol, take):
        ev = (ev_step, ev_target, ev_amount)

        def one_try(c):
            y, ptr, n, m, sub, n_end, work, over = c
            active = n < n_end
            y, ptr, n, m, sub, forced = _dose_and_try(model, atol, y, ptr, n, m, sub, n_end, active, p, ev, h,
                                                      max_m, step, rtol)
            return y, ptr, n, m, sub, n_end, work + active.astype(work.dtype), over + forced.astype(over.dtype)

        def one_record(carry, record):
            y, ptr, n, m, work, over = carry
            # every subject starts a record at the same time; past `take` nobody moves
            n_end = jnp.max(n) + jnp.where(record < take, stride, 0)
            c = jax.lax.while_loop(lambda c: jnp.any(c[2] < c[5]), one_try,
                                   (y, ptr, n, m, _no_substeps(n), n_end, work, over))
            y, ptr, n, m, _, _, work, over = c
            return (y, ptr, n, m, work, over), (readouts(y, p), work)

        work = jnp.zeros(y.shape[:1], dtype=jnp.int64)
        over = jnp.zeros(y.shape[:1], dtype=jnp.int64)
        (y, ptr, n, m, work, over), (recs, record_work) = jax.lax.scan(
            one_record, (y, ptr, n, m, work, over), jnp.arange(SEGMENT_RECORDS))
        return y, ptr, n, m, work, over, recs, record_work

    @jax.jit
    def run_queue(y, ptr, n, m, p, ev_step, ev_target, ev_amount, h, stride, max_m, rtol, take):
        ev = (ev_step, ev_target, ev_amount)
        dense_output = step.dense if dense else None
        spans = RECORDS_PER_STEP if dense else 1
        n_sub = y.shape[0]
        rows = jnp.arange(n_sub)
        ahead = jnp.arange(spans)

        def one_try(c):
            # Each subject steps toward its own next record (n_end) and, on reaching it, keeps its
            # state in its own row of the segment's buffer and moves on to the following record; a
            # subject that has all its records idles until the segment's slowest is done. Where
            # records are interpolated (`dense`), a step that would reach past the record after
            # next goes on, up to RECORDS_PER_STEP records: it keeps its start and stages in the
            # row of the first record it passes, and the records inside it are interpolated after
            # the loop.
            y, ptr, n, m, sub, n_end, k, work, over, y_rec, record_work, spanned = c
            active = k < take
            n0 = n
            if not dense:
                y, ptr, n, m, sub, forced = _dose_and_try(model, atol, y, ptr, n, m, sub, n_end, active, p, ev, h,
                                                          max_m, step, rtol)
            else:
                n_far = n_end + (jnp.minimum(spans, take - k) - 1) * stride
                y, ptr, n, m, sub, forced, y0, us = _dose_and_try(model, atol, y, ptr, n, m, sub, n_end, active, p,
                                                                  ev, h, max_m, step, rtol, stages=True,
                                                                  span=(stride, n_far))
            work = work + active.astype(work.dtype)
            over = over + forced.astype(over.dtype)
            n_rec = n_end[None, :] + ahead[:, None] * stride  # the records a step may reach: (spans, S)
            reached = jnp.sum(active[None, :] & (n_rec <= n[None, :]), axis=0).astype(k.dtype)
            at_end = active & (n_end + jnp.maximum(reached - 1, 0) * stride == n)  # a record at the step's end
            slot = jnp.where(at_end & (reached > 0), k + reached - 1, SEGMENT_RECORDS)  # out of range: dropped
            y_rec = y_rec.at[rows, slot].set(y, mode="drop")
            record_work = record_work.at[rows, slot].set(work, mode="drop")
            if dense:
                passed = reached - at_end.astype(k.dtype)  # records strictly inside the step
                row = jnp.where(passed > 0, k, SEGMENT_RECORDS)
                n0_s, n1_s, work_s, step_s = spanned
                spanned = (n0_s.at[rows, row].set(n0, mode="drop"), n1_s.at[rows, row].set(n, mode="drop"),
                           work_s.at[rows, row].set(work, mode="drop"),
                           step_s.at[rows, row].set(jnp.concatenate([y0[:, None], jnp.moveaxis(us, 0, 1)], axis=1),
                                                    mode="drop"))
            k = k + reached
            n_end = n_end + reached * stride
            return y, ptr, n, m, sub, n_end, k, work, over, y_rec, record_work, spanned

        n_end = jnp.broadcast_to(jnp.max(n) + stride, n.shape)  # as the barrier runner: from a common start
        n_first = n_end
        k = jnp.zeros(n.shape, dtype=jnp.int64)
        work = jnp.zeros(n.shape, dtype=jnp.int64)
        over = jnp.zeros(n.shape, dtype=jnp.int64)
        # by subject, then record
        y_rec = jnp.zeros((n_sub, SEGMENT_RECORDS) + y.shape[1:], dtype=y.dtype)
        record_work = jnp.full((n_sub, SEGMENT_RECORDS), -1, dtype=jnp.int64)  # −1: not at a step's end
        if not dense:
            spanned = ()
        else:
            no_step = jnp.full((n_sub, SEGMENT_RECORDS), -1, dtype=jnp.int64)
            # a spanning step's start state and its four stages (ROS34PW2's)
            spanned = (no_step, no_step, no_step, jnp.zeros((n_sub, SEGMENT_RECORDS, 5) + y.shape[1:], y.dtype))
        c = jax.lax.while_loop(lambda c: jnp.any(c[6] < take), one_try,
                               (y, ptr, n, m, _no_substeps(n), n_end, k, work, over, y_rec, record_work, spanned))
        y, ptr, n, m, _, _, _, work, over, y_rec, record_work, spanned = c
        if dense:
            # a record not at a step's end lies inside the last spanning step that started at or
            # before it: interpolate it there
            n0_s, n1_s, work_s, step_s = spanned
            r = jnp.arange(SEGMENT_RECORDS)
            start = jax.lax.cummax(jnp.where(n1_s >= 0, r[None, :], 0), axis=1)
            inside = record_work < 0
            n0_r, n1_r = jnp.take_along_axis(n0_s, start, 1), jnp.take_along_axis(n1_s, start, 1)
            data = jnp.take_along_axis(step_s, start[:, :, None, None], 1)
            theta = ((n_first[:, None] + r[None, :] * stride - n0_r) / jnp.maximum(n1_r - n0_r, 1)).astype(y.dtype)
            ys = data[:, :, 0] + jnp.einsum("srj,srjn->srn", dense_output.weights(theta), data[:, :, 1:])
            ys = jnp.clip(ys, jnp.asarray(model.lower), jnp.asarray(model.upper))
            y_rec = jnp.where(inside[:, :, None], ys, y_rec)
            record_work = jnp.where(inside, jnp.take_along_axis(work_s, start, 1), record_work)
        # the readouts of every record at the end, one record (all subjects) at a time: the same
        # computation, on the same shapes, as the barrier runner's
        recs = jax.lax.map(lambda yr: readouts(yr, p), jnp.swapaxes(y_rec, 0, 1))
        return y, ptr, n, m, work, over, recs, jnp.swapaxes(record_work, 0, 1)

    return (run_barrier if runner == "barrier" else run_queue), readouts


@lru_cache(maxsize=16)
def _sharded_runner(model: Model, readout_names: tuple[str, ...], step, runner: str, shards: int,
                    dense: bool = False):
    """`_segment_runner`'s `run` with the batch's subjects split over the first `shards` devices
    (`devices.split_by_subject`: the same records bit for bit, about `shards` times as fast on as
    many cores). Returns (run, readouts, place)."""
    run, readouts = _segment_runner(model, readout_names, step, runner, dense)
    # (y, ptr, n, m, p, ev_step, ev_target, ev_amount) by subject; h, stride, max_m, rtol, take shared;
    # out (y, ptr, n, m, work, over) by subject, recs and record_work records first
    run, place = split_by_subject(run, shards, (0,) * 8 + (None,) * 5, (0,) * 6 + (1, 1))
    return run, readouts, place


#: per-subject integration status (coordinate `status` of the results)
STATUS_OK = 0
STATUS_FAILED = 1
STATUS_MEANINGS = "ok integration_failed"


def integrate(model: Model, grid: Grid, y0: np.ndarray, p: dict[str, np.ndarray], events: DoseEvents,
              readout_names: tuple[str, ...], progress: Callable[[float], None] | None = None, *,
              adaptive: bool = True, stats: dict | None = None, checkpoint=None, step=ros34pw2_step,
              runner: str = "queue", rtol: float = RTOL, devices: int | None = None,
              dense: bool = False) -> np.ndarray:
    """Integrate a cohort; returns records of shape (subjects, n_records, n_readouts).

    `rtol` is the relative tolerance of the adaptive step (default RTOL; the smallest step is the
    grid's quantum, see `make_grid`). `adaptive=False` takes every step at the grid step h (the
    fixed-step baseline). `stats`, if
    given, receives per subject the attempted steps ("steps"), the integration status ("status":
    STATUS_OK, or STATUS_FAILED where a state became NaN or infinite), the time in minutes of the
    first record that is not finite ("failed_at_min", NaN where none), the final state
    ("y_final") and the attempted steps between consecutive records ("record_tries", int32, (subjects,
    n_records − 1); a diagnostic, zero for records integrated before a resume) and the steps accepted
    although their error estimate exceeded the tolerance ("steps_over_tolerance": the smallest steps,
    one quantum or one of a quantum's sub-steps (`_counted_try`), which are always taken; zero
    means every step met `rtol`), and the most devices a batch was split over ("devices"). A
    failed subject does
    not stop the others (subjects never mix): its records from the failure on are NaN, and it is
    reported, not dropped.

    `checkpoint` (an `opioidsim.io.checkpoint.Checkpoint`) saves the progress between segments and
    on an interruption, and a run given a checkpoint that holds saved progress continues from it,
    to the same records bit for bit. `step`: see `_counted_try`; `runner`: see `RUNNERS` (both give
    the same records bit for bit). `devices`: how many of `jax.devices()` share each batch of
    subjects (`engine.devices`; default all of them; the same records bit for bit). `dense`: let a
    step span up to RECORDS_PER_STEP records and interpolate those inside it (`[solver] records =
    "interpolated"`; the queue runner with ROS34PW2 only; docs/guide/11-engine.md)."""
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float)) or not 0.0 < rtol < 1.0:
        raise ValueError(f"rtol must be a number between 0 and 1 (a relative tolerance), got {rtol!r}")
    n_subjects = y0.shape[0]
    n_segments = math.ceil((grid.n_records - 1) / SEGMENT_RECORDS)
    n_devices = checked_devices(devices)
    out = np.empty((n_subjects, grid.n_records, len(readout_names)))
    steps = np.zeros(n_subjects, dtype=np.int64)
    over_tol = np.zeros(n_subjects, dtype=np.int64)
    record_tries = np.zeros((n_subjects, max(0, grid.n_records - 1)), dtype=np.int32)
    status = np.zeros(n_subjects, dtype=np.int8)
    failed_at = np.full(n_subjects, np.nan)
    y_final = np.array(y0, dtype=float, copy=True)
    n_chunks = math.ceil(n_subjects / SUBJECT_CHUNK)
    work_total = max(1, n_segments * n_chunks)
    h = jnp.asarray(grid.h, dtype=jnp.float64)
    stride = jnp.asarray(grid.stride, dtype=jnp.int64)
    if dense and (runner != "queue" or not hasattr(step, "dense")):
        raise ValueError(f"records can be interpolated (dense=True) only by the queue runner with a method that "
                         f"has a continuous extension (ros34pw2), not runner={runner!r} with {step.__name__}")
    # an interpolating run's steps may span RECORDS_PER_STEP records
    max_m = jnp.asarray(grid.stride * (RECORDS_PER_STEP if dense else 1) if adaptive else 1, dtype=jnp.int64)
    rtol_arg = jnp.asarray(rtol, dtype=jnp.float64)  # traced: another tolerance does not recompile
    times = grid.record_times_min

    resume = None
    if checkpoint is not None:
        checkpoint.bind({"subjects": n_subjects, "subject_chunk": SUBJECT_CHUNK, "min_batch": MIN_BATCH,
                         "segment_records": SEGMENT_RECORDS,
                         "readouts": list(readout_names), "grid": [grid.h, grid.stride, grid.n_records],
                         "adaptive": bool(adaptive), "events": int(events.n_events), "rtol": float(rtol),
                         "method": getattr(step, "__name__", repr(step)), "dense": bool(dense)})
        resume = checkpoint.load(out)
    first_chunk = 0 if resume is None else resume["chunk"]
    if resume is not None:
        steps[:], status[:], failed_at[:] = resume["steps"], resume["status"], resume["failed_at"]
        y_final[:] = resume["y_final"]
        over_tol[:] = resume["over_tolerance"]

    def check(sl, lo, hi, y):
        """Mark subjects whose records lo..hi-1 or state are not finite; NaN their records from then."""
        recs = out[sl, lo:hi, :]
        bad_rec = ~np.isfinite(recs).all(axis=2)  # (S, records)
        bad = bad_rec.any(axis=1) | ~np.isfinite(y).all(axis=1)
        for i in np.nonzero(bad & (status[sl] == STATUS_OK))[0]:
            j = int(np.argmax(bad_rec[i])) if bad_rec[i].any() else hi - 1
            status[sl.start + i] = STATUS_FAILED
            failed_at[sl.start + i] = times[lo + j]
        for i in np.nonzero(status[sl] == STATUS_FAILED)[0]:
            k = max(lo, int(np.searchsorted(times, failed_at[sl.start + i])))
            out[sl.start + i, k:hi, :] = np.nan

    most_shards = 1
    committed = None  # the last consistent point: (chunk, segment, filled, y, ptr, n, m, work)
    try:
        for ci in range(first_chunk, n_chunks):
            c0 = ci * SUBJECT_CHUNK
            sl = slice(c0, min(n_subjects, c0 + SUBJECT_CHUNK))
            rows = sl.stop - sl.start  # the real subjects; the batch may carry copies (padded_rows)
            shards = shards_for(rows, n_devices)
            most_shards = max(most_shards, shards)
            run, readouts, place = _sharded_runner(model, tuple(readout_names), step, runner, shards, bool(dense))
            size = padded_rows(rows, shards)

            def batch(a, sl=sl, size=size):
                return pad_rows(a[sl], size)

            pc = {k: place(batch(v)) for k, v in p.items()}
            ev = (place(batch(events.step)), place(batch(events.target)), place(batch(events.amount)))
            if resume is not None and ci == resume["chunk"]:
                seg0, filled = resume["segment"], resume["filled"]
                # saved from a batch padded for this or another number of devices: the real
                # subjects, padded anew with copies of the last (which is what the padding holds)
                y, ptr, n, m = (place(pad_rows(np.asarray(resume[k])[:rows], size)) for k in ("y", "ptr", "n", "m"))
            else:
                seg0, filled = 0, 1
                y = place(batch(y0))
                ptr = place(np.zeros(size, dtype=np.int64))
                n = place(np.zeros(size, dtype=np.int64))
                m = place(np.ones(size, dtype=np.int64))
                out[sl, 0, :] = np.asarray(readouts(batch(y0), {k: batch(v) for k, v in p.items()}))[:rows]
                check(sl, 0, 1, batch(y0)[:rows])
            committed = (ci, seg0, filled, y, ptr, n, m)
            for seg in range(seg0, n_segments):
                take = min(SEGMENT_RECORDS, grid.n_records - filled)
                y, ptr, n, m, work, over, recs, record_work = run(y, ptr, n, m, pc, *ev, h, stride, max_m, rtol_arg,
                                                                  jnp.asarray(take, dtype=jnp.int64))
                tries = np.diff(np.asarray(record_work[:take, :rows]), axis=0, prepend=0)
                record_tries[sl, filled - 1:filled - 1 + take] = tries.T
                out[sl, filled:filled + take, :] = np.moveaxis(np.asarray(recs[:take, :rows]), 0, 1)
                y_host = np.asarray(y)[:rows]
                check(sl, filled, filled + take, y_host)
                steps[sl] += np.asarray(work)[:rows]
                over_tol[sl] += np.asarray(over)[:rows]
                y_final[sl] = y_host
                filled += take
                committed = (ci, seg + 1, filled, y, ptr, n, m)
                if checkpoint is not None and checkpoint.due():
                    checkpoint.save(out, _checkpoint_state(committed, steps, status, failed_at, y_final, sl, over_tol))
                if progress is not None:
                    progress((ci * n_segments + seg + 1) / work_total)
    except BaseException:
        # Ctrl-C, SIGTERM (raised as an exception by the CLI), or an error: save the last
        # consistent point, so that the run can be continued from there.
        if checkpoint is not None and committed is not None:
            ci = committed[0]
            sl = slice(ci * SUBJECT_CHUNK, min(n_subjects, (ci + 1) * SUBJECT_CHUNK))
            checkpoint.save(out, _checkpoint_state(committed, steps, status, failed_at, y_final, sl, over_tol),
                            final=True)
        raise
    if checkpoint is not None and checkpoint.saves > 0 and committed is not None:
        # a long run: keep its end too, so that a failure to write the results loses nothing
        ci = committed[0]
        sl = slice(ci * SUBJECT_CHUNK, min(n_subjects, (ci + 1) * SUBJECT_CHUNK))
        checkpoint.save(out, _checkpoint_state(committed, steps, status, failed_at, y_final, sl, over_tol), final=True)
    if stats is not None:
        stats.update(steps=steps, status=status, failed_at_min=failed_at, y_final=y_final,
                     record_tries=record_tries, steps_over_tolerance=over_tol, devices=most_shards)
    return out


def _checkpoint_state(committed, steps, status, failed_at, y_final, sl, over_tol) -> dict:
    """The arrays a checkpoint needs to continue from `committed`.

    steps/status/failed_at/y_final/over_tol of the current chunk may already hold the next segment's
    values when an interruption lands between two statements; they are only summaries (the
    records and the carried state decide the result) and a resumed run recomputes them for the
    segments it runs, so at worst a step count is off by one segment."""
    ci, seg, filled, y, ptr, n, m = committed
    return {"chunk": ci, "segment": seg, "filled": filled, "rows": (sl.start, sl.stop),
            "y": np.asarray(y), "ptr": np.asarray(ptr), "n": np.asarray(n), "m": np.asarray(m),
            "steps": steps.copy(), "status": status.copy(), "failed_at": failed_at.copy(),
            "y_final": y_final.copy(), "over_tolerance": over_tol.copy()}


def _as_scenario(scenario):
    """A Scenario from a Scenario, a built-in name or a .toml path; anything else is a ScenarioError."""
    from ..scenarios import Scenario, load_scenario

    if isinstance(scenario, (str, os.PathLike)):
        return load_scenario(scenario)
    if not isinstance(scenario, Scenario):
        from ..errors import ScenarioError

        raise ScenarioError("<scenario>", scenario, "give a Scenario, a built-in scenario name or the path "
                            "to a .toml file", message=f"simulate() needs a Scenario, a built-in scenario name "
                            f"or the path to a .toml file, not {type(scenario).__name__}")
    return scenario


def solver_settings(scenario) -> tuple[float, float]:
    """(relative tolerance, smallest step in minutes) of a scenario: its [solver] table where it sets
    them, else RTOL and QUANTUM_MIN (the very same floats, so a scenario without [solver] runs
    bit for bit as before the table existed)."""
    solver = getattr(scenario, "solver", None)
    rtol = getattr(solver, "rtol", None)
    step = getattr(solver, "smallest_step_min", None)
    return (RTOL if rtol is None else float(rtol)), (QUANTUM_MIN if step is None else float(step))


def solver_method(scenario) -> str:
    """The name of a scenario's integration method: its [solver] method, else the default
    (`SOLVER_METHODS[0]`, ROS34PW2)."""
    method = getattr(getattr(scenario, "solver", None), "method", None)
    return SOLVER_METHODS[0] if method is None else method


def _records_asked(scenario) -> str:
    """A scenario's [solver] records as written ("auto" where it says nothing)."""
    return getattr(getattr(scenario, "solver", None), "records", None) or SOLVER_RECORDS[0]


def solver_records(scenario) -> str:
    """How a scenario's records are taken, "stepped" or "interpolated": its [solver] records, where
    "auto" (the default) interpolates records AUTO_INTERPOLATE_MAX_MIN apart or closer with a method
    that can (ROS34PW2), else steps to them."""
    records = _records_asked(scenario)
    if records != "auto":
        return records
    dense = scenario.record_every_min <= AUTO_INTERPOLATE_MAX_MIN and hasattr(solver_step(scenario), "dense")
    return "interpolated" if dense else "stepped"


def solver_step_rtol(scenario) -> float:
    """The tolerance every step of a scenario's run meets: its rtol (`solver_settings`), a thirtieth
    of it where "auto" chose to interpolate the records (AUTO_RTOL_DIVISOR), rounded to 12
    significant digits (1e-4, not 1.0000000000000001e-4, in the results' attributes)."""
    rtol = solver_settings(scenario)[0]
    auto = _records_asked(scenario) == "auto" and solver_records(scenario) == "interpolated"
    return float(f"{rtol / AUTO_RTOL_DIVISOR:.12g}") if auto else rtol


def integrate_settings(scenario) -> dict:
    """`integrate`'s keyword arguments for a scenario's [solver] table: the steps' tolerance, the
    method's step and whether records are interpolated (one place, so every caller runs a scenario as
    `simulate` does)."""
    return {"rtol": solver_step_rtol(scenario), "step": solver_step(scenario),
            "dense": solver_records(scenario) == "interpolated"}


def solver_step(scenario):
    """The step function of a scenario's integration method (`stepper.METHODS`)."""
    return METHODS[solver_method(scenario)]


def scenario_grid(scenario) -> Grid:
    """The time grid `simulate` uses for a scenario (its smallest step from `solver_settings`)."""
    return make_grid(scenario.duration_min, scenario.record_every_min, solver_settings(scenario)[1])


def run_model(scenario, model: Model | None = None):
    """The model `simulate` integrates for a scenario: `model` (the default one if None) without
    the drug states none of the scenario's doses reaches (engine/inert.py)."""
    return for_targets(model or default_model(), dose_targets(scenario.doses))


def _setup(scenario, model: Model, subjects: range):
    """Grid, per-subject parameters, dose events and readout names of `subjects` of the cohort."""
    grid = scenario_grid(scenario)
    p = subject_parameters(model, scenario, len(subjects), scenario.cohort.seed, first=subjects.start)
    events = compile_doses(model, scenario.doses, scenario.duration_min, grid.h, p)
    names = tuple(scenario.readouts) if scenario.readouts else model.readouts
    return grid, p, events, names


def simulate(scenario, *, progress: Callable[[float], None] | None = None, model: Model | None = None,
             subjects: range | None = None, checkpoint=None, devices: int | None = None) -> xr.Dataset:
    """Run a scenario for its whole cohort (or the subjects in `subjects`, a range of indices);
    returns readouts over (subject, time), with each subject's integration `status`.

    Subject i is the same in any part of the cohort (its parameters depend only on the seed and
    i), so running the cohort in pieces and concatenating them along `subject` gives the whole (bit
    for bit in pieces of 32 or more: docs/guide/09-large-cohorts.md).
    A built-in name or a .toml path is loaded first; anything else is a ScenarioError.
    `devices`: how many of JAX's devices share each batch (engine/devices.py; default all, one
    per core on CPU; the same results bit for bit)."""
    scenario = _as_scenario(scenario)
    model = run_model(scenario, model)
    n_subjects = scenario.cohort.subjects
    if subjects is None:
        subjects = range(n_subjects)
    if subjects.step != 1 or not 0 <= subjects.start <= subjects.stop <= n_subjects:
        raise ValueError(f"subjects must be a range with step 1 within 0…{n_subjects}, got {subjects}")
    grid, p, events, names = _setup(scenario, model, subjects)
    y0 = model.initial_state(p)
    stats: dict = {}
    recs = integrate(model, grid, y0, p, events, names, progress, stats=stats, checkpoint=checkpoint,
                     devices=devices, **integrate_settings(scenario))
    return to_dataset(recs, names, grid, p, scenario, events, stats=stats, first=subjects.start)


def result_template(scenario, *, model: Model | None = None) -> xr.Dataset:
    """The Dataset `simulate(scenario)` returns, for no subject: every variable, coordinate,
    dtype and attribute, with a `subject` dimension of length 0 and nothing integrated.

    It lays out a results store (Zarr) for the whole cohort before any subject is run."""
    scenario = _as_scenario(scenario)
    model = model or default_model()
    grid, p, events, names = _setup(scenario, model, range(0))
    return to_dataset(np.empty((0, grid.n_records, len(names))), names, grid, p, scenario, events)


def to_dataset(recs: np.ndarray, names, grid: Grid, p, scenario, events: DoseEvents, *,
               stats: dict | None = None, first: int = 0) -> xr.Dataset:
    from .. import __version__

    time = (grid.record_times_min * 60e9).round().astype("timedelta64[ns]")
    data_vars = {}
    for i, name in enumerate(names):
        r = READOUTS[name]
        data_vars[name] = xr.Variable(("subject", "time"), recs[:, :, i],
                                      attrs={"units": r.units, "long_name": r.long_name})
    n = recs.shape[0]
    status = np.zeros(n, dtype=np.int8) if stats is None else np.asarray(stats["status"], dtype=np.int8)
    failed_at = np.full(n, np.nan) if stats is None else np.asarray(stats["failed_at_min"], dtype=float)
    over = np.zeros(n, dtype=np.int64) if stats is None else np.asarray(stats["steps_over_tolerance"], dtype=np.int64)
    rtol, smallest_step = solver_settings(scenario)
    coords = {"subject": np.arange(first, first + n), "time": time,
              "status": ("subject", status, {
                  "long_name": "integration status of the subject", "flag_values": np.array([0, 1], np.int8),
                  "flag_meanings": STATUS_MEANINGS}),
              "failed_at_min": ("subject", failed_at, {
                  "units": "min", "long_name": "time of the first record that is not finite (NaN: none)"}),
              "steps_over_tolerance": ("subject", over, {
                  "long_name": "steps of the smallest size (a quantum or a quantum's sub-step) accepted with "
                               "an error estimate above the tolerance (0: every step met solver_step_rtol)"}),
              "weight_kg": ("subject", np.asarray(p["body_weight"]) / 1e6, {"units": "kg", "long_name": "body weight"}),
              "oprm1_a118g_g_carrier": ("subject", np.asarray(p["oprm1_g_carrier"]).astype(np.int8),
                                        {"long_name": "OPRM1 A118G G-allele carrier (0/1)"}),
              "drd2_taq1a_a1_carrier": ("subject", np.asarray(p["drd2_a1_carrier"]).astype(np.int8),
                                        {"long_name": "DRD2 Taq1A A1-allele carrier (0/1)"})}
    ds = xr.Dataset(data_vars, coords=coords)
    ds.attrs.update({
        "scenario_name": scenario.name,
        "description": scenario.description,
        "opioidsim_version": __version__,
        "seed": int(scenario.cohort.seed),
        "scenario_toml": scenario.to_toml(),
        "dose_times_min": [float(t) for t in events.times_min],
        "integration_step_min": grid.h,
        # the accuracy asked for ([solver] or the defaults); integration_step_min is the quantum used
        "solver_rtol": rtol,
        "solver_smallest_step_min": smallest_step,
        "solver_method": solver_method(scenario),
        "solver_records": solver_records(scenario),
        # what every step met: solver_rtol, or a thirtieth of it where "auto" interpolated the records
        "solver_step_rtol": solver_step_rtol(scenario),
        "research_notice": "opioidsim is a research and teaching tool, never a dosing guide.",
        "subjects_failed": int((status != STATUS_OK).sum()),
    })
    return ds
