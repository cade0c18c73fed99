"""Parameters: every number in the model carries a value, a unit and a source.

A `Parameter` is declared in the module that uses it. Units are checked once, when the model is
built (`internal_value`), and converted to the fixed internal system of `opioidsim.units`; the
integrator then sees plain floats. Between-subject variability is a lognormal coefficient of
variation (`cv`), sampled per subject by `sample_parameters`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np

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


def sample_parameters(
    params: Mapping[str, Parameter], n_subjects: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Draw one value per subject for every parameter (in internal units).

    Parameters are drawn in sorted-name order so that adding a parameter with cv = 0 never
    changes the draws of the others (fixed parameters consume no random numbers).
    """
    out: dict[str, np.ndarray] = {}
    for name in sorted(params):
        p = params[name]
        v = p.internal_value
        if p.cv > 0 and n_subjects > 0:
            sigma = math.sqrt(math.log1p(p.cv**2))
            # median = typical value: the usual NONMEM-style exp(eta) parameterisation
            draws = v * np.exp(rng.normal(0.0, sigma, size=n_subjects))
            if p.bounded_fraction:
                draws = np.clip(draws, 0.0, 1.0)
            out[name] = draws
        else:
            out[name] = np.full(n_subjects, v, dtype=float)
    return out
