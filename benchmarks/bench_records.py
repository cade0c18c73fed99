"""Records taken by default (`[solver] records = "auto"`, since stop 49: records 5 min apart or closer
interpolated with steps held to a thirtieth of rtol) against stepped records (the default until
stop 49: a step ends at every record), side by side in one process.

One row per built-in scenario named (default: the flagship and the fentanyl rescue), its first
`--subjects` subjects through `simulate`, each way the best of `--rounds` runs taken in turn
(compilation left out: every way runs once before): seconds, steps per subject, the ratio, and
subject 0's largest error against the Radau reference (rtol 1e-8) over the key readouts, relative
to each one's largest value (`--no-reference` leaves it out).

    .venv/bin/python benchmarks/bench_records.py [--subjects 200] [--rounds 3] [--no-reference] [--json]
        [SCENARIO ...]

Timings depend on the machine and its load: compare the ratios of one run.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from turns import in_turns

KEY = ("mor_occupancy_vta", "nac_dopamine", "hedonic_state", "pain", "ventilation", "spo2")


def _way(sc):
    from opioidsim.engine.core import simulate

    simulate(sc)  # compile, or load from the cache

    def run():
        return simulate(sc)

    return run


def _steps(sc) -> float:
    """Mean attempted steps per subject of `simulate(sc)`'s integration (its records, tolerance and
    method, through `integrate`'s stats)."""
    from opioidsim.engine.core import _setup, integrate, integrate_settings, run_model

    model = run_model(sc)
    grid, p, events, names = _setup(sc, model, range(sc.cohort.subjects))
    stats: dict = {}
    integrate(model, grid, model.initial_state(p), p, events, names, stats=stats, **integrate_settings(sc))
    return float(np.mean(stats["steps"]))


def _error(sc, ds) -> float:
    from opioidsim.engine import simulate_reference
    from opioidsim.engine.core import _setup, run_model

    model = run_model(sc)
    grid, p, events, _ = _setup(sc, model, range(1))
    ref = simulate_reference(model, model.initial_state(p), p, events, 0, grid.h, grid.record_times_min, KEY)
    got = np.stack([ds[k].values[0] for k in KEY], axis=-1)
    return float((np.abs(got - ref).max(axis=0) / np.maximum(np.abs(ref).max(axis=0), 1e-300)).max())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="*", default=["acute-heroin-iv", "fentanyl-overdose-naloxone"])
    ap.add_argument("--subjects", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from opioidsim.scenarios import load_scenario

    rows = []
    for name in args.scenarios:
        auto = load_scenario(name).with_cohort(subjects=args.subjects)
        ways = {"stepped": auto.with_solver(records="stepped"), "auto": auto}
        best, last = in_turns({k: _way(sc) for k, sc in ways.items()}, args.rounds)
        row = {"scenario": name, "subjects": args.subjects, "record_every_min": auto.record_every_min}
        for k, sc in ways.items():
            row[f"{k}_s"] = best[k]
            row[f"{k}_steps_per_subject"] = _steps(sc)
            row[f"{k}_records"] = last[k].attrs["solver_records"]
            if not args.no_reference:
                row[f"{k}_max_relative_error"] = _error(sc, last[k])
        row["ratio"] = best["stepped"] / best["auto"]
        rows.append(row)
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        print()
        return 0
    print(f"{'scenario':28} {'records':>7} {'stepped s':>9} {'steps':>6} {'auto s':>7} {'steps':>6} "
          f"{'ratio':>6} {'error stepped':>13} {'error auto':>10}")
    for r in rows:
        errs = ("", "") if args.no_reference else (f"{r['stepped_max_relative_error']:.1e}",
                                                     f"{r['auto_max_relative_error']:.1e}")
        print(f"{r['scenario']:28} {r['record_every_min'] * 60:>6g}s {r['stepped_s']:>9.2f} "
              f"{r['stepped_steps_per_subject']:>6.0f} {r['auto_s']:>7.2f} {r['auto_steps_per_subject']:>6.0f} "
              f"{r['ratio']:>5.2f}x {errs[0]:>13} {errs[1]:>10}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
