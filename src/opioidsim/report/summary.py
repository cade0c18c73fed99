"""Cohort statistics over a results Dataset: the summary table and the median / 10–90 % bands.

The Dataset contract (see ``opioidsim.engine``): dims ``subject`` and ``time`` (timedelta64 from
scenario start), one float variable per readout with ``units`` and ``long_name`` attrs. Any subset
of readouts may be present.

Everything here is vectorised over subjects. Arrays are read in blocks (over subjects for the
per-subject statistics, over time for the bands) so that a large, lazily loaded cohort (Zarr /
dask) is never pulled into memory all at once; the loops run over blocks, never over subjects.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from os import PathLike
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr

from opioidsim.readouts import READOUTS

__all__ = [
    "MIN_READOUTS",
    "SUMMARY_COLUMNS",
    "cohort_bands",
    "ever_fraction",
    "is_drug_series",
    "nan_quantiles",
    "never_nonzero",
    "peak_kind",
    "readout_names",
    "subject_time",
    "summary_table",
    "time_minutes",
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


def cohort_bands(ds: xr.Dataset, name: str) -> np.ndarray:
    """The 10 %, 50 % and 90 % quantiles across subjects at each time: shape (3, time)."""
    da = subject_time(ds[name])
    if da is None:
        raise ValueError(f"{name!r} is not a (subject, time) variable")
    n_subj, n_time = da.shape
    if n_subj == 1:  # one subject: its own curve, no band
        line = np.asarray(da.values, dtype=float)[0]
        return np.stack([line, line, line])
    out = np.empty((len(_BAND_QUANTILES), n_time))
    cols = max(1, _BLOCK_ELEMENTS // max(n_subj, 1))
    for start in range(0, n_time, cols):  # blocks over time: each needs every subject
        block = np.asarray(da.isel(time=slice(start, start + cols)).values, dtype=float)
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


def write_summary_csv(ds: xr.Dataset, path: str | PathLike[str]) -> None:
    """Write :func:`summary_table` to ``path`` as CSV (no index column)."""
    summary_table(ds).to_csv(path, index=False)
