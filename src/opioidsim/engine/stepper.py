"""The integration steps: Rosenbrock W-methods that solve with a block lower-triangular Jacobian.

Two methods share the Jacobian, the solve and the bound handling below (`METHODS`):
ROS34PW2 (`ros34pw2_step`, the default: third order, four stages, with an embedded second-order
solution for the error estimate; Rang J, Angermann L 2005 BIT Numer Math 45:761) and ROS2
(`ros2_step`: second order, two stages, the engine's method until stop 31). On the bench cohort
(IV heroin three times a day) ROS34PW2 takes about a sixth of ROS2's steps at a smaller error
(docs/guide/11-engine.md).

ROS2 (Verwer JG, Spee EJ, Blom JG, Hundsdorfer W 1999 SIAM J Sci Comput 20:1456):

    (I − γhJ) k1 = f(t, y)
    (I − γhJ) k2 = f(t + h, y + h k1) − 2 k1
    y+ = y + 3/2 h k1 + 1/2 h k2,          γ = 1 + 1/√2

It is second order for *any* matrix J (a W-method), and L-stable for the part of the stiffness J
captures. We take the Jacobian of the whole right-hand side (forward-mode autodiff) but solve
with its block lower-triangular part only, one block per mechanism module in wiring order: the
diagonal blocks (fast receptor binding, absorption, CO2 and O2 stores) are solved directly,
and the couplings from upstream modules are carried by forward substitution. The couplings matter:
binding is stiff and driven by the effect-site concentration of the PK module, and with them left
explicit (a block-diagonal J, as before) the stiff bound states' error estimate stopped shrinking
with the step (order reduction of a forced stiff component), holding steps near 15 s for hours
after every dose; with them the estimate falls as h² again and a dose costs ~2.5× fewer tries.
Feedback couplings (downstream → upstream: tolerance reading the receptor signal) are slow and
stay explicit; including them too changed no step count we measured.

How the step is computed (measured in benchmarks/bench_stepper.py):
- the Jacobian by column colouring: states whose columns share no row (structurally independent
  columns) share one tangent of a forward-mode linearisation, so J costs ~12 JVPs instead of one per
  state (94). The sparsity pattern is found once per model, numerically: the union of the nonzeros
  of jacfwd at many random states and parameters (see `jacobian_structure`). A structural nonzero
  that vanished at every sample would be left out of J (or, sharing a colour, added onto another
  entry): the step stays second order (a W-method) and only that entry's stiffness goes explicit;
  tests/test_stepper.py checks the coloured J against jacfwd along real trajectories.
- the solve by the strongly connected components (SCCs) of J's block lower-triangular part: most
  states (drug chains of the PK module) are their own component, three receptor regions are dense
  9×9 blocks. Components are solved level by level (a level holds the components whose inputs are
  all solved), singletons by a division, larger ones by their inverse, formed once per step for all
  of its solves (three in ROS2, five in ROS34PW2), by Gauss-Jordan elimination checked by its
  residual (`small_inverse`: the engine about 1.1× faster than with LAPACK's inverse). The matrix
  solved is the same as before (module blocks with their lower couplings); only the order of
  elimination differs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.sparse.csgraph import connected_components

from ..model.model import Model
from .small_inverse import small_inverse

GAMMA = 1.0 + 1.0 / math.sqrt(2.0)

#: random (state, parameter) points whose union of Jacobian nonzeros is taken as the sparsity pattern
PATTERN_SAMPLES = 96
#: the generator's seed for them: the structure, hence every result, is the same in every run
PATTERN_SEED = 20261203


@dataclass(frozen=True, eq=False)
class Level:
    """Components solved together (each one's inputs lie in earlier levels), laid out contiguously
    in the solve order: first the states alone in their component, then the components of each
    size s > 1, component by component."""
    start: int  # first position of the level in the solve order
    n_singles: int
    groups: tuple[tuple[int, int], ...]  # (size s, number of components k) in layout order
    entry_rows: np.ndarray  # coupling entries J[r, c] from earlier levels: r, position within the level
    entry_cols: np.ndarray  # c, position in the solve order (< start)

    @property
    def size(self) -> int:
        return self.n_singles + sum(s * k for s, k in self.groups)


@dataclass(frozen=True, eq=False)
class JacobianStructure:
    pattern: np.ndarray  # (n, n) bool: every nonzero found
    used: np.ndarray  # (n, n) bool: the block lower-triangular part (by module) the solve uses
    colour: np.ndarray  # (n,) the tangent that carries each column
    n_colours: int
    order: np.ndarray  # (n,) the states in solve order (levels one after the other)
    levels: tuple[Level, ...]


def _sample_points(model: Model, n: int, rng: np.random.Generator, extra: tuple = ()):
    """States, parameters and times spread well beyond physiology, so that no structural nonzero
    of the Jacobian happens to vanish at all of them: parameters scattered lognormally around their
    values (zero-valued ones — switches, conditions — half of the time set positive), states
    scattered around the initial state plus a positive offset (drug amounts present), states with
    an upper bound uniform between their bounds; a quarter at the initial state and a quarter near
    it. `extra`: (name, trailing shape) of values the caller passes beside the model's parameters
    (no typical value known: a quarter 0, the rest log-uniform over 1e-3 … 1e7, from fractions to
    years in minutes)."""
    p = {}
    for name, shape in extra:
        x = np.exp(rng.uniform(math.log(1e-3), math.log(1e7), (n,) + shape))
        p[name] = np.where(rng.random((n,) + (1,) * len(shape)) < 0.25, 0.0, x)
    for name, par in model.parameters.items():
        v = float(par.internal_value)
        if v != 0.0:
            x = v * np.exp(rng.normal(0.0, 0.5, n))
        else:
            x = np.where(rng.random(n) < 0.5, 0.0, rng.uniform(0.1, 1.0, n))
        p[name] = np.clip(x, 0.0, 1.0) if par.bounded_fraction else x
    y0 = model.initial_state(p)
    lo, hi = model.lower, model.upper
    scale = np.maximum(1.0, np.abs(y0))
    y = y0 * np.exp(rng.normal(0.0, 0.5, y0.shape)) + rng.uniform(0.0, 1.0, y0.shape) * scale
    bounded = np.isfinite(lo) & np.isfinite(hi)
    # an unbounded state's lo + (hi − lo)·u is not used, and with lo = −∞ it was ∞ − ∞ (a warning)
    lo_b, span = np.where(bounded, lo, 0.0), np.where(bounded, hi - lo, 0.0)
    y = np.where(bounded, lo_b + span * rng.uniform(0.02, 0.98, y0.shape), np.maximum(y, lo + 1e-3))
    y[: n // 4] = np.clip(y0[: n // 4], lo, hi)  # and the initial state itself (some entries vanish off it)
    # and states near it, as physiology has them: far out, a saturating output is clipped (eight
    # ligands' bound fractions each up to 1 sum to ~4 and put the brainstem signal past its clip)
    # and its column goes missing, which no far sample restores
    near = slice(n // 4, n // 2)
    y[near] = np.where(bounded[None], lo_b + span * rng.uniform(0.0, 0.1, y0[near].shape),
                       np.maximum(y0[near] + 0.1 * scale[near] * rng.uniform(0.0, 1.0, y0[near].shape), lo + 1e-3))
    t = rng.uniform(0.0, 30 * 1440.0, n)
    return t, y, p


def sampled_pattern(model: Model, n_samples: int = PATTERN_SAMPLES, seed: int = PATTERN_SEED,
                    extra: tuple = ()) -> np.ndarray:
    """The union of the nonzeros (NaN and inf counted as nonzero) of the full Jacobian at
    `n_samples` random points (`_sample_points`)."""
    t, y, p = _sample_points(model, n_samples, np.random.default_rng(seed), extra)
    jac = jax.jit(lambda t, y, p: full_jacobian(model, t, y, p))
    j = np.asarray(jac(jnp.asarray(t), jnp.asarray(y), {k: jnp.asarray(v) for k, v in p.items()}))
    return (j != 0).any(axis=0)


def colour_columns(pattern: np.ndarray) -> np.ndarray:
    """Greedy colouring of the columns: two columns share a colour only if no row reads both, so one
    tangent holding all columns of a colour gives each of their entries alone. Columns are taken in
    decreasing order of their nonzeros (Welsh–Powell), which needs no more colours than the densest row has
    here; any valid colouring gives the same Jacobian."""
    n = pattern.shape[0]
    colour = -np.ones(n, dtype=np.int64)
    rows_of_colour: list[np.ndarray] = []
    for c in sorted(range(n), key=lambda c: (-pattern[:, c].sum(), c)):
        for k, rows in enumerate(rows_of_colour):
            if not (rows & pattern[:, c]).any():
                colour[c] = k
                rows_of_colour[k] = rows | pattern[:, c]
                break
        else:
            colour[c] = len(rows_of_colour)
            rows_of_colour.append(pattern[:, c].copy())
    return colour


def solve_order(used: np.ndarray) -> tuple[np.ndarray, tuple[Level, ...]]:
    """Strongly connected components of the graph of `used` (an edge c → r where row r reads
    column c), grouped into levels of a topological order (Kahn's algorithm); returns the states in
    solve order and the levels."""
    n = used.shape[0]
    n_comp, comp = connected_components(used.T, directed=True, connection="strong")
    depends = np.zeros((n_comp, n_comp), dtype=bool)
    r, c = np.nonzero(used)
    depends[comp[r], comp[c]] = True
    np.fill_diagonal(depends, False)
    level = -np.ones(n_comp, dtype=np.int64)
    depth = 0
    while (level < 0).any():
        ready = [a for a in np.nonzero(level < 0)[0] if (level[np.nonzero(depends[a])[0]] >= 0).all()]
        if not ready:
            raise AssertionError("the block lower-triangular part has a cycle between components")
        level[ready] = depth
        depth += 1
    coupling = used & (comp[:, None] != comp[None, :])
    order: list[int] = []
    levels = []
    for d in range(depth):
        members = [np.nonzero(comp == a)[0] for a in np.nonzero(level == d)[0]]
        start = len(order)
        singles = sorted(int(m[0]) for m in members if len(m) == 1)
        order += singles
        groups = []
        for size in sorted({len(m) for m in members if len(m) > 1}):
            comps = sorted((m for m in members if len(m) == size), key=lambda m: m[0])
            order += [int(i) for m in comps for i in m]
            groups.append((size, len(comps)))
        rows = np.array(order[start:], dtype=np.int64)
        pos = {state: i for i, state in enumerate(order)}
        er, ec = np.nonzero(coupling[rows])
        levels.append(Level(start, len(singles), tuple(groups), er.astype(np.int64),
                            np.array([pos[int(c)] for c in ec], dtype=np.int64)))
    assert sorted(order) == list(range(n))
    return np.array(order, dtype=np.int64), tuple(levels)


def extra_inputs(model: Model, p) -> tuple:
    """(name, trailing shape) of the values in p that are not the model's parameters (a caller's own
    inputs, e.g. opioidsim.imaging's use_stops_at)."""
    return tuple(sorted((k, tuple(np.shape(v))[1:]) for k, v in p.items() if k not in model.parameters))


@lru_cache(maxsize=None)
def jacobian_structure(model: Model, extra: tuple = ()) -> JacobianStructure:
    """Sparsity, colouring and solve order of the model's Jacobian, found once per model (and set
    of `extra_inputs`)."""
    n = model.n_states
    whole = getattr(model, "full", None)  # a model without the states no dose reaches (engine/inert.py)
    if whole is not None:
        # its pattern is the whole model's on the states it keeps (the same nonzeros as sampling it
        # anew, measured on three drug sets), without tracing its Jacobian once more
        pattern = jacobian_structure(whole, extra).pattern[np.ix_(model.kept, model.kept)]
    else:
        # often first called while the step is being traced: evaluate the samples now, concretely
        with jax.ensure_compile_time_eval():
            pattern = sampled_pattern(model, extra=extra)
    pattern = pattern | np.eye(n, dtype=bool)  # the diagonal always: 1 − γhJ_ii is solved with
    module_of = np.zeros(n, dtype=np.int64)
    for i, b in enumerate(model.blocks):
        module_of[b.start:b.stop] = i
    used = pattern & (module_of[:, None] >= module_of[None, :])
    colour = colour_columns(pattern)
    order, levels = solve_order(used)
    return JacobianStructure(pattern, used, colour, int(colour.max()) + 1 if n else 0, order, levels)


def full_jacobian(model: Model, t, y, p):
    """d(rates)/d(states) of the whole model, per subject: shape (S, n, n)."""

    def one(y1, t1, p1):
        return model.rhs(t1[None], y1[None], {k: v[None] for k, v in p1.items()})[0]

    return jax.vmap(jax.jacfwd(one))(y, t, p)


def rhs_and_compressed_jacobian(model: Model, struct: JacobianStructure, t, y, p):
    """f(t, y) and the coloured Jacobian: jc[s, r, k] = Σ_{c of colour k} J[s, r, c], which is
    J[s, r, c] itself wherever the pattern has (r, c). One linearisation, one tangent per colour."""
    f0, lin = jax.linearize(lambda yy: model.rhs(t, yy, p), y)
    seeds = jnp.asarray(np.arange(struct.n_colours)[:, None] == struct.colour[None, :], dtype=y.dtype)
    jc = jax.vmap(lin)(jnp.broadcast_to(seeds[:, None, :], (struct.n_colours,) + y.shape))
    return f0, jnp.moveaxis(jc, 0, -1)


def coloured_jacobian(model: Model, t, y, p):
    """The Jacobian's entries on the sparsity pattern (zero elsewhere), from the coloured
    linearisation: shape (S, n, n). For tests and diagnostics; the step reads the compressed form."""
    struct = jacobian_structure(model, extra_inputs(model, p))
    t = jnp.broadcast_to(t, y.shape[:1]).astype(y.dtype)
    _, jc = rhs_and_compressed_jacobian(model, struct, t, y, p)
    return jc[:, :, struct.colour] * jnp.asarray(struct.pattern, dtype=y.dtype)


def _entry_reader(struct: JacobianStructure, jc):
    """entries(rows, cols) -> J[:, rows, cols] for states (original numbering), any equal shapes,
    read by flat index from the compressed Jacobian jc (gathers along one axis; scatters and 2-D
    gathers are slow on CPU)."""
    n_c, colour = struct.n_colours, struct.colour
    flat = jc.reshape(jc.shape[0], -1)

    def entries(rows, cols):
        return flat[:, (rows * n_c + colour[cols]).reshape(-1)].reshape((jc.shape[0],) + rows.shape)

    return entries


def dense_blocks(struct: JacobianStructure, jc) -> list[list]:
    """The dense components of J_L (`struct.used` entries only), level by level: for each level
    of `struct.levels`, one block of shape (S, count, size, size) per group of `level.groups`."""
    entries = _entry_reader(struct, jc)
    out = []
    for lev in struct.levels:
        blocks, at = [], lev.start + lev.n_singles
        for size, k in lev.groups:
            g = struct.order[at:at + size * k].reshape(k, size)
            rows, cols = np.broadcast_to(g[:, :, None], (k, size, size)), np.broadcast_to(g[:, None, :], (k, size, size))
            blocks.append(entries(rows, cols) * jnp.asarray(struct.used[rows, cols], dtype=jc.dtype))
            at += size * k
        out.append(blocks)
    return out


def level_solver(struct: JacobianStructure, jc, gh):
    """Invert (I − γhJ_L) per component and return solve(v) = (I − γhJ_L)⁻¹ v, J_L the block
    lower-triangular part (`struct.used`), jc the compressed Jacobian, gh = γh of shape (S,).

    A dense component's inverse is formed once per step, so that each of the step's solves (five in
    ROS34PW2) is a batched matrix-vector product: XLA's CPU triangular solves of many small
    matrices cost more than the product (benchmarks/bench_solve.py). The components are small
    (at most 9 states) and I − γhJ is well conditioned for them; tests/test_stepper.py holds the
    solve to 1e-10 of a dense solve.

    Works in the solve order, where every level and every component is a contiguous slice."""
    order = struct.order
    entries = _entry_reader(struct, jc)
    ghc = gh[:, None]
    plan = []
    for lev, blocks in zip(struct.levels, dense_blocks(struct, jc)):
        rows = order[lev.start + lev.entry_rows]
        cols = order[lev.entry_cols]
        coupling = ghc * entries(rows, cols) if len(rows) else None
        gather = jnp.asarray(np.arange(lev.size)[:, None] == lev.entry_rows[None, :], dtype=jc.dtype)
        singles = order[lev.start:lev.start + lev.n_singles]
        inv_denom = 1.0 / (1.0 - ghc * entries(singles, singles)) if lev.n_singles else None
        inverses = [small_inverse(jnp.eye(block.shape[-1], dtype=jc.dtype) - gh[:, None, None, None] * block)
                    for block in blocks]
        plan.append((lev, coupling, gather, inv_denom, inverses))
    back = np.argsort(order)

    def solve(v):
        vp = v[:, order]
        xs = vp[:, :0]
        for lev, coupling, gather, inv_denom, inverses in plan:
            b = vp[:, lev.start:lev.start + lev.size]
            if coupling is not None:
                # Σ_c γh J[r, c] x_c over the entries, summed into their rows by a 0/1 matrix
                b = b + (coupling * xs[:, lev.entry_cols]) @ gather.T
            parts = [b[:, :lev.n_singles] * inv_denom] if inv_denom is not None else []
            at = lev.n_singles
            for (size, k), inv in zip(lev.groups, inverses):
                bg = b[:, at:at + size * k].reshape(-1, k, size)
                parts.append(jnp.einsum("skij,skj->ski", inv, bg).reshape(-1, size * k))
                at += size * k
            xs = jnp.concatenate([xs] + parts, axis=-1)
        return xs[:, back]

    return solve


def held_at_bound(y, f, lower, upper):
    """States sitting on a declared bound whose rate points out of it (y ≤ lower with f < 0, or
    y ≥ upper with f > 0).

    The step solves the modified problem of Shampine, Thompson, Kierzenka & Byrne 2005 (Appl Math
    Comput 170:556; MATLAB's NonNegative option): there, f of such a state is 0, so it stays on its
    bound until its rate turns inward. Integrating the unmodified f and projecting afterwards gives
    the same state but not the same error estimate: the estimate then measures the outward
    transient the projection discards in every step (a state the projection holds restarts it each
    step), which is no error of the projected solution and held such subjects at one quantum (PaO2
    at its upper bound in oxygen-enriched air)."""
    return ((y <= lower) & (f < 0.0)) | ((y >= upper) & (f > 0.0))


def _linearised(model: Model, t, y, p, h, gamma: float):
    """What every stage of a step shares, for a batch with its own t and h per subject: t and h
    broadcast to (S,), the bounds, f(t, y), the states held at a bound, and solve(v) =
    (I − γhJ)⁻¹ v with J the coloured block lower-triangular Jacobian. In the modified problem
    (`held_at_bound`) a held state has f = 0, hence a zero Jacobian row: f is returned so."""
    struct = jacobian_structure(model, extra_inputs(model, p))
    lower = jnp.asarray(model.lower)
    upper = jnp.asarray(model.upper)
    t = jnp.broadcast_to(t, y.shape[:1]).astype(y.dtype)
    h = jnp.broadcast_to(h, y.shape[:1]).astype(y.dtype)
    f0, jc = rhs_and_compressed_jacobian(model, struct, t, y, p)
    held = held_at_bound(y, f0, lower, upper)
    solve = level_solver(struct, jnp.where(held[:, :, None], 0.0, jc), gamma * h)
    return t, h, lower, upper, jnp.where(held, 0.0, f0), held, solve


def ros2_step(model: Model, t, y, p, h):
    """One ROS2 step for a batch of subjects, each with its own time t and step h (shape (S,)).

    Returns the new state and the local error estimate: the difference from the embedded
    first-order solution y + h·k1, i.e. h·(k1 + k2)/2 (Verwer et al. 1999, section 2), filtered.
    """
    t, h, lower, upper, f0, held, solve = _linearised(model, t, y, p, h, GAMMA)
    hc = h[:, None]
    k1 = jnp.where(held, 0.0, solve(f0))  # 0 in exact arithmetic; pivoting may leave rounding
    y1 = y + hc * k1
    f1 = model.rhs(t + h, y1, p)
    k2 = solve(jnp.where(held_at_bound(y1, f1, lower, upper), 0.0, f1) - 2.0 * k1)
    y_new = y + hc * (1.5 * k1 + 0.5 * k2)
    # The raw estimate h·(k1 + k2)/2 does not vanish for stiff components sitting on their
    # quasi-steady state (fast binding): filtered through (I − γhJ)⁻¹ it does, while staying
    # O(h²) for the non-stiff ones (Hairer & Wanner 1996, IV.8, eq. 8.20).
    err = solve(0.5 * hc * (k1 + k2))
    # Project onto physical bounds (concentrations ≥ 0, fractions ≤ 1): removes the tiny
    # undershoots a linearly implicit method can make near zero.
    return jnp.clip(y_new, lower, upper), err


def ros2_step_dense(model: Model, t, y, p, h):
    """The step as it was first written (the baseline of benchmarks/bench_stepper.py): the full
    Jacobian by jacfwd (one tangent per state) and explicit inverses of the module blocks. Same
    matrix, same method as `ros2_step`; results agree to rounding."""
    lower = jnp.asarray(model.lower)
    upper = jnp.asarray(model.upper)
    t = jnp.broadcast_to(t, y.shape[:1]).astype(y.dtype)
    h = jnp.broadcast_to(h, y.shape[:1]).astype(y.dtype)
    f0 = model.rhs(t, y, p)
    held = held_at_bound(y, f0, lower, upper)
    f0 = jnp.where(held, 0.0, f0)
    jac = jnp.where(held[:, :, None], 0.0, full_jacobian(model, t, y, p))
    blocks = [b for b in model.blocks if b.size]
    gh = GAMMA * h[:, None, None]
    inverses = [jnp.linalg.inv(jnp.eye(b.size, dtype=y.dtype) - gh * jac[:, b.start:b.stop, b.start:b.stop])
                for b in blocks]

    def solve(v):
        # (I − γhJ_L) x = v with J_L block lower-triangular:
        # x_b = (I − γhJ_bb)⁻¹ (v_b + γh Σ_{a<b} J_ba x_a); blocks are contiguous from state 0, so the
        # x solved so far holds states :b.start
        x = v[:, :0]
        for b, inv in zip(blocks, inverses):
            rhs_b = v[:, b.start:b.stop] + gh[:, :, 0] * jnp.einsum("sij,sj->si", jac[:, b.start:b.stop, :b.start], x)
            x = jnp.concatenate([x, jnp.einsum("sij,sj->si", inv, rhs_b)], axis=-1)
        return x

    hc = h[:, None]
    k1 = jnp.where(held, 0.0, solve(f0))
    y1 = y + hc * k1
    f1 = model.rhs(t + h, y1, p)
    k2 = solve(jnp.where(held_at_bound(y1, f1, lower, upper), 0.0, f1) - 2.0 * k1)
    y_new = y + hc * (1.5 * k1 + 0.5 * k2)
    # The raw estimate h·(k1 + k2)/2 does not vanish for stiff components sitting on their
    # quasi-steady state (fast binding): filtered through (I − γhJ)⁻¹ it does, while staying
    # O(h²) for the non-stiff ones (Hairer & Wanner 1996, IV.8, eq. 8.20).
    err = solve(0.5 * hc * (k1 + k2))
    # Project onto physical bounds (concentrations ≥ 0, fractions ≤ 1): removes the tiny
    # undershoots a linearly implicit method can make near zero.
    return jnp.clip(y_new, lower, upper), err


def _transformed_tableau(alpha, gamma_offdiag, gamma, b, b_hat):
    """A Rosenbrock tableau in the variables u_i = Σ_j γ_ij k_j (Hairer & Wanner 1996, IV.7,
    eqs. 7.24-7.25), in which a stage needs only a solve with (I − γhJ), no product with J:
    A = α Γ⁻¹, C = diag(1/γ) − Γ⁻¹, m = b Γ⁻¹, m̂ = b̂ Γ⁻¹, with Γ = (γ_ij) + γI."""
    big_gamma = np.asarray(gamma_offdiag, dtype=float) + gamma * np.eye(len(b))
    inv = np.linalg.inv(big_gamma)
    a = np.asarray(alpha, dtype=float) @ inv
    c = np.eye(len(b)) / gamma - inv
    return a, c, np.asarray(b, dtype=float) @ inv, np.asarray(b_hat, dtype=float) @ inv, np.asarray(alpha).sum(axis=1)


#: ROS34PW2 (Rang J, Angermann L 2005 BIT Numer Math 45:761), as published: four stages, third order
#: for any J (a W-method), stiffly accurate and L-stable, with an embedded second-order solution
ROS34PW2_GAMMA = 0.435866521508459
ROS34PW2_TABLEAU = dict(
    alpha=[[0, 0, 0, 0],
           [0.87173304301691801, 0, 0, 0],
           [0.84457060015369423, -0.11299064236484185, 0, 0],
           [0, 0, 1, 0]],
    gamma_offdiag=[[0, 0, 0, 0],
                   [-0.87173304301691801, 0, 0, 0],
                   [-0.90338057013044082, 0.054180672388095326, 0, 0],
                   [0.24212380706095346, -1.2232505839045147, 0.54526025533510214, 0]],
    gamma=ROS34PW2_GAMMA,
    b=[0.24212380706095346, -1.2232505839045147, 1.5452602553351020, 0.435866521508459],
    b_hat=[0.37810903145819369, -0.096042292212423178, 0.5, 0.2179332607542295])
_ROS34PW2 = _transformed_tableau(**ROS34PW2_TABLEAU)

#: ROS34PW2's continuous extension: y(t + θh) = y + Σ_i b_i(θ) k_i with b_i(θ) = Σ_q B[i, q] θ^(q+1),
#: a cubic in θ with b(1) = b (the coefficients PETSc registers for TSROSWRA34PW2 as `binterpt`).
#: It meets the Rosenbrock order conditions up to third order at every θ (tests/test_dense_records.py
#: checks them), so a record inside a step is about as accurate as the step's end. Built from the
#: stages, it damps stiff components as the step does; a cubic Hermite through the end slopes
#: amplified them instead (on the flagship, 5× the ventilation error of records at steps' ends).
ROS34PW2_DENSE = np.array([[1.0564298455794094, -1.3864882699759573, 0.5721822314575016],
                           [2.296429974281067, -8.262611700275677, 4.742931142090097],
                           [-1.307599564525376, 7.250979895056055, -4.398120075195578],
                           [-1.045260255335102, 2.398120075195581, -0.9169932983520199]])
#: the same in the transformed variables: y(t + θh) = y + Σ_j w_j(θ) u_j, w(θ) = (θ, θ², θ³) · this
_ROS34PW2_DENSE_U = ROS34PW2_DENSE.T @ np.linalg.inv(
    np.asarray(ROS34PW2_TABLEAU["gamma_offdiag"]) + ROS34PW2_GAMMA * np.eye(4))


class DenseOutput(NamedTuple):
    """A step's continuous extension: `stages(model, t, y, p, h)` is the step returning its stages
    too, `weights(θ)` their weights at fractions θ of the step."""
    stages: Callable
    weights: Callable


def ros34pw2_dense_weights(theta):
    """The weights w_j of the stages u_j (`ros34pw2_stages`) in the continuous extension at
    fractions θ of a step (any shape; traceable): y(t + θh) = y + Σ_j w_j u_j. Returns
    theta.shape + (4,)."""
    powers = jnp.stack([theta, theta ** 2, theta ** 3], axis=-1)
    return powers @ jnp.asarray(_ROS34PW2_DENSE_U, dtype=powers.dtype)


def ros34pw2_step(model: Model, t, y, p, h):
    """One ROS34PW2 step for a batch of subjects (as `ros2_step`: own t and h per subject, the same
    block lower-triangular J and solve, the same held-at-bound rule). Returns the new state and the
    difference from the embedded second-order solution (error ∝ h³), filtered as ROS2's."""
    y_new, err, _ = ros34pw2_stages(model, t, y, p, h)
    return y_new, err


def ros34pw2_stages(model: Model, t, y, p, h):
    """`ros34pw2_step` that also returns its stages u (4, S, n_states), from which
    `ros34pw2_dense_weights` interpolates within the step."""
    a, c, m, m_hat, t_frac = _ROS34PW2
    t, h, lower, upper, f0, held, solve = _linearised(model, t, y, p, h, ROS34PW2_GAMMA)
    hc = h[:, None]
    us = []
    for i in range(4):
        if i == 0:
            f = f0
        else:
            yi = y + sum(a[i, j] * us[j] for j in range(i) if a[i, j] != 0.0)
            fi = model.rhs(t + t_frac[i] * h, yi, p)
            f = jnp.where(held_at_bound(yi, fi, lower, upper), 0.0, fi)
        rhs = hc * f + sum(c[i, j] * us[j] for j in range(i))
        u = solve(ROS34PW2_GAMMA * rhs)
        us.append(jnp.where(held, 0.0, u) if i == 0 else u)
    y_new = y + sum(m[j] * us[j] for j in range(4))
    err = solve(sum((m[j] - m_hat[j]) * us[j] for j in range(4)))
    return jnp.clip(y_new, lower, upper), err, jnp.stack(us)


# the power of h the error estimate scales with, for the step-size rule (`core._counted_try`)
ros34pw2_step.estimate_order = 3
# the step's stages and the weights that interpolate them (`core.integrate(..., dense=True)`)
ros34pw2_step.dense = DenseOutput(ros34pw2_stages, ros34pw2_dense_weights)
ros2_step.estimate_order = 2
ros2_step_dense.estimate_order = 2

#: the steps by [solver] method name (scenarios/schema.py SOLVER_METHODS, the default first)
METHODS = {"ros34pw2": ros34pw2_step, "ros2": ros2_step}


def make_step(model: Model, h: float, method=None):
    """Return step(t, y, p) -> y advanced by the fixed step h (y: (S, n_states); p: dict of (S,)
    arrays) with `method` (a step function of `METHODS`; ROS2 unless given)."""
    method = ros2_step if method is None else method

    def step(t, y, p):
        return method(model, t, y, p, h)[0]

    return step
