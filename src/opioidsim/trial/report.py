"""Figure, tables and standalone HTML report of a virtual clinical trial.

``write_trial_report(ds, out_dir)`` writes ``report.html`` (figure embedded as a base64 PNG, no
JS), ``outcomes.csv`` (:func:`opioidsim.trial.stats.trial_outcomes`) and ``consort.csv``
(:func:`opioidsim.trial.stats.consort_flow`), and ``published.csv``
(:func:`opioidsim.trial.stats.published_comparison`) where the scenario gives published figures.
Each file is written to a temporary name in the same folder and then renamed, so an interrupted
run leaves the old file or the complete new one.

Research and teaching only: simulated subjects, never a dosing guide.
"""
from __future__ import annotations

import html
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from opioidsim.report.figures import figure_to_data_uri
from opioidsim.report.formatting import fixed as _fmt
from opioidsim.report.formatting import p_value as _fmt_p
from opioidsim.io.checkpoint import atomic_write_text
from opioidsim.report.html import RESEARCH_NOTICE
from opioidsim.trial.stats import (
    OUTCOMES,
    _randomised,
    consort_flow,
    consort_text,
    control_arm,
    detox_days,
    kaplan_meier,
    log_rank,
    published_comparison,
    randomisation_method,
    retention_time_event,
    stratified_by,
    subgroup_outcomes,
    trial_arms,
    trial_outcomes,
)

__all__ = ["trial_figure", "render_trial_report", "write_trial_report", "weekly_urine_positive"]

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222;
       max-width: 1100px; margin: 1.5em auto; padding: 0 1em; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.6em; }
.notice { background: #fff4e5; border-left: 5px solid #e69500; padding: 0.6em 0.9em;
          margin: 1em 0; font-weight: 600; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.note { font-size: 0.85em; color: #555; }
figure { margin: 0.5em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
pre { background: #f6f8fa; border: 1px solid #ddd; padding: 0.8em; overflow-x: auto;
      font-size: 0.85em; }
footer { margin-top: 2em; font-size: 0.8em; color: #777; }
"""

_MEASURE_WORDS = {"RR": "risk ratio", "OR": "odds ratio", "RD": "risk difference",
                  "d": "Cohen's d"}


def _e(text: object) -> str:
    return html.escape(str(text))


def _arm_colors(arms: list[str]) -> dict[str, str]:
    palette = ["tab:gray", "tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple",
               "tab:brown", "tab:pink", "tab:olive", "tab:cyan"]
    return {a: palette[i % len(palette)] for i, a in enumerate(arms)}


def _retention_panel(ax, ds: xr.Dataset, arms: list[str], ctrl: str, colors: dict[str, str]) -> None:
    time, event = retention_time_event(ds)
    names = ds["arm"].values.astype(str)
    for arm in arms:
        m = names == arm
        if not m.any():
            continue
        km = kaplan_meier(time[m], event[m])
        x = np.concatenate([[0.0], km.time])
        y = np.concatenate([[1.0], km.survival])
        label = f"{arm} (n = {int(m.sum())})"
        if arm != ctrl:
            sel = m | (names == ctrl)
            lr = log_rank(time[sel], event[sel], names[sel])
            if math.isfinite(lr.p_value):
                label += f", log-rank p = {lr.p_value:.2g}"
        ax.step(x, 100.0 * y, where="post", color=colors[arm], lw=1.6, label=label)
    ax.set_ylim(0, 102)
    ax.set_xlabel("days from randomisation")
    ax.set_ylabel("% still in treatment")
    ax.set_title("Retention in treatment (Kaplan–Meier)")
    ax.legend(fontsize=7, loc="lower left")


def weekly_urine_positive(ds: xr.Dataset, arm: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(follow-up weeks, fraction of the urines given that were opioid-positive, fraction positive
    when a missed sample counts as positive) for one arm, week by week (NaN: no urine given)."""
    u = ds["urine_positive"].transpose("subject", "week").values.astype(float)
    v = u[ds["arm"].values.astype(str) == arm]
    given = np.isfinite(v).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(given > 0, (v == 1).sum(axis=0) / given, np.nan)
        missed_positive = ((v == 1) | ~np.isfinite(v)).mean(axis=0) if len(v) else np.full(u.shape[1], np.nan)
    return np.asarray(ds["week"].values), frac, missed_positive


def _urine_panel(ax, ds: xr.Dataset, arms: list[str], colors: dict[str, str]) -> None:
    names = ds["arm"].values.astype(str)
    missing_positive = str(ds.attrs.get("missing_urine_rule", "positive")).lower() == "positive"
    for arm in arms:
        if not (names == arm).any():
            continue
        weeks, frac, missed_positive = weekly_urine_positive(ds, arm)
        ax.plot(weeks, 100.0 * frac, "o-", ms=3, color=colors[arm], label=f"{arm}, of urines given")
        if missing_positive:
            # the primary analysis counts a missed sample as positive: show that reading too
            ax.plot(weeks, 100.0 * missed_positive, "--", lw=1,
                    color=colors[arm], label=f"{arm}, missed = positive")
    ax.set_ylim(-2, 102)
    ax.set_xlabel("follow-up week")
    ax.set_ylabel("% urines opioid-positive")
    ax.set_title("Urine toxicology by week")
    ax.legend(fontsize=7)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _harm_panel(ax, ds: xr.Dataset, arms: list[str], colors: dict[str, str]) -> None:
    names = ds["arm"].values.astype(str)
    end = (7.0 * float(ds.attrs["follow_up_weeks"]) if "follow_up_weeks" in ds.attrs
           else float(np.max(ds["day"].values)) + 1.0 if "day" in ds.dims else 1.0)
    death = np.asarray(ds["death_day"].values, dtype=float) if "death_day" in ds \
        else np.full(names.shape, np.nan)
    alive = np.asarray(ds["alive"].values, dtype=float) if "alive" in ds else np.ones(names.shape)
    od = np.nan_to_num(np.asarray(ds["overdose_events"].values, dtype=float)) if "overdose_events" in ds \
        else np.zeros(names.shape)
    for arm in arms:
        m = names == arm
        n = int(m.sum())
        if not n:
            continue
        # a death without a recorded day is put at the end of follow-up: counted, not placed
        days = np.where(np.isfinite(death[m]), death[m], end)[alive[m] == 0]
        x = np.concatenate([[0.0], np.sort(days), [end]])
        y = np.concatenate([[0.0], np.arange(1, days.size + 1), [days.size]]) / n * 100.0
        label = (f"{arm}: {_n(days.size, 'death')}; {_n(int(od[m].sum()), 'overdose')} in "
                 f"{_n(int((od[m] >= 1).sum()), 'subject')}")
        ax.step(x, y, where="post", color=colors[arm], lw=1.6, label=label)
    ax.set_xlabel("days from randomisation")
    ax.set_ylabel("cumulative deaths (% of arm)")
    ax.set_title("Deaths (overdoses in the legend)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7, loc="upper left")


def _forest(ax, rows: pd.DataFrame, log_scale: bool, title: str) -> None:
    if rows.empty:
        ax.set_axis_off()
        return
    y = np.arange(len(rows))[::-1]
    est = rows["estimate"].to_numpy(float)
    lo = rows["lower"].to_numpy(float)
    hi = rows["upper"].to_numpy(float)
    ok = np.isfinite(est) & np.isfinite(lo) & np.isfinite(hi)
    ax.errorbar(est[ok], y[ok], xerr=[est[ok] - lo[ok], hi[ok] - est[ok]], fmt="s", ms=4,
                color="k", ecolor="k", capsize=2, lw=1)
    ax.axvline(1.0 if log_scale else 0.0, color="tab:red", lw=0.8, ls="--")
    if log_scale:
        ax.set_xscale("log")
        # plain numbers (0.5, 1, 2), not powers of ten: readers of ratios expect them
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    labels = [f"{r.outcome} {r.measure}: {r.arm}" + ("" if ok[i] else " (n.e.)")
              for i, r in enumerate(rows.itertuples())]
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="x", labelsize=7)


def trial_figure(ds: xr.Dataset, outcomes: pd.DataFrame | None = None) -> Figure:
    """Four panels: retention (Kaplan–Meier per arm, log-rank p against control), % urines
    positive per week per arm, cumulative deaths per arm (overdose counts in the legend), and a
    forest plot of :func:`trial_outcomes` (ratios on a log axis, Cohen's d on its own axis).
    Built on :class:`matplotlib.figure.Figure` (Agg, no pyplot state)."""
    rd = _randomised(ds)
    arms = trial_arms(ds)
    ctrl = control_arm(ds)
    colors = _arm_colors(arms)
    if outcomes is None:
        outcomes = trial_outcomes(ds)
    fig = Figure(figsize=(13, 9), layout="constrained")
    gs = fig.add_gridspec(2, 2)
    if "retained" in rd:
        _retention_panel(fig.add_subplot(gs[0, 0]), rd, arms, ctrl, colors)
    if "urine_positive" in rd:
        _urine_panel(fig.add_subplot(gs[0, 1]), rd, arms, colors)
    _harm_panel(fig.add_subplot(gs[1, 0]), rd, arms, colors)
    ratio = outcomes[outcomes["measure"].isin(["RR", "OR"])]
    smd = outcomes[outcomes["measure"] == "d"]
    sub = gs[1, 1].subgridspec(2, 1, height_ratios=[max(len(ratio), 1), max(len(smd), 1)])
    _forest(fig.add_subplot(sub[0]), ratio, True, f"Effect vs {ctrl}: ratio (95 % CI)")
    _forest(fig.add_subplot(sub[1]), smd, False, f"Effect vs {ctrl}: Cohen's d (95 % CI)")
    fig.suptitle(str(ds.attrs.get("trial_name", "Virtual trial")))
    return fig


def _value(v: float, measure: str) -> str:
    if not math.isfinite(float(v)):
        return "–"
    return f"{float(v):.2f}" if measure == "d" else f"{100.0 * float(v):.1f} %"


def _outcomes_table(out: pd.DataFrame) -> str:
    head = ("<tr><th>outcome</th><th>arm vs control</th><th>n (arm / control)</th>"
            "<th>arm</th><th>control</th><th>measure</th><th>estimate (95 % CI)</th><th>p</th></tr>")
    body = []
    for r in out.itertuples():
        ci = ("not estimable" if not math.isfinite(float(r.estimate))
              else f"{_fmt(r.estimate)} ({_fmt(r.lower)} to {_fmt(r.upper)})")
        body.append(
            f"<tr><td>{_e(OUTCOMES.get(r.outcome, r.outcome))}</td><td>{_e(r.arm)} vs {_e(r.control)}</td>"
            f'<td class="num">{r.n_arm} / {r.n_control}</td>'
            f'<td class="num">{_e(_value(r.value_arm, r.measure))}</td>'
            f'<td class="num">{_e(_value(r.value_control, r.measure))}</td>'
            f"<td>{_e(_MEASURE_WORDS.get(r.measure, r.measure))}</td>"
            f'<td class="num">{_e(ci)}</td><td class="num">{_e(_fmt_p(r.p_value))}</td></tr>')
    return f"<table>\n{head}\n" + "\n".join(body) + "\n</table>"


def yes_no(flag) -> str:
    """A check of :func:`published_comparison` in words: yes, no, or – where it cannot be made."""
    return "–" if pd.isna(flag) else ("yes" if bool(flag) else "no")


def estimate_text(value, lower, upper) -> str:
    """An estimate with its 95 % CI where it has one; "not estimable" where it has no value."""
    if not math.isfinite(float(value)):
        return "not estimable"
    return _fmt(value) + (f" ({_fmt(lower)} to {_fmt(upper)})" if math.isfinite(float(lower)) else "")


def _published_section(comparison: pd.DataFrame | None) -> list[str]:
    """The simulated estimates beside the published ones the scenario names (nothing without)."""
    if comparison is None or comparison.empty:
        return []
    head = ("<tr><th>outcome</th><th>arm</th><th>measure</th><th>simulated (95 % CI)</th>"
            "<th>published (95 % CI)</th><th>simulated inside published CI</th>"
            "<th>published inside simulated CI</th><th>source</th></tr>")
    body = []
    for r in comparison.itertuples():
        sim = estimate_text(r.simulated, r.simulated_lower, r.simulated_upper)
        pub = estimate_text(r.published, r.published_lower, r.published_upper)
        body.append(f"<tr><td>{_e(OUTCOMES.get(r.outcome, r.outcome))}</td><td>{_e(r.arm)}</td>"
                    f"<td>{_e(_MEASURE_WORDS.get(r.measure, r.measure))}</td><td class=\"num\">{_e(sim)}</td>"
                    f"<td class=\"num\">{_e(pub)}</td><td>{yes_no(r.simulated_in_published_ci)}</td>"
                    f"<td>{yes_no(r.published_in_simulated_ci)}</td><td>{_e(r.source)}</td></tr>")
    return ["<h2>Against the published record</h2>", f"<table>\n{head}\n" + "\n".join(body) + "\n</table>",
            '<p class="note">The figures the scenario names ([[trial.published]]). "Simulated inside '
            'published CI": does the model land where the trials did; "published inside simulated CI": could '
            "this simulated trial, at its size, tell its result from theirs. Also in published.csv.</p>"]


def _consort_table(flow: pd.DataFrame) -> str:
    cols = list(flow.columns)
    head = "<tr><th>arm</th>" + "".join(f"<th>{_e(c.replace('_', ' '))}</th>" for c in cols) + "</tr>"
    body = "\n".join(
        f"<tr><td>{_e(arm)}</td>" + "".join(f'<td class="num">{int(r[c])}</td>' for c in cols) + "</tr>"
        for arm, r in flow.iterrows())
    return f"<table>\n{head}\n{body}\n</table>"


def _subgroup_section(ds: xr.Dataset, subgroups: pd.DataFrame | None) -> list[str]:
    """The outcome table within each stratum of a stratified trial (nothing for an unstratified one)."""
    if subgroups is None or subgroups.empty:
        return []
    parts = ["<h2>Subgroups (the strata of the randomisation)</h2>",
             '<p class="note">The same analysis within each stratum the randomisation was stratified on '
             f"({_e(', '.join(stratified_by(ds)))}): fewer subjects, wider intervals; p values are not adjusted "
             "for the number of subgroups. Also in subgroups.csv.</p>"]
    for name, table in subgroups.groupby("subgroup", sort=False):
        parts += [f"<h3>{_e(name)}</h3>", _outcomes_table(table)]
    return parts


def _subgroups(ds: xr.Dataset) -> pd.DataFrame | None:
    return subgroup_outcomes(ds) if stratified_by(ds) else None


def _after_detox(ds: xr.Dataset) -> str:
    return f" after {detox_days(ds)} days of inpatient detoxification" if detox_days(ds) else ""


def _parameters_set(scenario_toml: str | None) -> list[str]:
    """A what-if trial says so at the top: the [parameters] it set in place of the sourced values."""
    from ..overrides import scenario_settings
    from ..report.html import parse_scenario_toml

    said = scenario_settings(parse_scenario_toml(scenario_toml or ""))
    if not said:
        return []
    return [f'<p class="notice">Parameters set in place of their sourced values ({_e("; ".join(said))}).</p>']


def render_trial_report(ds: xr.Dataset, scenario_toml: str | None = None,
                        outcomes: pd.DataFrame | None = None,
                        flow: pd.DataFrame | None = None, subgroups: pd.DataFrame | None = None,
                        comparison: pd.DataFrame | None = None) -> str:
    """The standalone HTML report as a string (see :func:`write_trial_report`)."""
    outcomes = trial_outcomes(ds) if outcomes is None else outcomes
    comparison = published_comparison(ds, outcomes) if comparison is None else comparison
    subgroups = _subgroups(ds) if subgroups is None else subgroups
    flow = consort_flow(ds) if flow is None else flow
    if scenario_toml is None:
        scenario_toml = ds.attrs.get("scenario_toml")
    name = str(ds.attrs.get("trial_name", "Virtual trial"))
    ctrl = control_arm(ds)
    rule = str(ds.attrs.get("missing_urine_rule", "positive"))
    weeks = ds.attrs.get("follow_up_weeks", ds.sizes.get("week", "?"))
    fig = trial_figure(ds, outcomes)
    uri = figure_to_data_uri(fig, dpi=100)
    arms = ", ".join(trial_arms(ds))
    parts = [
        "<!doctype html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f"<title>{_e(name)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
        f"<h1>{_e(name)}</h1>",
        f'<div class="notice">{_e(RESEARCH_NOTICE)} Simulated subjects: a virtual trial, not '
        "evidence about real patients.</div>",
        f"<p>Arms: {_e(arms)} (control: {_e(ctrl)}). {int(flow['randomised'].sum())} subjects "
        f"randomised ({_e(randomisation_method(ds))}){_e(_after_detox(ds))}, {_e(weeks)} weeks of follow-up. "
        "Missed urine samples: "
        f"{'counted as positive' if rule == 'positive' else 'excluded'}.</p>",
        *_parameters_set(scenario_toml),
        "<h2>Participant flow (CONSORT-like)</h2>",
        _consort_table(flow),
        f"<pre>{_e(consort_text(ds))}</pre>",
        "<h2>Outcomes</h2>",
        _outcomes_table(outcomes),
        '<p class="note">Intention to treat over all randomised subjects. Risk ratios with '
        "Katz log-scale 95 % CIs, odds ratios with Woolf CIs (0.5 added to every cell of a table "
        "with a zero cell; not estimable when no subject, or every subject, had the event in both "
        "arms); Cohen's d with the Hedges–Olkin large-sample CI and p from Student's pooled t "
        "test. Retention as in Mattick et al. 2009 (Cochrane CD002209); the negative-urine "
        "fraction as d, as in Prendergast et al. 2006. p values are not adjusted for multiple "
        "outcomes.</p>",
        *_published_section(comparison),
        *_subgroup_section(ds, subgroups),
        "<h2>Figure</h2>",
        f'<figure><img src="{uri}" alt="retention, urine toxicology, deaths and effect '
        'estimates by arm"></figure>',
    ]
    if scenario_toml:
        parts += ["<h2>Scenario</h2>", f"<pre>{_e(scenario_toml)}</pre>"]
    parts += [f"<footer>Made by opioidsim. {_e(RESEARCH_NOTICE)}</footer>", "</body>", "</html>", ""]
    return "\n".join(parts)


def write_trial_report(ds: xr.Dataset, out_dir: str | os.PathLike[str],
                       scenario_toml: str | None = None) -> dict[str, Path]:
    """Write ``report.html``, ``outcomes.csv`` and ``consort.csv`` into ``out_dir`` (created if
    needed), each atomically. ``scenario_toml`` defaults to ``ds.attrs['scenario_toml']``.
    Returns the paths by kind: ``{"html", "outcomes", "consort"}``, ``"subgroups"``
    (``subgroups.csv``: the outcomes within each stratum) for a stratified trial, and
    ``"published"`` (``published.csv``) where the scenario gives published figures."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    outcomes = trial_outcomes(ds)
    flow = consort_flow(ds)
    # every output is computed before the first is written, so a failure writes nothing
    subgroups = _subgroups(ds)
    comparison = published_comparison(ds, outcomes)
    page = render_trial_report(ds, scenario_toml, outcomes, flow, subgroups, comparison)
    paths = {"html": out / "report.html", "outcomes": out / "outcomes.csv", "consort": out / "consort.csv"}
    if not comparison.empty:
        paths["published"] = out / "published.csv"
        atomic_write_text(paths["published"], comparison.to_csv(index=False))
    if subgroups is not None:
        paths["subgroups"] = out / "subgroups.csv"
        atomic_write_text(paths["subgroups"], subgroups.to_csv(index=False))
    atomic_write_text(paths["outcomes"], outcomes.to_csv(index=False))
    atomic_write_text(paths["consort"], flow.to_csv(index=True))
    atomic_write_text(paths["html"], page)
    return paths


def write_trial_report_file(ds: xr.Dataset, path: str | os.PathLike[str], scenario_toml: str | None = None) -> None:
    """The report writer of a results folder (`opioidsim run`/`opioidsim trial`): report.html at
    `path`, and consort.csv beside it, with subgroups.csv for a stratified trial and published.csv
    where the scenario gives published figures (summary.csv, the outcomes table, is written by the
    folder)."""
    path = Path(path)
    flow = consort_flow(ds)
    subgroups = _subgroups(ds)
    outcomes = trial_outcomes(ds)
    comparison = published_comparison(ds, outcomes)
    page = render_trial_report(ds, scenario_toml, outcomes, flow, subgroups, comparison)
    atomic_write_text(path.with_name("consort.csv"), flow.to_csv(index=True))  # the arm names
    if not comparison.empty:
        atomic_write_text(path.with_name("published.csv"), comparison.to_csv(index=False))
    if subgroups is not None:
        atomic_write_text(path.with_name("subgroups.csv"), subgroups.to_csv(index=False))
    atomic_write_text(path, page)
