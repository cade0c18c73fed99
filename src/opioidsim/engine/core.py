"""Batched simulation: a scenario in, an xarray Dataset out.

Time stepping: the fast physiology advances in steps of h ≤ `MAX_STEP_MIN` with the ROS2 step;
records are taken every `stride` steps (record_every = stride·h). The compiled unit is one
*segment* — a `lax.scan` over records, each a `fori_loop` over steps — reused for every segment
and every subject chunk of the same shape, so a long run compiles once and reports progress
between segments. Subjects are processed in chunks to bound memory.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import jax

# The integrator compares against a Radau reference at 1e-8 tolerance: keep 64-bit floats.
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from ..model.model import Model, default_model  # noqa: E402
from ..params import sample_parameters  # noqa: E402
from ..readouts import READOUTS  # noqa: E402
from .dosing import EVENTS_PER_STEP, DoseEvents, compile_doses  # noqa: E402
from .stepper import make_step  # noqa: E402

MAX_STEP_MIN = 0.25  # fast-physiology step (15 s); see README "Engine" for the accuracy check
SUBJECT_CHUNK = 4096
TARGET_STEPS_PER_SEGMENT = 20_000


@dataclass(frozen=True)
class Grid:
    h: float  # step, min
    stride: int  # steps per record
    n_records: int  # including t = 0

    @property
    def record_times_min(self) -> np.ndarray:
        return np.arange(self.n_records) * self.stride * self.h


def make_grid(duration_min: float, record_every_min: float, max_step: float = MAX_STEP_MIN) -> Grid:
    stride = max(1, math.ceil(record_every_min / max_step - 1e-9))
    h = record_every_min / stride
    n_records = int(math.floor(duration_min / record_every_min + 1e-9)) + 1
    return Grid(h, stride, n_records)


def subject_parameters(model: Model, scenario, n_subjects: int, seed: int, *, variability: bool = True
                       ) -> dict[str, np.ndarray]:
    """Per-subject parameter values in internal units; `variability=False` gives typical subjects."""
    rng = np.random.default_rng(seed)
    p = sample_parameters(model.parameters, n_subjects, rng)
    if not variability:
        p = {k: np.full(n_subjects, v.internal_value) for k, v in model.parameters.items()}
    # Scenario conditions override the parameter of the same name for every subject.
    p["pain_stimulus"] = np.full(n_subjects, float(scenario.conditions.pain_stimulus))
    return p


@lru_cache(maxsize=16)
def _segment_runner(model: Model, h: float, stride: int, n_records: int, readout_names: tuple[str, ...]):
    step = make_step(model, h)
    n_states = model.n_states

    def apply_doses(y, ptr, n, ev_step, ev_target, ev_amount):
        n_ev = ev_step.shape[1]
        for _ in range(EVENTS_PER_STEP):
            idx = jnp.minimum(ptr, n_ev - 1)[:, None]
            due = (ptr < n_ev) & (jnp.take_along_axis(ev_step, idx, 1)[:, 0] <= n)
            amount = jnp.where(due, jnp.take_along_axis(ev_amount, idx, 1)[:, 0], 0.0)
            target = jnp.take_along_axis(ev_target, idx, 1)[:, 0]
            y = y + jax.nn.one_hot(target, n_states, dtype=y.dtype) * amount[:, None]
            ptr = ptr + due.astype(ptr.dtype)
        return y, ptr

    def readouts(y, p):
        out = model.outputs(y, p)
        return jnp.stack([out[r] for r in readout_names], axis=-1)

    @jax.jit
    def run(y, ptr, n0, p, ev_step, ev_target, ev_amount):
        def one_record(carry, _):
            def one_step(_, c):
                y, ptr, n = c
                y, ptr = apply_doses(y, ptr, n, ev_step, ev_target, ev_amount)
                return step(n * h, y, p), ptr, n + 1

            carry = jax.lax.fori_loop(0, stride, one_step, carry)
            return carry, readouts(carry[0], p)

        (y, ptr, n), recs = jax.lax.scan(one_record, (y, ptr, n0), None, length=n_records)
        return y, ptr, n, recs

    return run, readouts


def integrate(model: Model, grid: Grid, y0: np.ndarray, p: dict[str, np.ndarray], events: DoseEvents,
              readout_names: tuple[str, ...], progress: Callable[[float], None] | None = None) -> np.ndarray:
    """Integrate a cohort; returns records of shape (subjects, n_records, n_readouts)."""
    n_subjects = y0.shape[0]
    steps_total = (grid.n_records - 1) * grid.stride
    seg_records = max(1, min(grid.n_records - 1, TARGET_STEPS_PER_SEGMENT // grid.stride)) if grid.n_records > 1 else 1
    n_segments = math.ceil((grid.n_records - 1) / seg_records) if grid.n_records > 1 else 0
    run, readouts = _segment_runner(model, grid.h, grid.stride, seg_records, readout_names)
    out = np.empty((n_subjects, grid.n_records, len(readout_names)))
    work_total = max(1, n_segments * math.ceil(n_subjects / SUBJECT_CHUNK))
    done = 0
    for c0 in range(0, n_subjects, SUBJECT_CHUNK):
        sl = slice(c0, min(n_subjects, c0 + SUBJECT_CHUNK))
        pc = {k: jnp.asarray(v[sl]) for k, v in p.items()}
        y = jnp.asarray(y0[sl])
        ptr = jnp.zeros(y.shape[0], dtype=jnp.int64)
        n = jnp.asarray(0, dtype=jnp.int64)
        ev = (jnp.asarray(events.step[sl]), jnp.asarray(events.target[sl]), jnp.asarray(events.amount[sl]))
        out[sl, 0, :] = np.asarray(readouts(y, pc))
        filled = 1
        for _ in range(n_segments):
            y, ptr, n, recs = run(y, ptr, n, pc, *ev)
            take = min(seg_records, grid.n_records - filled)
            out[sl, filled:filled + take, :] = np.moveaxis(np.asarray(recs[:take]), 0, 1)
            filled += take
            done += 1
            if progress is not None:
                progress(done / work_total)
    del steps_total
    return out


def simulate(scenario, *, progress: Callable[[float], None] | None = None, model: Model | None = None) -> xr.Dataset:
    """Run a scenario for its whole cohort; returns readouts over (subject, time)."""
    model = model or default_model()
    n_subjects, seed = scenario.cohort.subjects, scenario.cohort.seed
    grid = make_grid(scenario.duration_min, scenario.record_every_min)
    p = subject_parameters(model, scenario, n_subjects, seed)
    events = compile_doses(model, scenario.doses, scenario.duration_min, grid.h, p)
    y0 = model.initial_state(p)
    names = tuple(scenario.readouts) if scenario.readouts else model.readouts
    recs = integrate(model, grid, y0, p, events, names, progress)
    return to_dataset(recs, names, grid, p, scenario, events)


def to_dataset(recs: np.ndarray, names, grid: Grid, p, scenario, events: DoseEvents) -> xr.Dataset:
    from .. import __version__

    time = (grid.record_times_min * 60e9).round().astype("timedelta64[ns]")
    data_vars = {}
    for i, name in enumerate(names):
        r = READOUTS[name]
        data_vars[name] = xr.Variable(("subject", "time"), recs[:, :, i],
                                      attrs={"units": r.units, "long_name": r.long_name})
    coords = {"subject": np.arange(recs.shape[0]), "time": time,
              "weight_kg": ("subject", np.asarray(p["body_weight"]) / 1e6, {"units": "kg", "long_name": "body weight"})}
    ds = xr.Dataset(data_vars, coords=coords)
    ds.attrs.update({
        "scenario_name": scenario.name,
        "description": scenario.description,
        "opioidsim_version": __version__,
        "seed": int(scenario.cohort.seed),
        "scenario_toml": scenario.to_toml(),
        "dose_times_min": [float(t) for t in events.times_min],
        "integration_step_min": grid.h,
        "research_notice": "opioidsim is a research and teaching tool, never a dosing guide.",
    })
    return ds
