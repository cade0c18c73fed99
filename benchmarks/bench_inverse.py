"""The dense components' inverses by Gauss-Jordan elimination (now) against LAPACK's pivoted
`jnp.linalg.inv` (until stop 41), side by side in one process.

Each ROS34PW2 step inverts the dense components of I − γhJ once (three 9×9 receptor blocks and a
few of 2-4 states; `stepper.level_solver`). Three tables:

- **the blocks alone**: for each component shape (size, count), microseconds per call for 256
  subjects with each inverse (the fastest of several calls, jit-compiled), the ratio, and the
  largest normalised residual ‖W X − I‖ / (‖W‖ ‖X‖) of each at sampled states and parameters
  (`stepper._sample_points`) over step sizes from 0.01 min to 70 days: what
  `small_inverse.RESIDUAL_LIMIT` is set against, and how often the fallback would run;
- **one step** of ROS34PW2 at scattered states, h = 2 min: milliseconds, ratio, largest
  difference of the new state relative to its size;
- **the engine** (`integrate`) on `opioidsim bench`'s standard scenario: subject-days per second
  with each inverse (compilation left out; the best of three runs taken in turn, as the host's
  speed drifts), the ratio, steps per subject-day and the largest difference of the records
  relative to each readout's largest value;
- **a trial**: V-MAT-2's design in its reduced form (`validation.treatment.REDUCED`: 32 subjects,
  7 days of history, 4 weeks), seconds per run with each inverse (compilation left out; the best
  of two taken in turn), the ratio, and whether every subject's daily uses are the same.

    .venv/bin/python benchmarks/bench_inverse.py [--cohorts 64 256] [--days 5] [--trial-subjects 32] [--json]

Timings depend on the machine and its load: compare the ratios of one run.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from bench_solve import engine_side_by_side, one_step_side_by_side, with_stepper
from bench_stepper import _fastest

STEP_SIZES_MIN = (0.01, 2.0, 60.0, 1440.0, 1e5)


def _variants():
    """What `stepper.small_inverse` is in each run: LAPACK's pivoted inverse (the baseline) and the
    checked Gauss-Jordan elimination."""
    import jax.numpy as jnp

    from opioidsim.engine.small_inverse import small_inverse

    return (("lapack", "small_inverse", jnp.linalg.inv), ("gauss_jordan", "small_inverse", small_inverse))


def _blocks(model, n: int, h: float):
    """I − γhJ of every dense component at n sampled states: [((size, count), W of (n, k, s, s))]."""
    import jax.numpy as jnp

    from opioidsim.engine import stepper

    t, y, p = stepper._sample_points(model, n, np.random.default_rng(1))
    p = {k: jnp.asarray(v) for k, v in p.items()}
    struct = stepper.jacobian_structure(model, stepper.extra_inputs(model, p))
    _, jc = stepper.rhs_and_compressed_jacobian(model, struct, jnp.asarray(t), jnp.asarray(y), p)
    return [((size, k), jnp.eye(size) - stepper.ROS34PW2_GAMMA * h * block)
            for lev, blocks in zip(struct.levels, stepper.dense_blocks(struct, jc))
            for (size, k), block in zip(lev.groups, blocks)]


def bench_blocks(model, samples: int = 2000) -> list[dict]:
    import jax

    from opioidsim.engine.small_inverse import RESIDUAL_LIMIT, gauss_jordan_inverse, inverse_residual

    inverses = {label: inv for label, _, inv in _variants()}
    per_h = {h: _blocks(model, samples, h) for h in STEP_SIZES_MIN}
    rows = []
    for i, (shape, _) in enumerate(per_h[STEP_SIZES_MIN[1]]):
        w256 = per_h[STEP_SIZES_MIN[1]][i][1][:256]
        row = {"size": shape[0], "count": shape[1]}
        for label, inv in inverses.items():
            row[f"{label}_us"] = 1e6 * _fastest(jax.jit(inv), w256, repeats=50)
        row["ratio"] = row["lapack_us"] / row["gauss_jordan_us"]
        worst_lapack = worst_gj = 0.0
        missed = 0
        for h in STEP_SIZES_MIN:
            w = per_h[h][i][1]
            worst_lapack = max(worst_lapack, float(np.max(inverse_residual(w, inverses["lapack"](w)))))
            r = np.asarray(inverse_residual(w, gauss_jordan_inverse(w)))
            worst_gj = max(worst_gj, float(np.nanmax(r)))
            missed += int(np.sum(~(r <= RESIDUAL_LIMIT)))
        row.update(lapack_residual_max=worst_lapack, gauss_jordan_residual_max=worst_gj,
                   over_limit=missed, matrices=samples * shape[1] * len(STEP_SIZES_MIN))
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def bench_trial(subjects: int, repeats: int = 2) -> dict:
    from opioidsim.behavior import course
    from opioidsim.engine import core
    from opioidsim.scenarios import load_scenario
    from opioidsim.trial.simulate import simulate_trial
    from opioidsim.validation.treatment import MAT2, REDUCED

    sc = load_scenario(MAT2).with_cohort(subjects=subjects)
    tr = sc.trial.model_copy(update={"history": REDUCED["history"], "follow_up": REDUCED["follow_up"]})
    sc = sc.model_copy(update={"trial": tr, "duration": f"{tr.length_min:g}min"})
    row, uses = {"subjects": subjects}, {}
    for _ in range(repeats):  # alternating, the best of each
        for label, attr, inv in _variants():
            def run(label=label):
                course._course_runner.cache_clear()  # compiled units traced with the other inverse
                core._segment_runner.cache_clear()
                simulate_trial(sc)  # compile (or load from the cache)
                t0 = time.perf_counter()
                uses[label] = simulate_trial(sc)["uses"].values
                row[f"{label}_s"] = min(row.get(f"{label}_s", np.inf), time.perf_counter() - t0)
            with_stepper(attr, inv, run)
    row["ratio"] = row["lapack_s"] / row["gauss_jordan_s"]
    row["same_uses"] = bool(np.array_equal(uses["lapack"], uses["gauss_jordan"], equal_nan=True))
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 64, 512], help="subjects for one step")
    ap.add_argument("--cohorts", type=int, nargs="+", default=[64, 256], help="subjects for the engine runs")
    ap.add_argument("--days", type=float, default=5.0)
    ap.add_argument("--trial-subjects", type=int, default=32, help="subjects of the reduced V-MAT-2 trial")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from opioidsim.engine import stepper
    from opioidsim.model import default_model

    model = default_model()
    out = {"blocks": bench_blocks(model),
           "one_step": one_step_side_by_side(model, args.sizes, _variants(), {"ros34pw2": stepper.ros34pw2_step}),
           "engine": engine_side_by_side(model, args.cohorts, args.days, _variants(), repeats=3),
           "trial": bench_trial(args.trial_subjects)}
    if args.json:
        print(json.dumps(out))
        return
    print("block (size × count), 256 subjects | LAPACK µs | Gauss-Jordan µs | ratio | largest residual "
          "(LAPACK, Gauss-Jordan) | over the limit")
    for r in out["blocks"]:
        print(f"{r['size']} × {r['count']} | {r['lapack_us']:.1f} | {r['gauss_jordan_us']:.1f} | {r['ratio']:.2f}× | "
              f"{r['lapack_residual_max']:.1e}, {r['gauss_jordan_residual_max']:.1e} | "
              f"{r['over_limit']} of {r['matrices']}")
    print("\none ROS34PW2 step | LAPACK ms | Gauss-Jordan ms | ratio | max |Δy| (rel)")
    for r in out["one_step"]:
        print(f"{r['subjects']:>5} subjects | {r['lapack_ms']:7.2f} | {r['gauss_jordan_ms']:7.2f} | "
              f"{r['ratio']:4.2f}× | {r['max_diff_rel']:.1e}")
    print("\nengine | LAPACK subject-days/s | Gauss-Jordan | ratio | steps/subject-day (LAPACK, Gauss-Jordan) "
          "| records Δ (rel)")
    for r in out["engine"]:
        print(f"{r['subjects']:>5} subjects × {r['days']:g} d | {r['lapack_subject_days_per_s']:.1f} | "
              f"{r['gauss_jordan_subject_days_per_s']:.1f} | {r['ratio']:.2f}× | "
              f"{r['lapack_steps_per_subject_day']:.1f}, {r['gauss_jordan_steps_per_subject_day']:.1f} | "
              f"{r['records_max_diff_rel']:.1e}")
    r = out["trial"]
    print(f"\ntrial (V-MAT-2 reduced, {r['subjects']} subjects) | LAPACK s | Gauss-Jordan s | ratio | same uses")
    print(f"{r['lapack_s']:.1f} | {r['gauss_jordan_s']:.1f} | {r['ratio']:.2f}× | {'yes' if r['same_uses'] else 'no'}")


if __name__ == "__main__":
    main()
