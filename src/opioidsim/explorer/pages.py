"""The explorer's pages: controls → a validated Scenario → the engine → figures as JSON.

A page is a :class:`Page` registered with :func:`register`. It declares its controls (what the
browser draws), how a set of control values becomes a scenario (``build``), how a scenario file is
read back into control values (``params_from``), and its panels (which readouts, drawn how). The
browser knows nothing page-specific: it draws whatever the registry describes. A page lists the
readouts it needs (``requires``): it is offered only when the model produces all of them, so a page
for a mechanism that does not exist yet never shows up empty. Later pages (animal lab, treatment
trial, brain scan) are added by defining a Page and registering it here.

Every value from the browser is checked by the scenario schema (`opioidsim.scenarios.schema`):
a bad one becomes the same `ScenarioError` a scenario file would get, naming the field, the value
and what is allowed; the explorer's own limits (cohort size, duration, amount of work) are reported
the same way.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from opioidsim.drugs import DRUGS
from opioidsim.errors import ScenarioError
from opioidsim.readouts import READOUTS
from opioidsim.report.summary import cohort_bands, nan_quantiles, peak_kind, time_minutes
from opioidsim.model.pk import COMPOUNDS
from opioidsim.model.withdrawal import COWS_BANDS
from opioidsim.scenarios import Scenario

__all__ = ["Control", "Series", "Panel", "Page", "LIMITS", "explorer_readouts", "register", "pages",
           "get_page", "check_limits", "page_for_scenario", "control_error"]

#: What one explorer run may ask for: enough to see every mechanism, small enough that one browser
#: cannot tie up the machine (bigger runs: ``opioidsim run``).
LIMITS = {
    "max_subjects": 20,
    "max_duration_days": 3 * 365,
    "max_records": 20_000,
    #: subjects × dose events: the engine's work is mostly the minutes after each dose (about
    #: 0.15–0.45 s per subject-dose on a busy 2-core machine), so this bounds a run to minutes
    "max_subject_doses": 1_000,
}

#: agonists the pages offer (naloxone has its own controls)
AGONISTS = tuple(d for d, info in DRUGS.items() if info.role != "antagonist")


def control_error(name: str, label: str, value: Any, allowed: str) -> ScenarioError:
    """A problem with an explorer control that is not itself a scenario field (e.g. uses per day)."""
    return ScenarioError(name, value, allowed, message=f"explorer field '{label}' = {value!r}: {allowed}")


# ---------------------------------------------------------------------------------------------
# declarations
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Control:
    """One input of a page. ``kind``: "select", "text", "number" or "checkbox".

    ``options`` lists a select's choices; ``options_by`` names another control whose value picks
    the options from ``options_map`` (routes depend on the drug). ``group`` puts controls under a
    heading; ``enabled_by`` greys a control out unless that checkbox is ticked; ``advanced`` hides
    it in a folded section."""

    name: str
    label: str
    kind: str
    default: Any
    help: str = ""
    options: tuple[str, ...] = ()
    options_by: str = ""
    options_map: dict[str, tuple[str, ...]] = field(default_factory=dict)
    group: str = ""
    enabled_by: str = ""
    advanced: bool = False

    def spec(self) -> dict[str, Any]:
        out = {"name": self.name, "label": self.label, "kind": self.kind, "default": self.default,
               "help": self.help, "group": self.group, "enabled_by": self.enabled_by,
               "advanced": self.advanced}
        if self.options:
            out["options"] = list(self.options)
        if self.options_by:
            out["options_by"] = self.options_by
            out["options_map"] = {k: list(v) for k, v in self.options_map.items()}
        return out


@dataclass(frozen=True)
class Series:
    """One line of a panel: a readout, reduced over display bins by ``reduce`` (mean, max or min)."""

    readout: str
    label: str
    reduce: str = "mean"
    #: drawn only when the readout is ever non-zero (a drug that was never given)
    only_if_present: bool = False
    #: which extreme the summary reports: "max" or "min" ("": the report's choice, `peak_kind`)
    extreme: str = ""


@dataclass(frozen=True)
class Panel:
    id: str
    title: str
    units: str
    series: tuple[Series, ...]
    help: str = ""
    #: fixed y range (None: from the data); ``y_zero`` starts the axis at 0
    y_range: Optional[tuple[float, float]] = None
    y_zero: bool = True
    #: horizontal reference lines: (y, label)
    refs: tuple[tuple[float, str], ...] = ()
    #: offer a log scale (drug levels span decades); ``log_default``: start with it
    log_option: bool = False
    log_default: bool = False

    def readouts(self) -> set[str]:
        return {s.readout for s in self.series}


@dataclass
class Built:
    """A page's scenario from control values, and which control each scenario field came from."""

    scenario: Scenario
    fields: dict[str, str]
    #: a study page's own settings, checked by ``Page.design`` (empty for the time-course pages)
    design: dict[str, Any] = field(default_factory=dict)


@dataclass
class Page:
    id: str
    title: str
    intro: str
    controls: tuple[Control, ...]
    panels: tuple[Panel, ...]
    build_data: Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, str]]]
    params_from: Callable[[Scenario], Optional[dict[str, Any]]]
    #: run automatically when a control changes (fast pages) or only on "Run" (slow pages)
    auto_run: bool = False
    #: cohort sizes the engine is compiled for: a smaller cohort runs as the next size up and is
    #: cut back (subject i is the same in any cohort), so a few compilations serve every size.
    #: Empty: the exact size (worth it where running costs more than compiling)
    cohort_buckets: tuple[int, ...] = ()
    requires: tuple[str, ...] = ()
    #: a scenario of this length or shorter is shown on this page when loaded from a file
    max_duration_days: float = math.inf
    phases: Callable[[Scenario], list[dict[str, Any]]] = lambda s: []
    notes: Callable[[Any, Scenario], list[str]] = lambda ds, s: []
    #: a study page (the brain scan) computes its own result from its scenario and the settings
    #: ``design`` checks, ``study(scenario, design, progress) -> JSON``, in place of time courses
    design: Callable[[dict[str, Any]], dict[str, Any]] = lambda v: {}
    study: Optional[Callable[[Scenario, dict[str, Any], Callable[[float], None]], dict[str, Any]]] = None
    #: the course table ("paradigm", "trial") whose scenario files this study page shows: a file
    #: its controls cannot rebuild runs as written (``study`` gets an empty design)
    course: str = ""
    #: the explorer's limits for such a scenario (raises ScenarioError naming the field)
    check_course: Callable[[Scenario], None] = lambda s: None
    #: what the browser draws: "series" (time courses), "effects" (the brain scan's table) or
    #: "figures" (a study's own lines, bars and tables); "" picks series or effects
    result_kind: str = ""
    #: a short run that compiles what the page's first run needs, queued at start-up behind the
    #: other warm-ups (None: nothing cheap enough; a started job is not preempted)
    warmup: Optional[Callable[[Callable[[float], None]], None]] = None

    def available(self) -> bool:
        return all(r in READOUTS for r in self.requires)

    def defaults(self) -> dict[str, Any]:
        return {c.name: c.default for c in self.controls}

    def spec(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "intro": self.intro, "auto_run": self.auto_run,
                "result_kind": self.result_kind or ("effects" if self.study else "series"),
                "course": self.course,
                "controls": [c.spec() for c in self.controls], "defaults": self.defaults(),
                "panels": [{"id": p.id, "title": p.title, "help": p.help} for p in self.panels]}

    def build(self, params: Any) -> Built:
        """Control values → a Scenario within the explorer's limits, or a ScenarioError."""
        if not isinstance(params, dict):
            raise ScenarioError("<params>", params, "the controls must be sent as a JSON object")
        values = {**self.defaults(), **{k: v for k, v in params.items() if k in self.defaults()}}
        data, fields = self.build_data(values)
        scenario = Scenario.from_toml_dict(data)
        check_limits(scenario)
        return Built(scenario, fields, self.design(values))

    def sim_scenario(self, scenario: Scenario) -> tuple[Scenario, int]:
        """The scenario the engine runs for this page (its readouts, the cohort bucket), and how
        many of its subjects to keep."""
        n = scenario.cohort.subjects
        bucket = next((b for b in self.cohort_buckets if b >= n), n)
        cohort = scenario.cohort.model_copy(update={"subjects": bucket})
        return scenario.model_copy(update={"readouts": list(explorer_readouts()), "cohort": cohort}), n

    # -- results ---------------------------------------------------------------------------
    def result(self, ds: Any, scenario: Scenario) -> dict[str, Any]:
        """Figures as JSON: a shared time axis; per panel, per series the cohort median and 10–90 %
        band, reduced to at most MAX_POINTS display bins."""
        t_min = time_minutes(ds)
        unit, per = time_unit(scenario.duration_min)
        edges = _bins(len(t_min), MAX_POINTS)
        t_axis = [_r(t_min[a] / per) for a, _ in edges]
        panels = []
        for panel in self.panels:
            series = []
            for s in panel.series:
                if s.readout not in ds.data_vars:
                    continue
                values = np.asarray(ds[s.readout].values, dtype=float)
                if s.only_if_present and not np.any(np.nan_to_num(values) != 0):
                    continue
                reduced = _reduce(values, edges, s.reduce)
                lo, mid, hi = cohort_bands(_as_dataset(reduced), "x")
                series.append({"readout": s.readout, "label": s.label, "median": _rl(mid),
                               "lo": _rl(lo), "hi": _rl(hi)})
            panels.append({"id": panel.id, "title": panel.title, "units": panel.units,
                           "series": series, "y_range": panel.y_range, "y_zero": panel.y_zero,
                           "refs": [{"y": y, "label": lab} for y, lab in panel.refs],
                           "log_option": panel.log_option, "log_default": panel.log_default})
        drawn = {s["readout"] for p in panels for s in p["series"]}
        kinds: dict[str, str] = {}
        for panel in self.panels:
            for s in panel.series:
                if s.readout in drawn:
                    kinds.setdefault(s.readout, s.extreme or peak_kind(s.readout))
        summary = [_summary_row(ds, name, kind, t_min, per) for name, kind in kinds.items()]
        doses = [{"t": _r(t / per), "drug": d.drug, "amount": d.amount, "route": d.route}
                 for t, d in scenario.dose_schedule()[:MAX_DOSE_MARKS]]
        phases = [{**p, "start": _r(p["start"] / per), "end": _r(p["end"] / per)}
                  for p in self.phases(scenario)]
        return {"page": self.id, "time": t_axis, "time_unit": unit, "panels": panels,
                "summary": summary, "doses": doses, "phases": phases,
                "subjects": int(ds.sizes["subject"]), "notes": self.notes(ds, scenario),
                "scenario_name": scenario.name}


#: display bins per series (a browser draws a few thousand points without effort)
MAX_POINTS = 1200
MAX_DOSE_MARKS = 400



def time_unit(duration_min: float) -> tuple[str, float]:
    """The display time unit for a run of this length: (name, minutes per unit)."""
    if duration_min <= 180:
        return "min", 1.0
    if duration_min <= 3 * 1440:
        return "h", 60.0
    return "days", 1440.0


def _bins(n: int, most: int) -> list[tuple[int, int]]:
    if n <= most:
        return [(i, i + 1) for i in range(n)]
    width = math.ceil(n / most)
    return [(a, min(n, a + width)) for a in range(0, n, width)]


def _reduce(values: np.ndarray, edges: list[tuple[int, int]], how: str) -> np.ndarray:
    """(subjects, time) → (subjects, bins), each bin reduced by mean, max or min."""
    if len(edges) == values.shape[1]:
        return values
    fn = {"mean": np.nanmean, "max": np.nanmax, "min": np.nanmin}[how]
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN bin (failed subject)
            return np.stack([fn(values[:, a:b], axis=1) for a, b in edges], axis=1)


def _summary_row(ds: Any, name: str, kind: str, t_min: np.ndarray, per: float) -> dict[str, Any]:
    """Cohort median of each subject's start, extreme (``kind``), its time, and end; 10–90 % of the
    extreme."""
    values = np.asarray(ds[name].values, dtype=float)
    filled = np.where(np.isnan(values), -np.inf if kind == "max" else np.inf, values)
    idx = filled.argmax(axis=1) if kind == "max" else filled.argmin(axis=1)
    extreme = np.take_along_axis(values, idx[:, None], axis=1)[:, 0]
    p10, mid, p90 = nan_quantiles(extreme, (0.1, 0.5, 0.9))
    med = lambda a: nan_quantiles(a, 0.5)[0]  # noqa: E731
    return {"readout": name, "label": READOUTS[name].long_name, "units": READOUTS[name].units, "kind": kind,
            "baseline": _r(med(values[:, 0])), "extreme": _r(mid), "extreme_p10": _r(p10),
            "extreme_p90": _r(p90), "at": _r(med(t_min[idx]) / per), "final": _r(med(values[:, -1]))}


def _as_dataset(values: np.ndarray):
    import xarray as xr

    return xr.Dataset({"x": (("subject", "time"), values)})


def _r(x: Any) -> Optional[float]:
    """A number for JSON: 4 significant digits; None for NaN or infinity."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(v):
        return None
    return float(f"{v:.4g}")


def _rl(values: np.ndarray) -> list[Optional[float]]:
    return [_r(v) for v in np.asarray(values, dtype=float)]


# ---------------------------------------------------------------------------------------------
# limits and scenario → page
# ---------------------------------------------------------------------------------------------
_BIGGER = "; for bigger runs use 'opioidsim run' (download this scenario and run it)"


#: the course tables a scenario may have instead of a dose list, and what they are called
COURSES = {"paradigm": "animal experiments", "life": "life courses", "trial": "virtual trials"}


def course_of(scenario: Scenario) -> str:
    """Which course table the scenario has ("paradigm", "life", "trial"), or "" for a dose list."""
    return next((k for k in COURSES if getattr(scenario, k, None) is not None), "")


def check_supported(scenario: Scenario) -> None:
    """A scenario some page can show: a dose list, or a course table whose page exists."""
    kind = course_of(scenario)
    if kind and not any(p.course == kind for p in pages()):
        raise ScenarioError(kind, f"[{kind}]", f"the explorer has no page for {COURSES[kind]} yet: run them with "
                            f"'opioidsim {'trial' if kind == 'trial' else 'run'}'")


def check_limits(scenario: Scenario) -> None:
    """The explorer's limits, reported as scenario errors naming the field (TOML paths)."""
    check_supported(scenario)
    n = scenario.cohort.subjects
    kind = course_of(scenario)
    if kind:
        next(p for p in pages() if p.course == kind).check_course(scenario)
        return
    if n > LIMITS["max_subjects"]:
        raise ScenarioError("cohort.subjects", n, f"the explorer runs at most {LIMITS['max_subjects']} "
                            f"subjects (a cohort of 1 to {LIMITS['max_subjects']}){_BIGGER}")
    days = scenario.duration_min / 1440.0
    if days > LIMITS["max_duration_days"]:
        raise ScenarioError("scenario.duration", scenario.duration, f"the explorer runs at most "
                            f"{LIMITS['max_duration_days']:,} days (3 years){_BIGGER}")
    records = math.floor(scenario.duration_min / scenario.record_every_min + 1e-9) + 1
    if records > LIMITS["max_records"]:
        raise ScenarioError("scenario.record_every", scenario.record_every, f"gives {records:,} records "
                            f"over {scenario.duration}; the explorer draws at most "
                            f"{LIMITS['max_records']:,}: record less often")
    events = len(scenario.dose_schedule())
    if n * events > LIMITS["max_subject_doses"]:
        field_name, value = ("cohort.subjects", n) if n > 1 else ("scenario.duration", scenario.duration)
        raise ScenarioError(field_name, value, f"{n} subject{'s' if n != 1 else ''} × {events:,} doses "
                            f"= {n * events:,} subject-doses; the explorer runs at most "
                            f"{LIMITS['max_subject_doses']:,} (fewer subjects, fewer doses or a shorter "
                            f"use period){_BIGGER}")


def _dose_key(d) -> tuple:
    return (d.drug, d.route, round(d.amount_mg, 9), round(d.at_min, 6),
            None if d.every is None else round(d.every_min, 6),
            None if d.until is None else round(d.until_min, 6))


def _same(a: Scenario, b: Scenario) -> bool:
    """Same run (names, description and readouts aside)."""
    return (math.isclose(a.duration_min, b.duration_min) and math.isclose(a.record_every_min, b.record_every_min)
            and a.cohort == b.cohort and a.conditions == b.conditions
            and getattr(a, "species", None) == getattr(b, "species", None)
            and all(getattr(a, k, None) == getattr(b, k, None) for k in COURSES)
            and [_dose_key(d) for d in a.doses] == [_dose_key(d) for d in b.doses])


def page_for_scenario(scenario: Scenario) -> tuple[Page, Optional[dict[str, Any]]]:
    """The page that shows a loaded scenario, and control values that rebuild it exactly (None: the
    scenario does not fit that page's controls and runs as written)."""
    for page in pages():
        params = page.params_from(scenario)
        if params is None:
            continue
        try:
            if _same(page.build(params).scenario, scenario):
                return page, params
        except ScenarioError:
            continue
    kind = course_of(scenario)
    if kind:  # an animal experiment or a trial that the page's controls cannot rebuild: as written
        return next(p for p in pages() if p.course == kind), None
    days = scenario.duration_min / 1440.0
    for page in pages():
        if days <= page.max_duration_days and not page.course:
            return page, None
    return [p for p in pages() if p.study is None][-1], None


# ---------------------------------------------------------------------------------------------
# helpers shared by the pages
# ---------------------------------------------------------------------------------------------
def _int_or_raw(value: Any) -> Any:
    """A whole number typed into a box: int if it reads as one, else the raw value for the schema's
    message."""
    if isinstance(value, str):
        text = value.strip().replace(",", "").replace("_", "")
        try:
            return int(text)
        except ValueError:
            try:
                x = float(text)
                return int(x) if x.is_integer() else x
            except ValueError:
                return value
    return value


def _number(name: str, label: str, value: Any, lo: float, hi: float, what: str, whole: bool = False) -> float:
    """A number typed into a control, within [lo, hi] (a whole number if ``whole``), or the
    control's error naming what is allowed (shared by the study pages)."""
    raw = _int_or_raw(value) if whole else value
    try:
        x = float(raw) if not isinstance(raw, bool) else math.nan
    except (TypeError, ValueError):
        x = math.nan
    if not math.isfinite(x) or not lo <= x <= hi or (whole and not float(x).is_integer()):
        kind = "a whole number" if whole else "a number"
        raise control_error(name, label, value, f"must be {kind} from {lo:g} to {hi:g} ({what})")
    return int(x) if whole else x


def _float_or_raw(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return value
    return value


def _fmt_minutes(minutes: float) -> str:
    """Minutes as the shortest exact time text: "30s", "1min", "8h", "2d"."""
    if minutes == 0:
        return "0min"
    for unit, size in (("d", 1440.0), ("h", 60.0), ("min", 1.0)):
        if minutes >= size and float(minutes / size).is_integer():
            return f"{int(minutes / size)}{unit}"
    seconds = minutes * 60.0
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{minutes:g}min"


def _auto_record_every(duration_text: Any, steps: tuple[float, ...], most: int) -> Optional[str]:
    """The first of ``steps`` (min) that keeps a run to at most ``most`` records; None when the
    duration cannot be read (the schema then reports it)."""
    from opioidsim.units import parse_quantity

    try:
        duration = parse_quantity(duration_text, "time")
    except Exception:
        return None
    for step in steps:
        if duration / step <= most:
            return _fmt_minutes(step)
    return _fmt_minutes(steps[-1])


def _common_data(v: dict[str, Any], auto_steps: tuple[float, ...], most: int) -> tuple[dict, dict]:
    record_every = v["record_every"]
    if isinstance(record_every, str) and record_every.strip().lower() in ("", "auto"):
        record_every = _auto_record_every(v["duration"], auto_steps, most) or "1min"
    header = {"name": v["name"], "description": v["description"], "duration": v["duration"],
              "record_every": record_every}
    cohort = {"subjects": _int_or_raw(v["subjects"]), "seed": _int_or_raw(v["seed"])}
    data = {"scenario": header, "cohort": cohort,
            "conditions": {"pain_stimulus": _float_or_raw(v["pain_stimulus"])}}
    fields = {"scenario.name": "name", "scenario.description": "description",
              "scenario.duration": "duration", "scenario.record_every": "record_every",
              "cohort.subjects": "subjects", "cohort.seed": "seed",
              "conditions.pain_stimulus": "pain_stimulus"}
    return data, fields


def _common_params(s: Scenario, auto_steps: tuple[float, ...], most: int) -> Optional[dict[str, Any]]:
    if s.cohort.age_at_first_use is not None:
        return None
    auto = _auto_record_every(s.duration, auto_steps, most)
    same_auto = auto is not None and math.isclose(
        s.record_every_min, Scenario(duration=s.duration, record_every=auto).record_every_min)
    return {"name": s.name, "description": s.description, "duration": s.duration,
            "record_every": "auto" if same_auto else s.record_every,
            "subjects": str(s.cohort.subjects), "seed": str(s.cohort.seed),
            "pain_stimulus": f"{s.conditions.pain_stimulus:g}"}


def _common_controls(name: str, duration: str, subjects: int, duration_help: str) -> tuple[Control, ...]:
    return (
        Control("duration", "Simulated time", "text", duration, duration_help, group="Run"),
        Control("subjects", "Virtual subjects", "number", str(subjects),
                f"1 to {LIMITS['max_subjects']}; each differs in body and genes (median and 10–90 % "
                "band are drawn)", group="Run"),
        Control("seed", "Random seed", "number", "0", "the same seed gives the same cohort",
                group="Run", advanced=True),
        Control("record_every", "Record every", "text", "auto",
                "time between records, e.g. \"1min\"; auto picks one from the simulated time",
                group="Run", advanced=True),
        Control("pain_stimulus", "Pain stimulus", "text", "0.5",
                "tonic noxious input, 0 (none) to 1 (maximal)", group="Run", advanced=True),
        Control("name", "Scenario name", "text", name, "names the downloaded file",
                group="Run", advanced=True),
        Control("description", "Description", "text", "", "one line saying what it shows",
                group="Run", advanced=True),
    )


_ROUTE_MAP = {d: DRUGS[d].routes for d in DRUGS}

# ---------------------------------------------------------------------------------------------
# page 1: the five steps (one dose, minutes to hours)
# ---------------------------------------------------------------------------------------------
_ACUTE_STEPS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0)
_ACUTE_MOST = 800
_NALOXONE_ROWS = 2


def _acute_build(v: dict[str, Any]) -> tuple[dict, dict]:
    data, fields = _common_data(v, _ACUTE_STEPS, _ACUTE_MOST)
    doses = [{"drug": v["drug"], "route": v["route"], "amount": v["amount"], "at": v["at"]}]
    fields.update({"dose[0].drug": "drug", "dose[0].route": "route", "dose[0].amount": "amount",
                   "dose[0].at": "at"})
    for k in range(1, _NALOXONE_ROWS + 1):
        if v[f"naloxone{k}"] in (True, "true", "on", 1):
            i = len(doses)
            doses.append({"drug": "naloxone", "route": v[f"naloxone{k}_route"],
                          "amount": v[f"naloxone{k}_amount"], "at": v[f"naloxone{k}_at"]})
            fields.update({f"dose[{i}].route": f"naloxone{k}_route",
                           f"dose[{i}].amount": f"naloxone{k}_amount", f"dose[{i}].at": f"naloxone{k}_at",
                           f"dose[{i}].drug": f"naloxone{k}"})
    data["dose"] = doses
    return data, fields


def _acute_params(s: Scenario) -> Optional[dict[str, Any]]:
    common = _common_params(s, _ACUTE_STEPS, _ACUTE_MOST)
    if common is None or not s.doses or any(d.every is not None for d in s.doses):
        return None
    first, rest = s.doses[0], s.doses[1:]
    if first.drug == "naloxone" or len(rest) > _NALOXONE_ROWS or any(d.drug != "naloxone" for d in rest):
        return None
    v = {**common, "drug": first.drug, "route": first.route, "amount": first.amount, "at": first.at}
    for k in range(1, _NALOXONE_ROWS + 1):
        d = rest[k - 1] if k <= len(rest) else None
        v[f"naloxone{k}"] = d is not None
        v[f"naloxone{k}_route"] = d.route if d else ("iv" if k == 1 else "intranasal")
        v[f"naloxone{k}_amount"] = d.amount if d else ("0.4 mg" if k == 1 else "4 mg")
        v[f"naloxone{k}_at"] = d.at if d else ("30min" if k == 1 else "40min")
    return v


def _acute_notes(ds: Any, s: Scenario) -> list[str]:
    notes = []
    n = ds.sizes["subject"]
    if "overdose" in ds.data_vars:
        hit = int((np.nan_to_num(ds["overdose"].values) >= 0.5).any(axis=1).sum())
        notes.append(f"Life-threatening toxicity (apnoea, SpO2 below 75 % or cardiac arrest) in "
                     f"{hit} of {n} virtual subject{'s' if n != 1 else ''}.")
    failed = int(ds.attrs.get("subjects_failed", 0))
    if failed:
        notes.append(f"{failed} subject(s) failed to integrate; their curves stop there.")
    return notes


def _naloxone_controls() -> tuple[Control, ...]:
    out: list[Control] = []
    defaults = {1: ("iv", "0.4 mg", "30min"), 2: ("intranasal", "4 mg", "40min")}
    for k in range(1, _NALOXONE_ROWS + 1):
        route, amount, at = defaults[k]
        group = f"Naloxone {'(rescue)' if k == 1 else 'second dose'}"
        out += [Control(f"naloxone{k}", "Give naloxone" if k == 1 else "Give a second dose", "checkbox",
                        False, "the antagonist that reverses an overdose", group=group),
                Control(f"naloxone{k}_route", "Route", "select", route, options=DRUGS["naloxone"].routes,
                        group=group, enabled_by=f"naloxone{k}"),
                Control(f"naloxone{k}_amount", "Amount", "text", amount, 'a mass, e.g. "0.4 mg"',
                        group=group, enabled_by=f"naloxone{k}"),
                Control(f"naloxone{k}_at", "At", "text", at, 'time from the start, e.g. "30min"',
                        group=group, enabled_by=f"naloxone{k}")]
    return tuple(out)


def _plasma_series() -> tuple[Series, ...]:
    labels = {"6mam": "6-MAM", "naltrexol": "6β-naltrexol"}
    return tuple(Series(f"plasma_{d}", labels.get(d, d), only_if_present=True) for d in COMPOUNDS)


ACUTE = Page(
    id="five-steps",
    title="The five steps",
    intro=("Pick a drug, a route and an amount, and follow one dose through the brain: the drug in the "
           "blood, the mu-opioid receptors it occupies, the dopamine it releases in the nucleus "
           "accumbens, the pleasure that follows, and, in the same minutes, pain relief and slowed "
           "breathing. Add naloxone to see it push the drug off the receptors and restart breathing."),
    controls=(
        Control("drug", "Drug", "select", "heroin", "the opioid given", options=AGONISTS, group="Dose"),
        Control("route", "Route", "select", "iv", "how it is taken", options_by="drug",
                options_map={d: _ROUTE_MAP[d] for d in AGONISTS}, group="Dose"),
        Control("amount", "Amount", "text", "10 mg", 'a mass with its unit, e.g. "10 mg" or "250 ug"',
                group="Dose"),
        Control("at", "At", "text", "10min", 'time from the start, e.g. "10min"', group="Dose"),
        *_naloxone_controls(),
        *_common_controls("explorer-five-steps", "6h", 1, 'e.g. "2h", "6h", "24h"'),
    ),
    panels=(
        Panel("plasma", "1 · The drug in the blood", "ng/mL", _plasma_series(),
              "plasma concentrations (heroin is turned into 6-MAM and then morphine)",
              log_option=True, log_default=True),
        Panel("occupancy", "2 · Receptors occupied", "fraction",
              (Series("mor_occupancy_vta", "VTA (reward)"), Series("mor_occupancy_dorsal_horn", "dorsal horn (pain)"),
               Series("mor_occupancy_brainstem", "brainstem (breathing)")),
              "fraction of mu-opioid receptors with a ligand bound", y_range=(0.0, 1.0)),
        Panel("dopamine", "3 · Dopamine in the nucleus accumbens", "nM", (Series("nac_dopamine", "NAc dopamine"),),
              "VTA GABA cells are silenced, dopamine cells fire, dopamine floods the NAc"),
        Panel("pleasure", "4 · Pleasure", "−10 … 10", (Series("hedonic_state", "hedonic state"),),
              "felt pleasure (+) or displeasure (−)", y_zero=False),
        Panel("pain", "5a · Pain", "0–10 rating", (Series("pain", "pain"),),
              "perceived pain under the tonic stimulus", y_range=(0.0, 10.0)),
        Panel("breathing", "5b · Breathing", "L/min", (Series("ventilation", "minute ventilation"),),
              "brainstem receptors slow breathing; an overdose stops it"),
        Panel("oxygen", "5c · Oxygen in the blood", "% SpO2", (Series("spo2", "SpO2"),),
              "below 90 % is hypoxaemia; below 75 % counts as life-threatening here", y_range=(40.0, 100.0),
              refs=((90.0, "90 %"),)),
    ),
    build_data=_acute_build,
    params_from=_acute_params,
    auto_run=True,
    cohort_buckets=(2, 8, LIMITS["max_subjects"]),
    requires=("plasma_heroin", "mor_occupancy_vta", "nac_dopamine", "hedonic_state", "pain", "ventilation",
              "spo2", "plasma_naloxone"),
    max_duration_days=3.0,
    notes=_acute_notes,
)

# ---------------------------------------------------------------------------------------------
# page 2: chronic use and recovery (months)
# ---------------------------------------------------------------------------------------------
_CHRONIC_STEPS = (15.0, 60.0, 180.0, 360.0, 720.0, 1440.0)
_CHRONIC_MOST = 6000
_USE_START_MIN = 0.0  # the first use at the start: "use for 28d" at 3 a day is 84 uses


def _chronic_build(v: dict[str, Any]) -> tuple[dict, dict]:
    from opioidsim.units import parse_quantity

    per_day = _int_or_raw(v["uses_per_day"])
    if isinstance(per_day, bool) or not isinstance(per_day, int) or not 1 <= per_day <= 6:
        raise control_error("uses_per_day", "uses a day", v["uses_per_day"], "must be a whole number from 1 to 6")
    # duration = use period + abstinence, both written by the user
    total = v["use_for"]
    try:
        use_min = parse_quantity(v["use_for"], "time")
    except Exception:
        use_min = None
    try:
        off_min = parse_quantity(v["abstinence"], "time")
    except Exception:
        raise control_error("abstinence", "abstinence", v["abstinence"],
                            'must be a time with a unit, e.g. "56d", "8w" or "1y" (0d: none)') from None
    if off_min < 0 or not math.isfinite(off_min):
        raise control_error("abstinence", "abstinence", v["abstinence"], "must be 0d or longer")
    if use_min is not None and math.isfinite(use_min):
        total = _fmt_minutes(float(round(use_min + off_min)))
    values = {**v, "duration": total}
    data, fields = _common_data(values, _CHRONIC_STEPS, _CHRONIC_MOST)
    data["dose"] = [{"drug": v["drug"], "route": v["route"], "amount": v["amount"],
                     "at": _fmt_minutes(_USE_START_MIN), "every": _fmt_minutes(1440.0 / per_day),
                     "until": v["use_for"]}]
    fields.update({"scenario.duration": "use_for", "dose[0].drug": "drug", "dose[0].route": "route",
                   "dose[0].amount": "amount", "dose[0].until": "use_for", "dose[0].every": "uses_per_day"})
    return data, fields


def _chronic_params(s: Scenario) -> Optional[dict[str, Any]]:
    if len(s.doses) != 1:
        return None
    d = s.doses[0]
    if d.every is None or d.until is None or d.drug == "naloxone" or not math.isclose(d.at_min, _USE_START_MIN):
        return None
    per_day = 1440.0 / d.every_min
    if not float(per_day).is_integer() or not 1 <= per_day <= 6:
        return None
    off = s.duration_min - d.until_min
    if off < 0:
        return None
    common = _common_params(s, _CHRONIC_STEPS, _CHRONIC_MOST)
    if common is None:
        return None
    common.pop("duration")
    return {**common, "drug": d.drug, "route": d.route, "amount": d.amount, "uses_per_day": str(int(per_day)),
            "use_for": d.until, "abstinence": _fmt_minutes(off)}


def _chronic_phases(s: Scenario) -> list[dict[str, Any]]:
    times = [t for t, d in s.dose_schedule() if d.drug != "naloxone"]
    if not times:
        return []
    return [{"start": times[0], "end": times[-1], "label": "use"}]


def _chronic_notes(ds: Any, s: Scenario) -> list[str]:
    from opioidsim.report.summary import TOLERANCE_REGIONS, cows_band, tolerance_fold_shifts, withdrawal_peak

    notes = []
    for name, shift in tolerance_fold_shifts(ds).items():
        region, effect = TOLERANCE_REGIONS[name]
        if math.isfinite(shift.median) and shift.median >= 1.05:
            notes.append(f"Tolerance at its deepest ({region}, {effect}): about {shift.median:.1f}× the dose "
                         f"for the first dose's effect, on day {shift.time_median_min / 1440:.0f} (median).")
    times = [t for t, d in s.dose_schedule() if d.drug != "naloxone"]  # uses, not the antagonist
    if times and "cows" in ds.data_vars:
        peak = withdrawal_peak(ds, after_min=times[-1])
        if peak is not None and math.isfinite(peak.median):
            notes.append(f"Withdrawal after the last use peaks at COWS {peak.median:.0f} "
                         f"({cows_band(peak.median)}), {peak.time_median_min / 60 - times[-1] / 60:.0f} h "
                         "after it (median).")
    failed = int(ds.attrs.get("subjects_failed", 0))
    if failed:
        notes.append(f"{failed} subject(s) failed to integrate; their curves stop there.")
    return notes


CHRONIC = Page(
    id="chronic",
    title="Chronic use and recovery",
    intro=("Choose a pattern of use and how long it lasts, then a period without the drug. Over weeks the "
           "receptors lose their response (tolerance), the locus coeruleus adapts so that stopping brings "
           "withdrawal, D2 receptors and dopamine stores run down, and the hedonic set point sinks: the "
           "same dose buys less pleasure and its absence costs more. Then watch what recovers in "
           "abstinence, and how slowly. Runs of months take a while: progress is shown and you can cancel."),
    controls=(
        Control("drug", "Drug", "select", "heroin", options=AGONISTS, group="Use pattern"),
        Control("route", "Route", "select", "iv", options_by="drug",
                options_map={d: _ROUTE_MAP[d] for d in AGONISTS}, group="Use pattern"),
        Control("amount", "Amount each time", "text", "20 mg", 'a mass, e.g. "20 mg"', group="Use pattern"),
        Control("uses_per_day", "Uses a day", "number", "3", "1 to 6, evenly spread over the day; the first at the start",
                group="Use pattern"),
        Control("use_for", "Use for", "text", "28d", 'how long the pattern lasts, e.g. "28d", "12w"',
                group="Use pattern"),
        Control("abstinence", "Then abstinence for", "text", "56d", 'e.g. "56d", "6w", "1y"',
                group="Use pattern"),
        *[c for c in _common_controls("explorer-chronic", "", 3, "") if c.name != "duration"],
    ),
    panels=(
        Panel("tolerance", "Tolerance: receptor response", "1 = naive",
              (Series("mor_capacity_vta", "VTA (euphoria)", extreme="min"), Series("mor_capacity_dorsal_horn", "dorsal horn (analgesia)", extreme="min"),
               Series("mor_capacity_brainstem", "brainstem (breathing)", extreme="min")),
              "mu-opioid receptor signalling capacity; lower means the same dose does less", y_range=(0.0, 1.05)),
        Panel("withdrawal", "Withdrawal (COWS)", "score 0–48", (Series("cows", "COWS, highest in each interval", "max"),),
              "Clinical Opiate Withdrawal Scale", refs=tuple((lo, name) for name, lo, _ in COWS_BANDS[:3])),
        Panel("dopamine", "Dopamine system", "1 = naive",
              (Series("d2_density", "D2 receptors", extreme="min"), Series("da_stores", "dopamine stores", extreme="min")),
              "striatal D2 receptor density and releasable dopamine", y_zero=True),
        Panel("balance", "The pleasure–pain balance", "−10 … 10",
              (Series("hedonic_state", "highest in each interval (the high)", "max"),
               Series("hedonic_state", "lowest in each interval", "min"),
               Series("hedonic_set_point", "set point with no drug on board", extreme="min")),
              "allostasis: the baseline the drug's effect rides on sinks with use", y_zero=False),
        Panel("craving", "Craving", "0–10 VAS",
              (Series("craving", "background craving"), Series("cue_craving", "craving a drug cue would evoke")),
              "cue-induced craving grows in early abstinence (incubation) before it fades", y_range=(0.0, 10.0)),
    ),
    build_data=_chronic_build,
    params_from=_chronic_params,
    auto_run=False,
    requires=("mor_capacity_vta", "cows", "d2_density", "da_stores", "hedonic_set_point", "craving", "cue_craving"),
    phases=_chronic_phases,
    notes=_chronic_notes,
)

# ---------------------------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------------------------
_REGISTRY: dict[str, Page] = {}


def register(page: Page) -> Page:
    """Add a page to the explorer (shown only if ``page.available()``); returns it."""
    _REGISTRY[page.id] = page
    return page


def explorer_readouts() -> tuple[str, ...]:
    """Every readout a page shows (and the overdose flag), in contract order: all pages record the
    same set, so that one compiled program serves every page of the same cohort and dose shape."""
    wanted = {s.readout for p in pages() for panel in p.panels for s in panel.series}
    wanted.add("overdose")
    return tuple(r for r in READOUTS if r in wanted)


#: the order of the pages in the explorer's navigation: the course of the seeds, from one dose to
#: years of use, then the lab and the clinic. Not registration order, which depends on which page
#: module happens to be imported first (a test importing the animal lab put it after the trial).
PAGE_ORDER = ("five-steps", "chronic", "brain-scan", "animal-lab", "trial")


def pages() -> list[Page]:
    """The registered pages whose mechanisms exist, in PAGE_ORDER (others after them, as registered)."""
    rank = {pid: i for i, pid in enumerate(PAGE_ORDER)}
    ordered = sorted(_REGISTRY.values(), key=lambda p: rank.get(p.id, len(PAGE_ORDER)))  # stable
    return [p for p in ordered if p.available()]


def get_page(page_id: Any) -> Page:
    for p in pages():
        if p.id == page_id:
            return p
    raise ScenarioError("page", page_id, f"unknown page; the explorer has {', '.join(p.id for p in pages())}")


register(ACUTE)
register(CHRONIC)
from . import brain_scan  # noqa: E402,F401  (registers the brain-scan page; it builds on this module)
from . import animal_lab  # noqa: E402,F401  (the animal-lab page)
from . import trial_page  # noqa: E402,F401  (the treatment-trial page)
