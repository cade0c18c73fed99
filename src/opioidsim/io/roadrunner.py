"""Simulate an exported SBML model (`opioidsim.io.sbml`) in libRoadRunner, one subject at a time.

An independent simulator of the same equations (CVODE, compiled by LLVM from the SBML text), used
by the cross-check tests and by `opioidsim bench`. One RoadRunner instance serves a whole cohort:
per subject it is reset, given the subject's parameters and initial state, and run over the
record times; the doses are the SBML events (their bioavailability is a parameter, so it follows
the subject).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .sbml import SbmlExport

#: CVODE tolerances (tight: the cross-check's yardstick must be far more accurate than 1e-3); the
#: absolute one is per state, as the Radau reference's (engine/reference.py)
RTOL = 1e-9
ATOL = 1e-10


def _checked_readouts(export: SbmlExport, readouts: Sequence[str] | None) -> tuple[str, ...]:
    """The readouts to record (all the export has, by default); unknown names are a ValueError."""
    chosen = tuple(readouts) if readouts is not None else tuple(export.readout_ids)
    unknown = [r for r in chosen if r not in export.readout_ids]
    if unknown:
        raise ValueError(f"readouts {unknown} are not in the exported model")
    return chosen


class RoadRunnerModel:
    """A compiled RoadRunner instance of an exported model, recording `readouts`."""

    def __init__(self, export: SbmlExport, readouts: Sequence[str] | None = None, *, rtol: float = RTOL,
                 atol: float = ATOL, max_steps: int = 1_000_000):
        import roadrunner

        self.export, self.rtol, self.atol = export, rtol, atol
        self.readouts = _checked_readouts(export, readouts)
        self.rr = roadrunner.RoadRunner(export.xml)
        integ = self.rr.integrator
        integ.relative_tolerance = rtol
        # one absolute tolerance per state, set explicitly: from a single value RoadRunner derives
        # each state's by scaling with its value, which is 0 for every drug amount before a dose,
        # and CVODE then stalls on the first dose (step size ~1e-16 min)
        for sid in export.state_ids.values():
            integ.setIndividualTolerance(sid, atol)
        integ.maximum_num_steps = max_steps
        self.rr.timeCourseSelections = ["time"] + [export.readout_ids[r] for r in self.readouts]

    def simulate(self, times_min: np.ndarray, params: Mapping[str, float] | None = None,
                 initial_state: Mapping[str, float] | None = None) -> np.ndarray:
        """Readouts at `times_min` (starting at 0), shape (len(times), len(readouts)); `params` (model
        parameter name -> value, internal units) and `initial_state` (model state name -> value)
        replace the exported subject's."""
        rr = self.rr
        rr.reset()  # time, states and events; not global parameters, so every one is set below
        values = dict(self.export.parameter_values)
        for k, v in (params or {}).items():
            values[self.export.parameter_ids[k]] = float(v)
        state = dict(self.export.initial_state)
        for k, v in (initial_state or {}).items():
            state[self.export.state_ids[k]] = float(v)
        rr.setValues(list(values) + list(state), list(values.values()) + list(state.values()))
        times = np.asarray(times_min, dtype=float)
        if times[0] != 0.0:
            raise ValueError("record times must start at 0")
        out = rr.simulate(times=list(times))
        return np.asarray(out)[:, 1:]

    def simulate_cohort(self, times_min: np.ndarray, params: Mapping[str, np.ndarray], y0: np.ndarray,
                        state_names: Sequence[str], subjects: Sequence[int] | None = None) -> np.ndarray:
        """Records (subjects, times, readouts) for per-subject `params` (arrays over the cohort) and
        initial states `y0` (subjects, states) ordered as `state_names`."""
        subjects = range(y0.shape[0]) if subjects is None else subjects
        names = [k for k in params if k in self.export.parameter_ids]
        out = np.empty((len(subjects), len(times_min), len(self.readouts)))
        for j, s in enumerate(subjects):
            out[j] = self.simulate(times_min, {k: params[k][s] for k in names},
                                   dict(zip(state_names, y0[s])))
        return out


# --- libRoadRunner in a process of its own -------------------------------------------------
# libRoadRunner carries its own LLVM. With it loaded in the same process as JAX, XLA aborted the
# process while serialising a freshly compiled executable for the persistent compilation cache
# (`Fatal Python error: Aborted` in `executable.serialize()`, twice at the same place of a full
# `make test`, after the SBML tests had loaded libRoadRunner). `IsolatedRoadRunner` keeps
# libRoadRunner out of the caller's process: one spawned child holds the compiled model.

_CHILD: "RoadRunnerModel | None" = None
_CHILD_COMPILE_S = 0.0


def _child_init(export: SbmlExport, readouts, rtol: float, atol: float, max_steps: int) -> None:
    import time

    global _CHILD, _CHILD_COMPILE_S  # the child process's one model (it lives only there)
    t0 = time.perf_counter()
    _CHILD = RoadRunnerModel(export, readouts, rtol=rtol, atol=atol, max_steps=max_steps)
    _CHILD_COMPILE_S = time.perf_counter() - t0


def _child_call(method: str, args: tuple, kwargs: dict):
    import time

    t0 = time.perf_counter()
    out = getattr(_CHILD, method)(*args, **kwargs)
    return out, time.perf_counter() - t0, _CHILD_COMPILE_S


class IsolatedRoadRunner:
    """`RoadRunnerModel` run in a spawned child process, with the same `simulate` and
    `simulate_cohort`. `compile_s` is the child's model build (LLVM compilation) and `last_run_s`
    the child's own time for the last call (no transfer). Close it (or use it as a context
    manager) to end the child."""

    def __init__(self, export: SbmlExport, readouts: Sequence[str] | None = None, *, rtol: float = RTOL,
                 atol: float = ATOL, max_steps: int = 1_000_000):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.export, self.rtol, self.atol = export, rtol, atol
        self.readouts = _checked_readouts(export, readouts)
        self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_child_init,
                                         initargs=(export, self.readouts, rtol, atol, max_steps))
        self.compile_s = float("nan")
        self.last_run_s = float("nan")

    def _call(self, method: str, *args, **kwargs):
        out, self.last_run_s, self.compile_s = self._pool.submit(_child_call, method, args, kwargs).result()
        return out

    def simulate(self, times_min: np.ndarray, params: Mapping[str, float] | None = None,
                 initial_state: Mapping[str, float] | None = None) -> np.ndarray:
        return self._call("simulate", times_min, params, initial_state)

    def simulate_cohort(self, times_min: np.ndarray, params: Mapping[str, np.ndarray], y0: np.ndarray,
                        state_names: Sequence[str], subjects: Sequence[int] | None = None) -> np.ndarray:
        return self._call("simulate_cohort", times_min, params, y0, state_names, subjects)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __enter__(self) -> "IsolatedRoadRunner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
