"""Small helpers the validation targets share: run typical subjects, read off half-lives and peaks."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..engine.core import integrate, make_grid, subject_parameters
from ..engine.dosing import compile_doses
from ..model.model import default_model
from ..scenarios import Dose, Scenario


@dataclass
class Run:
    t: np.ndarray  # minutes
    values: dict[str, np.ndarray]  # readout → (n_records,)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.values[name]

    def peak_time(self, name: str) -> float:
        return float(self.t[int(np.argmax(self.values[name]))])


def run_typical(doses: list[Dose], duration: str, record_every: str = "30s", pain_stimulus: float = 0.5) -> Run:
    """One typical subject (every parameter at its typical value) under the given doses."""
    scenario = Scenario(duration=duration, record_every=record_every, doses=doses,
                        conditions={"pain_stimulus": pain_stimulus})
    model = default_model()
    grid = make_grid(scenario.duration_min, scenario.record_every_min)
    p = subject_parameters(model, scenario, 1, 0, variability=False)
    events = compile_doses(model, scenario.doses, scenario.duration_min, grid.h, p)
    recs = integrate(model, grid, model.initial_state(p), p, events, model.readouts)[0]
    return Run(grid.record_times_min, {n: recs[:, i] for i, n in enumerate(model.readouts)})


def run_typical_batch(schedules: list[list[Dose]], duration: str, record_every: str = "30s",
                      pain_stimulus: float = 0.5) -> Run:
    """Typical subjects, subject i under schedules[i], as one batch (the engine pads a lone subject
    to a batch of two anyway, so two schedules cost about what one does). Readouts are (subjects, records)."""
    from ..engine.dosing import DoseEvents

    scenario = Scenario(duration=duration, record_every=record_every, conditions={"pain_stimulus": pain_stimulus},
                        cohort={"subjects": len(schedules)})
    model = default_model()
    grid = make_grid(scenario.duration_min, scenario.record_every_min)
    p = subject_parameters(model, scenario, len(schedules), 0, variability=False)
    one = {k: v[:1] for k, v in p.items()}  # typical subjects: every subject's parameters are the same
    each = [compile_doses(model, list(doses), scenario.duration_min, grid.h, one) for doses in schedules]
    width = max(e.n_events for e in each)

    def stack(field, fill):
        return np.concatenate([np.pad(getattr(e, field), ((0, 0), (0, width - e.n_events)), constant_values=fill)
                               for e in each])

    never = np.iinfo(np.int64).max // 4  # the padding of compile_doses: an event that never comes
    events = DoseEvents(stack("step", never), stack("target", 0), stack("amount", 0.0), np.array([]))
    recs = integrate(model, grid, model.initial_state(p), p, events, model.readouts)
    return Run(grid.record_times_min, {n: recs[:, :, i] for i, n in enumerate(model.readouts)})


def half_life(t: np.ndarray, c: np.ndarray, t_from: float, t_to: float) -> float:
    """Half-life from a log-linear least-squares fit of c over [t_from, t_to] (as in PK studies)."""
    sel = (t >= t_from) & (t <= t_to) & (c > 0)
    slope = np.polyfit(t[sel], np.log(c[sel]), 1)[0]
    return float(np.log(2.0) / -slope)


def auc(t: np.ndarray, c: np.ndarray) -> float:
    return float(np.trapezoid(c, t)) if hasattr(np, "trapezoid") else float(np.trapz(c, t))


def run_typical_test_doses(common: list[Dose], test: Dose, amounts_mg: list[float], duration: str,
                           record_every: str = "10min", pain_stimulus: float = 0.5) -> Run:
    """Typical subjects sharing a schedule, each given its own amount of one test dose (a dose-response
    run as one batch: subject i receives amounts_mg[i] of the test drug at test.at)."""
    scenario = Scenario(duration=duration, record_every=record_every, doses=[*common, test],
                        conditions={"pain_stimulus": pain_stimulus}, cohort={"subjects": len(amounts_mg)})
    model = default_model()
    grid = make_grid(scenario.duration_min, scenario.record_every_min)
    p = subject_parameters(model, scenario, len(amounts_mg), 0, variability=False)
    events = compile_doses(model, scenario.doses, scenario.duration_min, grid.h, p)
    # the test dose is the event at the test time into the test drug's target: rescale it per subject
    from ..model.pk import DOSE_TARGETS

    target = model.index[DOSE_TARGETS[(test.drug, test.route)][0]]
    k = int(round(test.at_min / grid.h))
    col = int(np.nonzero((events.step[0] == k) & (events.target[0] == target))[0][0])
    events.amount[:, col] *= np.asarray(amounts_mg) / test.amount_mg
    recs = integrate(model, grid, model.initial_state(p), p, events, model.readouts)
    return Run(grid.record_times_min, {n: recs[:, :, i] for i, n in enumerate(model.readouts)})
