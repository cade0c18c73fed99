"""Error sizes of stop 45 against those until stop 44, side by side in one process.

Since stop 45 an absorption depot's error is measured against itself and the drug in the blood it
feeds (`State.error_scale_with`, model/pk.py). The baseline is the same model with the depots
measured alone. For each scenario (all with variability on), the best of `--rounds` runs taken in
turn (the host's speed drifts), compilation left out: steps per subject-day and subject-days per
second with each, the ratio, and the largest difference of the records relative to each readout's
largest value.

- `iv-heroin`: `opioidsim bench`'s standard scenario (IV heroin 20 mg every 8 h), no depot: the
  control, whose two runs must agree exactly;
- `methadone`: 80 mg orally once a day, IV heroin 20 mg every other day;
- `buprenorphine`: 16 mg sublingually once a day, IV heroin 20 mg every other day.

    .venv/bin/python benchmarks/bench_error_sizes.py [--subjects 64] [--days 10] [--rounds 3] [--json]

Timings depend on the machine and its load: compare the ratios of one run.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from turns import compiled_engine_run, in_turns, largest_relative_difference


def baseline_model():
    """The default model with stop 44's error sizes: each absorption depot measured alone."""
    from opioidsim.model.model import Model, default_modules
    from opioidsim.model.pk import PharmacokineticsModule

    def alone(s):
        return dataclasses.replace(s, error_scale_with=()) if s.name.endswith("_depot") else s

    class DepotsAlone(PharmacokineticsModule):
        states = tuple(alone(s) for s in PharmacokineticsModule.states)

    return Model([DepotsAlone() if type(m) is PharmacokineticsModule else m for m in default_modules()])


def scenarios(subjects: int, days: float) -> dict:
    from opioidsim.bench import BenchConfig, standard_scenario
    from opioidsim.scenarios import Dose, Scenario

    def maintained(drug, mg, route):
        return Scenario(name=f"bench-{drug}", duration=f"{days:g}d", record_every="1h",
                        cohort={"subjects": subjects, "seed": 0},
                        doses=[Dose(drug, mg, route=route, at="0h", every="24h", until=f"{days:g}d"),
                               Dose("heroin", "20 mg", route="iv", at="6h", every="48h", until=f"{days:g}d")])

    return {"iv-heroin": standard_scenario(BenchConfig(subjects=subjects, days=days)),
            "methadone": maintained("methadone", "80 mg", "oral"),
            "buprenorphine": maintained("buprenorphine", "16 mg", "sublingual")}


def bench(label: str, sc, rounds: int) -> dict:
    from opioidsim.engine.core import run_model
    from opioidsim.model import default_model

    days, subjects = sc.duration_min / 1440.0, sc.cohort.subjects
    ways = {which: compiled_engine_run(run_model(sc, whole), sc, subjects)
            for which, whole in (("until_stop_44", baseline_model()), ("now", default_model()))}
    seconds, last = in_turns(ways, rounds)
    row = {"scenario": label, "subjects": subjects, "days": days}
    for which, (_, stats) in last.items():
        row[f"{which}_steps_per_subject_day"] = float(stats["steps"].mean()) / days
        row[f"{which}_subject_days_per_s"] = subjects * days / seconds[which]
    row["ratio"] = row["now_subject_days_per_s"] / row["until_stop_44_subject_days_per_s"]
    old, new = last["until_stop_44"][0], last["now"][0]
    row["max_relative_difference"] = largest_relative_difference(old, new)
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subjects", type=int, default=64)
    ap.add_argument("--days", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    if a.subjects < 1 or a.days <= 0 or a.rounds < 1:
        ap.error(f"--subjects and --rounds must be ≥ 1 and --days > 0, got {a.subjects}, {a.rounds}, {a.days}")
    rows = [bench(label, sc, a.rounds) for label, sc in scenarios(a.subjects, a.days).items()]
    if a.json:
        print(json.dumps(rows))
        return 0
    print(f"{'scenario':14s} {'steps/sd before':>15s} {'now':>7s} {'sd/s before':>11s} {'now':>8s} {'ratio':>6s} "
          f"{'max rel diff':>12s}")
    for r in rows:
        print(f"{r['scenario']:14s} {r['until_stop_44_steps_per_subject_day']:15.1f} "
              f"{r['now_steps_per_subject_day']:7.1f} {r['until_stop_44_subject_days_per_s']:11.1f} "
              f"{r['now_subject_days_per_s']:8.1f} {r['ratio']:6.2f} {r['max_relative_difference']:12.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
