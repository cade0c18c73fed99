"""`opioidsim validate`: the published record the model must reproduce, as a table."""
from __future__ import annotations

from .behaviour import behaviour_targets
from .targets import TARGETS as _PHYSIOLOGY_TARGETS
from .targets import Outcome, Target
from .treatment import treatment_targets

#: every target: physiology (targets.py), behaviour (behaviour.py) and treatment (treatment.py)
TARGETS = _PHYSIOLOGY_TARGETS + behaviour_targets() + treatment_targets()


def run_validation(only: str | None = None, reduced: bool = False) -> list[dict]:
    """Run every target whose id starts with `only` (all if None); one dict per target. With
    `reduced`, a target that has a reduced form (smaller cohorts, directions: what `make test`
    runs) runs that instead, and its row says so ("form": "reduced"; else "full"). A known gap of
    the full size only is not the reduced form's."""
    rows = []
    for t in TARGETS:
        if only and not t.id.startswith(only):
            continue
        small = reduced and t.reduced is not None
        out = (t.reduced if small else t.check)()
        gap = "" if small and t.gap_at_full_size_only else t.known_gap
        rows.append({"id": t.id, "finding": t.finding, "target": t.target, "simulated": out.simulated,
                     "passed": bool(out.passed), "source": t.source, "known_gap": gap,
                     "form": "reduced" if small else "full"})
    return rows


__all__ = ["TARGETS", "Outcome", "Target", "run_validation"]
