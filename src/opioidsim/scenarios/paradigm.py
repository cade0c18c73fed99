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
from opioidsim.errors import ScenarioError
from opioidsim.units import parse_quantity

from .schema import _Model, _Problem, _strict_int, _time, _to_scenario_error

PHASE_KINDS = ("self_administration", "progressive_ratio", "extinction", "abstinence", "reinstatement",
               "cpp_conditioning", "cpp_test")
TRIGGERS = ("cue", "footshock", "priming")
SPECIES = ("human", "rat")
DAY_MIN = 24 * 60.0
#: the most decision steps one paradigm may have (an input sanity limit: 1 min steps for ~5 years)
MAX_EPOCHS = 3_000_000


def per_kg(value: Any, what: str, *, zero: bool = False) -> float:
    """"60 ug/kg" → 0.06 (mg per kg body weight), or _Problem. ``zero``: "0 ug/kg" is allowed
    (a saline control: the vehicle without the drug)."""
    allowed = f"must be {what} per kg of body weight written as text, e.g. \"60 ug/kg\" or \"0.25 mg/kg\""
    if zero:
        allowed += " (\"0 ug/kg\" for saline)"
    if not isinstance(value, str) or "/" not in value:
        raise _Problem(value, allowed)
    mass, _, per = value.rpartition("/")
    if per.strip().lower() != "kg":
        raise _Problem(value, allowed)
    try:
        mg = parse_quantity(mass.strip(), "mass")
    except Exception:
        raise _Problem(value, allowed) from None
    if not (math.isfinite(mg) and (mg > 0 or (zero and mg == 0))):
        raise _Problem(value, allowed + (" (0 or more)" if zero else " (more than 0)"))
    if mg > 50.0:
        raise _Problem(value, "at most 50 mg/kg (an input sanity limit of the simulator)")
    return mg


def _name(v: Any, what: str, example: str) -> str:
    """A short name: letters, digits, spaces, '-', '_' and '.', 1-40 characters."""
    ok = isinstance(v, str) and 0 < len(v.strip()) <= 40 and all(c.isalnum() or c in " -_." for c in v.strip())
    if not ok:
        raise _Problem(v, f"must be {what}: 1 to 40 letters, digits, spaces, '-', '_' or '.', e.g. \"{example}\"")
    return v.strip()


class Phase(_Model):
    """One phase of an experiment: `sessions` sessions of one kind, or a drug-free period."""

    kind: str
    #: a name by which [[paradigm.group]] tables change this phase for their subjects
    name: Optional[str] = None
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

    @field_validator("name", mode="before")
    @classmethod
    def _check_name(cls, v: Any) -> Optional[str]:
        return None if v is None else _name(v, "a phase name", "escalation")

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
        per_kg(v, "a dose", zero=True)
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


#: the phase fields a group may change; kind, sessions and sessions_per_day are shared by all
#: groups, so that session k is the same session of the experiment for every subject
GROUP_PHASE_FIELDS = ("session_length", "ratio", "timeout", "cue", "trigger", "priming_dose", "dose", "duration")
#: the most groups one experiment may have (an input sanity limit)
MAX_GROUPS = 26


class Group(_Model):
    """One group of a between-group design: its name, its subjects and what differs for them
    (the infusion dose, and fields of named phases), e.g. ::

        [[paradigm.group]]
        name = "LgA"
        subjects = 4
        phase.escalation.session_length = "6h"
    """

    name: str
    subjects: int
    #: the dose of one self-administered infusion for this group ("0 ug/kg": saline)
    infusion: Optional[str] = None
    #: changes to named phases: {phase name: {field: value}}
    phase: dict[str, Any] = Field(default_factory=dict)

    def __init__(self, **kwargs: Any) -> None:
        from pydantic import ValidationError

        try:
            super().__init__(**kwargs)
        except ValidationError as exc:
            raise _to_scenario_error(exc, prefix=("group",)) from None

    @field_validator("name", mode="before")
    @classmethod
    def _check_name(cls, v: Any) -> str:
        return _name(v, "the group's name", "LgA")

    @field_validator("subjects", mode="before")
    @classmethod
    def _check_subjects(cls, v: Any) -> int:
        return _strict_int(v, 1, 100_000, "the number of subjects in this group")

    @field_validator("infusion", mode="before")
    @classmethod
    def _check_infusion(cls, v: Any) -> Optional[str]:
        if v is None:
            return None
        per_kg(v, "the dose of one infusion", zero=True)
        return v.strip()

    @field_validator("phase", mode="before")
    @classmethod
    def _check_phase(cls, v: Any) -> dict:
        allowed = ("must be a table of changes by phase name, e.g. phase.escalation.session_length = \"6h\" "
                   "(the phase has name = \"escalation\")")
        if not isinstance(v, dict):
            raise _Problem(v, allowed)
        for name, change in v.items():
            if not isinstance(change, dict):
                raise _Problem(change, allowed, (name,))
        return dict(v)


class Paradigm(_Model):
    """An animal (or human laboratory) experiment: the drug, the infusion, the phases and, for a
    between-group design, the groups (subjects of all groups run side by side)."""

    drug: str = "heroin"
    infusion: str = "60 ug/kg"
    decide_every: str = "1min"
    phases: list[Phase] = Field(default_factory=list)
    groups: list[Group] = Field(default_factory=list)

    def __init__(self, **kwargs: Any) -> None:
        from pydantic import ValidationError

        if "phase" in kwargs and "phases" not in kwargs:  # the TOML spelling ([[paradigm.phase]])
            kwargs["phases"] = kwargs.pop("phase")
        if "group" in kwargs and "groups" not in kwargs:  # the TOML spelling ([[paradigm.group]])
            kwargs["groups"] = kwargs.pop("group")
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
        per_kg(v, "the dose of one infusion", zero=True)
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

    @field_validator("groups", mode="before")
    @classmethod
    def _check_groups(cls, v: Any) -> Any:
        allowed = "must be a list of groups ([[paradigm.group]] tables with name and subjects)"
        if not isinstance(v, (list, tuple)):
            raise _Problem(v, allowed)
        if len(v) > MAX_GROUPS:
            raise _Problem(len(v), f"at most {MAX_GROUPS} groups (an input sanity limit)")
        for i, g in enumerate(v):
            if not isinstance(g, (dict, Group)):
                raise _Problem(g, "each group must be a table: [[paradigm.group]] with name and subjects", (i,))
        return list(v)

    @model_validator(mode="after")
    def _check_whole(self) -> "Paradigm":
        if not self.phases:
            raise _Problem([], "at least one [[paradigm.phase]] is needed", ("phases",))
        names = [p.name for p in self.phases if p.name is not None]
        for i, p in enumerate(self.phases):
            if p.name is not None and p.name in [q.name for q in self.phases[:i]]:
                raise _Problem(p.name, "another phase has this name: phase names must differ", ("phases", i, "name"))
        seen: set[str] = set()
        for i, g in enumerate(self.groups):
            if g.name in seen:
                raise _Problem(g.name, "another group has this name: group names must differ", ("groups", i, "name"))
            seen.add(g.name)
            self._check_group_phases(i, g, names)
        length = self.length_min
        epochs = length / self.decide_every_min
        if epochs > MAX_EPOCHS:
            raise _Problem(self.decide_every, f"the paradigm lasts {length / DAY_MIN:,.0f} days: "
                                              f"{epochs:,.0f} decision steps, more than the {MAX_EPOCHS:,} "
                                              "allowed; decide less often or shorten it", ("decide_every",))
        return self

    def _check_group_phases(self, i: int, group: Group, names: list[str]) -> None:
        """Each change names a phase and a field a group may change, and leaves a valid phase."""
        for name, change in group.phase.items():
            at = ("groups", i, "phase", name)
            if name not in names:
                known = ", ".join(names) if names else "none (give the phase a name = ...)"
                raise _Problem(change, f"no phase has this name; named phases: {known}", at)
            base = next(p for p in self.phases if p.name == name)
            for key in change:
                if key not in GROUP_PHASE_FIELDS:
                    raise _Problem(change[key], f"not a field a group may change; allowed here: "
                                                f"{', '.join(GROUP_PHASE_FIELDS)} (kind, sessions and "
                                                "sessions_per_day are shared by all groups)", at + (key,))
                if change[key] is None:  # TOML has no null, and "change it to nothing" means nothing
                    raise _Problem(None, "must be a value; leave the field out to keep the phase's own",
                                   at + (key,))
            try:
                Phase(**{**base.model_dump(exclude_none=True), **change})
            except ScenarioError as exc:
                rel = tuple(getattr(exc, "_loc", ()) or ())
                raise _Problem(exc.value, exc.allowed, at + rel[-1:]) from None

    def group_paradigm(self, name: str) -> "Paradigm":
        """The experiment as the subjects of group `name` live it: its changes applied, no groups."""
        group = next((g for g in self.groups if g.name == name), None)
        if group is None:
            raise KeyError(f"no group named {name!r}; groups: {', '.join(self.group_names)}")
        phases = [Phase(**{**p.model_dump(exclude_none=True), **group.phase.get(p.name, {})})
                  if p.name is not None and p.name in group.phase else p for p in self.phases]
        return self.model_copy(update={"phases": phases, "groups": [],
                                       "infusion": group.infusion if group.infusion is not None else self.infusion})

    @property
    def group_names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.groups)

    @property
    def subjects(self) -> Optional[int]:
        """The subjects of all groups together (None without groups: the cohort's size)."""
        return sum(g.subjects for g in self.groups) if self.groups else None

    @property
    def infusion_mg_per_kg(self) -> float:
        return per_kg(self.infusion, "", zero=True)

    @property
    def decide_every_min(self) -> float:
        return parse_quantity(self.decide_every, "time")

    @property
    def length_min(self) -> float:
        """The experiment's length: its longest group's (groups may differ in session or
        abstinence lengths)."""
        own = sum(p.length_min for p in self.phases)
        if not self.groups:
            return own
        return max(self.group_paradigm(g.name).length_min for g in self.groups)

    def to_toml_dict(self) -> dict[str, Any]:
        out = {"drug": self.drug, "infusion": self.infusion, "decide_every": self.decide_every,
               "phase": [{k: v for k, v in p.model_dump().items() if v is not None} for p in self.phases]}
        if self.groups:
            out["group"] = [{k: v for k, v in g.model_dump().items() if v is not None and v != {}}
                            for g in self.groups]
        return out
