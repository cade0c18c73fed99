"""The engine's two integration methods side by side in one process: ROS2 (second order, two
stages, the engine's method until stop 31) and ROS34PW2 (third order, four stages, the default).

- **one step** for 64 and 512 subjects at scattered states (`stepper._sample_points`), h = 2 min:
  milliseconds per step of each (the fastest of several calls, jit-compiled) and their ratio;
- **the engine** (`integrate`) on `opioidsim bench`'s standard scenario (IV heroin 20 mg three
  times a day, variability on, hourly records, the key readouts) for each (method, rtol) pair:
  subject-days per second (compilation, or loading it from the cache, left out), the ratio to the
  first pair (the baseline: ROS2 at the default rtol), attempted steps per subject-day, steps
  accepted over the tolerance, and the largest error against a Radau rtol 1e-8 reference for
  subject 0 on the key readouts (`opioidsim.bench.accuracy`, relative to each readout's largest
  magnitude).

    .venv/bin/python benchmarks/bench_methods.py [--subjects 64] [--days 5] \
        [--pairs ros2:3e-3 ros34pw2:3e-3 ros34pw2:1e-3] [--json]

Timings depend on the machine and its load: compare the ratios of one run.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from bench_stepper import _fastest


def bench_one_step(model, sizes=(64, 512)) -> list[dict]:
    import jax
    import jax.numpy as jnp

    from opioidsim.engine import stepper

    rows = []
    for s in sizes:
        t, y, p = stepper._sample_points(model, s, np.random.default_rng(1))
        args = (jnp.asarray(t), jnp.asarray(y), {k: jnp.asarray(v) for k, v in p.items()}, jnp.full(s, 2.0))
        ms = {}
        for name, step in stepper.METHODS.items():
            f = jax.jit(lambda t, y, p, h, step=step: step(model, t, y, p, h))
            ms[name] = 1e3 * _fastest(f, *args)
        rows.append({"subjects": s, **{f"{k}_ms": v for k, v in ms.items()}, "ratio": ms["ros34pw2"] / ms["ros2"]})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def bench_engine(model, subjects: int, days: float, pairs: list[tuple[str, float]]) -> list[dict]:
    from opioidsim import bench
    from opioidsim.engine import integrate, make_grid, stepper

    names = tuple(n for n in bench.KEY_READOUTS if n in model.readouts)
    sc = bench.standard_scenario(bench.BenchConfig(subjects=subjects, days=days))
    setup = bench._setup(model, sc)
    grid, p, events, y0 = setup
    short = make_grid(sc.record_every_min, sc.record_every_min)
    _, (ref,) = bench._reference(model, setup, names, range(1), bench.REFERENCE_RTOL, 1e-10)
    rows = []
    for method, rtol in pairs:
        step = stepper.METHODS[method]
        integrate(model, short, y0, p, events, names, step=step, rtol=rtol)  # compile or load from the cache
        stats: dict = {}
        t0 = time.perf_counter()
        recs = integrate(model, grid, y0, p, events, names, stats=stats, step=step, rtol=rtol)
        run_s = time.perf_counter() - t0
        err = bench.accuracy(recs[0], ref, names)
        rows.append({"method": method, "rtol": rtol, "subjects": subjects, "days": days,
                     "subject_days_per_s": subjects * days / run_s,
                     "steps_per_subject_day": float(stats["steps"].mean()) / days,
                     "steps_over_tolerance": int(stats["steps_over_tolerance"].sum()),
                     "max_relative_error": max(err.values()), "worst_readout": max(err, key=err.get)})
        rows[-1]["ratio"] = rows[-1]["subject_days_per_s"] / rows[0]["subject_days_per_s"]
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def _pair(text: str) -> tuple[str, float]:
    from opioidsim.engine import stepper

    method, _, rtol = text.partition(":")
    if method not in stepper.METHODS or not rtol:
        raise argparse.ArgumentTypeError(f"{text!r}: give METHOD:RTOL with METHOD one of {', '.join(stepper.METHODS)}")
    return method, float(rtol)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=64)
    ap.add_argument("--days", type=float, default=5.0)
    ap.add_argument("--pairs", type=_pair, nargs="+",
                    default=[("ros2", 3e-3), ("ros34pw2", 3e-3), ("ros34pw2", 1e-3), ("ros34pw2", 3e-4)])
    ap.add_argument("--skip-step", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from opioidsim.model import default_model

    model = default_model()
    out = {"one_step": [] if args.skip_step else bench_one_step(model),
           "engine": bench_engine(model, args.subjects, args.days, args.pairs)}
    if args.json:
        print(json.dumps(out))
        return
    if out["one_step"]:
        print("one step (h = 2 min) | ros2 ms | ros34pw2 ms | ratio")
        for r in out["one_step"]:
            print(f"{r['subjects']:>5} subjects | {r['ros2_ms']:7.2f} | {r['ros34pw2_ms']:11.2f} | {r['ratio']:.2f}×")
        print()
    print(f"engine, {args.subjects} subjects × {args.days:g} days | subject-days/s | ratio | steps/subject-day "
          "| steps over tolerance | max rel. error vs Radau (readout)")
    for r in out["engine"]:
        print(f"{r['method']:>8} rtol {r['rtol']:.0e} | {r['subject_days_per_s']:.1f} | {r['ratio']:.2f}× | "
              f"{r['steps_per_subject_day']:.1f} | {r['steps_over_tolerance']} | "
              f"{r['max_relative_error']:.2e} ({r['worst_readout']})")


if __name__ == "__main__":
    main()
