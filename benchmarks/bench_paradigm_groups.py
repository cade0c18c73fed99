"""Groups of an animal experiment in one batched run vs one run per group.

The design of `tests/test_paradigm_groups.py` at bench size: a shared 1 h training session, then
ACCESS sessions of 1 h (ShA) or 6 h (LgA), N rats per group. Measured in one process, after a
warm-up run of each form (compilation, or loading from the persistent cache, is excluded):

- baseline: one run per group (each group's experiment on its own, `Paradigm.group_paradigm`);
- grouped: both groups in one run of the scenario with [[paradigm.group]] tables.

Prints wall time per form and the ratio grouped / baseline, and checks that each group's session
infusions agree between the forms where the subjects are the same rats (the ShA group: subject
ids 0…N−1 in both). Timings depend on the machine and its load.

Run: ``.venv/bin/python benchmarks/bench_paradigm_groups.py [--rats N] [--access K] [--repeat R]``.
"""
from __future__ import annotations

import argparse
import time


def _scenarios(rats: int, access: int):
    from opioidsim.scenarios import Scenario

    text = f"""
[scenario]
name = "bench-groups"
[cohort]
seed = 5
species = "rat"
[paradigm]
infusion = "60 ug/kg"
decide_every = "2min"
[[paradigm.phase]]
kind = "self_administration"
session_length = "1h"
[[paradigm.phase]]
name = "access"
kind = "self_administration"
sessions = {access}
session_length = "1h"
[[paradigm.group]]
name = "ShA"
subjects = {rats}
[[paradigm.group]]
name = "LgA"
subjects = {rats}
phase.access.session_length = "6h"
"""
    grouped = Scenario.from_toml_text(text)
    separate = []
    for g in grouped.paradigm.groups:
        par = grouped.paradigm.group_paradigm(g.name)
        separate.append(grouped.model_copy(update={"paradigm": par, "cohort": grouped.cohort.model_copy(
            update={"subjects": g.subjects})}))
    return grouped, separate


def main() -> None:
    import numpy as np

    from opioidsim.behavior import simulate_paradigm

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rats", type=int, default=2, help="rats per group")
    ap.add_argument("--access", type=int, default=2, help="access sessions")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    grouped, separate = _scenarios(args.rats, args.access)
    simulate_paradigm(grouped)  # warm-up: compile or load
    for s in separate:
        simulate_paradigm(s)
    t_base, t_grp = [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        runs = [simulate_paradigm(s) for s in separate]
        t_base.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        both = simulate_paradigm(grouped)
        t_grp.append(time.perf_counter() - t0)
    same = np.array_equal(runs[0].session_infusions.values, both.session_infusions.values[:args.rats])
    b, g = min(t_base), min(t_grp)
    print(f"{args.rats} rats per group, {args.access} access sessions (ShA 1 h, LgA 6 h); best of {args.repeat}")
    print(f"{'form':<28}{'wall (s)':>10}{'ratio':>8}")
    print(f"{'one run per group (base)':<28}{b:>10.2f}{1.0:>8.2f}")
    print(f"{'one run with both groups':<28}{g:>10.2f}{g / b:>8.2f}")
    print(f"ShA session infusions identical in both forms: {same}")


if __name__ == "__main__":
    main()
