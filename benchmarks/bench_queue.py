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


def segment_sweep(record_tries: np.ndarray, sizes=(16, 32, 64, 128, 256)) -> dict:
    """Σ_seg max_s Σ_{r∈seg}: the queue runner's loop iterations for other SEGMENT_RECORDS (the
    tries per record do not depend on the segmenting), and for one segment over the whole run."""
    out = {str(k): tries_summary(record_tries, k)["sum_seg_max_s_sum_r"] for k in sizes}
    out["whole run"] = int(record_tries.sum(axis=1).max())
    return out


def refill_makespan(per_subject: np.ndarray, slots: int) -> dict:
    """Loop iterations of a cohort of len(per_subject) subjects (their total tries) on `slots`
    slots: in consecutive batches (today: each batch waits for its slowest subject) and with each
    slot taking the next subject as soon as its own is done (list scheduling, no segment barrier)."""
    import heapq

    batches = int(sum(per_subject[a:a + slots].max() for a in range(0, len(per_subject), slots)))
    free = [0] * min(slots, len(per_subject))
    for t in per_subject:
        heapq.heappush(free, heapq.heappop(free) + int(t))
    return {"subjects": int(len(per_subject)), "slots": slots, "batches": batches, "refill": int(max(free)),
            "gain": batches / max(free)}


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
    row["record_tries"] = first["record_tries"]
    row["segment_sweep"] = segment_sweep(first["record_tries"])
    per_subject = first["record_tries"].sum(axis=1)
    row["refill"] = [refill_makespan(per_subject, k) for k in (8, 16, 32) if k < subjects]
    base = runners[0]
    rb, sb = results[base]
    for other in runners[1:]:
        ro, so = results[other]
        row[f"{other}_ratio"] = row[f"{other}_subject_days_per_s"] / row[f"{base}_subject_days_per_s"]
        row[f"{other}_cpu_ratio"] = row[f"{other}_subject_days_per_cpu_s"] / row[f"{base}_subject_days_per_cpu_s"]
        row[f"{other}_records_bitwise_identical"] = bool(np.array_equal(ro, rb, equal_nan=True))
        row[f"{other}_steps_identical"] = bool(np.array_equal(so["steps"], sb["steps"])
                                               and np.array_equal(so["record_tries"], sb["record_tries"]))
    brief = {k: v for k, v in row.items() if k not in ("tries", "segment_sweep", "refill", "record_tries")}
    brief["tries"] = {k: v for k, v in row["tries"].items() if k != "per_segment"}
    print(json.dumps(brief), file=sys.stderr, flush=True)
    return row


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=["bench:64", "stress:64"],
                    help="KIND:SUBJECTS, KIND bench (standard scenario) or stress (random physiology, 24 h)")
    ap.add_argument("--days", type=float, default=2.0, help="days of the bench scenario (stress: always 24 h)")
    ap.add_argument("--runners", nargs="+", default=["barrier", "queue"])
    ap.add_argument("--save-tries", metavar="NPZ", help="write each case's per-subject, per-record tries here")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from opioidsim.model import default_model

    model = default_model()
    rows = []
    for c in args.cases:
        kind, _, n = c.partition(":")
        rows.append(bench_case(model, kind, int(n or 64), args.days, tuple(args.runners)))
    if args.save_tries:
        np.savez_compressed(args.save_tries, **{f"{r['case']}_{r['subjects']}": r.pop("record_tries") for r in rows})
    for r in rows:
        r.pop("record_tries", None)
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
    for other in args.runners[1:]:
        print(f"\nsubject-days/s | {args.runners[0]} | {other} | ratio (wall) | ratio (CPU s) | "
              "records bitwise identical | steps identical")
        for r in rows:
            print(f"{r['case']} {r['subjects']} × {r['days']:g} d | {r[args.runners[0] + '_subject_days_per_s']:.3g} | "
                  f"{r[other + '_subject_days_per_s']:.3g} | {r[other + '_ratio']:.2f}× | {r[other + '_cpu_ratio']:.2f}× | "
                  f"{r[other + '_records_bitwise_identical']} | {r[other + '_steps_identical']}")

if __name__ == "__main__":
    main()
