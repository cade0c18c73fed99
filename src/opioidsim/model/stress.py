"""Stress: amygdala CRF recruited by withdrawal, sensitised by repeated cycles; negative affect.

Withdrawal-driven noradrenaline recruits extended-amygdala CRF over a day or so; repeated
withdrawals sensitise the response, which fades over months (Koob GF 2008 Neuron 59:11; Koob &
Le Moal 2001 Neuropsychopharmacology 24:97). CRF in turn excites the locus coeruleus (used by
model/camp.py), a loop that builds withdrawal over the first days.

Negative affect (0-10) has Koob's two parts (Koob GF & Le Moal M 2008 Annu Rev Psychol 59:29): the
between-system part read from CRF, and the within-system part, dysphoria from a reward system
below its normal tone (a negative hedonic state: dopamine below normal in withdrawal, the opponent
process, the tipped set point). The two add inside one saturating scale, with a third, smaller
contribution: cytokines from activated glia worsen mood (inflammation-induced depressed mood and
blunted ventral-striatal reward response: Eisenberger NI et al. 2010 Biol Psychiatry 68:748;
Dantzer R et al. 2008 Nat Rev Neurosci 9:46), which lingers in abstinence while the glia resolve.
COWS does not score it. The module's outputs
need only its own states and the hedonic state, so it sits before the LC module whose
noradrenaline its rates read.
"""
from __future__ import annotations

import jax.numpy as jnp

from ..params import Parameter
from .base import Module, State, excess

PARAMETERS = (
    Parameter("crf_time_constant", 0.35, "day", "fitted to the peak times of V-WD-1 (heroin, 36-72 h) and V-WD-2 "
              "(methadone, 72-96 h): CRF recruited within hours of rising noradrenaline (Koob 2008)"),
    Parameter("crf_noradrenaline_gain", 1.0, "1", "assumed: strength of noradrenergic drive of amygdala CRF"),
    Parameter("crf_max_excess", 2.0, "1", "assumed: amygdala CRF rises at most about three-fold over baseline in "
              "withdrawal (microdialysis, Koob 2008); the bound keeps the CRF-LC loop from running away however "
              "sensitised it becomes"),
    Parameter("stress_sensitization_rate", 0.05, "1/day", "assumed: each withdrawal sensitises the CRF response "
              "(Koob & Le Moal 2001)"),
    Parameter("stress_sensitization_decay", 1 / 90, "1/day", "assumed: sensitisation fades over months of "
              "abstinence (protracted abstinence, Koob 2008)"),
    Parameter("negative_affect_scale", 10.0, "1", "scale definition: negative affect on 0-10"),
    Parameter("negative_affect_gain", 0.8, "1", "assumed: CRF up by 70 % gives moderate negative affect (≈ 5/10)"),
    Parameter("dysphoria_weight", 1.0, "1", "scale identity: a hedonic state of −n on its ±10 scale counts as n "
              "points of within-system negative affect on the 0-10 scale (both are the same subjective scale)"),
    Parameter("cytokine_affect_weight", 1.5, "1", "assumed: fully activated glia add 1.5 points of negative affect "
              "(0-10), so the ≈ 0.4 activation of daily use adds about half a point, a mild lowering of mood as "
              "after low-dose endotoxin in healthy volunteers (Eisenberger NI et al. 2010 Biol Psychiatry "
              "68:748); direction from cytokine-induced depression (Dantzer R et al. 2008 Nat Rev Neurosci 9:46)"),
    Parameter("excess_smoothing", 0.02, "1", "numerical: smooth max(x, 0) for excesses over baseline"),
)


class StressModule(Module):
    name = "stress"
    timescale = "slow"
    states = (
        State("crf", "1", 1.0, "amygdala CRF activity relative to baseline"),
        State("stress_sensitization", "1", 0.0, "sensitisation of the CRF response by past withdrawals"),
    )
    parameters = PARAMETERS
    inputs = ("hedonic_state", "glial_activation")
    rate_inputs = ("noradrenaline",)
    provides = ("crf", "negative_affect", "anxiety", "stress_sensitization", "stress_reactivity")

    def outputs(self, y, u, p):
        # between-system drive (CRF), within-system dysphoria (hedonic state below zero) and the mood
        # effect of cytokines, summed inside one saturating 0-10 scale; COWS scores the CRF-driven
        # anxiety alone
        between = p["negative_affect_gain"] * excess(y["crf"] - 1.0, p["excess_smoothing"])
        dysphoria = (p["dysphoria_weight"] * excess(-u["hedonic_state"], p["excess_smoothing"])
                     + p["cytokine_affect_weight"] * u["glial_activation"])
        scale = p["negative_affect_scale"]
        na = scale * jnp.tanh(between + dysphoria / scale)
        anxiety = scale * jnp.tanh(between)
        # stress_reactivity: the gain of the CRF response to a given noradrenergic (stress) drive,
        # relative to a naive subject; a readout of protracted abstinence (Koob 2008)
        return {"crf": y["crf"], "negative_affect": na, "anxiety": anxiety,
                "stress_sensitization": y["stress_sensitization"], "stress_reactivity": 1.0 + y["stress_sensitization"]}

    def rates(self, t, y, u, p):
        na_excess = excess(u["noradrenaline"] - 1.0, p["excess_smoothing"])
        drive = p["crf_noradrenaline_gain"] * na_excess * (1.0 + y["stress_sensitization"])
        target = 1.0 + p["crf_max_excess"] * jnp.tanh(drive / p["crf_max_excess"])
        return {
            "crf": (target - y["crf"]) / p["crf_time_constant"],
            "stress_sensitization": (p["stress_sensitization_rate"] * na_excess
                                     - p["stress_sensitization_decay"] * y["stress_sensitization"]),
        }
