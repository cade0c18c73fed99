"""Matplotlib figures for the report: the dose-to-breathing cascade, the other readouts and, for
runs of days to years, the chronic panels (tolerance, withdrawal, dopamine adaptation, the
pleasure–pain balance, craving, grey matter and cognition); and the effect-size figure of a
synthetic imaging study (opioidsim.imaging).

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
    COWS_BANDS,
    TOLERANCE_REGIONS,
    cohort_bands,
    last_dose_before_washout,
    never_nonzero,
    readout_names,
    subject_time,
    time_minutes,
    units_of,
)

__all__ = [
    "BALANCE_READOUTS",
    "CASCADE_READOUTS",
    "BRAIN_MIN_CHANGE",
    "CHRONIC_MIN_DAYS",
    "COGNITION_READOUTS",
    "CRAVING_READOUTS",
    "DOPAMINE_ADAPTATION_READOUTS",
    "GREY_MATTER_READOUTS",
    "TOLERANCE_READOUTS",
    "WITHDRAWAL_READOUTS",
    "TimeAxis",
    "balance_figure",
    "cascade_figure",
    "choose_brain_axis",
    "choose_chronic_axis",
    "choose_time_axis",
    "cognition_figure",
    "craving_figure",
    "dopamine_adaptation_figure",
    "effect_size_figure",
    "figure_to_data_uri",
    "grey_matter_figure",
    "other_readouts_figure",
    "tolerance_figure",
    "withdrawal_figure",
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


# ------------------------------------------------------------------------------------------
# chronic panels (runs of days to years)

#: Chronic panels are drawn only for runs at least this long.
CHRONIC_MIN_DAYS = 2.0
_MIN_PER_DAY = 1440.0
_DAYS_PER_MONTH = 30.44
# Up to this many days the chronic axes count days, beyond it months.
_MONTHS_AFTER_DAYS = 120.0
# The zoom after the last dose: from a day before it to three weeks after.
_ZOOM_BEFORE_DAYS = 1.0
_ZOOM_AFTER_DAYS = 21.0

TOLERANCE_READOUTS: tuple[str, ...] = tuple(TOLERANCE_REGIONS)
_LC_READOUTS: tuple[tuple[str, str], ...] = (("noradrenaline", "LC noradrenaline"),
                                              ("camp_lc", "LC cAMP"))
WITHDRAWAL_READOUTS: tuple[str, ...] = ("cows", *(n for n, _ in _LC_READOUTS))
_DA_ADAPTATION: tuple[tuple[str, str], ...] = (("d2_density", "D2 receptor density"),
                                               ("da_stores", "dopamine stores"),
                                               ("pet_d2_bp", "PET D2 binding potential"),
                                               ("dat_density", "dopamine transporter"),
                                               ("natural_reward_response", "response to a natural reward"))
DOPAMINE_ADAPTATION_READOUTS: tuple[str, ...] = tuple(n for n, _ in _DA_ADAPTATION)
_BALANCE_LINES: tuple[tuple[str, str], ...] = (
    ("hedonic_state", "felt state (a − b)"),
    ("opponent_process", "opponent process (b)"),
    ("hedonic_set_point", "set point (no drug on board)"))
BALANCE_READOUTS: tuple[str, ...] = (*(n for n, _ in _BALANCE_LINES), "reward_threshold")
_CRAVING_LINES: tuple[tuple[str, str], ...] = (("craving", "background craving"),
                                               ("cue_craving", "craving a drug cue would provoke"))
CRAVING_READOUTS: tuple[str, ...] = (*(n for n, _ in _CRAVING_LINES), "glt1")

_COWS_MAX = 48.0
_COWS_COLORS = ("#fff3bf", "#ffd8a8", "#ffa8a8", "#e599f7")
_TOLERANCE_COLORS = {"mor_capacity_vta": "#9467bd", "mor_capacity_dorsal_horn": "#2ca02c",
                     "mor_capacity_brainstem": "#1f77b4"}
_MIN_CAPACITY = 1e-3  # 1 / capacity is drawn at most 1000-fold


def choose_chronic_axis(duration_min: float) -> TimeAxis:
    """Days for runs up to 120 days, months (30.44 days) beyond."""
    if duration_min / _MIN_PER_DAY <= _MONTHS_AFTER_DAYS:
        return TimeAxis("days", _MIN_PER_DAY)
    return TimeAxis("months", _MIN_PER_DAY * _DAYS_PER_MONTH)


def _chronic_setup(ds: xr.Dataset, names: Sequence[str], axis: TimeAxis | None = None
                   ) -> tuple[list[str], np.ndarray, bool, TimeAxis, np.ndarray] | None:
    """(readouts present, time in min, show band, time axis, x) if a chronic panel applies, else
    None. The axis defaults to days or months by the run's length."""
    t_min = time_minutes(ds)
    present = set(readout_names(ds))
    wanted = [n for n in names if n in present]
    if not wanted or t_min.size == 0:
        return None
    if float(t_min[-1] - t_min[0]) < CHRONIC_MIN_DAYS * _MIN_PER_DAY:
        return None
    axis = axis or choose_chronic_axis(float(t_min[-1] - t_min[0]))
    return wanted, t_min, ds.sizes.get("subject", 1) > 1, axis, axis.convert(t_min)


def _mark_last_dose(axes: Sequence[Axes], x_last: float | None) -> None:
    """One dashed line at the last dose (every dose of a months-long run would be a smear)."""
    if x_last is None or not np.isfinite(x_last):
        return
    for k, ax in enumerate(axes):
        ax.axvline(x_last, color="0.3", ls="--", lw=1.0, label="last dose" if k == 0 else None)


def _last_dose_x(dose_times_min: Sequence[float] | np.ndarray, axis: TimeAxis) -> float | None:
    times = np.atleast_1d(np.asarray(dose_times_min, dtype=float)).ravel()
    times = times[np.isfinite(times)]
    return float(axis.convert(times.max())) if times.size else None


def _chronic_figure(groups: Sequence[int], *, heights: Sequence[float] | None = None
                    ) -> tuple[Figure, list[Axes]]:
    """Stacked panels in groups: the panels of a group share one x axis (labelled on its
    lowest panel); groups get their own x axis and extra room between them."""
    n_panels = sum(groups)
    ratios = list(heights) if heights is not None else [1.0] * n_panels
    # A lone panel is taller, so that its y label (up to ~50 characters) fits beside it.
    panel_in = _PANEL_HEIGHT_IN * (1.55 if n_panels == 1 else 1.15)
    rows: list[float] = []
    slots: list[int] = []  # grid row of each panel
    first_of_group: list[bool] = []
    last_of_group: list[bool] = []
    k = 0
    for g, size in enumerate(groups):
        if g > 0:
            rows.append(0.15)  # spacer: room for the x label of the group above
        for i in range(size):
            slots.append(len(rows))
            rows.append(ratios[k])
            first_of_group.append(i == 0)
            last_of_group.append(i == size - 1)
            k += 1
    height = panel_in * sum(rows) + 0.75
    fig = Figure(figsize=(_FIG_WIDTH_IN, height))
    fig.subplots_adjust(left=0.8 / _FIG_WIDTH_IN, right=1 - 0.75 / _FIG_WIDTH_IN,
                        bottom=0.55 / height, top=1 - 0.3 / height, hspace=0.3)
    spec = fig.add_gridspec(len(rows), 1, height_ratios=rows)
    axes: list[Axes] = []
    lead: Axes | None = None
    for row, first, last in zip(slots, first_of_group, last_of_group):
        ax = fig.add_subplot(spec[row, 0], sharex=None if first else lead)
        if first:
            lead = ax
        if not last:
            ax.tick_params(labelbottom=False)
        axes.append(ax)
    return fig, axes


def _close_chronic_axes(axes: Sequence[Axes], dose_times_min: Sequence[float] | np.ndarray, axis: TimeAxis,
                        x: np.ndarray, legend_loc: str = "upper right") -> None:
    """What every chronic figure ends with: the last-dose line, legends, x-limits, the time label."""
    _mark_last_dose(axes, _last_dose_x(dose_times_min, axis))
    for ax in axes:
        _legend(ax, loc=legend_loc)
        _set_xlim(ax, x)
    axes[-1].set_xlabel(axis.label, fontsize=9)


def _legend(ax: Axes, loc: str = "upper right") -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc=loc, fontsize=8, framealpha=0.85)


def _set_xlim(ax: Axes, x: np.ndarray) -> None:
    if x.size > 1:
        ax.set_xlim(x[0], x[-1])


def tolerance_figure(ds: xr.Dataset, *, dose_times_min: Sequence[float] | np.ndarray = (),
                     bands: Bands | None = None) -> Figure | None:
    """Tolerance per region as the fold shift of the equi-effective dose, ≈ 1 / capacity.

    One panel: VTA (euphoria), dorsal horn (analgesia), brainstem (breathing), each where its
    ``mor_capacity_*`` readout is present. None for runs under two days or without any of them.
    1 / capacity is exact for a full agonist where spare receptors make up the loss (the
    brainstem's reserve, model/receptor.py) and a low-dose estimate without receptor reserve (VTA,
    dorsal horn), where larger doses need more than that.
    """
    setup = _chronic_setup(ds, TOLERANCE_READOUTS)
    if setup is None:
        return None
    names, t_min, show_band, axis, x = setup
    cache: Bands = {} if bands is None else bands
    fig, (ax,) = _chronic_figure([1])
    ax.axhline(1.0, color="0.5", lw=0.8)  # drug-naive: the same dose, the same effect
    top = 1.0
    for name in names:
        key = f"fold_shift:{name}"
        if key not in cache:
            cache[key] = cohort_bands(
                ds, name, lambda c: 1.0 / np.maximum(c, _MIN_CAPACITY))
        band = cache[key]
        region, effect = TOLERANCE_REGIONS[name]
        _draw(ax, x, band, f"{effect} ({region})", _TOLERANCE_COLORS[name], show_band)
        finite = band[np.isfinite(band)]
        if finite.size:
            top = max(top, float(finite.max()))
    ax.set_ylim(0.0, top * 1.08)
    _finish(ax, "Tolerance: how much more drug the same effect needs",
            "fold shift in equi-effective dose (≈ 1/capacity)")
    _close_chronic_axes([ax], dose_times_min, axis, x, legend_loc="best")
    return fig


def _cows_backdrop(ax: Axes) -> None:
    """The Wesson & Ling bands as shaded horizontal spans, labelled at the left edge."""
    for (name, lo, hi), color in zip(COWS_BANDS, _COWS_COLORS):
        top = min(hi + 0.5, _COWS_MAX)
        ax.axhspan(lo - 0.5, top, color=color, alpha=0.55, lw=0, zorder=0)
        label = f"{name} ({lo}–{hi})" if hi < _COWS_MAX else f"{name} (> {lo - 1})"
        ax.text(0.005, (lo - 0.5 + top) / 2, label, transform=ax.get_yaxis_transform(),
                va="center", ha="left", fontsize=7, color="0.25", zorder=1)
    ax.set_ylim(0.0, _COWS_MAX)


def _draw_lc(ax: Axes, x: np.ndarray, lc: Sequence[tuple[str, str]], bands: Sequence[np.ndarray],
             show_band: bool) -> None:
    for i, ((_, label), band) in enumerate(zip(lc, bands)):
        _draw(ax, x, band, label, _COLORS[(i + 3) % len(_COLORS)], show_band)


def withdrawal_figure(ds: xr.Dataset, *, dose_times_min: Sequence[float] | np.ndarray = (),
                      bands: Bands | None = None) -> Figure | None:
    """The course of withdrawal over days: COWS with its severity bands (Wesson & Ling 2003),
    LC noradrenaline and cAMP; and, when the run goes on at least three days after the last
    dose, a zoom from a day before the last dose to 21 days after (x: days since that dose).

    None for runs under two days or when neither ``cows`` nor the LC readouts are recorded.
    """
    # withdrawal runs on a scale of days
    setup = _chronic_setup(ds, WITHDRAWAL_READOUTS, TimeAxis("days", _MIN_PER_DAY))
    if setup is None:
        return None
    names, t_min, show_band, axis, x = setup
    cache: Bands = {} if bands is None else bands
    has_cows = "cows" in names
    lc = [(n, lab) for n, lab in _LC_READOUTS if n in names]
    lc_bands = [_bands(ds, n, cache) for n, _ in lc]
    cows = _bands(ds, "cows", cache) if has_cows else None

    last_dose_min = last_dose_before_washout(dose_times_min, float(t_min[-1]))
    zoom: np.ndarray | None = None
    if last_dose_min is not None and np.isfinite(last_dose_min):
        zoom = ((t_min >= last_dose_min - _ZOOM_BEFORE_DAYS * _MIN_PER_DAY)
                & (t_min <= last_dose_min + _ZOOM_AFTER_DAYS * _MIN_PER_DAY))
        if zoom.sum() < 2:
            zoom = None
    n_main = int(has_cows) + int(bool(lc))
    groups = [n_main, n_main] if zoom is not None else [n_main]
    fig, axes = _chronic_figure(groups)

    def cows_panel(ax: Axes, xs: np.ndarray, band: np.ndarray, title: str) -> None:
        _cows_backdrop(ax)
        _draw(ax, xs, band, "COWS", "#c92a2a", show_band)
        _finish(ax, title, "COWS score (0–48)")

    def lc_panel(ax: Axes, xs: np.ndarray, lc_b: Sequence[np.ndarray], title: str) -> None:
        ax.axhline(1.0, color="0.5", lw=0.8)  # the naive level
        _draw_lc(ax, xs, lc, lc_b, show_band)
        _finish(ax, title, "relative to naive (1 = naive)")

    main_axes = axes[:n_main]
    k = 0
    if cows is not None:
        cows_panel(axes[k], x, cows, "Withdrawal severity (Clinical Opiate Withdrawal Scale)")
        k += 1
    if lc:
        lc_panel(axes[k], x, lc_bands, "Locus coeruleus: the withdrawal alarm")
        k += 1
    _mark_last_dose(main_axes, _last_dose_x(dose_times_min, axis))
    for ax in main_axes:
        _legend(ax)
        _set_xlim(ax, x)
    main_axes[-1].set_xlabel("time from scenario start (days)", fontsize=9)

    if zoom is not None:
        assert last_dose_min is not None
        zoom_axes = axes[n_main:]
        xz = (t_min[zoom] - last_dose_min) / _MIN_PER_DAY
        if cows is not None:
            cows_panel(axes[k], xz, cows[:, zoom], "After the last dose: withdrawal severity")
            k += 1
        if lc:
            lc_panel(axes[k], xz, [b[:, zoom] for b in lc_bands],
                     "After the last dose: locus coeruleus")
        _mark_last_dose(zoom_axes, 0.0)
        for ax in zoom_axes:
            _legend(ax)
            _set_xlim(ax, xz)
        zoom_axes[-1].set_xlabel("days since the last dose", fontsize=9)
    return fig


def _percent_of_first(block: np.ndarray, first: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 100.0 * block / first[:, None]
    return np.where(first[:, None] > 0, out, np.nan)  # no baseline to compare with


def dopamine_adaptation_figure(ds: xr.Dataset, *,
                               dose_times_min: Sequence[float] | np.ndarray = (),
                               bands: Bands | None = None) -> Figure | None:
    """D2 receptor density, dopamine stores, PET D2 binding potential, DAT and the response to a
    natural reward (anhedonia) as % of each subject's first record, over days (runs ≤ 120 days) or months. None for runs under two days or
    without any of these readouts."""
    setup = _chronic_setup(ds, DOPAMINE_ADAPTATION_READOUTS)
    if setup is None:
        return None
    names, t_min, show_band, axis, x = setup
    cache: Bands = {} if bands is None else bands
    fig, (ax,) = _chronic_figure([1])
    ax.axhline(100.0, color="0.5", lw=0.8)
    labels = dict(_DA_ADAPTATION)
    for i, name in enumerate(names):
        key = f"percent_of_first:{name}"
        if key not in cache:
            da = subject_time(ds[name])
            assert da is not None
            first = np.asarray(da.isel(time=0).values, dtype=float).ravel()
            cache[key] = cohort_bands(ds, name, lambda b, f=first: _percent_of_first(b, f))
        _draw(ax, x, cache[key], labels[name], _COLORS[(i + 2) % len(_COLORS)], show_band)
    _finish(ax, "Dopamine system adaptation", "% of the subject's first record")
    _close_chronic_axes([ax], dose_times_min, axis, x, legend_loc="best")
    return fig


def balance_figure(ds: xr.Dataset, *, dose_times_min: Sequence[float] | np.ndarray = (),
                   bands: Bands | None = None) -> Figure | None:
    """The pleasure–pain balance: felt state, opponent (b) process and hedonic set point with a
    zero line; below it, the ICSS reward threshold (% of naive). None for runs under two days
    or without any of these readouts."""
    setup = _chronic_setup(ds, BALANCE_READOUTS)
    if setup is None:
        return None
    names, t_min, show_band, axis, x = setup
    cache: Bands = {} if bands is None else bands
    lines = [(n, lab) for n, lab in _BALANCE_LINES if n in names]
    threshold = "reward_threshold" in names
    n_panels = int(bool(lines)) + int(threshold)
    fig, axes = _chronic_figure([n_panels],
                                heights=[1.3, 1.0][:n_panels] if lines else None)
    k = 0
    colors = {"hedonic_state": "#ff7f0e", "opponent_process": "#7f7f7f",
              "hedonic_set_point": "#d62728"}
    if lines:
        ax = axes[k]
        ax.axhline(0.0, color="0.2", lw=1.0)  # above: pleasure; below: tipped toward pain
        for name, label in lines:
            _draw(ax, x, _bands(ds, name, cache), label, colors[name], show_band)
        _finish(ax, "Pleasure–pain balance", "pleasure (+) / displeasure (−)")
        k += 1
    if threshold:
        ax = axes[k]
        ax.axhline(100.0, color="0.5", lw=0.8)  # naive threshold
        _draw(ax, x, _bands(ds, "reward_threshold", cache), "reward threshold", "#8c564b",
              show_band)
        _finish(ax, "Reward threshold (brain stimulation, ICSS)",
                f"{units_of(ds, 'reward_threshold') or '%'} of naive")
    _close_chronic_axes(axes, dose_times_min, axis, x)
    return fig


def craving_figure(ds: xr.Dataset, *, dose_times_min: Sequence[float] | np.ndarray = (),
                   bands: Bands | None = None) -> Figure | None:
    """Background craving and the craving a cue test would provoke (0-10), and below them NAc
    GLT-1 (% of naive). None for runs under two days or without any of these readouts."""
    setup = _chronic_setup(ds, CRAVING_READOUTS)
    if setup is None:
        return None
    names, t_min, show_band, axis, x = setup
    cache: Bands = {} if bands is None else bands
    lines = [(n, lab) for n, lab in _CRAVING_LINES if n in names]
    glt1 = "glt1" in names
    n_panels = int(bool(lines)) + int(glt1)
    fig, axes = _chronic_figure([n_panels], heights=[1.3, 1.0][:n_panels] if lines else None)
    k = 0
    if lines:
        ax = axes[k]
        for (name, label), color in zip(lines, ("#9467bd", "#d62728")):
            _draw(ax, x, _bands(ds, name, cache), label, color, show_band)
        _finish(ax, "Craving", "0–10 (VAS)")
        k += 1
    if glt1:
        ax = axes[k]
        ax.axhline(100.0, color="0.5", lw=0.8)
        if "percent:glt1" not in cache:
            cache["percent:glt1"] = 100.0 * _bands(ds, "glt1", cache)
        _draw(ax, x, cache["percent:glt1"], "GLT-1", "#2ca02c", show_band)
        _finish(ax, "Glutamate transport in the nucleus accumbens (GLT-1)", "% of naive")
    _close_chronic_axes(axes, dose_times_min, axis, x)
    return fig


# ------------------------------------------------------------------------------------------
# brain damage and cognition (issue 6): slow readouts, fractions of the subject's own baseline

_GMV_LINES: tuple[tuple[str, str], ...] = (("gmv_pfc", "prefrontal cortex"),
                                           ("gmv_acc", "anterior cingulate"),
                                           ("gmv_temporal", "temporal cortex"),
                                           ("gmv_insula", "insula"),
                                           ("gmv_nac", "nucleus accumbens"),
                                           ("gmv_fusiform", "fusiform cortex"))
GREY_MATTER_READOUTS: tuple[str, ...] = (*(n for n, _ in _GMV_LINES), "white_matter")
_COGNITION_LINES: tuple[tuple[str, str], ...] = (("executive", "executive function"),
                                                 ("memory", "working memory"),
                                                 ("memory_verbal", "verbal working memory"),
                                                 ("memory_spatial", "spatial working memory"),
                                                 ("attention", "attention"),
                                                 ("pfc_control", "PFC control of choice"))
COGNITION_READOUTS: tuple[str, ...] = tuple(n for n, _ in _COGNITION_LINES)
#: The brain panels are drawn only when a cohort median of one of their readouts (fractions of
#: the subject's own baseline) moves at least this far over the run: grey matter changes by
#: about half a percent a month early in daily use, so a run of days shows only flat lines at 100 %.
BRAIN_MIN_CHANGE = 1e-3
# Beyond this many days the brain panels count years.
_YEARS_AFTER_DAYS = 730.0
_DAYS_PER_YEAR = 365.25
# The y axes of the brain panels reach down at least this far (in % of baseline), so that a loss
# of a fraction of a percent does not fill the panel like a large one.
_GMV_FLOOR = 90.0
_COGNITION_FLOOR = 80.0
_GMV_COLORS = ("#d62728", "#ff7f0e", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b")
#: Region labels for study tables whose measures are named vbm_<region> or gmv_<region>.
REGION_LABELS: dict[str, str] = {n[4:]: label for n, label in _GMV_LINES}


def choose_brain_axis(duration_min: float) -> TimeAxis:
    """Years for runs over two years (life courses), else days or months as the chronic panels."""
    if duration_min / _MIN_PER_DAY > _YEARS_AFTER_DAYS:
        return TimeAxis("years", _MIN_PER_DAY * _DAYS_PER_YEAR)
    return choose_chronic_axis(duration_min)


def _percent_band(ds: xr.Dataset, name: str, cache: Bands) -> np.ndarray:
    key = f"percent:{name}"
    if key not in cache:
        cache[key] = 100.0 * _bands(ds, name, cache)
    return cache[key]


def _moves(band: np.ndarray) -> bool:
    """Whether the median line (in %) spans at least BRAIN_MIN_CHANGE of the baseline."""
    median = band[1][np.isfinite(band[1])]
    return median.size > 1 and float(median.max() - median.min()) >= 100.0 * BRAIN_MIN_CHANGE


def _percent_limits(ax: Axes, bands: Sequence[np.ndarray], floor: float) -> None:
    finite = np.concatenate([b[np.isfinite(b)] for b in bands]) if bands else np.zeros(0)
    if finite.size:
        ax.set_ylim(min(floor, float(finite.min()) - 1.0), max(100.5, float(finite.max()) + 0.5))


def _brain_setup(ds: xr.Dataset, names: Sequence[str], cache: Bands
                 ) -> tuple[list[str], bool, TimeAxis, np.ndarray] | None:
    setup = _chronic_setup(ds, names)
    if setup is None:
        return None
    present, t_min, show_band, _, _ = setup
    if not any(_moves(_percent_band(ds, n, cache)) for n in present):
        return None
    axis = choose_brain_axis(float(t_min[-1] - t_min[0]))
    return present, show_band, axis, axis.convert(t_min)


def grey_matter_figure(ds: xr.Dataset, *, dose_times_min: Sequence[float] | np.ndarray = (),
                       bands: Bands | None = None) -> Figure | None:
    """Regional grey matter (``gmv_<region>``) and, dotted, white-matter integrity as % of the
    subject's own baseline, over days, months or years. None for runs under two days, without
    a ``gmv_<region>`` readout, or when no cohort median of the panel moves by BRAIN_MIN_CHANGE
    (0.1 % of baseline) over the run."""
    cache: Bands = {} if bands is None else bands
    if not any(n in ds for n, _ in _GMV_LINES):
        return None
    setup = _brain_setup(ds, GREY_MATTER_READOUTS, cache)
    if setup is None:
        return None
    names, show_band, axis, x = setup
    fig, (ax,) = _chronic_figure([1])
    ax.axhline(100.0, color="0.5", lw=0.8)  # the drug-naive brain
    drawn = []
    for k, ((name, label), color) in enumerate(zip(_GMV_LINES, _GMV_COLORS)):
        if name in names:
            band = _percent_band(ds, name, cache)
            _draw(ax, x, band, label, color, show_band)
            if k % 2:  # regions of equal weight overlap: every other one dashed, so both show
                ax.get_lines()[-1].set_linestyle((0, (5, 3)))
            drawn.append(band)
    if "white_matter" in names:
        band = _percent_band(ds, "white_matter", cache)
        ax.plot(x, band[1], color="0.25", lw=1.4, ls=":", label="white matter (FA)")
        drawn.append(band)
    _percent_limits(ax, drawn, _GMV_FLOOR)
    _finish(ax, "Grey matter by region", "% of the subject's own baseline")
    _close_chronic_axes([ax], dose_times_min, axis, x, legend_loc="lower left")
    return fig


def cognition_figure(ds: xr.Dataset, *, dose_times_min: Sequence[float] | np.ndarray = (),
                     bands: Bands | None = None) -> Figure | None:
    """Executive function, working memory, attention and prefrontal control of choice as % of
    the subject's drug-naive level. None for runs under two days, without these readouts, or
    when none of their cohort medians moves by BRAIN_MIN_CHANGE over the run."""
    cache: Bands = {} if bands is None else bands
    setup = _brain_setup(ds, COGNITION_READOUTS, cache)
    if setup is None:
        return None
    names, show_band, axis, x = setup
    fig, (ax,) = _chronic_figure([1])
    ax.axhline(100.0, color="0.5", lw=0.8)
    drawn = []
    for i, (name, label) in enumerate(_COGNITION_LINES):
        if name not in names or (name == "memory" and {"memory_verbal", "memory_spatial"} & set(names)):
            continue  # the mean of the two working-memory domains only where they are not recorded
        band = _percent_band(ds, name, cache)
        if name == "pfc_control":  # dashed: in this model it is the executive domain itself
            ax.plot(x, band[1], color="0.2", lw=1.3, ls="--", label=label)
        else:
            _draw(ax, x, band, label, _COLORS[(i + 6) % len(_COLORS)], show_band)
            if name in ("attention", "memory_spatial"):  # lie close to other lines: dashed, so all show
                ax.get_lines()[-1].set_linestyle((0, (5, 3)))
        drawn.append(band)
    _percent_limits(ax, drawn, _COGNITION_FLOOR)
    _finish(ax, "Cognition", "% of the subject's drug-naive level")
    _close_chronic_axes([ax], dose_times_min, axis, x, legend_loc="lower left")
    return fig


# ------------------------------------------------------------------------------------------
# synthetic imaging studies (opioidsim.imaging)

def _measure_label(measure: str) -> str:
    prefix, _, region = measure.partition("_")
    if prefix in ("vbm", "gmv") and region in REGION_LABELS:
        return REGION_LABELS[region]
    return measure


def effect_size_figure(table, *, title: str | None = None) -> Figure:
    """A study's group differences as a figure: one horizontal bar per measure (region) with its
    Hedges' g (users − controls; negative: lower in users) and, where the table has them
    (``g_ci_low``, ``g_ci_high``), 95 % confidence whiskers; t and p are written beside each bar.

    ``table`` is ``cross_sectional_study(...).table`` or ``compare_groups(...)``; a
    ``longitudinal_study`` table (with ``abstinent_days``) gives one bar per region and scan,
    grouped by region, coloured by the time since the last use.
    """
    required = {"measure", "hedges_g"}
    if not required <= set(table.columns):
        raise ValueError(f"an effect-size table needs the columns {sorted(required)}; got {list(table.columns)}")
    measures = list(dict.fromkeys(table["measure"]))
    scans = list(dict.fromkeys(table["abstinent_days"])) if "abstinent_days" in table.columns else [None]
    n_m, n_s = len(measures), len(scans)
    height = 0.8 + max(n_m * (0.45 + 0.22 * (n_s - 1)), 1.2)
    fig = Figure(figsize=(8.0, height))
    fig.subplots_adjust(left=1.9 / 8.0, right=1 - 2.3 / 8.0, bottom=0.55 / height, top=1 - 0.4 / height)
    ax = fig.add_subplot(1, 1, 1)
    ax.axvline(0.0, color="0.2", lw=1.0)
    width = 0.8 / n_s
    lo_all, hi_all = [0.0], [0.0]
    for k, scan in enumerate(scans):
        rows = table if scan is None else table[table["abstinent_days"] == scan]
        rows = rows.set_index("measure").reindex(measures)
        g = rows["hedges_g"].to_numpy(dtype=float)
        y = np.arange(n_m) - 0.4 + width * (k + 0.5)
        if scan is None:
            colors = ["#1f77b4" if v < 0 else "#d62728" for v in g]
            label = None
        else:
            shade = 0.25 + 0.6 * (k / max(n_s - 1, 1))
            colors = [(0.12 * shade, 0.47 * shade + 0.2, 0.71 * shade + 0.25)] * n_m
            label = f"day {scan:g} of abstinence"
        ax.barh(y, g, height=width * 0.9, color=colors, label=label)
        if {"g_ci_low", "g_ci_high"} <= set(rows.columns):
            lo, hi = rows["g_ci_low"].to_numpy(dtype=float), rows["g_ci_high"].to_numpy(dtype=float)
            ax.errorbar(g, y, xerr=np.vstack([g - lo, hi - g]), fmt="none", ecolor="0.15", elinewidth=1.0,
                        capsize=2.5)
            lo_all += list(lo[np.isfinite(lo)])
            hi_all += list(hi[np.isfinite(hi)])
        lo_all += list(g[np.isfinite(g)])
        hi_all += list(g[np.isfinite(g)])
        if scan is None:  # the statistics beside each bar, right of the plot
            for yi, (_, r) in zip(y, rows.iterrows()):
                text = f"g = {r['hedges_g']:.2f}"
                if "t" in rows.columns and np.isfinite(r["t"]):
                    text += f", t = {r['t']:.1f}"
                if "p" in rows.columns and np.isfinite(r["p"]):
                    text += f", p = {r['p']:.2g}"
                ax.text(1.02, yi, text, transform=ax.get_yaxis_transform(), va="center", fontsize=8)
    span = max(hi_all) - min(lo_all)
    ax.set_xlim(min(lo_all) - 0.08 * span - 0.05, max(hi_all) + 0.08 * span + 0.05)
    ax.set_yticks(np.arange(n_m), [_measure_label(m) for m in measures])
    ax.invert_yaxis()  # the table's first measure on top
    ax.grid(True, axis="x", alpha=0.3, lw=0.6)
    ax.tick_params(labelsize=8)
    who = ""
    if {"n_users", "n_controls"} <= set(table.columns):
        who = f" ({int(table['n_users'].iloc[0])} users vs {int(table['n_controls'].iloc[0])} controls)"
    ax.set_xlabel("Hedges' g, users − controls (negative: lower in users)"
                  + (", 95 % CI" if "g_ci_low" in table.columns else ""), fontsize=9)
    ax.set_title(title or "Group differences" + who, loc="left", fontsize=10, fontweight="bold")
    if n_s > 1:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, framealpha=0.85)
    return fig
