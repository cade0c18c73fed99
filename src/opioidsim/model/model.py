"""Compose mechanism modules into one vector field.

The model lays every module's states side by side in one vector, wires each module's inputs to
the outputs of the modules before it (checked once, here, with a clear message if a name is
missing), and collects all parameters (units checked once). The engine and the reference solver
both integrate `Model.rhs`; neither knows anything about physiology.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping, Sequence

import jax.numpy as jnp
import numpy as np

from ..params import Parameter, check_parameters
from ..readouts import READOUTS
from .base import Module, State
from .camp import CampModule
from .cognition import CognitionModule
from .development import DevelopmentModule
from .dopamine import DopamineModule
from .glutamate import GlutamateModule
from .hedonic import HedonicModule
from .inflammation import InflammationModule
from .neuroimaging import CueFmriModule, VbmModule
from .pain import PainModule
from .pk import PharmacokineticsModule
from .receptor import ReceptorModule
from .respiration import RespirationModule
from .stress import StressModule
from .structure import StructureModule
from .tolerance import ToleranceModule
from .withdrawal import WithdrawalModule


@dataclass(frozen=True)
class Block:
    module: Module
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


class Model:
    def __init__(self, modules: Sequence[Module]):
        self.modules = tuple(modules)
        states: list[State] = []
        blocks: list[Block] = []
        provided: dict[str, str] = {}
        for m in self.modules:
            missing = [i for i in m.inputs if i not in provided]
            if missing:
                raise ValueError(f"module {m.name!r} reads {missing}, which no earlier module provides "
                                 f"(available: {sorted(provided)})")
            for name in m.provides:
                if name in provided:
                    raise ValueError(f"output {name!r} is provided by both {provided[name]!r} and {m.name!r}")
                provided[name] = m.name
            blocks.append(Block(m, len(states), len(states) + len(m.states)))
            states.extend(m.states)
        for m in self.modules:
            missing = [i for i in m.rate_inputs if i not in provided]
            if missing:
                raise ValueError(f"module {m.name!r} rates read {missing}, which no module provides")
        names = [s.name for s in states]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"state names declared twice: {sorted(dup)}")
        self.states = tuple(states)
        self.state_names = tuple(names)
        self.index = {n: i for i, n in enumerate(names)}
        self.blocks = tuple(blocks)
        self.parameters: dict[str, Parameter] = check_parameters(p for m in self.modules for p in m.parameters)
        self.outputs_provided = tuple(provided)
        self.readouts = tuple(r for r in READOUTS if r in provided)
        self.lower = np.array([s.lower for s in states])
        self.upper = np.array([s.upper for s in states])
        self.atol = np.array([math.nan if s.atol is None else s.atol for s in states])
        self.error_scale_rows, self.error_scale_weights = self._error_scales()

    def _error_scales(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, weights): the states with `State.error_scale_with`, and for each a 0/1 row over all
        states (itself and the states it names), so that their error sizes are size @ weights.T."""
        states, index = self.states, self.index
        rows, weights = [], []
        for i, s in enumerate(states):
            if not s.error_scale_with:
                continue
            w = np.zeros(len(states))
            w[i] = 1.0
            for other in s.error_scale_with:
                if other not in index:
                    raise ValueError(f"state {s.name!r}: error_scale_with names {other!r}, which is no state")
                if states[index[other]].unit != s.unit:
                    raise ValueError(f"state {s.name!r} ({s.unit}): error_scale_with names {other!r} "
                                     f"({states[index[other]].unit}); their sizes are added, so they must share a unit")
                w[index[other]] = 1.0
            rows.append(i)
            weights.append(w)
        return np.array(rows, dtype=int), np.array(weights).reshape(len(rows), len(states))

    @property
    def n_states(self) -> int:
        return len(self.states)

    # -- views ----------------------------------------------------------------------------
    def unpack(self, y, block: Block) -> dict:
        return {s.name: y[..., block.start + i] for i, s in enumerate(block.module.states)}

    @staticmethod
    def pack(block: Block, values: Mapping, like) -> jnp.ndarray:
        return jnp.stack([jnp.broadcast_to(values[s.name], like.shape[:-1]) for s in block.module.states], axis=-1)

    # -- the vector field -----------------------------------------------------------------
    def outputs(self, y, p) -> dict:
        """All algebraic outputs, computed module by module in wiring order."""
        out: dict = {}
        for b in self.blocks:
            u = {k: out[k] for k in b.module.inputs}
            out.update(b.module.outputs(self.unpack(y, b), u, p))
        return out

    def rhs(self, t, y, p):
        """d y / d t for a batch y of shape (..., n_states)."""
        parts = []
        for b, u in zip(self.blocks, self.module_inputs(y, p)):
            if b.size == 0:  # purely algebraic module (readouts only)
                continue
            parts.append(self.pack(b, b.module.rates(t, self.unpack(y, b), u, p), y))
        return jnp.concatenate(parts, axis=-1)

    def module_inputs(self, y, p) -> list[dict]:
        """What each module's rates read: its inputs and rate inputs, from all outputs."""
        out = self.outputs(y, p)
        return [{k: out[k] for k in b.module.inputs + b.module.rate_inputs} for b in self.blocks]

    def initial_state(self, p: Mapping[str, np.ndarray]) -> np.ndarray:
        n = len(next(iter(p.values())))
        y0 = np.zeros((n, self.n_states))
        for b in self.blocks:
            init = b.module.initial_state(p)
            for i, s in enumerate(b.module.states):
                y0[:, b.start + i] = np.broadcast_to(np.asarray(init[s.name], dtype=float), (n,))
        return y0


def default_modules() -> list[Module]:
    # inflammation sits before stress, whose negative affect reads the glial activation (cytokines);
    # its own outputs are its states, and its rates may read later modules (SpO2)
    return [DevelopmentModule(), PharmacokineticsModule(), ToleranceModule(), ReceptorModule(), DopamineModule(),
            HedonicModule(), InflammationModule(), StressModule(), CampModule(), PainModule(), RespirationModule(),
            WithdrawalModule(), GlutamateModule(), StructureModule(), CognitionModule(), VbmModule(),
            CueFmriModule()]


@lru_cache(maxsize=1)
def default_model() -> Model:
    return Model(default_modules())
