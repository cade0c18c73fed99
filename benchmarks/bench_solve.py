"""The stepper's solve with explicit inverses of the dense components (now) against LU solves (until
stop 32), side by side in one process.

Every stage of a Rosenbrock step solves (I − γhJ_L) x = v with the same matrix: ROS2 three times,
ROS34PW2 five. Until stop 32 the dense components (three 9×9 receptor blocks, a few of 2-4 states)
were LU-factorised once per step and each solve ran two batched triangular solves; now each
component's inverse is formed once per step (`stepper.level_solver`) and each solve is a batched
matrix-vector product. The LU variant is kept below only for this comparison.

- **one step** of each method for 8, 64 and 512 subjects at scattered states
  (`stepper._sample_points`), h = 2 min: milliseconds (the fastest of several calls, jit-compiled,
  `block_until_ready`), the ratio, and the largest difference of the new state relative to its size;
- **the engine** (`integrate`) on `opioidsim bench`'s standard scenario (IV heroin 20 mg three
  times a day, variability on, hourly records, the key readouts) with the default method:
  subject-days per second with each solve (compilation left out), the ratio, steps per
  subject-day and the largest difference of the records relative to each readout's largest value.

    .venv/bin/python benchmarks/bench_solve.py [--cohorts 64 512] [--days 2] [--json]

Timings depend on the machine and its load: compare the ratios of one run.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from bench_stepper import _fastest


def lu_level_solver(struct, jc, gh):
    """`stepper.level_solver` as it was until stop 32: LU factors once per step, two triangular
    solves per component and solve."""
    import jax.numpy as jnp
    import jax.scipy.linalg as jsl

    n_c = struct.n_colours
    order, colour, used = struct.order, struct.colour, struct.used
    flat = jc.reshape(jc.shape[0], -1)

    def entries(rows, cols):
        return flat[:, (rows * n_c + colour[cols]).reshape(-1)].reshape((jc.shape[0],) + rows.shape)

    ghc = gh[:, None]
    plan = []
    for lev in struct.levels:
        rows, cols = order[lev.start + lev.entry_rows], order[lev.entry_cols]
        coupling = ghc * entries(rows, cols) if len(rows) else None
        gather = jnp.asarray(np.arange(lev.size)[:, None] == lev.entry_rows[None, :], dtype=jc.dtype)
        singles = order[lev.start:lev.start + lev.n_singles]
        denom = 1.0 - ghc * entries(singles, singles) if lev.n_singles else None
        factors, at = [], lev.start + lev.n_singles
        for size, k in lev.groups:
            g = order[at:at + size * k].reshape(k, size)
            block = entries(np.broadcast_to(g[:, :, None], (k, size, size)), np.broadcast_to(g[:, None, :], (k, size, size)))
            block = block * jnp.asarray(used[g[:, :, None], g[:, None, :]], dtype=jc.dtype)
            factors.append(jsl.lu_factor(jnp.eye(size, dtype=jc.dtype) - gh[:, None, None, None] * block))
            at += size * k
        plan.append((lev, coupling, gather, denom, factors))
    back = np.argsort(order)

    def solve(v):
        vp = v[:, order]
        xs = vp[:, :0]
        for lev, coupling, gather, denom, factors in plan:
            b = vp[:, lev.start:lev.start + lev.size]
            if coupling is not None:
                b = b + (coupling * xs[:, lev.entry_cols]) @ gather.T
            parts = [b[:, :lev.n_singles] / denom] if denom is not None else []
            at = lev.n_singles
            for (size, k), lu in zip(lev.groups, factors):
                parts.append(jsl.lu_solve(lu, b[:, at:at + size * k].reshape(-1, k, size, 1)).reshape(-1, size * k))
                at += size * k
            xs = jnp.concatenate([xs] + parts, axis=-1)
        return xs[:, back]

    return solve


def _with_solver(solver, fn):
    """Run fn() with `stepper.level_solver` replaced (what the steps look up when traced)."""
    from opioidsim.engine import stepper

    kept = stepper.level_solver
    stepper.level_solver = solver
    try:
        return fn()
    finally:
        stepper.level_solver = kept


def bench_one_step(model, sizes) -> list[dict]:
    import jax
    import jax.numpy as jnp

    from opioidsim.engine import stepper

    current = stepper.level_solver
    rows = []
    for s in sizes:
        t, y, p = stepper._sample_points(model, s, np.random.default_rng(1))
        args = (jnp.asarray(t), jnp.asarray(y), {k: jnp.asarray(v) for k, v in p.items()}, jnp.full(s, 2.0))
        for name, step in stepper.METHODS.items():
            out, ms = {}, {}
            for label, solver in (("lu", lu_level_solver), ("inverse", current)):
                f = _with_solver(solver, lambda: jax.jit(lambda t, y, p, h: step(model, t, y, p, h)).lower(*args).compile())
                out[label] = np.asarray(f(*args)[0])
                ms[label] = 1e3 * _fastest(f, *args)
            diff = np.abs(out["lu"] - out["inverse"]) / np.maximum(1.0, np.abs(out["lu"]))
            rows.append({"subjects": s, "method": name, "lu_ms": ms["lu"], "inverse_ms": ms["inverse"],
                         "ratio": ms["lu"] / ms["inverse"], "max_diff_rel": float(diff.max())})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def bench_engine(model, cohorts, days: float) -> list[dict]:
    from opioidsim import bench
    from opioidsim.engine import core, integrate, make_grid, stepper

    names = tuple(n for n in bench.KEY_READOUTS if n in model.readouts)
    current = stepper.level_solver
    rows = []
    for n in cohorts:
        sc = bench.standard_scenario(bench.BenchConfig(subjects=n, days=days))
        grid, p, events, y0 = bench._setup(model, sc)
        short = make_grid(sc.record_every_min, sc.record_every_min)
        row, recs = {"subjects": n, "days": days}, {}
        for label, solver in (("lu", lu_level_solver), ("inverse", current)):
            def run(label=label):
                core._segment_runner.cache_clear()  # a compiled unit traced with the other solve
                integrate(model, short, y0, p, events, names)  # compile (or load from the cache)
                stats: dict = {}
                t0 = time.perf_counter()
                recs[label] = integrate(model, grid, y0, p, events, names, stats=stats)
                row[f"{label}_subject_days_per_s"] = n * days / (time.perf_counter() - t0)
                row[f"{label}_steps_per_subject_day"] = float(stats["steps"].mean()) / days
            _with_solver(solver, run)
        row["ratio"] = row["inverse_subject_days_per_s"] / row["lu_subject_days_per_s"]
        scale = np.maximum(np.max(np.abs(recs["lu"]), axis=(0, 1)), 1e-300)
        row["records_max_diff_rel"] = float(np.max(np.abs(recs["inverse"] - recs["lu"]) / scale))
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 64, 512], help="subjects for one step")
    ap.add_argument("--cohorts", type=int, nargs="+", default=[64, 512], help="subjects for the engine runs")
    ap.add_argument("--days", type=float, default=2.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from opioidsim.model import default_model

    model = default_model()
    out = {"one_step": bench_one_step(model, args.sizes), "engine": bench_engine(model, args.cohorts, args.days)}
    if args.json:
        print(json.dumps(out))
        return
    print("one step | method | LU ms | inverse ms | ratio | max |Δy| (rel)")
    for r in out["one_step"]:
        print(f"{r['subjects']:>5} subjects | {r['method']:8s} | {r['lu_ms']:7.2f} | {r['inverse_ms']:7.2f} | "
              f"{r['ratio']:4.2f}× | {r['max_diff_rel']:.1e}")
    print("\nengine (default method) | LU subject-days/s | inverse | ratio | steps/subject-day (LU, inverse) "
          "| records Δ (rel)")
    for r in out["engine"]:
        print(f"{r['subjects']:>5} subjects × {r['days']:g} d | {r['lu_subject_days_per_s']:.1f} | "
              f"{r['inverse_subject_days_per_s']:.1f} | {r['ratio']:.2f}× | {r['lu_steps_per_subject_day']:.1f}, "
              f"{r['inverse_steps_per_subject_day']:.1f} | {r['records_max_diff_rel']:.1e}")


if __name__ == "__main__":
    main()
