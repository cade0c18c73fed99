"""Tables and figures of an animal experiment: one row per session; sessions × infusions,
reinstatement by trigger, place preference. Research and teaching only: never a dosing guide."""
from __future__ import annotations

import base64
import html
import io
import os

import numpy as np
import pandas as pd
import xarray as xr

from ..report.html import RESEARCH_NOTICE

SESSION_VARIABLES = ("session_infusions", "session_presses", "first_hour_infusions", "breakpoint", "cpp_score")


def is_paradigm_result(ds: xr.Dataset) -> bool:
    return "session" in ds.dims and "session_infusions" in ds


def paradigm_summary_table(ds: xr.Dataset) -> pd.DataFrame:
    """One row per session: its kind and trigger, then the cohort median and interquartile range
    of each per-session measure (NaN where it does not apply)."""
    rows = []
    for s in range(ds.sizes["session"]):
        row = {"session": s + 1, "phase": int(ds.session_phase[s]), "kind": str(ds.session_kind.values[s]),
               "trigger": str(ds.session_trigger.values[s]),
               "length_h": float(ds.session_length_min[s]) / 60.0}
        for v in SESSION_VARIABLES:
            x = ds[v].values[:, s]
            ok = x[np.isfinite(x)]
            row[f"{v}_median"] = float(np.median(ok)) if ok.size else np.nan
            row[f"{v}_q25"] = float(np.percentile(ok, 25)) if ok.size else np.nan
            row[f"{v}_q75"] = float(np.percentile(ok, 75)) if ok.size else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def paradigm_figure(ds: xr.Dataset):
    """Sessions × infusions (median and IQR), presses by session kind, reinstatement bars by
    trigger, and the place-preference score where the experiment has them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = np.array([str(k) for k in ds.session_kind.values])
    panels = ["intake"]
    if np.isin(kinds, ["extinction", "reinstatement"]).any():
        panels.append("seeking")
    if (kinds == "cpp_test").any():
        panels.append("cpp")
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.6), squeeze=False)
    x = np.arange(1, ds.sizes["session"] + 1)
    for ax, panel in zip(axes[0], panels):
        if panel == "intake":
            sa = np.isin(kinds, ["self_administration", "progressive_ratio"])
            for var, label in (("session_infusions", "infusions per session"),
                               ("first_hour_infusions", "first-hour infusions")):
                v = ds[var].values[:, sa]
                ax.plot(x[sa], np.median(v, axis=0), "o-", ms=3, label=label)
                ax.fill_between(x[sa], np.percentile(v, 25, axis=0), np.percentile(v, 75, axis=0), alpha=0.2)
            ax.set_xlabel("session")
            ax.set_ylabel("infusions")
            ax.set_title("Self-administration")
            ax.legend(fontsize=8)
        elif panel == "seeking":
            sel = np.isin(kinds, ["extinction", "reinstatement"])
            pr = ds.session_presses.values
            colors = ["tab:gray" if k == "extinction" else "tab:red" for k in kinds[sel]]
            ax.bar(x[sel], pr[:, sel].mean(axis=0), color=colors)
            for xi, s in zip(x[sel], np.nonzero(sel)[0]):
                if kinds[s] == "reinstatement":
                    ax.annotate(str(ds.session_trigger.values[s]), (xi, pr[:, s].mean()), ha="center",
                                va="bottom", fontsize=8)
            ax.set_xlabel("session (grey: extinction; red: reinstatement test)")
            ax.set_ylabel("lever presses (mean)")
            ax.set_title("Extinction and reinstatement")
        else:
            sel = kinds == "cpp_test"
            v = ds.cpp_score.values[:, sel]
            ax.bar(np.arange(sel.sum()), v.mean(axis=0), yerr=v.std(axis=0), color="tab:purple")
            ax.axhline(0, color="k", lw=0.8)
            ax.set_xlabel("test")
            ax.set_ylabel("time in drug side − other side (s)")
            ax.set_title("Conditioned place preference")
    fig.tight_layout()
    return fig


def write_paradigm_report(ds: xr.Dataset, path: str | os.PathLike, scenario_toml: str | None = None) -> None:
    """A standalone HTML report of an experiment (figure embedded, session table)."""
    import matplotlib.pyplot as plt

    fig = paradigm_figure(ds)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    img = base64.b64encode(buf.getvalue()).decode()
    table = paradigm_summary_table(ds)
    cols = ["session", "kind", "trigger", "length_h", "session_infusions_median", "session_presses_median",
            "first_hour_infusions_median", "breakpoint_median", "cpp_score_median"]
    name = html.escape(str(ds.attrs.get("scenario_name", "experiment")))
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{name}</title></head><body>",
             f"<h1>{name}</h1><p>{html.escape(str(ds.attrs.get('description', '')))}</p>",
             f"<p><strong>{html.escape(RESEARCH_NOTICE)}</strong></p>",
             f"<p>{ds.sizes['subject']} {html.escape(str(ds.attrs.get('species', '')))} subjects, "
             f"{ds.sizes['session']} sessions.</p>",
             f"<img alt='sessions and infusions' src='data:image/png;base64,{img}'>",
             table[cols].to_html(index=False, float_format=lambda v: f"{v:.1f}", na_rep=""),
             ]
    if scenario_toml:
        parts.append(f"<h2>Scenario</h2><pre>{html.escape(scenario_toml)}</pre>")
    parts.append("</body></html>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts))
