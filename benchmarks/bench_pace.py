"""Each subject at its own pace (`engine.core.through_phases`, since stop 48) against the whole
batch a phase at a time (until stop 48: `together=True`, which holds every subject at a phase's end
until the batch is there), side by side in one process.

Three rows, each the best of `--rounds` runs taken in turn (the host's speed drifts), compilation
left out: a life course (`life-prison-release`'s supply, `--days` in the community, `--subjects`
people), a trial (the first `--trial-subjects` of `trial-buprenorphine-dose`, 14 days of history,
4 weeks) and an animal experiment (`rat-heroin-long-access`, its 8 rats). Each row gives both
loops' seconds, the ratio and whether every record is the same bit for bit.

    .venv/bin/python benchmarks/bench_pace.py [--subjects 64] [--days 60] [--trial-subjects 96]
        [--rounds 2] [--json]

Timings depend on the machine and its load: compare the ratios of one run.
"""
from __future__ import annotations

import argparse
import functools
import json
import sys

import numpy as np

from turns import in_turns

LIFE_TOML = """
[scenario]
name = "bench-pace-life"
[cohort]
subjects = {subjects}
seed = 3
[life]
decide_every = "4h"
[life.supply]
route = "iv"
dose = "20 mg"
fentanyl_contamination = 0.1
fentanyl_dose = "0.1 mg"
naloxone_bystander = 0.3
[[life.period]]
kind = "community"
duration = "{days}d"
"""


def _loop(together: bool):
    """A function that points the behaviour layer's runners at the loop asked for: its own compiled
    units (the runners' caches are per loop, so each is traced once and reused)."""
    from opioidsim.behavior import course, runner
    from opioidsim.engine import core

    built = [(course, "_course_runner"), (course, "_split_course_runner"), (runner, "_step_runner"),
             (runner, "_split_step_runner")]
    # the functions under the runners' caches (a variant set up before wraps the same ones)
    mine = {k: functools.lru_cache(maxsize=8)(getattr(k[0], k[1]).__wrapped__) for k in built}
    loop = functools.partial(core.through_phases, together=together)
    mine.update({(course, "through_phases"): loop, (runner, "through_phases"): loop})

    def use():
        for (mod, name), f in mine.items():
            setattr(mod, name, f)
    return use



def _way(together: bool, run):
    use = _loop(together)

    def way():
        use()
        return run()
    return way


def _same(a, b) -> bool:
    return all(np.array_equal(np.asarray(a[v].values, float), np.asarray(b[v].values, float), equal_nan=True)
               for v in a.data_vars)


def bench(label: str, run, rounds: int) -> dict:
    ways = {"together": _way(True, run), "own pace": _way(False, run)}
    for way in ways.values():
        way()  # compile (or load from the cache); the jit caches outlive the runners' caches
    seconds, out = in_turns(ways, rounds)
    row = {"run": label, "together_s": seconds["together"], "own_pace_s": seconds["own pace"],
           "ratio": seconds["together"] / seconds["own pace"], "same_records": _same(out["together"], out["own pace"])}
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def main(argv=None) -> int:
    from opioidsim.behavior.course import simulate_life
    from opioidsim.behavior.runner import simulate_paradigm
    from opioidsim.scenarios import load_scenario
    from opioidsim.scenarios.schema import Scenario
    from opioidsim.trial.simulate import simulate_trial

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subjects", type=int, default=64)
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--trial-subjects", type=int, default=96, help="0: no trial row")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    life = Scenario.from_toml_text(LIFE_TOML.format(subjects=a.subjects, days=a.days))
    rows = [bench(f"life course, {a.subjects} subjects, {a.days} days", lambda: simulate_life(life), a.rounds)]
    if a.trial_subjects:
        trial = load_scenario("trial-buprenorphine-dose").with_cohort(subjects=a.trial_subjects)
        trial = trial.with_course(history="14d", follow_up="4w")
        rows.append(bench(f"trial-buprenorphine-dose, {a.trial_subjects} subjects, 14 d + 4 w",
                          lambda: simulate_trial(trial), a.rounds))
    rat = load_scenario("rat-heroin-long-access")
    rows.append(bench("rat-heroin-long-access, 8 rats", lambda: simulate_paradigm(rat), a.rounds))
    if a.json:
        print(json.dumps(rows))
        return 0
    print(f"best of {a.rounds} runs taken in turn")
    print(f"  {'run':<52}{'together s':>12}{'own pace s':>12}{'ratio':>8}  same records")
    for r in rows:
        print(f"  {r['run']:<52}{r['together_s']:>12.2f}{r['own_pace_s']:>12.2f}{r['ratio']:>7.2f}×  "
              f"{r['same_records']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
