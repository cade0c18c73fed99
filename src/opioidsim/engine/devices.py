"""A batch of subjects split over the devices JAX has, each device stepping its part at once.

On CPU opioidsim/__init__.py makes one host device per core: XLA's CPU backend runs a device's
program, a while_loop of small batched operations, on little more than one core, so a batch on
one device left the other cores idle (the bench cohort used 1.4 of 2). Subjects never interact
inside a compiled loop (each has its own steps, doses, decisions and random keys; a loop runs
until its part's slowest subject is done), and a subject is computed bitwise the same wherever it
lies in whole SIMD vectors (`LANES`), so a split run gives the records of the unsplit one, bit for
bit. On one GPU there is one device and nothing changes.
"""
from __future__ import annotations

import jax
import numpy as np

#: the smallest batch a compiled loop is given, on any device: a one-subject batch is padded with a
#: copy of its subject. XLA simplifies a batch dimension of size 1 away, which changes the order of
#: floating-point operations (a subject alone differs in the last bits from the same subject in a
#: batch); batches of two or more compute a subject identically where it lies in the same place of
#: the SIMD pattern (`LANES`): in any chunking of a small cohort, and in the device parts below.
MIN_BATCH = 2


def available() -> int:
    """The devices a batch may be split over: all of JAX's default backend's."""
    return len(jax.devices())


def checked_devices(devices) -> int:
    """`devices` as given to a run (None: all of them), checked."""
    have = available()
    if devices is None:
        return have
    if isinstance(devices, bool) or not isinstance(devices, (int, np.integer)) or not 1 <= devices <= have:
        raise ValueError(f"devices must be a whole number from 1 to {have} (the devices JAX has), got {devices!r}")
    return int(devices)


#: subjects a device's part holds a multiple of. A compiled loop's arithmetic on a batch is
#: vectorised over its subjects: whole SIMD vectors (and unrolled pairs of them) first, the rest
#: in a shorter tail, which can differ in the last bits (fused multiply-adds, another polynomial).
#: A subject gets the same bits only in the same place of that pattern: 8 versus 4 + 4 rats of an
#: animal experiment, 12 versus 6 + 6 and 24 versus 12 + 12 differed in the last bits, 16 versus
#: 8 + 8 did not (here SIMD vectors hold 8 doubles with AVX-512). So a split batch is cut into parts
#: of a multiple of LANES (16: twice that vector, for machines that unroll), and a batch that could
#: be split is padded to a multiple of LANES even when it is not: every subject then lies in whole
#: vectors either way.
LANES = 16


def shards_for(rows: int, devices: int) -> int:
    """How many devices share a batch of `rows` subjects that may be padded: as many as give each
    part at least LANES subjects; a batch under 2·LANES stays whole."""
    return max(1, min(devices, rows // LANES))


def padded_rows(rows: int, shards: int) -> int:
    """A batch's size for `rows` subjects in `shards` parts: a multiple of LANES·shards from 2·LANES
    subjects on (whether split or not), else the rows themselves (at least MIN_BATCH). The extra
    rows are copies of the last subject, which do its work again."""
    if rows < 2 * LANES and shards == 1:
        return max(MIN_BATCH, rows)
    return -(-rows // (LANES * shards)) * LANES * shards


def pad_rows(a, size: int) -> np.ndarray:
    """`a` (subjects first) with copies of its last row up to `size` rows: a batch's padding, which
    does its last subject's work again."""
    a = np.asarray(a)
    return np.concatenate([a] + [a[-1:]] * (size - len(a))) if len(a) < size else a


def shards_dividing(size: int, devices: int) -> int:
    """How many devices share a batch whose size is fixed already (a course's: 16, 32, 64, 96, …):
    the most, up to `devices`, that cut it into parts of a multiple of LANES."""
    return max(d for d in range(1, devices + 1) if d == 1 or size % (d * LANES) == 0)


def _spec(axis):
    from jax.sharding import PartitionSpec

    if axis is None:
        return PartitionSpec()
    return PartitionSpec(*([None] * axis), "subjects")


def split_by_subject(fn, shards: int, in_axes: tuple, out_axes):
    """`fn` with its batch split over the first `shards` devices. `in_axes` (one entry per positional
    argument) and `out_axes` say, as vmap's do, where each argument's and result's subject axis is
    (0 or 1; None: the same for all subjects, given to every device whole); an entry may stand for
    a whole container (a dict of parameters).

    Returns (run, place): run is jitted; place(array) lays a per-subject array (subjects first) out
    as run's results are, so that a loop feeding one call's results into the next passes every call
    the same layout and the program compiles once (jit compiles anew for another layout)."""
    if shards == 1:
        return fn, jax.numpy.asarray
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    mesh = Mesh(np.array(jax.devices()[:shards]), ("subjects",))
    none_leaf = lambda x: x is None  # noqa: E731  (None is an axis here, not an empty subtree)
    in_specs = jax.tree.map(_spec, tuple(in_axes), is_leaf=none_leaf)
    out_specs = jax.tree.map(_spec, out_axes, is_leaf=none_leaf)
    run = jax.jit(jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False))
    by_subject = NamedSharding(mesh, PartitionSpec("subjects"))
    return run, lambda a: jax.device_put(a, by_subject)
