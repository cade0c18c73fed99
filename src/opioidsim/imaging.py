"""Synthetic imaging studies: cross-sectional and longitudinal designs, analysed as the papers do.

A study scans virtual subjects with the model's imaging readouts (`vbm_<region>`, `pet_d2_bp`,
`white_matter`, ...) and analyses them with the statistics of the literature: per measure the
group difference of users and controls (Hedges' g with the small-sample correction, Welch's
t-test), and the correlation of a measure with years of use (Pearson). Tables are tidy pandas
DataFrames, one row per measure (per scan time in a longitudinal design).

Controls are drawn from the same population as the users (same parameter distributions, another
seed): a drug-free subject's `vbm_<region>` is his place in the normal anatomical spread.

Years of use. Heroin three times a day is expensive to integrate (each dose is a transient of
minutes), far too expensive for cohorts with a decade of use on one machine. The long histories
therefore use the separation of time scales the model has: the damage mechanisms (inflammation,
grey and white matter) are slow and feed nothing back into the fast physiology, so over years
they see only the time-averaged fast signals. `steady_use_drives` reads those averages off a
full-model run of a use pattern (the growth of `opioid_exposure` and of the leukoencephalopathy
hazard over its last days); `life_course` then integrates the real damage modules, driven by
these averages, over any number of years of use followed by abstinence (first-order averaging:
errors of the order of the damage done within one dosing interval). Overdoses are not carried
over: hypoxic injury is left out of the extrapolation, and the mean SpO2 is taken as normal.
Short histories (weeks to months) can be run in the full model with `opioidsim.simulate` and
analysed with `compare_groups` / `correlate` directly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .model.base import Module, State, sigmoid
from .model.inflammation import InflammationModule
from .model.model import Model
from .model.neuroimaging import VbmModule
from .model.structure import REGIONS, StructureModule

__all__ = ["VBM_MEASURES", "hedges_g", "hedges_g_ci", "compare_groups", "correlate", "control_scans",
           "steady_use_drives", "life_course", "life_course_dataset", "cross_sectional_study", "longitudinal_study",
           "StudyResult"]

VBM_MEASURES = tuple(f"vbm_{r}" for r in REGIONS)
DAY_MIN = 1440.0
YEAR_DAYS = 365.25


def hedges_g(users: np.ndarray, controls: np.ndarray) -> float:
    """Hedges' g of users − controls (pooled SD, small-sample correction J = 1 − 3/(4(n1+n2) − 9)):
    negative when the users' values are lower."""
    users, controls = np.asarray(users, float), np.asarray(controls, float)
    n1, n2 = len(users), len(controls)
    pooled = np.sqrt(((n1 - 1) * np.var(users, ddof=1) + (n2 - 1) * np.var(controls, ddof=1)) / (n1 + n2 - 2))
    return float((np.mean(users) - np.mean(controls)) / pooled * (1.0 - 3.0 / (4.0 * (n1 + n2) - 9.0)))


def hedges_g_ci(g: float, n1: int, n2: int, level: float = 0.95) -> tuple[float, float]:
    """Confidence interval of Hedges' g from its large-sample standard error
    sqrt((n1 + n2)/(n1 n2) + g²/(2 (n1 + n2))) (Hedges LV & Olkin I 1985, Statistical Methods for
    Meta-Analysis; normal approximation)."""
    se = np.sqrt((n1 + n2) / (n1 * n2) + g**2 / (2.0 * (n1 + n2)))
    z = stats.norm.ppf(0.5 + level / 2.0)
    return float(g - z * se), float(g + z * se)


def compare_groups(users: Mapping[str, np.ndarray], controls: Mapping[str, np.ndarray],
                   measures: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per measure: group means and SDs, difference, Hedges' g with its 95 % confidence
    interval (g_ci_low, g_ci_high), Welch's t, df and p, and the direction of the users'
    difference ("lower"/"higher")."""
    rows = []
    for m in measures or [k for k in users if k in controls]:
        u, c = np.asarray(users[m], float), np.asarray(controls[m], float)
        t = stats.ttest_ind(u, c, equal_var=False)
        vu, vc = np.var(u, ddof=1) / len(u), np.var(c, ddof=1) / len(c)
        df = (vu + vc) ** 2 / (vu**2 / (len(u) - 1) + vc**2 / (len(c) - 1))
        diff = float(np.mean(u) - np.mean(c))
        g = hedges_g(u, c)
        lo, hi = hedges_g_ci(g, len(u), len(c))
        rows.append({"measure": m, "n_users": len(u), "n_controls": len(c), "mean_users": float(np.mean(u)),
                     "sd_users": float(np.std(u, ddof=1)), "mean_controls": float(np.mean(c)),
                     "sd_controls": float(np.std(c, ddof=1)), "difference": diff, "hedges_g": g,
                     "g_ci_low": lo, "g_ci_high": hi, "t": float(t.statistic), "df": float(df), "p": float(t.pvalue),
                     "direction": "lower" if diff < 0 else "higher"})
    return pd.DataFrame(rows)


def correlate(values: Mapping[str, np.ndarray], covariate: np.ndarray, measures: Sequence[str] | None = None,
              covariate_name: str = "years_of_use") -> pd.DataFrame:
    """Pearson correlation of each measure with a covariate across subjects (r, two-sided p, n)."""
    rows = []
    for m in measures or list(values):
        res = stats.pearsonr(np.asarray(values[m], float), np.asarray(covariate, float))
        rows.append({"measure": m, "covariate": covariate_name, "r": float(res.statistic), "p": float(res.pvalue),
                     "n": len(covariate)})
    return pd.DataFrame(rows)


def control_scans(n: int, seed: int, measures: Sequence[str] = VBM_MEASURES,
                  parameters: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
    """Scans of a drug-free cohort of `n` drawn from the population with `seed` (the full model),
    with a scenario's [parameters] (`parameters`) if given."""
    from .engine.core import simulate
    from .scenarios import Scenario

    ds = simulate(Scenario(duration="1d", record_every="12h", readouts=list(measures),
                           cohort={"subjects": n, "seed": seed}, parameters=dict(parameters or {})))
    return {m: ds[m].values[:, -1] for m in measures}


# --- years of use: the slow damage modules under time-averaged drives ------------------------

def steady_use_drives(t_min: np.ndarray, opioid_exposure: np.ndarray, leukoencephalopathy_risk: np.ndarray,
                      average_days: float, parameters: Mapping[str, Any] | None = None) -> tuple[float, float]:
    """Mean VTA MOR signal and mean inhaled heroin (mg/min) over the last `average_days` of a
    full-model run, from the growth of `opioid_exposure` (days) and of the leukoencephalopathy
    hazard −ln(1 − risk), per mg as the run had it (its [parameters], `parameters`, if given)."""
    from .model.model import default_model
    from .overrides import in_effect

    t_min = np.asarray(t_min, float)
    i0 = int(np.searchsorted(t_min, t_min[-1] - average_days * DAY_MIN))
    span = t_min[-1] - t_min[i0]
    signal = (opioid_exposure[-1] - opioid_exposure[i0]) * DAY_MIN / span  # exposure is counted in days
    hazard = -np.log1p(-np.asarray(leukoencephalopathy_risk, float))
    per_mg = in_effect(default_model().parameters, parameters or {})["tle_hazard_per_mg"].internal_value
    inhaled = (hazard[-1] - hazard[i0]) / per_mg / span
    return float(signal), float(inhaled)


class SteadyUseModule(Module):
    """The fast physiology replaced by its time averages: a use pattern's mean VTA MOR signal and
    mean inhaled heroin until `use_stops_at`, nothing after; SpO2 normal throughout. Its values
    are per-subject inputs set by `life_course`, not physiological parameters."""

    name = "steady_use"
    states = (State("clock", "min", 0.0, "time since the start of use"),)
    provides = ("mor_signal_vta", "spo2", "inhaled_heroin")

    def outputs(self, y, u, p):
        on = sigmoid((p["use_stops_at"] - y["clock"]) / DAY_MIN)  # switched off over about a day
        return {"mor_signal_vta": p["steady_mor_signal"] * on, "spo2": 98.0 + 0.0 * on,
                "inhaled_heroin": p["steady_inhaled_heroin"] * on}

    def rates(self, t, y, u, p):
        return {"clock": 1.0 + 0.0 * y["clock"]}


_SLOW_MODEL: Model | None = None


def slow_model() -> Model:
    """The damage modules of the default model behind `SteadyUseModule`."""
    global _SLOW_MODEL  # a cache of an immutable object, like default_model's lru_cache
    if _SLOW_MODEL is None:
        _SLOW_MODEL = Model([SteadyUseModule(), InflammationModule(), StructureModule(), VbmModule()])
    return _SLOW_MODEL


def life_course(use_years: np.ndarray, abstinent_days: np.ndarray | float, signal: float, inhaled: float = 0.0, *,
                seed: int = 0, first: int = 0, record_every_days: float = 30.0,
                measures: Sequence[str] = VBM_MEASURES + tuple(f"gmv_{r}" for r in REGIONS) + ("white_matter",),
                parameters: Mapping[str, Any] | None = None):
    """Each subject i uses with the given mean drives for use_years[i], then abstains for
    abstinent_days (scalar or per subject), and is scanned then. Subjects are the population's
    subjects `first`, `first+1`, ... of `seed` (their anatomy is drawn as in the full model).
    Returns (records (subject, time, measure) as an xarray DataArray, scans at each subject's
    scan time as a dict measure → array). `parameters`: a scenario's [parameters], as a run has them."""
    import xarray as xr

    from .engine.core import integrate, make_grid, subject_parameters
    from .engine.dosing import compile_doses
    from .scenarios import Scenario

    use_years = np.asarray(use_years, float)
    n = len(use_years)
    abstinent = np.broadcast_to(np.asarray(abstinent_days, float), (n,))
    model = slow_model()
    end_days = use_years * YEAR_DAYS + abstinent
    record = record_every_days * DAY_MIN
    duration = (np.ceil(end_days.max() / record_every_days) + 1) * record
    # for the cohort settings and any parameters set
    scenario = Scenario(duration="1d", cohort={"subjects": n, "seed": seed}, parameters=dict(parameters or {}))
    p = subject_parameters(model, scenario, n, seed, first=first)
    p["steady_mor_signal"] = np.full(n, signal)
    p["steady_inhaled_heroin"] = np.full(n, inhaled)
    p["use_stops_at"] = use_years * YEAR_DAYS * DAY_MIN
    grid = make_grid(duration, record)
    events = compile_doses(model, [], duration, grid.h, p)
    recs = integrate(model, grid, model.initial_state(p), p, events, tuple(measures))
    t_days = grid.record_times_min / DAY_MIN
    da = xr.DataArray(recs, dims=("subject", "time_days", "measure"),
                      coords={"subject": np.arange(first, first + n), "time_days": t_days, "measure": list(measures)})
    # each subject's scan: linear interpolation between the records around his scan day
    scans = {m: np.array([np.interp(end_days[i], t_days, recs[i, :, j]) for i in range(n)])
             for j, m in enumerate(measures)}
    return da, scans


def life_course_dataset(records) -> "xr.Dataset":
    """`life_course` records as a results Dataset (subject × time as timedelta, one variable per
    measure with its units and long name), so that the report's panels draw a life course:
    ``report.figures.grey_matter_figure(life_course_dataset(records))``."""
    import xarray as xr

    from .readouts import READOUTS

    t = (np.asarray(records["time_days"].values, float) * DAY_MIN * 60e9).round().astype("timedelta64[ns]")
    data = {}
    for m in records["measure"].values:
        m = str(m)
        attrs = {"units": READOUTS[m].units, "long_name": READOUTS[m].long_name} if m in READOUTS else {}
        data[m] = (("subject", "time"), np.asarray(records.sel(measure=m).values, float), attrs)
    return xr.Dataset(data, coords={"subject": records["subject"].values, "time": t},
                      attrs={"scenario_name": "life course (slow damage modules under mean drives of use)"})


@dataclass
class StudyResult:
    table: pd.DataFrame  # group differences, one row per measure (per scan in a longitudinal study)
    correlation: pd.DataFrame  # measure vs years of use, within users
    users: pd.DataFrame  # one row per user: years of use and each scanned measure
    controls: pd.DataFrame  # one row per control

    def figure(self, title: str | None = None):
        """The group differences as a figure (region × Hedges' g with 95 % CI, t and p):
        ``study.figure().savefig("effects.png")`` (report.figures.effect_size_figure)."""
        from .report.figures import effect_size_figure

        return effect_size_figure(self.table, title=title)

    def report(self, out_dir, title: str = "Synthetic imaging study: users against controls", design: str = ""):
        """Write the study as a folder: ``report.html`` (effect-size figure, group-difference and
        correlation tables), ``effects.csv``, ``correlation.csv`` and ``subjects.csv`` (one row per
        scanned subject, with its group). Returns the paths by kind (report.study)."""
        from .report.study import write_study_report

        if not design:
            years = self.users["years_of_use"]
            design = (f"Cross-sectional: {len(self.users)} users ({years.min():g}–{years.max():g} years of use) "
                      f"against {len(self.controls)} drug-free controls from the same population.")
        subjects = pd.concat([self.users.assign(group="user"), self.controls.assign(group="control")],
                             ignore_index=True)
        return write_study_report(out_dir, self.table, self.correlation, title=title, design=design,
                                  subjects=subjects)


def cross_sectional_study(use_years: np.ndarray, signal: float, *, inhaled: float = 0.0,
                          abstinent_days: float = 0.0, n_controls: int = 40, seed: int = 0,
                          measures: Sequence[str] = VBM_MEASURES,
                          parameters: Mapping[str, Any] | None = None) -> StudyResult:
    """Users with the given years of use (scanned after `abstinent_days`) against drug-free
    controls from the same population (seed + 1); group differences per measure and the
    correlation of each measure with years of use within users. `parameters`: a scenario's
    [parameters] for users and controls alike."""
    _, scans = life_course(use_years, abstinent_days, signal, inhaled, seed=seed, measures=tuple(measures),
                           parameters=parameters)
    controls = control_scans(n_controls, seed + 1, measures, parameters)
    users = pd.DataFrame({"years_of_use": np.asarray(use_years, float), **scans})
    return StudyResult(compare_groups(scans, controls, measures), correlate(scans, use_years, measures),
                       users, pd.DataFrame(controls))


def longitudinal_study(use_years: np.ndarray, signal: float, scan_days: Sequence[float] = (7, 30, 90, 180, 365),
                       *, inhaled: float = 0.0, n_controls: int = 40, seed: int = 0,
                       measures: Sequence[str] = VBM_MEASURES) -> pd.DataFrame:
    """The same users scanned repeatedly across abstinence (days after their last use): per scan
    and measure the users' mean, the mean change from the first scan with a paired t-test, and
    Hedges' g (with its 95 % confidence interval) against controls from the same population."""
    use_years = np.asarray(use_years, float)
    controls = control_scans(n_controls, seed + 1, measures)
    gaps = np.diff([0.0, *scan_days])
    da, _ = life_course(use_years, max(scan_days), signal, inhaled, seed=seed, measures=tuple(measures),
                        record_every_days=float(min(30.0, max(1.0, gaps.min()))))
    t_days = da["time_days"].values
    scans = {d: {m: np.array([np.interp(u * YEAR_DAYS + d, t_days, da.sel(measure=m).values[i])
                              for i, u in enumerate(use_years)]) for m in measures} for d in scan_days}
    first = scans[scan_days[0]]
    rows = []
    for d in scan_days:
        for m in measures:
            x = scans[d][m]
            g = hedges_g(x, controls[m])
            lo, hi = hedges_g_ci(g, len(x), len(controls[m]))
            paired = stats.ttest_rel(x, first[m]) if d != scan_days[0] else None
            rows.append({"abstinent_days": d, "measure": m, "mean_users": float(np.mean(x)),
                         "change_from_first": float(np.mean(x - first[m])),
                         "t_paired": float(paired.statistic) if paired else np.nan,
                         "p_paired": float(paired.pvalue) if paired else np.nan,
                         "hedges_g": g, "g_ci_low": lo, "g_ci_high": hi, "n_users": len(x),
                         "n_controls": len(controls[m])})
    return pd.DataFrame(rows)
