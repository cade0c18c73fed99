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

Two kinds of run use it. The engine (`engine.integrate`, dose schedules) saves one record array
and its carried state with `Checkpoint.load` / `Checkpoint.save`. Life courses, trials and animal
experiments run *loops* of compiled calls over subject chunks, each call filling several record
arrays; `Checkpoint.loop` gives a `LoopCheckpoint` per loop (a trial has one per arm), whose
state.npz holds every loop's position and carried state (a pytree, flattened to ``a::b`` keys)
under ``kind = "loops"``, and whose parts name their loop, rows and step range. A checkpoint of
one kind is refused by the other.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np

__all__ = ["Checkpoint", "CheckpointError", "LoopCheckpoint", "LoopResume"]

STATE = "state.npz"
#: the ``kind`` of a checkpoint made by loops of compiled calls (`LoopCheckpoint`); the engine's
#: checkpoints (dose-schedule runs) have no kind
LOOPS_KIND = "loops"


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
        # loops (LoopCheckpoint): their saved states by name, in the order they ran, and the
        # steps saved per chunk; None until the saved state has been read
        self._loop_states: Optional[dict[str, dict[str, np.ndarray]]] = None
        self._loop_saved: dict[str, np.ndarray] = {}
        self._loops: dict[str, LoopCheckpoint] = {}  # every loop of this run so far, in order

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
        if "kind" in state:
            raise CheckpointError(f"checkpoint in '{self.folder}' was made by another kind of run "
                                  f"({state['kind']}: a life course, trial or animal experiment)")
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

    def _save_failed(self, exc: OSError) -> bool:
        """A save that could not be written: warn once, try again after the interval, go on."""
        self.failed_saves += 1
        if self.failed_saves == 1:
            warnings.warn(f"could not save a checkpoint in '{self.folder}' ({exc}); the run "
                          "goes on, and the last saved checkpoint stays valid", RuntimeWarning)
        self._last = self._clock()
        return False

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
            return self._save_failed(exc)
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

    # -- loops of compiled calls (courses, trials, paradigms) ---------------------------------------
    def loop(self, name: str, details: dict[str, Any], records: dict[str, np.ndarray],
             chunks: list[np.ndarray]) -> "LoopCheckpoint":
        """The checkpoint of the loop ``name`` of this run (see `LoopCheckpoint`): ``records``
        are the arrays (subject row, step, ...) it fills, ``chunks`` the rows of each subject
        chunk in the order they run; ``details`` what must match for a saved loop to be reused."""
        loop = LoopCheckpoint(self, name, details, records, chunks)
        self._loops[name] = loop
        return loop

    def _read_loops(self) -> dict[str, dict[str, np.ndarray]]:
        if self._loop_states is not None:
            return self._loop_states
        path = self.folder / STATE
        states: dict[str, dict[str, np.ndarray]] = {}
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as z:
                    state = {k: z[k] for k in z.files}
            except Exception as exc:
                raise CheckpointError(f"checkpoint '{path}' cannot be read ({exc})") from exc
            if str(state.get("kind", "")) != LOOPS_KIND:
                raise CheckpointError(f"checkpoint in '{self.folder}' was made by another kind of run "
                                      "(a dose schedule, not a life course, trial or animal experiment)")
            if str(state["fingerprint"]) != self.fingerprint:
                raise CheckpointError(f"checkpoint in '{self.folder}' was made by a different run "
                                      "(scenario, cohort or version differ)")
            for name in json.loads(str(state["loops"])):
                prefix = name + SEP
                states[name] = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            self._n_parts = int(state["n_parts"])
        self._loop_states = states
        return states

    def _loop_state(self, name: str) -> Optional[dict[str, np.ndarray]]:
        return self._read_loops().get(name)

    def _fill(self, name: str, records: dict[str, np.ndarray]) -> None:
        """Copy the saved records of loop ``name`` into ``records``."""
        for k in range(self._n_parts):
            part = self.folder / f"part-{k:06d}.npz"
            try:
                with np.load(part, allow_pickle=False) as z:
                    if str(z["loop"]) != name:
                        continue
                    rows = z["rows"]
                    f0, f1 = (int(x) for x in z["where"])
                    for key, arr in records.items():
                        arr[rows, f0:f1] = z[f"rec{SEP}{key}"]
            except Exception as exc:
                raise CheckpointError(f"checkpoint part '{part}' is missing or damaged ({exc})") from exc

    def _save_loops(self) -> bool:
        """Save the records every loop of this run computed since its last save (a loop that
        finished before the first save too), then the state of every loop."""
        states = dict(self._read_loops())
        saved_now: dict[str, np.ndarray] = {}
        try:
            if self.saves == 0 and self.failed_saves == 0 and not self.exists() and self.on_first_save:
                self.on_first_save()
            self.folder.mkdir(parents=True, exist_ok=True)
            n_parts = self._n_parts
            for loop in self._loops.values():
                if not loop.done and loop._committed is None:
                    continue  # nothing computed since it was made or resumed
                saved = self._loop_saved.get(loop.name, np.zeros(len(loop.chunks), dtype=np.int64))
                for ci, rows in enumerate(loop.chunks):
                    f0, f1 = int(saved[ci]), int(loop._computed[ci])
                    if f1 > f0 and len(rows):
                        part = {"loop": np.asarray(loop.name), "rows": rows, "where": np.array([f0, f1])}
                        part.update({f"rec{SEP}{key}": arr[rows, f0:f1] for key, arr in loop.records.items()})
                        atomic_write_npz(self.folder / f"part-{n_parts:06d}.npz", part)
                        n_parts += 1
                states[loop.name] = loop._state()
                saved_now[loop.name] = loop._computed.copy()
            arrays = {"kind": np.asarray(LOOPS_KIND), "fingerprint": np.asarray(self.fingerprint),
                      "n_parts": np.asarray(n_parts), "loops": np.asarray(json.dumps(list(states)))}
            for name, state in states.items():
                arrays.update({f"{name}{SEP}{k}": v for k, v in state.items()})
            atomic_write_npz(self.folder / STATE, arrays)
        except OSError as exc:  # as in `save`: the last saved checkpoint stays valid
            return self._save_failed(exc)
        self._loop_states = states
        self._loop_saved.update(saved_now)
        self._n_parts = n_parts
        self._last = self._clock()
        self.saves += 1
        return True

    def remove(self) -> None:
        """Delete the checkpoint (after the complete results are in place)."""
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# loops of compiled calls over subject chunks with several record arrays (courses, paradigms)
# ---------------------------------------------------------------------------------------------
SEP = "::"


def flatten_tree(tree: Any, prefix: str = "") -> dict[str, np.ndarray]:
    """A nested dict of arrays (a pytree of carried state) as flat ``a::b::c`` keys, for an npz file."""
    if isinstance(tree, dict):
        flat: dict[str, np.ndarray] = {}
        for key, value in tree.items():
            if SEP in str(key):
                raise ValueError(f"a checkpointed state's key may not contain {SEP!r} (got {key!r})")
            flat.update(flatten_tree(value, f"{prefix}{key}{SEP}"))
        return flat
    return {prefix[: -len(SEP)]: np.asarray(tree)}


def unflatten_tree(flat: dict[str, np.ndarray]) -> dict[str, Any]:
    """The inverse of `flatten_tree`."""
    tree: dict[str, Any] = {}
    for key, value in flat.items():
        *path, leaf = key.split(SEP)
        node = tree
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


class LoopResume:
    """Where a checkpointed loop stands: ``chunk`` and ``call`` (the next call to run in that
    chunk) and the carried state after the calls before it (None where the loop was done)."""

    def __init__(self, chunk: int, call: int, carry: Optional[dict[str, Any]]) -> None:
        self.chunk, self.call, self.carry = chunk, call, carry

    def __repr__(self) -> str:  # pragma: no cover - for debugging
        return f"LoopResume(chunk={self.chunk}, call={self.call})"


class LoopCheckpoint:
    """The checkpoint of one loop of compiled calls: subject chunks one after another, calls in
    order within a chunk, each call filling steps ``[filled, filled + k)`` of several record
    arrays (subject, step, ...) for the chunk's rows. Made by `Checkpoint.loop`.

    A run (a trial: one loop per arm) may hold several loops, in the order they run; each is
    named. The loop's ``details`` (its chunks, record shapes, kind of run) must equal the saved
    ones, else the checkpoint is refused. Use::

        ck = checkpoint.loop("course", details, {"behaviour": rec_b, ...}, chunk_rows)
        at = ck.resume()          # fills the records from the saved parts; None: from the start
        with ck.guard():          # saves the last consistent point on Ctrl-C, SIGTERM, an error
            for chunk ...:
                for call ...:
                    ... run the call, write its records ...
                    ck.advance(chunk, call + 1, filled, carry)   # saves when due
        ck.finish()
    """

    def __init__(self, owner: "Checkpoint", name: str, details: dict[str, Any],
                 records: dict[str, np.ndarray], chunks: list[np.ndarray]) -> None:
        if SEP in name:
            raise ValueError(f"a loop's name may not contain {SEP!r} (got {name!r})")
        self.owner = owner
        self.name = name
        self.details = json.dumps(details, sort_keys=True, default=str)
        self.records = records
        self.chunks = [np.asarray(c, dtype=np.int64) for c in chunks]
        self._computed = np.zeros(len(chunks), dtype=np.int64)  # steps filled per chunk
        self._committed: Optional[tuple[int, int, dict[str, Any]]] = None  # (chunk, call, carry)
        self.done = False

    # -- reading --------------------------------------------------------------------------------
    def resume(self) -> Optional[LoopResume]:
        """Fill the records from the saved parts; where the loop stands (None: nothing saved)."""
        own = self.owner._loop_state(self.name)
        if own is None:
            return None
        if str(own["details"]) != self.details:
            raise CheckpointError(f"checkpoint in '{self.owner.folder}' was made by a different run "
                                  f"(the settings of its '{self.name}' loop differ)")
        self.owner._fill(self.name, self.records)
        self._computed[:] = own["filled"]
        self.owner._loop_saved[self.name] = self._computed.copy()
        chunk, call = int(own["chunk"]), int(own["call"])
        if bool(own["done"]):
            self.done = True
            return LoopResume(len(self.chunks), 0, None)
        carry = unflatten_tree({k[len("carry" + SEP):]: v for k, v in own.items()
                                if k.startswith("carry" + SEP)})
        if call == 0 or not carry:  # saved before the chunk's first call: start the chunk afresh
            return LoopResume(chunk, 0, None)
        self._committed = (chunk, call, carry)
        return LoopResume(chunk, call, carry)

    # -- writing --------------------------------------------------------------------------------
    def advance(self, chunk: int, call: int, filled: int, carry: dict[str, Any]) -> None:
        """The calls of ``chunk`` before ``call`` are done, its records filled up to step
        ``filled``, ``carry`` the state to go on from; save if a save is due."""
        self._computed[chunk] = filled
        self._committed = (chunk, call, carry)
        if self.owner.due():
            self.save()

    def save(self) -> bool:
        """Save the records not saved yet and the last consistent point (see `advance`)."""
        return self.owner._save_loops()

    def finish(self) -> None:
        """The loop is done: save that (if this run saves at all), so that later loops of the run
        and a failure to write the results lose nothing."""
        self.done = True
        self._committed = None
        if self.owner.saves > 0 or self.owner.due():
            self.save()

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Save the last consistent point when the body is interrupted (Ctrl-C, SIGTERM raised as
        an exception, an error), then let the interruption go on."""
        try:
            yield
        except BaseException:
            if self._committed is not None or self.done:
                self.save()
            raise

    def _state(self) -> dict[str, np.ndarray]:
        state = {"details": np.asarray(self.details), "done": np.asarray(self.done),
                 "filled": self._computed.copy()}
        if self._committed is None:
            state.update(chunk=np.asarray(len(self.chunks) if self.done else 0), call=np.asarray(0))
        else:
            chunk, call, carry = self._committed
            state.update(chunk=np.asarray(chunk), call=np.asarray(call))
            state.update({f"carry{SEP}{k}": v for k, v in flatten_tree(carry).items()})
        return state
