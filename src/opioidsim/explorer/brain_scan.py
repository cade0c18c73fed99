"""The explorer's "brain scan" page: a cross-sectional imaging study, users against controls.

A pattern of heroin use (route, amount, uses a day) is run in the full model for some weeks on the
typical subject; its time-averaged drives (mean VTA MOR signal, inhaled heroin) then drive the slow
damage modules through years of use and a period of abstinence (`opioidsim.imaging.life_course`),
and each virtual user is scanned against drug-free controls from the same population. The result is
the study's effect-size table as the papers print it: per region Hedges' g with its 95 % CI, Welch's
t and p, and the correlation of each region with years of use.

The use pattern is the page's scenario (so "Download scenario" saves the run that measures the
drives); the study design (cohort sizes, years of use, abstinence, seed) is validated here, each bad
value named with what is allowed. Cohorts are cut from fixed-size batches (subject i is the same in
any cohort), so the engine compiles one shape per model, and the drives of a pattern are computed
once per server. Research and teaching only: never a dosing guide.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, Callable, Optional

import numpy as np

from opioidsim.readouts import READOUTS
from opioidsim.scenarios import Scenario

from .pages import Control, Page, _fmt_minutes, _int_or_raw, _number, control_error, register

#: what one brain-scan study may ask for (the slow model is cheap; controls are one day of the full model)
STUDY_LIMITS = {"max_users": 200, "max_controls": 200, "max_years_of_use": 30.0, "max_abstinence_days": 3650.0,
                "min_group": 5}
#: every study runs its users and its controls as batches of this size, cut to the cohort asked for
BATCH = STUDY_LIMITS["max_users"]
#: the drives are averaged over the last third of the pattern's run (tolerance has settled there)
AVERAGE_FRACTION = 1.0 / 3.0
MEASURED_DAYS = (7, 60)
REGION_LABELS = {"vbm_pfc": "prefrontal cortex", "vbm_acc": "anterior cingulate", "vbm_temporal": "temporal cortex",
                 "vbm_insula": "insula", "vbm_nac": "nucleus accumbens", "vbm_fusiform": "fusiform cortex"}


def _days(name: str, label: str, value: Any, lo: float, hi: float) -> float:
    from opioidsim.units import parse_quantity

    try:
        minutes = parse_quantity(value, "time")
    except Exception:
        minutes = math.nan
    days = minutes / 1440.0
    if not math.isfinite(days) or not lo <= days <= hi:
        example = '"150d", "1y" (0d: none)' if lo == 0 else '"30d", "4w"'
        raise control_error(name, label, value, f"must be a time from {lo:g} to {hi:g} days, e.g. {example}")
    return days


def _build(v: dict[str, Any]) -> tuple[dict, dict]:
    """The use pattern as a scenario: the typical subject, heroin from the start for `measured_over`."""
    per_day = _number("uses_per_day", "uses a day", v["uses_per_day"], 1, 6, "evenly spread over the day", whole=True)
    _days("measured_over", "pattern measured over", v["measured_over"], *MEASURED_DAYS)
    data = {"scenario": {"name": "brain-scan-use-pattern", "duration": v["measured_over"], "record_every": "4h",
                         "description": "the use pattern whose time-averaged drives the brain-scan study extrapolates",
                         "readouts": ["opioid_exposure", "leukoencephalopathy_risk"]},
            "cohort": {"subjects": 1, "seed": 0},
            "dose": [{"drug": "heroin", "route": v["route"], "amount": v["amount"], "at": "0min",
                      "every": _fmt_minutes(1440.0 / per_day)}]}
    fields = {"scenario.duration": "measured_over", "dose[0].route": "route", "dose[0].amount": "amount",
              "dose[0].every": "uses_per_day"}
    return data, fields


def _design(v: dict[str, Any]) -> dict[str, Any]:
    """The study design from the controls, each value checked."""
    users = _number("users", "users", v["users"], STUDY_LIMITS["min_group"], STUDY_LIMITS["max_users"],
                    "virtual users scanned", whole=True)
    controls = _number("controls", "controls", v["controls"], STUDY_LIMITS["min_group"], STUDY_LIMITS["max_controls"],
                       "drug-free controls from the same population", whole=True)
    top = STUDY_LIMITS["max_years_of_use"]
    y_lo = _number("years_min", "fewest years of use", v["years_min"], 0.1, top, "years of daily use")
    y_hi = _number("years_max", "most years of use", v["years_max"], 0.1, top, "years of daily use")
    if y_hi < y_lo:
        raise control_error("years_max", "most years of use", v["years_max"],
                            f"must be at least the fewest years of use ({y_lo:g})")
    abstinent = _days("abstinence", "abstinent before the scan", v["abstinence"], 0.0, STUDY_LIMITS["max_abstinence_days"])
    seed = _number("seed", "random seed", v["seed"], 0, 2**32 - 1, "the same seed gives the same cohorts", whole=True)
    return {"users": users, "controls": controls, "years_min": y_lo, "years_max": y_hi, "abstinent_days": abstinent,
            "seed": seed}


@lru_cache(maxsize=32)
def use_pattern_drives(route: str, amount_mg: float, every_min: float, days: float) -> tuple[float, float]:
    """(mean VTA MOR signal, mean inhaled heroin in mg/min) over the last third of `days` of the
    pattern in the typical subject (cached: a pattern is measured once per server)."""
    from opioidsim import Dose, imaging
    from opioidsim.validation.sim import run_typical

    r = run_typical([Dose("heroin", f"{amount_mg!r} mg", route=route, at="0min", every=_fmt_minutes(every_min))],
                    _fmt_minutes(days * 1440.0), "4h")
    return imaging.steady_use_drives(r.t, r["opioid_exposure"], r["leukoencephalopathy_risk"], days * AVERAGE_FRACTION)


@lru_cache(maxsize=8)
def _control_batch(seed: int) -> dict[str, np.ndarray]:
    from opioidsim import imaging

    return imaging.control_scans(BATCH, seed)


def _r(x: float, digits: int = 4) -> Optional[float]:
    x = float(x)
    return float(f"{x:.{digits}g}") if math.isfinite(x) else None


def run_study(scenario: Scenario, design: dict[str, Any], progress: Callable[[float], None]) -> dict[str, Any]:
    """The study's effect sizes as JSON (the page's result)."""
    from opioidsim import imaging

    progress(0.0)
    dose = scenario.doses[0]
    signal, inhaled = use_pattern_drives(dose.route, dose.amount_mg, dose.every_min, scenario.duration_min / 1440.0)
    progress(0.6)
    n, m, seed = design["users"], design["controls"], design["seed"]
    years = np.linspace(design["years_min"], design["years_max"], n)
    padded = np.concatenate([years, np.full(BATCH - n, years[-1])])
    _, scans = imaging.life_course(padded, design["abstinent_days"], signal, inhaled, seed=seed,
                                   measures=imaging.VBM_MEASURES)
    users = {k: v[:n] for k, v in scans.items()}
    progress(0.8)
    controls = {k: v[:m] for k, v in _control_batch(seed + 1).items()}
    progress(0.95)
    table = imaging.compare_groups(users, controls, imaging.VBM_MEASURES)
    corr = imaging.correlate(users, years, imaging.VBM_MEASURES) if n >= 3 and np.ptp(years) > 0 else None
    rows = [{"measure": r.measure, "label": REGION_LABELS.get(r.measure, READOUTS[r.measure].long_name),
             "mean_users": _r(r.mean_users), "sd_users": _r(r.sd_users), "mean_controls": _r(r.mean_controls),
             "sd_controls": _r(r.sd_controls), "g": _r(r.hedges_g), "g_low": _r(r.g_ci_low),
             "g_high": _r(r.g_ci_high), "t": _r(r.t), "df": _r(r.df), "p": _r(r.p, 3)} for r in table.itertuples()]
    correlation = ([] if corr is None else
                   [{"measure": c.measure, "label": REGION_LABELS.get(c.measure, c.measure), "r": _r(c.r, 3),
                     "p": _r(c.p, 3), "n": int(c.n)} for c in corr.itertuples()])
    years_text = (f"{design['years_min']:g} years" if design["years_max"] == design["years_min"]
                  else f"{design['years_min']:g}–{design['years_max']:g} years")
    notes = [
        f"{n} virtual users ({years_text} of heroin {dose.amount} {dose.route} every {dose.every}, spread evenly), "
        f"scanned after {design['abstinent_days']:g} days of abstinence, against {m} drug-free controls from the "
        "same population. Negative g: less grey matter in users.",
        f"The pattern was run for {scenario.duration} in the full model (typical subject); over its last "
        f"{scenario.duration_min / 1440.0 * AVERAGE_FRACTION:.0f} days the mean VTA MOR signal was {signal:.3f} "
        f"of full activation{f' and inhaled heroin {inhaled * 1440:.3g} mg a day' if inhaled > 0 else ''}. "
        "Years of use are extrapolated from these averages (no escalation, relapse or overdoses).",
        "Validation V-GMV-1/2 uses 240 users (1–10 years, 150 days abstinent) against 120 controls, with drives "
        "from 120 days of 20 mg IV three times a day.",
    ]
    return {"page": "brain-scan", "kind": "effects", "rows": rows, "correlation": correlation, "notes": notes,
            "subjects": n + m, "users": n, "controls": m, "scenario_name": scenario.name,
            "drives": {"mor_signal_vta": _r(signal), "inhaled_heroin_mg_per_day": _r(inhaled * 1440.0)}}


BRAIN_SCAN = Page(
    id="brain-scan",
    title="The brain scan",
    intro=("A cross-sectional imaging study: virtual people who used heroin for years, scanned after a period "
           "of abstinence, against drug-free controls from the same population. Each region's grey matter "
           "difference is shown as the papers print it: Hedges' g with its 95 % confidence interval, Welch's t "
           "and p, and how the region correlates with years of use. Choose the pattern of use, how many "
           "years, how long since the last use, and the size of the study."),
    controls=(
        Control("route", "Route", "select", "iv", options=("iv", "smoked"),
                help="heroin injected or smoked (inhaled heroin can also injure white matter)", group="Use pattern"),
        Control("amount", "Amount each time", "text", "20 mg", 'a mass, e.g. "20 mg"', group="Use pattern"),
        Control("uses_per_day", "Uses a day", "number", "3", "1 to 6, evenly spread over the day", group="Use pattern"),
        Control("measured_over", "Pattern measured over", "text", "30d",
                f"{MEASURED_DAYS[0]} to {MEASURED_DAYS[1]} days of the full model; the last third is averaged",
                group="Use pattern", advanced=True),
        Control("years_min", "Fewest years of use", "text", "1", "0.1 to 30", group="Study"),
        Control("years_max", "Most years of use", "text", "10", "0.1 to 30; users are spread evenly in between",
                group="Study"),
        Control("abstinence", "Abstinent before the scan", "text", "150d", 'e.g. "150d", "1y"; 0d: scanned while using',
                group="Study"),
        Control("users", "Users", "number", "40", f"{STUDY_LIMITS['min_group']} to {STUDY_LIMITS['max_users']}",
                group="Study"),
        Control("controls", "Controls", "number", "40", f"{STUDY_LIMITS['min_group']} to {STUDY_LIMITS['max_controls']}",
                group="Study"),
        Control("seed", "Random seed", "number", "21", "the same seed gives the same cohorts", group="Study",
                advanced=True),
    ),
    panels=(),
    build_data=_build,
    params_from=lambda s: None,  # loaded files go to the time-course pages
    auto_run=False,
    requires=("opioid_exposure", "leukoencephalopathy_risk", *REGION_LABELS),
    max_duration_days=-1.0,
    design=_design,
    study=run_study,
)

register(BRAIN_SCAN)
