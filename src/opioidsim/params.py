"""Parameters: every number in the model carries a value, a unit and a source.

A `Parameter` is declared in the module that uses it. Units are checked once, when the model is
built (`internal_value`), and converted to the fixed internal system of `opioidsim.units`; the
integrator then sees plain floats. Between-subject variability is a lognormal coefficient of
variation (`cv`), drawn per subject by `opioidsim.engine.subject_parameters`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from .units import UnitError, to_internal


@dataclass(frozen=True)
class Parameter:
    name: str
    value: float
    unit: str
    source: str
    note: str = ""
    cv: float = 0.0  # between-subject coefficient of variation (lognormal); 0 = fixed
    cv_source: str = ""
    # Fraction-valued parameters are clipped to [0, 1] after sampling.
    bounded_fraction: bool = False

    def __post_init__(self) -> None:
        if not self.source:
            raise ValueError(f"parameter {self.name!r} has no source")
        if self.cv < 0:
            raise ValueError(f"parameter {self.name!r}: cv must be >= 0")
        if self.cv > 0 and not self.cv_source:
            raise ValueError(f"parameter {self.name!r}: a cv needs a cv_source")

    @property
    def internal_value(self) -> float:
        """The value in internal units (minutes, mg, L, nM, ng/mL, mmHg, L/min)."""
        try:
            return to_internal(self.value, self.unit)
        except UnitError as exc:
            raise UnitError(f"parameter {self.name!r}: {exc}") from exc


def check_parameters(params: Iterable[Parameter]) -> dict[str, Parameter]:
    """Index parameters by name, refusing duplicates and converting every unit once."""
    out: dict[str, Parameter] = {}
    for p in params:
        if p.name in out:
            raise ValueError(f"parameter {p.name!r} is declared twice")
        p.internal_value  # raises a named UnitError now rather than inside the integrator
        out[p.name] = p
    return out
