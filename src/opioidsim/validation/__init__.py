"""`opioidsim validate`: the published record the model must reproduce, as a table."""
from __future__ import annotations

from typing import Any, Mapping

from .behaviour import behaviour_targets
from .sim import settings_for
from .targets import TARGETS as _PHYSIOLOGY_TARGETS
from .targets import Outcome, Target
from .treatment import treatment_targets

#: every target: physiology (targets.py), behaviour (behaviour.py) and treatment (treatment.py)
TARGETS = _PHYSIOLOGY_TARGETS + behaviour_targets() + treatment_targets()


def run_validation(only: str | None = None, reduced: bool = False,
                   parameters: Mapping[str, Any] | None = None) -> list[dict]:
    """Run every target whose id starts with `only` (all if None); one dict per target. With
    `reduced`, a target that has a reduced form (smaller cohorts, directions: what `make test`
    runs) runs that instead, and its row says so ("form": "reduced"; else "full"). A known gap of
    the full size only is not the reduced form's.

    `parameters` (name → value, as a scenario's [parameters]; checked first, a ScenarioError naming
    `parameters.NAME` otherwise) replace the sourced values in every target's runs, each run taking
    what it reads: the physiology's in every run, the behaviour's in the animal experiments, a
    person's in the trials. The table then shows the model under that what-if."""
    settings = _checked_settings(parameters or {})
    rows = []
    for t in TARGETS:
        if only and not t.id.startswith(only):
            continue
        small = reduced and t.reduced is not None
        out = (t.reduced if small else t.check)(settings=settings)
        gap = "" if small and t.gap_at_full_size_only else t.known_gap
        row = {"id": t.id, "finding": t.finding, "target": t.target, "simulated": out.simulated,
               "passed": bool(out.passed), "source": t.source, "known_gap": gap, "form": "reduced" if small else "full"}
        if settings:  # what of them this target's runs read
            row["parameters_read"] = sorted(settings_for(settings, t.reads))
        rows.append(row)
    return rows


def _checked_settings(parameters: Mapping[str, Any]) -> tuple:
    """`parameters` checked as a scenario's [parameters] are (name, unit, value), as the sorted
    (name, value) pairs the targets take (validation/sim.py: Settings)."""
    from ..scenarios.schema import checked_settings

    return tuple(sorted(checked_settings(dict(parameters)).items()))


__all__ = ["TARGETS", "Outcome", "Target", "run_validation"]
