"""Human courses: a `[life]` table (a life course as periods) or a `[trial]` table (a virtual
clinical trial: arms, randomisation, follow-up), both with a street `[…supply]`.

Doses come from the subject's own choices (street use) and from the programme (medication at
the clinic, when the subject attends). Example of a trial::

    [cohort]
    subjects = 200

    [trial]
    history = "60d"              # street use before randomisation (dependence develops)
    detox = "0d"                 # inpatient detoxification before randomisation (no supply)
    follow_up = "12w"
    urine_tests_per_week = 1
    missing_urine = "positive"   # a missed urine counts as positive (the usual convention)

    [trial.supply]
    route = "iv"
    dose = "20 mg"               # a typical bag, pure heroin
    fentanyl_contamination = 0.0 # probability that a bag also holds fentanyl

    [[trial.arm]]
    name = "control"             # the first arm is the control arm
    psychosocial = ["counselling"]

    [[trial.arm]]
    name = "methadone"
    medication = "methadone"
    dose = "80 mg"

A life course is a list of periods — `community` (street supply available), `forced_abstinence`
(prison, hospital: none), `treatment` (community plus a programme) — e.g. two years of use, six
months in prison, then release (a forced abstinence followed straight by treatment lasts until
the first clinic visit: release to the clinic). Problems are reported like every other scenario field, e.g.
``trial.arm[1].medication = 'metadone': must be one of none, methadone, buprenorphine, …``.
Research and teaching only: never a dosing guide for a person.
"""
from __future__ import annotations

import math
from typing import Any, Optional

from pydantic import Field, field_validator, model_validator

from opioidsim.units import parse_quantity

from .schema import LIMITS, MIN_PER_YEAR, _Model, _Problem, _real, _strict_int, _time, _to_scenario_error, \
    checked_parameters

DAY_MIN = 24 * 60.0
#: the cohort's co-occurring disorders ([cohort] prevalences), each a yes/no trait per subject
#: that a trial can stratify its randomisation on
CO_OCCURRING_DISORDERS = ("depression", "ptsd")
STRATUM_WORDS = {"depression": "depression", "ptsd": "PTSD"}
#: largest randomisation block: trials use blocks of 2-12; larger ones are kept possible for
#: many-arm designs, but a block must stay small beside the cohort to balance it
MAX_BLOCK_SIZE = 100
#: longest detox before randomisation: inpatient detoxification takes days to weeks (up to 30
#: days in Krupitsky E et al. 2011 Lancet 377:1506); three months leaves room for residential units
MAX_DETOX_DAYS = 90
WEEK_MIN = 7 * DAY_MIN
MEDICATIONS = ("none", "methadone", "buprenorphine", "naltrexone", "naltrexone_xr", "placebo")
#: the medication's drug and route in the PK module
MEDICATION_ROUTE = {"methadone": ("methadone", "oral"), "buprenorphine": ("buprenorphine", "sublingual"),
                    "naltrexone": ("naltrexone", "oral"), "naltrexone_xr": ("naltrexone", "xr_injection")}
#: the opioid agonists among them: a patient enrols expecting them to hold withdrawal
AGONIST_MEDICATIONS = ("methadone", "buprenorphine")
#: an inert dose given at the clinic as in a blinded trial's placebo arm: the patient cannot tell
#: it from the medication it imitates (`blinds`: buprenorphine's tablet unless said otherwise), so
#: enrols with the same expectation and learns from what the doses do (nothing)
PLACEBO = "placebo"
#: the programmes that give no drug (a drug-free one, an inert tablet): no dose fields, no PK target
DRUGLESS_MEDICATIONS = ("none", PLACEBO)
#: (maintenance dose, first dose, daily increase, days between doses) by medication, mg — usual
#: practice, overridable: methadone 20-30 mg first, +5-10 mg every few days to 60-120 mg (WHO 2009
#: Guidelines for the psychosocially assisted pharmacological treatment of opioid dependence);
#: buprenorphine 4 mg first, 8-16 mg by day 2-3 (SAMHSA TIP 63, 2021); oral naltrexone 50 mg daily,
#: XR naltrexone 380 mg every 4 weeks (Vivitrol label).
MEDICATION_DEFAULTS = {"methadone": (80.0, 30.0, 10.0 / 3.0, 1), "buprenorphine": (16.0, 4.0, 4.0, 1),
                       "naltrexone": (50.0, 50.0, 0.0, 1), "naltrexone_xr": (380.0, 380.0, 0.0, 28)}
PSYCHOSOCIAL = ("counselling", "cbt", "contingency_management", "dbt", "trauma_therapy", "family_therapy",
                "group_therapy", "twelve_step", "aftercare")
PERIOD_KINDS = ("community", "forced_abstinence", "treatment")
SUPPLY_DRUGS = ("heroin", "fentanyl")
SUPPLY_ROUTES = {"heroin": ("iv", "smoked", "intranasal"), "fentanyl": ("iv", "intranasal")}
MISSING_URINE = ("positive", "exclude")
#: a trial's outcomes and the effect measures each is estimated with (opioidsim.trial.stats): what
#: a [[trial.published]] entry may name
TRIAL_OUTCOME_MEASURES = {"retention": ("RR", "OR"), "urine_positive_final": ("RR",),
                          "urine_negative_proportion": ("d",), "relapse": ("RR",), "overdose": ("RR",),
                          "mortality": ("RR",), "days_abstinent": ("d",)}
#: measures on a ratio scale (positive; 1 is no effect)
RATIO_MEASURES = ("RR", "OR")
#: at most this many decision steps per subject (an input sanity limit: hourly for ~40 years)
MAX_STEPS = 400_000
#: what the course runner (behavior/course.py) holds per subject and decision step: its recorded
#: behaviour columns (RECORDED) and the physiology readouts (DEFAULT_READOUTS unless the scenario
#: lists its own); the schema's memory guard counts these (max_course_values)
STEP_COLUMNS = 12
DEFAULT_COURSE_READOUTS = 9
#: the engine's time quantum (engine/core.py QUANTUM_MIN, 3.75 s): every decision step is a whole
#: number of them, so that a day of steps is exactly a day
QUANTUM_MIN = 1.0 / 16.0


def _mg(v: Any, lo: float, hi: float, what: str) -> float:
    allowed = f"must be {what} written as text with a mass unit, from {lo:g} to {hi:g} mg, e.g. \"20 mg\""
    if not isinstance(v, str):
        raise _Problem(v, allowed)
    try:
        x = parse_quantity(v, "mass")
    except Exception:
        raise _Problem(v, allowed) from None
    if not (math.isfinite(x) and lo <= x <= hi):
        raise _Problem(v, allowed)
    return x


def _fraction(v: Any, what: str) -> float:
    return _real(v, 0.0, 1.0, f"must be a number from 0 to 1 ({what})")


def _duration(v: Any, lo_min: float, hi_min: float, what: str, example: str, *, whole_days: bool = False) -> str:
    """A length from lo_min to hi_min; whole_days: a whole number of days (the course's timeline is
    built from whole days: "1.5d" or "1y" (365.25 days) would be run as another length)."""
    x = _time(v)
    if not (lo_min <= x <= hi_min):
        raise _Problem(v, f"must be {what}, e.g. \"{example}\"")
    if whole_days and abs(x / DAY_MIN - round(x / DAY_MIN)) > 1e-9:
        raise _Problem(v, f"must be a whole number of days ({x / DAY_MIN:,.6g} days given; {what}), "
                          f"e.g. \"{example}\"")
    return v.strip()


class Supply(_Model):
    """The street supply: what a use is, how often it can be had, and who is there in an overdose."""

    drug: str = "heroin"
    route: str = "iv"
    #: one use: pure drug in a typical bag
    dose: str = "20 mg"
    #: spread of the purity from bag to bag (lognormal coefficient of variation)
    potency_cv: float = 0.5
    #: probability that a bag also holds fentanyl
    fentanyl_contamination: float = 0.0
    fentanyl_dose: str = "0.1 mg"
    #: probability that the drug can be had at a given decision (money, dealer, company)
    availability: float = 0.8
    #: probability that someone gives intranasal naloxone (4 mg) in an overdose
    naloxone_bystander: float = 0.3

    def __init__(self, **kwargs: Any) -> None:
        from pydantic import ValidationError

        try:
            super().__init__(**kwargs)
        except ValidationError as exc:
            raise _to_scenario_error(exc, prefix=("supply",)) from None

    @field_validator("drug", mode="before")
    @classmethod
    def _check_drug(cls, v: Any) -> str:
        if isinstance(v, str) and v.strip().lower() in SUPPLY_DRUGS:
            return v.strip().lower()
        raise _Problem(v, f"must be one of {', '.join(SUPPLY_DRUGS)}")

    @field_validator("route", mode="before")
    @classmethod
    def _check_route(cls, v: Any) -> str:
        routes = sorted({r for rs in SUPPLY_ROUTES.values() for r in rs})
        if isinstance(v, str) and v.strip().lower() in routes:
            return v.strip().lower()
        raise _Problem(v, f"must be one of {', '.join(routes)}")

    @field_validator("dose", mode="before")
    @classmethod
    def _check_dose(cls, v: Any) -> str:
        _mg(v, 0.001, 500.0, "the pure drug in one use")
        return v.strip()

    @field_validator("fentanyl_dose", mode="before")
    @classmethod
    def _check_fentanyl(cls, v: Any) -> str:
        _mg(v, 0.0001, 10.0, "the fentanyl in a contaminated bag")
        return v.strip()

    @field_validator("potency_cv", mode="before")
    @classmethod
    def _check_cv(cls, v: Any) -> float:
        return _real(v, 0.0, 3.0, "must be a number from 0 to 3 (coefficient of variation of the purity)")

    @field_validator("fentanyl_contamination", "availability", "naloxone_bystander", mode="before")
    @classmethod
    def _check_fraction(cls, v: Any) -> float:
        return _fraction(v, "a probability")

    @model_validator(mode="after")
    def _check_whole(self) -> "Supply":
        if self.route not in SUPPLY_ROUTES[self.drug]:
            raise _Problem(self.route, f"{self.drug} is used {' or '.join(SUPPLY_ROUTES[self.drug])} in this "
                                       "model", ("route",))
        return self

    @property
    def dose_mg(self) -> float:
        return parse_quantity(self.dose, "mass")

    @property
    def fentanyl_dose_mg(self) -> float:
        return parse_quantity(self.fentanyl_dose, "mass")


class Treatment(_Model):
    """A programme: a medication given at the clinic when the subject attends, and psychosocial
    treatments. Attendance (and so retention) is the subject's choice."""

    medication: str = "none"
    #: maintenance dose (default by medication: see MEDICATION_DEFAULTS)
    dose: Optional[str] = None
    #: first dose, raised by `titration_step` a day until the maintenance dose
    start_dose: Optional[str] = None
    titration_step: Optional[str] = None
    #: buprenorphine: the first dose waits until the subject's COWS reaches this (0: at once)
    induction_cows: float = 0.0
    #: naltrexone: days without opioid use needed before the first dose
    opioid_free_days: float = 0.0
    #: length of a linear taper to zero at the end of the period (none: maintenance to the end)
    taper: Optional[str] = None
    psychosocial: list[str] = Field(default_factory=lambda: ["counselling"])
    #: contingency management: weeks of vouchers (from the period start; none: all of it)
    cm_weeks: Optional[float] = None
    antidepressant: bool = False
    #: placebo: the medication it imitates, whose schedule it follows and whose effect the patient
    #: expects (none: an agonist tablet taken daily, as in a buprenorphine or methadone trial)
    blinds: Optional[str] = None

    @field_validator("medication", mode="before")
    @classmethod
    def _check_medication(cls, v: Any) -> str:
        if isinstance(v, str) and v.strip().lower() in MEDICATIONS:
            return v.strip().lower()
        raise _Problem(v, f"must be one of {', '.join(MEDICATIONS)}")

    @field_validator("blinds", mode="before")
    @classmethod
    def _check_blinds(cls, v: Any) -> Optional[str]:
        if v is None:
            return None
        if isinstance(v, str) and v.strip().lower() in MEDICATION_ROUTE:
            return v.strip().lower()
        raise _Problem(v, f"must be the medication the placebo imitates, one of {', '.join(MEDICATION_ROUTE)}")

    @field_validator("dose", "start_dose", mode="before")
    @classmethod
    def _check_dose(cls, v: Any) -> Optional[str]:
        if v is None:
            return None
        _mg(v, 0.1, 1000.0, "a medication dose")
        return v.strip()

    @field_validator("titration_step", mode="before")
    @classmethod
    def _check_step(cls, v: Any) -> Optional[str]:
        if v is None:
            return None
        _mg(v, 0.0, 200.0, "the daily increase while titrating")
        return v.strip()

    @field_validator("induction_cows", mode="before")
    @classmethod
    def _check_cows(cls, v: Any) -> float:
        return _real(v, 0.0, 48.0, "must be a COWS score from 0 to 48 (0: dose at once; 8-12 is usual for "
                                   "buprenorphine)")

    @field_validator("opioid_free_days", mode="before")
    @classmethod
    def _check_free(cls, v: Any) -> float:
        return _real(v, 0.0, 60.0, "must be a number of days from 0 to 60 (7-10 is usual before naltrexone)")

    @field_validator("taper", mode="before")
    @classmethod
    def _check_taper(cls, v: Any) -> Optional[str]:
        if v is None:
            return None
        return _duration(v, DAY_MIN, 365 * DAY_MIN, "from 1 day to 1 year", "21d")

    @field_validator("psychosocial", mode="before")
    @classmethod
    def _check_psychosocial(cls, v: Any) -> list:
        if not isinstance(v, (list, tuple)):
            raise _Problem(v, f"must be a list drawn from {', '.join(PSYCHOSOCIAL)} (may be empty)")
        out = []
        for i, x in enumerate(v):
            if not (isinstance(x, str) and x.strip().lower() in PSYCHOSOCIAL):
                raise _Problem(x, f"must be one of {', '.join(PSYCHOSOCIAL)}", (i,))
            out.append(x.strip().lower())
        return out

    @field_validator("cm_weeks", mode="before")
    @classmethod
    def _check_cm_weeks(cls, v: Any) -> Optional[float]:
        if v is None:
            return None
        return _real(v, 0.0, 520.0, "must be a number of weeks more than 0 and at most 520 (how long vouchers "
                                    "are paid)", lo_open=True)

    @field_validator("antidepressant", mode="before")
    @classmethod
    def _check_ad(cls, v: Any) -> bool:
        if isinstance(v, bool):
            return v
        raise _Problem(v, "must be true or false")

    def _check_medication_fields(self) -> None:
        if self.medication in DRUGLESS_MEDICATIONS:
            for f in ("dose", "start_dose", "titration_step", "taper"):
                if getattr(self, f) is not None:
                    raise _Problem(getattr(self, f), "only a programme with an active medication has a dose, "
                                                     "start_dose, titration_step or taper (a placebo holds no "
                                                     "drug)", (f,))
        if self.blinds is not None and self.medication != PLACEBO:
            raise _Problem(self.blinds, "only a placebo imitates a medication (medication = \"placebo\")",
                           ("blinds",))
        if self.induction_cows > 0 and self.active_or_imitated != "buprenorphine":
            raise _Problem(self.induction_cows, "induction by COWS threshold applies to buprenorphine (or a "
                                                "placebo that blinds it, as a placebo without blinds does)",
                           ("induction_cows",))
        if self.opioid_free_days > 0 and not self.active_or_imitated.startswith("naltrexone"):
            raise _Problem(self.opioid_free_days, "an opioid-free period before the first dose applies to "
                                                  "naltrexone (or a placebo that blinds it)", ("opioid_free_days",))
        if self.cm_weeks is not None and "contingency_management" not in self.psychosocial:
            raise _Problem(self.cm_weeks, "cm_weeks needs \"contingency_management\" in psychosocial",
                           ("cm_weeks",))

    @property
    def active_or_imitated(self) -> str:
        """The medication as the patient knows it: a placebo's is the one it blinds."""
        if self.medication == PLACEBO:
            return self.blinds or "buprenorphine"
        return self.medication

    @property
    def expects_relief(self) -> bool:
        """Whether a patient enrols expecting the clinic's dose to hold withdrawal: an opioid agonist,
        or a placebo that may be one; not naltrexone (or its placebo), nor a drug-free programme."""
        return self.active_or_imitated in AGONIST_MEDICATIONS

    # -- schedule ------------------------------------------------------------------------------
    def schedule(self) -> tuple[float, float, float, int]:
        """(maintenance mg, first mg, daily increase mg, days between doses); a placebo holds 0 mg
        on the schedule of what it imitates (a monthly injection for XR naltrexone)."""
        if self.medication == PLACEBO:
            return 0.0, 0.0, 0.0, MEDICATION_DEFAULTS[self.blinds][3] if self.blinds else 1
        if self.medication in DRUGLESS_MEDICATIONS:
            return 0.0, 0.0, 0.0, 1
        dose, first, step, every = MEDICATION_DEFAULTS[self.medication]
        if self.dose is not None:
            dose = parse_quantity(self.dose, "mass")
            first = min(first, dose)
        if self.start_dose is not None:
            first = parse_quantity(self.start_dose, "mass")
        if self.titration_step is not None:
            step = parse_quantity(self.titration_step, "mass")
        return dose, min(first, dose), step, every

    @property
    def taper_days(self) -> float:
        return 0.0 if self.taper is None else parse_quantity(self.taper, "time") / DAY_MIN

    def treatment_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items()
                if k in Treatment.model_fields and v is not None and v != Treatment.model_fields[k].get_default(
                    call_default_factory=True)}


class Arm(Treatment):
    """One arm of a trial: a programme and its share of the randomisation."""

    name: str
    allocation: int = 1
    #: what-if: typical parameter values for this arm's subjects (a scenario's [parameters] on top),
    #: over their whole course, history included: e.g. a medication of other properties
    parameters: dict[str, Any] = Field(default_factory=dict)

    def __init__(self, **kwargs: Any) -> None:
        from pydantic import ValidationError

        try:
            super().__init__(**kwargs)
        except ValidationError as exc:
            raise _to_scenario_error(exc, prefix=("arm",)) from None

    @field_validator("parameters", mode="before")
    @classmethod
    def _check_parameters(cls, v: Any) -> dict[str, Any]:
        return checked_parameters(v)

    @field_validator("name", mode="before")
    @classmethod
    def _check_name(cls, v: Any) -> str:
        if isinstance(v, str) and 0 < len(v.strip()) <= 40 and v.strip().replace("-", "").replace("_", "").isalnum():
            return v.strip()
        raise _Problem(v, "must be a short name of letters, digits, '-' or '_' (up to 40 characters)")

    @field_validator("allocation", mode="before")
    @classmethod
    def _check_allocation(cls, v: Any) -> int:
        return _strict_int(v, 1, 10, "the arm's share of the randomisation, e.g. 1 for 1:1")

    @model_validator(mode="after")
    def _check_whole(self) -> "Arm":
        self._check_medication_fields()
        return self


class Period(Treatment):
    """One period of a life course."""

    kind: str
    duration: str

    def __init__(self, **kwargs: Any) -> None:
        from pydantic import ValidationError

        try:
            super().__init__(**kwargs)
        except ValidationError as exc:
            raise _to_scenario_error(exc, prefix=("period",)) from None

    @field_validator("kind", mode="before")
    @classmethod
    def _check_kind(cls, v: Any) -> str:
        if isinstance(v, str) and v.strip().lower() in PERIOD_KINDS:
            return v.strip().lower()
        raise _Problem(v, f"must be one of {', '.join(PERIOD_KINDS)}")

    @field_validator("duration", mode="before")
    @classmethod
    def _check_duration(cls, v: Any) -> str:
        return _duration(v, DAY_MIN, 40 * 365.25 * DAY_MIN, "from 1 day to 40 years", "180d", whole_days=True)

    @model_validator(mode="after")
    def _check_whole(self) -> "Period":
        if self.kind != "treatment":
            for f in ("dose", "start_dose", "titration_step", "taper", "cm_weeks"):
                if getattr(self, f) is not None:
                    raise _Problem(getattr(self, f), f"only treatment periods have a programme ({f})", (f,))
            if self.medication != "none":
                raise _Problem(self.medication, "only treatment periods have a medication", ("medication",))
        self._check_medication_fields()
        return self

    @property
    def length_min(self) -> float:
        return parse_quantity(self.duration, "time")


def _one_spelling(kwargs: dict, table: str, item: str) -> None:
    """[[life.period]] in a file is periods=[...] in Python: one table may not give both (the second
    was reported as an unknown key that the message then listed as allowed)."""
    if item in kwargs and item + "s" in kwargs:
        from opioidsim.errors import ScenarioError

        err = ScenarioError(f"{table}.{item}", kwargs[item], f"give the {item}s once: [[{table}.{item}]] tables "
                            f"in a file or {item}s = [...] in Python, not both")
        err._loc = (item,)  # type: ignore[attr-defined]  # re-rooted under the scenario's [table]
        raise err


class _Course(_Model):
    decide_every: str = "1h"
    supply: Supply = Field(default_factory=Supply)

    @field_validator("decide_every", mode="before")
    @classmethod
    def _check_decide(cls, v: Any) -> str:
        x = _time(v)
        if (not (15.0 <= x <= 6 * 60.0) or abs(DAY_MIN / x - round(DAY_MIN / x)) > 1e-9
                or abs(x / QUANTUM_MIN - round(x / QUANTUM_MIN)) > 1e-6):
            raise _Problem(v, "must be from 15 min to 6 h and divide a day evenly into whole steps of the "
                              "engine (3.75 s) (how often the subject decides), e.g. \"1h\" or \"2h\"")
        return v.strip()

    @field_validator("supply", mode="before")
    @classmethod
    def _check_supply(cls, v: Any) -> Any:
        if isinstance(v, (Supply, dict)):
            return Supply(**v) if isinstance(v, dict) else v
        raise _Problem(v, "must be a table with drug, route, dose, potency_cv, fentanyl_contamination, "
                          "fentanyl_dose, availability, naloxone_bystander")

    @property
    def decide_every_min(self) -> float:
        return parse_quantity(self.decide_every, "time")

    def _check_steps(self) -> None:
        steps = self.length_min / self.decide_every_min
        if steps > MAX_STEPS:
            raise _Problem(self.decide_every, f"the course lasts {self.length_min / DAY_MIN:,.0f} days: "
                                              f"{steps:,.0f} decision steps, more than the {MAX_STEPS:,} allowed; "
                                              "decide less often or shorten it", ("decide_every",))


class Published(_Model):
    """An effect a trial reported ([[trial.published]]): the simulated trial's estimate of the
    same outcome and measure for the same arm is set beside it in the outcomes, the report and
    the command's summary. `lower` and `upper` (its 95 % CI) are given together or not at all."""

    outcome: str
    arm: str
    measure: str
    estimate: float
    lower: Optional[float] = None
    upper: Optional[float] = None
    source: str

    def __init__(self, **kwargs: Any) -> None:
        from pydantic import ValidationError

        try:
            super().__init__(**kwargs)
        except ValidationError as exc:
            raise _to_scenario_error(exc, prefix=("published",)) from None

    @field_validator("outcome", mode="before")
    @classmethod
    def _check_outcome(cls, v: Any) -> str:
        if isinstance(v, str) and v in TRIAL_OUTCOME_MEASURES:
            return v
        raise _Problem(v, f"must be one of {', '.join(TRIAL_OUTCOME_MEASURES)} (the trial's outcomes)")

    @field_validator("arm", mode="before")
    @classmethod
    def _check_arm(cls, v: Any) -> str:
        if isinstance(v, str) and v.strip():
            return v.strip()
        raise _Problem(v, "must be the name of one of the trial's treatment arms")

    @field_validator("measure", mode="before")
    @classmethod
    def _check_measure(cls, v: Any) -> str:
        every = sorted({m for ms in TRIAL_OUTCOME_MEASURES.values() for m in ms})
        if isinstance(v, str) and v in every:
            return v
        raise _Problem(v, f"must be one of {', '.join(every)} (risk ratio, odds ratio, Cohen's d)")

    @field_validator("estimate", mode="before")
    @classmethod
    def _check_estimate(cls, v: Any) -> float:
        return _real(v, -1e6, 1e6, "must be a number (the published value)")

    @field_validator("lower", "upper", mode="before")
    @classmethod
    def _check_bound(cls, v: Any) -> Optional[float]:
        # None: not given (a copy of the scenario passes its unset bounds on as None)
        return None if v is None else _real(v, -1e6, 1e6, "must be a number (a bound of the published 95 % CI)")

    @field_validator("source", mode="before")
    @classmethod
    def _check_source(cls, v: Any) -> str:
        if isinstance(v, str) and 0 < len(v.strip()) <= 300:
            return v.strip()
        raise _Problem(v, "must name where the figure comes from (paper, table or figure; up to 300 characters)")

    @model_validator(mode="after")
    def _check_whole(self) -> "Published":
        allowed = TRIAL_OUTCOME_MEASURES[self.outcome]
        if self.measure not in allowed:
            raise _Problem(self.measure, f"must be {' or '.join(allowed)} for {self.outcome}", ("measure",))
        if (self.lower is None) != (self.upper is None):
            given, missing = ("lower", "upper") if self.upper is None else ("upper", "lower")
            raise _Problem(getattr(self, given), f"needs {missing} as well: the 95 % CI's bounds go together "
                           "(or give neither)", (given,))
        ratio = self.measure in RATIO_MEASURES
        for field in ("estimate", "lower", "upper"):
            value = getattr(self, field)
            if ratio and value is not None and not value > 0:
                raise _Problem(value, f"must be above 0 ({self.measure} is a ratio)", (field,))
        if self.lower is not None and not self.lower <= self.estimate <= self.upper:
            raise _Problem(self.estimate, f"must lie within its 95 % CI, {self.lower:g} to {self.upper:g}",
                           ("estimate",))
        return self


class Life(_Course):
    """A life course: periods one after the other, from first regular use."""

    periods: list[Period] = Field(default_factory=list)

    def __init__(self, **kwargs: Any) -> None:
        from pydantic import ValidationError

        _one_spelling(kwargs, "life", "period")
        if "period" in kwargs:  # the TOML spelling ([[life.period]])
            kwargs["periods"] = kwargs.pop("period")
        try:
            super().__init__(**kwargs)
        except ValidationError as exc:
            raise _to_scenario_error(exc, prefix=("life",)) from None

    @field_validator("periods", mode="before")
    @classmethod
    def _check_periods(cls, v: Any) -> Any:
        if not isinstance(v, (list, tuple)) or not v:
            raise _Problem(v, "must be a list of periods ([[life.period]] tables with kind and duration), "
                              "at least one")
        for i, ph in enumerate(v):
            if not isinstance(ph, (dict, Period)):
                raise _Problem(ph, "each period must be a table: [[life.period]] with kind = ...", (i,))
        return list(v)

    @model_validator(mode="after")
    def _check_whole(self) -> "Life":
        if not self.periods:
            raise _Problem([], "at least one [[life.period]] is needed", ("periods",))
        total = 0.0
        for i, p in enumerate(self.periods):  # a scenario lasts at most 100 years
            total += p.length_min
            if total > LIMITS["max_duration_min"] + 1e-6:
                raise _Problem(p.duration, f"the life course would last {total / MIN_PER_YEAR:,.4g} years with this "
                                           "period, more than the 100 years a scenario may last",
                               ("periods", i, "duration"))
        self._check_steps()
        return self

    @property
    def length_min(self) -> float:
        return sum(p.length_min for p in self.periods)

    def to_toml_dict(self) -> dict[str, Any]:
        return {"decide_every": self.decide_every, "supply": self.supply.model_dump(),
                "period": [{"kind": p.kind, "duration": p.duration, **p.treatment_dict()} for p in self.periods]}


class Trial(_Course):
    """A virtual randomised trial: street use (history), randomisation, follow-up per arm."""

    history: str = "60d"
    #: inpatient detoxification between the history and randomisation: no street supply; the
    #: subjects are discharged to the clinic for the enrolment visit (naltrexone trials detoxify
    #: first, as the antagonist needs an opioid-free period)
    detox: str = "0d"
    follow_up: str = "12w"
    urine_tests_per_week: int = 1
    missing_urine: str = "positive"
    #: research urines continue after a subject leaves treatment (false: only at clinic visits)
    follow_up_after_dropout: bool = False
    #: consecutive missed clinic days after which a subject is discharged
    discharge_after_missed_days: int = 7
    #: 0: simple randomisation (arm sizes vary by chance); N: permuted blocks of N consecutive
    #: subjects, each block holding the arms in their allocation ratio (CONSORT item 8b)
    block_size: int = 0
    #: co-occurring disorders to stratify on: permuted blocks within each stratum (needs block_size)
    stratify: list[str] = Field(default_factory=list)
    arms: list[Arm] = Field(default_factory=list)
    #: published effects to set the simulated ones beside ([[trial.published]])
    published: list[Published] = Field(default_factory=list)

    def __init__(self, **kwargs: Any) -> None:
        from pydantic import ValidationError

        _one_spelling(kwargs, "trial", "arm")
        if "arm" in kwargs:  # the TOML spelling ([[trial.arm]])
            kwargs["arms"] = kwargs.pop("arm")
        try:
            super().__init__(**kwargs)
        except ValidationError as exc:
            raise _to_scenario_error(exc, prefix=("trial",)) from None

    @field_validator("history", mode="before")
    @classmethod
    def _check_history(cls, v: Any) -> str:
        return _duration(v, 7 * DAY_MIN, 10 * 365.25 * DAY_MIN, "from 7 days to 10 years of use before "
                         "randomisation", "60d", whole_days=True)

    @field_validator("detox", mode="before")
    @classmethod
    def _check_detox(cls, v: Any) -> str:
        return _duration(v, 0.0, MAX_DETOX_DAYS * DAY_MIN, f"from 0 days (none) to {MAX_DETOX_DAYS} days of "
                         "inpatient detoxification before randomisation", "7d", whole_days=True)

    @field_validator("follow_up", mode="before")
    @classmethod
    def _check_follow(cls, v: Any) -> str:
        x = _time(v)
        if not (WEEK_MIN <= x <= 5 * 52 * WEEK_MIN) or abs(x / WEEK_MIN - round(x / WEEK_MIN)) > 1e-9:
            raise _Problem(v, "must be a whole number of weeks from 1 week to 5 years, e.g. \"12w\"")
        return v.strip()

    @field_validator("urine_tests_per_week", mode="before")
    @classmethod
    def _check_urines(cls, v: Any) -> int:
        return _strict_int(v, 1, 7, "research urine tests a week")

    @field_validator("discharge_after_missed_days", mode="before")
    @classmethod
    def _check_discharge(cls, v: Any) -> int:
        return _strict_int(v, 1, 60, "consecutive missed days before discharge")

    @field_validator("block_size", mode="before")
    @classmethod
    def _check_block(cls, v: Any) -> int:
        return _strict_int(v, 0, MAX_BLOCK_SIZE, "subjects per randomisation block; 0 for simple randomisation")

    @field_validator("stratify", mode="before")
    @classmethod
    def _check_stratify(cls, v: Any) -> list[str]:
        allowed = f"a list of co-occurring disorders from {', '.join(CO_OCCURRING_DISORDERS)}, each once"
        if not isinstance(v, (list, tuple)):
            raise _Problem(v, f"must be {allowed}, e.g. [\"depression\"]")
        for i, name in enumerate(v):
            if name not in CO_OCCURRING_DISORDERS or name in v[:i]:
                raise _Problem(name, f"must be {allowed}", (i,))
        return list(v)

    @field_validator("missing_urine", mode="before")
    @classmethod
    def _check_missing(cls, v: Any) -> str:
        if isinstance(v, str) and v.strip().lower() in MISSING_URINE:
            return v.strip().lower()
        raise _Problem(v, f"must be one of {', '.join(MISSING_URINE)} (how a missed urine is counted)")

    @field_validator("follow_up_after_dropout", mode="before")
    @classmethod
    def _check_fad(cls, v: Any) -> bool:
        if isinstance(v, bool):
            return v
        raise _Problem(v, "must be true or false")

    @field_validator("arms", mode="before")
    @classmethod
    def _check_arms(cls, v: Any) -> Any:
        if not isinstance(v, (list, tuple)) or len(v) < 1:
            raise _Problem(v, "must be a list of arms ([[trial.arm]] tables with name = ...), the first the control")
        for i, a in enumerate(v):
            if not isinstance(a, (dict, Arm)):
                raise _Problem(a, "each arm must be a table: [[trial.arm]] with name = ...", (i,))
        return list(v)

    @field_validator("published", mode="before")
    @classmethod
    def _check_published(cls, v: Any) -> Any:
        if not isinstance(v, (list, tuple)):
            raise _Problem(v, "must be a list of [[trial.published]] tables (outcome, arm, measure, estimate, "
                           "source; lower and upper optional)")
        for i, entry in enumerate(v):
            if not isinstance(entry, (dict, Published)):
                raise _Problem(entry, "each entry must be a table: [[trial.published]] with outcome = ...", (i,))
        return list(v)

    @model_validator(mode="after")
    def _check_whole(self) -> "Trial":
        if not self.arms:
            raise _Problem([], "at least one [[trial.arm]] is needed", ("arms",))
        names = [a.name for a in self.arms]
        for i, n in enumerate(names):
            if n in names[:i]:
                raise _Problem(n, "arm names must differ", ("arms", i, "name"))
        seen = []
        for i, p in enumerate(self.published):
            if p.arm not in names[1:]:
                raise _Problem(p.arm, f"must name a treatment arm of this trial ({', '.join(names[1:]) or 'none'}); "
                               f"estimates compare an arm with the control, {names[0]}", ("published", i, "arm"))
            key = (p.outcome, p.arm, p.measure)
            if key in seen:
                raise _Problem(p.measure, f"{p.outcome} {p.measure} for {p.arm} is already given; one published "
                               "figure per outcome, arm and measure", ("published", i, "measure"))
            seen.append(key)
        total = sum(a.allocation for a in self.arms)
        if self.block_size and self.block_size % total:
            raise _Problem(self.block_size, f"must be 0 (simple randomisation) or a multiple of the arms' total "
                           f"allocation, {total}, so that every block holds the arms in their ratio", ("block_size",))
        if self.stratify and not self.block_size:
            raise _Problem(self.stratify, "stratified randomisation allocates in permuted blocks within each "
                           "stratum: set block_size too", ("stratify",))
        self._check_steps()
        return self

    @property
    def history_min(self) -> float:
        return parse_quantity(self.history, "time")

    @property
    def detox_min(self) -> float:
        return parse_quantity(self.detox, "time")

    @property
    def history_days(self) -> int:
        """Days of street use before randomisation (or detox); whole days by the validator."""
        return int(round(self.history_min / DAY_MIN))

    @property
    def detox_days(self) -> int:
        """Days of inpatient detoxification before randomisation; whole days by the validator."""
        return int(round(self.detox_min / DAY_MIN))

    @property
    def before_randomisation_days(self) -> int:
        """Days of the course before randomisation: the history of street use, then any detox."""
        return self.history_days + self.detox_days

    @property
    def randomisation(self) -> str:
        """How subjects are randomised, in the words a trial report uses."""
        if not self.block_size:
            return "simple randomisation"
        ratio = ":".join(str(a.allocation) for a in self.arms)
        strata = f", stratified by {' and '.join(STRATUM_WORDS[t] for t in self.stratify)}" if self.stratify else ""
        return f"permuted blocks of {self.block_size}, {ratio} within each block{strata}"

    @property
    def follow_up_weeks(self) -> int:
        return int(round(parse_quantity(self.follow_up, "time") / WEEK_MIN))

    @property
    def length_min(self) -> float:
        return self.history_min + self.detox_min + self.follow_up_weeks * WEEK_MIN

    def to_toml_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in ("decide_every", "history", "detox", "follow_up", "urine_tests_per_week",
                                               "missing_urine", "follow_up_after_dropout",
                                               "discharge_after_missed_days", "block_size")}
        out["stratify"] = list(self.stratify)
        out["supply"] = self.supply.model_dump()
        out["arm"] = [{"name": a.name, **({"allocation": a.allocation} if a.allocation != 1 else {}),
                       **a.treatment_dict(), **({"parameters": dict(a.parameters)} if a.parameters else {})}
                      for a in self.arms]
        if self.published:
            out["published"] = [p.model_dump(exclude_none=True) for p in self.published]
        return out


def check_course_table(v: Any, cls, table: str) -> Any:
    """Validate a [life] or [trial] table given as a dict (or already built)."""
    if v is None or isinstance(v, cls):
        return v
    if isinstance(v, dict):
        return cls(**v)
    what = "[[life.period]]" if table == "life" else "[[trial.arm]]"
    raise _Problem(v, f"must be a table: [{table}] with {what} entries")


__all__ = ["Supply", "Treatment", "Arm", "Period", "Life", "Trial", "Published", "MEDICATIONS", "PSYCHOSOCIAL",
           "PERIOD_KINDS", "TRIAL_OUTCOME_MEASURES"]
