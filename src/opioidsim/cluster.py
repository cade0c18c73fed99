"""Cohorts on Dask: the cohort cut into chunks of subjects, each chunk written by a Dask worker into
its region of one Zarr store (issue 7).

    store = <out>.incomplete/results.zarr.part     laid out by the driver: metadata, subject, time
    chunk [a, b)  →  simulate(scenario, subjects=range(a, b))  →  store region subject a…b−1
    done/<a>-<b>.json                               written by the worker once its region is in

Subject i's parameters depend only on (seed, parameter name, i) and the engine computes a subject
the same way in any batch (`opioidsim.engine.core.MIN_BATCH`), so the store holds, bit for bit,
the Dataset `simulate(scenario)` returns in one process. The driver never holds the time series:
it lays out the store, waits for the chunks, and reads the store back a block at a time for the
summary and report (`opioidsim.report` reads in blocks).

The command line (`opioidsim run --cluster local[:N]` or `--scheduler ADDRESS`) is in
`opioidsim.cli`; this module has no printing and no exit codes.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

__all__ = [
    "ClusterError", "ClusterSpec", "ChunkFailed", "Connection", "chunks_of", "create_store",
    "default_chunk_subjects", "done_chunks", "finish_store", "open_results", "parse_cluster",
    "parse_scheduler", "run_chunk", "run_chunks", "store_matches",
]

#: the largest default chunk (subjects per Dask task)
DEFAULT_CHUNK_SUBJECTS = 1024
#: at most this many record values (float64) in one chunk on a worker: 512 MB
MAX_CHUNK_VALUES = 2**26
#: at most this many values in one Zarr chunk (32 MB before compression)
MAX_STORE_CHUNK_VALUES = 2**22
#: seconds to wait for an existing scheduler (and for it to have a worker)
CONNECT_TIMEOUT_S = 10.0
MAX_LOCAL_WORKERS = 1024
#: `--cluster local` workers are processes (False: threads of this process; tests use it)
LOCAL_PROCESSES = True

STORE_PART = "results.zarr.part"
DONE_DIR = "done"

_CLUSTER_ALLOWED = ("'local' (one worker per CPU core) or 'local:WORKERS' with WORKERS a whole "
                    f"number from 1 to {MAX_LOCAL_WORKERS:,}; for an existing Dask scheduler use "
                    "--scheduler ADDRESS")
#: a scheduler address: SCHEME://REST (tcp://host:8786, tls://…, inproc://…) or HOST[:PORT]
_ADDRESS_RE = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://\S+|[^\s/:]+(?::\d+)?)$")


class ClusterError(ValueError):
    """A cluster flag that cannot be used, or a cluster that cannot be reached (bad input)."""


class ChunkFailed(RuntimeError):
    """A Dask task (one chunk of subjects) raised; the chunks finished before are kept."""

    def __init__(self, start: int, stop: int, error: BaseException) -> None:
        self.start, self.stop, self.error = start, stop, error
        super().__init__(f"the Dask task for subjects {start}…{stop - 1} failed: "
                         f"{type(error).__name__}: {error}")


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def worker_xla_flags(devices: int) -> str:
    """This process's XLA flags with `devices` host devices instead of one per core: a local
    cluster's workers share the machine's cores, so each splits its batches over its share of them
    (engine/devices.py; opioidsim/__init__.py gives a process one host device per core)."""
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split()
             if not f.startswith("--xla_force_host_platform_device_count")]
    return " ".join(flags + [f"--xla_force_host_platform_device_count={max(1, int(devices))}"])


@dataclass(frozen=True)
class ClusterSpec:
    """Where the chunks run: a local cluster of `local_workers` (0: one per CPU core) or the
    existing scheduler at `address`."""

    local_workers: Optional[int] = None
    address: Optional[str] = None

    @property
    def flags(self) -> list[str]:
        """The command-line flags that give this spec (kept in run.json for --resume)."""
        if self.address is not None:
            return ["--scheduler", self.address]
        return ["--cluster", "local" if not self.local_workers else f"local:{self.local_workers}"]

    def describe(self) -> str:
        if self.address is not None:
            return f"the Dask scheduler at {self.address}"
        n = self.local_workers or cpu_count()
        return f"a local Dask cluster of {n} worker{'s' if n != 1 else ''}"


def parse_cluster(text: str) -> ClusterSpec:
    """``--cluster local`` or ``local:N`` (1 ≤ N ≤ MAX_LOCAL_WORKERS)."""
    t = str(text).strip()
    m = re.fullmatch(r"local(?::([0-9_]+))?", t)
    if m is None:
        raise ClusterError(f"--cluster {text!r}: must be {_CLUSTER_ALLOWED}")
    if m.group(1) is None:
        return ClusterSpec(local_workers=0)
    n = int(m.group(1).replace("_", "") or "0")
    if not 1 <= n <= MAX_LOCAL_WORKERS:
        raise ClusterError(f"--cluster {text!r}: the number of workers must be a whole number from 1 "
                           f"to {MAX_LOCAL_WORKERS:,} (got {n}); 'local' alone gives one per CPU core")
    return ClusterSpec(local_workers=n)


def parse_scheduler(text: str) -> ClusterSpec:
    """``--scheduler ADDRESS``: a Dask scheduler address such as ``tcp://host:8786``."""
    t = str(text).strip()
    if not t or not _ADDRESS_RE.match(t):
        raise ClusterError(f"--scheduler {text!r}: must be the address of a running Dask scheduler, "
                           "such as tcp://HOST:8786 (start one with 'dask scheduler')")
    return ClusterSpec(address=t)


# ---------------------------------------------------------------------------------------------
# connecting
# ---------------------------------------------------------------------------------------------
def _worker_info() -> dict[str, Any]:
    """Runs on each worker: what decides whether it computes what this process would."""
    import platform
    import sys

    from opioidsim.io.results import package_version

    try:
        import jax

        jax_version = jax.__version__
    except Exception:  # pragma: no cover - a broken worker environment
        jax_version = "missing"
    return {"opioidsim": package_version(), "jax": jax_version, "numpy": np.__version__,
            "python": sys.version.split()[0], "machine": platform.machine(),
            "host": socket.gethostname()}


class Connection:
    """A Dask client on a local cluster or an existing scheduler; a context manager.

    Connecting raises ClusterError (bad input: nothing to run on) when the scheduler cannot be
    reached within `timeout` seconds or has no worker in that time."""

    def __init__(self, spec: ClusterSpec, *, timeout: Optional[float] = None,
                 processes: Optional[bool] = None) -> None:
        self.spec = spec
        self.timeout = CONNECT_TIMEOUT_S if timeout is None else float(timeout)
        self.processes = LOCAL_PROCESSES if processes is None else bool(processes)
        self.client: Any = None
        self.cluster: Any = None

    def __enter__(self) -> "Connection":
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - a dependency of opioidsim
            raise ClusterError(f"Dask is not installed ({exc}): pip install 'dask[distributed]'") from exc
        quiet = logging.CRITICAL  # a failed task is reported once, by the caller
        try:
            if self.spec.address is None:
                n = self.spec.local_workers or cpu_count()
                # dashboard on a free port: the default 8787 may be held by another run, and the
                # warning Dask would print is not the user's business
                # worker processes: each its share of the cores as host devices (threads of this
                # process share its devices)
                share = {"env": {"XLA_FLAGS": worker_xla_flags(cpu_count() // n)}} if self.processes else {}
                self.cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=self.processes,
                                            dashboard_address=":0", silence_logs=quiet, **share)
                self.client = Client(self.cluster, set_as_default=False)
            else:
                for name in ("distributed.client", "distributed.core", "distributed.comm.tcp"):
                    logging.getLogger(name).setLevel(quiet)
                try:
                    self.client = Client(self.spec.address, timeout=self.timeout, set_as_default=False)
                except (OSError, TimeoutError, ValueError) as exc:
                    raise ClusterError(
                        f"--scheduler {self.spec.address!r}: no Dask scheduler answered there within "
                        f"{self.timeout:g} s ({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); "
                        "start one with 'dask scheduler' and check the address and port") from None
                try:
                    self.client.wait_for_workers(1, timeout=self.timeout)
                except (OSError, TimeoutError) as exc:
                    raise ClusterError(
                        f"--scheduler {self.spec.address!r}: the scheduler has no worker (waited "
                        f"{self.timeout:g} s); start workers with 'dask worker {self.spec.address}'") from exc
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        for thing in (self.client, self.cluster):
            if thing is not None:
                try:
                    thing.close()
                except Exception:  # closing is best effort (a scheduler already gone)
                    pass
        self.client = self.cluster = None

    def threads(self) -> int:
        """Worker threads in all: how many chunks can run at once."""
        try:
            info = self.client.scheduler_info(n_workers=-1)  # (by default only the first few)
        except TypeError:  # distributed before 2025: every worker
            info = self.client.scheduler_info()
        workers = info.get("workers", {})
        return max(1, sum(int(w.get("nthreads", 1)) for w in workers.values()))

    def worker_info(self) -> dict[str, dict[str, Any]]:
        return self.client.run(_worker_info)

    def check_workers(self, version: str) -> dict[str, dict[str, Any]]:
        """Every worker runs this opioidsim version (else ClusterError: results would differ)."""
        info = self.worker_info()
        wrong = {a: i["opioidsim"] for a, i in info.items() if i.get("opioidsim") != version}
        if wrong:
            addr, v = next(iter(wrong.items()))
            raise ClusterError(
                f"the Dask workers must run opioidsim {version} like this command; {len(wrong)} of "
                f"{len(info)} run another version (worker {addr}: {v}): install the same version on "
                "every worker")
        return info

    def unreachable(self, path: Path) -> list[str]:
        """The workers that cannot see `path` (the results must be on storage they all reach)."""
        seen = self.client.run(os.path.exists, str(path))
        return sorted(a for a, ok in seen.items() if not ok)


# ---------------------------------------------------------------------------------------------
# the store
# ---------------------------------------------------------------------------------------------
def default_chunk_subjects(n_subjects: int, threads: int, n_records: int, n_readouts: int) -> int:
    """Subjects per chunk: at most DEFAULT_CHUNK_SUBJECTS, few enough that every worker thread
    gets a chunk, and small enough that a chunk's records fit in MAX_CHUNK_VALUES."""
    per_thread = math.ceil(n_subjects / max(1, threads))
    by_memory = MAX_CHUNK_VALUES // max(1, n_records * n_readouts)
    return max(1, min(DEFAULT_CHUNK_SUBJECTS, per_thread, by_memory))


def chunks_of(n_subjects: int, chunk_subjects: int) -> list[tuple[int, int]]:
    return [(a, min(n_subjects, a + chunk_subjects)) for a in range(0, n_subjects, chunk_subjects)]


def store_layout(scenario: Any, chunk_subjects: int) -> tuple[Any, dict[str, tuple[int, ...]]]:
    """(the empty Dataset of `simulate(scenario)`, the Zarr chunks of each subject variable)."""
    from opioidsim.engine.core import result_template

    empty = result_template(scenario)
    n_time = empty.sizes["time"]
    time_chunk = max(1, min(n_time, MAX_STORE_CHUNK_VALUES // chunk_subjects))
    chunks = {}
    for name, var in empty.variables.items():
        if "subject" in var.dims and name != "subject":
            chunks[str(name)] = tuple(chunk_subjects if d == "subject" else time_chunk for d in var.dims)
    return empty, chunks


def create_store(path: Path, scenario: Any, chunk_subjects: int) -> Any:
    """Lay out the Zarr store of the whole cohort at `path`: metadata, the `subject` and `time`
    coordinates and the attributes of a results file; no subject data (the workers write it).
    Returns the layout Dataset."""
    import dask.array as da
    import xarray as xr

    from opioidsim.io.results import result_attrs, utc_now

    empty, chunks = store_layout(scenario, chunk_subjects)
    n = int(scenario.cohort.subjects)
    lazy = {}
    for name, var in empty.variables.items():
        if name in chunks:
            shape = tuple(n if d == "subject" else empty.sizes[d] for d in var.dims)
            data = da.zeros(shape, dtype=var.dtype, chunks=chunks[name])
            lazy[name] = xr.Variable(var.dims, data, var.attrs)
    layout = xr.Dataset(
        {k: lazy[k] for k in empty.data_vars},
        coords={"subject": np.arange(n, dtype=empty["subject"].dtype), "time": empty["time"],
                **{k: lazy[k] for k in empty.coords if k in lazy}},
        attrs=result_attrs(empty.attrs, scenario, utc_now()))
    layout.to_zarr(path, mode="w", compute=False, consolidated=False, zarr_format=2)
    return layout


def store_matches(path: Path, scenario_toml: str, version: str) -> Optional[int]:
    """The chunk size of the store at `path` if it was laid out for this scenario and version
    (None if it is missing, unreadable or of another run)."""
    try:
        import zarr

        group = zarr.open_group(str(path), mode="r")
        attrs = dict(group.attrs)
        chunk = int(group["status"].chunks[0])
    except Exception:
        return None
    if attrs.get("scenario_toml") != scenario_toml or attrs.get("opioidsim_version") != version:
        return None
    return chunk


def _marker(done_dir: Path, start: int, stop: int) -> Path:
    return Path(done_dir) / f"{start:09d}-{stop:09d}.json"


def done_chunks(done_dir: Path) -> set[tuple[int, int]]:
    """The chunks whose region is in the store (their worker wrote the marker after it)."""
    out = set()
    if not Path(done_dir).is_dir():
        return out
    for p in Path(done_dir).glob("*.json"):
        m = re.fullmatch(r"(\d{9})-(\d{9})\.json", p.name)
        if m:
            out.add((int(m.group(1)), int(m.group(2))))
    return out


def run_chunk(scenario: Any, store: str, start: int, stop: int, done_dir: str, version: str) -> dict[str, Any]:
    """One Dask task: simulate subjects start…stop−1 and write them into their store region.

    Runs on a worker. The marker in `done_dir` is written (atomically) only after the region."""
    from opioidsim.engine.core import simulate
    from opioidsim.io.results import package_version

    here = package_version()
    if here != version:
        raise RuntimeError(f"this worker ({socket.gethostname()}) runs opioidsim {here}, the run "
                           f"needs {version}")
    t0 = time.perf_counter()
    ds = simulate(scenario, subjects=range(start, stop))
    part = ds.drop_vars(["time", "subject"])
    part.attrs = {}
    for var in part.variables.values():
        var.attrs = {}
    part.to_zarr(store, region={"subject": slice(start, stop)}, mode="r+", consolidated=False)
    info = {"start": start, "stop": stop, "failed": int(ds.attrs.get("subjects_failed", 0)),
            "seconds": round(time.perf_counter() - t0, 3), "host": socket.gethostname()}
    marker = _marker(Path(done_dir), start, stop)
    tmp = marker.with_name(marker.name + f".{os.getpid()}.part")
    tmp.write_text(json.dumps(info) + "\n", encoding="utf-8")
    os.replace(tmp, marker)
    return info


def run_chunks(conn: Connection, scenario: Any, store: Path, chunk_subjects: int, done_dir: Path,
               version: str, *, progress: Optional[Callable[[int, int], None]] = None) -> list[dict[str, Any]]:
    """Run every chunk not yet done; `progress(done, total)` after each. Raises ChunkFailed for
    the first task that fails, after cancelling the others (the finished chunks stay done)."""
    from distributed import as_completed

    all_chunks = chunks_of(int(scenario.cohort.subjects), chunk_subjects)
    finished = done_chunks(done_dir)
    todo = [c for c in all_chunks if c not in finished]
    total, count = len(all_chunks), len(all_chunks) - len(todo)
    if progress is not None:
        progress(count, total)
    client = conn.client
    futures = {client.submit(run_chunk, scenario, str(store), a, b, str(done_dir), version,
                             key=f"opioidsim-chunk-{a}-{b}-{os.getpid()}-{time.time_ns()}", pure=False): (a, b)
               for a, b in todo}
    infos = []
    try:
        for fut in as_completed(list(futures), loop=client.loop):
            a, b = futures[fut]
            try:
                infos.append(fut.result())
            except Exception as exc:
                raise ChunkFailed(a, b, exc) from exc
            count += 1
            if progress is not None:
                progress(count, total)
    except BaseException:
        try:
            client.cancel(list(futures))
        except Exception:  # the scheduler may be gone already
            pass
        raise
    return infos


def finish_store(path: Path) -> int:
    """Stamp the finished store (`created_utc`, `subjects_failed`) and consolidate its metadata;
    returns the count of failed subjects (read from `status`, a block at a time)."""
    import zarr

    from opioidsim.io.results import utc_now

    group = zarr.open_group(str(path), mode="r+")
    status = group["status"]
    step = max(1, int(status.chunks[0]) * 64)
    failed = sum(int(np.count_nonzero(status[a:a + step])) for a in range(0, status.shape[0], step))
    group.attrs.update({"created_utc": utc_now(), "subjects_failed": failed})
    zarr.consolidate_metadata(str(path))
    return failed


def open_results(path: str | os.PathLike) -> Any:
    """The results Dataset of a store, lazily (Dask arrays over the store's chunks): the same as
    ``xarray.open_zarr(path)``."""
    import xarray as xr

    return xr.open_zarr(str(path), consolidated=True)
