"""Run two (or more) ways of doing the same work in turn, round after round, in one process: this
host's speed drifts by up to 2x within minutes, so each way keeps its fastest round and the ratio
of those compares like with like. Shared by bench_inert.py, bench_devices.py and bench_error_sizes.py."""
from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np


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


def compiled_engine_run(model, sc, subjects: int) -> Callable[[], tuple]:
    """`integrate` of scenario `sc`'s first `subjects` on `model` (whole or reduced), compiled (or
    loaded from the cache) now on a one-record run; returns a way giving (records, stats)."""
    from opioidsim.engine import integrate, make_grid
    from opioidsim.engine.core import _setup

    grid, p, events, names = _setup(sc, model, range(subjects))
    y0 = model.initial_state(p)
    integrate(model, make_grid(sc.record_every_min, sc.record_every_min), y0, p, events, names)

    def run():
        stats: dict = {}
        return integrate(model, grid, y0, p, events, names, stats=stats), stats

    return run


def largest_relative_difference(reference, other) -> float:
    """The largest difference of two runs' records (subjects, records, readouts), relative to each
    readout's largest magnitude in `reference`."""
    scale = np.maximum(np.abs(reference).max(axis=(0, 1)), 1e-300)
    return float((np.abs(other - reference).max(axis=(0, 1)) / scale).max())
