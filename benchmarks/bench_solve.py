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


def with_stepper(name: str, value, fn):
    """Run fn() with `stepper.<name>` replaced (what the steps look up when they are traced)."""
    from opioidsim.engine import stepper

    kept = getattr(stepper, name)
    setattr(stepper, name, value)
    try:
        return fn()
    finally:
        setattr(stepper, name, kept)


def one_step_side_by_side(model, sizes, variants, methods=None) -> list[dict]:
    """One step of each method at `sizes` scattered states (h = 2 min) with each of two variants,
    ((label, stepper attribute, value), ...): milliseconds of each (the fastest of several calls),
    their ratio (first over second) and the largest difference of the new state (relative)."""
    import jax
    import jax.numpy as jnp

    from opioidsim.engine import stepper

    (first, _, _), (second, _, _) = variants
    rows = []
    for s in sizes:
        t, y, p = stepper._sample_points(model, s, np.random.default_rng(1))
        args = (jnp.asarray(t), jnp.asarray(y), {k: jnp.asarray(v) for k, v in p.items()}, jnp.full(s, 2.0))
        for name, step in (methods or stepper.METHODS).items():
            out, ms = {}, {}
            for label, attr, value in variants:
                f = with_stepper(attr, value, lambda: jax.jit(
                    lambda t, y, p, h: step(model, t, y, p, h)).lower(*args).compile())
                out[label] = np.asarray(f(*args)[0])
                ms[label] = 1e3 * _fastest(f, *args)
            diff = np.abs(out[first] - out[second]) / np.maximum(1.0, np.abs(out[first]))
            rows.append({"subjects": s, "method": name, f"{first}_ms": ms[first], f"{second}_ms": ms[second],
                         "ratio": ms[first] / ms[second], "max_diff_rel": float(diff.max())})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def engine_side_by_side(model, cohorts, days: float, variants, repeats: int = 1) -> list[dict]:
    """The engine (`integrate`, default method) on `opioidsim bench`'s standard scenario with each of
    two variants ((label, stepper attribute, value), ...): subject-days per second (compilation
    left out; with repeats > 1 the best of that many runs of each, taken in turn, as a host's speed
    drifts), their ratio (second over first), steps per subject-day and the largest difference of
    the records relative to each readout's largest value."""
    from opioidsim import bench
    from opioidsim.engine import core, integrate, make_grid

    names = tuple(n for n in bench.KEY_READOUTS if n in model.readouts)
    (first, _, _), (second, _, _) = variants
    rows = []
    for n in cohorts:
        sc = bench.standard_scenario(bench.BenchConfig(subjects=n, days=days))
        grid, p, events, y0 = bench._setup(model, sc)
        short = make_grid(sc.record_every_min, sc.record_every_min)
        row, recs = {"subjects": n, "days": days}, {}
        for _ in range(repeats):
            for label, attr, value in variants:
                def run(label=label):
                    core._segment_runner.cache_clear()  # a compiled unit traced with the other variant
                    integrate(model, short, y0, p, events, names)  # compile (or load from the cache)
                    stats: dict = {}
                    t0 = time.perf_counter()
                    recs[label] = integrate(model, grid, y0, p, events, names, stats=stats)
                    key = f"{label}_subject_days_per_s"
                    row[key] = max(row.get(key, 0.0), n * days / (time.perf_counter() - t0))
                    row[f"{label}_steps_per_subject_day"] = float(stats["steps"].mean()) / days
                with_stepper(attr, value, run)
        row["ratio"] = row[f"{second}_subject_days_per_s"] / row[f"{first}_subject_days_per_s"]
        scale = np.maximum(np.max(np.abs(recs[first]), axis=(0, 1)), 1e-300)
        row["records_max_diff_rel"] = float(np.max(np.abs(recs[second] - recs[first]) / scale))
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def _variants():
    from opioidsim.engine import stepper

    return (("lu", "level_solver", lu_level_solver), ("inverse", "level_solver", stepper.level_solver))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 64, 512], help="subjects for one step")
    ap.add_argument("--cohorts", type=int, nargs="+", default=[64, 512], help="subjects for the engine runs")
    ap.add_argument("--days", type=float, default=2.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from opioidsim.model import default_model

    model = default_model()
    out = {"one_step": one_step_side_by_side(model, args.sizes, _variants()),
           "engine": engine_side_by_side(model, args.cohorts, args.days, _variants())}
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
