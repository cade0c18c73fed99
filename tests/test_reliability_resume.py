"""Crash-safe results and resumable runs, with the real engine and the real command.

A run is killed (SIGKILL: no chance to clean up), stopped (SIGTERM, Ctrl-C), or its disk fills
while the results are written. Each time the results folder must be either complete or absent,
the progress must sit in a clearly marked `<out>.incomplete` folder, and `opioidsim run --resume`
must finish the run to results equal, bit for bit, to an uninterrupted run's.

The expected results come from an independent uninterrupted run of the same scenario in a
separate process, not from the code under test.
"""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from opioidsim import cli

# 1 day recorded every 2 min: 721 records, 12 segments, a dose every 8 h (a few seconds of work).
SCENARIO = """\
[scenario]
name = "resume-check"
duration = "1d"
record_every = "2min"
readouts = ["plasma_morphine", "mor_occupancy_vta", "nac_dopamine", "ventilation", "spo2", "cows"]

[cohort]
subjects = 2
seed = 5

[[dose]]
drug = "heroin"
amount = "15 mg"
every = "8h"
"""


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "opioidsim.cli", *args]


def _start(tmp: Path, out: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(_cmd("run", str(tmp / "s.toml"), "--out", str(tmp / out), "--no-progress",
                                 "--checkpoint-every", "0", *extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_checkpoint(proc: subprocess.Popen, state: Path, segments: int = 3, timeout: float = 300.0):
    """Wait until the running process has saved at least `segments` segments."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            pytest.fail(f"the run ended before it could be interrupted: {proc.communicate()}")
        if state.is_file():
            try:
                with np.load(state) as z:
                    if int(z["segment"]) >= segments:
                        return
            except Exception:  # being replaced right now: look again
                pass
        time.sleep(0.02)
    pytest.fail("no checkpoint appeared")


def _assert_marked_incomplete(tmp: Path, out: str) -> None:
    inc = tmp / f"{out}.incomplete"
    assert not (tmp / out).exists(), "a results folder appeared although the run did not finish"
    assert (inc / "INCOMPLETE.txt").is_file()
    assert "--resume" in (inc / "INCOMPLETE.txt").read_text()
    assert json.loads((inc / "run.json").read_text())["status"] == "incomplete"
    # nothing anywhere that looks like results
    assert not list(tmp.rglob("results.nc")) or all("uninterrupted" in str(p) for p in tmp.rglob("results.nc"))


def _same_results(a: Path, b: Path) -> None:
    with xr.open_dataset(a / "results.nc") as x, xr.open_dataset(b / "results.nc") as y:
        assert list(x.data_vars) == list(y.data_vars)
        for v in x.data_vars:
            assert np.array_equal(x[v].values, y[v].values), v
        for c in ("status", "weight_kg", "time"):
            assert np.array_equal(x[c].values, y[c].values), c
        assert np.isfinite(x["nac_dopamine"].values).all()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ref")
    (tmp / "s.toml").write_text(SCENARIO)
    proc = subprocess.run(_cmd("run", str(tmp / "s.toml"), "--out", str(tmp / "uninterrupted"),
                               "--no-progress"), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp / "uninterrupted.incomplete").exists()  # a finished run leaves no checkpoint
    return tmp / "uninterrupted"


def test_killed_run_is_marked_incomplete_and_resumes_to_the_same_results(tmp_path, uninterrupted, capsys):
    (tmp_path / "s.toml").write_text(SCENARIO)
    proc = _start(tmp_path, "o")
    _wait_for_checkpoint(proc, tmp_path / "o.incomplete" / "checkpoint" / "state.npz")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    _assert_marked_incomplete(tmp_path, "o")

    # a new run into the same folder is refused (it would throw the progress away) ...
    assert cli.main(["run", str(tmp_path / "s.toml"), "--out", str(tmp_path / "o")]) == 2
    assert "--resume" in capsys.readouterr().err
    # ... and --resume finishes it
    res = subprocess.run(_cmd("run", "--resume", str(tmp_path / "o"), "--no-progress"),
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert "resuming" in res.stderr
    assert not (tmp_path / "o.incomplete").exists()
    assert json.loads((tmp_path / "o" / "run.json").read_text())["status"] == "complete"
    _same_results(tmp_path / "o", uninterrupted)
    # and there is nothing left to resume
    assert cli.main(["run", "--resume", str(tmp_path / "o")]) == 2
    assert "complete" in capsys.readouterr().err


@pytest.mark.parametrize("sig, code", [
    (signal.SIGTERM, 143),
    pytest.param(signal.SIGINT, 130, marks=pytest.mark.slow),
])
def test_stopped_run_says_how_to_continue(tmp_path, uninterrupted, sig, code):
    (tmp_path / "s.toml").write_text(SCENARIO)
    proc = _start(tmp_path, "o")
    _wait_for_checkpoint(proc, tmp_path / "o.incomplete" / "checkpoint" / "state.npz", segments=2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "Traceback" not in err and f"opioidsim run --resume {tmp_path / 'o'}" in err
    _assert_marked_incomplete(tmp_path, "o")
    if sig == signal.SIGINT:  # the slow variant also finishes the run
        assert cli.main(["run", "--resume", str(tmp_path / "o.incomplete"), "--no-progress"]) == 0
        _same_results(tmp_path / "o", uninterrupted)


def test_disk_full_while_writing_results_keeps_the_progress(tmp_path, uninterrupted, monkeypatch, capsys):
    """The results file cannot be finished (ENOSPC halfway through results.nc): no results folder,
    no half-written file anywhere, the computed run kept; --resume then writes the same results."""
    (tmp_path / "s.toml").write_text(SCENARIO)

    def full_disk(self, path=None, *args, **kwargs):
        Path(path).write_bytes(b"CDF\x01" + b"\0" * 1000)  # the start of a NetCDF file
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(xr.Dataset, "to_netcdf", full_disk)
        code = cli.main(["run", str(tmp_path / "s.toml"), "--out", str(tmp_path / "o"), "--no-progress",
                         "--checkpoint-every", "0"])
    err = capsys.readouterr().err
    assert code == 1 and "No space left" in err and "--resume" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.incomplete", "s.toml"]  # no .partial left
    _assert_marked_incomplete(tmp_path, "o")
    assert cli.main(["run", "--resume", str(tmp_path / "o"), "--no-progress"]) == 0
    _same_results(tmp_path / "o", uninterrupted)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o", "s.toml"]
