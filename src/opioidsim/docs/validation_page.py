"""The validation page: the published findings the model is checked against, from
`opioidsim.validation.TARGETS`, with simulated results when they are available.

Three ways to fill it (`--validation` of `python -m opioidsim.docs`):

- ``list``: the targets only (id, finding, expected, source); nothing is simulated. Quick; the
  tests use it.
- ``run``: simulate every target here, in its reduced form where it has one (`Target.reduced`,
  what the default test run checks), else in full. A few minutes on two cores.
- a path to a JSON file written by ``opioidsim validate --json > FILE``: the full-size results of
  that run (``validate`` always runs the full forms).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .markdown import cell, table


class ValidationResultsError(ValueError):
    """A results file that cannot be used for the validation page."""


@dataclass(frozen=True)
class Result:
    simulated: str
    passed: bool
    form: str  # "reduced" or "full"


def run_targets(targets, log=None) -> dict[str, Result]:
    """Simulate each target (its reduced form where it has one). An exception in a target is a bug
    and stops the build, naming the target."""
    out = {}
    for t in targets:
        if log:
            log(f"validation {t.id}" + (" (reduced form)" if t.reduced else ""))
        try:
            o = (t.reduced or t.check)()
        except Exception as exc:
            raise RuntimeError(f"validation target {t.id} raised {type(exc).__name__}: {exc}") from exc
        out[t.id] = Result(str(o.simulated), bool(o.passed), "reduced" if t.reduced else "full")
    return out


def read_results(path: str | Path, targets) -> dict[str, Result]:
    """Results from the JSON list that ``opioidsim validate --json`` prints."""
    path = Path(path)
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValidationResultsError(f"cannot read validation results from {path}: {exc}") from exc
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "id" in r for r in rows):
        raise ValidationResultsError(f"{path} is not the JSON list that 'opioidsim validate --json' writes")
    known = {t.id for t in targets}
    unknown = sorted(str(r["id"]) for r in rows if r["id"] not in known)
    if unknown:
        raise ValidationResultsError(f"{path} has results for targets that no longer exist: {', '.join(unknown)} "
                                     "(re-run 'opioidsim validate --json')")
    return {r["id"]: Result(str(r.get("simulated", "")), bool(r.get("passed")), "full") for r in rows}


def validation_page(targets, results: dict[str, Result] | None, how: str) -> str:
    out = ["# Validation\n",
           "Published findings the model must reproduce, from `opioidsim.validation.TARGETS` "
           "(`src/opioidsim/validation/targets.py`). Each target runs typical subjects (no between-subject "
           "variability) through the same model and parameters as every other run; nothing is "
           "special-cased per target. Where a parameter was fitted to a finding, its source says so "
           "(see the parameter tables of the [model](model/index.md)). Run them yourself with "
           "`opioidsim validate` (or `make validate`); `opioidsim validate --only V-PK` runs one group.\n"]
    if results is None:
        out.append(f"*{how}* Build the site with `make docs` to see simulated values.\n")
        rows = [[f"**{t.id}**", cell(t.finding), cell(t.target), cell(t.source)] for t in targets]
        out.append(table(("id", "finding", "expected", "source"), rows))
    else:
        n_run = sum(1 for t in targets if t.id in results)
        n_pass = sum(1 for t in targets if t.id in results and results[t.id].passed)
        out.append(f"*{how}* **{n_pass} of {n_run} targets passed.**\n")
        rows = []
        for t in targets:
            r = results.get(t.id)
            if r is None:
                sim, verdict = "not in the results", "–"
            else:
                sim = cell(r.simulated)
                verdict = ("pass" if r.passed else "**FAIL**") + (" (reduced)" if r.form == "reduced" else "")
            rows.append([f"**{t.id}**", cell(t.finding), cell(t.target), sim, verdict, cell(t.source)])
        out.append(table(("id", "finding", "expected", "simulated", "result", "source"), rows))
    gaps = [t for t in targets if t.known_gap]
    if gaps:
        out.append("## Known gaps\n")
        out += [f"- **{t.id}**: {cell(t.known_gap)}" for t in gaps]
        out.append("")
    reduced = [t for t in targets if t.reduced is not None]
    if reduced:
        out.append("## Reduced forms\n")
        out.append("These targets have a cheaper form that the default test run (and `make docs`) checks; "
                   "`opioidsim validate` and `make test-all` run them in full: "
                   + ", ".join(f"**{t.id}**" for t in reduced) + ".\n")
    return "\n".join(out)
