"""A paradigm as a timeline of decision steps: what the box offers at each step.

Sessions are cut into steps of `decide_every`; the home cage between them into steps of the
scenario's `record_every` (the subject has nothing to decide there), the last one shortened so
that every session starts on time. Every step is a whole number of the engine's time quantum.
The arrays are shared by all subjects: the schedule is the experimenter's, the choices are the
subjects'.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..engine.core import QUANTUM_MIN
from ..scenarios.paradigm import DAY_MIN, Paradigm, Phase, per_kg

#: context codes (what the subject is in during a step)
HOME, CHAMBER, CPP_DRUG_SIDE, CPP_VEHICLE_SIDE, CPP_TEST = 0, 1, 2, 3, 4
#: minutes of intermittent footshock at the start of a footshock reinstatement test (Shaham Y et al.
#: 1997 Psychopharmacology 134:23 and Ahmed 2000: 10-15 min of intermittent 0.5-0.6 mA shock)
FOOTSHOCK_MIN = 15.0


def progressive_ratio(k: int) -> int:
    """The k-th ratio (k = 0, 1, …) of Richardson NR & Roberts DCS 1996 J Neurosci Methods 66:1:
    round(5·e^(0.2·(k+1)) − 5): 1, 2, 4, 6, 9, 12, 15, 20, 25, 32, …"""
    return int(round(5.0 * math.exp(0.2 * (k + 1)) - 5.0))


@dataclass(frozen=True)
class Timeline:
    quanta: np.ndarray  # (E,) int64, step length in engine quanta
    start_min: np.ndarray  # (E,) float, step start time
    session: np.ndarray  # (E,) int64, session index, -1 outside sessions
    lever: np.ndarray  # (E,) float 0/1: the lever is in the box
    reinforced: np.ndarray  # (E,) float 0/1: completing the ratio delivers an infusion
    ratio: np.ndarray  # (E,) int64: fixed ratio; 0 = progressive ratio
    timeout_steps: np.ndarray  # (E,) int64: steps of time-out after an infusion
    cue: np.ndarray  # (E,) float 0/1: a discrete cue follows each infusion (or press, in a cue test)
    shock: np.ndarray  # (E,) float 0/1: footshock during this step
    experimenter_mg_per_kg: np.ndarray  # (E,) float: dose given by the experimenter at the step start
    context: np.ndarray  # (E,) int64: HOME, CHAMBER, CPP_* codes
    sessions: list  # per session: dict(phase, kind, start_min, length_min, trigger)

    @property
    def n_steps(self) -> int:
        return len(self.quanta)

    @property
    def session_start(self) -> np.ndarray:
        """(E,) float 0/1: the first step of a session (the ratio counter starts again)."""
        prev = np.concatenate([[-1], self.session[:-1]])
        return ((self.session >= 0) & (self.session != prev)).astype(float)


def _q(minutes: float) -> int:
    return int(round(minutes / QUANTUM_MIN))


def compile_timeline(paradigm: Paradigm, record_every_min: float) -> Timeline:
    rows: list[tuple] = []  # (quanta, session, lever, reinforced, ratio, timeout, cue, shock, dose, context)
    sessions: list[dict] = []
    decide_q = max(1, _q(paradigm.decide_every_min))
    home_q = max(decide_q, _q(record_every_min))
    t_q = 0

    def home(until_q: int) -> None:
        nonlocal t_q
        while t_q < until_q:
            q = min(home_q, until_q - t_q)
            rows.append((q, -1, 0.0, 0.0, 1, 0, 0.0, 0.0, 0.0, HOME))
            t_q += q

    for pi, phase in enumerate(paradigm.phases):
        phase_start = t_q
        if phase.kind == "abstinence":
            home(phase_start + _q(phase.length_min))
            continue
        slot_q = _q(DAY_MIN / phase.sessions_per_day)
        for k in range(phase.sessions):
            s_start = phase_start + k * slot_q
            home(s_start)
            sessions.append(_session_info(pi, phase, k, t_q))
            length_q = _q(phase.session_length_min)
            rows.extend(_session_rows(phase, k, len(sessions) - 1, length_q, decide_q))
            t_q += length_q
        home(phase_start + _q(phase.length_min))
    a = list(zip(*rows))
    quanta = np.array(a[0], dtype=np.int64)
    start = np.concatenate([[0], np.cumsum(quanta)[:-1]]) * QUANTUM_MIN
    return Timeline(quanta, start, np.array(a[1], np.int64), np.array(a[2]), np.array(a[3]),
                    np.array(a[4], np.int64), np.array(a[5], np.int64), np.array(a[6]), np.array(a[7]),
                    np.array(a[8]), np.array(a[9], np.int64), sessions)


def _session_info(pi: int, phase: Phase, k: int, t_q: int) -> dict:
    kind = phase.kind
    if kind == "cpp_conditioning":
        kind = "cpp_drug" if k % 2 == 0 else "cpp_vehicle"
    return {"phase": pi, "kind": kind, "start_min": t_q * QUANTUM_MIN, "length_min": phase.session_length_min,
            "trigger": phase.trigger or ""}


def _session_rows(phase: Phase, k: int, index: int, length_q: int, decide_q: int) -> list:
    kind = phase.kind
    # a time-out shorter than a decision step ends within the step of the infusion
    timeout_steps = int(math.floor(_q(phase.timeout_min) / decide_q + 1e-9))
    rows = []
    done = 0
    while done < length_q:
        q = min(decide_q, length_q - done)
        first = done == 0
        minute = done * QUANTUM_MIN
        lever, reinforced, ratio, cue, shock, dose, ctx = 0.0, 0.0, 1, 0.0, 0.0, 0.0, CHAMBER
        if kind in ("self_administration", "progressive_ratio"):
            lever, reinforced = 1.0, 1.0
            ratio = phase.ratio if kind == "self_administration" else 0
            cue = float(phase.cue)
        elif kind == "extinction":
            lever = 1.0
        elif kind == "reinstatement":
            lever = 1.0
            if phase.trigger == "cue":
                cue = 1.0
            elif phase.trigger == "footshock":
                shock = 1.0 if minute < FOOTSHOCK_MIN else 0.0
            elif phase.trigger == "priming" and first:
                dose = per_kg(phase.priming_dose, "", zero=True)
        elif kind == "cpp_conditioning":
            drug_day = k % 2 == 0
            ctx = CPP_DRUG_SIDE if drug_day else CPP_VEHICLE_SIDE
            if drug_day and first:
                dose = per_kg(phase.dose, "", zero=True)
        elif kind == "cpp_test":
            ctx = CPP_TEST
        rows.append((q, index, lever, reinforced, ratio, timeout_steps, cue, shock, dose, ctx))
        done += q
    return rows
