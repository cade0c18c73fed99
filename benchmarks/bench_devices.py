"""A batch split over all the devices, one per core (`engine/devices.py`, now), against the batch
on one device (until stop 44), side by side in one process.

Two tables, each the best of `--rounds` runs taken in turn (the host's speed drifts), compilation
left out:

- **the engine** (`integrate`) on `opioidsim bench`'s standard scenario (IV heroin 20 mg every 8 h,
  variability on): devices, subject-days per second each way, the ratio, and whether the records
  are the same bit for bit;
- **a trial**: the first `--trial-subjects` subjects of a built-in trial (`simulate_trial`),
  seconds per run each way, the ratio, and whether every variable of the results is the same bit
  for bit.

    .venv/bin/python benchmarks/bench_devices.py [--subjects 256] [--days 30] [--rounds 3]
        [--trial trial-methadone-vs-no-substitution] [--trial-subjects 64] [--json]

Timings depend on the machine and its load: compare the ratios of one run. On a one-core machine
both ways are the same.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from opioidsim.engine.devices import available
from turns import in_turns


def bench_engine(subjects: int, days: float, rounds: int) -> dict:
    from opioidsim.bench import BenchConfig, standard_scenario
    from opioidsim.engine import integrate, make_grid
    from opioidsim.engine.core import _setup, run_model

    sc = standard_scenario(BenchConfig(subjects=subjects, days=days))
    model = run_model(sc)
    grid, p, events, names = _setup(sc, model, range(subjects))
    y0 = model.initial_state(p)
    devices = {"one": 1, "all": available()}
    for d in devices.values():  # compile (or load from the cache)
        integrate(model, make_grid(sc.record_every_min, sc.record_every_min), y0, p, events, names, devices=d)
    seconds, records = in_turns({label: (lambda d=d: integrate(model, grid, y0, p, events, names, devices=d))
                                 for label, d in devices.items()}, rounds)
    row = {"subjects": subjects, "days": days, "devices": available(),
           "one_subject_days_per_s": subjects * days / seconds["one"],
           "all_subject_days_per_s": subjects * days / seconds["all"]}
    row["ratio"] = seconds["one"] / seconds["all"]
    row["same_records"] = bool(np.array_equal(records["one"], records["all"], equal_nan=True))
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def bench_trial(name: str, subjects: int, rounds: int) -> dict:
    from opioidsim.scenarios import load_scenario
    from opioidsim.trial.simulate import simulate_trial

    sc = load_scenario(name)
    devices = {"one": 1, "all": available()}
    for d in devices.values():  # compile (or load from the cache): the same batch sizes
        simulate_trial(sc, subjects=range(subjects), devices=d)
    seconds, out = in_turns({label: (lambda d=d: simulate_trial(sc, subjects=range(subjects), devices=d))
                             for label, d in devices.items()}, rounds)
    row = {"trial": name, "subjects": subjects, "devices": available(), "one_s": seconds["one"],
           "all_s": seconds["all"], "ratio": seconds["one"] / seconds["all"]}
    row["same_results"] = all(np.array_equal(out["one"][v].values, out["all"][v].values, equal_nan=True)
                              for v in out["one"].data_vars)
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subjects", type=int, default=256)
    ap.add_argument("--days", type=float, default=30.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--trial", default="trial-methadone-vs-no-substitution")
    ap.add_argument("--trial-subjects", type=int, default=64, help="0: no trial table")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    engine = bench_engine(a.subjects, a.days, a.rounds)
    trial = bench_trial(a.trial, a.trial_subjects, max(1, a.rounds - 1)) if a.trial_subjects else None
    if a.json:
        print(json.dumps({"engine": engine, "trial": trial}))
        return 0
    e = engine
    print(f"engine, {e['subjects']} subjects × {e['days']:g} days (bench scenario), best of {a.rounds}")
    print(f"  one device: {e['one_subject_days_per_s']:.1f} subject-days/s; {e['devices']} devices: "
          f"{e['all_subject_days_per_s']:.1f}; ratio {e['ratio']:.2f}×; same records: {e['same_records']}")
    if trial:
        t = trial
        print(f"\ntrial {t['trial']}, {t['subjects']} subjects: one device {t['one_s']:.1f} s, {t['devices']} "
              f"devices {t['all_s']:.1f} s, ratio {t['ratio']:.2f}×, same results: {t['same_results']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
