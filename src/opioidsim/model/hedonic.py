"""Pleasure: step 5 of the seeds' cascade, from D2 activation in the nucleus accumbens.

The hedonic state relaxes toward a target set by D2 activation relative to the subject's own
baseline, saturating at ±10 (a bounded rating scale). The slow opponent b-process and the
allostatic set point arrive with the chronic-use mechanisms.
"""
from __future__ import annotations

import jax.numpy as jnp

from ..params import Parameter
from .base import Module, State

PARAMETERS = (
    Parameter("hedonic_gain", 1.0, "1", "fitted: a 10 mg IV heroin dose in a naive subject gives a strong but "
              "not maximal high (≈ 6-8 of 10); assumed scale"),
    Parameter("hedonic_max", 10.0, "1", "scale definition: hedonic_state lies in −10..10"),
    Parameter("hedonic_time_constant", 2.0, "min", "assumed: subjective 'rush' peaks a few minutes after IV heroin "
              "(Comer SD et al. 1999 Psychopharmacology 143:327)"),
)


class HedonicModule(Module):
    name = "hedonic"
    states = (State("hedonic", "1", 0.0, "pleasure (+) / displeasure (−)", lower=-10.0, upper=10.0),)
    parameters = PARAMETERS
    inputs = ("d2_activation", "d2_activation_baseline")
    provides = ("hedonic_state",)

    def outputs(self, y, u, p):
        return {"hedonic_state": y["hedonic"]}

    def rates(self, t, y, u, p):
        relative = u["d2_activation"] / u["d2_activation_baseline"] - 1.0
        target = p["hedonic_max"] * jnp.tanh(p["hedonic_gain"] * relative)
        return {"hedonic": (target - y["hedonic"]) / p["hedonic_time_constant"]}
