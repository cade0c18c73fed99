"""Cohort statistics over a results Dataset: the summary table and the median / 10–90 % bands.

The Dataset contract (see ``opioidsim.engine``): dims ``subject`` and ``time`` (timedelta64 from
scenario start), one float variable per readout with ``units`` and ``long_name`` attrs. Any subset
of readouts may be present.

Everything here is vectorised over subjects. Arrays are read in blocks (over subjects for the
per-subject statistics, over time for the bands) so that a large, lazily loaded cohort (Zarr /
dask) is never pulled into memory all at once; the loops run over blocks, never over subjects.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from os import PathLike
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr

from opioidsim.model.withdrawal import COWS_BANDS
from opioidsim.model.withdrawal import cows_band as model_cows_band
from opioidsim.readouts import READOUTS

__all__ = [
    "COWS_BANDS",
    "MIN_READOUTS",
    "SUMMARY_COLUMNS",
    "TOLERANCE_REGIONS",
    "ExtremeSummary",
    "cohort_bands",
    "cows_band",
    "ever_fraction",
    "is_drug_series",
    "last_dose_before_washout",
    "nan_quantiles",
    "never_nonzero",
    "peak_kind",
    "readout_names",
    "subject_time",
    "summary_table",
    "time_minutes",
    "tolerance_fold_shifts",
    "withdrawal_peak",
    "write_summary_csv",
]
#: Readouts whose clinically interesting extreme is the minimum (a dip is the danger).
# Readouts that opioids push *down*: their notable value is the nadir, not the peak.
MIN_READOUTS: frozenset[str] = frozenset({"spo2", "ventilation", "pao2", "pain", "substance_p", "vta_gaba_activity"})

SUMMARY_COLUMNS: tuple[str, ...] = (
    "readout", "units", "kind", "baseline_median", "peak_median", "peak_p10", "peak_p90",
    "time_of_peak_median_min", "final_median",
)

# Elements per block read from a variable (~128 MB of float64): bounds memory for big cohorts
# while keeping in-memory cohorts of ordinary size in a single block.
_BLOCK_ELEMENTS = 1 << 24

_BAND_QUANTILES = (0.1, 0.5, 0.9)


def peak_kind(name: str) -> Literal["max", "min"]:
    """Which extreme summarises a readout: ``"min"`` for SpO2, ventilation and PaO2."""
    return "min" if name in MIN_READOUTS else "max"


def time_minutes(ds: xr.Dataset) -> np.ndarray:
    """The time coordinate in minutes from scenario start, as float64.

    Accepts timedelta64 (the contract) and, leniently, a plain numeric coordinate (taken as
    minutes) or no coordinate at all (record index).
    """
    if "time" not in ds.dims:
        return np.zeros(0)
    if "time" not in ds.coords:
        return np.arange(ds.sizes["time"], dtype=float)
    values = np.asarray(ds["time"].values)
    if values.dtype.kind == "m":
        return values.astype("timedelta64[ns]").astype(np.int64) / 60e9
    return values.astype(float)


def subject_time(da: xr.DataArray) -> xr.DataArray | None:
    """``da`` with dims exactly ``(subject, time)``, or None if it is not a numeric time series.

    A variable over time only is treated as one subject, so odd inputs still get a report.
    """
    if da.dtype.kind not in "fiub" or "time" not in da.dims:
        return None
    if set(da.dims) == {"time"}:
        return da.expand_dims("subject", 0)
    if set(da.dims) != {"subject", "time"}:
        return None
    return da.transpose("subject", "time")


def readout_names(ds: xr.Dataset) -> list[str]:
    """The (subject, time) variables of ``ds``: known readouts in contract order, then the rest."""
    usable = [str(n) for n in ds.data_vars if subject_time(ds[n]) is not None]
    known = [n for n in READOUTS if n in usable]
    return known + sorted(n for n in usable if n not in READOUTS)


def units_of(ds: xr.Dataset, name: str) -> str:
    """The variable's ``units`` attr, else the contract's, else empty."""
    units = ds[name].attrs.get("units")
    if units is None and name in READOUTS:
        units = READOUTS[name].units
    return "" if units is None else str(units)


def long_name_of(ds: xr.Dataset, name: str) -> str:
    """The variable's ``long_name`` attr, else the contract's, else its name."""
    long_name = ds[name].attrs.get("long_name")
    if long_name is None and name in READOUTS:
        long_name = READOUTS[name].long_name
    return name if long_name is None else str(long_name)


def is_drug_series(name: str) -> bool:
    """A drug concentration readout (plasma_* or brain_*)."""
    return name.startswith(("plasma_", "brain_"))


def never_nonzero(ds: xr.Dataset, name: str) -> bool:
    """True if ``name`` is zero (or NaN) for every subject at every time: a drug never given."""
    return not bool((ds[name].fillna(0.0) != 0).any())


def nan_quantiles(a: np.ndarray, qs: float | Sequence[float], axis: int = 0) -> np.ndarray:
    """Quantiles of ``a`` along ``axis`` ignoring NaN, same 'linear' rule as ``np.quantile``.

    Returns shape ``(len(qs),) + a.shape without axis``; all-NaN slices give NaN (no warning).
    ``np.nanquantile`` loops in Python over every slice for multi-dimensional input, which is far
    too slow for a (subjects × thousands of time points) array; this sorts once instead.
    """
    arr = np.asarray(a, dtype=float)
    q = np.atleast_1d(np.asarray(qs, dtype=float))
    if arr.shape[axis] > 0 and not np.isnan(arr).any():
        return np.quantile(arr, q, axis=axis)
    arr = np.moveaxis(arr, axis, 0)
    if arr.shape[0] == 0:
        return np.full((q.size,) + arr.shape[1:], np.nan)
    ordered = np.sort(arr, axis=0)  # NaN sorts last, so the first n entries are the valid ones
    n = np.sum(~np.isnan(arr), axis=0)
    out = np.full((q.size,) + arr.shape[1:], np.nan)
    for i, qi in enumerate(q):  # a handful of quantiles, each vectorised over all slices
        pos = qi * np.maximum(n - 1, 0)
        lo = np.floor(pos).astype(np.intp)
        hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
        v_lo = np.take_along_axis(ordered, lo[None], axis=0)[0]
        v_hi = np.take_along_axis(ordered, hi[None], axis=0)[0]
        frac = pos - lo
        val = np.where(frac > 0, v_lo + frac * (v_hi - v_lo), v_lo)
        out[i] = np.where(n > 0, val, np.nan)
    return out


def _median(x: np.ndarray) -> float:
    return float(nan_quantiles(x, 0.5)[0]) if x.size else float("nan")


def _subject_blocks(da: xr.DataArray) -> Iterable[np.ndarray]:
    """Float blocks of whole time series, a bounded number of subjects at a time."""
    n_subj, n_time = da.shape
    rows = max(1, _BLOCK_ELEMENTS // max(n_time, 1))
    for start in range(0, n_subj, rows):
        yield np.asarray(da.isel(subject=slice(start, start + rows)).values, dtype=float)


def cohort_bands(ds: xr.Dataset, name: str,
                 transform: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """The 10 %, 50 % and 90 % quantiles across subjects at each time: shape (3, time).

    ``transform``, if given, maps each (subject, time-block) array before the quantiles are
    taken (e.g. 1 / capacity, or % of each subject's baseline): the bands of a derived quantity
    without ever holding the whole derived array. It must act column by column (every block
    holds all subjects).
    """
    da = subject_time(ds[name])
    if da is None:
        raise ValueError(f"{name!r} is not a (subject, time) variable")
    n_subj, n_time = da.shape
    if n_subj == 1:  # one subject: its own curve, no band
        line = np.asarray(da.values, dtype=float)
        if transform is not None:
            line = np.asarray(transform(line), dtype=float)
        return np.stack([line[0], line[0], line[0]])
    out = np.empty((len(_BAND_QUANTILES), n_time))
    cols = max(1, _BLOCK_ELEMENTS // max(n_subj, 1))
    for start in range(0, n_time, cols):  # blocks over time: each needs every subject
        block = np.asarray(da.isel(time=slice(start, start + cols)).values, dtype=float)
        if transform is not None:
            block = np.asarray(transform(block), dtype=float)
        out[:, start:start + block.shape[1]] = nan_quantiles(block, _BAND_QUANTILES, axis=0)
    return out


def ever_fraction(ds: xr.Dataset, name: str, threshold: float = 0.5) -> float | None:
    """Fraction of subjects whose 0/1 flag ``name`` is ever ≥ ``threshold``; None if absent."""
    if name not in ds.data_vars:
        return None
    da = subject_time(ds[name])
    if da is None or da.shape[0] == 0:
        return None
    hits = 0
    for block in _subject_blocks(da):
        hits += int(np.any(np.nan_to_num(block, nan=0.0) >= threshold, axis=1).sum())
    return hits / da.shape[0]


def _per_subject(da: xr.DataArray, t_min: np.ndarray, kind: str
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per subject: baseline (first point), extreme value, its time (min) and final value."""
    n_subj, n_time = da.shape
    base, peak, t_peak, final = (np.full(n_subj, np.nan) for _ in range(4))
    if n_time == 0:
        return base, peak, t_peak, final
    fill = -np.inf if kind == "max" else np.inf
    start = 0
    for block in _subject_blocks(da):
        rows = slice(start, start + block.shape[0])
        base[rows], final[rows] = block[:, 0], block[:, -1]
        filled = np.where(np.isnan(block), fill, block)  # NaN never wins the argmax/argmin
        idx = filled.argmax(axis=1) if kind == "max" else filled.argmin(axis=1)
        val = np.take_along_axis(block, idx[:, None], axis=1)[:, 0]
        valid = ~np.isnan(val)  # False only where the whole series is NaN
        peak[rows] = np.where(valid, val, np.nan)
        t_peak[rows] = np.where(valid, t_min[idx], np.nan)
        start += block.shape[0]
    return base, peak, t_peak, final


def summary_table(ds: xr.Dataset) -> pd.DataFrame:
    """One row per readout present: baseline, peak (or nadir), its spread and time, final value.

    Columns: ``readout, units, kind, baseline_median, peak_median, peak_p10, peak_p90,
    time_of_peak_median_min, final_median``. ``kind`` is ``"min"`` for SpO2, ventilation and
    PaO2 (the nadir matters) and ``"max"`` otherwise. Baseline is the first time point, final the
    last; medians and quantiles are across subjects; times are minutes from scenario start.
    """
    t_min = time_minutes(ds)
    rows: list[dict[str, object]] = []
    for name in readout_names(ds):
        da = subject_time(ds[name])
        assert da is not None  # readout_names only lists (subject, time) variables
        kind = peak_kind(name)
        base, peak, t_peak, final = _per_subject(da, t_min, kind)
        p10, p50, p90 = nan_quantiles(peak, _BAND_QUANTILES)  # NaN for an empty cohort
        rows.append({
            "readout": name,
            "units": units_of(ds, name),
            "kind": kind,
            "baseline_median": _median(base),
            "peak_median": float(p50),
            "peak_p10": float(p10),
            "peak_p90": float(p90),
            "time_of_peak_median_min": _median(t_peak),
            "final_median": _median(final),
        })
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


# ------------------------------------------------------------------------------------------
# chronic runs: withdrawal severity and tolerance

#: Clinical Opiate Withdrawal Scale bands (Wesson DR & Ling W 2003 J Psychoactive Drugs 35:253):
#: (name, lowest score, highest score). The scale sums integer item scores; the model's score is
#: continuous, so a score is put in the band of its nearest integer (edges at ..., 12.5, 24.5, ...).
_COWS_NONE = "no active withdrawal"

#: MOR signalling-capacity readouts and the effect each region carries.
TOLERANCE_REGIONS: dict[str, tuple[str, str]] = {
    "mor_capacity_vta": ("VTA", "euphoria"),
    "mor_capacity_dorsal_horn": ("dorsal horn", "analgesia"),
    "mor_capacity_brainstem": ("brainstem", "breathing"),
}

# Below this capacity 1 / capacity is reported as "more than 1 / _MIN_CAPACITY-fold".
_MIN_CAPACITY = 1e-3


def cows_band(score: float) -> str:
    """The Wesson & Ling band of a COWS score for display (the model's `cows_band`, with "none"
    spelled out as "no active withdrawal")."""
    band = model_cows_band(score)
    return _COWS_NONE if band == "none" else band


def last_dose_before_washout(dose_times_min: Sequence[float] | np.ndarray, end_min: float,
                             min_gap_days: float = 3.0) -> float | None:
    """The last dose time (min) if at least ``min_gap_days`` without doses follow it before
    ``end_min``; otherwise (or with no doses) None.

    Only dose times are known here, not which drug: the last dose of any drug counts.
    """
    times = np.asarray(dose_times_min, dtype=float).ravel()
    times = times[np.isfinite(times)]
    if times.size == 0:
        return None
    last = float(times.max())
    return last if end_min - last >= min_gap_days * 1440.0 else None


@dataclass(frozen=True)
class ExtremeSummary:
    """One readout's per-subject extreme: median and 10–90 % across subjects, and when."""

    median: float
    p10: float
    p90: float
    time_median_min: float  # median over subjects of the time of their extreme


def _extreme_summary(ds: xr.Dataset, name: str, kind: str) -> ExtremeSummary | None:
    if name not in ds.data_vars:
        return None
    da = subject_time(ds[name])
    if da is None or da.shape[0] == 0 or da.shape[1] == 0:
        return None
    _, peak, t_peak, _ = _per_subject(da, time_minutes(ds), kind)
    p10, p50, p90 = nan_quantiles(peak, _BAND_QUANTILES)
    return ExtremeSummary(float(p50), float(p10), float(p90), _median(t_peak))


def withdrawal_peak(ds: xr.Dataset, after_min: float | None = None) -> ExtremeSummary | None:
    """Peak COWS score per subject, summarised across subjects (times from scenario start).

    Over the whole run, or only over records at or after ``after_min`` (e.g. the last dose).
    None if ``cows`` is not recorded or no record is left. Use :func:`cows_band` on
    ``median`` for the band name.
    """
    if "cows" not in ds.data_vars:
        return None
    if after_min is None:
        return _extreme_summary(ds, "cows", "max")
    keep = np.flatnonzero(time_minutes(ds) >= after_min)
    if keep.size == 0:
        return None
    return _extreme_summary(ds[["cows"]].isel(time=slice(int(keep[0]), None)), "cows", "max")


def tolerance_fold_shifts(ds: xr.Dataset) -> dict[str, ExtremeSummary]:
    """Per region present: the largest fold shift in equi-effective dose, ≈ 1 / capacity.

    For each subject the largest 1 / capacity over the run (its lowest capacity), then the
    median and 10–90 % across subjects; time is when that lowest capacity was reached. A
    capacity at or below 0.001 counts as 0.001 (a 1000-fold shift). The 1 / capacity rule is exact
    for a full agonist with a full receptor reserve (the brainstem) and a low-dose estimate without
    receptor reserve (VTA, dorsal horn).
    """
    out: dict[str, ExtremeSummary] = {}
    t_min = time_minutes(ds)
    for name in TOLERANCE_REGIONS:
        if name not in ds.data_vars:
            continue
        da = subject_time(ds[name])
        if da is None or da.shape[0] == 0 or da.shape[1] == 0:
            continue
        _, lowest, t_low, _ = _per_subject(da, t_min, "min")
        with np.errstate(divide="ignore", invalid="ignore"):
            fold = 1.0 / np.maximum(lowest, _MIN_CAPACITY)  # NaN (failed subject) stays NaN
        p10, p50, p90 = nan_quantiles(fold, _BAND_QUANTILES)
        out[name] = ExtremeSummary(float(p50), float(p10), float(p90), _median(t_low))
    return out


def write_summary_csv(ds: xr.Dataset, path: str | PathLike[str]) -> None:
    """Write :func:`summary_table` to ``path`` as CSV (no index column)."""
    summary_table(ds).to_csv(path, index=False)
