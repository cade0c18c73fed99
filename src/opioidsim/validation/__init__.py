"""`opioidsim validate`: the published record the model must reproduce, as a table."""
from __future__ import annotations

from .behaviour import behaviour_targets
from .targets import TARGETS as _PHYSIOLOGY_TARGETS
from .targets import Outcome, Target
from .treatment import treatment_targets

#: every target: physiology (targets.py), behaviour (behaviour.py) and treatment (treatment.py)
TARGETS = _PHYSIOLOGY_TARGETS + behaviour_targets() + treatment_targets()


def run_validation(only: str | None = None) -> list[dict]:
    """Run every target whose id starts with `only` (all if None); one dict per target."""
    rows = []
    for t in TARGETS:
        if only and not t.id.startswith(only):
            continue
        out = t.check()
        rows.append({"id": t.id, "finding": t.finding, "target": t.target, "simulated": out.simulated,
                     "passed": bool(out.passed), "source": t.source, "known_gap": t.known_gap})
    return rows


__all__ = ["TARGETS", "Outcome", "Target", "run_validation"]
