"""The report of a synthetic imaging study (opioidsim.imaging): one standalone HTML file with the
effect-size figure (region × Hedges' g), the group-difference table as the papers print it
(means ± SD, g with its 95 % CI, Welch's t, df, p), the correlation with years of use, and the
tables as CSV beside it.

A cross-sectional study gives one row per measure; a longitudinal one (``longitudinal_study``)
one row per measure and scan, with the paired change from the first scan.
"""
from __future__ import annotations

import html
import os
from pathlib import Path

import pandas as pd

from ..io.checkpoint import atomic_write_text
from ..readouts import READOUTS
from .figures import effect_size_figure, figure_to_data_uri
from .formatting import fixed as _num
from .formatting import p_value as _p
from .html import _CSS, RESEARCH_NOTICE

__all__ = ["render_study_report", "write_study_report"]


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _label(measure: str) -> str:
    r = READOUTS.get(measure)
    return f"{measure} ({r.units})" if r is not None and r.units not in ("", "1") else measure


def _group_table(table: pd.DataFrame) -> str:
    longitudinal = "abstinent_days" in table.columns
    head = (["day of abstinence"] if longitudinal else []) + ["measure", "users", "controls", "Hedges' g [95 % CI]"]
    head += ["change from first scan", "paired t", "p"] if longitudinal else ["Welch t (df)", "p"]
    rows = ["<table>", "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"]
    for _, r in table.iterrows():
        if longitudinal:
            users = f"{_num(r['mean_users'])} (n = {int(r['n_users'])})"
            controls = f"n = {int(r['n_controls'])}"
        else:
            users = f"{_num(r['mean_users'])} ± {_num(r['sd_users'])} (n = {int(r['n_users'])})"
            controls = f"{_num(r['mean_controls'])} ± {_num(r['sd_controls'])} (n = {int(r['n_controls'])})"
        g = f"{_num(r['hedges_g'])} [{_num(r['g_ci_low'])}, {_num(r['g_ci_high'])}]"
        cells = ([f"{float(r['abstinent_days']):g}"] if longitudinal else []) + [_label(r["measure"]), users, controls, g]
        if longitudinal:
            cells += [_num(r["change_from_first"], 3), _num(r["t_paired"]), _p(r["p_paired"])]
        else:
            cells += [f"{_num(r['t'])} ({_num(r['df'], 1)})", _p(r["p"])]
        rows.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>")
    return "\n".join([*rows, "</table>"])


def _correlation_table(corr: pd.DataFrame) -> str:
    rows = ["<table>", "<tr><th>measure</th><th>with</th><th>Pearson r</th><th>p</th><th>n</th></tr>"]
    for _, r in corr.iterrows():
        rows.append(f"<tr><td>{_e(_label(r['measure']))}</td><td>{_e(r['covariate'])}</td>"
                    f"<td>{_num(r['r'])}</td><td>{_e(_p(r['p']))}</td><td>{int(r['n'])}</td></tr>")
    return "\n".join([*rows, "</table>"])


def render_study_report(table: pd.DataFrame, correlation: pd.DataFrame | None = None, *,
                        title: str = "Synthetic imaging study", design: str = "") -> str:
    """The study report as a string: ``table`` from ``cross_sectional_study(...).table``,
    ``compare_groups`` or ``longitudinal_study``; ``correlation`` from ``correlate`` (optional);
    ``design`` a sentence on who was scanned when."""
    uri = figure_to_data_uri(effect_size_figure(table, title=title), dpi=100)
    parts = [
        "<!doctype html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f"<title>{_e(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="notice">{_e(RESEARCH_NOTICE)} Simulated scans of virtual subjects, not evidence '
        "about real people.</p>",
    ]
    if design:
        parts.append(f'<p class="description">{_e(design)}</p>')
    parts += [
        "<h2>Effect sizes</h2>",
        f'<figure><img src="{uri}" alt="Hedges g of users against controls per measure"><figcaption>'
        "Users − controls as Hedges' g (pooled SD, small-sample correction) with 95 % confidence "
        "intervals (Hedges &amp; Olkin 1985); negative: lower in users.</figcaption></figure>",
        "<h2>Group differences</h2>",
        _group_table(table),
        '<p class="note">Means ± SD; Welch\'s unequal-variance t-test, two-sided, not adjusted for '
        "the number of measures. A VBM measure is the % difference from a typical matched control."
        "</p>" if "abstinent_days" not in table.columns else
        '<p class="note">The same users at each scan: the change from the first scan with a paired '
        "t-test, and g against the same controls at every scan.</p>",
    ]
    if correlation is not None and len(correlation):
        parts += ["<h2>Correlation within users</h2>", _correlation_table(correlation)]
    parts += [f"<footer>Made by opioidsim. {_e(RESEARCH_NOTICE)}</footer>", "</body>", "</html>", ""]
    return "\n".join(parts)


def write_study_report(out_dir: str | os.PathLike[str], table: pd.DataFrame,
                       correlation: pd.DataFrame | None = None, *, title: str = "Synthetic imaging study",
                       design: str = "", subjects: pd.DataFrame | None = None) -> dict[str, Path]:
    """Write ``report.html``, ``effects.csv`` and, where given, ``correlation.csv`` and
    ``subjects.csv`` into ``out_dir`` (created if needed). Everything is rendered before the
    first file is written, and each file is written atomically, so a failure leaves no half."""
    page = render_study_report(table, correlation, title=title, design=design)
    texts = {"effects": table.to_csv(index=False)}
    if correlation is not None:
        texts["correlation"] = correlation.to_csv(index=False)
    if subjects is not None:
        texts["subjects"] = subjects.to_csv(index=False)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind, text in texts.items():
        paths[kind] = out / f"{kind}.csv"
        atomic_write_text(paths[kind], text)
    paths["html"] = out / "report.html"
    atomic_write_text(paths["html"], page)
    return paths
