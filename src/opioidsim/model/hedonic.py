"""Pleasure and the pleasure–pain balance: step 5 of the seeds' cascade, and allostasis.

a-process: pleasure from D2 signalling relative to the subject's own drug-naive level, bounded on
a ±10 scale; it already carries tonic anhedonia when D2 receptors or dopamine stores are depleted.
b-process: a slow opponent process that grows with each high and decays over days (Solomon RL &
Corbit JD 1974 Psychol Rev 81:119). The hedonic state is a − b. The set point is the hedonic level
with no drug on board — below zero once the balance has tipped toward pain (Koob & Le Moal 2001
Neuropsychopharmacology 24:97) — and the reward threshold is what an intracranial
self-stimulation experiment would measure now, relative to the subject's naive threshold: lowered
while the drug acts, raised as the opponent process and dopamine depletion outweigh it (Kenny PJ
et al. 2006 J Neurosci 26:5894). Adolescent onset (model/development.py) makes the opponent
process grow faster and fade more slowly.
"""
from __future__ import annotations

import jax.numpy as jnp

from ..params import Parameter
from .base import Module, State, excess

PARAMETERS = (
    Parameter("hedonic_gain", 1.0, "1", "fitted: a 10 mg IV heroin dose in a naive subject gives a strong but "
              "not maximal high (≈ 6 of 10); assumed scale"),
    Parameter("hedonic_max", 10.0, "1", "scale definition: hedonic_state lies in −10..10"),
    Parameter("hedonic_time_constant", 2.0, "min", "assumed: subjective 'rush' peaks a few minutes after IV heroin "
              "(Comer SD et al. 1999 Psychopharmacology 143:327)"),
    Parameter("opponent_growth_rate", 0.02, "1/day", "assumed: the opponent process grows by a few % of the "
              "pleasure it opposes per day of exposure (Solomon & Corbit 1974)"),
    Parameter("opponent_decay_time", 7.0, "day", "assumed: the opponent process outlasts the drug by days to "
              "weeks (protracted abstinence, Koob & Le Moal 2001)"),
    Parameter("reward_threshold_scale", 10.0, "1", "assumed: a set point of −10 (maximal dysphoria) raises the "
              "reward threshold e-fold; chronic heroin raises ICSS thresholds by tens of % (Kenny PJ et al. "
              "2006 J Neurosci 26:5894)"),
    Parameter("adolescent_opponent_gain", 0.5, "1", "assumed: the opponent process grows 50 % faster and fades "
              "50 % more slowly after adolescent onset; direction from faster progression to dependence with "
              "earlier onset (Chen CY et al. 2009 Addict Behav 34:319) and adolescent rodent data (Spear 2000)"),
    Parameter("hedonic_smoothing", 0.05, "1", "numerical: smooth max(x, 0)"),
)


class HedonicModule(Module):
    name = "hedonic"
    states = (
        # atol: a thousandth of a point on the ±10 scale (it crosses zero, where a relative error is meaningless)
        State("hedonic", "1", 0.0, "pleasure (+) / displeasure (−)", lower=-10.0, upper=10.0, atol=1e-3),
        State("opponent_process", "1", 0.0, "the slow opponent (b-) process", upper=10.0),
    )
    parameters = PARAMETERS
    inputs = ("d2_signal", "d2_signal_reference", "tonic_d2_signal", "adolescent_onset")
    provides = ("hedonic_state", "hedonic_set_point", "reward_threshold", "opponent_process")

    def _a(self, signal, u, p):
        return p["hedonic_max"] * jnp.tanh(p["hedonic_gain"] * (signal / u["d2_signal_reference"] - 1.0))

    def outputs(self, y, u, p):
        set_point = self._a(u["tonic_d2_signal"], u, p) - y["opponent_process"]
        return {
            "hedonic_state": y["hedonic"],
            "hedonic_set_point": set_point,
            # ICSS measures the reward tone of the moment, drug on board included (Kenny 2006)
            "reward_threshold": 100.0 * jnp.exp(-y["hedonic"] / p["reward_threshold_scale"]),
            "opponent_process": y["opponent_process"],
        }

    def rates(self, t, y, u, p):
        a = self._a(u["d2_signal"], u, p)
        target = a - y["opponent_process"]
        adolescent = 1.0 + p["adolescent_opponent_gain"] * u["adolescent_onset"]
        return {
            "hedonic": (target - y["hedonic"]) / p["hedonic_time_constant"],
            "opponent_process": (p["opponent_growth_rate"] * adolescent * excess(a, p["hedonic_smoothing"])
                                 - y["opponent_process"] / (p["opponent_decay_time"] * adolescent)),
        }
