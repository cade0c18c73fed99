"""Observed data for a calibration: a CSV of readouts over time, per subject or per group.

The format (one row per observation, "long"):

    subject,time [h],readout,value
    A,0.5,plasma_morphine,31.2
    A,1,plasma_morphine,22.9

- a time column whose header carries its unit: ``time [h]``, ``time (min)`` or ``time_h``
  (any time unit opioidsim reads: s, min, h, d, ...); times count from the scenario's start;
- either ``readout`` and ``value`` columns, or one column per readout named after it ("wide";
  an empty cell is a missing observation);
- optional ``subject`` *or* ``group``: each subject is fitted on its own; a group's rows are
  pooled and fitted with one shared set of parameters. Neither: all rows are one group;
- optional ``sd`` (long form only): the measurement's standard deviation, > 0; the fit then
  weights each residual by 1/sd² and the standard errors use these sds as known;
- optional ``unit`` (long form only): the value's unit, converted to the readout's unit.

Values are in the readout's unit (see ``opioidsim.readouts.READOUTS``) unless a ``unit`` column says
otherwise. Every problem is a `CalibrationDataError` naming the file, the column, the line and
what is allowed.
"""
from __future__ import annotations

import csv
import math
import os
import re
from dataclasses import dataclass

import numpy as np

from ..readouts import READOUTS
from ..units import UnitError, parse_quantity, ureg

__all__ = ["CalibrationDataError", "Observations", "read_observations"]

_TIME_HEADER = re.compile(r"^time\s*(?:\[\s*([^\]]+?)\s*\]|\(\s*([^)]+?)\s*\)|_([A-Za-z]+))$", re.IGNORECASE)
_OPTIONAL = ("subject", "group", "sd", "unit")


class CalibrationDataError(ValueError):
    """A data file that cannot be used as written (one line: file, column, line, what is allowed)."""


@dataclass(frozen=True)
class Observations:
    """Observations in internal units, one entry per data point (all arrays of the same length).

    `fit_units` are the labels of the independent fits (subject ids, group names, or ``("all",)``);
    `unit_index[i]` says which one observation i belongs to."""

    source: str
    kind: str  # "subject", "group" or "all"
    fit_units: tuple[str, ...]
    unit_index: np.ndarray  # int
    time_min: np.ndarray
    readout: tuple[str, ...]  # per observation
    value: np.ndarray  # in the readout's unit
    sd: np.ndarray | None  # measurement sd in the readout's unit, or None (unweighted)
    line: np.ndarray  # the CSV line of each observation (header = line 1), for messages

    @property
    def readouts(self) -> tuple[str, ...]:
        """The distinct readouts observed, in first-seen order."""
        return tuple(dict.fromkeys(self.readout))

    def __len__(self) -> int:
        return len(self.value)


def _number(text: str, path: str, column: str, line: int, what: str = "a number") -> float:
    try:
        x = float(text)
    except ValueError:
        raise CalibrationDataError(f"{path}: column '{column}', line {line}: {text!r} is not {what}") from None
    if not math.isfinite(x):
        raise CalibrationDataError(f"{path}: column '{column}', line {line}: {text!r} is not {what} "
                                   "(a finite number is needed)")
    return x


def _time_unit(header: str, path: str) -> float:
    """Minutes per unit of the time column named `header`."""
    m = _TIME_HEADER.match(header.strip())
    unit = next(g for g in m.groups() if g)
    try:
        return parse_quantity(f"1 {unit}", "time")
    except UnitError:
        raise CalibrationDataError(f"{path}: column '{header}': {unit!r} is not a time unit; write the time "
                                   "column as 'time [h]', 'time [min]', 'time_s', ...") from None


def _unit_factor(unit: str, readout: str, path: str, line: int) -> float:
    """Factor converting a value in `unit` to the readout's own unit."""
    target = READOUTS[readout].units
    if unit == target:
        return 1.0
    try:
        return float(ureg.Quantity(1.0, unit).to(target).magnitude)
    except Exception:  # pint raises several kinds; all mean "cannot convert"
        raise CalibrationDataError(f"{path}: column 'unit', line {line}: {unit!r} cannot be converted to "
                                   f"{readout}'s unit {target!r}") from None


def read_observations(path: str | os.PathLike) -> Observations:
    """Read and check a calibration data file (see the module docstring for the format)."""
    name = os.fspath(path)
    try:
        with open(name, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise CalibrationDataError(f"{name}: cannot read the data file ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise CalibrationDataError(f"{name}: not a text (UTF-8) CSV file") from None
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise CalibrationDataError(f"{name}: the file is empty; it needs a header line such as "
                                   "'subject,time [h],readout,value'")
    header = [c.strip() for c in rows[0]]
    for i, c in enumerate(header):
        if header.index(c) != i:
            raise CalibrationDataError(f"{name}: column '{c}' appears twice in the header")
    time_cols = [c for c in header if _TIME_HEADER.match(c)]
    if not time_cols:
        bare = " (it needs its unit: 'time [h]', 'time [min]', 'time_s')" if "time" in (c.lower() for c in header) else ""
        raise CalibrationDataError(f"{name}: missing column 'time [UNIT]'{bare}; the header is {','.join(header)}")
    if len(time_cols) > 1:
        raise CalibrationDataError(f"{name}: two time columns ({', '.join(time_cols)}); give one")
    time_col = time_cols[0]
    minutes_per_unit = _time_unit(time_col, name)
    long_form = "readout" in header or "value" in header
    allowed = {time_col, *_OPTIONAL}
    if long_form:
        for c in ("readout", "value"):
            if c not in header:
                raise CalibrationDataError(f"{name}: missing column '{c}' (a file with a "
                                           f"'{'value' if c == 'readout' else 'readout'}' column needs both "
                                           "'readout' and 'value')")
        allowed |= {"readout", "value"}
        wide_cols: list[str] = []
    else:
        wide_cols = [c for c in header if c not in allowed]
        if not wide_cols:
            raise CalibrationDataError(f"{name}: missing column 'readout' and 'value' (or one column per "
                                       "readout, named after it, e.g. 'plasma_morphine')")
        for c in ("sd", "unit"):
            if c in header:
                raise CalibrationDataError(f"{name}: column '{c}' is only allowed with 'readout' and "
                                           "'value' columns (one observation per line)")
    for c in header:
        if c not in allowed and c not in wide_cols:
            raise CalibrationDataError(f"{name}: unknown column '{c}'; allowed: {time_col}, readout, value, "
                                       "subject or group, sd, unit")
        if c in wide_cols and c not in READOUTS:
            raise CalibrationDataError(f"{name}: column '{c}' is not a readout (columns other than time, "
                                       "subject/group are readouts, e.g. plasma_morphine; see READOUTS)")
    if "subject" in header and "group" in header:
        raise CalibrationDataError(f"{name}: columns 'subject' and 'group' both given; give 'subject' to fit "
                                   "each subject on its own or 'group' to fit one parameter set per group")
    unit_col = "subject" if "subject" in header else "group" if "group" in header else None
    col = {c: i for i, c in enumerate(header)}

    labels: dict[str, int] = {}
    unit_idx, times, readouts, values, sds, lines = [], [], [], [], [], []
    for ln, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # blank line
        if len(row) != len(header):
            raise CalibrationDataError(f"{name}: line {ln} has {len(row)} fields, the header has {len(header)}")
        cell = {c: row[i].strip() for c, i in col.items()}
        label = "all"
        if unit_col:
            label = cell[unit_col]
            if not label:
                raise CalibrationDataError(f"{name}: column '{unit_col}', line {ln}: empty; every line needs "
                                           f"a {unit_col} name")
        t = _number(cell[time_col], name, time_col, ln) * minutes_per_unit
        if t < 0:
            raise CalibrationDataError(f"{name}: column '{time_col}', line {ln}: {cell[time_col]} is negative; "
                                       "times count from the scenario's start (≥ 0)")
        if long_form:
            r = cell["readout"]
            if r not in READOUTS:
                near = [k for k in READOUTS if r and (r in k or k in r)][:4]
                hint = f" (did you mean {', '.join(near)}?)" if near else ""
                raise CalibrationDataError(f"{name}: column 'readout', line {ln}: {r!r} is not a readout{hint}; "
                                           "allowed: the names in opioidsim.readouts.READOUTS")
            v = _number(cell["value"], name, "value", ln)
            if "unit" in col and cell["unit"]:
                v *= _unit_factor(cell["unit"], r, name, ln)
            sd = math.nan
            if "sd" in col:
                sd = _number(cell["sd"], name, "sd", ln, "a number > 0")
                if sd <= 0:
                    raise CalibrationDataError(f"{name}: column 'sd', line {ln}: {cell['sd']} must be > 0")
                if "unit" in col and cell["unit"]:
                    sd *= _unit_factor(cell["unit"], r, name, ln)
            pairs = [(r, v, sd)]
        else:
            pairs = [(c, _number(cell[c], name, c, ln), math.nan) for c in wide_cols if cell[c]]
        for r, v, sd in pairs:
            unit_idx.append(labels.setdefault(label, len(labels)))
            times.append(t)
            readouts.append(r)
            values.append(v)
            sds.append(sd)
            lines.append(ln)
    if not values:
        raise CalibrationDataError(f"{name}: no observations (the file has a header but no data lines)")
    return Observations(source=name, kind=unit_col or "all", fit_units=tuple(labels),
                        unit_index=np.asarray(unit_idx, dtype=np.int64), time_min=np.asarray(times, dtype=float),
                        readout=tuple(readouts), value=np.asarray(values, dtype=float),
                        sd=np.asarray(sds, dtype=float) if "sd" in col else None,
                        line=np.asarray(lines, dtype=np.int64))


def observations_from_arrays(time_min, readout, value, *, unit=None, sd=None, source: str = "<arrays>",
                             kind: str | None = None) -> Observations:
    """Observations built in Python (times in minutes, values in the readout's unit).

    `unit` (per observation: a subject id or group name, or None for one group) and `kind`
    ("subject" or "group") say how the rows are fitted."""
    n = len(value)
    readout = (readout,) * n if isinstance(readout, str) else tuple(readout)
    for r in readout:
        if r not in READOUTS:
            raise CalibrationDataError(f"{source}: {r!r} is not a readout; allowed: the names in "
                                       "opioidsim.readouts.READOUTS")
    labels = ["all"] * n if unit is None else [str(u) for u in unit]
    index: dict[str, int] = {}
    idx = np.array([index.setdefault(u, len(index)) for u in labels], dtype=np.int64)
    t = np.asarray(time_min, dtype=float)
    v = np.asarray(value, dtype=float)
    if not (len(t) == len(readout) == n == len(labels)) or n == 0:
        raise CalibrationDataError(f"{source}: time, readout, value (and unit) need the same, non-zero length")
    if not (np.isfinite(t).all() and np.isfinite(v).all()) or (t < 0).any():
        raise CalibrationDataError(f"{source}: times must be finite and ≥ 0, values finite")
    s = None if sd is None else np.asarray(sd, dtype=float)
    if s is not None and not (s > 0).all():
        raise CalibrationDataError(f"{source}: every sd must be > 0")
    return Observations(source=source, kind=kind or ("all" if unit is None else "subject"), fit_units=tuple(index),
                        unit_index=idx, time_min=t, readout=readout, value=v, sd=s,
                        line=np.arange(2, n + 2, dtype=np.int64))
