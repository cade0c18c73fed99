"""Small helpers the validation targets share: run typical subjects, read off half-lives and peaks."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..engine.core import integrate, make_grid, subject_parameters
from ..engine.dosing import DoseEvents, compile_doses
from ..model.model import default_model
from ..scenarios import Dose, Scenario


#: parameter settings a validation run applies (`opioidsim validate --set`): (name, value) pairs
#: sorted by name, hashable so that a run several targets share is cached per setting
Settings = tuple


def settings_for(settings: Settings, kind: str) -> dict:
    """The part of `settings` a scenario of `kind` reads (overrides.parameter_layer): "dose" (a
    dose schedule: the physiology's), "paradigm" (also the behaviour's) or "course" (all)."""
    from ..overrides import LAYERS_READ, parameter_layer

    return {name: value for name, value in settings if parameter_layer(name) in LAYERS_READ[kind]}


@dataclass
class Run:
    t: np.ndarray  # minutes
    values: dict[str, np.ndarray]  # readout → (n_records,)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.values[name]

    def peak_time(self, name: str) -> float:
        return float(self.t[int(np.argmax(self.values[name]))])


def run_typical_batch(schedules: list[list[Dose]], duration: str, record_every: str = "30s",
                      pain_stimulus: float = 0.5, parameters: dict | None = None) -> Run:
    """Typical subjects (every parameter at its typical value, or at the value `parameters` sets as
    a scenario's [parameters] would), subject i under schedules[i], as one batch (the engine pads a
    lone subject to a batch of two anyway, so two schedules cost about what one does). Readouts are
    (subjects, records)."""
    scenario = Scenario(duration=duration, record_every=record_every, conditions={"pain_stimulus": pain_stimulus},
                        cohort={"subjects": len(schedules)}, parameters=parameters or {})
    # the whole model: for a handful of typical subjects, leaving out the states no dose reaches
    # (engine/inert.py, as `simulate` does) saves less than compiling one more model costs
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


def run_typical(doses: list[Dose], duration: str, record_every: str = "30s", pain_stimulus: float = 0.5,
                parameters: dict | None = None) -> Run:
    """One typical subject under the given doses (and `parameters`, as in run_typical_batch).
    Readouts are (records,)."""
    r = run_typical_batch([doses], duration, record_every, pain_stimulus, parameters)
    return Run(r.t, {n: v[0] for n, v in r.values.items()})


def with_amount(dose: Dose, mg: float) -> list[Dose]:
    """The same dose with another amount: [] for none (a subject of a dose-response run without it)."""
    return [Dose(**{**dose.model_dump(), "amount": f"{float(mg)!r} mg"})] if mg > 0 else []


def run_typical_test_doses(common: list[Dose], test: Dose, amounts_mg: list[float], duration: str,
                           record_every: str = "10min", pain_stimulus: float = 0.5,
                           parameters: dict | None = None) -> Run:
    """Typical subjects sharing a schedule, each given its own amount of one test dose (a dose-response
    run as one batch: subject i receives amounts_mg[i] of the test drug at test.at)."""
    return run_typical_batch([[*common, *with_amount(test, mg)] for mg in amounts_mg], duration, record_every,
                             pain_stimulus, parameters)


def half_life(t: np.ndarray, c: np.ndarray, t_from: float, t_to: float) -> float:
    """Half-life from a log-linear least-squares fit of c over [t_from, t_to] (as in PK studies)."""
    sel = (t >= t_from) & (t <= t_to) & (c > 0)
    slope = np.polyfit(t[sel], np.log(c[sel]), 1)[0]
    return float(np.log(2.0) / -slope)


def auc(t: np.ndarray, c: np.ndarray) -> float:
    return float(np.trapezoid(c, t)) if hasattr(np, "trapezoid") else float(np.trapz(c, t))
