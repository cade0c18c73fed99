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


def has_groups(ds: xr.Dataset) -> bool:
    """Whether the experiment had [[paradigm.group]] tables (its schedules are per subject)."""
    return "group" in ds.coords and ds["session_length_min"].ndim == 2


def group_rows(ds: xr.Dataset) -> list[tuple[str, np.ndarray]]:
    """(group name, the subject rows of that group), in the order the groups first appear."""
    if "group" not in ds.coords:
        return [("all", np.arange(ds.sizes["subject"]))]
    names = [str(g) for g in ds["group"].values]
    order = list(dict.fromkeys(names))
    return [(g, np.array([i for i, n in enumerate(names) if n == g])) for g in order]


def _session_info(ds: xr.Dataset, name: str, s: int, rows: np.ndarray):
    """A session's schedule value (start, length, trigger) for the subjects in `rows` (a group)."""
    v = ds[name].values
    return v[rows[0], s] if v.ndim == 2 else v[s]


def sem(x: np.ndarray) -> float:
    """Standard error of the mean (sample SD / √n); NaN for fewer than 2 values."""
    x = x[np.isfinite(x)]
    return float(np.std(x, ddof=1) / np.sqrt(x.size)) if x.size > 1 else np.nan


def paradigm_summary_table(ds: xr.Dataset) -> pd.DataFrame:
    """One row per session (per group and session where the experiment has groups): its kind and
    trigger, then the median and interquartile range of each per-session measure over the
    subjects (with groups also the mean and its standard error; NaN where it does not apply)."""
    grouped = has_groups(ds)
    rows = []
    for group, members in group_rows(ds) if grouped else [("all", np.arange(ds.sizes["subject"]))]:
        for s in range(ds.sizes["session"]):
            row = {"group": group, "subjects": len(members)} if grouped else {}
            row.update({"session": s + 1, "phase": int(ds.session_phase[s]), "kind": str(ds.session_kind.values[s]),
                        "trigger": str(_session_info(ds, "session_trigger", s, members)),
                        "length_h": float(_session_info(ds, "session_length_min", s, members)) / 60.0})
            for v in SESSION_VARIABLES:
                x = ds[v].values[members, s]
                ok = x[np.isfinite(x)]
                if grouped:
                    row[f"{v}_mean"] = float(np.mean(ok)) if ok.size else np.nan
                    row[f"{v}_sem"] = sem(ok)
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
    if has_groups(ds):
        for ax, panel in zip(axes[0], panels):
            _group_panel(ax, ds, panel, kinds, x)
        fig.tight_layout()
        return fig
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


def _group_panel(ax, ds: xr.Dataset, panel: str, kinds: np.ndarray, x: np.ndarray) -> None:
    """One panel of a between-group experiment: a line (or bar) per group, mean ± SEM."""
    groups = group_rows(ds)
    if panel == "intake":
        sa = np.isin(kinds, ["self_administration", "progressive_ratio"])
        for name, rows in groups:
            v = ds.session_infusions.values[np.ix_(rows, np.nonzero(sa)[0])]
            err = [sem(v[:, j]) for j in range(v.shape[1])]
            ax.errorbar(x[sa], v.mean(axis=0), yerr=err, fmt="o-", ms=3, capsize=2, label=f"{name} (n={len(rows)})")
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # sessions are whole numbers
        ax.set_xlabel("session")
        ax.set_ylabel("infusions per session (mean ± SEM)")
        ax.set_title("Self-administration by group")
        ax.legend(fontsize=8)
        return
    sel = np.nonzero(np.isin(kinds, ["extinction", "reinstatement"]) if panel == "seeking" else kinds == "cpp_test")[0]
    width = 0.8 / len(groups)
    for gi, (name, rows) in enumerate(groups):
        var = ds.session_presses if panel == "seeking" else ds.cpp_score
        v = var.values[np.ix_(rows, sel)]
        pos = np.arange(len(sel)) + (gi - (len(groups) - 1) / 2) * width
        ax.bar(pos, v.mean(axis=0), width=width, yerr=[sem(v[:, j]) for j in range(len(sel))], capsize=2,
               label=f"{name} (n={len(rows)})")
        if panel == "seeking":
            for p_, s in zip(pos, sel):
                if kinds[s] == "reinstatement":
                    ax.annotate(str(_session_info(ds, "session_trigger", s, rows)), (p_, v[:, list(sel).index(s)].mean()),
                                ha="center", va="bottom", fontsize=7)
    ax.set_xticks(np.arange(len(sel)))
    ax.set_xticklabels([str(s + 1) for s in sel] if panel == "seeking" else [f"test {k + 1}" for k in range(len(sel))],
                       fontsize=7)
    if panel == "seeking":
        ax.set_xlabel("session (extinction; reinstatement tests labelled by trigger)")
        ax.set_ylabel("lever presses (mean ± SEM)")
        ax.set_title("Extinction and reinstatement by group")
    else:
        ax.axhline(0, color="k", lw=0.8)
        ax.set_ylabel("time in drug side − other side (s, mean ± SEM)")
        ax.set_title("Conditioned place preference by group")
    ax.legend(fontsize=8)


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
    if has_groups(ds):
        cols = ["group", "subjects", "session", "kind", "trigger", "length_h", "session_infusions_mean",
                "session_infusions_sem", "session_presses_mean", "session_presses_sem", "first_hour_infusions_mean",
                "breakpoint_mean", "cpp_score_mean", "cpp_score_sem"]
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
