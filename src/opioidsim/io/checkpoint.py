"""Checkpoints of a long run, so that an interrupted run can be continued (`opioidsim run --resume`).

A checkpoint is a folder::

    checkpoint/
      state.npz          where the run stands: chunk, segment, records filled, the carried engine
                         state (y, dose pointer, step counters) and per-subject summaries
      part-000000.npz    records computed since the previous save (rows, record range, values)
      part-000001.npz    ...

Crash safety: every file is written under a temporary name, flushed to disk and renamed into
place (an atomic replace on POSIX), parts before the state that refers to them. A run killed at
any instant (SIGKILL, power loss, disk full) leaves the previous state.npz intact and every part it
names complete; parts written after it are ignored and overwritten. A run continued from a
checkpoint repeats the same compiled steps from the same carried state, so its records equal an
uninterrupted run's bit for bit (tests/test_reliability_resume.py).

A checkpoint carries a fingerprint of the run (scenario as TOML, version, cohort chunking,
segment length, readouts, grid); one made by a different run is refused with a clear message.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

__all__ = ["Checkpoint", "CheckpointError"]

STATE = "state.npz"


class CheckpointError(ValueError):
    """A checkpoint that does not belong to this run, or that cannot be read."""


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - not every platform can open a folder
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write_npz(path: Path, arrays: dict[str, Any]) -> None:
    """Write ``arrays`` to ``path`` so that ``path`` is either the old file or the complete new one."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to a unique temporary name in the same folder, fsync, then rename over
    ``path``: a reader sees the old file or the whole new one, never half of it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class Checkpoint:
    """Saves and restores the progress of `engine.integrate` in ``folder``.

    ``every_s``: wall-clock seconds between saves (0: after every segment). ``on_first_save``
    is called once, before the first save creates the folder (the CLI writes its "incomplete"
    marker there). A save that fails for lack of disk space or permission is reported as a
    warning and the run goes on: the previous checkpoint stays valid.
    """

    def __init__(self, folder: str | os.PathLike, fingerprint: dict[str, Any], *, every_s: float = 60.0,
                 on_first_save: Optional[Callable[[], None]] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.folder = Path(folder)
        self.fingerprint = json.dumps(fingerprint, sort_keys=True, default=str)
        self.every_s = float(every_s)
        self.on_first_save = on_first_save
        self._clock = clock
        self._last = clock()
        self._saved: Optional[tuple[int, int, int]] = None  # (rows start, rows stop, filled)
        self._n_parts = 0
        self.saves = 0
        self.failed_saves = 0

    def bind(self, details: dict[str, Any]) -> None:
        """Add the engine's own settings (chunking, readouts, grid) to the fingerprint."""
        fp = json.loads(self.fingerprint)
        fp["engine"] = details
        self.fingerprint = json.dumps(fp, sort_keys=True, default=str)

    # -- reading --------------------------------------------------------------------------------
    def exists(self) -> bool:
        return (self.folder / STATE).is_file()

    def load(self, out: np.ndarray) -> Optional[dict[str, Any]]:
        """Fill ``out`` with the saved records and return the saved state (None: nothing saved)."""
        path = self.folder / STATE
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                state = {k: z[k] for k in z.files}
        except Exception as exc:  # a state file is only ever replaced whole; this is damage
            raise CheckpointError(f"checkpoint '{path}' cannot be read ({exc})") from exc
        if str(state["fingerprint"]) != self.fingerprint:
            raise CheckpointError(f"checkpoint in '{self.folder}' was made by a different run "
                                  "(scenario, cohort, version or engine settings differ)")
        n_parts = int(state["n_parts"])
        for k in range(n_parts):
            part = self.folder / f"part-{k:06d}.npz"
            try:
                with np.load(part, allow_pickle=False) as z:
                    r0, r1, f0, f1 = (int(x) for x in z["where"])
                    out[r0:r1, f0:f1, :] = z["records"]
            except Exception as exc:
                raise CheckpointError(f"checkpoint part '{part}' is missing or damaged ({exc})") from exc
        self._n_parts = n_parts
        rows = tuple(int(x) for x in state["rows"])
        self._saved = (rows[0], rows[1], int(state["filled"]))
        scalars = ("chunk", "segment", "filled")
        return {k: (int(v) if k in scalars else v) for k, v in state.items()}

    # -- writing --------------------------------------------------------------------------------
    def due(self) -> bool:
        return self._clock() - self._last >= self.every_s

    def save(self, out: np.ndarray, state: dict[str, Any], *, final: bool = False) -> bool:
        """Save the records not saved yet and the state; True if it was saved."""
        try:
            if self.saves == 0 and self.failed_saves == 0 and not self.exists() and self.on_first_save:
                self.on_first_save()
            self.folder.mkdir(parents=True, exist_ok=True)
            r0, r1 = (int(x) for x in state["rows"])
            filled = int(state["filled"])
            n_parts = self._n_parts
            for (a, b, f0, f1) in self._new_blocks(out.shape, (r0, r1, filled)):
                if b > a and f1 > f0:
                    atomic_write_npz(self.folder / f"part-{n_parts:06d}.npz",
                                     {"where": np.array([a, b, f0, f1]), "records": out[a:b, f0:f1, :]})
                    n_parts += 1
            arrays = {k: np.asarray(v) for k, v in state.items()}
            arrays["n_parts"] = np.asarray(n_parts)
            arrays["fingerprint"] = np.asarray(self.fingerprint)
            atomic_write_npz(self.folder / STATE, arrays)
        except OSError as exc:  # disk full, no permission: keep running on the last good checkpoint
            self.failed_saves += 1
            if self.failed_saves == 1:
                warnings.warn(f"could not save a checkpoint in '{self.folder}' ({exc}); the run "
                              "goes on, and the last saved checkpoint stays valid", RuntimeWarning)
            self._last = self._clock()
            return False
        self._n_parts = n_parts
        self._saved = (r0, r1, filled)
        self._last = self._clock()
        self.saves += 1
        return True

    def _new_blocks(self, shape: tuple[int, ...], now: tuple[int, int, int]):
        """(rows start, rows stop, first record, end record) blocks computed since the last save.

        Chunks of subjects run one after another, records in order within a chunk: everything
        before the current chunk is complete, the current one up to `filled`."""
        n_records = shape[1]
        r0, r1, filled = now
        if self._saved is None:
            if r0 > 0:
                yield (0, r0, 0, n_records)
            yield (r0, r1, 0, filled)
            return
        s0, s1, sfilled = self._saved
        if s0 == r0:
            yield (r0, r1, sfilled, filled)
            return
        yield (s0, s1, sfilled, n_records)
        if r0 > s1:
            yield (s1, r0, 0, n_records)
        yield (r0, r1, 0, filled)

    def remove(self) -> None:
        """Delete the checkpoint (after the complete results are in place)."""
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)
