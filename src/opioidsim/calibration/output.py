"""A calibration's results folder: parameters.csv, residuals.csv, fit.svg (data and fitted curves), run.json.

The folder is built under a temporary name next to it and renamed into place when every file is
written, so a folder with the final name is always complete; an existing folder is never touched.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..io.checkpoint import atomic_write_text
from ..readouts import READOUTS
from .fit import CalibrationError, CalibrationResult

__all__ = ["write_calibration", "fit_figure_svg"]


def fit_figure_svg(result: CalibrationResult) -> str:
    """Observed data (points) and fitted curves (lines), one panel per readout, one colour per fit unit."""
    from matplotlib.figure import Figure

    obs = result.observations
    names = result.curve_readouts
    hours = result.curve_times_min is not None and result.curve_times_min[-1] > 180.0
    scale, label = (60.0, "h") if hours else (1.0, "min")
    fig = Figure(figsize=(6.4, 2.8 * len(names)), layout="constrained")
    axes = fig.subplots(len(names), 1, squeeze=False)[:, 0]
    colours = [f"C{i % 10}" for i in range(len(result.fit_units))]
    for ax, name in zip(axes, names):
        for u, fit in enumerate(result.fit_units):
            rows = (obs.unit_index == u) & (np.asarray(obs.readout) == name)
            if not rows.any():
                continue
            ax.plot(obs.time_min[rows] / scale, obs.value[rows], "o", ms=3, color=colours[u],
                    label=f"{fit} data" if len(result.fit_units) > 1 else "data")
            if result.curves is not None:
                ax.plot(result.curve_times_min / scale, result.curves[:, u, names.index(name)], "-",
                        color=colours[u], lw=1.2, label=f"{fit} fit" if len(result.fit_units) > 1 else "fit")
        if result.log_scale:
            ax.set_yscale("log")
        ax.set_ylabel(f"{name} ({READOUTS[name].units})")
        ax.set_xlabel(f"time from scenario start ({label})")
        if len(result.fit_units) <= 8:
            ax.legend(fontsize=7)
    axes[0].set_title("calibration: data and fitted model (research and teaching only)", fontsize=9)
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def write_calibration(result: CalibrationResult, out: str | os.PathLike, *, info: dict | None = None) -> Path:
    """Write the results folder `out` (which must not exist yet); returns its path."""
    out = Path(out)
    if out.exists():
        raise CalibrationError(f"results folder '{out}' already exists; choose another --out or remove it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".incomplete", dir=out.parent))
    try:
        atomic_write_text(tmp / "parameters.csv", result.parameters_csv())
        atomic_write_text(tmp / "residuals.csv", result.residuals_csv())
        atomic_write_text(tmp / "fit.svg", fit_figure_svg(result))
        run = {"method": result.method, "log_scale": result.log_scale, "iterations": result.iterations,
               "converged": result.converged, "loss_history": result.loss_history,
               "parameters": list(result.parameters), "fit_units": list(result.fit_units), "kind": result.kind,
               "data": result.observations.source, **(info or {}),
               "research_notice": "opioidsim is a research and teaching tool, never a dosing guide."}
        atomic_write_text(tmp / "run.json", json.dumps(run, indent=2) + "\n")
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
