"""Simulation jobs for the explorer: one worker thread, a short queue, progress and cancel.

The engine runs in a worker thread (JAX releases the GIL while it computes, so the web server stays
responsive). Each job has an id the browser polls for progress; cancelling sets a flag that the
engine's progress callback turns into `Cancelled`, so a run stops at its next segment. Only a few
jobs may wait at once (`Busy` otherwise): one browser cannot queue up hours of work. Warm-up jobs
(compiling the engine at start-up) wait behind every user job.
"""
from __future__ import annotations

import itertools
import queue
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

__all__ = ["Busy", "Cancelled", "Job", "JobManager"]


class Cancelled(Exception):
    """Raised inside a run (from its progress callback) when its job was cancelled."""


class Busy(Exception):
    """Too many jobs waiting; the message says how many."""


#: job states
QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)


@dataclass
class Job:
    id: str
    fn: Callable[[Callable[[float], None]], Any]
    label: str = ""
    warmup: bool = False
    status: str = QUEUED
    progress: float = 0.0
    result: Any = None
    error: Any = None
    created: float = field(default_factory=time.monotonic)
    started: Optional[float] = None
    finished: Optional[float] = None
    cancel_event: threading.Event = field(default_factory=threading.Event)

    def view(self) -> dict[str, Any]:
        """What the browser sees (the result only once done)."""
        now = time.monotonic()
        out: dict[str, Any] = {"id": self.id, "status": self.status, "progress": round(self.progress, 4),
                               "label": self.label}
        if self.started is not None:
            out["elapsed_s"] = round((self.finished or now) - self.started, 3)
        if self.status == DONE:
            out["result"] = self.result
        elif self.status == FAILED:
            out["error"] = self.error
        return out


class JobManager:
    """Runs jobs one at a time in a worker thread, user jobs before warm-ups.

    ``max_waiting``: user jobs queued or running at once (more → `Busy`); ``keep_s``: how long a
    finished job's result can still be fetched; ``max_run_s``: a run still going after this is
    cancelled (a safety net; the explorer's limits keep runs well below it)."""

    def __init__(self, *, max_waiting: int = 3, keep_s: float = 600.0, keep_jobs: int = 32,
                 max_run_s: float = 900.0) -> None:
        self.max_waiting = max_waiting
        self.keep_s = keep_s
        self.keep_jobs = keep_jobs
        self.max_run_s = max_run_s
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._queue: "queue.PriorityQueue[tuple[int, int, Optional[Job]]]" = queue.PriorityQueue()
        self._seq = itertools.count()
        self._stopping = False
        self._worker = threading.Thread(target=self._loop, name="opioidsim-explorer-worker", daemon=True)
        self._worker.start()

    # -- public ------------------------------------------------------------------------------
    def submit(self, fn: Callable[[Callable[[float], None]], Any], *, label: str = "",
               warmup: bool = False) -> Job:
        """Queue ``fn(progress)``; returns the Job (raises `Busy` when too many are waiting)."""
        with self._lock:
            self._forget_old()
            if not warmup:
                # a cancelled run still going stops at its next segment: it does not hold a place
                waiting = sum(1 for j in self._jobs.values()
                              if not j.warmup and j.status in (QUEUED, RUNNING) and not j.cancel_event.is_set())
                if waiting >= self.max_waiting:
                    raise Busy(f"the explorer is busy with {waiting} runs (at most {self.max_waiting} at "
                               "once): wait for one to finish or cancel one")
            job = Job(id=secrets.token_hex(8), fn=fn, label=label, warmup=warmup)
            self._jobs[job.id] = job
        self._queue.put((1 if warmup else 0, next(self._seq), job))
        return job

    def get(self, job_id: str) -> Optional[Job]:
        with self._lock:
            return self._jobs.get(job_id)

    def cancel(self, job_id: str) -> Optional[Job]:
        job = self.get(job_id)
        if job is not None and job.status not in FINISHED:
            job.cancel_event.set()
            with self._lock:
                if job.status == QUEUED:
                    job.status, job.finished = CANCELLED, time.monotonic()
        return job

    def wait(self, job_id: str, timeout: float = 600.0) -> Optional[Job]:
        """Block until the job finishes (for tests and the benchmark)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            job = self.get(job_id)
            if job is None or job.status in FINISHED:
                return job
            time.sleep(0.02)
        return self.get(job_id)

    def idle(self) -> bool:
        with self._lock:
            return all(j.status in FINISHED for j in self._jobs.values())

    def shutdown(self) -> None:
        self._stopping = True
        with self._lock:
            for job in self._jobs.values():
                job.cancel_event.set()
        self._queue.put((-1, -1, None))
        self._worker.join(timeout=30)

    # -- worker ------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stopping:
            _, _, job = self._queue.get()
            if job is None:
                return
            with self._lock:
                if job.status != QUEUED:  # cancelled while waiting
                    continue
                job.status, job.started = RUNNING, time.monotonic()
            self._run(job)

    def _run(self, job: Job) -> None:
        def progress(fraction: float) -> None:
            if job.cancel_event.is_set() or self._stopping:
                raise Cancelled()
            if job.started is not None and time.monotonic() - job.started > self.max_run_s:
                raise Cancelled()
            try:
                job.progress = min(max(float(fraction), 0.0), 1.0)
            except (TypeError, ValueError):
                pass

        try:
            result = job.fn(progress)
        except Cancelled:
            status, result, error = CANCELLED, None, None
        except Exception as exc:  # reported to the browser; the server goes on
            status, result, error = FAILED, None, _error_view(exc)
        else:
            status, error = DONE, None
            if job.cancel_event.is_set():
                status, result = CANCELLED, None
        with self._lock:
            job.result, job.error = result, error
            job.progress = 1.0 if status == DONE else job.progress
            job.status, job.finished = status, time.monotonic()

    def _forget_old(self) -> None:
        now = time.monotonic()
        done = sorted((j for j in self._jobs.values() if j.status in FINISHED), key=lambda j: j.finished or 0)
        for j in done:
            if now - (j.finished or now) > self.keep_s or len(self._jobs) > self.keep_jobs:
                del self._jobs[j.id]


def _error_view(exc: Exception) -> dict[str, Any]:
    from opioidsim.errors import ScenarioError

    if isinstance(exc, ScenarioError):
        return {"message": str(exc), "field": exc.field}
    return {"message": f"the run failed: {type(exc).__name__}: {exc}", "field": None}
