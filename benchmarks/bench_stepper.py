"""The ROS2 step as first written (dense) against the current one, side by side in one process.

- **one step** for 2, 64 and 512 subjects at scattered states (`stepper._sample_points`), h = 2 min:
  milliseconds per step (the fastest of several calls, jit-compiled, `block_until_ready`), the
  ratio, and the largest difference of the new state between the two;
- **the engine** (`integrate`) on `opioidsim bench`'s standard scenario (IV heroin 20 mg three
  times a day, variability on, hourly records, the key readouts) for cohorts of 1, 64 and 512:
  subject-days per second with each step (compilation, or loading it from the cache, left out),
  the ratio, the attempted steps per subject-day, the largest difference of the records relative
  to each readout's largest magnitude, and each step's largest error against a Radau rtol 1e-8
  reference for subject 0 on the key readouts (`opioidsim.bench.accuracy`).

    .venv/bin/python benchmarks/bench_stepper.py [--days 1] [--cohorts 1 64 512] [--json]

The dense step: `stepper.ros2_step_dense` (jacfwd over all states, explicit inverses of the module
blocks); the current one: `stepper.ros2_step`. Timings depend on the machine and its load: compare
the ratios of one run.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def _fastest(f, *args, repeats: int = 9) -> float:
    import jax

    jax.block_until_ready(f(*args))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(f(*args))
        best = min(best, time.perf_counter() - t0)
    return best


def bench_one_step(model, sizes=(2, 64, 512)) -> list[dict]:
    import jax
    import jax.numpy as jnp

    from opioidsim.engine import stepper

    rows = []
    for s in sizes:
        t, y, p = stepper._sample_points(model, s, np.random.default_rng(1))
        args = (jnp.asarray(t), jnp.asarray(y), {k: jnp.asarray(v) for k, v in p.items()}, jnp.full(s, 2.0))
        dense = jax.jit(lambda t, y, p, h: stepper.ros2_step_dense(model, t, y, p, h))
        new = jax.jit(lambda t, y, p, h: stepper.ros2_step(model, t, y, p, h))
        ya, yb = np.asarray(dense(*args)[0]), np.asarray(new(*args)[0])
        td, tn = _fastest(dense, *args), _fastest(new, *args)
        rows.append({"subjects": s, "dense_ms": 1e3 * td, "new_ms": 1e3 * tn, "ratio": td / tn,
                     "max_abs_diff": float(np.max(np.abs(ya - yb))),
                     "max_diff_rel_to_state_scale": float(np.max(np.abs(ya - yb) / np.maximum(1.0, np.abs(ya))))})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def bench_engine(model, cohorts, days: float, skip_reference: bool = False) -> list[dict]:
    from opioidsim import bench
    from opioidsim.engine import integrate, make_grid, stepper

    names = tuple(n for n in bench.KEY_READOUTS if n in model.readouts)
    rows = []
    for n in cohorts:
        sc = bench.standard_scenario(bench.BenchConfig(subjects=n, days=days))
        setup = bench._setup(model, sc)
        grid, p, events, y0 = setup
        short = make_grid(sc.record_every_min, sc.record_every_min)
        row = {"subjects": n, "days": days}
        recs = {}
        for label, step in (("dense", stepper.ros2_step_dense), ("new", stepper.ros2_step)):
            integrate(model, short, y0, p, events, names, step=step)  # compile or load from the cache
            stats: dict = {}
            t0, c0 = time.perf_counter(), time.process_time()
            recs[label] = integrate(model, grid, y0, p, events, names, stats=stats, step=step)
            run_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
            row[f"{label}_subject_days_per_s"] = n * days / run_s
            # per CPU second of this process (all its threads): less sensitive to other jobs' load
            row[f"{label}_subject_days_per_cpu_s"] = n * days / cpu_s
            row[f"{label}_steps_per_subject_day"] = float(stats["steps"].mean()) / days
        row["ratio"] = row["new_subject_days_per_s"] / row["dense_subject_days_per_s"]
        row["cpu_ratio"] = row["new_subject_days_per_cpu_s"] / row["dense_subject_days_per_cpu_s"]
        scale = np.maximum(np.max(np.abs(recs["dense"]), axis=(0, 1)), 1e-300)
        row["records_max_diff_rel"] = float(np.max(np.abs(recs["new"] - recs["dense"]) / scale))
        if n == cohorts[0] and not skip_reference:
            _, (ref,) = bench._reference(model, setup, names, range(1), bench.REFERENCE_RTOL, 1e-10)
            for label in ("dense", "new"):
                err = bench.accuracy(recs[label][0], ref, names)
                row[f"{label}_max_relative_error"] = max(err.values())
                row[f"{label}_worst_readout"] = max(err, key=err.get)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)  # progress: a long run keeps its rows
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=1.0)
    ap.add_argument("--cohorts", type=int, nargs="+", default=[1, 64, 512])
    ap.add_argument("--skip-step", action="store_true")
    ap.add_argument("--skip-reference", action="store_true", help="no Radau reference (accuracy) run")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from opioidsim.engine import stepper
    from opioidsim.model import default_model

    model = default_model()
    st = stepper.jacobian_structure(model)
    out = {"states": model.n_states, "colours": st.n_colours, "levels": len(st.levels),
           "pattern_nonzeros": int(st.pattern.sum()),
           "largest_component": max([s for lev in st.levels for s, _ in lev.groups] or [1])}
    if not args.skip_step:
        out["one_step"] = bench_one_step(model)
    out["engine"] = bench_engine(model, args.cohorts, args.days, args.skip_reference)
    if args.json:
        print(json.dumps(out))
        return
    print(f"{out['states']} states; Jacobian: {out['pattern_nonzeros']} nonzeros, {out['colours']} colours "
          f"(tangents instead of {out['states']}); solve: {out['levels']} levels, largest component "
          f"{out['largest_component']}")
    if "one_step" in out:
        print("\none ROS2 step | dense ms | new ms | ratio | max |Δy|")
        for r in out["one_step"]:
            print(f"{r['subjects']:>5} subjects | {r['dense_ms']:8.2f} | {r['new_ms']:6.2f} | {r['ratio']:5.1f}× | "
                  f"{r['max_abs_diff']:.1e}")
    print("\nengine, subject-days/s | dense | new | ratio | ratio per CPU s | steps/subject-day (dense, new) "
          "| records Δ (rel) | max rel. error vs Radau (dense, new)")
    for r in out["engine"]:
        acc = (f"{r['dense_max_relative_error']:.2e}, {r['new_max_relative_error']:.2e} ({r['new_worst_readout']})"
               if "new_max_relative_error" in r else "")
        print(f"{r['subjects']:>5} subjects | {r['dense_subject_days_per_s']:.2f} | {r['new_subject_days_per_s']:.2f} | "
              f"{r['ratio']:.1f}× | {r['cpu_ratio']:.1f}× | {r['dense_steps_per_subject_day']:.0f}, {r['new_steps_per_subject_day']:.0f} | "
              f"{r['records_max_diff_rel']:.1e} | {acc}")


if __name__ == "__main__":
    main()
