"""What the adaptive (multi-rate in time) step buys on a chronic course, against the fixed step.

Scenario: IV heroin 20 mg three times a day for 10 days, then 20 days without drug, recorded
hourly (the `--quick` version: 2 days of use, 3 days without). For each cohort size, in one process:

- the fixed-step engine (`integrate(..., adaptive=False)`, h = 15 s, the baseline) and the adaptive
  engine (`integrate(...)`, error-controlled steps of 3.75 s and up), in subject-days per second
  (compilation excluded: each path is run once on a short run of the same shapes first);
- the ratio adaptive / fixed, the steps each took per subject-day;
- for subject 0, the largest error of either path against the scipy Radau reference on the slow
  readouts, relative to each readout's largest magnitude.

Run: ``.venv/bin/python benchmarks/bench_multirate.py`` (``--quick``, ``--json``). Timings depend on
the machine and its load; compare ratios, not seconds.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

SLOW_READOUTS = ("mor_capacity_vta", "mor_capacity_brainstem", "camp_lc", "crf", "da_stores", "d2_density",
                 "hedonic_set_point", "cows")


def _scenario(n_subjects: int, quick: bool):
    from opioidsim.scenarios import Dose, Scenario

    use, total = ("2d", "5d") if quick else ("10d", "30d")
    return Scenario(duration=total, record_every="1h", cohort={"subjects": n_subjects, "seed": 0},
                    doses=[Dose("heroin", "20 mg", route="iv", at="8h", every="8h", until=use)])


def _run(model, sc, adaptive: bool):
    from opioidsim.engine import integrate, make_grid, subject_parameters
    from opioidsim.engine.core import MAX_STEP_MIN, QUANTUM_MIN
    from opioidsim.engine.dosing import compile_doses

    grid = make_grid(sc.duration_min, sc.record_every_min, max_step=QUANTUM_MIN if adaptive else MAX_STEP_MIN)
    p = subject_parameters(model, sc, sc.cohort.subjects, sc.cohort.seed)
    events = compile_doses(model, sc.doses, sc.duration_min, grid.h, p)
    y0 = model.initial_state(p)
    short = make_grid(sc.record_every_min, sc.record_every_min, max_step=grid.h)
    integrate(model, short, y0, p, events, SLOW_READOUTS, adaptive=adaptive)  # compile
    stats: dict = {}
    t0 = time.perf_counter()
    records = integrate(model, grid, y0, p, events, SLOW_READOUTS, adaptive=adaptive, stats=stats)
    run_s = time.perf_counter() - t0
    days = sc.cohort.subjects * sc.duration_min / 1440.0
    row = {"path": "adaptive" if adaptive else "fixed 15 s", "subjects": sc.cohort.subjects, "simulated_days": days,
           "run_s": run_s, "subject_days_per_s": days / run_s,
           "steps_per_subject_day": float(stats["steps"].mean() / (sc.duration_min / 1440.0))}
    return row, records, (grid, p, events, y0)


def _errors(model, records, setup) -> dict[str, float]:
    from opioidsim.engine import simulate_reference

    grid, p, events, y0 = setup
    ref = simulate_reference(model, y0, p, events, 0, grid.h, grid.record_times_min, SLOW_READOUTS,
                             rtol=1e-7, atol=1e-9)
    return {n: float(np.abs(records[0, :, i] - ref[:, i]).max() / np.abs(ref[:, i]).max())
            for i, n in enumerate(SLOW_READOUTS)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small cohorts and a 5-day course")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)

    from opioidsim.model import default_model

    model = default_model()
    cohorts = (1, 4) if args.quick else (1, 100)
    rows, errors = [], {}
    for n in cohorts:
        sc = _scenario(n, args.quick)
        for adaptive in (False, True):
            row, records, setup = _run(model, sc, adaptive)
            rows.append(row)
            if n == cohorts[0]:
                errors[row["path"]] = _errors(model, records, setup)
    ratios = {n: next(r for r in rows if r["subjects"] == n and r["path"] == "adaptive")["subject_days_per_s"]
              / next(r for r in rows if r["subjects"] == n and r["path"] != "adaptive")["subject_days_per_s"]
              for n in cohorts}
    result = {"scenario": "heroin 20 mg IV 3×/day, then abstinence", "rows": rows,
              "ratio_adaptive_over_fixed": {str(k): v for k, v in ratios.items()},
              "max_relative_error_vs_reference": {k: max(v.values()) for k, v in errors.items()},
              "errors_vs_reference": errors}
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{'path':<12}{'subjects':>9}{'subject-days/s':>16}{'steps/subject-day':>19}{'run s':>9}")
    for r in rows:
        print(f"{r['path']:<12}{r['subjects']:>9}{r['subject_days_per_s']:>16.2f}{r['steps_per_subject_day']:>19.0f}"
              f"{r['run_s']:>9.2f}")
    for n, v in ratios.items():
        print(f"adaptive / fixed, {n} subject(s): {v:.1f}×")
    for path, e in errors.items():
        worst = max(e, key=e.get)
        print(f"{path}: largest error vs Radau on slow readouts {e[worst]:.2%} ({worst})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
