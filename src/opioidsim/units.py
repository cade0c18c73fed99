"""Units: parsed and checked once (pint), then converted to the one fixed internal system.

Internal units: time in minutes, amounts in mg, volumes in L, concentrations in ng/mL (plasma)
or nM (receptor), pressures in mmHg, flows in L/min; fractions are dimensionless.
"""
from __future__ import annotations

import re
from functools import lru_cache

import pint

# One registry for the whole package (pint requires quantities from the same registry).
ureg = pint.UnitRegistry()
ureg.define("breath = 1 = breaths")

INTERNAL_UNITS: dict[str, str] = {
    "time": "minute",
    "mass": "milligram",
    "volume": "liter",
    "flow": "liter / minute",
    "rate": "1 / minute",
    "pressure": "mmHg",
    "mass_concentration": "nanogram / milliliter",
    "molar_concentration": "nanomolar",
    "dimensionless": "dimensionless",
}

# Human-facing words for error messages.
KIND_EXAMPLES: dict[str, str] = {
    "time": '"30s", "90min", "12h", "14d", "2y"',
    "mass": '"10 mg", "250 ug", "0.4 mg"',
}


class UnitError(ValueError):
    """A quantity string that can't be read or has the wrong dimension."""


# Two or more "number unit" parts, e.g. "6d18h" or "1h 30min": summed, as a clock reading would be.
_COMPOUND = re.compile(r"^(?:\s*\d+(?:\.\d+)?\s*[A-Za-z]+)+\s*$")
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([A-Za-z]+)")


@lru_cache(maxsize=4096)
def _parse(text: str) -> pint.Quantity:
    parts = _PART.findall(text) if _COMPOUND.match(text) else []
    if len(parts) < 2 or any(unit in ("e", "E") for _, unit in parts):  # "1e3h" is one number
        return _parse_one(text, text)
    total = _parse_one(f"{parts[0][0]}{parts[0][1]}", text)
    for num, unit in parts[1:]:
        q = _parse_one(f"{num}{unit}", text)
        try:
            total = total + q
        except pint.DimensionalityError as exc:
            raise UnitError(f"{text!r} mixes units of different kinds ({total.units:~} and {q.units:~})") from exc
    return total


def _parse_one(part: str, text: str) -> pint.Quantity:
    t = part.strip()
    # Accept compact forms like "12h", "30s", "2y", "14d", "10mg".
    aliases = {"y": "year", "yr": "year", "d": "day", "h": "hour", "min": "minute", "s": "second",
               "w": "week", "wk": "week", "ug": "microgram", "mcg": "microgram"}
    num = ""
    i = 0
    while i < len(t) and (t[i].isdigit() or t[i] in ".+-eE" and not t[i:].strip().isalpha()):
        # stop at an 'e' that begins a unit word rather than an exponent
        if t[i] in "eE" and (i + 1 >= len(t) or not (t[i + 1].isdigit() or t[i + 1] in "+-")):
            break
        num += t[i]
        i += 1
    unit = t[i:].strip()
    if not num or not unit:
        raise UnitError(f"{text!r} is not a number followed by a unit")
    unit = aliases.get(unit, unit)
    try:
        value = float(num)
        return ureg.Quantity(value, unit)
    except Exception as exc:  # pint raises several kinds; all mean "can't read it"
        raise UnitError(f"{text!r} has a unit pint does not know ({unit!r})") from exc


def parse_quantity(text: str | float | int, kind: str) -> float:
    """Parse e.g. "12h" as kind "time" and return it in internal units (here: minutes)."""
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise UnitError(f"expected a quantity with a unit such as {KIND_EXAMPLES.get(kind, '')}, got {text!r}")
    if isinstance(text, (int, float)):
        raise UnitError(f"{text!r} has no unit; write it with one, e.g. {KIND_EXAMPLES.get(kind, '')}")
    q = _parse(text)
    target = INTERNAL_UNITS[kind]
    try:
        return float(q.to(target).magnitude)
    except pint.DimensionalityError as exc:
        raise UnitError(
            f"{text!r} is not a {kind} (it is in {q.units:~}); use e.g. {KIND_EXAMPLES.get(kind, target)}"
        ) from exc


def convert(value: float, unit: str, kind: str) -> float:
    """Convert a parameter value given in `unit` to the internal unit of `kind` (build-time only)."""
    q = ureg.Quantity(value, unit)
    try:
        return float(q.to(INTERNAL_UNITS[kind]).magnitude)
    except pint.DimensionalityError as exc:
        raise UnitError(f"unit {unit!r} is not a {kind} unit") from exc


def to_internal(value: float, unit: str) -> float:
    """Convert to the internal unit of whatever dimension `unit` has (build-time check)."""
    return float(ureg.Quantity(value, unit).to(internal_unit(unit)).magnitude)


@lru_cache(maxsize=None)
def internal_unit(unit: str) -> str:
    """The internal unit (pint spelling) of whatever dimension `unit` has: the unit `to_internal`
    converts to. Exporters (SBML) declare it next to the internal value. Cached: a unit's parse
    took most of the time of building a cohort's parameters (0.1 s a run, for ~300 parameters)."""
    q = ureg.Quantity(1.0, unit)
    for target in INTERNAL_UNITS.values():
        if q.dimensionality == ureg.Quantity(1.0, target).dimensionality:
            return target
    # Compound units (e.g. 1/(nM*min)) are expressed in base internal units directly.
    return _compound_target(q)


def _compound_target(q: pint.Quantity) -> str:
    # Replace each base dimension by its internal unit.
    dims = q.dimensionality
    parts = []
    table = {"[time]": "minute", "[mass]": "milligram", "[length]": "decimeter", "[substance]": "nanomole"}
    for dim, power in dims.items():
        if dim not in table:
            raise UnitError(f"no internal unit for dimension {dim}")
        parts.append(f"{table[dim]}**{power}")
    return " * ".join(parts) if parts else "dimensionless"
