"""Tables and figures of a simulated human life course (:func:`opioidsim.behavior.course.simulate_life`):
one row per life period (community, forced abstinence, treatment) and one for the whole course;
use, dose, withdrawal, overdoses, deaths and treatment over the days. Research and teaching
only: simulated people, never a dosing guide.

Day conventions (the same as ``course_dataset``): ``alive`` is the state at the end of a day, so a
subject is *alive on day d* (at risk that day) when alive at the end of day d − 1 (every subject on
the first day). The day of death is therefore a day alive, and a death belongs to the period whose
day it happened on.
"""
from __future__ import annotations

import base64
import html
import io
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..io.checkpoint import atomic_write_text
from ..report.html import RESEARCH_NOTICE

__all__ = ["is_life_result", "life_summary_table", "life_figure", "write_life_report", "DAYS_PER_YEAR"]

DAYS_PER_YEAR = 365.25
PERIOD_COLORS = {"community": "none", "forced_abstinence": "0.82", "treatment": "#cfe8cf"}
_SMOOTH_DAYS = 7

TABLE_COLUMNS = ("period", "kind", "start_day", "days", "alive_at_start", "person_years",
                 "use_day_share_median", "use_day_share_q25", "use_day_share_q75", "uses_per_day_median",
                 "overdoses", "overdoses_per_100py", "deaths", "deaths_per_1000py", "in_treatment_share")


def is_life_result(ds: xr.Dataset) -> bool:
    """True for a life-course result: a ``day`` dimension, ``use_event`` and the ``periods`` attr."""
    return "day" in ds.dims and "use_event" in ds and "periods" in ds.attrs


def _kinds(ds: xr.Dataset) -> list[str]:
    return [k.strip() for k in str(ds.attrs.get("periods", "")).split(",") if k.strip()]


def _day_matrix(ds: xr.Dataset, name: str) -> np.ndarray | None:
    """A (subject, day) variable as a float array in that order, or None where it is missing."""
    if name not in ds:
        return None
    return ds[name].transpose("subject", "day").values.astype(float)


def _living(ds: xr.Dataset) -> np.ndarray:
    """1 where the subject is alive on (at the start of) the day: alive at the end of the day
    before, every subject on the first day. All ones where the result has no ``alive``."""
    alive = _day_matrix(ds, "alive")
    if alive is None:
        return np.ones((ds.sizes["subject"], ds.sizes["day"]))
    alive = np.nan_to_num(alive, nan=0.0)
    return np.concatenate([np.ones((alive.shape[0], 1)), alive[:, :-1]], axis=1)


def _deaths_by_day(ds: xr.Dataset, living: np.ndarray) -> np.ndarray | None:
    """(subject, day) 1 where the subject died that day: alive at its start, not at its end."""
    alive = _day_matrix(ds, "alive")
    if alive is None:
        return None
    return ((living > 0.5) & (np.nan_to_num(alive, nan=0.0) < 0.5)).astype(float)


def _period_index(ds: xr.Dataset) -> np.ndarray:
    """Period index of each day (positional order of ``day``)."""
    if "period" in ds.coords:
        return np.asarray(ds["period"].values, dtype=int)
    if len(_kinds(ds)) <= 1:
        return np.zeros(ds.sizes["day"], dtype=int)
    raise ValueError("a life-course result with several periods needs the 'period' coordinate")


def _cohort_row(ds: xr.Dataset, sel: np.ndarray, living: np.ndarray, deaths: np.ndarray | None) -> dict:
    """The cohort figures over the days where ``sel`` is True."""
    day = np.asarray(ds["day"].values)
    n_days = int(sel.sum())
    row: dict = {"start_day": float(day[sel][0]) if n_days else np.nan, "days": n_days}
    live = living[:, sel]
    alive_days = live.sum(axis=1)
    py = float(alive_days.sum()) / DAYS_PER_YEAR
    row["alive_at_start"] = int(live[:, 0].sum()) if n_days else np.nan
    row["person_years"] = py
    at_risk = alive_days > 0

    def per_subject_share(name: str) -> np.ndarray:
        x = _day_matrix(ds, name)
        if x is None or not at_risk.any():
            return np.array([])
        x = np.nan_to_num(x[:, sel], nan=0.0)
        return (x * live).sum(axis=1)[at_risk] / alive_days[at_risk]

    share = per_subject_share("use_event")
    row["use_day_share_median"] = float(np.median(share)) if share.size else np.nan
    row["use_day_share_q25"] = float(np.percentile(share, 25)) if share.size else np.nan
    row["use_day_share_q75"] = float(np.percentile(share, 75)) if share.size else np.nan
    uses = per_subject_share("uses")
    row["uses_per_day_median"] = float(np.median(uses)) if uses.size else np.nan

    od = _day_matrix(ds, "overdose")
    if od is not None and n_days:
        total = float((np.nan_to_num(od[:, sel], nan=0.0) * live).sum())
        row["overdoses"] = total
        row["overdoses_per_100py"] = 100.0 * total / py if py > 0 else np.nan
    else:
        row["overdoses"] = row["overdoses_per_100py"] = np.nan
    if deaths is not None and n_days:
        d = float(deaths[:, sel].sum())
        row["deaths"] = d
        row["deaths_per_1000py"] = 1000.0 * d / py if py > 0 else np.nan
    else:
        row["deaths"] = row["deaths_per_1000py"] = np.nan
    tx = _day_matrix(ds, "in_treatment")
    if tx is not None and live.sum() > 0:
        row["in_treatment_share"] = float((np.nan_to_num(tx[:, sel], nan=0.0) * live).sum() / live.sum())
    else:
        row["in_treatment_share"] = np.nan
    return row


def life_summary_table(ds: xr.Dataset) -> pd.DataFrame:
    """One row per life period, then a last row ``period == "all"`` over the whole course.

    Columns:

    - ``period``: 1-based index of the period (``"all"`` on the last row); ``kind``: community,
      forced_abstinence or treatment (``"whole course"`` on the last row).
    - ``start_day``: the ``day`` coordinate of the period's first day; ``days``: its length.
    - ``alive_at_start``: subjects alive on the period's first day.
    - ``person_years``: subject-days alive in the period (a subject is alive on a day when alive at
      the end of the day before; the day of death counts) / 365.25.
    - ``use_day_share_median``, ``_q25``, ``_q75``: for each subject alive on at least one day of
      the period, the share of its days alive with ``use_event``; median and interquartile range
      over those subjects.
    - ``uses_per_day_median``: per subject, ``uses`` summed over its days alive / its days alive;
      median over subjects.
    - ``overdoses``: ``overdose`` summed over every subject's days alive in the period;
      ``overdoses_per_100py``: that × 100 / ``person_years``.
    - ``deaths``: subjects whose ``alive`` goes from 1 (end of the previous day, or the start of the
      course) to 0 (end of the day) on a day of the period; ``deaths_per_1000py``: that × 1000 /
      ``person_years``.
    - ``in_treatment_share``: mean of ``in_treatment`` over the subject-days alive in the period.

    NaN where a figure does not apply: its variable is missing, or no subject is alive (a rate
    without person-time). A period with no days has ``days == 0`` and NaN elsewhere.
    """
    kinds = _kinds(ds)
    pidx = _period_index(ds)
    n_periods = max(len(kinds), int(pidx.max()) + 1 if pidx.size else 0)
    living = _living(ds)
    deaths = _deaths_by_day(ds, living)
    rows = []
    for p in range(n_periods):
        sel = pidx == p
        row = {"period": p + 1, "kind": kinds[p] if p < len(kinds) else "unknown"}
        if sel.any():
            row.update(_cohort_row(ds, sel, living, deaths))
        else:
            row["days"] = 0
        rows.append(row)
    every = np.ones(ds.sizes["day"], dtype=bool)
    rows.append({"period": "all", "kind": "whole course", **_cohort_row(ds, every, living, deaths)})
    return pd.DataFrame(rows).reindex(columns=list(TABLE_COLUMNS))


def _daily_share(x: np.ndarray, living: np.ndarray) -> np.ndarray:
    """Per day: mean of x over the subjects alive that day (NaN when nobody is)."""
    n = living.sum(axis=0)
    s = (np.nan_to_num(x, nan=0.0) * living).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.where(n > 0, n, 1), np.nan)


def _daily_bands(x: np.ndarray, living: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per day: 25th, 50th and 75th percentiles of x over the subjects alive that day."""
    masked = np.where(living > 0.5, x, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        q = np.nanpercentile(masked, [25, 50, 75], axis=0)
    return q[0], q[1], q[2]


def _smooth_within_periods(y: np.ndarray, pidx: np.ndarray, window: int = _SMOOTH_DAYS) -> np.ndarray:
    """Centred rolling mean over ``window`` days, not across period boundaries (so the start of a
    forced abstinence is not smeared into the days before it)."""
    out = np.full_like(y, np.nan, dtype=float)
    for p in np.unique(pidx):
        sel = pidx == p
        out[sel] = pd.Series(y[sel]).rolling(window, center=True, min_periods=1).mean().to_numpy()
    return out


def _segments(pidx: np.ndarray) -> list[tuple[int, int, int]]:
    """(period, first position, last position + 1) of each run of days in one period."""
    out = []
    start = 0
    for i in range(1, len(pidx) + 1):
        if i == len(pidx) or pidx[i] != pidx[start]:
            out.append((int(pidx[start]), start, i))
            start = i
    return out


def life_figure(ds: xr.Dataset):
    """Panels over the shared day axis (years when the course is longer than two years), life
    periods shaded (grey: forced abstinence; green: treatment) and labelled by kind:

    (a) share of living subjects who used that day (cohort mean, centred 7-day mean within periods);
    (b) median and IQR of ``dose_multiplier`` and of ``tolerance``, if present;
    (c) median and IQR of ``cows`` and of ``craving``;
    (d) cumulative overdoses and deaths per 100 subjects;
    (e) share of living subjects in treatment.

    A panel whose variables are all missing is left out. Statistics of a day are over the
    subjects alive on it (see the module docstring)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    day = np.asarray(ds["day"].values, dtype=float)
    span = day[-1] - day[0] + 1 if day.size else 0
    in_years = span > 2 * DAYS_PER_YEAR
    x = day / DAYS_PER_YEAR if in_years else day
    unit = 1.0 / DAYS_PER_YEAR if in_years else 1.0
    pidx = _period_index(ds)
    kinds = _kinds(ds)
    living = _living(ds)
    n_sub = ds.sizes["subject"]

    def has(*names: str) -> bool:
        return any(n in ds for n in names)

    panels = ["use"]
    if has("dose_multiplier", "tolerance"):
        panels.append("dose")
    if has("cows", "craving"):
        panels.append("withdrawal")
    if has("overdose", "alive"):
        panels.append("harm")
    if has("in_treatment"):
        panels.append("treatment")
    fig, axes = plt.subplots(len(panels), 1, figsize=(9.0, 2.2 * len(panels) + 0.4), sharex=True,
                             squeeze=False)
    axes = axes[:, 0]

    def band(ax, name: str, color: str, label: str) -> None:
        lo, med, hi = _daily_bands(_day_matrix(ds, name), living)
        ax.plot(x, med, color=color, lw=1.2, label=f"{label} (median)")
        ax.fill_between(x, lo, hi, color=color, alpha=0.2, lw=0)

    def pair(ax, first: tuple[str, str, str], second: tuple[str, str, str]) -> None:
        """Two variables on their own scales: the first on ax, the second on a twin axis (or on ax
        alone when the first is missing)."""
        present = [v for v in (first, second) if v[0] in ds]
        lines = []
        for i, (name, color, label) in enumerate(present):
            target = ax if i == 0 else ax.twinx()
            band(target, name, color, label)
            lines += target.get_lines()
            target.set_ylabel(label, color=color, fontsize=8)
            target.tick_params(axis="y", labelsize=7)
        if lines:
            ax.legend(lines, [ln.get_label() for ln in lines], fontsize=7, loc="upper right")

    letters = "abcde"
    for i, (ax, panel) in enumerate(zip(axes, panels)):
        if panel == "use":
            raw = _daily_share(_day_matrix(ds, "use_event"), living)
            ax.plot(x, raw, color="tab:red", lw=0.5, alpha=0.35, label="daily")
            ax.plot(x, _smooth_within_periods(raw, pidx), color="tab:red", lw=1.4, label="7-day mean")
            ax.set_ylim(-0.03, 1.03)
            ax.set_ylabel("share using", fontsize=8)
            ax.legend(fontsize=7, loc="upper right")
            title = "living subjects who used that day"
        elif panel == "dose":
            pair(ax, ("dose_multiplier", "tab:purple", "dose (× bag)"),
                 ("tolerance", "tab:brown", str(ds["tolerance"].attrs.get("long_name", "tolerance"))
                  if "tolerance" in ds else "tolerance"))
            title = "habitual dose and tolerance (median, IQR)"
        elif panel == "withdrawal":
            pair(ax, ("cows", "tab:blue", "COWS (0-48)"), ("craving", "tab:orange", "craving (0-10)"))
            title = "withdrawal and craving (median, IQR)"
        elif panel == "harm":
            if "overdose" in ds:
                od = np.nan_to_num(_day_matrix(ds, "overdose"), nan=0.0) * living
                ax.step(x, 100.0 * np.cumsum(od.sum(axis=0)) / n_sub, where="post", color="tab:orange",
                        label="overdoses")
            deaths = _deaths_by_day(ds, living)
            if deaths is not None:
                ax.step(x, 100.0 * np.cumsum(deaths.sum(axis=0)) / n_sub, where="post", color="k",
                        label="deaths")
            ax.set_ylabel("per 100 subjects", fontsize=8)
            # below the panel's title; cumulative curves rise to the right, so the left stays clear
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, 0.86))
            title = "cumulative overdoses and deaths"
        else:
            ax.plot(x, _daily_share(_day_matrix(ds, "in_treatment"), living), color="tab:green", lw=1.2)
            ax.set_ylim(-0.03, 1.03)
            ax.set_ylabel("share in treatment", fontsize=8)
            title = "living subjects in a treatment programme"
        ax.text(0.005, 0.97, f"({letters[i]}) {title}", transform=ax.transAxes, fontsize=8, va="top",
                ha="left", bbox={"facecolor": "white", "alpha": 0.7, "lw": 0})
        ax.tick_params(axis="both", labelsize=7)

    # Period shading and labels: a period covers its days from the start of its first day to the
    # end of its last (half a day either side of the day marks). A period too narrow to carry its
    # name above the plot is told by its shade, named in panel (a)'s legend.
    width = (x[-1] - x[0] + unit) if x.size else 1.0
    shaded = []
    for p, a, b in _segments(pidx):
        kind = kinds[p] if p < len(kinds) else "unknown"
        lo, hi = x[a] - 0.5 * unit, x[b - 1] + 0.5 * unit
        color = PERIOD_COLORS.get(kind, "none")
        for ax in axes:
            if color != "none":
                ax.axvspan(lo, hi, color=color, alpha=0.6, lw=0, zorder=0)
            if a > 0:
                ax.axvline(lo, color="0.4", lw=0.6, ls="--", zorder=1)
        if color != "none" and kind not in shaded:
            shaded.append(kind)
        if (hi - lo) >= 0.12 * width:
            axes[0].text((lo + hi) / 2, 1.02, kind.replace("_", " "), transform=axes[0].get_xaxis_transform(),
                         ha="center", va="bottom", fontsize=7)
    if shaded:
        from matplotlib.patches import Patch

        handles, names = axes[0].get_legend_handles_labels()
        handles += [Patch(color=PERIOD_COLORS[k], alpha=0.6) for k in shaded]
        names += [k.replace("_", " ") for k in shaded]
        axes[0].legend(handles, names, fontsize=7, loc="upper right")
    if x.size:
        axes[-1].set_xlim(x[0] - 0.5 * unit, x[-1] + 0.5 * unit)
    axes[-1].set_xlabel("years" if in_years else "day")
    fig.suptitle(str(ds.attrs.get("scenario_name", "life course")), fontsize=10)
    fig.tight_layout()
    return fig


def _fmt(v) -> str:
    if isinstance(v, str):
        return v
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return ""
    if float(v) == int(v) and abs(v) < 1e12:
        return str(int(v))
    return f"{v:.3g}" if abs(v) < 1 else f"{v:.1f}"


_DEFINITIONS = (
    "A subject is alive on a day when alive at the end of the day before (every subject on the "
    "first day); the day of death counts. Use-day share: per subject, days with use / days alive "
    "in the period, median [IQR] over subjects alive in it. Uses per day: per subject, uses / days "
    "alive, median. Overdoses: total over the cohort; rate per 100 person-years alive. Deaths: "
    "subjects alive at a day's start and dead at its end; rate per 1,000 person-years. In "
    "treatment: mean over subject-days alive. Blank: does not apply (no variable or no person-time).")


def write_life_report(ds: xr.Dataset, path: str | os.PathLike, scenario_toml: str | None = None) -> None:
    """A standalone HTML report of a life course at ``path`` (a file): title, research notice,
    the period table, the figure (embedded PNG) and the scenario TOML (``scenario_toml``, or the
    result's ``scenario_toml`` attr). Written to a temporary file in the same folder, then renamed."""
    import matplotlib.pyplot as plt

    path = Path(path)
    fig = life_figure(ds)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    img = base64.b64encode(buf.getvalue()).decode()
    table = life_summary_table(ds)
    name = html.escape(str(ds.attrs.get("scenario_name", "life course")))
    n_sub, n_days = ds.sizes["subject"], ds.sizes["day"]
    cohort = f"{n_sub} simulated people, {n_days} days, periods: " + html.escape(
        " → ".join(k.replace("_", " ") for k in _kinds(ds)))
    traits = [f"{int(np.nansum(ds[c].values))} {c}" for c in ("depressed", "ptsd") if c in ds.coords]
    if traits:
        cohort += " (" + ", ".join(traits) + ")"
    outcomes = [f"{label}: {int(np.nansum(ds[v].values))} of {n_sub}"
                for v, label in (("alive_at_end", "alive at the end"), ("relapse", "relapsed"),
                                 ("retained", "retained in treatment at the end")) if v in ds]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{name}</title></head><body>",
             f"<h1>{name}</h1><p>{html.escape(str(ds.attrs.get('description', '')))}</p>",
             f"<p><strong>{html.escape(RESEARCH_NOTICE)}</strong></p>",
             f"<p>{cohort}.</p>"]
    if outcomes:
        parts.append(f"<p>{html.escape('; '.join(outcomes))}.</p>")
    parts += ["<h2>By period</h2>",
              table.to_html(index=False, formatters={c: _fmt for c in table.columns}, na_rep=""),
              f"<p>{html.escape(_DEFINITIONS)}</p>",
              f"<img alt='use, dose, withdrawal, overdoses, deaths and treatment over the life course' "
              f"src='data:image/png;base64,{img}'>"]
    scenario_toml = scenario_toml if scenario_toml is not None else ds.attrs.get("scenario_toml")
    if scenario_toml:
        parts.append(f"<h2>Scenario</h2><pre>{html.escape(str(scenario_toml))}</pre>")
    parts.append(f"<footer>{html.escape(RESEARCH_NOTICE)}</footer></body></html>")
    atomic_write_text(path, "\n".join(parts))
