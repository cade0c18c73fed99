"""Numbers as the statistical reports print them (the trial and imaging-study reports share these)."""
from __future__ import annotations

import math

__all__ = ["fixed", "p_value"]


def fixed(v: float | None, digits: int = 2) -> str:
    """A number with a fixed count of decimals; an en dash for a missing or non-finite one."""
    return "–" if v is None or not math.isfinite(float(v)) else f"{float(v):.{digits}f}"


def p_value(p: float | None) -> str:
    """A p value as journals print it: three decimals, '< 0.001' below that."""
    if p is None or not math.isfinite(float(p)):
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"
