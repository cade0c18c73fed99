"""Checkpoints and `--resume` for life courses, trials and animal experiments (loops of compiled
calls, `io.checkpoint.LoopCheckpoint`).

The expected results come from an uninterrupted run of the same scenario (in another process for
the command-line tests), never from the code under test. Each resume check is paired with one
that must fail: a checkpoint whose carried state lags one call behind its records (a resume that
skipped a call) gives different results.
"""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest

from opioidsim.io.checkpoint import Checkpoint, CheckpointError

# ---- a toy loop (numpy only): the checkpoint's bookkeeping at every point -------------------------
CHUNKS = [np.arange(0, 3), np.arange(3, 5), np.arange(5, 6)]
STEPS, PER_CALL = 10, 3  # 4 calls per chunk, the last one short


def toy_loop(ck: Checkpoint | None, stop_at: int | None = None, on_call=None, name: str = "toy"):
    """A loop shaped like run_course's: chunks of rows, calls filling steps, a carried pytree."""
    rec_a = np.full((6, STEPS), np.nan)
    rec_b = np.full((6, STEPS, 2), np.nan, dtype=np.float32)
    loop = at = None
    if ck is not None:
        loop = ck.loop(name, {"kind": "toy"}, {"a": rec_a, "b": rec_b}, CHUNKS)
        at = loop.resume()
    done = 0
    with loop.guard() if loop is not None else nullcontext():
        for ci in range(at.chunk if at else 0, len(CHUNKS)):
            rows = CHUNKS[ci]
            if at is not None and ci == at.chunk and at.carry is not None:
                c0, y, s, k = at.call, at.carry["y"], at.carry["s"], int(at.carry["k"])
            else:
                c0, y, s, k = 0, rows * 0.1 + 1.0, {"acc": np.zeros(len(rows))}, 0
            for c in range(c0, -(-STEPS // PER_CALL)):
                lo = c * PER_CALL
                take = min(PER_CALL, STEPS - lo)
                for j in range(take):  # a chaotic map: any lost or repeated step shows
                    y = np.sin(3.7 * y + 0.3 * k) + 0.01 * s["acc"]
                    s = {"acc": s["acc"] + y}
                    k += 1
                    rec_a[rows, lo + j] = y
                    rec_b[rows, lo + j] = np.stack([y, s["acc"]], axis=-1)
                if loop is not None:
                    loop.advance(ci, c + 1, lo + take, {"y": y, "s": s, "k": np.asarray(k)})
                done += 1
                if on_call is not None:
                    on_call(done)
                if stop_at is not None and done == stop_at:
                    raise KeyboardInterrupt
    if loop is not None:
        loop.finish()
    return rec_a, rec_b


def _equal(x, y) -> bool:
    return all(np.array_equal(a, b, equal_nan=True) for a, b in zip(x, y))


@pytest.mark.parametrize("stop_at", [1, 3, 4, 5, 8, 11, 12])  # in a chunk, at its end, the very last call
def test_toy_loop_interrupted_anywhere_resumes_to_the_uninterrupted_records(tmp_path, stop_at):
    whole = toy_loop(None)
    with pytest.raises(KeyboardInterrupt):
        toy_loop(Checkpoint(tmp_path, {"r": 1}, every_s=1e9), stop_at=stop_at)  # saves only when stopped
    assert _equal(toy_loop(Checkpoint(tmp_path, {"r": 1}, every_s=1e9)), whole)


def test_toy_loop_resumes_from_copies_taken_after_every_call_and_a_skipped_call_shows(tmp_path):
    whole = toy_loop(None)
    folder = tmp_path / "ck"
    copies = []

    def copy(done):
        copies.append(tmp_path / f"copy{done}")
        shutil.copytree(folder, copies[-1])

    toy_loop(Checkpoint(folder, {"r": 1}, every_s=0), on_call=copy)
    assert len(copies) == 12
    for c in copies:
        assert _equal(toy_loop(Checkpoint(c, {"r": 1}, every_s=1e9)), whole), c
    # the state after call 6 with the carried state of call 5: a resume that skipped a call differs
    _graft_carry(copies[5] / "state.npz", copies[4] / "state.npz", "toy")
    assert not _equal(toy_loop(Checkpoint(copies[5], {"r": 1}, every_s=1e9)), whole)


def _graft_carry(target: Path, donor: Path, loop: str) -> None:
    """Give the saved state `target` the carried state saved in `donor` (same loop and chunk)."""
    with np.load(target) as t, np.load(donor) as d:
        arrays = {k: t[k] for k in t.files}
        prefix = f"{loop}::carry::"
        assert int(t[f"{loop}::chunk"]) == int(d[f"{loop}::chunk"])
        arrays.update({k: d[k] for k in d.files if k.startswith(prefix)})
    np.savez(target, **arrays)


def test_a_loop_that_finished_before_the_first_save_is_saved_with_the_next_one(tmp_path):
    """Two loops in a row (a trial's arms) and no save due: an interruption in the second saves
    the first one's records as well, and the resumed run reads it without running it again."""
    whole = toy_loop(None)
    ck = Checkpoint(tmp_path, {"r": 1}, every_s=1e9)
    toy_loop(ck, name="arm0")
    assert ck.saves == 0
    with pytest.raises(KeyboardInterrupt):
        toy_loop(ck, name="arm1", stop_at=6)
    with np.load(tmp_path / "state.npz") as z:
        assert json.loads(str(z["loops"])) == ["arm0", "arm1"] and bool(z["arm0::done"])
        assert int(z["arm1::chunk"]) == 1 and int(z["arm1::call"]) == 2
    ck = Checkpoint(tmp_path, {"r": 1}, every_s=1e9)
    calls = []
    assert _equal(toy_loop(ck, name="arm0", on_call=calls.append), whole) and calls == []
    assert _equal(toy_loop(ck, name="arm1", on_call=calls.append), whole) and len(calls) == 6


def test_a_loop_checkpoint_of_another_run_or_kind_is_refused(tmp_path):
    toy_loop(Checkpoint(tmp_path / "a", {"scenario": "a"}, every_s=0))
    with pytest.raises(CheckpointError, match="different run"):
        toy_loop(Checkpoint(tmp_path / "a", {"scenario": "b"}))
    ck = Checkpoint(tmp_path / "a", {"scenario": "a"})
    with pytest.raises(CheckpointError, match="'toy' loop differ"):  # same run, other loop settings
        ck.loop("toy", {"kind": "toy", "readouts": ["x"]}, {"a": np.zeros((6, STEPS))}, CHUNKS).resume()
    with pytest.raises(CheckpointError, match="another kind of run"):  # read by the engine
        Checkpoint(tmp_path / "a", {"scenario": "a"}).load(np.zeros((6, STEPS, 1)))
    # and an engine checkpoint read by a loop
    engine = Checkpoint(tmp_path / "e", {"scenario": "a"}, every_s=0)
    engine.save(np.zeros((2, 3, 1)), {"chunk": 0, "segment": 1, "filled": 2, "rows": (0, 2)})
    with pytest.raises(CheckpointError, match="another kind of run"):
        toy_loop(Checkpoint(tmp_path / "e", {"scenario": "a"}))


def test_a_loop_checkpoint_that_cannot_be_written_does_not_stop_the_run(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.warns(RuntimeWarning, match="could not save a checkpoint"):
        got = toy_loop(Checkpoint(blocker / "ck", {"r": 1}, every_s=0))
    assert _equal(got, toy_loop(None))


# ---- the real loops, in process -------------------------------------------------------------------
# 6 daily 1 h self-administration sessions (1 min steps) and an extinction session: 635 decision
# steps, 3 compiled calls of 256
PARADIGM = """\
[scenario]
name = "resume-paradigm"
[cohort]
subjects = 2
seed = 3
species = "rat"
[paradigm]
infusion = "60 ug/kg"
decide_every = "1min"
[[paradigm.phase]]
kind = "self_administration"
sessions = 6
session_length = "1h"
[[paradigm.phase]]
kind = "extinction"
sessions = 1
session_length = "30min"
"""

# two arms, a week of history and a week of follow-up, decisions every 4 h: one call per arm
TRIAL = """\
[scenario]
name = "resume-trial"
[cohort]
subjects = 3
seed = 7
[trial]
history = "7d"
follow_up = "1w"
decide_every = "4h"
[[trial.arm]]
name = "control"
[[trial.arm]]
name = "methadone"
medication = "methadone"
"""

# 5 days in the community and 3 in prison, decided every hour: 192 steps, 2 compiled calls of 128
LIFE = """\
[scenario]
name = "resume-life"
[cohort]
subjects = 2
seed = 11
[life]
decide_every = "1h"
[[life.period]]
kind = "community"
duration = "5d"
[[life.period]]
kind = "forced_abstinence"
duration = "3d"
"""


def _dataset_differences(a, b) -> list[str]:
    """The variables and coordinates of a and b that are not bitwise equal (NaN equals NaN)."""
    if sorted(a.variables) != sorted(b.variables):
        return [f"variables {sorted(set(a.variables) ^ set(b.variables))}"]
    return [v for v in a.variables
            if not np.array_equal(a[v].values, b[v].values, equal_nan=a[v].dtype.kind in "fc")]


@pytest.fixture(scope="module")
def paradigm():
    from opioidsim.behavior import simulate_paradigm
    from opioidsim.scenarios import Scenario

    scenario = Scenario.from_toml_text(PARADIGM)
    return scenario, simulate_paradigm(scenario)


def test_paradigm_resumes_from_copies_taken_after_every_call_and_a_skipped_call_shows(tmp_path, paradigm):
    from opioidsim.behavior import simulate_paradigm

    scenario, whole = paradigm
    folder = tmp_path / "ck"
    copies = []

    def copy(fraction):
        copies.append(tmp_path / f"copy{len(copies)}")
        shutil.copytree(folder, copies[-1])

    simulate_paradigm(scenario, progress=copy, checkpoint=Checkpoint(folder, {"s": 1}, every_s=0))
    assert len(copies) == 3
    for c in copies:
        assert _dataset_differences(
            simulate_paradigm(scenario, checkpoint=Checkpoint(c, {"s": 1}, every_s=1e9)), whole) == []
    _graft_carry(copies[1] / "state.npz", copies[0] / "state.npz", "paradigm")
    assert _dataset_differences(simulate_paradigm(scenario, checkpoint=Checkpoint(copies[1], {"s": 1})), whole)


@pytest.mark.slow  # minutes on 2 cores: two 14-day arms, twice (the toy two-loop test is the reduced form)
def test_trial_stopped_in_its_second_arm_reads_the_first_and_continues(tmp_path):
    from opioidsim.scenarios import Scenario
    from opioidsim.trial.simulate import simulate_trial

    scenario = Scenario.from_toml_text(TRIAL)
    whole = simulate_trial(scenario)
    calls = []

    def stop_in_second_arm(fraction):
        calls.append(fraction)
        if len(calls) == 2:  # after the second arm's call, before it is marked finished
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        simulate_trial(scenario, progress=stop_in_second_arm, checkpoint=Checkpoint(tmp_path, {"s": 1}, every_s=1e9))
    with np.load(tmp_path / "state.npz") as z:
        assert json.loads(str(z["loops"])) == ["arm0", "arm1"] and bool(z["arm0::done"])
    progress = []
    resumed = simulate_trial(scenario, progress=progress.append, checkpoint=Checkpoint(tmp_path, {"s": 1}))
    assert progress == []  # nothing left to integrate: both arms came from the checkpoint
    assert _dataset_differences(resumed, whole) == []


# ---- the real command: killed, stopped, resumed ---------------------------------------------------
def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "opioidsim.cli", *args]


def _start(tmp: Path, command: str, out: str) -> subprocess.Popen:
    return subprocess.Popen(_cmd(command, str(tmp / "s.toml"), "--out", str(tmp / out), "--no-progress",
                                 "--checkpoint-every", "0"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_saves(proc: subprocess.Popen, state: Path, saves: int, timeout: float = 1200.0) -> None:
    """Wait until the running process has saved at least `saves` calls (of all its loops)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            pytest.fail(f"the run ended before it could be interrupted: {proc.communicate()}")
        try:
            with np.load(state) as z:
                n = sum(int(z[f"{name}::call"]) + (1 if bool(z[f"{name}::done"]) else 0)
                        for name in json.loads(str(z["loops"])))
            if n >= saves:
                return
        except Exception:  # not there yet, or being replaced right now: look again
            pass
        time.sleep(0.02)
    pytest.fail("no checkpoint appeared")


def _uninterrupted(tmp: Path, text: str, command: str = "run") -> Path:
    (tmp / "s.toml").write_text(text)
    proc = subprocess.run(_cmd(command, str(tmp / "s.toml"), "--out", str(tmp / "whole"), "--no-progress"),
                          capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp / "whole.incomplete").exists()
    return tmp / "whole"


def _result_differences(a: Path, b: Path) -> list[str]:
    """What differs between two results folders: results.nc's variables, summary.csv."""
    import xarray as xr

    with xr.open_dataset(a / "results.nc") as x, xr.open_dataset(b / "results.nc") as y:
        diff = _dataset_differences(x, y)
    if (a / "summary.csv").read_text() != (b / "summary.csv").read_text():
        diff.append("summary.csv")
    return diff


def _assert_marked_incomplete(tmp: Path, out: str) -> None:
    inc = tmp / f"{out}.incomplete"
    assert not (tmp / out).exists(), "a results folder appeared although the run did not finish"
    assert "--resume" in (inc / "INCOMPLETE.txt").read_text()
    assert json.loads((inc / "run.json").read_text())["status"] == "incomplete"


def _kill_and_resume(tmp: Path, text: str, command: str, saves: int, *, in_process: bool) -> Path:
    """Start the run, SIGKILL it after `saves` checkpoints, check it is marked incomplete, resume
    it; returns the resumed results folder."""
    from opioidsim import cli

    (tmp / "s.toml").write_text(text)
    proc = _start(tmp, command, "o")
    _wait_for_saves(proc, tmp / "o.incomplete" / "checkpoint" / "state.npz", saves)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    _assert_marked_incomplete(tmp, "o")
    if in_process:
        assert cli.main(["run", "--resume", str(tmp / "o"), "--no-progress"]) == 0
    else:
        res = subprocess.run(_cmd("run", "--resume", str(tmp / "o"), "--no-progress"),
                             capture_output=True, text=True, timeout=3600)
        assert res.returncode == 0 and "resuming" in res.stderr, res.stderr
    assert not (tmp / "o.incomplete").exists()
    assert json.loads((tmp / "o" / "run.json").read_text())["status"] == "complete"
    return tmp / "o"


@pytest.fixture(scope="module")
def paradigm_whole(tmp_path_factory):
    return _uninterrupted(tmp_path_factory.mktemp("paradigm"), PARADIGM)


def test_killed_animal_experiment_resumes_to_the_uninterrupted_results(tmp_path, paradigm_whole):
    resumed = _kill_and_resume(tmp_path, PARADIGM, "run", saves=2, in_process=True)
    assert _result_differences(resumed, paradigm_whole) == []


def test_stopped_animal_experiment_says_how_to_continue(tmp_path):
    (tmp_path / "s.toml").write_text(PARADIGM)
    proc = _start(tmp_path, "run", "o")
    _wait_for_saves(proc, tmp_path / "o.incomplete" / "checkpoint" / "state.npz", 1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and f"opioidsim run --resume {tmp_path / 'o'}" in err
    _assert_marked_incomplete(tmp_path, "o")


@pytest.mark.slow
def test_killed_life_course_resumes_to_the_uninterrupted_results(tmp_path):
    (tmp_path / "ref").mkdir()
    whole = _uninterrupted(tmp_path / "ref", LIFE)
    resumed = _kill_and_resume(tmp_path, LIFE, "run", saves=1, in_process=False)
    assert _result_differences(resumed, whole) == []


@pytest.mark.slow
def test_killed_trial_resumes_to_the_uninterrupted_results(tmp_path):
    """`opioidsim trial` killed after its first arm: `opioidsim run --resume` finishes it."""
    (tmp_path / "ref").mkdir()
    whole = _uninterrupted(tmp_path / "ref", TRIAL, "trial")
    resumed = _kill_and_resume(tmp_path, TRIAL, "trial", saves=2, in_process=False)
    assert _result_differences(resumed, whole) == []
