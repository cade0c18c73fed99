"""The standalone HTML report: one file, figures as base64 PNG data URIs, inline CSS, no JS.

A reader should see the story at a glance: what was run (scenario, version, seed, cohort), the
cascade from dose to breathing, the key numbers, and the scenario text to re-run it. The report
copes with any subset of readouts and with datasets that lack optional attrs.
"""
from __future__ import annotations

import html
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from opioidsim.overrides import scenario_settings
from opioidsim.report.summary import (
    COWS_BANDS,
    TOLERANCE_REGIONS,
    ExtremeSummary,
    cows_band,
    ever_fraction,
    is_drug_series,
    last_dose_before_washout,
    long_name_of,
    never_nonzero,
    readout_names,
    summary_table,
    time_minutes,
    tolerance_fold_shifts,
    withdrawal_peak,
)

__all__ = ["RESEARCH_NOTICE", "render_report", "write_report"]

RESEARCH_NOTICE = ("opioidsim is a research and teaching tool; not medical advice; "
                   "never a dosing guide.")

_DPI = 100
_MAX_DOSES_LISTED = 20

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222;
       max-width: 1040px; margin: 1.5em auto; padding: 0 1em; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.6em; }
.description { font-size: 1.05em; color: #444; margin-top: 0; }
.notice { background: #fff4e5; border-left: 5px solid #e69500; padding: 0.6em 0.9em;
          margin: 1em 0; font-weight: 600; }
.headline { background: #fdecea; border-left: 5px solid #c62828; padding: 0.5em 0.9em; }
.headline.ok { background: #edf7ed; border-left-color: #2e7d32; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.meta th { width: 11em; }
.code { font-family: Menlo, Consolas, monospace; font-size: 0.85em; color: #555; }
figure { margin: 0.5em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; }
pre { background: #f6f8fa; border: 1px solid #ddd; padding: 0.8em; overflow-x: auto;
      font-size: 0.85em; }
footer { margin-top: 2em; font-size: 0.8em; color: #777; }
"""


@dataclass
class _Meta:
    """What was run, gathered from dataset attrs with the scenario TOML as a fallback."""

    name: str
    description: str
    version: str
    seed: str
    subjects: int
    duration_min: float
    record_every_min: float | None
    dose_times_min: np.ndarray
    scenario_toml: str
    #: what the scenario sets in place of sourced values (opioidsim.overrides.scenario_settings)
    parameters_set: list


def parse_scenario_toml(text: str) -> dict[str, Any]:
    """Best-effort parse (only to fill in missing attrs); never fails the report."""
    try:
        import tomllib  # Python ≥ 3.11
    except ImportError:  # pragma: no cover - Python 3.10
        return {}
    try:
        data = tomllib.loads(text)
    except Exception:  # a malformed text is still shown verbatim, just not mined
        return {}
    return data if isinstance(data, dict) else {}


def _package_version() -> str:
    try:
        from opioidsim import __version__

        return str(__version__)
    except Exception:  # pragma: no cover - bare tree
        return "unknown"


def _meta(ds: xr.Dataset, scenario_toml: str | None) -> _Meta:
    attrs = ds.attrs
    toml_text = scenario_toml if scenario_toml is not None else str(attrs.get("scenario_toml", ""))
    parsed = parse_scenario_toml(toml_text) if toml_text else {}
    header = parsed.get("scenario", {}) if isinstance(parsed.get("scenario"), dict) else {}
    cohort = parsed.get("cohort", {}) if isinstance(parsed.get("cohort"), dict) else {}

    seed: Any = attrs.get("seed", cohort.get("seed"))
    t_min = time_minutes(ds)
    steps = np.diff(t_min)
    doses = attrs.get("dose_times_min")
    try:  # a list in memory, an ndarray or scalar after a NetCDF round trip
        dose_arr = np.atleast_1d(np.asarray(doses if doses is not None else [], dtype=float))
        dose_arr = dose_arr.ravel()[np.isfinite(dose_arr.ravel())]
    except (TypeError, ValueError):
        dose_arr = np.zeros(0)
    return _Meta(
        name=str(attrs.get("scenario_name") or header.get("name") or "unnamed scenario"),
        description=str(attrs.get("description") or header.get("description") or ""),
        version=str(attrs.get("opioidsim_version") or _package_version()),
        seed="not recorded" if seed is None else str(seed),
        subjects=int(ds.sizes.get("subject", 1)),
        duration_min=float(t_min[-1] - t_min[0]) if t_min.size else 0.0,
        record_every_min=float(np.median(steps)) if steps.size else None,
        dose_times_min=np.sort(dose_arr),
        scenario_toml=toml_text,
        parameters_set=scenario_settings(parsed),
    )


def _fmt(x: float) -> str:
    """A compact number: enough digits to read a clinical value, no false precision."""
    if x is None or not math.isfinite(x):
        return "–"
    a = abs(x)
    if a == 0:
        return "0"
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 100:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    if a >= 1e-3:
        return f"{x:.3f}"
    return f"{x:.2e}"


def _fmt_duration(minutes: float) -> str:
    if minutes <= 180:
        return f"{minutes:g} min"
    if minutes <= 72 * 60:
        return f"{minutes / 60:g} h"
    return f"{minutes / 1440:.3g} d ({minutes / 60:g} h)"


def _fmt_time(minutes: float, unit: str, per_unit: float) -> str:
    return "–" if not math.isfinite(minutes) else f"{minutes / per_unit:.4g} {unit}"


def _units_display(units: str) -> str:
    return "–" if units in ("", "1") else units


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _meta_table(meta: _Meta, n_readouts: int) -> str:
    rows: list[tuple[str, str]] = [
        ("scenario", meta.name),
        ("opioidsim version", meta.version),
        ("seed", meta.seed),
        ("subjects", f"{meta.subjects:,}"),
        ("duration", _fmt_duration(meta.duration_min)),
    ]
    if meta.record_every_min is not None:
        rows.append(("recorded every", f"{meta.record_every_min * 60:g} s"))
    rows.append(("readouts recorded", str(n_readouts)))
    if meta.parameters_set:  # a what-if: say so where the reader looks first
        rows.append(("parameters set (not their sourced values)", "; ".join(meta.parameters_set)))
    if meta.dose_times_min.size:
        shown = ", ".join(f"{t:g}" for t in meta.dose_times_min[:_MAX_DOSES_LISTED])
        more = (f" … ({meta.dose_times_min.size} in all)"
                if meta.dose_times_min.size > _MAX_DOSES_LISTED else "")
        rows.append(("dose times (min)", shown + more))
    body = "\n".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f'<table class="meta">\n{body}\n</table>'


def _headline(ds: xr.Dataset, n_subjects: int) -> str:
    """Overdose / cardiac-arrest counts, the most important single facts, if recorded."""
    items = []
    for name, what in (("overdose", "Overdose (apnoea or cardiac-arrest criterion met)"),
                       ("cardiac_arrest", "Hypoxic cardiac arrest")):
        frac = ever_fraction(ds, name)
        if frac is None:
            continue
        count = round(frac * n_subjects)
        items.append((frac, f"{what}: {count:,} of {n_subjects:,} subjects "
                            f"({100 * frac:.1f} %) at any time."))
    if not items:
        return ""
    cls = "headline" if any(f > 0 for f, _ in items) else "headline ok"
    body = "<br>".join(_e(text) for _, text in items)
    return f'<p class="{cls}">{body}</p>'


def _key_numbers(ds: xr.Dataset, meta: _Meta, unit: str, per_unit: float) -> str:
    table = summary_table(ds)
    if table.empty:
        return "<p>No readouts were recorded.</p>"
    cohort = meta.subjects > 1
    head = ("<tr><th>readout</th><th>units</th><th>baseline</th><th>extreme</th>"
            "<th>median</th><th>10–90 % across subjects</th><th>time of extreme (median)</th>"
            "<th>final</th></tr>")
    rows = []
    skipped = []
    for r in table.itertuples(index=False):
        if is_drug_series(r.readout) and never_nonzero(ds, r.readout):
            skipped.append(r.readout)  # a drug this scenario never gave: a row of zeros
            continue
        spread = f"{_fmt(r.peak_p10)} – {_fmt(r.peak_p90)}" if cohort else "–"
        extreme = "nadir (min)" if r.kind == "min" else "peak (max)"
        rows.append(
            "<tr>"
            f"<td>{_e(long_name_of(ds, r.readout))}<br><span class=\"code\">{_e(r.readout)}"
            "</span></td>"
            f"<td>{_e(_units_display(r.units))}</td>"
            f'<td class="num">{_fmt(r.baseline_median)}</td>'
            f"<td>{extreme}</td>"
            f'<td class="num">{_fmt(r.peak_median)}</td>'
            f'<td class="num">{spread}</td>'
            f'<td class="num">{_fmt_time(r.time_of_peak_median_min, unit, per_unit)}</td>'
            f'<td class="num">{_fmt(r.final_median)}</td>'
            "</tr>")
    note = ("Baseline is the first recorded time point, final the last; values are medians "
            "across subjects. The extreme is the minimum for SpO2, ventilation and PaO2 (a dip "
            "is the danger) and the maximum otherwise.")
    if skipped:
        note += (" Not shown (zero throughout: drug never given): " + ", ".join(skipped)
                 + " (the summary table keeps them).")
    return f"<table>\n{head}\n" + "\n".join(rows) + f"\n</table>\n<p class=\"code\">{_e(note)}</p>"


def _fmt_span(minutes: float) -> str:
    """A time span: hours under a day, days beyond."""
    a = abs(minutes)
    return f"{a / 60:.3g} h" if a < 1440 else f"{a / 1440:.3g} d"


def _fmt_fold(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    if x >= 999.5:
        return "≥ 1000×"
    return f"{x:.1f}×" if x < 99.95 else f"{x:.0f}×"


def _band_range(name: str) -> str:
    for band, lo, hi in COWS_BANDS:
        if band == name:
            return f"{lo}–{hi}" if hi < 48 else f"> {lo - 1}"
    return "< 5"


def _cows_row(what: str, peak: ExtremeSummary, cohort: bool, when: str
              ) -> tuple[str, str, str, str]:
    band = cows_band(peak.median)
    return (what, f"{peak.median:.1f} ({band}, {_band_range(band)})",
            f"{peak.p10:.1f} – {peak.p90:.1f}" if cohort else "–",
            when if math.isfinite(peak.time_median_min) else "–")


def _chronic_numbers(ds: xr.Dataset, meta: _Meta) -> str:
    """Peak withdrawal (COWS) and the largest tolerance per region, if recorded; else ""."""
    cohort = meta.subjects > 1
    rows: list[tuple[str, str, str, str]] = []
    peak = withdrawal_peak(ds)
    if peak is not None and math.isfinite(peak.median):
        rows.append(_cows_row("Peak withdrawal score (COWS, 0–48), whole run", peak, cohort,
                              f"{_fmt_span(peak.time_median_min)} from scenario start"))
    if meta.dose_times_min.size:
        last = float(meta.dose_times_min[-1])
        after = withdrawal_peak(ds, after_min=last)
        if after is not None and math.isfinite(after.median):
            rows.append(_cows_row("Peak withdrawal score (COWS, 0–48) after the last dose",
                                  after, cohort,
                                  f"{_fmt_span(after.time_median_min - last)} after the last "
                                  "dose"))
    for name, shift in tolerance_fold_shifts(ds).items():
        region, effect = TOLERANCE_REGIONS[name]
        when = ("–" if not math.isfinite(shift.time_median_min)
                else f"{_fmt_span(shift.time_median_min)} from scenario start")
        rows.append((f"Largest tolerance, {effect} ({region}): fold shift in equi-effective "
                     "dose (≈ 1/capacity)", _fmt_fold(shift.median),
                     f"{_fmt_fold(shift.p10)} – {_fmt_fold(shift.p90)}" if cohort else "–",
                     when))
    if not rows:
        return ""
    head = ("<tr><th>withdrawal and tolerance</th><th>median</th>"
            "<th>10–90 % across subjects</th><th>when (median)</th></tr>")
    body = "\n".join(
        f'<tr><td>{_e(what)}</td><td class="num">{_e(value)}</td>'
        f'<td class="num">{_e(spread)}</td><td>{_e(when)}</td></tr>'
        for what, value, spread, when in rows)
    note = ("Per subject the highest COWS score (over the whole run, or from the last dose on) "
            "and the lowest MOR signalling capacity, then the median across subjects. COWS "
            "bands after Wesson & Ling 2003 (5–12 mild, 13–24 moderate, 25–36 moderately "
            "severe, > 36 severe). The fold shift 1/capacity is exact for a full agonist where "
            "spare receptors make up the loss (brainstem) and a low-dose estimate for one "
            "without receptor reserve (VTA, dorsal horn).")
    if meta.dose_times_min.size:
        note += " The last dose is the last of any drug (agonist or antagonist)."
    return f"<table>\n{head}\n{body}\n</table>\n<p class=\"code\">{_e(note)}</p>"


def _figure_block(uri: str, alt: str, caption: str) -> str:
    return (f'<figure><img src="{uri}" alt="{_e(alt)}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _chronic_sections(ds: xr.Dataset, meta: _Meta, bands: dict[str, np.ndarray],
                      band_text: str) -> tuple[list[str], set[str]]:
    """The chronic panels (runs of two days or more) as HTML blocks, and the readouts they draw
    unchanged (so the grid of other readouts need not repeat them)."""
    from opioidsim.report.figures import (
        BALANCE_READOUTS,
        CHRONIC_MIN_DAYS,
        COGNITION_READOUTS,
        CRAVING_READOUTS,
        GREY_MATTER_READOUTS,
        WITHDRAWAL_READOUTS,
        balance_figure,
        cognition_figure,
        craving_figure,
        dopamine_adaptation_figure,
        figure_to_data_uri,
        grey_matter_figure,
        tolerance_figure,
        withdrawal_figure,
    )

    if meta.duration_min < CHRONIC_MIN_DAYS * 1440.0:
        return [], set()
    present = set(readout_names(ds))
    last_text = " The dashed line marks the last dose." if meta.dose_times_min.size else ""
    blocks: list[str] = []
    drawn: set[str] = set()

    fig = tolerance_figure(ds, dose_times_min=meta.dose_times_min, bands=bands)
    if fig is not None:
        blocks += ["<h2>Tolerance</h2>", _figure_block(
            figure_to_data_uri(fig, _DPI),
            "tolerance: fold shift in the dose needed for the same effect, per brain region, "
            "over time",
            "With repeated use the receptors signal less, so the same effect needs more drug: "
            "a fold shift of 3 means three times the dose for the same euphoria (VTA), pain "
            "relief (dorsal horn) or slowing of breathing (brainstem); it is approximated as "
            "1/capacity, exact for a full agonist where spare receptors make up the loss "
            "(brainstem) and a low-dose estimate without receptor reserve (VTA, dorsal horn: "
            "there larger doses need more). " + band_text + last_text)]

    fig = withdrawal_figure(ds, dose_times_min=meta.dose_times_min, bands=bands)
    if fig is not None:
        drawn |= set(WITHDRAWAL_READOUTS) & present
        zoom = ("The lower panels zoom in on the days after the last dose. "
                if last_dose_before_washout(meta.dose_times_min,
                                            float(time_minutes(ds)[-1])) is not None
                else "")
        blocks += ["<h2>Withdrawal</h2>", _figure_block(
            figure_to_data_uri(fig, _DPI),
            "withdrawal course over days: COWS score with severity bands, locus coeruleus "
            "noradrenaline and cAMP",
            "When the drug wears off, the adapted brain overshoots: locus coeruleus cAMP and "
            "noradrenaline surge and the withdrawal score (COWS, 0–48) rises through the shaded "
            "severity bands of Wesson & Ling 2003 (5–12 mild, 13–24 moderate, 25–36 "
            "moderately severe, over 36 severe). " + zoom + band_text + last_text)]

    fig = dopamine_adaptation_figure(ds, dose_times_min=meta.dose_times_min, bands=bands)
    if fig is not None:
        blocks += ["<h2>Dopamine adaptation</h2>", _figure_block(
            figure_to_data_uri(fig, _DPI),
            "dopamine adaptation: D2 receptor density, dopamine stores, PET D2 binding "
            "potential, dopamine transporter and response to a natural reward as percent of "
            "baseline over time",
            "Repeated dopamine surges make the brain turn its dopamine system down: fewer D2 "
            "receptors and emptier dopamine stores, the low D2 binding that PET scans show in "
            "addiction (Volkow et al. 2004), fewer dopamine transporters, and a smaller response "
            "to natural rewards (anhedonia); 100 % is each subject's own first record. "
            + band_text + last_text)]

    fig = balance_figure(ds, dose_times_min=meta.dose_times_min, bands=bands)
    if fig is not None:
        drawn |= (set(BALANCE_READOUTS) - {"hedonic_state"}) & present
        blocks += ["<h2>Pleasure–pain balance</h2>", _figure_block(
            figure_to_data_uri(fig, _DPI),
            "pleasure-pain balance: felt hedonic state, opponent process, hedonic set point "
            "and brain-reward threshold over time",
            "The brain's opponent process grows with each high and outlasts the drug: the set "
            "point drops below zero, the balance tipped toward pain, and the brain-reward "
            "threshold rises so that ordinary pleasures count for less (Koob & Le Moal 2001). "
            + band_text + last_text)]

    fig = craving_figure(ds, dose_times_min=meta.dose_times_min, bands=bands)
    if fig is not None:
        drawn |= set(CRAVING_READOUTS) & present
        blocks += ["<h2>Craving</h2>", _figure_block(
            figure_to_data_uri(fig, _DPI),
            "craving over time: background craving, the craving a drug cue would provoke, and "
            "nucleus accumbens GLT-1",
            "Background craving follows withdrawal and dysphoria and fades within weeks of "
            "stopping; the craving a drug cue would provoke grows for a month or two of "
            "abstinence before it declines (incubation of craving), while glutamate transport "
            "(GLT-1) recovers only over months. " + band_text + last_text)]

    fig = grey_matter_figure(ds, dose_times_min=meta.dose_times_min, bands=bands)
    if fig is not None:
        drawn |= set(GREY_MATTER_READOUTS) & present
        wm = " The dotted line is white-matter integrity (fractional anisotropy)." if "white_matter" in present else ""
        blocks += ["<h2>Grey matter</h2>", _figure_block(
            figure_to_data_uri(fig, _DPI),
            "grey matter by brain region over time, percent of each subject's own baseline",
            "Grey matter per region as a percentage of the subject's own drug-naive brain (a scanner "
            "comparing users with controls sees the vbm_* readouts instead). It shrinks with "
            "cumulative opioid exposure and neuroinflammation, most in the prefrontal and anterior "
            "cingulate cortex: part of the loss (dendrites, spines, glia) recovers over months of "
            "abstinence, part of it is lasting and grows with years of use. The changes are slow: "
            "about half a percent a month early in daily use." + wm + " " + band_text + last_text)]

    fig = cognition_figure(ds, dose_times_min=meta.dose_times_min, bands=bands)
    if fig is not None:
        drawn |= set(COGNITION_READOUTS) & present
        blocks += ["<h2>Cognition</h2>", _figure_block(
            figure_to_data_uri(fig, _DPI),
            "cognition over time: executive function, working memory, attention and prefrontal "
            "control of choice, percent of the drug-naive level",
            "Executive function, working memory and attention as a percentage of the subject's "
            "drug-naive level: they fall with prefrontal (and temporal, cingulate) grey-matter loss, "
            "low striatal D2 signalling (hypofrontality), inflammation and white-matter damage, and "
            "come back only in part in abstinence. The black dashed line, prefrontal control of choice, "
            "is what the behaviour layer weighs craving against (the executive domain itself). "
            + band_text + last_text)]
    return blocks, drawn


def render_report(ds: xr.Dataset, scenario_toml: str | None = None) -> str:
    """The report as one HTML string (see :func:`write_report`)."""
    # Imported here so that summary tables and CSVs never pay for importing matplotlib.
    from opioidsim.report.figures import (
        CASCADE_READOUTS,
        cascade_figure,
        choose_time_axis,
        figure_to_data_uri,
        other_readouts_figure,
    )

    meta = _meta(ds, scenario_toml)
    names = readout_names(ds)
    axis = choose_time_axis(meta.duration_min)
    bands: dict[str, np.ndarray] = {}  # each cohort band computed once, shared by figures

    band_text = ("Lines are the cohort median; shaded bands span the 10th to 90th percentile "
                 "across subjects." if meta.subjects > 1 else "One subject: its own curve.")
    dose_text = " Dotted vertical lines mark doses." if meta.dose_times_min.size else ""
    dose_text += " Drugs never present in any subject are left out."

    sections: list[str] = []
    fig = cascade_figure(ds, dose_times_min=meta.dose_times_min, bands=bands)
    sections.append("<h2>From dose to breathing: the cascade</h2>")
    if fig is None:
        sections.append("<p>None of the cascade readouts (plasma drugs, MOR occupancy, NAc "
                        "dopamine, pleasure, pain, breathing) were recorded.</p>")
    else:
        sections.append(_figure_block(
            figure_to_data_uri(fig, _DPI), "cascade: plasma drug, receptor occupancy, "
            "dopamine, pleasure, pain, breathing over time",
            "Drug in plasma → mu-opioid receptor occupancy → dopamine in the nucleus accumbens "
            "→ pleasure; and the same receptors → less pain, slower breathing. "
            + band_text + dose_text))

    sections.append("<h2>Key numbers</h2>")
    sections.append(_key_numbers(ds, meta, axis.unit, axis.minutes_per_unit))
    chronic_numbers = _chronic_numbers(ds, meta)
    if chronic_numbers:
        sections.append(chronic_numbers)

    chronic_sections, drawn = _chronic_sections(ds, meta, bands, band_text)
    sections.extend(chronic_sections)

    # Everything not in the cascade or drawn as-is in a chronic panel, except drugs never given
    # (flat zero lines).
    others: Sequence[str] = [n for n in names
                             if n not in CASCADE_READOUTS and n not in drawn
                             and not n.startswith("plasma_")
                             and not (is_drug_series(n) and never_nonzero(ds, n))]
    other_fig = other_readouts_figure(ds, others, dose_times_min=meta.dose_times_min,
                                      bands=bands)
    if other_fig is not None:
        sections.append("<h2>Other recorded readouts</h2>")
        other_text = band_text + dose_text
        if drawn:
            other_text += " Readouts drawn unchanged in the panels above are not repeated."
        sections.append(_figure_block(figure_to_data_uri(other_fig, _DPI),
                                      "other readouts over time", other_text))

    sections.append("<h2>Scenario</h2>")
    if meta.scenario_toml.strip():
        sections.append("<p>The scenario as run; save it as a .toml file and run "
                        "<span class=\"code\">opioidsim run FILE --out FOLDER</span> to "
                        "reproduce these results.</p>")
        sections.append(f"<pre>{_e(meta.scenario_toml)}</pre>")
    else:
        sections.append("<p>The scenario text was not recorded with these results.</p>")

    title = f"opioidsim report: {meta.name}"
    description = (f'<p class="description">{_e(meta.description)}</p>'
                   if meta.description else "")
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{_e(title)}</h1>",
        description,
        f'<p class="notice">{_e(RESEARCH_NOTICE)}</p>',
        _meta_table(meta, len(names)),
        _headline(ds, meta.subjects),
        *sections,
        f"<footer>Made by opioidsim {_e(meta.version)}. {_e(RESEARCH_NOTICE)}</footer>",
        "</body>",
        "</html>",
        "",
    ])


def write_report(ds: xr.Dataset, path: str | os.PathLike[str],
                 scenario_toml: str | None = None) -> None:
    """Write the standalone HTML report for results ``ds`` to ``path``.

    ``scenario_toml`` is the scenario text to show (default: ``ds.attrs['scenario_toml']``).
    Works with any subset of readouts, one subject or many; optional attrs
    (``description``, ``dose_times_min``) are used when present.
    """
    text = render_report(ds, scenario_toml)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
