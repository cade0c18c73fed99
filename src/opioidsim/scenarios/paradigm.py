"""The `[paradigm]` table of a scenario: an animal experiment as a list of phases.

A paradigm replaces the scenario's dose list: doses come from the subject's own lever presses
(self-administration) or from the experimenter (priming, place conditioning). Example::

    [cohort]
    subjects = 8
    species = "rat"

    [paradigm]
    drug = "heroin"
    infusion = "60 ug/kg"        # per self-administered IV infusion
    decide_every = "1min"        # the agent's decision step during sessions

    [[paradigm.phase]]
    kind = "self_administration"
    sessions = 14
    session_length = "6h"
    ratio = 1                    # fixed ratio (FR1)
    timeout = "20s"

    [[paradigm.phase]]
    kind = "extinction"          # the lever gives nothing
    sessions = 10
    session_length = "3h"

    [[paradigm.phase]]
    kind = "abstinence"          # home cage, no lever
    duration = "7d"

    [[paradigm.phase]]
    kind = "reinstatement"
    trigger = "priming"          # or "cue", "footshock"
    priming_dose = "0.25 mg/kg"
    session_length = "3h"

Sessions start at the beginning of each day (several a day are spread evenly over it); the time
between sessions is spent in the home cage. The scenario's `duration` may be left out: it is the
paradigm's length. Problems are reported like every other scenario field, e.g.
``paradigm.phase[1].trigger = 'shock': must be one of cue, footshock, priming``.
"""
from __future__ import annotations

import math
from typing import Any, Optional

from pydantic import Field, field_validator, model_validator

from opioidsim.drugs import DRUGS
from opioidsim.errors import MISSING as MISSING_VALUE
from opioidsim.units import parse_quantity

from .schema import _Model, _Problem, _strict_int, _time, _to_scenario_error

PHASE_KINDS = ("self_administration", "progressive_ratio", "extinction", "abstinence", "reinstatement",
               "cpp_conditioning", "cpp_test")
TRIGGERS = ("cue", "footshock", "priming")
SPECIES = ("human", "rat")
DAY_MIN = 24 * 60.0
#: the most decision steps one paradigm may have (an input sanity limit: 1 min steps for ~5 years)
MAX_EPOCHS = 3_000_000


def per_kg(value: Any, what: str) -> float:
    """"60 ug/kg" → 0.06 (mg per kg body weight), or _Problem."""
    allowed = f"must be {what} per kg of body weight written as text, e.g. \"60 ug/kg\" or \"0.25 mg/kg\""
    if not isinstance(value, str) or "/" not in value:
        raise _Problem(value, allowed)
    mass, _, per = value.rpartition("/")
    if per.strip().lower() != "kg":
        raise _Problem(value, allowed)
    try:
        mg = parse_quantity(mass.strip(), "mass")
    except Exception:
        raise _Problem(value, allowed) from None
    if not (math.isfinite(mg) and mg > 0):
        raise _Problem(value, allowed + " (more than 0)")
    if mg > 50.0:
        raise _Problem(value, "at most 50 mg/kg (an input sanity limit of the simulator)")
    return mg


class Phase(_Model):
    """One phase of an experiment: `sessions` sessions of one kind, or a drug-free period."""

    kind: str
    sessions: int = 1
    session_length: str = "1h"
    sessions_per_day: int = 1
    #: fixed-ratio requirement (presses per infusion); progressive_ratio phases use the
    #: Richardson & Roberts (1996) series instead
    ratio: int = 1
    timeout: str = "20s"
    #: a discrete light/tone cue paired with each infusion (self-administration) or given for each
    #: press (a cue reinstatement test)
    cue: bool = True
    trigger: Optional[str] = None
    priming_dose: Optional[str] = None
    #: experimenter-given dose on conditioning days (cpp_conditioning)
    dose: Optional[str] = None
    #: length of a drug-free period (abstinence)
    duration: Optional[str] = None

    def __init__(self, **kwargs: Any) -> None:
        from pydantic import ValidationError

        try:
            super().__init__(**kwargs)
        except ValidationError as exc:
            raise _to_scenario_error(exc, prefix=("phase",)) from None

    @field_validator("kind", mode="before")
    @classmethod
    def _check_kind(cls, v: Any) -> str:
        if isinstance(v, str) and v.strip().lower() in PHASE_KINDS:
            return v.strip().lower()
        raise _Problem(v, f"must be one of {', '.join(PHASE_KINDS)}")

    @field_validator("sessions", mode="before")
    @classmethod
    def _check_sessions(cls, v: Any) -> int:
        return _strict_int(v, 1, 2000, "the number of sessions in this phase")

    @field_validator("sessions_per_day", mode="before")
    @classmethod
    def _check_per_day(cls, v: Any) -> int:
        return _strict_int(v, 1, 12, "sessions per day")

    @field_validator("ratio", mode="before")
    @classmethod
    def _check_ratio(cls, v: Any) -> int:
        return _strict_int(v, 1, 100, "lever presses per infusion (fixed ratio)")

    @field_validator("session_length", mode="before")
    @classmethod
    def _check_length(cls, v: Any) -> str:
        x = _time(v)
        if not (1.0 <= x <= DAY_MIN):
            raise _Problem(v, "must be from 1 min to 24 h, e.g. \"1h\", \"6h\", \"23h\"")
        return v.strip()

    @field_validator("timeout", mode="before")
    @classmethod
    def _check_timeout(cls, v: Any) -> str:
        x = _time(v)
        if not (0.0 <= x <= 60.0):
            raise _Problem(v, "must be from 0 s to 1 h (the time-out after each infusion), e.g. \"20s\"")
        return v.strip()

    @field_validator("cue", mode="before")
    @classmethod
    def _check_cue(cls, v: Any) -> bool:
        if isinstance(v, bool):
            return v
        raise _Problem(v, "must be true or false")

    @field_validator("trigger", mode="before")
    @classmethod
    def _check_trigger(cls, v: Any) -> Optional[str]:
        if v is None:
            return None
        if isinstance(v, str) and v.strip().lower() in TRIGGERS:
            return v.strip().lower()
        raise _Problem(v, f"must be one of {', '.join(TRIGGERS)}")

    @field_validator("priming_dose", "dose", mode="before")
    @classmethod
    def _check_dose(cls, v: Any) -> Optional[str]:
        if v is None:
            return None
        per_kg(v, "a dose")
        return v.strip()

    @field_validator("duration", mode="before")
    @classmethod
    def _check_duration(cls, v: Any) -> Optional[str]:
        if v is None:
            return None
        x = _time(v)
        if not (0.0 < x <= 5 * 365.25 * DAY_MIN):
            raise _Problem(v, "must be more than 0 and at most 5 years, e.g. \"30d\"")
        return v.strip()

    @model_validator(mode="after")
    def _check_whole(self) -> "Phase":
        k = self.kind
        if k == "abstinence":
            if self.duration is None:
                raise _Problem(MISSING_VALUE, "required for an abstinence phase, e.g. duration = \"30d\"",
                               ("duration",))
        elif self.duration is not None:
            raise _Problem(self.duration, f"only abstinence phases have a duration; a {k} phase has "
                                          "sessions and session_length", ("duration",))
        if k == "reinstatement":
            if self.trigger is None:
                raise _Problem(MISSING_VALUE, f"required for a reinstatement test: one of {', '.join(TRIGGERS)}",
                               ("trigger",))
            if self.trigger == "priming" and self.priming_dose is None:
                raise _Problem(MISSING_VALUE, "required for a priming test, e.g. priming_dose = \"0.25 mg/kg\"",
                               ("priming_dose",))
        else:
            if self.trigger is not None:
                raise _Problem(self.trigger, "only reinstatement phases have a trigger", ("trigger",))
        if self.priming_dose is not None and self.trigger != "priming":
            raise _Problem(self.priming_dose, "only a reinstatement phase with trigger = \"priming\" has a "
                                              "priming_dose", ("priming_dose",))
        if k == "cpp_conditioning":
            if self.dose is None:
                raise _Problem(MISSING_VALUE, "required for place conditioning, e.g. dose = \"1 mg/kg\"",
                               ("dose",))
            if self.sessions < 2:
                raise _Problem(self.sessions, "place conditioning alternates drug and vehicle days: at least 2 "
                                              "sessions", ("sessions",))
        elif self.dose is not None:
            raise _Problem(self.dose, "only cpp_conditioning phases have a dose (self-administered infusions "
                                      "use paradigm.infusion)", ("dose",))
        if self.session_length_min * self.sessions_per_day > DAY_MIN + 1e-9:
            raise _Problem(self.session_length, f"{self.sessions_per_day} sessions of {self.session_length} do "
                                                "not fit in a day", ("session_length",))
        return self

    @property
    def session_length_min(self) -> float:
        return parse_quantity(self.session_length, "time")

    @property
    def timeout_min(self) -> float:
        return parse_quantity(self.timeout, "time")

    @property
    def length_min(self) -> float:
        """How long the phase takes: whole days of sessions, or the abstinence period."""
        if self.kind == "abstinence":
            return parse_quantity(self.duration, "time")
        return math.ceil(self.sessions / self.sessions_per_day) * DAY_MIN


class Paradigm(_Model):
    """An animal (or human laboratory) experiment: the drug, the infusion and the phases."""

    drug: str = "heroin"
    infusion: str = "60 ug/kg"
    decide_every: str = "1min"
    phases: list[Phase] = Field(default_factory=list)

    def __init__(self, **kwargs: Any) -> None:
        from pydantic import ValidationError

        if "phase" in kwargs and "phases" not in kwargs:  # the TOML spelling ([[paradigm.phase]])
            kwargs["phases"] = kwargs.pop("phase")
        try:
            super().__init__(**kwargs)
        except ValidationError as exc:
            raise _to_scenario_error(exc, prefix=("paradigm",)) from None

    @field_validator("drug", mode="before")
    @classmethod
    def _check_drug(cls, v: Any) -> str:
        if isinstance(v, str) and v.strip().lower() in DRUGS and "iv" in DRUGS[v.strip().lower()].routes:
            return v.strip().lower()
        iv = [d for d, spec in DRUGS.items() if "iv" in spec.routes]
        raise _Problem(v, f"must be a drug that can be self-administered intravenously: {', '.join(iv)}")

    @field_validator("infusion", mode="before")
    @classmethod
    def _check_infusion(cls, v: Any) -> str:
        per_kg(v, "the dose of one infusion")
        return v.strip()

    @field_validator("decide_every", mode="before")
    @classmethod
    def _check_decide(cls, v: Any) -> str:
        x = _time(v)
        if not (0.25 <= x <= 60.0):
            raise _Problem(v, "must be from 15 s to 1 h (how often the subject decides), e.g. \"1min\"")
        return v.strip()

    @field_validator("phases", mode="before")
    @classmethod
    def _check_phases(cls, v: Any) -> Any:
        if not isinstance(v, (list, tuple)) or not v:
            raise _Problem(v, "must be a list of phases ([[paradigm.phase]] tables with kind = ...), at least one")
        for i, ph in enumerate(v):
            if not isinstance(ph, (dict, Phase)):
                raise _Problem(ph, "each phase must be a table: [[paradigm.phase]] with kind = ...", (i,))
        return list(v)

    @model_validator(mode="after")
    def _check_whole(self) -> "Paradigm":
        if not self.phases:
            raise _Problem([], "at least one [[paradigm.phase]] is needed", ("phases",))
        epochs = self.length_min / self.decide_every_min
        if epochs > MAX_EPOCHS:
            raise _Problem(self.decide_every, f"the paradigm lasts {self.length_min / DAY_MIN:,.0f} days: "
                                              f"{epochs:,.0f} decision steps, more than the {MAX_EPOCHS:,} "
                                              "allowed; decide less often or shorten it", ("decide_every",))
        return self

    @property
    def infusion_mg_per_kg(self) -> float:
        return per_kg(self.infusion, "")

    @property
    def decide_every_min(self) -> float:
        return parse_quantity(self.decide_every, "time")

    @property
    def length_min(self) -> float:
        return sum(p.length_min for p in self.phases)

    def to_toml_dict(self) -> dict[str, Any]:
        return {"drug": self.drug, "infusion": self.infusion, "decide_every": self.decide_every,
                "phase": [{k: v for k, v in p.model_dump().items() if v is not None} for p in self.phases]}
