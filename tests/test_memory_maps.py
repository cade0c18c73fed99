"""A compiled segment of the engine must not use up the process's memory mappings.

XLA's CPU fusion emitters give every fused kernel its own JIT object in three memory regions: a
compiled ROS34PW2 segment added ~2,900 mappings, and the test suite's process reached Linux's
limit (vm.max_map_count, 65,530 by default) after some 20 compilations, where XLA aborted.
`import opioidsim` turns those emitters off (opioidsim/__init__.py) unless the user set the flag.
Each check runs in a fresh interpreter, since XLA reads its flags when its CPU backend starts.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = """
import json
import numpy as np
import opioidsim
from opioidsim.engine import integrate, make_grid, simulate
from opioidsim.scenarios import Dose, Scenario

def mappings():
    with open("/proc/self/maps") as f:
        return sum(1 for _ in f)

sc = Scenario(duration="1h", record_every="10min", cohort={"subjects": 2, "seed": 1},
              doses=[Dose("heroin", "10 mg", route="iv", at="5min")], readouts=["ventilation", "nac_dopamine"])
simulate(sc)  # the first compilation also starts the backend: measure the second program
before = mappings()
simulate(sc.with_cohort(subjects=3))  # another batch shape: another compiled segment
print(json.dumps(mappings() - before))
"""


def _mappings_of_one_segment(*xla_flags: str | None) -> list[int]:
    """The mappings one compiled segment adds under each XLA_FLAGS setting (None: unset), each probe in
    a fresh interpreter, all of them at once (each compiles on one core for about a minute)."""
    probes = []
    for flags in xla_flags:
        env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
        env["OPIOIDSIM_JAX_CACHE"] = "0"  # compile, do not load from the cache
        if flags is not None:
            env["XLA_FLAGS"] = flags
        probes.append(subprocess.Popen([sys.executable, "-c", PROBE], env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True))
    try:
        counts = []
        for probe in probes:
            out, err = probe.communicate(timeout=600)
            assert probe.returncode == 0, err[-2000:]
            counts.append(json.loads(out.strip().splitlines()[-1]))
        return counts
    finally:
        for probe in probes:  # none left running after a failure
            probe.kill()
            probe.wait()


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="counts Linux memory mappings")
def test_a_compiled_segment_leaves_room_for_many_more_under_the_mapping_limit():
    limit = 65530  # Linux's default vm.max_map_count
    default, emitters_on = _mappings_of_one_segment(None, "--xla_cpu_use_fusion_emitters=true")
    assert 0 < default < limit / 40, default  # the bench scenario's segment: 715
    # the user's own setting is kept: with the fusion emitters on, the same program takes ~4× more
    # (measured ~2,900), which had the test suite's process abort
    assert emitters_on > 2 * default, (emitters_on, default)
