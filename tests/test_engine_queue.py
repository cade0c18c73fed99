"""The per-subject queue runner (the default) against the per-record barrier runner it replaced.

Both take, for every subject, the same sequence of steps — limit min(next record, next dose), the
same step size carried — so the records must be bitwise identical, and so must the attempted steps
per record (`stats["record_tries"]`). The bookkeeping is checked on a toy model (compiles in under
a second) with per-subject doses on and between record times, a failing subject and segments of 7
records; the physiology on random subjects of the issue-9 stress scenario and on a multi-dose
cohort (6 subjects, the shape of test_reliability_physiology's short run, so the queue runner's
compiled program is shared with it).
"""
from __future__ import annotations

import functools

import numpy as np
import pytest

import opioidsim.engine.core as core  # noqa: I001  (enables 64-bit JAX first)

from opioidsim import reliability as R
from opioidsim.engine import integrate, make_grid, subject_parameters
from opioidsim.engine.core import STATUS_FAILED
from opioidsim.engine.dosing import DoseEvents, compile_doses
from opioidsim.model import default_model
from opioidsim.scenarios import Dose, Scenario
from toy_models import BOLUS, BOLUS_NAMES, stop_after

NO_EVENT = np.iinfo(np.int64).max // 4


# the toy model of test_engine (tests/toy_models.py): kel on the dose target, k on the forced state
TOY, TOY_NAMES = BOLUS, BOLUS_NAMES
TOY_GRID = make_grid(300.0, 0.5, max_step=0.125)  # h = 0.125 min, stride 4, 601 records


def toy_cohort(n: int = 7):
    """Subjects 10× apart in stiffness and frequency; doses on record times (multiples of the
    stride 4), between them, and two in the same step (subject 1)."""
    rng = np.random.default_rng(3)
    p = {k: np.full(n, v.internal_value) for k, v in TOY.parameters.items()}
    p["kel"] = p["kel"] * np.exp(rng.normal(0, 0.4, n))
    p["k"] = np.geomspace(0.1, 30.0, n)
    p["omega"] = np.geomspace(0.2, 4.0, n)[::-1].copy()
    step = np.full((n, 4), NO_EVENT, dtype=np.int64)
    step[:, 0] = 4 * rng.integers(1, 300, n)  # on a record time
    step[:, 1] = step[:, 0] + rng.integers(1, 1500, n)  # anywhere
    step[1, 2] = step[1, 1]  # two doses in one step
    step.sort(axis=1)
    amount = np.where(step < NO_EVENT, rng.uniform(1, 10, (n, 4)), 0.0)
    return p, DoseEvents(step, np.zeros((n, 4), dtype=np.int32), amount, np.array([]))


def both(model, grid, y0, p, events, names, **kw):
    out = {}
    for runner in ("barrier", "queue"):
        stats: dict = {}
        out[runner] = (integrate(model, grid, y0, p, events, names, stats=stats, runner=runner, **kw), stats)
    return out["barrier"], out["queue"]


def assert_identical(a, b):
    (ra, sa), (rb, sb) = a, b
    np.testing.assert_array_equal(rb, ra)  # NaN equals NaN here: a failed subject's records too
    for key in ("steps", "record_tries", "status", "failed_at_min", "y_final"):
        np.testing.assert_array_equal(sb[key], sa[key], err_msg=key)


@pytest.fixture
def short_segments(monkeypatch):
    """Segments of 7 records (86 segments, a partial last one), on a fresh runner cache so that
    SEGMENT_RECORDS is traced again."""
    monkeypatch.setattr(core, "SEGMENT_RECORDS", 7)
    monkeypatch.setattr(core, "_segment_runner", functools.lru_cache(maxsize=4)(core._segment_runner.__wrapped__))


def test_queue_equals_barrier_on_a_heterogeneous_toy_cohort(short_segments):
    p, ev = toy_cohort()
    amount = ev.amount.copy()
    amount[4, 1] = np.nan  # subject 4's second dose is undefined: it fails there, the others go on
    ev = DoseEvents(ev.step, ev.target, amount, ev.times_min)
    a, b = both(TOY, TOY_GRID, TOY.initial_state(p), p, ev, TOY_NAMES)
    assert_identical(a, b)
    st = a[1]
    assert st["status"][4] == STATUS_FAILED and (st["status"] == STATUS_FAILED).sum() == 1
    # the cohort really is heterogeneous: subjects need different numbers of tries
    assert st["steps"].max() > 1.3 * st["steps"].min()
    # and the slowest subject differs between records (what the barrier pays for)
    assert len(set(np.argmax(st["record_tries"], axis=0))) > 1


@pytest.mark.parametrize("minutes, intervals", [(35.0, 70), (36.5, 73)])
def test_record_tries_add_up_to_the_steps_and_are_the_stride_at_a_fixed_step(short_segments, minutes, intervals):
    """Every try belongs to exactly one record interval, whether the run is a whole number of
    segments (7 × 10 records) or ends in a partial one (7 × 10 + 3): nothing is integrated past
    the end, so the per-record tries add up to each subject's steps, and the final state is the
    last record's (the toy's readouts are its states). At a fixed step (one quantum, always
    accepted) a record takes exactly `stride` tries, doses or not."""
    p, ev = toy_cohort()
    grid = make_grid(minutes, 0.5, max_step=0.125)
    y0 = TOY.initial_state(p)
    for runner in ("barrier", "queue"):
        st: dict = {}
        recs = integrate(TOY, grid, y0, p, ev, TOY_NAMES, stats=st, runner=runner)
        np.testing.assert_array_equal(st["record_tries"].sum(axis=1), st["steps"])
        assert st["record_tries"].shape == (7, intervals)
        np.testing.assert_array_equal(st["y_final"], recs[:, -1, :])
        st = {}
        integrate(TOY, grid, y0, p, ev, TOY_NAMES, stats=st, runner=runner, adaptive=False)
        assert (st["record_tries"] == grid.stride).all()
        assert (st["steps"] == intervals * grid.stride).all()


def test_queue_resumes_to_the_same_records(tmp_path, short_segments):
    """A queue run stopped after 5 segments and continued from its checkpoint equals the whole
    barrier run bit for bit (the carried state at a segment's end is the same in both)."""
    from opioidsim.io.checkpoint import Checkpoint

    p, ev = toy_cohort()
    y0 = TOY.initial_state(p)
    whole = integrate(TOY, TOY_GRID, y0, p, ev, TOY_NAMES, runner="barrier")
    ck = Checkpoint(tmp_path / "ck", {"test": "queue"}, every_s=0.0)
    with pytest.raises(KeyboardInterrupt):
        integrate(TOY, TOY_GRID, y0, p, ev, TOY_NAMES, progress=stop_after(5), checkpoint=ck)
    ck = Checkpoint(tmp_path / "ck", {"test": "queue"}, every_s=0.0)
    resumed = integrate(TOY, TOY_GRID, y0, p, ev, TOY_NAMES, checkpoint=ck)
    np.testing.assert_array_equal(resumed, whole)


def test_unknown_runner_is_refused():
    p, ev = toy_cohort(2)
    with pytest.raises(ValueError, match="runner must be one of"):
        integrate(TOY, TOY_GRID, TOY.initial_state(p), p, ev, TOY_NAMES, runner="fast")


# ---- the full model: one compiled shape (6 subjects, every readout, 8 dose slots) --------------
MODEL = default_model()


def test_queue_equals_barrier_on_random_physiology():
    """Six random subjects of the issue-9 stress scenario (every drug by two routes, an overdose
    rescued by naloxone) over 4 h, 3 min records: two segments, the second past the end."""
    sc = R.stress_scenario(subjects=6, seed=3, duration="4h", record_every="3min")
    grid = make_grid(sc.duration_min, sc.record_every_min)
    p = R.random_parameters(MODEL, sc, 6, seed=3)
    ev = compile_doses(MODEL, sc.doses, sc.duration_min, grid.h, p)
    assert ev.n_events == 8
    a, b = both(MODEL, grid, MODEL.initial_state(p), p, ev, MODEL.readouts)
    assert_identical(a, b)
    assert np.ptp(a[1]["steps"]) > 0.1 * a[1]["steps"].mean()  # subjects need different work


def test_queue_equals_barrier_on_repeated_doses():
    """Six subjects with variability, heroin IV every 40 min (on record times), smoked in between
    (off them) and a naloxone dose in the same step as a heroin dose, 4 h, 5 min records."""
    sc = Scenario(duration="4h", record_every="5min", cohort={"subjects": 6, "seed": 4}, doses=[
        Dose("heroin", "10 mg", route="iv", at="20min", every="40min", until="190min"),
        Dose("heroin", "15 mg", route="smoked", at="33min"),
        Dose("naloxone", "0.4 mg", route="im", at="100min")])
    grid = make_grid(sc.duration_min, sc.record_every_min)
    p = subject_parameters(MODEL, sc, 6, sc.cohort.seed)
    ev = compile_doses(MODEL, sc.doses, sc.duration_min, grid.h, p)
    assert ev.n_events == 8 and len(ev.times_min) == 7
    a, b = both(MODEL, grid, MODEL.initial_state(p), p, ev, MODEL.readouts)
    assert_identical(a, b)


def test_bench_queue_counts_what_each_batching_pays():
    """benchmarks/bench_queue.py's arithmetic on a hand-worked example: 3 subjects, 4 records,
    segments of 2."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_queue.py"
    spec = importlib.util.spec_from_file_location("bench_queue", path)
    bq = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bq)
    tries = np.array([[5, 1, 1, 1],
                      [1, 5, 1, 1],
                      [1, 1, 1, 9]])
    t = bq.tries_summary(tries, 2)
    # barrier: 5 + 5 + 1 + 9; queue: max(6, 6, 2) + max(2, 2, 10); whole run: max(8, 8, 12)
    assert (t["sum_r_max_s"], t["sum_seg_max_s_sum_r"], t["max_s_sum_r"]) == (20, 16, 12)
    assert t["mean_s_sum_r"] == pytest.approx(28 / 3)
    assert bq.segment_sweep(tries, sizes=(1, 2, 4)) == {"1": 20, "2": 16, "4": 12, "whole run": 12}
    # 4 subjects of 9, 1, 1, 1 tries on 2 slots: batches (9, 1) and (1, 1) take 9 + 1 = 10;
    # refilled, one slot runs the 9 while the other runs the three 1s: 9
    r = bq.refill_makespan(np.array([9, 1, 1, 1]), 2)
    assert (r["batches"], r["refill"]) == (10, 9)
