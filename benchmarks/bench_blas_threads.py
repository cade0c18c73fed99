"""What one OpenBLAS thread buys: the engine with OpenBLAS at one thread per core against one thread.

jaxlib's LAPACK kernels (the stepper's batched LU factorisations and triangular solves) run in
scipy's OpenBLAS. opioidsim now starts it with one thread (opioidsim/__init__.py); this measures
why. Scenario: IV heroin 20 mg every 8 h for a day, recorded hourly. In one process, for each
cohort size, the same compiled engine runs alternately with OpenBLAS limited (threadpoolctl) to
the machine's cores and to one thread, `--repeats` times each; the table gives the median
subject-days per second of each and their ratio, and checks that the records are identical.

Run: ``.venv/bin/python benchmarks/bench_blas_threads.py [--subjects 4 16 64] [--repeats 3]
[--json]``. The ratio grows with the machine's load (XLA's threads and OpenBLAS's compete for the
cores); compare ratios measured side by side, not seconds.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def _scenario(n_subjects: int):
    from opioidsim.scenarios import Dose, Scenario

    return Scenario(duration="1d", record_every="1h", cohort={"subjects": n_subjects, "seed": 0},
                    doses=[Dose("heroin", "20 mg", route="iv", at="1h", every="8h")])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, nargs="+", default=[4, 16, 64])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    import opioidsim
    from threadpoolctl import threadpool_limits

    cores = os.cpu_count() or 1
    rows = []
    for n in args.subjects:
        sc = _scenario(n)
        opioidsim.simulate(sc)  # compile (or load from the cache) outside the timings
        times: dict[int, list[float]] = {cores: [], 1: []}
        records = {}
        for _ in range(args.repeats):
            for threads in (cores, 1):
                with threadpool_limits(threads, user_api="blas"):
                    t0 = time.perf_counter()
                    ds = opioidsim.simulate(sc)
                    times[threads].append(time.perf_counter() - t0)
                records[threads] = ds["nac_dopamine"].values
        same = bool(np.array_equal(records[cores], records[1]))
        many, one = float(np.median(times[cores])), float(np.median(times[1]))
        rows.append({"subjects": n, "openblas_threads_many": cores, "subject_days_per_s_many": n / many,
                     "subject_days_per_s_one": n / one, "one_over_many": many / one, "identical_records": same})
    if args.json:
        print(json.dumps({"load_average_1min": os.getloadavg()[0], "rows": rows}, indent=1))
        return 0
    print(f"OpenBLAS threads: {cores} (one per core) against 1; load average {os.getloadavg()[0]:.1f}")
    print(f"{'subjects':>8}  {'subj-days/s, ' + str(cores) + ' thr':>18}  {'subj-days/s, 1 thr':>18}  "
          f"{'ratio 1/' + str(cores):>10}  identical")
    for r in rows:
        print(f"{r['subjects']:>8}  {r['subject_days_per_s_many']:>18.3f}  {r['subject_days_per_s_one']:>18.3f}  "
              f"{r['one_over_many']:>9.1f}×  {r['identical_records']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
