"""Run two (or more) ways of doing the same work in turn, round after round, in one process: this
host's speed drifts by up to 2x within minutes, so each way keeps its fastest round and the ratio
of those compares like with like. Shared by bench_inert.py and bench_devices.py."""
from __future__ import annotations

import math
import time
from typing import Callable


def in_turns(ways: dict[str, Callable[[], object]], rounds: int) -> tuple[dict[str, float], dict[str, object]]:
    """Call each way once per round, in turn; returns each way's fastest seconds and its last result.
    Compile (warm) every way before: the first round is timed too."""
    best = {label: math.inf for label in ways}
    last: dict[str, object] = {}
    for _ in range(rounds):
        for label, run in ways.items():
            t0 = time.perf_counter()
            last[label] = run()
            best[label] = min(best[label], time.perf_counter() - t0)
    return best, last
