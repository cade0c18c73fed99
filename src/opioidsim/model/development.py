"""Critical period: age at first use.

The adolescent brain is still maturing its reward and control circuits; earlier onset of drug use
goes with faster progression to dependence and slower recovery (Chen CY et al. 2009 Addict Behav
34:319; Spear LP 2000 Neurosci Biobehav Rev 24:417). This module turns a subject's age at first
use into a weight, ~1 for onset in early adolescence and ~0 for adult onset, that the adapting
modules (hedonic opponent process, D2 recovery) scale their rates by. The effect sizes are
assumptions, stated where they are used; only their direction is sourced.
"""
from __future__ import annotations

import jax.numpy as jnp

from ..params import Parameter
from .base import Module

PARAMETERS = (
    Parameter("age_at_first_use", 25.0, "year", "NSDUH (SAMHSA 2019): mean age of heroin initiation in the US "
              "≈ 25 years; set per cohort with [cohort] age_at_first_use"),
    Parameter("adolescence_end_age", 18.0, "year", "assumed: the sensitive period closes in late adolescence "
              "(Spear 2000)"),
    Parameter("adolescence_transition_width", 1.0, "year", "assumed: a smooth transition over about a year"),
)


class DevelopmentModule(Module):
    name = "development"
    parameters = PARAMETERS
    provides = ("adolescent_onset",)

    def outputs(self, y, u, p):
        z = (p["adolescence_end_age"] - p["age_at_first_use"]) / p["adolescence_transition_width"]
        return {"adolescent_onset": 0.5 * (1.0 + jnp.tanh(0.5 * z))}

    def rates(self, t, y, u, p):
        return {}
