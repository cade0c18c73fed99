"""The engine without the drug states no dose reaches (`engine/inert.py`, now) against the whole
model (until stop 43), side by side in one process.

Two tables, each the best of `--rounds` runs taken in turn (the host's speed drifts), compilation
left out:

- **the engine** (`integrate`) on `opioidsim bench`'s standard scenario (IV heroin 20 mg every 8 h,
  variability on): states integrated, Jacobian colours, subject-days per second with each model,
  the ratio, steps per subject-day, and the largest difference of the records relative to each
  readout's largest value;
- **a trial**: the first `--trial-subjects` subjects of a built-in trial (`simulate_trial`),
  seconds per run with each model, the ratio, and whether every subject's uses, days in
  treatment and urines are the same.

    .venv/bin/python benchmarks/bench_inert.py [--subjects 256] [--days 30] [--rounds 3]
        [--trial trial-methadone-vs-no-substitution] [--trial-subjects 64] [--json]

Timings depend on the machine and its load: compare the ratios of one run.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from opioidsim.engine.inert import whole_model
from turns import compiled_engine_run, in_turns, largest_relative_difference


def bench_engine(subjects: int, days: float, rounds: int) -> dict:
    from opioidsim.bench import BenchConfig, standard_scenario
    from opioidsim.engine import stepper
    from opioidsim.engine.core import run_model

    sc = standard_scenario(BenchConfig(subjects=subjects, days=days))
    models = {"whole": whole_model(), "reduced": run_model(sc)}
    row = {"subjects": subjects, "days": days}
    ways = {}
    for label, m in models.items():
        row[f"{label}_states"] = m.n_states
        row[f"{label}_colours"] = stepper.jacobian_structure(m).n_colours
        ways[label] = compiled_engine_run(m, sc, subjects)
    seconds, last = in_turns(ways, rounds)
    for label, (_, stats) in last.items():
        row[f"{label}_subject_days_per_s"] = subjects * days / seconds[label]
        row[f"{label}_steps_per_subject_day"] = float(stats["steps"].mean()) / days
    row["ratio"] = row["reduced_subject_days_per_s"] / row["whole_subject_days_per_s"]
    whole, reduced = last["whole"][0], last["reduced"][0]
    row["max_relative_difference"] = largest_relative_difference(whole, reduced)
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def bench_trial(name: str, subjects: int, rounds: int) -> dict:
    from opioidsim.scenarios import load_scenario
    from opioidsim.trial.simulate import simulate_trial

    sc = load_scenario(name)
    models = {"whole": whole_model(), "reduced": None}
    for m in models.values():
        simulate_trial(sc, subjects=range(min(subjects, 4)), model=m)  # compile (or load from the cache)
    seconds, out = in_turns({label: (lambda m=m: simulate_trial(sc, subjects=range(subjects), model=m))
                             for label, m in models.items()}, rounds)
    row = {"trial": name, "subjects": subjects, "whole_s": seconds["whole"], "reduced_s": seconds["reduced"],
           "ratio": seconds["whole"] / seconds["reduced"]}
    row["same_outcomes"] = all(np.array_equal(out["whole"][v].values, out["reduced"][v].values, equal_nan=True)
                               for v in ("use_event", "in_treatment", "urine_positive"))
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subjects", type=int, default=256)
    ap.add_argument("--days", type=float, default=30.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--trial", default="trial-methadone-vs-no-substitution")
    ap.add_argument("--trial-subjects", type=int, default=64, help="0: no trial table")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    engine = bench_engine(a.subjects, a.days, a.rounds)
    trial = bench_trial(a.trial, a.trial_subjects, max(1, a.rounds - 1)) if a.trial_subjects else None
    if a.json:
        print(json.dumps({"engine": engine, "trial": trial}))
        return 0
    e = engine
    print(f"engine, {e['subjects']} subjects × {e['days']:g} days (bench scenario), best of {a.rounds}")
    print(f"  {'model':<10}{'states':>8}{'colours':>9}{'subject-days/s':>16}{'steps/subject-day':>19}")
    for label in ("whole", "reduced"):
        print(f"  {label:<10}{e[label + '_states']:>8}{e[label + '_colours']:>9}"
              f"{e[label + '_subject_days_per_s']:>16.1f}{e[label + '_steps_per_subject_day']:>19.1f}")
    print(f"  ratio reduced / whole: {e['ratio']:.2f}×, records differ by {e['max_relative_difference']:.1e} at most")
    if trial:
        t = trial
        print(f"\ntrial {t['trial']}, {t['subjects']} subjects: whole {t['whole_s']:.1f} s, reduced "
              f"{t['reduced_s']:.1f} s, ratio {t['ratio']:.2f}×, same outcomes: {t['same_outcomes']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
