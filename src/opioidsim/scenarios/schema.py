"""Scenario schema: pydantic v2 models for what to simulate, and their loading from TOML.

A scenario file looks like this (quantities are strings with units)::

    [scenario]
    name = "acute-heroin-iv"
    description = "one line"
    duration = "12h"
    record_every = "30s"
    readouts = ["nac_dopamine", "spo2"]   # optional; default: all

    [cohort]
    subjects = 1
    seed = 0
    age_at_first_use = 16                 # optional, years (critical period); default 25

    [conditions]
    pain_stimulus = 0.5

    [[dose]]
    drug = "heroin"
    route = "iv"
    amount = "10 mg"
    at = "10min"
    every = "8h"       # optional
    until = "30d"      # optional

    [solver]           # optional: the engine's method and accuracy (defaults: ros34pw2, rtol 3e-3,
    rtol = 1e-5        # smallest_step 3.75 s)
    smallest_step = "0.5s"
    method = "ros2"

    [parameters]       # optional: typical values in place of the sourced ones (opioidsim.overrides)
    buprenorphine_efficacy = 0.3       # a number is in the parameter's declared unit
    heroin_clearance = "120 L/h"       # or a quantity with a unit

Every problem becomes a :class:`~opioidsim.errors.ScenarioError` naming the field (as the user
wrote it: ``scenario.duration`` / ``dose[0].route`` in a file, ``duration`` / ``doses[0].route`` in
Python), the value found, and what is allowed. Only the first problem is described; the message
says how many more there were. Quantities are kept as the strings the user wrote (so a scenario
round-trips to TOML unchanged); properties give them in internal units (minutes, mg).

Doses are only validated here; the engine compiles them (``Scenario.dose_schedule()``).
"""
from __future__ import annotations

import difflib
import math
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Iterable, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, \
    model_validator

from opioidsim.drugs import DRUGS
from opioidsim.errors import MISSING, ScenarioError
from opioidsim.readouts import READOUTS
from opioidsim.units import UnitError, parse_quantity

try:  # Python 3.11+
    import tomllib as _toml
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as _toml  # type: ignore[no-redef]

__all__ = [
    "Dose", "Cohort", "Conditions", "Solver", "Scenario", "load_scenario", "builtin_scenarios",
    "builtin_dir", "LIMITS",
]

# ---------------------------------------------------------------------------------------------
# Limits (input sanity limits for a simulator, not statements about people)
# ---------------------------------------------------------------------------------------------
MIN_PER_YEAR = 365.25 * 24 * 60
LIMITS = {
    "max_duration_min": 100 * MIN_PER_YEAR,
    "max_record_points": 2_000_000,
    "max_subjects": 1_000_000,
    "max_seed": 2**32 - 1,
    "min_every_min": 1.0,
    "max_dose_events": 100_000,
    # What one run can hold in memory in this version (results stay in memory until Zarr
    # streaming, issue 7): 2·10⁹ float64 record values = 16 GB, and 5·10⁸ per-subject dose-event
    # cells (≈ 10 GB of step, target and amount arrays). Found by the fuzzer (issue 9): without
    # them a valid-looking scenario could only end in a MemoryError.
    "max_result_values": 2_000_000_000,
    "max_dose_cells": 500_000_000,
    # A [life] or [trial] keeps every decision step of every subject in memory (behaviour
    # columns and physiology readouts, float32 and then a float64 copy: about 12 bytes a value).
    # Found by the fuzzer (issue 9): 300,000 subjects in a 15-year trial recording one readout
    # passed validation (the size check counted readouts per day, not per decision step).
    "max_course_values": 1_000_000_000,
}

_TIME_EXAMPLES = '"30s", "90min", "12h", "14d", "2y"'
_MASS_EXAMPLES = '"10 mg", "250 ug", "0.4 mg"'
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class _Problem(ValueError):
    """Raised inside validators; turned into a ScenarioError with the full field path.

    ``suffix`` is appended to the location pydantic reports (e.g. ``("doses", 0, "at")`` for a
    check made at the scenario level, ``(2,)`` for the third readout).
    """

    def __init__(self, value: Any, allowed: str, suffix: tuple = ()) -> None:
        self.value = value
        self.allowed = allowed
        self.suffix = tuple(suffix)
        super().__init__(allowed)


def _fmt_num(x: float) -> str:
    return f"{x:,.6g}" if abs(x) < 1e6 else f"{x:,.0f}"


# ---------------------------------------------------------------------------------------------
# Quantity checks (used in "before" validators, so wrong types get our message, not pydantic's)
# ---------------------------------------------------------------------------------------------
def _number_needs_unit(value: Any, kind: str) -> str:
    n = f"{value:g}" if isinstance(value, float) else str(value)
    if kind == "mass":
        return f'a number needs a unit: write "{n} mg" (or another mass unit, e.g. {_MASS_EXAMPLES})'
    return f'a number needs a unit: write e.g. "{n}min" or "{n}h" (times look like {_TIME_EXAMPLES})'


def _parse(value: Any, kind: str) -> float:
    """Text with a unit → float in internal units, or _Problem with a helpful message."""
    what = "a time" if kind == "time" else "a mass"
    examples = _TIME_EXAMPLES if kind == "time" else _MASS_EXAMPLES
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _Problem(value, f"must be {what} written as text with a unit, e.g. {examples}")
    if isinstance(value, (int, float)):
        raise _Problem(value, _number_needs_unit(value, kind))
    try:
        x = parse_quantity(value, kind)
    except Exception as exc:  # UnitError, or anything odd pint raises on strange unit text
        hint = ""
        other = "mass" if kind == "time" else "time"
        try:
            parse_quantity(value, other)
            hint = f" (that is a {other})"
        except Exception:
            pass
        if not isinstance(exc, UnitError):
            hint = hint or " (could not read it)"
        raise _Problem(value, f"must be {what} with a unit, e.g. {examples}{hint}") from None
    if not math.isfinite(x):
        raise _Problem(value, f"must be a finite {kind}, e.g. {examples}")
    return x


def _time(value: Any) -> float:
    return _parse(value, "time")


def _mass(value: Any) -> float:
    return _parse(value, "mass")


def _real(value: Any, lo: float, hi: float, allowed: str, *, lo_open: bool = False) -> float:
    """A number (not a bool) from lo to hi, compared before it is converted: a huge int is out of
    range (not an OverflowError), NaN is never in range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Problem(value, allowed)
    if not ((lo < value) if lo_open else (lo <= value)) or not value <= hi:
        raise _Problem(value, allowed)
    return float(value)


def _check_keys(data: Any) -> None:
    """Every key of every table in ``data`` is text (a field name); a Python dict with another key
    (``{1: 2}``) would otherwise end in Python's own TypeError when its table is built. Walked
    without recursion (any depth) and each container once (a list that holds itself)."""
    stack: list[tuple[Any, tuple]] = [(data, ())]
    seen: set[int] = set()
    while stack:
        item, path = stack.pop()
        if not isinstance(item, (dict, list, tuple)) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, dict):
            for k, v in item.items():
                if not isinstance(k, str):
                    raise _Problem(v, f"a key must be text (a field name), not {k!r} ({type(k).__name__})",
                                   path + (str(k),))
                stack.append((v, path + (k,)))
        else:
            stack.extend((v, path + (i,)) for i, v in enumerate(item))


def _strict_int(value: Any, lo: int, hi: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer() and lo <= value <= hi:
            return int(value)
        raise _Problem(value, f"must be a whole number from {lo:,} to {hi:,} ({what})")
    if not lo <= value <= hi:
        raise _Problem(value, f"must be a whole number from {lo:,} to {hi:,} ({what})")
    return value


def checked_parameters(v: Any) -> dict[str, Any]:
    """A [parameters] table (a scenario's or a trial arm's): parameter name → a number in its
    declared unit or a quantity with a unit, each checked (opioidsim.overrides), kept as written."""
    from opioidsim.overrides import check_value

    if v is None:
        return {}
    if not isinstance(v, dict):
        raise _Problem(v, "must be a table of parameter names and values, e.g. [parameters] with "
                          "buprenorphine_efficacy = 0.3")
    for name, value in v.items():
        try:
            check_value(name, value)
        except ValueError as exc:
            raise _Problem(value, str(exc), (name,)) from None
    return {k: (x.strip() if isinstance(x, str) else x) for k, x in v.items()}


def checked_settings(v: Any) -> dict[str, Any]:
    """`checked_parameters` outside a scenario (`opioidsim validate --set`): a problem is a
    ScenarioError naming parameters.NAME, as a scenario's would be."""
    try:
        return checked_parameters(v)
    except _Problem as exc:
        raise ScenarioError(".".join(("parameters",) + tuple(str(k) for k in exc.suffix)), exc.value,
                            exc.allowed) from None


_DOSE_POSITIONAL = ("drug", "amount", "route", "at", "every", "until")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=False)

    @model_validator(mode="before")
    @classmethod
    def _text_keys(cls, data: Any) -> Any:
        _check_keys(data)
        return data


class _Table(_Model):
    """A table of a scenario file ([cohort], [conditions], [solver]): a problem built directly in
    Python is named under the table's key, as the file would name it."""

    _key: ClassVar[str]

    def __init__(self, **kwargs: Any) -> None:
        try:
            super().__init__(**kwargs)
        except ValidationError as exc:
            raise _to_scenario_error(exc, prefix=(self._key,)) from None


# ---------------------------------------------------------------------------------------------
# Dose
# ---------------------------------------------------------------------------------------------
class Dose(_Model):
    """One dose, or a repeated dose, of one drug by one route.

    ``Dose("heroin", "10 mg", route="iv", at="10min")``; repeats with ``every="8h", until="30d"``
    (``until`` defaults to the end of the scenario). Times are measured from the scenario start.
    """

    drug: str
    amount: str
    route: str = "iv"
    at: str = "0min"
    every: Optional[str] = None
    until: Optional[str] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(_DOSE_POSITIONAL):
            raise TypeError(f"Dose() takes at most {len(_DOSE_POSITIONAL)} positional arguments "
                            f"({', '.join(_DOSE_POSITIONAL)}), got {len(args)}")
        for name, arg in zip(_DOSE_POSITIONAL, args):
            if name in kwargs:
                raise TypeError(f"Dose() got multiple values for argument {name!r}")
            kwargs[name] = arg
        try:
            super().__init__(**kwargs)
        except ValidationError as exc:
            raise _to_scenario_error(exc, prefix=("dose",)) from None

    # -- field checks ------------------------------------------------------------------------
    @field_validator("drug", mode="before")
    @classmethod
    def _check_drug(cls, v: Any) -> str:
        if isinstance(v, str) and v.strip().lower() in DRUGS:
            return v.strip().lower()
        hint = ""
        if isinstance(v, str):
            close = difflib.get_close_matches(v.strip().lower(), list(DRUGS), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
        raise _Problem(v, f"{hint}known drugs: {', '.join(DRUGS)}")

    @field_validator("amount", mode="before")
    @classmethod
    def _check_amount(cls, v: Any, info) -> str:
        mg = _mass(v)
        if mg <= 0:
            raise _Problem(v, "must be more than 0 mg")
        drug = info.data.get("drug")
        if drug in DRUGS and mg > DRUGS[drug].max_single_dose_mg:
            limit = DRUGS[drug].max_single_dose_mg
            raise _Problem(v, f"at most {_fmt_num(limit)} mg for one {drug} dose (an input sanity "
                              "limit of the simulator, not a safety limit: opioidsim is never a "
                              "dosing guide)")
        return v.strip()

    @field_validator("route", mode="before")
    @classmethod
    def _check_route(cls, v: Any, info) -> str:
        drug = info.data.get("drug")
        if drug not in DRUGS:  # the drug error is reported instead
            if isinstance(v, str):
                return v
            raise _Problem(v, "must be a route name such as \"iv\"")
        routes = DRUGS[drug].routes
        if isinstance(v, str) and v.strip().lower() in routes:
            return v.strip().lower()
        raise _Problem(v, f"{drug} can be given by {', '.join(routes)}")

    @field_validator("at", mode="before")
    @classmethod
    def _check_at(cls, v: Any) -> str:
        if _time(v) < 0:
            raise _Problem(v, "must be 0 or later (a time from the start of the scenario)")
        return v.strip()

    @field_validator("every", mode="before")
    @classmethod
    def _check_every(cls, v: Any) -> Optional[str]:
        if v is None:
            return None
        if _time(v) < LIMITS["min_every_min"]:
            raise _Problem(v, "must be at least 1 min (the interval between repeated doses)")
        return v.strip()

    @field_validator("until", mode="before")
    @classmethod
    def _check_until(cls, v: Any) -> Optional[str]:
        if v is None:
            return None
        if _time(v) < 0:
            raise _Problem(v, "must be 0 or later (a time from the start of the scenario)")
        return v.strip()

    @model_validator(mode="after")
    def _check_repeat(self) -> "Dose":
        if self.until is not None:
            if self.every is None:
                raise _Problem(self.until, "until only applies to repeated doses: add every "
                                           "(e.g. every = \"8h\") or remove until", ("until",))
            if self.until_min <= self.at_min:
                raise _Problem(self.until, f"must be later than at = {self.at!r}", ("until",))
        return self

    # -- internal units ----------------------------------------------------------------------
    @property
    def amount_mg(self) -> float:
        return parse_quantity(self.amount, "mass")

    @property
    def at_min(self) -> float:
        return parse_quantity(self.at, "time")

    @property
    def every_min(self) -> Optional[float]:
        return None if self.every is None else parse_quantity(self.every, "time")

    @property
    def until_min(self) -> Optional[float]:
        return None if self.until is None else parse_quantity(self.until, "time")

    def count(self, duration_min: float) -> int:
        """How many dose events this entry gives in a scenario of ``duration_min`` (no expansion)."""
        at = self.at_min
        if at >= duration_min:
            return 0
        every = self.every_min
        if every is None:
            return 1
        end = duration_min if self.until is None else min(self.until_min, duration_min)
        if end <= at:
            return 0
        n = math.ceil((end - at) / every)
        # Guard the rounding at the boundary: keep exactly the k with at + k*every < end.
        while n > 0 and at + (n - 1) * every >= end:
            n -= 1
        while at + n * every < end:
            n += 1
        return n

    def times_min(self, duration_min: float) -> list[float]:
        """Dose times in minutes: ``at``, ``at + every``, ... while ``t < min(until, duration)``.

        A single time (``[at]``) without ``every``; none if ``at`` is at or past the end.
        """
        n = self.count(duration_min)
        at, every = self.at_min, self.every_min or 0.0
        return [at + k * every for k in range(n)]


# ---------------------------------------------------------------------------------------------
# Cohort and conditions
# ---------------------------------------------------------------------------------------------
class Cohort(_Table):
    """How many virtual subjects, the seed that draws their parameters, and their age at first use."""

    _key = "cohort"

    subjects: int = 1
    seed: int = 0
    #: years; the critical period of model/development.py (None: the parameter's typical value, 25)
    age_at_first_use: Optional[float] = None
    #: "human" or "rat" (rat: body weight and allometrically scaled PK, see opioidsim.species)
    species: str = "human"
    #: co-occurring disorders: the share of subjects with major depression and with PTSD
    #: (traits with effects on the agent: opioidsim.behavior.human)
    depression: float = 0.0
    ptsd: float = 0.0

    @field_validator("depression", "ptsd", mode="before")
    @classmethod
    def _check_prevalence(cls, v: Any) -> float:
        return _real(v, 0.0, 1.0, "must be a number from 0 to 1 (the share of subjects with the disorder), e.g. 0.3")

    @field_validator("subjects", mode="before")
    @classmethod
    def _check_subjects(cls, v: Any) -> int:
        return _strict_int(v, 1, LIMITS["max_subjects"], "the number of virtual subjects")

    @field_validator("seed", mode="before")
    @classmethod
    def _check_seed(cls, v: Any) -> int:
        return _strict_int(v, 0, LIMITS["max_seed"], "the random seed")

    @field_validator("species", mode="before")
    @classmethod
    def _check_species(cls, v: Any) -> str:
        from opioidsim.species import SPECIES

        if isinstance(v, str) and v.strip().lower() in SPECIES:
            return v.strip().lower()
        raise _Problem(v, f"must be one of {', '.join(SPECIES)}")

    @field_validator("age_at_first_use", mode="before")
    @classmethod
    def _check_age(cls, v: Any) -> Optional[float]:
        allowed = "must be a number of years from 10 to 80 (age of the subjects at their first use), e.g. 16"
        if v is None:
            return None
        return _real(v, 10.0, 80.0, allowed)


class Conditions(_Table):
    """Experimental conditions held through the run."""

    _key = "conditions"

    pain_stimulus: float = 0.5
    #: a drug that restores NAc GLT-1 given throughout the run: "none", "ceftriaxone" or
    #: "n-acetylcysteine" (model/glutamate.py)
    glt1_drug: str = "none"

    @field_validator("glt1_drug", mode="before")
    @classmethod
    def _check_glt1_drug(cls, v: Any) -> str:
        from opioidsim.model.glutamate import GLT1_DRUGS

        if isinstance(v, str) and v.strip().lower() in GLT1_DRUGS:
            return v.strip().lower()
        raise _Problem(v, f"must be one of {', '.join(GLT1_DRUGS)} (a GLT-1-restoring drug given throughout)")

    @field_validator("pain_stimulus", mode="before")
    @classmethod
    def _check_pain(cls, v: Any) -> float:
        allowed = ("must be a number from 0 to 1 (tonic noxious input to the dorsal horn: "
                   "0 none, 1 maximal)")
        return _real(v, 0.0, 1.0, allowed)


#: bounds of [solver] rtol. Above 10 % the error estimate (the leading h² term of a second-order
#: method) no longer describes the error; below 1e-10 it is rounding noise of 64-bit floats summed
#: over ~70 states, so every step would fall to the smallest one and the run would only crawl.
SOLVER_RTOL_RANGE = (1e-10, 0.1)
#: the smallest [solver] smallest_step, in minutes (1 ms): an input sanity limit (the model's
#: fastest processes take seconds), so that a typo ("1e-9s") cannot start a run that never ends
SOLVER_MIN_STEP_MIN = 1e-3 / 60.0
#: the engine's integration methods ([solver] method; engine/stepper.py `METHODS`), the default first:
#: ROS34PW2 (third order, 4 stages) and ROS2 (second order, 2 stages; the engine's method until stop 31)
SOLVER_METHODS = ("ros34pw2", "ros2")
#: how the engine takes records ([solver] records), the default first: "auto" interpolates records
#: every 5 min or less at a thirtieth of rtol and steps to the others (engine/core.py `solver_records`);
#: "stepped" and "interpolated" choose one way (engine/core.py `integrate`'s `dense`)
SOLVER_RECORDS = ("auto", "stepped", "interpolated")


def _one_of(v: Any, allowed: tuple[str, ...], what: str) -> Optional[str]:
    """A [solver] choice: None (the default), or one of `allowed` in any case."""
    if v is None:
        return None
    if not isinstance(v, str) or v.strip().lower() not in allowed:
        raise _Problem(v, f"must be one of {', '.join(repr(m) for m in allowed)} ({what}; default {allowed[0]!r})")
    return v.strip().lower()


class Solver(_Table):
    """Method and accuracy of the dose-schedule engine (engine/core.py): its integration method,
    relative tolerance and smallest step. Left out (None), a setting keeps the engine's default
    (ros34pw2, rtol 3e-3, smallest step 3.75 s), bit for bit the results of a scenario without
    [solver]."""

    _key = "solver"

    #: every state's local error per step ≤ atol + rtol·|state|
    rtol: Optional[float] = None
    #: the time quantum: doses are snapped to it, every step is a whole number of it, and a step
    #: of one quantum is taken even when its error is above the tolerance (counted in the
    #: results as steps_over_tolerance)
    smallest_step: Optional[str] = None
    #: the Rosenbrock method of each step (`SOLVER_METHODS`)
    method: Optional[str] = None
    #: how records are taken (`SOLVER_RECORDS`): "stepped", every record at the end of a step, so a
    #: record interval is also the longest step; "interpolated", a step may span up to 32 records
    #: and those inside it are interpolated (ROS34PW2's continuous extension): far fewer steps where
    #: records are dense, with the accuracy of the tolerance alone; "auto" (the default), records
    #: every 5 min or less interpolated with steps held to a thirtieth of rtol (about the accuracy of
    #: stepped records at rtol, in a fraction of the steps), coarser records stepped
    records: Optional[str] = None

    @field_validator("records", mode="before")
    @classmethod
    def _check_records(cls, v: Any) -> Optional[str]:
        return _one_of(v, SOLVER_RECORDS, "how records are taken")

    @field_validator("method", mode="before")
    @classmethod
    def _check_method(cls, v: Any) -> Optional[str]:
        return _one_of(v, SOLVER_METHODS, "the engine's integration method")

    @model_validator(mode="after")
    def _check_interpolation_method(self) -> "Solver":
        if self.records == "interpolated" and self.method not in (None, SOLVER_METHODS[0]):
            raise _Problem(self.method, f"cannot interpolate records (records = \"interpolated\"): only "
                                        f"{SOLVER_METHODS[0]!r} has a continuous extension", suffix=("method",))
        return self

    @field_validator("rtol", mode="before")
    @classmethod
    def _check_rtol(cls, v: Any) -> Optional[float]:
        if v is None:
            return None
        lo, hi = SOLVER_RTOL_RANGE
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v < hi:
            raise _Problem(v, f"must be a number from {lo:g} to less than {hi:g} (the relative tolerance "
                              "of each step; default 0.003), e.g. 1e-5")
        return float(v)

    @field_validator("smallest_step", mode="before")
    @classmethod
    def _check_smallest_step(cls, v: Any) -> Optional[str]:
        if v is None:
            return None
        if _time(v) < SOLVER_MIN_STEP_MIN:
            raise _Problem(v, 'must be a time of at least 1 ms (the smallest step of the engine; '
                              'default "3.75s"), e.g. "0.5s"')
        return v.strip()

    @property
    def smallest_step_min(self) -> Optional[float]:
        return None if self.smallest_step is None else parse_quantity(self.smallest_step, "time")

    def to_toml_dict(self) -> dict[str, Any]:
        """The settings given (an empty dict: the engine's defaults)."""
        return {k: getattr(self, k) for k in ("rtol", "smallest_step", "method", "records")
                if getattr(self, k) is not None}


#: the scenario's table fields: the table and what a file writes in it (for the message when a
#: field is not a table)
_TABLE_FIELDS = {"cohort": (Cohort, "subjects = ... and seed = ..."),
                 "conditions": (Conditions, "pain_stimulus = ..."),
                 "solver": (Solver, 'rtol = ..., smallest_step = "...", method = "..." and/or records = "..."')}


# ---------------------------------------------------------------------------------------------
# Scenario
# ---------------------------------------------------------------------------------------------
_HEADER_FIELDS = ("name", "description", "duration", "record_every", "readouts")
_TOP_TABLES = ("scenario", "cohort", "conditions", "dose", "solver", "parameters", "paradigm", "life", "trial")


def _cohort_from_groups(data: dict) -> dict:
    """With [[paradigm.group]] tables the groups say how many subjects there are: a [cohort]
    without `subjects` gets their sum (a cohort that gives it must agree: checked later)."""
    par = data.get("paradigm")
    groups = par.get("group", par.get("groups")) if isinstance(par, dict) else getattr(par, "groups", None)
    if not isinstance(groups, (list, tuple)) or not groups:
        return data
    sizes = [g.get("subjects") if isinstance(g, dict) else getattr(g, "subjects", None) for g in groups]
    whole = [n for n in sizes if not isinstance(n, bool) and (isinstance(n, int) or
                                                              (isinstance(n, float) and n.is_integer()))]
    if len(whole) != len(sizes):
        return data  # a group's own error is reported when it is validated
    sizes = [int(n) for n in whole]
    cohort = data.get("cohort", {})
    if isinstance(cohort, dict) and "subjects" not in cohort:
        data["cohort"] = {**cohort, "subjects": sum(sizes)}
    elif isinstance(cohort, Cohort) and "subjects" not in cohort.model_fields_set:
        data["cohort"] = {**cohort.model_dump(), "subjects": sum(sizes)}
    return data


def _minutes_text(x: float) -> str:
    """A length in minutes as text that reads back exactly ("91440min"; 6 significant digits lost
    days of a long life course: found by the fuzzer, issue 9)."""
    short = f"{x:g}"
    return f"{short}min" if float(short) == x else f"{float(x)!r}min"


class Scenario(_Model):
    """What to simulate: how long, what to record, who (cohort), conditions, and doses."""

    name: str = "custom"
    description: str = ""
    duration: str
    record_every: str = "1min"
    readouts: Optional[list[str]] = None
    cohort: Cohort = Field(default_factory=Cohort)
    conditions: Conditions = Field(default_factory=Conditions)
    doses: list[Dose] = Field(default_factory=list)
    #: the engine's accuracy (relative tolerance, smallest step); dose schedules only
    solver: Solver = Field(default_factory=Solver)
    #: typical parameter values in place of the sourced ones, by parameter name: a number in the
    #: parameter's declared unit or a quantity with a unit (opioidsim.overrides), as written
    parameters: dict[str, Any] = Field(default_factory=dict)
    #: an animal experiment (opioidsim.scenarios.paradigm): doses come from the subject's choices
    paradigm: Optional["Paradigm"] = None
    #: a human life course (opioidsim.scenarios.course): street use, forced abstinence, treatment
    life: Optional["Life"] = None
    #: a virtual clinical trial (opioidsim.scenarios.course): arms, randomisation, follow-up
    trial: Optional["Trial"] = None

    def __init__(self, **kwargs: Any) -> None:
        try:
            super().__init__(**kwargs)
        except ValidationError as exc:
            raise _to_scenario_error(exc) from None

    @model_validator(mode="before")
    @classmethod
    def _paradigm_defaults(cls, data: Any) -> Any:
        """A paradigm sets its own length (duration may be left out) and records every 30 min
        between sessions unless record_every says otherwise."""
        _check_keys(data)  # before any table is built from the data (whichever validator runs first)
        if isinstance(data, dict):
            for key in ("life", "trial"):
                if data.get(key) is not None:
                    data = dict(data)
                    if "duration" not in data:
                        try:
                            c = _course(key, data[key])
                        except ScenarioError:
                            c = None  # the table's own error is reported when the field is validated
                        data["duration"] = _minutes_text(c.length_min) if c is not None else "1min"
                    data.setdefault("record_every", "1d")
        if isinstance(data, dict) and data.get("paradigm") is not None:
            data = dict(data)
            par = data["paradigm"]
            if "duration" not in data:
                try:
                    from .paradigm import Paradigm

                    p = par if isinstance(par, Paradigm) else Paradigm(**par) if isinstance(par, dict) else None
                except ScenarioError:
                    p = None  # the paradigm's own error is reported when the field is validated
                # (a placeholder when the paradigm is wrong, so that its error is the one reported)
                data["duration"] = _minutes_text(p.length_min) if p is not None else "1min"
            data.setdefault("record_every", "30min")
            data = _cohort_from_groups(data)
        return data

    @field_validator("paradigm", mode="before")
    @classmethod
    def _check_paradigm(cls, v: Any) -> Any:
        from .paradigm import Paradigm

        if v is None or isinstance(v, Paradigm):
            return v
        if isinstance(v, dict):
            return Paradigm(**v)
        raise _Problem(v, "must be a table: [paradigm] with drug, infusion and [[paradigm.phase]] entries")

    @field_validator("life", mode="before")
    @classmethod
    def _check_life(cls, v: Any) -> Any:
        from .course import Life, check_course_table

        return check_course_table(v, Life, "life")

    @field_validator("trial", mode="before")
    @classmethod
    def _check_trial(cls, v: Any) -> Any:
        from .course import Trial, check_course_table

        return check_course_table(v, Trial, "trial")

    @field_validator("parameters", mode="before")
    @classmethod
    def _check_parameters(cls, v: Any) -> dict[str, Any]:
        return checked_parameters(v)

    # -- field checks ------------------------------------------------------------------------
    @field_validator("name", mode="before")
    @classmethod
    def _check_name(cls, v: Any) -> str:
        if isinstance(v, str) and _NAME_RE.match(v):
            return v
        raise _Problem(v, "must be a short name of letters, digits, '-', '_' or '.' (up to 100 "
                          "characters, not starting with '.' or '-'), e.g. \"acute-heroin-iv\"")

    @field_validator("description", mode="before")
    @classmethod
    def _check_description(cls, v: Any) -> str:
        if isinstance(v, str):
            return v
        raise _Problem(v, "must be text (one line saying what the scenario shows)")

    @field_validator("duration", mode="before")
    @classmethod
    def _check_duration(cls, v: Any) -> str:
        x = _time(v)
        if x <= 0:
            raise _Problem(v, f"must be more than 0, e.g. {_TIME_EXAMPLES}")
        if x > LIMITS["max_duration_min"]:
            raise _Problem(v, "must be at most 100 years")
        return v.strip()

    @field_validator("record_every", mode="before")
    @classmethod
    def _check_record_every(cls, v: Any) -> str:
        if _time(v) <= 0:
            raise _Problem(v, f"must be more than 0, e.g. \"30s\" or \"1min\"")
        return v.strip()

    @field_validator("readouts", mode="before")
    @classmethod
    def _check_readouts(cls, v: Any) -> Optional[list[str]]:
        if v is None:
            return None
        if isinstance(v, (str, bytes)) or not isinstance(v, (list, tuple)):
            raise _Problem(v, "must be a list of readout names, e.g. [\"nac_dopamine\", \"spo2\"]"
                              " (leave it out to record all)")
        if len(v) == 0:
            raise _Problem(v, "an empty list records nothing; leave readouts out to record all")
        seen: set[str] = set()
        for i, name in enumerate(v):
            if not isinstance(name, str) or name not in READOUTS:
                hint = ""
                if isinstance(name, str):
                    close = difflib.get_close_matches(name, list(READOUTS), n=1)
                    hint = f"did you mean {close[0]!r}? " if close else ""
                some = ", ".join(list(READOUTS)[:3] + ["nac_dopamine", "pain", "spo2", "overdose"])
                raise _Problem(name, f"unknown readout; {hint}known readouts include {some} "
                                     f"({len(READOUTS)} in all, see opioidsim.readouts.READOUTS)",
                               (i,))
            if name in seen:
                raise _Problem(name, "is listed twice; list each readout once", (i,))
            seen.add(name)
        return list(v)

    @field_validator("cohort", "conditions", "solver", mode="before")
    @classmethod
    def _check_table(cls, v: Any, info: ValidationInfo) -> Any:
        table, how = _TABLE_FIELDS[info.field_name]
        if isinstance(v, (dict, table)):
            return v
        raise _Problem(v, f"must be a table: [{table._key}] with {how}")

    @field_validator("doses", mode="before")
    @classmethod
    def _check_doses(cls, v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            for i, d in enumerate(v):
                if not isinstance(d, (dict, Dose)):
                    raise _Problem(d, "each dose must be a table: [[dose]] with drug, route, "
                                      "amount, at", (i,))
            return list(v)
        raise _Problem(v, "must be a list of doses ([[dose]] tables)")

    @model_validator(mode="after")
    def _check_whole(self) -> "Scenario":
        duration = self.duration_min
        rec = self.record_every_min
        if rec > duration:
            raise _Problem(self.record_every,
                           f"must not be longer than duration = {self.duration!r}",
                           ("record_every",))
        points = duration / rec
        if points > LIMITS["max_record_points"]:
            raise _Problem(self.record_every,
                           f"gives {points:,.0f} record points (duration / record_every); at most "
                           f"{LIMITS['max_record_points']:,}: record less often",
                           ("record_every",))
        subjects = self.cohort.subjects
        courses = [k for k in ("paradigm", "life", "trial") if getattr(self, k) is not None]
        if len(courses) > 1:  # first: the other checks below assume one kind
            raise _Problem(courses[1], f"a scenario is one of a dose schedule, a [paradigm], a [life] or a "
                                       f"[trial]: this one has both [{courses[0]}] and [{courses[1]}]",
                           (courses[1],))
        self._check_parameters_are_read(courses[0] if courses else None)
        given = self.solver.to_toml_dict()
        if given and courses:
            # the behaviour layer's decision loop runs on the engine's fixed quantum and tolerance
            key = next(iter(given))
            raise _Problem(given[key], f"[solver] applies to dose schedules only; a scenario with a "
                                       f"[{courses[0]}] runs at the engine's default accuracy: remove [solver]",
                           ("solver", key))
        step = self.solver.smallest_step_min
        if step is not None and step > rec:
            raise _Problem(self.solver.smallest_step, f"must not be longer than record_every = "
                                                      f"{self.record_every!r} (every record falls on a step)",
                           ("solver", "smallest_step"))
        if self.paradigm is not None:
            if self.doses:
                raise _Problem(self.doses[0].drug, "a scenario with a [paradigm] takes its doses from the "
                                                   "paradigm (self-administration, priming, conditioning): "
                                                   "remove the [[dose]] entries", ("doses", 0, "drug"))
            groups = self.paradigm.groups
            if groups and subjects != self.paradigm.subjects:
                parts = " + ".join(f"{g.name} {g.subjects}" for g in groups)
                raise _Problem(subjects, f"must equal the subjects of the [[paradigm.group]] tables together "
                                         f"({parts} = {self.paradigm.subjects}), or be left out",
                               ("cohort", "subjects"))
            if duration + 1e-6 < self.paradigm.length_min:
                raise _Problem(self.duration, f"is shorter than the paradigm "
                                              f"({self.paradigm.length_min / 1440:g} days); leave duration out "
                                              "to use the paradigm's length", ("duration",))
        course_key = next((k for k in ("life", "trial") if getattr(self, k) is not None), None)
        if course_key is not None:
            self._check_course(course_key, duration)
        else:
            values = subjects * (math.floor(points + 1e-9) + 1) * len(self.recorded_readouts)
            if values > LIMITS["max_result_values"]:
                field = ("cohort", "subjects") if subjects > 1 else ("record_every",)
                raise _Problem(subjects if subjects > 1 else self.record_every,
                               f"the results would hold {values:,} values (subjects × record points × "
                               f"readouts), more than the {LIMITS['max_result_values']:,} (16 GB) one run "
                               "can hold in memory: record less often, fewer readouts or fewer subjects",
                               field)
        total = 0
        for i, d in enumerate(self.doses):
            if d.at_min >= duration:
                raise _Problem(d.at, f"must be before the end of the scenario (duration = "
                                     f"{self.duration!r})", ("doses", i, "at"))
            total += d.count(duration)
            if total > LIMITS["max_dose_events"]:
                field = "every" if d.every is not None else "at"
                raise _Problem(getattr(d, field),
                               f"the doses expand to more than {LIMITS['max_dose_events']:,} dose "
                               "events per subject (the most allowed); dose less often or for "
                               "a shorter time", ("doses", i, field))
        if subjects * total > LIMITS["max_dose_cells"]:
            raise _Problem(subjects, f"{subjects:,} subjects × {total:,} dose events is more than the "
                                     f"{LIMITS['max_dose_cells']:,} dose-event cells one run can hold in "
                                     "memory: fewer subjects or fewer doses", ("cohort", "subjects"))
        return self

    def _check_parameters_are_read(self, course: Optional[str]) -> None:
        """A [parameters] entry that nothing in this kind of scenario reads would be written to the
        results and report as set, yet change nothing: the behaviour's parameters are read only by
        an agent ([paradigm], [life], [trial]), the person's (behavior/human.py) only by a course."""
        from opioidsim.overrides import LAYERS_READ, parameter_layer

        readers = LAYERS_READ["dose" if course is None else "paradigm" if course == "paradigm" else "course"]
        for name in self.parameters:
            layer = parameter_layer(name)
            if layer in readers:
                continue
            what = ("the behaviour (behavior/agent.py), read only where an agent chooses its doses: a "
                    "[paradigm], [life] or [trial]" if layer == "agent" else
                    "a person's choices (behavior/human.py), read only by a [life] or [trial]")
            here = ("this scenario doses by [[dose]] entries" if course is None
                    else f"this scenario is a [{course}]")
            raise _Problem(self.parameters[name], f"is a parameter of {what}; {here}, so setting it would "
                                                  "change nothing: remove it", ("parameters", name))

    def _check_course(self, key: str, duration: float) -> None:
        """A [life] or [trial]: no [[dose]] entries, its own length, and the memory it needs."""
        from .course import DEFAULT_COURSE_READOUTS, STEP_COLUMNS

        course = getattr(self, key)
        if self.doses:
            raise _Problem(self.doses[0].drug, f"a scenario with a [{key}] takes its doses from the subjects' "
                                               "choices and the programme: remove the [[dose]] entries",
                           ("doses", 0, "drug"))
        if abs(duration - course.length_min) > 1e-6:
            raise _Problem(self.duration, f"must equal the length of the [{key}] "
                                          f"({course.length_min / 1440:g} days); leave duration out",
                           ("duration",))
        # every decision step of every subject is held in memory (behaviour and readouts)
        steps = round(course.length_min / course.decide_every_min)
        per_step = STEP_COLUMNS + (len(self.readouts) if self.readouts else DEFAULT_COURSE_READOUTS)
        values = self.cohort.subjects * steps * per_step
        limit = LIMITS["max_course_values"]
        if values > limit:
            subjects = self.cohort.subjects
            field = ("cohort", "subjects") if subjects > 1 else (key, "decide_every")
            raise _Problem(subjects if subjects > 1 else course.decide_every,
                           f"{subjects:,} subjects × {steps:,} decision steps × {per_step} values a step "
                           f"= {values:,} values, more than the {limit:,} (about 12 GB) one run can hold in "
                           f"memory: fewer subjects, a shorter [{key}], fewer readouts or a longer "
                           f"{key}.decide_every", field)

    # -- internal units and helpers ------------------------------------------------------------
    @property
    def duration_min(self) -> float:
        return parse_quantity(self.duration, "time")

    @property
    def record_every_min(self) -> float:
        return parse_quantity(self.record_every, "time")

    @property
    def recorded_readouts(self) -> list[str]:
        """The readouts to record: those asked for, or all of READOUTS."""
        return list(READOUTS) if self.readouts is None else list(self.readouts)

    def dose_schedule(self) -> list[tuple[float, Dose]]:
        """All dose events (time in min, the Dose entry), sorted by time (stable)."""
        duration = self.duration_min
        events = [(t, d) for d in self.doses for t in d.times_min(duration)]
        events.sort(key=lambda e: e[0])
        return events

    def with_solver(self, rtol: Optional[float] = None, smallest_step: Optional[str] = None,
                    method: Optional[str] = None, records: Optional[str] = None) -> "Scenario":
        """A copy with the [solver] rtol, smallest_step, method and/or records replaced (validated;
        None keeps the scenario's own setting)."""
        given = (("rtol", rtol), ("smallest_step", smallest_step), ("method", method), ("records", records))
        solver = {**self.solver.to_toml_dict(), **{k: v for k, v in given if v is not None}}
        try:
            return type(self).model_validate({**self.model_dump(), "solver": solver})
        except ValidationError as exc:
            raise _to_scenario_error(exc) from None
        except ScenarioError as exc:
            raise _rerooted(exc, toml=False) from None

    def with_parameters(self, settings: dict[str, Any]) -> "Scenario":
        """A copy whose [parameters] also set `settings` (parameter name → a number in its declared
        unit or a quantity with a unit; validated), replacing any the scenario already sets."""
        try:
            return type(self).model_validate({**self.model_dump(), "parameters": {**self.parameters, **settings}})
        except ValidationError as exc:
            raise _to_scenario_error(exc) from None
        except ScenarioError as exc:
            raise _rerooted(exc, toml=False) from None

    def with_cohort(self, subjects: Optional[int] = None, seed: Optional[int] = None) -> "Scenario":
        """A copy with the cohort size and/or seed replaced (validated). In an experiment with
        [[paradigm.group]] tables, `subjects` is the number of subjects in EACH group."""
        if subjects is not None and self.paradigm is not None and self.paradigm.groups:
            n = subjects
            groups = [g.model_dump(exclude_none=True) | {"subjects": n} for g in self.paradigm.groups]
            data = self.model_dump()
            data["paradigm"] = {**self.paradigm.to_toml_dict(), "group": groups}
            data["cohort"] = {**self.cohort.model_dump(), "subjects": n * len(groups),
                              "seed": self.cohort.seed if seed is None else seed}
            try:
                return type(self).model_validate(data)
            except ValidationError as exc:
                raise _to_scenario_error(exc) from None
        cohort = Cohort(**{
            **self.cohort.model_dump(),
            "subjects": self.cohort.subjects if subjects is None else subjects,
            "seed": self.cohort.seed if seed is None else seed,
        })
        if cohort.subjects != self.cohort.subjects:  # the size limits depend on the cohort
            try:
                return type(self).model_validate({**self.model_dump(), "cohort": cohort.model_dump()})
            except ValidationError as exc:
                raise _to_scenario_error(exc) from None
        return self.model_copy(update={"cohort": cohort})

    def with_course(self, **fields: Any) -> "Scenario":
        """A copy whose [life] or [trial] table has the given fields replaced, e.g.
        ``with_course(follow_up="4w")``, validated as a scenario file's would be; its duration is the
        course's new length."""
        key = next((k for k in ("life", "trial") if getattr(self, k) is not None), None)
        if key is None:
            raise ScenarioError("<scenario>", self.name, "a scenario with a [life] or [trial] table "
                                "(this one has neither, so it has no course fields to replace)")
        data = {k: v for k, v in self.model_dump().items() if k != "duration"}
        data[key] = {**getattr(self, key).model_dump(), **fields}
        try:
            return type(self).model_validate(data)
        except ValidationError as exc:
            raise _to_scenario_error(exc) from None

    # -- TOML ------------------------------------------------------------------------------------
    def to_toml_dict(self) -> dict[str, Any]:
        header: dict[str, Any] = {
            "name": self.name, "description": self.description,
            "duration": self.duration, "record_every": self.record_every,
        }
        if self.readouts is not None:
            header["readouts"] = list(self.readouts)
        out: dict[str, Any] = {
            "scenario": header,
            "cohort": {"subjects": self.cohort.subjects, "seed": self.cohort.seed,
                       **({} if self.cohort.age_at_first_use is None
                          else {"age_at_first_use": self.cohort.age_at_first_use}),
                       **({} if self.cohort.species == "human" else {"species": self.cohort.species}),
                       **{k: getattr(self.cohort, k) for k in ("depression", "ptsd") if getattr(self.cohort, k)}},
            "conditions": {"pain_stimulus": self.conditions.pain_stimulus,
                           **({} if self.conditions.glt1_drug == "none" else {"glt1_drug": self.conditions.glt1_drug})},
        }
        if self.doses:
            out["dose"] = [
                {k: v for k, v in d.model_dump().items() if v is not None} for d in self.doses
            ]
        if self.solver.to_toml_dict():  # only when set: a scenario without it reads as before
            out["solver"] = self.solver.to_toml_dict()
        if self.parameters:
            out["parameters"] = dict(self.parameters)
        if self.paradigm is not None:
            out["paradigm"] = self.paradigm.to_toml_dict()
        for key in ("life", "trial"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key).to_toml_dict()
        return out

    def to_toml(self) -> str:
        """The scenario as TOML text; ``Scenario.from_toml_text(s.to_toml()) == s``."""
        import tomli_w

        data = self.to_toml_dict()
        parts = [tomli_w.dumps({key: data[key]}) for key in ("scenario", "cohort", "conditions")]
        for dose in data.get("dose", []):
            parts.append("[[dose]]\n" + tomli_w.dumps(dose))
        for key in ("solver", "parameters", "paradigm", "life", "trial"):
            if key in data:
                parts.append(tomli_w.dumps({key: data[key]}))
        return "\n".join(parts)

    @classmethod
    def from_toml_dict(cls, data: Any, *, default_name: Optional[str] = None) -> "Scenario":
        """Build from the TOML shape ({scenario, cohort, conditions, dose}); errors use TOML paths."""
        if not isinstance(data, dict):
            raise ScenarioError("<file>", data, "a scenario must be a table with [scenario], "
                                "[cohort], [conditions] and [[dose]] entries")
        unknown = [k for k in data if k not in _TOP_TABLES]
        if unknown:
            k = unknown[0]
            raise ScenarioError(str(k), data[k], "unknown table or key; a scenario file has "
                                f"[{'], ['.join(_TOP_TABLES[:3])}], [[dose]], [solver], [parameters], [paradigm], [life] "
                                "and [trial]",
                                more=len(unknown) - 1)
        if "scenario" not in data:
            course = next((k for k in ("paradigm", "life", "trial") if k in data), None)
            raise ScenarioError("scenario", MISSING, "a [scenario] table is required, with at least "
                                + ('duration = "..." (e.g. "12h")' if course is None else
                                   f'name = "..." (the [{course}] sets the duration)'))
        header = data["scenario"]
        if not isinstance(header, dict):
            raise ScenarioError("scenario", header, "must be a table: [scenario] with name, "
                                "description, duration, record_every, readouts")
        bad = [k for k in header if k not in _HEADER_FIELDS]
        if bad:
            raise ScenarioError(f"scenario.{bad[0]}", header[bad[0]],
                                f"unknown key; [scenario] allows {', '.join(_HEADER_FIELDS)}",
                                more=len(bad) - 1)
        flat: dict[str, Any] = dict(header)
        if default_name is not None and "name" not in flat and _NAME_RE.match(default_name):
            flat["name"] = default_name
        for key, target in (("cohort", "cohort"), ("conditions", "conditions"), ("dose", "doses"), ("solver", "solver"),
                            ("parameters", "parameters"), ("paradigm", "paradigm"), ("life", "life"), ("trial", "trial")):
            if key in data:
                flat[target] = data[key]
        try:
            return cls.model_validate(flat)
        except ValidationError as exc:
            raise _to_scenario_error(exc, toml=True) from None
        except ScenarioError as exc:
            raise _rerooted(exc, toml=True) from None

    @classmethod
    def from_toml_text(cls, text: str, *, source: str = "<text>",
                       default_name: Optional[str] = None) -> "Scenario":
        if not isinstance(text, str):
            raise ScenarioError("<file>", source, "scenario text must be a str")
        try:
            data = _toml.loads(text)
        except _toml.TOMLDecodeError as exc:
            line = getattr(exc, "lineno", None)
            detail = str(exc).splitlines()[0] if str(exc) else "syntax error"
            where = f" line {line}:" if line and f"line {line}" not in detail else ""
            err = ScenarioError("<file>", source, detail, message=(
                f"scenario file {source!r} is not valid TOML:{where} {detail}"))
            err.line = line  # type: ignore[attr-defined]
            raise err from None
        except RecursionError:  # tomllib reads nested arrays and inline tables recursively
            raise ScenarioError("<file>", source, "arrays and tables nested at most a few levels deep",
                                message=f"scenario file {source!r} is not a scenario: its arrays or "
                                        "tables are nested too deeply to read") from None
        return cls.from_toml_dict(data, default_name=default_name)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "Scenario":
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ScenarioError("<file>", str(p), "", message=(
                f"scenario file '{p}' does not exist")) from None
        except IsADirectoryError:
            raise ScenarioError("<file>", str(p), "", message=(
                f"scenario file '{p}' is a folder, not a .toml file")) from None
        except UnicodeDecodeError:
            raise ScenarioError("<file>", str(p), "", message=(
                f"scenario file '{p}' is not UTF-8 text")) from None
        except OSError as exc:
            raise ScenarioError("<file>", str(p), "", message=(
                f"scenario file '{p}' cannot be read: {exc.strerror or exc}")) from None
        except ValueError:  # a NUL character in the path (found by the fuzzer, issue 9)
            raise ScenarioError("<file>", str(p), "", message=(
                f"scenario file {str(p)!r} cannot be read: a path cannot hold a NUL character")) from None
        return cls.from_toml_text(text, source=str(p), default_name=p.stem)


# ---------------------------------------------------------------------------------------------
# pydantic errors → one ScenarioError
# ---------------------------------------------------------------------------------------------
_KEYS = {
    "scenario": _HEADER_FIELDS,
    "scenario_py": tuple(Scenario.model_fields),
    "cohort": tuple(Cohort.model_fields),
    "conditions": tuple(Conditions.model_fields),
    "dose": tuple(Dose.model_fields),
    "solver": tuple(Solver.model_fields),
}


def _path(loc: Iterable[Any], *, toml: bool) -> str:
    parts: list[str] = []
    for i, item in enumerate(loc):
        if isinstance(item, int):
            parts.append(f"[{item}]")
            continue
        item = str(item)
        if toml and i == 0:
            if item == "doses":
                item = "dose"
            elif item in _HEADER_FIELDS:
                item = f"scenario.{item}"
        if toml and item in ("phases", "periods", "arms", "groups"):
            item = item[:-1]
        parts.append(item if not parts else f".{item}")
    return "".join(parts) or "<scenario>"


def _keys_at(loc: tuple, *, toml: bool) -> tuple[str, ...]:
    parent = [x for x in loc[:-1] if not isinstance(x, int)]
    where = parent[-1] if parent else None
    if where in ("doses", "dose"):
        return _KEYS["dose"]
    if where in ("paradigm", "phases", "phase", "groups", "group"):
        from .paradigm import Group, Phase

        if where in ("groups", "group"):
            return tuple(Group.model_fields)
        return tuple(Phase.model_fields) if where in ("phases", "phase") else ("drug", "infusion", "decide_every",
                                                                                "phase", "group")
    if where in ("life", "trial", "period", "periods", "arm", "arms", "supply"):
        from .course import Arm, Life, Period, Supply, Trial

        table = {"life": Life, "trial": Trial, "period": Period, "periods": Period, "arm": Arm, "arms": Arm,
                 "supply": Supply}[where]
        names = tuple(table.model_fields)
        return tuple({"periods": "period", "arms": "arm"}.get(n, n) for n in names)
    if where in ("cohort", "conditions", "solver"):
        return _KEYS[where]
    if toml:
        return _KEYS["scenario"]
    return _KEYS["scenario_py"]


def _describe(err: dict, *, toml: bool, context: tuple = ()) -> tuple[tuple, Any, str, int]:
    """(location, value, allowed, extra problem count) for one pydantic error.

    ``context`` is the location of the model that raised (only used to list its allowed keys).
    """
    loc = tuple(err.get("loc", ()))
    ctx = err.get("ctx") or {}
    inner = ctx.get("error")
    if isinstance(inner, _Problem):
        return loc + inner.suffix, inner.value, inner.allowed, 0
    if isinstance(inner, ScenarioError):
        # Raised by a nested model's __init__ (pydantic calls custom __init__s while validating):
        # re-root its location under ours.
        rel = getattr(inner, "_loc", None)
        if rel is None:
            return loc, inner.value, inner.allowed, inner.more
        return loc + rel, inner.value, inner.allowed, inner.more
    kind = err.get("type", "")
    value = err.get("input", None)
    if kind == "missing":
        name = str(loc[-1]) if loc else "field"
        examples = {"duration": 'e.g. duration = "12h"', "drug": 'e.g. drug = "heroin"',
                    "amount": 'e.g. amount = "10 mg"'}
        return loc, MISSING, f"required, {examples.get(name, 'please give it')}", 0
    if kind == "extra_forbidden":
        keys = _keys_at(context + loc, toml=toml)
        if toml:
            keys = tuple("dose" if k == "doses" else k for k in keys)
        return loc, value, f"unknown key; allowed here: {', '.join(keys)}", 0
    msg = str(err.get("msg", "invalid value"))
    msg = msg[:1].lower() + msg[1:]
    return loc, value, msg, 0


def _error_at(loc: tuple, value: Any, allowed: str, more: int, *, toml: bool,
              prefix: tuple = ()) -> ScenarioError:
    err = ScenarioError(_path(prefix + loc, toml=toml), value, allowed, more=more)
    err._loc = loc  # type: ignore[attr-defined]  # relative location, for re-rooting
    return err


def _to_scenario_error(exc: ValidationError, *, toml: bool = False,
                       prefix: tuple = ()) -> ScenarioError:
    errors = exc.errors()
    if not errors:  # pragma: no cover
        return ScenarioError("<scenario>", None, str(exc))
    loc, value, allowed, _ = _describe(errors[0], toml=toml, context=prefix)
    # Count every problem, including those a nested model folded into one error.
    total = 0
    for e in errors:
        inner = (e.get("ctx") or {}).get("error")
        total += 1 + (inner.more if isinstance(inner, ScenarioError) else 0)
    return _error_at(loc, value, allowed, total - 1, toml=toml, prefix=prefix)


def _rerooted(err: ScenarioError, *, toml: bool) -> ScenarioError:
    rel = getattr(err, "_loc", None)
    if rel is None:
        return err
    return _error_at(rel, err.value, err.allowed, err.more, toml=toml)


# ---------------------------------------------------------------------------------------------
# Built-ins and loading
# ---------------------------------------------------------------------------------------------
def builtin_dir():
    """The folder (a Traversable) holding the built-in scenario files."""
    return resources.files("opioidsim.scenarios").joinpath("builtin")


def _builtin_files() -> dict[str, Any]:
    out = {}
    for entry in builtin_dir().iterdir():
        if entry.name.endswith(".toml") and entry.is_file():
            out[entry.name[: -len(".toml")]] = entry
    return dict(sorted(out.items()))


def builtin_scenarios() -> dict[str, str]:
    """Built-in scenario name → its one-line description."""
    result = {}
    for name, entry in _builtin_files().items():
        try:
            data = _toml.loads(entry.read_text(encoding="utf-8"))
            result[name] = str(data.get("scenario", {}).get("description", "")).strip()
        except Exception:  # a broken built-in is a bug; still list it
            result[name] = "(cannot be read)"
    return result


def load_scenario(name_or_path: str | os.PathLike | Scenario) -> Scenario:
    """A built-in scenario by name (see :func:`builtin_scenarios`) or a scenario .toml file."""
    if isinstance(name_or_path, Scenario):
        return name_or_path
    if isinstance(name_or_path, os.PathLike):
        return Scenario.from_file(name_or_path)
    if not isinstance(name_or_path, str):
        raise ScenarioError("<name>", name_or_path, "give a built-in scenario name or a path "
                            "to a .toml file")
    text = name_or_path
    files = _builtin_files()
    looks_like_path = text.endswith(".toml") or os.sep in text or "/" in text
    try:
        is_file = Path(text).is_file()
    except (OSError, ValueError):  # a name too long for a path, or with a NUL (found by the fuzzer)
        is_file = False
    if looks_like_path or (is_file and text not in files):
        return Scenario.from_file(text)
    if text in files:
        entry = files[text]
        return Scenario.from_toml_text(entry.read_text(encoding="utf-8"),
                                       source=f"builtin:{text}", default_name=text)
    close = difflib.get_close_matches(text, list(files), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ScenarioError("<name>", text, "", message=(
        f"unknown scenario {text!r}: not a built-in name or a .toml file; {hint}"
        f"built-in scenarios: {', '.join(files)}"))


from .paradigm import Paradigm  # noqa: E402  (the paradigm module builds on this one's helpers)
from .course import Life, Trial  # noqa: E402  (likewise)


def _course(key: str, value: Any):
    table = {"life": Life, "trial": Trial}[key]
    return value if isinstance(value, table) else table(**value) if isinstance(value, dict) else None


Scenario.model_rebuild()
