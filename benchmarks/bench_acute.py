"""Speed and accuracy of the engine on the acute IV heroin scenario (10 mg IV, 12 h, 30 s records).

Measures, in one process:

- the batched engine (`opioidsim.engine.integrate`) for cohorts of 1, 100 and 1000 subjects, in
  subject-days simulated per second of wall time. Compilation (or loading the compiled program
  from the persistent cache) is timed separately, on a short run of the same cohort size, and is
  excluded from the throughput;
- the scipy Radau reference path (`simulate_reference`) for one subject: the time inside
  `solve_ivp` (the solver's work; the JAX tracing and compilation of the vector field and its
  Jacobian are triggered before the clock starts and reported as "compile"), and the total as the
  reference is written now (it traces and compiles again for every subject), per subject;
- the ratio engine / reference, and the engine's error against the reference for subject 0 on the
  key readouts: the peak value (in the direction of the effect) and the largest pointwise error,
  both relative to the reference's largest magnitude of that readout.

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_acute.py`` (``--quick`` for a small
version, ``--json`` for one JSON object on stdout). Timings depend on the machine and its load.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time

import numpy as np

KEY_READOUTS = ("mor_occupancy_vta", "nac_dopamine", "hedonic_state", "pain", "ventilation", "spo2",
                "plasma_morphine")
FULL_COHORTS = (1, 100, 1000)
QUICK_COHORTS = (1, 2)


def _scenario(n_subjects: int, duration: str | None):
    from opioidsim.scenarios import Scenario, load_scenario

    base = load_scenario("acute-heroin-iv")
    return Scenario(name=base.name, description=base.description, duration=duration or base.duration,
                    record_every=base.record_every, readouts=base.readouts,
                    cohort={"subjects": n_subjects, "seed": base.cohort.seed}, conditions=base.conditions,
                    doses=list(base.doses))


def _setup(model, sc):
    from opioidsim.engine import make_grid, subject_parameters
    from opioidsim.engine.dosing import compile_doses

    grid = make_grid(sc.duration_min, sc.record_every_min)
    p = subject_parameters(model, sc, sc.cohort.subjects, sc.cohort.seed)
    events = compile_doses(model, sc.doses, sc.duration_min, grid.h, p)
    y0 = model.initial_state(p)
    names = tuple(sc.readouts) if sc.readouts else model.readouts
    return grid, p, events, y0, names


def bench_engine(model, n_subjects: int, duration: str | None) -> tuple[dict, np.ndarray, tuple]:
    from opioidsim.engine import integrate, make_grid

    sc = _scenario(n_subjects, duration)
    grid, p, events, y0, names = _setup(model, sc)
    # Compile on a short run of the same shapes (cohort size, dose slots, readouts): the step size
    # and steps per record are run-time arguments, so the full run reuses this compiled program.
    short = make_grid(sc.record_every_min, sc.record_every_min)
    t0 = time.perf_counter()
    integrate(model, short, y0, p, events, names)
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    records = integrate(model, grid, y0, p, events, names)
    run_s = time.perf_counter() - t0
    days = n_subjects * sc.duration_min / 1440.0
    row = {"path": "engine (ROS2, batched)", "subjects": n_subjects, "simulated_days": days,
           "compile_s": compile_s, "run_s": run_s, "subject_days_per_s": days / run_s}
    return row, records, (grid, p, events, y0, names)


def bench_reference(model, setup) -> tuple[dict, np.ndarray]:
    from opioidsim.bench import SolverClock
    from opioidsim.engine import reference, simulate_reference

    grid, p, events, y0, names = setup
    times = grid.record_times_min
    clock = SolverClock(reference.solve_ivp)
    reference.solve_ivp = clock
    try:
        t0 = time.perf_counter()
        ref = simulate_reference(model, y0, p, events, 0, grid.h, times, names)
        total_s = time.perf_counter() - t0
    finally:
        reference.solve_ivp = clock.solve_ivp
    solve_s = clock.seconds
    days = times[-1] / 1440.0
    row = {"path": "scipy Radau reference", "subjects": 1, "simulated_days": days, "compile_s": total_s - solve_s,
           "run_s": solve_s, "subject_days_per_s": days / solve_s,
           "total_per_subject_s": total_s, "subject_days_per_s_with_jit": days / total_s}
    return row, ref


def accuracy(records: np.ndarray, ref: np.ndarray, names: tuple) -> dict[str, dict[str, float]]:
    out = {}
    for name in KEY_READOUTS:
        if name not in names:
            continue
        i = names.index(name)
        got, want = records[0, :, i], ref[:, i]
        scale = float(np.max(np.abs(want)))
        dev = want - want[0]
        rising = dev[np.argmax(np.abs(dev))] >= 0
        peak_got, peak_want = (got.max(), want.max()) if rising else (got.min(), want.min())
        out[name] = {"peak": abs(peak_got - peak_want) / max(abs(peak_want), 1e-300),
                     "pointwise": float(np.max(np.abs(got - want))) / max(scale, 1e-300)}
    return out


def _fmt(x: float, width: int, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-".rjust(width)
    if abs(x) >= 1000:
        return f"{x:,.0f}".rjust(width)
    return f"{x:.{digits}g}".rjust(width)


def print_table(rows: list[dict], errors: dict, ratio: float, header: str) -> None:
    print(header)
    print()
    cols = ("path", "subjects", "compile s", "run s", "subject-days/s")
    widths = (24, 9, 10, 10, 15)
    print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cols, widths))))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join([r["path"].ljust(widths[0]), str(r["subjects"]).rjust(widths[1]),
                         _fmt(r["compile_s"], widths[2]), _fmt(r["run_s"], widths[3]),
                         _fmt(r["subject_days_per_s"], widths[4])]))
    ref = next(r for r in rows if r["path"].startswith("scipy"))
    print()
    print(f"reference as implemented (JIT again for every subject): {ref['total_per_subject_s']:.3g} s per subject, "
          f"{ref['subject_days_per_s_with_jit']:.3g} subject-days/s")
    print(f"ratio engine (largest cohort) / reference (solver only): {ratio:,.1f}x")
    print()
    print("engine vs reference, subject 0 (relative to the reference's largest magnitude):")
    print(f"  {'readout':<20}{'peak':>10}{'pointwise':>12}")
    for name, e in errors.items():
        print(f"  {name:<20}{e['peak']:>10.2e}{e['pointwise']:>12.2e}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small cohorts (1, 2) and a 2 h run: a smoke test")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    ap.add_argument("--cohorts", type=int, nargs="+", help="cohort sizes (default 1 100 1000)")
    args = ap.parse_args(argv)

    import jax

    from opioidsim.model import default_model

    cohorts = tuple(args.cohorts) if args.cohorts else (QUICK_COHORTS if args.quick else FULL_COHORTS)
    duration = "2h" if args.quick else None
    model = default_model()

    rows, first = [], None
    for n in cohorts:
        row, records, setup = bench_engine(model, n, duration)
        rows.append(row)
        if first is None:
            first = (records, setup)
    ref_row, ref = bench_reference(model, first[1])
    rows.append(ref_row)
    errors = accuracy(first[0], ref, first[1][4])

    largest = max((r for r in rows if r["path"].startswith("engine")), key=lambda r: r["subjects"])
    ratio = largest["subject_days_per_s"] / ref_row["subject_days_per_s"]
    result = {
        "scenario": "acute-heroin-iv", "duration_min": float(first[1][0].record_times_min[-1]),
        "engine_subject_days_per_s": largest["subject_days_per_s"],
        "engine_cohort": largest["subjects"],
        "scipy_subject_days_per_s": ref_row["subject_days_per_s"],
        "scipy_subject_days_per_s_with_jit": ref_row["subject_days_per_s_with_jit"],
        "ratio": ratio,
        "max_relative_error_peak": max(e["peak"] for e in errors.values()),
        "max_relative_error_pointwise": max(e["pointwise"] for e in errors.values()),
        "errors": errors,
        "rows": rows,
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "jax": jax.__version__, "backend": jax.default_backend(), "cpus": os.cpu_count(),
                    "compilation_cache": jax.config.jax_compilation_cache_dir or None},
    }
    if args.json:
        print(json.dumps(result))
    else:
        cache = jax.config.jax_compilation_cache_dir
        header = (f"acute-heroin-iv: 10 mg IV heroin, {result['duration_min'] / 60:g} h, 30 s records, all readouts\n"
                  f"jax {jax.__version__} on {jax.default_backend()}, {os.cpu_count()} CPUs; persistent compilation "
                  f"cache: {cache or 'off'} (a cache hit makes 'compile' a load)")
        print_table(rows, errors, ratio, header)
    return 0


if __name__ == "__main__":
    sys.exit(main())
