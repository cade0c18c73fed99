"""The engine's two segment runners side by side in one process: the per-record barrier (as first
written) against the per-subject queue (each subject advances to its own next record).

For each cohort:

- **where the tries go**, from the per-subject, per-record attempted steps (`stats["record_tries"]`;
  the same with either runner): Σ_r max_s (what the barrier runner pays: every record waits for
  its slowest subject), Σ_seg max_s Σ_{r∈seg} (what the queue runner pays: each segment of
  SEGMENT_RECORDS records waits for its slowest subject), max_s Σ_r (no barrier at all but the
  end of the run) and mean_s Σ_r (every subject's own tries: a perfectly balanced batch, the floor
  of a refill of finished subjects' slots). The barrier/queue ratio of the first two is the gain
  the queue can bring at equal cost per try;
- **measured**: subject-days per second with each runner (compilation, or loading it from the
  cache, left out: a short run of the same shapes first), their ratio, the loop iterations
  (batch tries) each made, and whether the records and step counts are bitwise identical.

Cohorts: `opioidsim bench`'s standard scenario (IV heroin 20 mg three times a day, genetic and
between-subject variability, hourly records, key readouts) and the random-physiology stress
scenario of issue 9 (`opioidsim.reliability`: every drug, overdose and naloxone, 24 h, 5 min
records, every readout, random subjects).

    .venv/bin/python benchmarks/bench_queue.py [--cases bench:64 stress:64 bench:512] [--days 2] [--json]

Timings depend on the machine and its load: compare the ratios of one run.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def tries_summary(record_tries: np.ndarray, segment_records: int) -> dict:
    """record_tries (subjects, records) → the iteration counts each way of batching would pay."""
    n_rec = record_tries.shape[1]
    per_record_max = record_tries.max(axis=0)
    segs = [record_tries[:, a:a + segment_records] for a in range(0, n_rec, segment_records)]
    per_segment_max = np.array([s.sum(axis=1).max() for s in segs])
    per_subject = record_tries.sum(axis=1)
    out = {"records": int(n_rec), "segments": len(segs),
           "sum_r_max_s": int(per_record_max.sum()),
           "sum_seg_max_s_sum_r": int(per_segment_max.sum()),
           "max_s_sum_r": int(per_subject.max()),
           "mean_s_sum_r": float(per_subject.mean()),
           "median_s_sum_r": float(np.median(per_subject))}
    out["gain_queue"] = out["sum_r_max_s"] / out["sum_seg_max_s_sum_r"]
    out["gain_no_barrier"] = out["sum_r_max_s"] / out["max_s_sum_r"]
    out["gain_balanced"] = out["sum_r_max_s"] / out["mean_s_sum_r"]
    # per segment: Σ_r max_s against max_s Σ_r within each segment
    out["per_segment"] = [{"sum_r_max_s": int(s.max(axis=0).sum()), "max_s_sum_r": int(s.sum(axis=1).max()),
                           "mean_s_sum_r": float(s.sum(axis=1).mean())} for s in segs]
    return out


def case_setup(model, kind: str, subjects: int, days: float, seed: int = 0):
    """(grid, p, events, y0, readout names, subject-days) of one benchmark cohort."""
    from opioidsim import bench, reliability
    from opioidsim.engine import make_grid
    from opioidsim.engine.dosing import compile_doses

    if kind == "bench":
        sc = bench.standard_scenario(bench.BenchConfig(subjects=subjects, days=days, seed=seed))
        grid, p, events, y0 = bench._setup(model, sc)
        names = tuple(n for n in bench.KEY_READOUTS if n in model.readouts)
    elif kind == "stress":
        sc = reliability.stress_scenario(subjects=subjects, seed=seed)
        grid = make_grid(sc.duration_min, sc.record_every_min)
        p = reliability.random_parameters(model, sc, subjects, seed)
        events = compile_doses(model, sc.doses, sc.duration_min, grid.h, p)
        y0 = model.initial_state(p)
        names = model.readouts
    else:
        raise ValueError(f"case kind must be bench or stress, got {kind!r}")
    return sc, grid, p, events, y0, names, subjects * sc.duration_min / 1440.0


def bench_case(model, kind: str, subjects: int, days: float, runners=("barrier", "queue")) -> dict:
    from opioidsim.engine import core, integrate, make_grid

    sc, grid, p, events, y0, names, subject_days = case_setup(model, kind, subjects, days)
    short = make_grid(sc.record_every_min, sc.record_every_min)
    row: dict = {"case": kind, "subjects": subjects, "days": sc.duration_min / 1440.0,
                 "segment_records": core.SEGMENT_RECORDS}
    results = {}
    for runner in runners:
        t0 = time.perf_counter()
        integrate(model, short, y0, p, events, names, runner=runner)  # compile (or load from the cache)
        row[f"{runner}_compile_s"] = time.perf_counter() - t0
        stats: dict = {}
        t0, c0 = time.perf_counter(), time.process_time()
        recs = integrate(model, grid, y0, p, events, names, stats=stats, runner=runner)
        run_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
        row[f"{runner}_subject_days_per_s"] = subject_days / run_s
        row[f"{runner}_subject_days_per_cpu_s"] = subject_days / cpu_s
        results[runner] = (recs, stats)
        print(json.dumps({k: v for k, v in row.items()}), file=sys.stderr, flush=True)
    first = results[runners[0]][1]
    row["tries"] = tries_summary(first["record_tries"], core.SEGMENT_RECORDS)
    row["steps_per_subject_day"] = float(first["steps"].mean()) / row["days"]
    if len(runners) == 2:
        (ra, sa), (rb, sb) = results[runners[0]], results[runners[1]]
        row["ratio"] = row[f"{runners[1]}_subject_days_per_s"] / row[f"{runners[0]}_subject_days_per_s"]
        row["cpu_ratio"] = row[f"{runners[1]}_subject_days_per_cpu_s"] / row[f"{runners[0]}_subject_days_per_cpu_s"]
        row["records_bitwise_identical"] = bool(np.array_equal(ra, rb, equal_nan=True))
        row["steps_identical"] = bool(np.array_equal(sa["steps"], sb["steps"])
                                      and np.array_equal(sa["record_tries"], sb["record_tries"]))
    print(json.dumps({k: v for k, v in row.items() if k != "tries"} | {"tries": {
        k: v for k, v in row["tries"].items() if k != "per_segment"}}), file=sys.stderr, flush=True)
    return row


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=["bench:64", "stress:64"],
                    help="KIND:SUBJECTS, KIND bench (standard scenario) or stress (random physiology, 24 h)")
    ap.add_argument("--days", type=float, default=2.0, help="days of the bench scenario (stress: always 24 h)")
    ap.add_argument("--runners", nargs="+", default=["barrier", "queue"])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from opioidsim.model import default_model

    model = default_model()
    rows = []
    for c in args.cases:
        kind, _, n = c.partition(":")
        rows.append(bench_case(model, kind, int(n or 64), args.days, tuple(args.runners)))
    if args.json:
        print(json.dumps(rows))
        return
    print("tries per batch (loop iterations) | records | Σ_r max_s (barrier) | Σ_seg max_s Σ_r (queue) | "
          "max_s Σ_r | mean_s Σ_r | gain queue | gain no barrier | gain balanced")
    for r in rows:
        t = r["tries"]
        print(f"{r['case']} {r['subjects']} × {r['days']:g} d | {t['records']} | {t['sum_r_max_s']} | "
              f"{t['sum_seg_max_s_sum_r']} | {t['max_s_sum_r']} | {t['mean_s_sum_r']:.0f} | "
              f"{t['gain_queue']:.2f}× | {t['gain_no_barrier']:.2f}× | {t['gain_balanced']:.2f}×")
    if all("ratio" in r for r in rows):
        print("\nsubject-days/s | barrier | queue | ratio (wall) | ratio (CPU s) | records bitwise identical | steps identical")
        for r in rows:
            print(f"{r['case']} {r['subjects']} × {r['days']:g} d | {r['barrier_subject_days_per_s']:.3g} | "
                  f"{r['queue_subject_days_per_s']:.3g} | {r['ratio']:.2f}× | {r['cpu_ratio']:.2f}× | "
                  f"{r['records_bitwise_identical']} | {r['steps_identical']}")


if __name__ == "__main__":
    main()
