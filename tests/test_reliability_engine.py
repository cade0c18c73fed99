"""Reliability of the engine's bookkeeping: per-subject draws, per-subject failure status,
checkpoints and resumption.

The bookkeeping is independent of the physiology, so most checks run on a toy model that
compiles in well under a second; the default model is used where the draws themselves matter.
Expected values come from outside the code under test: the standard normal distribution (a
Kolmogorov–Smirnov test), an independent run of the same subject, an uninterrupted run.
"""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
from scipy import stats as sps

import opioidsim.engine.core as core  # noqa: I001  (enables 64-bit JAX first)
import jax.numpy as jnp

from opioidsim.engine import integrate, make_grid, subject_parameters
from opioidsim.engine.core import STATUS_FAILED, STATUS_OK, subject_normals, subject_uniforms
from opioidsim.engine.dosing import DoseEvents
from opioidsim.io.checkpoint import Checkpoint, CheckpointError
from opioidsim.model import default_model
from opioidsim.model.base import Module, State
from opioidsim.model.model import Model
from opioidsim.params import Parameter
from opioidsim.scenarios import Scenario

SRC = "test-only parameter (toy problem)"
NO_EVENT = np.iinfo(np.int64).max // 4


class DecayModule(Module):
    """x' = −k·x (a dose target) and y' = −0.7·y + amp·sin(ω t) (a forced state)."""

    name = "decay"
    states = (State("x", "mg", 0.0, "amount"), State("y", "1", 0.5, "forced", lower=-math.inf))
    parameters = (Parameter("k", 0.05, "1/min", SRC), Parameter("amp", 1.3, "1", SRC),
                  Parameter("omega", 2.0, "1/min", SRC))
    provides = ("x_out", "y_out")

    def outputs(self, y, u, p):
        return {"x_out": y["x"], "y_out": y["y"]}

    def rates(self, t, y, u, p):
        return {"x": -p["k"] * y["x"], "y": -0.7 * y["y"] + p["amp"] * jnp.sin(p["omega"] * t)}


TOY = Model([DecayModule()])
NAMES = ("x_out", "y_out")
GRID = make_grid(600.0, 0.5, max_step=0.25)  # 1201 records: 19 segments of 64


def cohort(n: int = 7):
    rng = np.random.default_rng(11)
    p = {k: np.full(n, v.internal_value) for k, v in TOY.parameters.items()}
    p["k"] = p["k"] * np.exp(rng.normal(0, 0.4, n))
    step = np.full((n, 4), NO_EVENT, dtype=np.int64)
    step[:, 0] = rng.integers(0, 400, n)
    step[:, 1] = step[:, 0] + rng.integers(1, 1500, n)
    amount = np.zeros((n, 4))
    amount[:, :2] = rng.uniform(1, 10, (n, 2))
    return p, DoseEvents(step, np.zeros((n, 4), dtype=np.int32), amount, np.array([]))


# ---- per-subject draws ---------------------------------------------------------------------------
def test_subject_draws_are_standard_normal_and_independent():
    idx = np.arange(20_000)
    z = subject_normals(3, "morphine_clearance", idx)
    assert sps.kstest(z, "norm").pvalue > 1e-3
    w = subject_normals(3, "morphine_volume", idx)
    assert abs(np.corrcoef(z, w)[0, 1]) < 0.03  # two parameters of one subject
    assert abs(np.corrcoef(z[:-1], z[1:])[0, 1]) < 0.03  # neighbouring subjects
    assert abs(np.corrcoef(z, subject_normals(4, "morphine_clearance", idx))[0, 1]) < 0.03  # seeds
    u = subject_uniforms(3, "oprm1_g_carrier", idx)
    assert u.min() > 0 and u.max() < 1 and sps.kstest(u, "uniform").pvalue > 1e-3


def test_subject_draws_do_not_depend_on_cohort_size_or_offset():
    model = default_model()
    sc = Scenario(duration="1h")
    big = subject_parameters(model, sc, 50, 9)
    small = subject_parameters(model, sc, 5, 9)
    tail = subject_parameters(model, sc, 10, 9, first=40)
    for name in model.parameters:
        assert np.array_equal(big[name][:5], small[name]), name
        assert np.array_equal(big[name][40:], tail[name]), name
    # and they really vary where a cv is given, with the documented lognormal spread
    many = subject_parameters(model, sc, 4000, 9)
    cv = model.parameters["morphine_clearance"].cv
    log = np.log(many["morphine_clearance"] / model.parameters["morphine_clearance"].internal_value)
    assert np.std(log) == pytest.approx(math.sqrt(math.log1p(cv**2)), rel=0.05)
    assert np.mean(many["oprm1_g_carrier"]) == pytest.approx(
        model.parameters["oprm1_g_carrier_frequency"].value, abs=0.03)


# ---- chunking ------------------------------------------------------------------------------------
def test_cohort_in_separate_pieces_equals_cohort_run_whole():
    """Each piece drawn and integrated on its own (as separate processes would) gives the same
    records as the whole cohort in one call: bitwise, since a subject never mixes with another."""
    p, ev = cohort(7)
    whole = integrate(TOY, GRID, TOY.initial_state(p), p, ev, NAMES)
    pieces = []
    for a, b in ((0, 3), (3, 5), (5, 7)):
        pp = {k: v[a:b] for k, v in p.items()}
        evp = DoseEvents(ev.step[a:b], ev.target[a:b], ev.amount[a:b], ev.times_min)
        pieces.append(integrate(TOY, GRID, TOY.initial_state(pp), pp, evp, NAMES))
    np.testing.assert_array_equal(np.concatenate(pieces), whole)
    assert np.ptp(whole[:, -1, 0]) > 0


# ---- a failing subject ---------------------------------------------------------------------------
def test_a_failing_subject_is_reported_and_the_others_are_untouched():
    p, ev = cohort(7)
    good = integrate(TOY, GRID, TOY.initial_state(p), p, ev, NAMES)
    amount = ev.amount.copy()
    amount[4, 0] = np.nan  # subject 4's first dose is undefined: its state turns NaN there
    bad_ev = DoseEvents(ev.step, ev.target, amount, ev.times_min)
    st: dict = {}
    rec = integrate(TOY, GRID, TOY.initial_state(p), p, bad_ev, NAMES, stats=st)
    assert list(st["status"]) == [STATUS_OK] * 4 + [STATUS_FAILED] + [STATUS_OK] * 2
    others = [0, 1, 2, 3, 5, 6]
    np.testing.assert_array_equal(rec[others], good[others])
    # the failure is dated to the record after the dose that exposed it, and everything after is NaN
    first_dose_min = ev.step[4, 0] * GRID.h
    assert first_dose_min <= st["failed_at_min"][4] <= first_dose_min + 0.5
    k = int(np.searchsorted(GRID.record_times_min, st["failed_at_min"][4]))
    assert np.isnan(rec[4, k:]).all() and np.isfinite(rec[4, :k]).all()
    assert np.isnan(st["failed_at_min"][others]).all()


def test_simulate_carries_status_and_subject_numbers(monkeypatch):
    """Through `simulate`: the Dataset has `status`/`failed_at_min` per subject and keeps the
    subject numbers of a piece of the cohort."""
    model = Model([DecayModule()])
    model.readouts = NAMES
    sc = Scenario(duration="2h", record_every="1min", cohort={"subjects": 4, "seed": 0})
    monkeypatch.setattr(core, "to_dataset", lambda recs, names, grid, p, scenario, events, **kw: (recs, kw))
    monkeypatch.setattr(core, "compile_doses", lambda *a, **k: cohort(2)[1])
    monkeypatch.setattr(core, "subject_parameters",
                        lambda m, s, n, seed, first=0: {k: np.full(n, v.internal_value)
                                                         for k, v in TOY.parameters.items()})
    recs, kw = core.simulate(sc, model=model, subjects=range(2, 4))
    assert recs.shape[0] == 2 and kw["first"] == 2 and list(kw["stats"]["status"]) == [0, 0]
    with pytest.raises(ValueError, match="subjects"):
        core.simulate(sc, model=model, subjects=range(3, 6))


# ---- checkpoints ---------------------------------------------------------------------------------
class Interrupt(BaseException):
    pass


def _progress_interrupting_after(k):
    calls = []

    def progress(fraction):
        calls.append(fraction)
        if len(calls) == k:
            raise Interrupt()
    return progress


@pytest.mark.parametrize("chunk, stop_after", [(7, 5), (3, 4), (3, 19), (3, 50), (3, 57)])
def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch, chunk, stop_after):
    """Interrupt after `stop_after` segments (inside the first chunk, at a chunk boundary — 19
    segments per chunk — in the last chunk, or after the very last segment), resume from the checkpoint: bitwise the same."""
    monkeypatch.setattr(core, "SUBJECT_CHUNK", chunk)
    p, ev = cohort(7)
    y0 = TOY.initial_state(p)
    whole_stats: dict = {}
    whole = integrate(TOY, GRID, y0, p, ev, NAMES, stats=whole_stats)
    folder = tmp_path / "ck"
    with pytest.raises(Interrupt):
        integrate(TOY, GRID, y0, p, ev, NAMES, progress=_progress_interrupting_after(stop_after),
                  checkpoint=Checkpoint(folder, {"run": 1}, every_s=1e9))
    assert (folder / "state.npz").is_file()
    seen = []
    st: dict = {}
    resumed = integrate(TOY, GRID, y0, p, ev, NAMES, progress=seen.append, stats=st,
                        checkpoint=Checkpoint(folder, {"run": 1}, every_s=1e9))
    np.testing.assert_array_equal(resumed, whole)
    np.testing.assert_array_equal(st["y_final"], whole_stats["y_final"])
    total = 19 * math.ceil(7 / chunk)
    assert len(seen) == total - stop_after  # only the remaining segments ran
    assert seen == sorted(seen) and (not seen or seen[-1] == pytest.approx(1.0))


def test_checkpoints_saved_while_running_resume_from_any_of_them(tmp_path):
    """Save after every segment; restart from a copy of the checkpoint taken at several points."""
    import shutil

    p, ev = cohort(5)
    y0 = TOY.initial_state(p)
    whole = integrate(TOY, GRID, y0, p, ev, NAMES)
    folder = tmp_path / "ck"
    copies = []

    def progress(fraction):
        if len(copies) < 3 and fraction > 0.25 * (len(copies) + 1):
            dst = tmp_path / f"copy{len(copies)}"
            shutil.copytree(folder, dst)
            copies.append(dst)

    integrate(TOY, GRID, y0, p, ev, NAMES, progress=progress, checkpoint=Checkpoint(folder, {"r": 1}, every_s=0))
    assert len(copies) == 3
    for c in copies:
        # a stray half-written part (a save killed before its state) must be ignored
        (c / "part-999999.npz").write_bytes(b"garbage")
        np.testing.assert_array_equal(
            integrate(TOY, GRID, y0, p, ev, NAMES, checkpoint=Checkpoint(c, {"r": 1}, every_s=1e9)), whole)


def test_checkpoint_of_another_run_is_refused(tmp_path):
    p, ev = cohort(3)
    y0 = TOY.initial_state(p)
    with pytest.raises(Interrupt):
        integrate(TOY, GRID, y0, p, ev, NAMES, progress=_progress_interrupting_after(2),
                  checkpoint=Checkpoint(tmp_path, {"scenario": "a"}))
    with pytest.raises(CheckpointError, match="different run"):
        integrate(TOY, GRID, y0, p, ev, NAMES, checkpoint=Checkpoint(tmp_path, {"scenario": "b"}))
    with pytest.raises(CheckpointError, match="different run"):  # same scenario, other readouts
        integrate(TOY, GRID, y0, p, ev, NAMES[:1], checkpoint=Checkpoint(tmp_path, {"scenario": "a"}))


def test_a_checkpoint_that_cannot_be_written_does_not_stop_the_run(tmp_path):
    """Disk full (or no permission) while checkpointing: a warning, and the run completes."""
    p, ev = cohort(3)
    y0 = TOY.initial_state(p)
    whole = integrate(TOY, GRID, y0, p, ev, NAMES)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    ck = Checkpoint(blocker / "ck", {"r": 1}, every_s=0)  # cannot be created: OSError on every save
    with pytest.warns(RuntimeWarning, match="could not save a checkpoint"):
        rec = integrate(TOY, GRID, y0, p, ev, NAMES, checkpoint=ck)
    np.testing.assert_array_equal(rec, whole)
    assert ck.saves == 0 and ck.failed_saves > 0
