"""A scenario's [parameters]: typical values a user sets in place of the sourced ones.

A what-if (buprenorphine of lower efficacy, a programme without the resolve it adds, a clearance
from one's own data or from `opioidsim calibrate`) is a scenario with a ``[parameters]`` table::

    [parameters]
    buprenorphine_efficacy = 0.3          # a number is in the parameter's declared unit
    heroin_clearance = "54 L/h"           # a quantity with a unit is converted to it
    quit_brake = 0.5

The value replaces the parameter's typical value, for the physiology (every module's PARAMETERS)
and for the behaviour (behavior/agent.py and behavior/human.py). Between-subject variability
stays as declared, around the new value: a subject keeps its own draw (value · exp(η)), so every
subject's value moves by the same factor. Checked once, when the scenario is built: the name
must be a parameter, the unit of the same dimension, the value finite, of the sign of the sourced
value (above 0 where 0 would divide by zero: `must_be_positive`), and from 0 to 1 for a
fraction. What a scenario changes is written with its results (scenario.toml) and shown in its
report.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
from functools import lru_cache
from typing import Any, Mapping

from .params import Parameter, check_parameters

#: parameters a scenario sets elsewhere: a [parameters] entry would be overwritten there
SET_ELSEWHERE = {
    "pain_stimulus": "[conditions] pain_stimulus",
    "glt1_restoration": "[conditions] glt1_drug",
    "age_at_first_use": "[cohort] age_at_first_use",
    "oprm1_g_carrier": "its population frequency, oprm1_g_carrier_frequency",
    "drd2_a1_carrier": "its population frequency, drd2_a1_carrier_frequency",
}


@lru_cache(maxsize=1)
def known_parameters() -> dict[str, Parameter]:
    """Every parameter a scenario may set, by name: the model's and the behaviour's (a name both
    declare, e.g. craving_scale, is one entry; a setting applies to both)."""
    from .behavior import agent, human
    from .model import default_model

    out = dict(default_model().parameters)
    for name, par in check_parameters(agent.PARAMETERS + human.PARAMETERS).items():
        out.setdefault(name, par)
    return out


@lru_cache(maxsize=None)
def parameter_layer(name: str) -> str:
    """Which part of the simulator reads parameter `name` (a known one): "model" (the physiology,
    every scenario), "agent" (the behaviour shared by rats and people: experiments and courses) or
    "human" (a person's choices: life courses and trials)."""
    from .behavior import agent, human
    from .model import default_model

    if name in default_model().parameters:
        return "model"
    if name in {x.name for x in agent.PARAMETERS}:
        return "agent"
    if name in {x.name for x in human.PARAMETERS}:
        return "human"
    raise KeyError(f"{name!r} is no parameter of the model or the behaviour")


#: the layers (`parameter_layer`) each kind of scenario reads: a dose schedule the physiology, an
#: animal experiment also the behaviour, a life course or trial also a person's choices
LAYERS_READ = {"dose": ("model",), "paradigm": ("model", "agent"), "course": ("model", "agent", "human")}

#: who reads a parameter of each layer (`parameter_layer`), as `opioidsim params` says it
READ_BY = {"model": "every scenario (the physiology)",
           "agent": "animal experiments, life courses and trials (the behaviour)",
           "human": "life courses and trials (a person's choices)"}


_TIMES = {"s", "min", "h", "day", "year"}
_DIVISOR_WORDS = ("half", "_kd", "hill", "time", "duration", "width", "exposure_unit")


def must_be_positive(par: Parameter) -> bool:
    """Whether 0 would make the model divide by zero: a volume, a body weight, an affinity, a
    half-saturation or half-life, a Hill coefficient, a scale or a time constant (0 stays allowed
    for rates, efficacies, fractions and weights of a term: the term's what-if removal)."""
    if par.value <= 0:
        return False
    return (par.unit in ("L", "kg", "nM") or par.name.endswith("_scale")
            or any(w in par.name for w in _DIVISOR_WORDS) and (par.unit in _TIMES or par.unit == "1"))


def declared(par: Parameter) -> str:
    return f"{par.value:g} {par.unit}" if par.unit != "1" else f"{par.value:g}"


def check_value(name: str, value: Any) -> float:
    """The value of parameter `name` in its declared unit; a ValueError saying what is allowed
    otherwise (the scenario's validator names the field and the value)."""
    from .units import ureg

    known = known_parameters()
    if name in SET_ELSEWHERE:
        raise ValueError(f"is set by {SET_ELSEWHERE[name]}, not in [parameters]")
    if name not in known:
        close = difflib.get_close_matches(name, list(known), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"{hint}unknown parameter; [parameters] takes the names of the model's and the "
                         "behaviour's parameters (`opioidsim params` lists them, with units and sources)")
    par = known[name]
    allowed = ("must be a number (dimensionless" if par.unit == "1" else f"must be a number in {par.unit} (") \
        + f"; its sourced value: {declared(par)})" \
        + ("" if par.unit == "1" else f" or a quantity with a unit, e.g. \"{par.value:g} {par.unit}\"")
    if isinstance(value, bool):
        raise ValueError(allowed)
    if isinstance(value, (int, float)):
        x = float(value)
    elif isinstance(value, str):
        try:
            q = ureg.Quantity(value.strip())
            x = float(q.to(ureg.Quantity(1.0, par.unit).units).magnitude)
        except Exception:  # pint raises several kinds (undefined unit, syntax, dimensionality)
            raise ValueError(allowed) from None
    else:
        raise ValueError(allowed)
    if not math.isfinite(x):
        raise ValueError(f"must be finite: {allowed}")
    if par.bounded_fraction and not 0.0 <= x <= 1.0:
        raise ValueError(f"is a fraction: must be from 0 to 1 (its sourced value: {declared(par)})")
    if must_be_positive(par) and x <= 0:
        raise ValueError(f"must be more than 0, as its sourced value is ({declared(par)}): 0 would divide by zero")
    if (par.value >= 0 > x) or (par.value < 0 < x):
        sign = "0 or more" if par.value >= 0 else "less than 0"
        raise ValueError(f"must be {sign}, as its sourced value is ({declared(par)})")
    return x


def overridden(base: Mapping[str, Parameter], settings: Mapping[str, Any]) -> dict[str, Parameter]:
    """The parameters of `base` that `settings` (a scenario's [parameters], checked) sets, with the
    new value in the declared unit and a source that says so."""
    out: dict[str, Parameter] = {}
    for name, value in settings.items():
        if name in base:
            par = base[name]
            x = check_value(name, value)
            out[name] = dataclasses.replace(
                par, value=x, source=f"set by the scenario's [parameters] (sourced value {declared(par)}: "
                                     f"{par.source})")
    return out


def in_effect(declared_here: Mapping[str, Parameter], settings: Mapping[str, Any],
              species: str = "human") -> dict[str, Parameter]:
    """The declarations a run uses, in `declared_here`'s order: the species' values (opioidsim.species),
    then the scenario's [parameters] (`settings`: what the user set wins), in place of the sourced
    ones. Shared by the subjects' parameters, the course's and the agent's, the sensitivity ranges
    and the SBML export."""
    from .species import species_overrides

    out = dict(declared_here)
    out.update({k: par for k, par in species_overrides(species).items() if k in out})
    out.update(overridden(out, settings))
    return out


def settings_text(settings: Mapping[str, Any]) -> str:
    """Parameter settings as a reader sees them: "name = value" as written, by name."""
    return ", ".join(f"{k} = {v}" for k, v in sorted(settings.items()))


def scenario_settings(toml: Mapping[str, Any]) -> list[str]:
    """What a scenario (its TOML tables, `Scenario.to_toml_dict()` or a parsed scenario.toml) sets
    in place of sourced values, one line per table: its [parameters] and each trial arm's."""
    tables = [("every subject", toml.get("parameters"))]
    trial = toml.get("trial")
    arms = trial.get("arm", []) if isinstance(trial, Mapping) else []
    tables += [(f"arm {a.get('name')}", a.get("parameters")) for a in arms if isinstance(a, Mapping)]
    return [f"{who}: {settings_text(values)}" for who, values in tables if isinstance(values, Mapping) and values]
