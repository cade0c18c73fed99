"""Doses as inputs: scenario doses become per-subject event arrays the compiled loop reads.

Each dose is snapped to the integration grid (a multiple of the step h), targeted at the state
its route feeds (see `model.pk.DOSE_TARGETS`) and scaled by the subject's bioavailability.
The compiled loop walks the sorted events with a pointer per subject: no Python branches and no
per-step scan over all events.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model.model import Model
from ..model.pk import DOSE_TARGETS

#: the compiled loop applies at most this many events per subject in one step
EVENTS_PER_STEP = 4


@dataclass(frozen=True)
class DoseEvents:
    step: np.ndarray  # (S, E) int64, the step index at which each dose is given; padded with a huge value
    target: np.ndarray  # (S, E) int32, state index
    amount: np.ndarray  # (S, E) float, mg entering the target state
    times_min: np.ndarray  # (E,) the snapped dose times, for reports

    @property
    def n_events(self) -> int:
        return self.step.shape[1]


def dose_targets(doses) -> frozenset:
    """The states the doses enter (their route's depot, or the central compartment for IV)."""
    return frozenset(DOSE_TARGETS[(d.drug, d.route)][0] for d in doses)


def compile_doses(model: Model, doses, duration_min: float, h: float, params: dict[str, np.ndarray]) -> DoseEvents:
    n_subjects = len(next(iter(params.values())))
    rows: list[tuple[int, int, str | None, float]] = []
    for dose in doses:
        target, fraction, _ka = DOSE_TARGETS[(dose.drug, dose.route)]
        for t in dose.times_min(duration_min):
            rows.append((int(round(t / h)), model.index[target], fraction, dose.amount_mg))
    rows.sort(key=lambda r: r[0])
    # Pad the event axis to a power of two so that scenarios with similar numbers of doses share
    # one compiled loop (the compiled shape depends on it).
    n = 1 << max(2, (len(rows) - 1).bit_length())
    step = np.full((n_subjects, n), np.iinfo(np.int64).max // 4, dtype=np.int64)
    target = np.zeros((n_subjects, n), dtype=np.int32)
    amount = np.zeros((n_subjects, n))
    for j, (k, idx, fraction, mg) in enumerate(rows):
        step[:, j] = k
        target[:, j] = idx
        amount[:, j] = mg * (params[fraction] if fraction else 1.0)
    times = np.array([r[0] * h for r in rows])
    return DoseEvents(step, target, amount, times)
