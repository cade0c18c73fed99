"""A study page's figures as JSON: lines, grouped bars and tables the browser draws as they are.

The time-course pages describe panels of readouts; a study page (the animal lab, the trial)
computes its own numbers (sessions × infusions, Kaplan–Meier curves, effect estimates) and hands
the browser these plain descriptions. Numbers are rounded to 4 significant digits; NaN and
infinity become null (drawn as a gap, shown as "–").
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Optional, Sequence

import numpy as np

__all__ = ["num", "nums", "spread", "series", "lines", "bars", "table"]


def num(x: Any, digits: int = 4) -> Optional[float]:
    """A number for JSON: ``digits`` significant digits; None for NaN, infinity or no number."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return float(f"{v:.{digits}g}") if math.isfinite(v) else None


def nums(values: Any, digits: int = 4) -> list[Optional[float]]:
    return [num(v, digits) for v in np.asarray(values, dtype=float).ravel()]


def spread(values: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(25th percentile, median, 75th percentile) over the first axis (subjects), NaN ignored;
    NaN where every subject is NaN."""
    x = np.asarray(values, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column
        lo, mid, hi = np.nanpercentile(x, (25, 50, 75), axis=0)
    return lo, mid, hi


def series(label: str, x: Sequence[float], median: Sequence[float], lo: Optional[Sequence[float]] = None,
           hi: Optional[Sequence[float]] = None, key: str = "", color: Optional[int] = None,
           dashed: bool = False) -> dict[str, Any]:
    """One line: y (``median``) over ``x``, with an optional band from ``lo`` to ``hi``; ``color``
    picks the palette entry (default: the line's place), ``dashed`` draws it dashed."""
    out: dict[str, Any] = {"label": label, "key": key or label, "x": nums(x), "median": nums(median),
                           "color": color, "dashed": dashed}
    if lo is not None and hi is not None:
        out["lo"], out["hi"] = nums(lo), nums(hi)
    return out


def lines(fig_id: str, title: str, x_label: str, y_label: str, items: list[dict[str, Any]], *,
          step: bool = False, y_range: Optional[tuple[float, float]] = None, help: str = "",
          x_whole: bool = False) -> dict[str, Any]:
    """A line figure; ``step`` draws each line as a staircase (a Kaplan–Meier curve); ``x_whole``
    labels only whole numbers on the x axis (sessions, weeks)."""
    return {"type": "lines", "id": fig_id, "title": title, "help": help, "x_label": x_label, "y_label": y_label,
            "series": items, "step": step, "y_range": list(y_range) if y_range else None, "x_whole": x_whole}


def bars(fig_id: str, title: str, y_label: str, categories: list[str], items: list[dict[str, Any]],
         help: str = "") -> dict[str, Any]:
    """Grouped bars: one group per category, one bar per item (``{label, values, lo, hi}``, one
    value per category; lo/hi draw a whisker)."""
    return {"type": "bars", "id": fig_id, "title": title, "help": help, "y_label": y_label,
            "categories": list(categories), "series": items}


def bar_series(label: str, values: Sequence[float], lo: Optional[Sequence[float]] = None,
               hi: Optional[Sequence[float]] = None) -> dict[str, Any]:
    out: dict[str, Any] = {"label": label, "values": nums(values)}
    if lo is not None and hi is not None:
        out["lo"], out["hi"] = nums(lo), nums(hi)
    return out


def table(fig_id: str, title: str, columns: list[str], rows: list[list[Any]], keys: Optional[list[str]] = None,
          help: str = "") -> dict[str, Any]:
    """A table of text and numbers (numbers are drawn with 3 significant digits)."""
    clean = [[num(c) if isinstance(c, (float, np.floating)) else (int(c) if isinstance(c, (np.integer,)) else c)
              for c in row] for row in rows]
    return {"type": "table", "id": fig_id, "title": title, "help": help, "columns": list(columns), "rows": clean,
            "keys": list(keys) if keys is not None else [str(r[0]) for r in rows]}
