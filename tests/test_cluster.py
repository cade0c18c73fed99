"""Cohorts on Dask (issue 7; issue 9's "results independent of how the cohort is chunked"):
`opioidsim run --cluster local:2` writes results.zarr equal, bit for bit, to `simulate` in one
process; bad cluster flags are one line with exit 2 and nothing written; a failed Dask task
leaves no results folder, only the marked incomplete one, and `--resume` finishes it.

The equality test runs the command as a user does (worker processes); the others run the
cluster's workers as threads of the test process, so that a task can be made to fail.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from opioidsim import cli, cluster
from opioidsim.engine.core import simulate
from opioidsim.io.results import STORE_RESULT_FILES
from opioidsim.scenarios import Scenario

SCENARIO = """\
[scenario]
name = "dask-small"
duration = "30min"
record_every = "5min"
readouts = ["nac_dopamine", "spo2", "plasma_morphine", "mor_occupancy_vta"]

[cohort]
subjects = 3
seed = 3

[[dose]]
drug = "heroin"
amount = "10 mg"
at = "5min"
"""


@pytest.fixture(autouse=True)
def thread_workers(monkeypatch):
    monkeypatch.setattr(cluster, "LOCAL_PROCESSES", False)


@pytest.fixture
def scenario_file(tmp_path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(SCENARIO, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def single_process() -> xr.Dataset:
    """The reference: the whole cohort in one process."""
    return simulate(Scenario.from_toml_text(SCENARIO))


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("opioidsim: running ")]
    assert len(lines) == 1, err
    assert lines[0].startswith("opioidsim: error: "), err
    assert "Traceback" not in err
    return lines[0]


def _nothing_written(parent: Path, name: str) -> None:
    left = [p for p in os.listdir(parent) if p == name or p.startswith(f".{name}.") or p.startswith(f"{name}.")]
    assert left == [], left


def assert_bitwise_equal(zarr_ds: xr.Dataset, ref: xr.Dataset) -> None:
    assert set(zarr_ds.data_vars) == set(ref.data_vars)
    assert set(zarr_ds.coords) == set(ref.coords)
    assert dict(zarr_ds.sizes) == dict(ref.sizes)
    for name in list(ref.data_vars) + list(ref.coords):
        a, b = zarr_ds[name], ref[name]
        assert a.dims == b.dims, name
        assert a.dtype == b.dtype, name
        assert np.array_equal(a.values, b.values, equal_nan=a.dtype.kind == "f"), name
        assert {k: np.asarray(v).tolist() for k, v in a.attrs.items()} == \
            {k: np.asarray(v).tolist() for k, v in b.attrs.items()}, name
    for key, value in ref.attrs.items():
        assert np.asarray(zarr_ds.attrs[key]).tolist() == np.asarray(value).tolist(), key


# ------------------------------------------------------------------------------------------------
# the result equals the single-process run
# ------------------------------------------------------------------------------------------------
def test_command_on_a_local_cluster_equals_single_process_bitwise(scenario_file, single_process, tmp_path):
    """The command as a user runs it: worker processes, two chunks ([0, 2) and [2, 3), the second
    a lone subject), results.zarr equal bit for bit to the whole cohort run in one process."""
    out = tmp_path / "res"
    env = dict(os.environ, PYTHONPATH=str(Path(cli.__file__).resolve().parents[1]))
    # hold Dask's default dashboard port, as another run on the machine might: stderr must stay clean
    busy = socket.socket()
    try:
        busy.bind(("127.0.0.1", 8787))
        busy.listen()
    except OSError:
        pass  # already held by someone else: the same situation
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "opioidsim.cli", "run", str(scenario_file), "--out",
                               str(out), "--cluster", "local:2", "--chunk-subjects", "2", "--no-progress"],
                              capture_output=True, text=True, env=env, timeout=900)
    finally:
        busy.close()
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "opioidsim: running 'dask-small' (30min, 3 subjects, seed 3) on a local Dask cluster of 2 workers"]
    assert sorted(os.listdir(out)) == sorted(STORE_RESULT_FILES)
    assert not (tmp_path / "res.incomplete").exists()
    assert [p for p in os.listdir(tmp_path) if p.startswith(".res.")] == []

    with xr.open_zarr(out / "results.zarr") as ds:
        assert ds["nac_dopamine"].encoding["chunks"][0] == 2
        assert_bitwise_equal(ds.load(), single_process)
        assert ds.attrs["subjects"] == 3 and "created_utc" in ds.attrs

    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and run["files"][0] == "results.zarr"
    assert run["dask"] == {"cluster": "--cluster local:2", "worker_threads": 2, "chunk_subjects": 2,
                           "chunks": 2}
    # the summary, read back from the store a block at a time, is that of the in-memory Dataset
    from opioidsim.report import summary_table

    written = pd.read_csv(out / "summary.csv")
    expected = summary_table(single_process)
    pd.testing.assert_frame_equal(written, expected.astype(written.dtypes.to_dict()), check_exact=False,
                                  rtol=1e-12)
    assert "nac_dopamine" in proc.stdout and "local Dask cluster of 2 workers" in proc.stdout
    assert "dask-small" in (out / "report.html").read_text(encoding="utf-8")
    print(f"dask run of 3 subjects in 2 chunks: {wall:.1f} s")


def test_a_lone_subject_equals_the_same_subject_in_a_batch(single_process):
    """The engine pads a one-subject batch (MIN_BATCH): without it, XLA computes a batch of one in
    another order and the last bits differ, so a chunk of one subject would not equal the whole."""
    alone = simulate(Scenario.from_toml_text(SCENARIO), subjects=range(2, 3))
    for name in single_process.data_vars:
        assert np.array_equal(alone[name].values, single_process[name].values[2:3]), name


def test_default_chunk_gives_every_worker_work():
    assert cluster.default_chunk_subjects(3, 2, 7, 4) == 2
    assert cluster.default_chunk_subjects(1_000_000, 16, 145, 10) == 1024
    assert cluster.default_chunk_subjects(10, 64, 145, 10) == 1
    # a chunk's records stay within MAX_CHUNK_VALUES on a worker
    assert cluster.default_chunk_subjects(10_000, 2, 100_000, 60) * 100_000 * 60 <= cluster.MAX_CHUNK_VALUES
    assert cluster.chunks_of(5, 2) == [(0, 2), (2, 4), (4, 5)]


# ------------------------------------------------------------------------------------------------
# bad flags: one line naming the flag, the value and what is allowed; exit 2; nothing written
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("flags,words", [
    (["--cluster", "local:0"], ["--cluster", "'local:0'", "1 to 1,024"]),
    (["--cluster", "foo"], ["--cluster", "'foo'", "'local'", "local:WORKERS", "--scheduler"]),
    (["--cluster", "local:two"], ["--cluster", "'local:two'", "local:WORKERS"]),
    (["--cluster", "tcp://host:8786"], ["--cluster", "--scheduler ADDRESS"]),
    (["--scheduler", "not an address"], ["--scheduler", "'not an address'", "tcp://HOST:8786"]),
    (["--cluster", "local:2", "--scheduler", "tcp://127.0.0.1:8786"],
     ["--cluster", "--scheduler", "not both"]),
    (["--cluster", "local:2", "--chunk-subjects", "0"], ["--chunk-subjects", "1 to 1,000,000", "'0'"]),
    (["--cluster", "local:2", "--chunk-subjects", "many"], ["--chunk-subjects", "'many'"]),
    (["--chunk-subjects", "2"], ["--chunk-subjects", "--cluster", "--scheduler"]),
])
def test_bad_cluster_flags(scenario_file, tmp_path, capsys, monkeypatch, flags, words):
    def no_engine(*a, **k):  # nothing may run
        raise AssertionError("simulated despite bad flags")

    monkeypatch.setattr(cluster, "Connection", no_engine)
    monkeypatch.setattr(cli, "_simulate", no_engine)
    rc = cli.main(["run", str(scenario_file), "--out", str(tmp_path / "o")] + flags)
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 2
    for w in words:
        assert w in line, line
    _nothing_written(tmp_path, "o")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_is_a_clear_error_soon(scenario_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 2.0)
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    t0 = time.perf_counter()
    rc = cli.main(["run", str(scenario_file), "--out", str(tmp_path / "o"), "--scheduler", address])
    elapsed = time.perf_counter() - t0
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 2
    assert f"--scheduler '{address}'" in line and "within 2 s" in line and "dask scheduler" in line
    assert elapsed < 20, elapsed
    _nothing_written(tmp_path, "o")


def test_scheduler_without_workers_is_a_clear_error(scenario_file, tmp_path, capsys, monkeypatch):
    from distributed import LocalCluster

    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 1.0)
    with LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as empty:
        rc = cli.main(["run", str(scenario_file), "--out", str(tmp_path / "o"), "--scheduler",
                       empty.scheduler_address])
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 2 and "no worker" in line and "dask worker" in line
    _nothing_written(tmp_path, "o")


def test_workers_that_cannot_see_the_output_are_refused(scenario_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cluster.Connection, "unreachable", lambda self, path: ["tcp://10.0.0.9:4000"])
    rc = cli.main(["run", str(scenario_file), "--out", str(tmp_path / "o"), "--cluster", "local:1",
                   "--no-progress"])
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 2 and "every worker" in line and "tcp://10.0.0.9:4000" in line
    _nothing_written(tmp_path, "o")


def test_workers_of_another_version_are_refused(scenario_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cluster, "_worker_info", lambda: {"opioidsim": "0.0.1-other"})
    rc = cli.main(["run", str(scenario_file), "--out", str(tmp_path / "o"), "--cluster", "local:1",
                   "--no-progress"])
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 2 and "0.0.1-other" in line and "same version" in line
    _nothing_written(tmp_path, "o")


# ------------------------------------------------------------------------------------------------
# a failed task: no results folder, the marked incomplete one; --resume finishes it
# ------------------------------------------------------------------------------------------------
def test_failed_task_leaves_only_the_incomplete_folder_and_resume_finishes(
        scenario_file, single_process, tmp_path, capsys, monkeypatch):
    real = cluster.run_chunk

    def fail_second_chunk(scenario, store, start, stop, done_dir, version):
        if start == 2:  # once the first chunk is in (so that the test does not race with it)
            first = Path(done_dir) / "000000000-000000002.json"
            deadline = time.monotonic() + 300
            while not first.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            raise RuntimeError("injected worker failure")
        return real(scenario, store, start, stop, done_dir, version)

    monkeypatch.setattr(cluster, "run_chunk", fail_second_chunk)
    out = tmp_path / "res"
    rc = cli.main(["run", str(scenario_file), "--out", str(out), "--cluster", "local:2",
                   "--chunk-subjects", "2", "--no-progress"])
    err = capsys.readouterr().err
    line = _one_error_line(err)
    assert rc == 1
    assert "subjects 2…2" in line and "injected worker failure" in line and "--resume" in line
    assert not out.exists()
    assert [p for p in os.listdir(tmp_path) if p.startswith(".res.")] == []
    inc = tmp_path / "res.incomplete"
    assert "NOT a results folder" in (inc / "INCOMPLETE.txt").read_text()
    assert json.loads((inc / "run.json").read_text())["status"] == "incomplete"
    assert not any(p.name.startswith("results.zarr") and not p.name.endswith(".part") for p in inc.iterdir())
    assert cluster.done_chunks(inc / "done") == {(0, 2)}

    # a new run into the same place is refused (it would discard the finished chunk) ...
    rc = cli.main(["run", str(scenario_file), "--out", str(out), "--cluster", "local:2"])
    assert rc == 2 and "--resume" in _one_error_line(capsys.readouterr().err)

    # ... and --resume runs only the chunk that failed, to the same result (Dask ships the task
    # function by value, so it reports what ran through files)
    ran = tmp_path / "ran"
    ran.mkdir()

    def record(scenario, store, start, stop, done_dir, version):
        (ran / f"{start}-{stop}").touch()
        return real(scenario, store, start, stop, done_dir, version)

    monkeypatch.setattr(cluster, "run_chunk", record)
    rc = cli.main(["run", "--resume", str(out), "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert os.listdir(ran) == ["2-3"]
    assert not inc.exists()
    with xr.open_zarr(out / "results.zarr") as ds:
        assert_bitwise_equal(ds.load(), single_process)
    assert json.loads((out / "run.json").read_text())["resumed"] is True


def test_resume_of_a_dask_run_refuses_another_chunking(scenario_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cluster, "run_chunk", lambda *a: (_ for _ in ()).throw(RuntimeError("stop")))
    out = tmp_path / "res"
    assert cli.main(["run", str(scenario_file), "--out", str(out), "--cluster", "local:1",
                     "--chunk-subjects", "2", "--no-progress"]) == 1
    capsys.readouterr()
    rc = cli.main(["run", "--resume", str(out), "--chunk-subjects", "1"])
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 2 and "--chunk-subjects 1" in line and "chunks of 2" in line
