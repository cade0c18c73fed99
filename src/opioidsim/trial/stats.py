"""Effect estimates of a virtual clinical trial, computed the way treatment trials report them.

Pure functions: 2×2-table measures (risk ratio, odds ratio, risk difference), standardised mean
differences (Cohen's d, Hedges' g), Kaplan–Meier survival with Greenwood errors and the log-rank
test; then :func:`trial_outcomes` (one row per outcome and treatment arm against control) and
:func:`consort_flow` / :func:`consort_text` (the CONSORT-like participant flow) of a trial
results Dataset.

The trial Dataset has dims ``subject``, ``week`` (follow-up weeks 1..W) and ``day``; per subject
``enrolled``, ``started_treatment``, ``retained``, ``days_in_treatment``, ``dropout_day``,
``relapse``, ``overdose_events``, ``alive``, ``death_day``, ``days_abstinent``,
``lost_to_follow_up``; per (subject, week) ``urine_positive`` (1 / 0 / NaN = missed); the
coordinate ``arm`` (subject,); attrs ``trial_name``, ``arms`` (comma-separated, first = control),
``control_arm``, ``follow_up_weeks``, ``missing_urine_rule`` ("positive" or "exclude"),
``randomisation`` (how subjects were allocated; absent means simple randomisation),
``stratified_by`` (comma-separated co-occurring disorders; empty or absent: not stratified),
``detox_days`` (inpatient detoxification before randomisation; absent means none).

Research and teaching only: the numbers describe simulated subjects, never real patients.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats as _st

from ..scenarios.course import TRIAL_OUTCOME_MEASURES as OUTCOME_MEASURES

__all__ = [
    "Estimate",
    "KaplanMeier",
    "LogRank",
    "OUTCOMES",
    "OUTCOME_COLUMNS",
    "CONSORT_COLUMNS",
    "risk_ratio",
    "odds_ratio",
    "risk_difference",
    "cohens_d",
    "hedges_g",
    "kaplan_meier",
    "log_rank",
    "trial_arms",
    "control_arm",
    "retention_time_event",
    "trial_outcomes",
    "consort_flow",
    "consort_text",
    "randomisation_method",
    "detox_days",
    "stratified_by",
    "subgroup_outcomes",
    "SUBGROUP_COLUMNS",
]

# Outcome keys of trial_outcomes, with the words a reader sees in the report.
OUTCOMES: dict[str, str] = {
    "retention": "Retained in treatment at end of follow-up",
    "urine_positive_final": "Opioid-positive urine at the final scheduled test",
    "urine_negative_proportion": "Proportion of urines given that were opioid-negative",
    "relapse": "Relapse",
    "overdose": "At least one overdose",
    "mortality": "Death",
    "days_abstinent": "Days abstinent during follow-up",
}

OUTCOME_COLUMNS = ["outcome", "arm", "control", "n_arm", "n_control", "value_arm", "value_control",
                   "measure", "estimate", "lower", "upper", "p_value", "events_arm", "events_control"]

CONSORT_COLUMNS = ["randomised", "started_treatment", "retained", "lost_to_follow_up", "died",
                   "analysed"]

_MISSING_RULES = ("positive", "exclude")


@dataclass(frozen=True)
class Estimate:
    """One effect estimate: ``value`` with its two-sided ``level`` confidence interval
    [``lower``, ``upper``] and the two-sided p value of the null (RR = OR = 1, RD = d = 0).
    NaN everywhere when the measure is not estimable (e.g. no events in either arm)."""

    measure: str
    value: float
    lower: float
    upper: float
    p_value: float


def _nan_estimate(measure: str) -> Estimate:
    return Estimate(measure, math.nan, math.nan, math.nan, math.nan)


def _z(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must lie strictly between 0 and 1, got {level!r}")
    return float(_st.norm.ppf(0.5 + level / 2.0))


def _two_sided_p(z: float) -> float:
    return float(2.0 * _st.norm.sf(abs(z)))


def _count(value: float, name: str) -> float:
    v = float(value)
    if not math.isfinite(v) or v < 0 or v != round(v):
        raise ValueError(f"{name} must be a whole number ≥ 0, got {value!r}")
    return v


def _table(events_t: float, n_t: float, events_c: float, n_c: float) -> tuple[float, ...] | None:
    """The 2×2 cells (a, b, c, d) = (events, non-events) treated then control, or None when a
    ratio measure is not estimable: an empty arm, or no events (or only events) in both arms —
    such tables carry no information on a ratio (Cochrane Handbook v6 §10.4.4.1) and are left out.
    When any cell is zero, 0.5 is added to every cell (Cochrane Handbook v6 §10.4.4.1; metafor's
    ``add=1/2, to="only0"``) so that the log ratio and its variance are finite."""
    a, n1 = _count(events_t, "events_t"), _count(n_t, "n_t")
    c, n2 = _count(events_c, "events_c"), _count(n_c, "n_c")
    if a > n1 or c > n2:
        raise ValueError(f"events exceed subjects: {events_t}/{n_t} treated, {events_c}/{n_c} control")
    if n1 == 0 or n2 == 0 or (a == 0 and c == 0) or (a == n1 and c == n2):
        return None
    b, d = n1 - a, n2 - c
    if min(a, b, c, d) == 0:
        a, b, c, d = a + 0.5, b + 0.5, c + 0.5, d + 0.5
    return a, b, c, d


def _log_scale(measure: str, log_value: float, se: float, level: float) -> Estimate:
    z = _z(level)
    return Estimate(measure, math.exp(log_value), math.exp(log_value - z * se),
                    math.exp(log_value + z * se), _two_sided_p(log_value / se))


def risk_ratio(events_t: float, n_t: float, events_c: float, n_c: float,
               level: float = 0.95) -> Estimate:
    """Risk ratio (treated vs control) with the log-scale confidence interval of Katz et al.
    1978 (Biometrics 34:469), as in the Cochrane Handbook and RevMan:
    SE(ln RR) = sqrt(1/a − 1/n_t + 1/c − 1/n_c); p from the z test of ln RR / SE.
    0.5 is added to every cell when any cell of the 2×2 table is zero; NaN when no events (or
    only events) occur in both arms."""
    cells = _table(events_t, n_t, events_c, n_c)
    if cells is None:
        _z(level)
        return _nan_estimate("RR")
    a, b, c, d = cells
    n1, n2 = a + b, c + d
    se = math.sqrt(1.0 / a - 1.0 / n1 + 1.0 / c - 1.0 / n2)
    return _log_scale("RR", math.log((a / n1) / (c / n2)), se, level)


def odds_ratio(events_t: float, n_t: float, events_c: float, n_c: float,
               level: float = 0.95) -> Estimate:
    """Sample odds ratio (treated vs control) with Woolf's 1955 (Ann Hum Genet 19:251) log-scale
    interval: SE(ln OR) = sqrt(1/a + 1/b + 1/c + 1/d); p from the z test of ln OR / SE.
    Zero cells handled as in :func:`risk_ratio` (0.5 added to every cell; NaN when no events or
    only events in both arms)."""
    cells = _table(events_t, n_t, events_c, n_c)
    if cells is None:
        _z(level)
        return _nan_estimate("OR")
    a, b, c, d = cells
    se = math.sqrt(1.0 / a + 1.0 / b + 1.0 / c + 1.0 / d)
    return _log_scale("OR", math.log((a * d) / (b * c)), se, level)


def risk_difference(events_t: float, n_t: float, events_c: float, n_c: float,
                    level: float = 0.95) -> Estimate:
    """Risk difference p_t − p_c with the Wald interval (as RevMan computes it):
    SE = sqrt(p_t(1−p_t)/n_t + p_c(1−p_c)/n_c), no continuity correction; p from the z test.
    When SE is 0 (both risks 0 or 1) the interval collapses to the point and p is NaN: the Wald
    test is undefined there. NaN when an arm is empty."""
    z = _z(level)
    a, n1 = _count(events_t, "events_t"), _count(n_t, "n_t")
    c, n2 = _count(events_c, "events_c"), _count(n_c, "n_c")
    if a > n1 or c > n2:
        raise ValueError(f"events exceed subjects: {events_t}/{n_t} treated, {events_c}/{n_c} control")
    if n1 == 0 or n2 == 0:
        return _nan_estimate("RD")
    p1, p2 = a / n1, c / n2
    rd = p1 - p2
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    p = _two_sided_p(rd / se) if se > 0 else math.nan
    return Estimate("RD", rd, rd - z * se, rd + z * se, p)


def _finite(x: Sequence[float] | np.ndarray) -> np.ndarray:
    a = np.asarray(x, dtype=float).ravel()
    return a[np.isfinite(a)]


def _smd(x_t, x_c, level: float, hedges: bool) -> Estimate:
    z = _z(level)
    measure = "g" if hedges else "d"
    xt, xc = _finite(x_t), _finite(x_c)
    n1, n2 = xt.size, xc.size
    if n1 < 2 or n2 < 2:
        return _nan_estimate(measure)
    df = n1 + n2 - 2
    sp = math.sqrt(((n1 - 1) * xt.var(ddof=1) + (n2 - 1) * xc.var(ddof=1)) / df)
    if sp == 0.0:
        return _nan_estimate(measure)  # no spread: a standardised difference is undefined
    d = (xt.mean() - xc.mean()) / sp
    se = math.sqrt((n1 + n2) / (n1 * n2) + d * d / (2.0 * (n1 + n2)))
    # Student's pooled-variance t: the same pooled SD as d, so t = d·sqrt(n1·n2/(n1+n2)).
    t = d * math.sqrt(n1 * n2 / (n1 + n2))
    p = float(2.0 * _st.t.sf(abs(t), df))
    if hedges:
        j = 1.0 - 3.0 / (4.0 * df - 1.0)
        d, se = j * d, j * se
    return Estimate(measure, float(d), float(d - z * se), float(d + z * se), p)


def cohens_d(x_t: Sequence[float] | np.ndarray, x_c: Sequence[float] | np.ndarray,
             level: float = 0.95) -> Estimate:
    """Cohen's d, (mean_t − mean_c) / pooled SD with the pooled SD
    sqrt(((n_t−1)s_t² + (n_c−1)s_c²)/(n_t+n_c−2)); CI d ± z·SE with the large-sample variance of
    Hedges & Olkin 1985 (Statistical Methods for Meta-Analysis, ch. 5; Borenstein et al. 2009,
    Introduction to Meta-Analysis, ch. 4): Var(d) = (n_t+n_c)/(n_t·n_c) + d²/(2(n_t+n_c)).
    p from Student's pooled-variance two-sample t test (not Welch's), which shares d's pooled SD
    (t = d·sqrt(n_t·n_c/(n_t+n_c))). Non-finite values are dropped; NaN with fewer than 2 values
    in an arm or zero pooled SD."""
    return _smd(x_t, x_c, level, hedges=False)


def hedges_g(x_t: Sequence[float] | np.ndarray, x_c: Sequence[float] | np.ndarray,
             level: float = 0.95) -> Estimate:
    """Hedges' g = J·d with the small-sample correction J = 1 − 3/(4(n_t+n_c−2) − 1) (Hedges &
    Olkin 1985; Borenstein et al. 2009 ch. 4); SE(g) = J·SE(d); p as in
    :func:`cohens_d` (Student's pooled t test; J does not change it)."""
    return _smd(x_t, x_c, level, hedges=True)


@dataclass(frozen=True, eq=False)
class KaplanMeier:
    """Kaplan–Meier estimate at every distinct observed time (event or censoring), ascending.

    ``survival[i]`` is S(t) just after ``time[i]``; ``std_err`` is Greenwood's standard error of
    S (NaN once S reaches 0, where Greenwood's formula is undefined). Before the first time S = 1.
    """

    time: np.ndarray
    n_at_risk: np.ndarray
    n_events: np.ndarray
    n_censored: np.ndarray
    survival: np.ndarray
    std_err: np.ndarray

    def survival_at(self, t: float | np.ndarray) -> np.ndarray | float:
        """S(t) of the right-continuous step function (1 before the first observed time)."""
        tt = np.asarray(t, dtype=float)
        i = np.searchsorted(self.time, tt, side="right") - 1
        s = np.where(i >= 0, np.concatenate([[1.0], self.survival])[i + 1], 1.0)
        return float(s) if s.ndim == 0 else s


def _time_event(time, event) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(time, dtype=float).ravel()
    e = np.asarray(event, dtype=float).ravel()
    if t.shape != e.shape:
        raise ValueError(f"time and event differ in length: {t.size} vs {e.size}")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError("times must be finite and ≥ 0")
    if not np.all(np.isin(e, (0.0, 1.0))):
        raise ValueError("event must be 0 (censored) or 1 (event)")
    return t, e.astype(bool)


def kaplan_meier(time: Sequence[float] | np.ndarray, event: Sequence[int] | np.ndarray) -> KaplanMeier:
    """Kaplan–Meier product-limit estimate (Kaplan & Meier 1958, JASA 53:457),
    S(t) = Π_{t_i ≤ t} (1 − d_i/n_i), with Greenwood's 1926 variance
    Var S(t) = S(t)² Σ_{t_i ≤ t} d_i / (n_i (n_i − d_i)). At a tied time events are taken to
    happen before censorings (the usual convention: a subject censored at t was at risk at t)."""
    t, e = _time_event(time, event)
    ut, inv = np.unique(t, return_inverse=True)
    d = np.bincount(inv, weights=e, minlength=ut.size)
    m = np.bincount(inv, minlength=ut.size).astype(float)
    n = t.size - np.concatenate([[0.0], np.cumsum(m)[:-1]])
    s = np.cumprod(1.0 - d / n) if ut.size else np.zeros(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(d > 0, d / (n * (n - d)), 0.0)
        se = s * np.sqrt(np.cumsum(terms))
    se = np.where(np.isfinite(se), se, np.nan)
    return KaplanMeier(ut, n, d, m - d, s, se)


@dataclass(frozen=True, eq=False)
class LogRank:
    """Log-rank test: chi² on ``df`` degrees of freedom, its p value, and per group (in order
    of first appearance) the observed and expected numbers of events."""

    chi2: float
    df: int
    p_value: float
    groups: tuple
    observed: np.ndarray
    expected: np.ndarray


def log_rank(time: Sequence[float] | np.ndarray, event: Sequence[int] | np.ndarray,
             group: Sequence | np.ndarray) -> LogRank:
    """Log-rank (Mantel–Cox) test of equal survival in k ≥ 2 groups (Mantel 1966; Peto & Peto
    1972; as R's ``survdiff``): at each distinct event time the expected events of group g are
    E_g = n_g·d/n with the hypergeometric covariance V_gh = d(n−d)/(n−1)·(n_g/n)(δ_gh − n_h/n);
    chi² = (O−E)ᵀ V⁻ (O−E) over the first k−1 groups, k−1 degrees of freedom. NaN when there
    are fewer than two groups or no events."""
    t, e = _time_event(time, event)
    g = np.asarray(group).ravel()
    if g.shape != t.shape:
        raise ValueError(f"group and time differ in length: {g.size} vs {t.size}")
    labels = tuple(pd.unique(pd.Series(g)))
    k = len(labels)
    codes = np.array([labels.index(x) for x in g], dtype=int) if k else np.zeros(0, int)
    event_times = np.unique(t[e])
    obs = np.bincount(codes[e], minlength=k).astype(float)
    if k < 2 or event_times.size == 0:
        return LogRank(math.nan, max(k - 1, 0), math.nan, labels, obs, np.full(k, math.nan))
    # at risk and events per (group, event time): searchsorted on each group's sorted times
    n_g = np.empty((k, event_times.size))
    d_g = np.empty((k, event_times.size))
    for j in range(k):
        tj = np.sort(t[codes == j])
        n_g[j] = tj.size - np.searchsorted(tj, event_times, side="left")
        te = np.sort(t[(codes == j) & e])
        d_g[j] = np.searchsorted(te, event_times, side="right") - np.searchsorted(te, event_times, side="left")
    n = n_g.sum(axis=0)
    d = d_g.sum(axis=0)
    frac = n_g / n
    expected = (frac * d).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(n > 1, d * (n - d) / (n - 1), 0.0)
    cov = np.einsum("t,gt,ht->gh", w, frac, frac) * -1.0
    cov[np.diag_indices(k)] = (w * frac * (1 - frac)).sum(axis=1)
    diff = (obs - expected)[: k - 1]
    v = cov[: k - 1, : k - 1]
    chi2 = float(diff @ np.linalg.pinv(v) @ diff)
    df = int(np.linalg.matrix_rank(v))
    p = float(_st.chi2.sf(chi2, df)) if df > 0 else math.nan
    return LogRank(chi2, df, p, labels, obs, expected)


# --------------------------------------------------------------------------- trial Dataset


def trial_arms(ds: xr.Dataset) -> list[str]:
    """Arm names in the trial's order: ``attrs['arms']`` (comma-separated, first = control),
    then any arm found in the ``arm`` coordinate but not listed (in order of appearance)."""
    listed = [a.strip() for a in str(ds.attrs.get("arms", "")).split(",") if a.strip()]
    seen = [str(a) for a in pd.unique(pd.Series(ds["arm"].values.astype(str)))]
    return listed + [a for a in seen if a not in listed]


def control_arm(ds: xr.Dataset, control: str | None = None) -> str:
    """The comparator: ``control`` if given, else ``attrs['control_arm']``, else the first arm."""
    arms = trial_arms(ds)
    name = control if control is not None else ds.attrs.get("control_arm") or (arms[0] if arms else None)
    if name is None or str(name) not in arms:
        raise ValueError(f"control arm {name!r} is not one of the trial's arms {arms}")
    return str(name)


def _randomised(ds: xr.Dataset) -> xr.Dataset:
    if "enrolled" in ds:
        return ds.isel(subject=np.asarray(ds["enrolled"].values == 1))
    return ds


def _arm_mask(ds: xr.Dataset, arm: str) -> np.ndarray:
    return ds["arm"].values.astype(str) == arm


def _missing_rule(ds: xr.Dataset) -> str:
    rule = str(ds.attrs.get("missing_urine_rule", "positive")).strip().lower()
    if rule not in _MISSING_RULES:
        raise ValueError(f"missing_urine_rule = {rule!r}: must be one of {_MISSING_RULES}")
    return rule


def _final_week(ds: xr.Dataset) -> int:
    weeks = np.asarray(ds["week"].values, dtype=int)
    w = int(ds.attrs.get("follow_up_weeks", weeks.max()))
    # the final scheduled test is the last follow-up week the data hold
    return w if w in weeks else int(weeks.max())


def _final_urine(ds: xr.Dataset, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """Per subject: (analysed?, positive?) at the final scheduled urine test."""
    u = ds["urine_positive"].sel(week=_final_week(ds)).values.astype(float)
    missing = ~np.isfinite(u)
    if rule == "positive":
        # missing = positive (Mattick et al. 2009): a missed sample is presumed opioid use
        return np.ones(u.shape, bool), (u == 1) | missing
    return ~missing, u == 1


def _negative_fraction(ds: xr.Dataset) -> np.ndarray:
    """Per subject the fraction of urines given that were negative (NaN if none was given)."""
    u = ds["urine_positive"].transpose("subject", "week").values.astype(float)
    given = np.isfinite(u).sum(axis=1)
    neg = (u == 0).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(given > 0, neg / given, np.nan)


def retention_time_event(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Per subject the time in days from randomisation to leaving treatment and whether it
    happened (1) or the subject was still in treatment at the end of follow-up (0, censored).

    Leaving treatment is ``retained == 0``; its time is ``dropout_day`` (``days_in_treatment``
    where that is missing). Retained subjects are censored at the end of follow-up:
    ``follow_up_weeks``·7 days, or the last recorded day + 1, or their days in treatment.
    A death counts as leaving treatment, as in retention analyses of opioid-agonist trials."""
    retained = np.asarray(ds["retained"].values, dtype=float) == 1
    dit = np.asarray(ds["days_in_treatment"].values, dtype=float) if "days_in_treatment" in ds \
        else np.zeros(retained.shape)
    drop = np.asarray(ds["dropout_day"].values, dtype=float) if "dropout_day" in ds \
        else np.full(retained.shape, np.nan)
    if "follow_up_weeks" in ds.attrs:
        end = 7.0 * float(ds.attrs["follow_up_weeks"])
    elif "day" in ds.dims:
        end = float(np.max(ds["day"].values)) + 1.0
    else:
        end = float(np.nanmax(dit)) if dit.size else 0.0
    time = np.where(retained, end, np.where(np.isfinite(drop), drop, dit))
    time = np.clip(np.nan_to_num(time, nan=0.0), 0.0, None)
    return time, (~retained).astype(int)


def _binary_rows(outcome: str, ok: np.ndarray, hit: np.ndarray, arms: np.ndarray, treated: list[str],
                 control: str, measures: tuple[str, ...]) -> list[dict]:
    fns = {"RR": risk_ratio, "OR": odds_ratio, "RD": risk_difference}
    c = (arms == control) & ok
    n_c, e_c = int(c.sum()), int((hit & c).sum())
    rows = []
    for arm in treated:
        m = (arms == arm) & ok
        n_t, e_t = int(m.sum()), int((hit & m).sum())
        for measure in measures:
            est = fns[measure](e_t, n_t, e_c, n_c)
            rows.append(dict(outcome=outcome, arm=arm, control=control, n_arm=n_t, n_control=n_c,
                             value_arm=e_t / n_t if n_t else math.nan,
                             value_control=e_c / n_c if n_c else math.nan,
                             measure=measure, estimate=est.value, lower=est.lower, upper=est.upper,
                             p_value=est.p_value, events_arm=e_t, events_control=e_c))
    return rows


def _continuous_rows(outcome: str, x: np.ndarray, arms: np.ndarray, treated: list[str],
                     control: str) -> list[dict]:
    ok = np.isfinite(x)
    xc = x[(arms == control) & ok]
    rows = []
    for arm in treated:
        xt = x[(arms == arm) & ok]
        est = cohens_d(xt, xc)
        rows.append(dict(outcome=outcome, arm=arm, control=control, n_arm=int(xt.size),
                         n_control=int(xc.size),
                         value_arm=float(xt.mean()) if xt.size else math.nan,
                         value_control=float(xc.mean()) if xc.size else math.nan,
                         measure="d", estimate=est.value, lower=est.lower, upper=est.upper,
                         p_value=est.p_value, events_arm=math.nan, events_control=math.nan))
    return rows


def trial_outcomes(ds: xr.Dataset, control: str | None = None) -> pd.DataFrame:
    """One row per (outcome, treatment arm vs control), intention to treat over all randomised
    subjects (``enrolled == 1``); columns :data:`OUTCOME_COLUMNS`. ``value_arm`` /
    ``value_control`` are the proportions with the event (binary outcomes) or the means
    (``d`` outcomes); ``events_*`` are the event counts behind them (NaN for ``d``).

    - ``retention``: retained in treatment at the end of follow-up, RR and OR — as Mattick et al.
      2009 (Cochrane CD002209, methadone vs no opioid replacement) report retention;
    - ``urine_positive_final``: opioid-positive urine at the final scheduled test, RR; a missed
      sample counts as positive (``missing_urine_rule = "positive"``, the default) or the subject
      is left out (``"exclude"``) — Mattick 2009's "morphine-positive urine" outcome;
    - ``urine_negative_proportion``: Cohen's d of the per-subject fraction of urines given that
      were negative (subjects who gave none are left out), as contingency-management
      meta-analyses report it (Prendergast et al. 2006, Addiction 101:1546);
    - ``relapse`` (RR), ``overdose`` (≥ 1 overdose event, RR), ``mortality`` (RR),
      ``days_abstinent`` (Cohen's d).

    Outcomes whose variables the Dataset lacks are left out."""
    ctrl = control_arm(ds, control)
    rd = _randomised(ds)
    arms = rd["arm"].values.astype(str)
    treated = [a for a in trial_arms(ds) if a != ctrl]
    everyone = np.ones(arms.shape, bool)

    def flag(name: str) -> np.ndarray:
        return np.asarray(rd[name].values, dtype=float) == 1

    rows: list[dict] = []
    if "retained" in rd:
        rows += _binary_rows("retention", everyone, flag("retained"), arms, treated, ctrl,
                             OUTCOME_MEASURES["retention"])
    if "urine_positive" in rd:
        ok, pos = _final_urine(rd, _missing_rule(ds))
        rows += _binary_rows("urine_positive_final", ok, pos, arms, treated, ctrl,
                             OUTCOME_MEASURES["urine_positive_final"])
        rows += _continuous_rows("urine_negative_proportion", _negative_fraction(rd), arms, treated, ctrl)
    if "relapse" in rd:
        rows += _binary_rows("relapse", everyone, flag("relapse"), arms, treated, ctrl, OUTCOME_MEASURES["relapse"])
    if "overdose_events" in rd:
        od = np.nan_to_num(np.asarray(rd["overdose_events"].values, dtype=float)) >= 1
        rows += _binary_rows("overdose", everyone, od, arms, treated, ctrl, OUTCOME_MEASURES["overdose"])
    if "alive" in rd:
        dead = np.asarray(rd["alive"].values, dtype=float) == 0
        rows += _binary_rows("mortality", everyone, dead, arms, treated, ctrl, OUTCOME_MEASURES["mortality"])
    if "days_abstinent" in rd:
        rows += _continuous_rows("days_abstinent", np.asarray(rd["days_abstinent"].values, dtype=float),
                                 arms, treated, ctrl)
    out = pd.DataFrame(rows, columns=OUTCOME_COLUMNS)
    # counts stay whole numbers in the CSV; empty (not NaN) for the d outcomes
    return out.astype({"events_arm": "Int64", "events_control": "Int64"})


#: columns of :func:`published_comparison`
PUBLISHED_COLUMNS = ["outcome", "arm", "measure", "simulated", "simulated_lower", "simulated_upper", "published",
                     "published_lower", "published_upper", "simulated_in_published_ci", "published_in_simulated_ci",
                     "source"]


def published_entries(ds: xr.Dataset) -> list[dict]:
    """The trial's [[trial.published]] figures, as the run recorded them (attr ``published``)."""
    return json.loads(ds.attrs.get("published", "[]") or "[]")


def published_comparison(ds: xr.Dataset, outcomes: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each published figure of the trial beside the simulated estimate of the same outcome,
    arm and measure (columns :data:`PUBLISHED_COLUMNS`): whether the simulated estimate lies in
    the published 95 % CI (empty where the paper gave none), and whether the published estimate
    lies in the simulated trial's CI (empty where the simulated one is not estimable). The first
    asks if the model lands where the trials did; the second if this simulated trial, at its
    size, could tell its result from theirs."""
    outcomes = trial_outcomes(ds) if outcomes is None else outcomes
    rows = []
    for p in published_entries(ds):
        sel = outcomes[(outcomes.outcome == p["outcome"]) & (outcomes.arm == p["arm"])
                       & (outcomes.measure == p["measure"])]
        sim = sel.iloc[0] if len(sel) else None
        est, lo, hi = ((float(sim.estimate), float(sim.lower), float(sim.upper)) if sim is not None
                       else (math.nan, math.nan, math.nan))
        p_lo, p_hi = p.get("lower", math.nan), p.get("upper", math.nan)
        in_pub = (p_lo <= est <= p_hi) if math.isfinite(est) and "lower" in p else None
        in_sim = (lo <= p["estimate"] <= hi) if math.isfinite(lo) and math.isfinite(hi) else None
        rows.append(dict(outcome=p["outcome"], arm=p["arm"], measure=p["measure"], simulated=est, simulated_lower=lo,
                         simulated_upper=hi, published=p["estimate"], published_lower=p_lo, published_upper=p_hi,
                         simulated_in_published_ci=in_pub, published_in_simulated_ci=in_sim, source=p["source"]))
    out = pd.DataFrame(rows, columns=PUBLISHED_COLUMNS)
    return out.astype({"simulated_in_published_ci": "boolean", "published_in_simulated_ci": "boolean"})


def consort_flow(ds: xr.Dataset) -> pd.DataFrame:
    """Participant flow per arm (rows in trial order, index ``arm``; columns
    :data:`CONSORT_COLUMNS`): randomised, started treatment (attended at least once), retained in
    treatment at the end, lost to follow-up, died, and analysed for the primary urine outcome —
    everyone randomised when a missed final urine counts as positive, those who gave the final
    sample when missing samples are excluded."""
    rd = _randomised(ds)
    arms = rd["arm"].values.astype(str)
    rule = _missing_rule(ds)

    def count(name: str, mask: np.ndarray, value: float = 1.0) -> int:
        if name not in rd:
            return 0
        return int((np.asarray(rd[name].values, dtype=float)[mask] == value).sum())

    analysed = _final_urine(rd, rule)[0] if "urine_positive" in rd else np.ones(arms.shape, bool)
    rows = []
    for arm in trial_arms(ds):
        m = arms == arm
        rows.append(dict(arm=arm, randomised=int(m.sum()), started_treatment=count("started_treatment", m),
                         retained=count("retained", m), lost_to_follow_up=count("lost_to_follow_up", m),
                         died=count("alive", m, 0.0), analysed=int((analysed & m).sum())))
    return pd.DataFrame(rows, columns=["arm", *CONSORT_COLUMNS]).set_index("arm")


def _boxes(texts: list[list[str]], width: int) -> list[str]:
    """Boxes side by side, one per arm, each ``width`` characters inside."""
    height = max(len(t) for t in texts)
    edge = "  ".join("+" + "-" * (width + 2) + "+" for _ in texts)
    lines = [edge]
    for i in range(height):
        lines.append("  ".join("| " + (t[i] if i < len(t) else "").ljust(width) + " |" for t in texts))
    lines.append(edge)
    return lines


#: the per-subject variable of each co-occurring disorder a trial can stratify on (1: has it)
STRATUM_VARIABLES = {"depression": "depressed", "ptsd": "ptsd"}
SUBGROUP_COLUMNS = ["subgroup"] + OUTCOME_COLUMNS


def stratified_by(ds: xr.Dataset) -> list[str]:
    """The co-occurring disorders the trial stratified its randomisation on (attr ``stratified_by``)."""
    return [t for t in str(ds.attrs.get("stratified_by", "")).split(",") if t]


def subgroup_outcomes(ds: xr.Dataset, by: list[str] | None = None, control: str | None = None) -> pd.DataFrame:
    """`trial_outcomes` within each subgroup of the co-occurring disorders `by` (default: those the
    trial stratified on), one block of rows per subgroup that has subjects, labelled e.g.
    ``"depression: yes, ptsd: no"``; columns :data:`SUBGROUP_COLUMNS`. A subgroup analysis, as
    stratified trials report them: every estimate is the trial's own analysis on fewer subjects,
    with wider intervals, and p values are not adjusted for the number of subgroups."""
    by = stratified_by(ds) if by is None else list(by)
    unknown = [t for t in by if t not in STRATUM_VARIABLES or STRATUM_VARIABLES[t] not in ds]
    if unknown:
        raise ValueError(f"subgroups by {unknown[0]!r}: the Dataset has no such per-subject trait; "
                         f"traits: {', '.join(STRATUM_VARIABLES)}")
    if not by:
        return pd.DataFrame(columns=SUBGROUP_COLUMNS)
    has = np.stack([np.asarray(ds[STRATUM_VARIABLES[t]].values) > 0.5 for t in by], axis=1)
    tables = []
    for combo in sorted({tuple(row) for row in has.tolist()}, key=lambda c: tuple(int(v) for v in c)):
        members = (has == np.array(combo)).all(axis=1)
        table = trial_outcomes(ds.isel(subject=members), control)
        table.insert(0, "subgroup", ", ".join(f"{t}: {'yes' if v else 'no'}" for t, v in zip(by, combo)))
        tables.append(table)
    return pd.concat(tables, ignore_index=True)[SUBGROUP_COLUMNS]


def randomisation_method(ds: xr.Dataset) -> str:
    """How the trial randomised (a dataset written before blocks existed was simple)."""
    return str(ds.attrs.get("randomisation", "simple randomisation"))


def detox_days(ds: xr.Dataset) -> int:
    """Days of inpatient detoxification before randomisation (attr ``detox_days``; none in a
    dataset written before detox existed)."""
    return int(ds.attrs.get("detox_days", 0))


def consort_text(ds: xr.Dataset) -> str:
    """The CONSORT-like flow as plain text: enrolment, then per arm (side by side) allocation,
    follow-up and analysis boxes."""
    flow = consort_flow(ds)
    ctrl = control_arm(ds)
    rule = _missing_rule(ds)
    weeks = ds.attrs.get("follow_up_weeks", ds.sizes.get("week", ""))
    alloc, follow, analysis = [], [], []
    for arm, r in flow.iterrows():
        tag = " (control)" if arm == ctrl else ""
        alloc.append([f"Allocated to {arm}{tag}: n = {r.randomised}",
                      f"  started treatment: {r.started_treatment}",
                      f"  never attended: {r.randomised - r.started_treatment}"])
        follow.append([f"Retained in treatment at end: {r.retained}",
                       f"  left treatment: {r.randomised - r.retained}",
                       f"Lost to follow-up: {r.lost_to_follow_up}",
                       f"Died: {r.died}"])
        note = "missed urine = positive" if rule == "positive" else "missed final urine excluded"
        analysis.append([f"Analysed: n = {r.analysed}",
                         f"  excluded from analysis: {r.randomised - r.analysed}",
                         f"  ({note})"])
    total = int(flow["randomised"].sum())
    enrolment = [f"Randomised: n = {total}", f"  {randomisation_method(ds)}"]
    if detox_days(ds):
        enrolment.append(f"  after {detox_days(ds)} days of inpatient detoxification")
    width = max(len(s) for box in [enrolment] + alloc + follow + analysis for s in box)
    lines = [f"CONSORT flow: {ds.attrs.get('trial_name', 'trial')}", "",
             "ENROLMENT", *_boxes([enrolment], width), "",
             "ALLOCATION", *_boxes(alloc, width), "",
             f"FOLLOW-UP ({weeks} weeks)", *_boxes(follow, width), "",
             "ANALYSIS", *_boxes(analysis, width)]
    return "\n".join(lines) + "\n"
