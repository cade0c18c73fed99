"""Leave out of the integration the drug states that no dose of a run can reach.

The model carries every drug it knows (nine compounds, each with its depots, compartments, effect
site and a bound fraction in three receptor regions: 41 of its 96 states are for drugs other than
heroin and its metabolites). A run that gives only heroin keeps the others at exactly 0 the whole
time: their initial value is 0 and, while they are 0, so is their rate (a drug enters a
compartment only from an upstream one of its own; a ligand binds only in proportion to its own
concentration). Integrating them costs work in every step: the Jacobian's colours, the dense
inverses of the receptor blocks (9 × 9 with every ligand, 3 × 3 with heroin's three) and the
solves.

`for_targets(model, targets)` gives the model a run integrates: the states of modules that carry
drugs (`Module.carries_drug`) and that stay at 0 are left out, found numerically as the largest
set whose rates all vanish at random states with the set held at 0 (`_sample_points`, the
points the Jacobian's pattern is found at). The rest of the model is as before: `outputs` and
`rhs` evaluate the whole model with the left-out states at 0, so every readout is computed by
the same code, and a dose into a left-out state is refused with a message (`index`). The
trajectories are those of the whole model to rounding (tests/test_inert.py, and the reference
path, `engine.reference`, integrates the whole model)."""
from __future__ import annotations

from functools import lru_cache
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from ..model.model import Block, Model
from ..model.pk import DOSE_TARGETS

#: random points at which a candidate's rate must vanish (as `stepper.PATTERN_SAMPLES`)
SAMPLES = 96
SEED = 20261206


class StateIndex(dict):
    """A model's state index that says why a left-out state has none."""

    def __init__(self, names, left_out):
        super().__init__((n, i) for i, n in enumerate(names))
        self.left_out = frozenset(left_out)

    def __missing__(self, name):
        if name in self.left_out:
            raise KeyError(f"state {name!r} was left out of this run's model: no dose of the run reaches it "
                           "(engine/inert.py); build the model for every drug the run gives")
        raise KeyError(name)


class ReducedModel:
    """A model integrated over a subset of its states (`kept`, indices into `full`), the others held
    at 0. It offers what the engine reads of a `Model`: states, bounds, tolerances, blocks,
    `rhs`, `outputs`, `initial_state`. A block spans its module's kept states (in the whole
    model's order); its `module` still declares all of them, so nothing may unpack a reduced
    vector by a module's states (`rhs` and `outputs` go through the whole model)."""

    def __init__(self, full: Model, kept: np.ndarray):
        self.full = full
        self.kept = np.unique(np.asarray(kept, dtype=np.int64))  # sorted: each module's states stay together
        kept_set = set(self.kept.tolist())
        self.left_out = tuple(n for i, n in enumerate(full.state_names) if i not in kept_set)
        self.states = tuple(full.states[i] for i in self.kept)
        self.state_names = tuple(s.name for s in self.states)
        self.index = StateIndex(self.state_names, self.left_out)
        self.modules = full.modules
        self.parameters = full.parameters
        self.outputs_provided = full.outputs_provided
        self.readouts = full.readouts
        self.lower, self.upper, self.atol = full.lower[self.kept], full.upper[self.kept], full.atol[self.kept]
        position = np.full(full.n_states, -1)
        position[self.kept] = np.arange(len(self.kept))
        blocks, start = [], 0
        for b in full.blocks:
            size = int((position[b.start:b.stop] >= 0).sum())
            blocks.append(Block(b.module, start, start + size))
            start += size
        self.blocks = tuple(blocks)
        rows = [k for k, r in enumerate(full.error_scale_rows) if position[r] >= 0]
        self.error_scale_rows = position[full.error_scale_rows[rows]].astype(int)
        self.error_scale_weights = full.error_scale_weights[rows][:, self.kept]

    @property
    def n_states(self) -> int:
        return len(self.states)

    def embed(self, y):
        """The whole model's state vector, the left-out states at 0."""
        whole = jnp.zeros(y.shape[:-1] + (self.full.n_states,), dtype=y.dtype)
        return whole.at[..., self.kept].set(y)

    def rhs(self, t, y, p):
        return self.full.rhs(t, self.embed(y), p)[..., self.kept]

    def outputs(self, y, p) -> dict:
        return self.full.outputs(self.embed(y), p)

    def initial_state(self, p: Mapping[str, np.ndarray]) -> np.ndarray:
        y0 = self.full.initial_state(p)
        dropped = np.setdiff1d(np.arange(self.full.n_states), self.kept)
        if np.any(y0[:, dropped] != 0.0):
            raise AssertionError("a left-out state starts away from 0")
        return y0[:, self.kept]


def whole_model() -> Model:
    """The default model with nothing left out (its modules told they carry no drug): to run a
    scenario as before stop 43 (`simulate(scenario, model=whole_model())`), or to compare with."""
    from ..model.model import default_modules

    modules = default_modules()
    for m in modules:
        m.carries_drug = False
    return Model(modules)


def _carried(model: Model) -> list[int]:
    return [i for b in model.blocks if getattr(b.module, "carries_drug", False) for i in range(b.start, b.stop)]


@lru_cache(maxsize=8)
def _samples(model: Model):
    """Random points (t, y, p) of the model and its vector field compiled, once per model."""
    from .stepper import _sample_points

    t, y, p = _sample_points(model, SAMPLES, np.random.default_rng(SEED))
    y0 = model.initial_state(p)
    return t, y, {k: jnp.asarray(v) for k, v in p.items()}, y0, jax.jit(model.rhs)


@lru_cache(maxsize=64)
def inert_states(model: Model, targets: frozenset) -> tuple[str, ...]:
    """The drug-carrying states that stay at 0 when doses enter only `targets` (state names): the
    largest set, among those starting at 0, whose rates all vanish at every sampled point with
    the set held at 0."""
    t, y, p, y0, rhs = _samples(model)
    zero = [i for i in _carried(model) if model.state_names[i] not in targets and np.all(y0[:, i] == 0.0)]
    while zero:
        y_try = y.copy()
        y_try[:, zero] = 0.0
        f = np.asarray(rhs(jnp.asarray(t), jnp.asarray(y_try), p))
        moving = [i for i in zero if np.any(f[:, i] != 0.0)]  # NaN counts as moving
        if not moving:
            break
        zero = [i for i in zero if i not in moving]
    return tuple(model.state_names[i] for i in zero)


def every_route(targets: frozenset) -> frozenset:
    """`targets` with the entry states of every route of each drug they belong to."""
    drugs = {drug for (drug, _route), (target, _f, _ka) in DOSE_TARGETS.items() if target in targets}
    return frozenset(targets) | {target for (drug, _r), (target, _f, _ka) in DOSE_TARGETS.items() if drug in drugs}


def for_targets(model: Model, targets: frozenset):
    """The model a run whose doses enter only `targets` (state names) integrates: `model` itself
    when nothing can be left out, else a `ReducedModel` (one object per model and set of drugs,
    so its compiled programs are reused). A drug given by one route keeps its depots for every
    route, so that runs of the same drugs by any routes share one model (each new model is traced
    and compiled once more, seconds). A `ReducedModel` that keeps every target is returned as it
    is (a trial's model, made for all of its arms, serves each arm)."""
    if isinstance(model, ReducedModel):
        if set(targets) <= set(model.state_names):
            return model
        model = model.full
    unknown = sorted(set(targets) - set(model.state_names))
    if unknown:
        raise KeyError(f"dose targets {unknown} are no states of the model")
    return _without(model, frozenset(inert_states(model, every_route(frozenset(targets)))))


@lru_cache(maxsize=64)
def _without(model: Model, inert: frozenset):
    if not inert:
        return model
    return ReducedModel(model, np.array([i for i, n in enumerate(model.state_names) if n not in inert]))
