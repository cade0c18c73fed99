"""Matplotlib figures for the report: the dose-to-breathing cascade and the other readouts.

Figures are built with :class:`matplotlib.figure.Figure` directly, so no pyplot, no global
figure registry and no GUI backend are involved (safe in threads, servers and tests); PNGs are
rendered by the Agg canvas that ``savefig`` picks for the ``png`` format.

With several subjects each readout is drawn as the cohort median (line) and its 10–90 % band
(shaded); with one subject, just its line.
"""
from __future__ import annotations

import base64
import io
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from opioidsim.report.summary import (
    cohort_bands,
    never_nonzero,
    readout_names,
    time_minutes,
    units_of,
)

__all__ = [
    "CASCADE_READOUTS",
    "TimeAxis",
    "cascade_figure",
    "choose_time_axis",
    "figure_to_data_uri",
    "other_readouts_figure",
]

#: Band cache: readout name -> (3, time) array of 10 %, 50 %, 90 % across subjects.
Bands = MutableMapping[str, np.ndarray]

_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
           "#17becf", "#7f7f7f", "#bcbd22")

_MOR_REGIONS = {"mor_occupancy_vta": "VTA", "mor_occupancy_dorsal_horn": "dorsal horn",
                "mor_occupancy_brainstem": "brainstem"}

# Readouts drawn in the cascade (plasma_* are added dynamically); the rest go to the grid figure.
CASCADE_READOUTS: frozenset[str] = frozenset(
    {*_MOR_REGIONS, "nac_dopamine", "hedonic_state", "pain", "ventilation", "spo2"})

# 0/1 criteria readouts.
_FLAGS: frozenset[str] = frozenset({"overdose", "cardiac_arrest"})

# When plasma peaks differ by more than this factor a linear axis flattens the smaller drug.
_LOG_PEAK_RATIO = 30.0

_PANEL_HEIGHT_IN = 2.15
_FIG_WIDTH_IN = 10.0


@dataclass(frozen=True)
class TimeAxis:
    """Unit used on the shared time axis: minutes for runs up to 3 h, hours beyond."""

    unit: str  # "min" or "h"
    minutes_per_unit: float

    def convert(self, t_min: np.ndarray | float) -> np.ndarray:
        return np.asarray(t_min, dtype=float) / self.minutes_per_unit

    @property
    def label(self) -> str:
        return f"time from scenario start ({self.unit})"


def choose_time_axis(duration_min: float) -> TimeAxis:
    """Minutes if the run lasts ≤ 3 h (dose effects are minute-scale), hours otherwise."""
    return TimeAxis("min", 1.0) if duration_min <= 180.0 else TimeAxis("h", 60.0)


def figure_to_data_uri(fig: Figure, dpi: int = 100) -> str:
    """Render ``fig`` as PNG and return a ``data:image/png;base64,...`` URI."""
    buf = io.BytesIO()
    # No "Software" text chunk: it would carry a URL and bytes nobody reads.
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _bands(ds: xr.Dataset, name: str, cache: Bands) -> np.ndarray:
    if name not in cache:
        cache[name] = cohort_bands(ds, name)
    return cache[name]


def _draw(ax: Axes, x: np.ndarray, band: np.ndarray, label: str, color: str,
          show_band: bool) -> None:
    """Median line plus shaded 10–90 % band (band only for a cohort)."""
    marker = "o" if x.size == 1 else None  # a single record would otherwise be invisible
    ax.plot(x, band[1], color=color, lw=1.6, label=label, marker=marker)
    if show_band:
        ax.fill_between(x, band[0], band[2], color=color, alpha=0.2, lw=0)


def _finish(ax: Axes, title: str, ylabel: str) -> None:
    ax.set_title(title, loc="left", fontsize=10, fontweight="bold")
    ax.set_ylabel(ylabel, fontsize=9)
    ax.grid(True, alpha=0.3, lw=0.6)
    ax.tick_params(labelsize=8)


def _drug_label(name: str) -> str:
    drug = name.split("_", 1)[1]
    return {"6mam": "6-MAM"}.get(drug, drug)


def _peak(band: np.ndarray) -> float:
    finite = band[2][np.isfinite(band[2])]
    return float(finite.max()) if finite.size else float("nan")


def _panel_plasma(ax: Axes, ds: xr.Dataset, x: np.ndarray, names: Sequence[str],
                  cache: Bands, show_band: bool) -> None:
    peaks = []
    for i, name in enumerate(names):
        band = _bands(ds, name, cache)
        _draw(ax, x, band, _drug_label(name), _COLORS[i % len(_COLORS)], show_band)
        peaks.append(_peak(band))
    positive = [p for p in peaks if np.isfinite(p) and p > 0]
    if len(positive) >= 2 and max(positive) / min(positive) > _LOG_PEAK_RATIO:
        # Drugs on very different scales: log axis, down to two decades below the smallest
        # peak (so its decline shows) but never more than five decades below the top one.
        top, low = max(positive), min(positive)
        ax.set_yscale("log")
        ax.set_ylim(max(low * 1e-2, top * 1e-5), top * 2.0)
        scale = "log scale"
    else:
        ax.set_ylim(bottom=0.0)
        scale = "linear"
    units = {units_of(ds, n) for n in names}
    _finish(ax, "Drug in plasma", f"{'/'.join(sorted(units))} ({scale})")


def _panel_lines(ax: Axes, ds: xr.Dataset, x: np.ndarray, labelled: Sequence[tuple[str, str]],
                 cache: Bands, show_band: bool, title: str, ylabel: str,
                 color_offset: int = 0) -> None:
    for i, (name, label) in enumerate(labelled):
        color = _COLORS[(i + color_offset) % len(_COLORS)]
        _draw(ax, x, _bands(ds, name, cache), label, color, show_band)
    _finish(ax, title, ylabel)


def _breathing_limits(ax: Axes, name: str, band: np.ndarray) -> None:
    """Honest scales: ventilation from zero; SpO2 up to 100 % and down to at least 90 %,
    so a trivial dip of one point does not fill the panel like a dangerous one."""
    finite = band[np.isfinite(band)]
    if finite.size == 0:
        return
    if name == "ventilation":
        ax.set_ylim(0.0, max(float(finite.max()) * 1.08, 1e-9))
    elif name == "spo2":
        ax.set_ylim(min(90.0, float(finite.min()) - 2.0), 100.5)


def _panel_breathing(ax: Axes, ds: xr.Dataset, x: np.ndarray, present: set[str],
                     cache: Bands, show_band: bool) -> Axes | None:
    """Ventilation on the left axis, SpO2 on a twin right axis; returns the twin if made."""
    left: tuple[str, str, str] | None = None
    right: tuple[str, str, str] | None = None
    if "ventilation" in present:
        left = ("ventilation", "ventilation", "#1f77b4")
    if "spo2" in present:
        entry = ("spo2", "SpO2", "#d62728")
        if left is None:
            left = entry
        else:
            right = entry
    assert left is not None
    name, label, color = left
    band = _bands(ds, name, cache)
    _draw(ax, x, band, label, color, show_band)
    _finish(ax, "Breathing", f"{label} ({units_of(ds, name)})")
    ax.yaxis.label.set_color(color)
    _breathing_limits(ax, name, band)
    if right is not None:
        twin = ax.twinx()
        name, label, color = right
        band = _bands(ds, name, cache)
        _draw(twin, x, band, label, color, show_band)
        _breathing_limits(twin, name, band)
        twin.set_ylabel(f"{label} ({units_of(ds, name)})", fontsize=9, color=color)
        twin.tick_params(labelsize=8)
        return twin
    return None


def _mark_doses(axes: Sequence[Axes], dose_x: np.ndarray) -> None:
    """Dotted vertical lines at dose times on every panel (one call per axis, any count)."""
    if dose_x.size == 0:
        return
    for k, ax in enumerate(axes):
        ax.vlines(dose_x, 0, 1, transform=ax.get_xaxis_transform(), colors="0.35",
                  linestyles=":", lw=1.0, label="dose" if k == 0 else None)


def cascade_figure(ds: xr.Dataset, *, dose_times_min: Sequence[float] | np.ndarray = (),
                   bands: Bands | None = None) -> Figure | None:
    """The five-step cascade as stacked panels sharing one time axis, or None if none applies.

    Panels (each drawn only if at least one of its readouts is present): drug in plasma, MOR
    occupancy, NAc dopamine, pleasure, pain, breathing (ventilation and SpO2).
    """
    cache: Bands = {} if bands is None else bands
    t_min = time_minutes(ds)
    if t_min.size == 0:
        return None
    present = set(readout_names(ds))
    show_band = ds.sizes.get("subject", 1) > 1
    axis = choose_time_axis(float(t_min[-1] - t_min[0]))
    x = axis.convert(t_min)

    # Drugs the scenario never gave would only add flat lines at zero.
    plasma = [n for n in readout_names(ds)
              if n.startswith("plasma_") and not never_nonzero(ds, n)]
    mor = [(n, lab) for n, lab in _MOR_REGIONS.items() if n in present]

    # Each panel is a small drawing function; only panels with data are kept, in story order.
    def plasma_panel(ax: Axes) -> None:
        _panel_plasma(ax, ds, x, plasma, cache, show_band)

    def mor_panel(ax: Axes) -> None:
        _panel_lines(ax, ds, x, mor, cache, show_band, "Mu-opioid receptor occupancy",
                     "fraction")
        ax.set_ylim(-0.02, 1.02)

    def dopamine_panel(ax: Axes) -> None:
        _panel_lines(ax, ds, x, [("nac_dopamine", "NAc dopamine")], cache, show_band,
                     "Dopamine in the nucleus accumbens",
                     units_of(ds, "nac_dopamine") or "nM", color_offset=3)

    def hedonic_panel(ax: Axes) -> None:
        ax.axhline(0.0, color="0.5", lw=0.8)  # pleasure above the line, displeasure below
        _panel_lines(ax, ds, x, [("hedonic_state", "hedonic state")], cache, show_band,
                     "Pleasure (hedonic state)", "-10 … +10", color_offset=4)

    def pain_panel(ax: Axes) -> None:
        _panel_lines(ax, ds, x, [("pain", "pain")], cache, show_band, "Pain", "0–10 rating",
                     color_offset=5)
        ax.set_ylim(-0.3, 10.3)

    twins: dict[int, Axes] = {}  # panel axes -> its right-hand twin, for a merged legend

    def breathing_panel(ax: Axes) -> None:
        twin = _panel_breathing(ax, ds, x, present, cache, show_band)
        if twin is not None:
            twins[id(ax)] = twin

    candidates: list[tuple[bool, Callable[[Axes], None]]] = [
        (bool(plasma), plasma_panel),
        (bool(mor), mor_panel),
        ("nac_dopamine" in present, dopamine_panel),
        ("hedonic_state" in present, hedonic_panel),
        ("pain" in present, pain_panel),
        (bool(present & {"ventilation", "spo2"}), breathing_panel),
    ]
    panels = [draw for wanted, draw in candidates if wanted]
    if not panels:
        return None

    height = _PANEL_HEIGHT_IN * len(panels) + 0.6
    fig = Figure(figsize=(_FIG_WIDTH_IN, height))
    # Fixed margins (in inches, converted to figure fractions) instead of constrained layout,
    # whose extra measuring pass doubled the rendering time.
    fig.subplots_adjust(left=0.8 / _FIG_WIDTH_IN, right=1 - 0.75 / _FIG_WIDTH_IN,
                        bottom=0.5 / height, top=1 - 0.3 / height,
                        hspace=0.4)
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, draw in zip(axes, panels):
        draw(ax)
    dose_x = axis.convert(np.atleast_1d(np.asarray(dose_times_min, dtype=float)).ravel())
    _mark_doses(axes, dose_x)
    for ax in axes:
        handles, labels = ax.get_legend_handles_labels()
        twin = twins.get(id(ax))
        if twin is not None:  # one legend for both y axes, on the twin so it is drawn on top
            h2, l2 = twin.get_legend_handles_labels()
            twin.legend(handles + h2, labels + l2, loc="lower right", fontsize=8,
                        framealpha=0.8)
        elif handles:
            ax.legend(loc="upper right", fontsize=8, framealpha=0.8)
    if x.size > 1:
        axes[-1].set_xlim(x[0], x[-1])
    axes[-1].set_xlabel(axis.label, fontsize=9)
    return fig


def other_readouts_figure(ds: xr.Dataset, names: Sequence[str], *,
                          dose_times_min: Sequence[float] | np.ndarray = (),
                          bands: Bands | None = None, ncols: int = 3) -> Figure | None:
    """Small multiples for readouts outside the cascade (one panel each), or None if none."""
    cache: Bands = {} if bands is None else bands
    t_min = time_minutes(ds)
    if not names or t_min.size == 0:
        return None
    show_band = ds.sizes.get("subject", 1) > 1
    axis = choose_time_axis(float(t_min[-1] - t_min[0]))
    x = axis.convert(t_min)
    nrows = -(-len(names) // ncols)
    height = 2.1 * nrows + 0.4
    fig = Figure(figsize=(_FIG_WIDTH_IN, height))
    fig.subplots_adjust(left=0.7 / _FIG_WIDTH_IN, right=1 - 0.2 / _FIG_WIDTH_IN,
                        bottom=0.5 / height, top=1 - 0.3 / height, wspace=0.35, hspace=0.55)
    # Not sharex: a half-empty last row would otherwise leave columns without tick labels.
    grid = fig.subplots(nrows, ncols, squeeze=False)
    dose_x = axis.convert(np.atleast_1d(np.asarray(dose_times_min, dtype=float)).ravel())
    for k, ax in enumerate(grid.ravel()):
        if k >= len(names):
            ax.set_visible(False)
            continue
        name = names[k]
        _draw(ax, x, _bands(ds, name, cache), name, _COLORS[k % len(_COLORS)], show_band)
        if dose_x.size:
            ax.vlines(dose_x, 0, 1, transform=ax.get_xaxis_transform(), colors="0.35",
                      linestyles=":", lw=0.8)
        units = units_of(ds, name)
        ax.set_title(name, loc="left", fontsize=9, fontweight="bold")
        if name in _FLAGS:  # 0/1 criteria: a fixed axis, so "never" reads as a flat 0
            ax.set_ylim(-0.05, 1.05)
            units = "0/1"
        ax.set_ylabel("" if units in ("", "1") else units, fontsize=7)
        ax.grid(True, alpha=0.3, lw=0.6)
        ax.tick_params(labelsize=7)
        if x.size > 1:
            ax.set_xlim(x[0], x[-1])
        if k + ncols >= len(names):  # lowest panel in its column
            ax.set_xlabel(axis.label, fontsize=8)
    return fig
