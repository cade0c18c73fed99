"""Withdrawal as clinicians score it: the Clinical Opiate Withdrawal Scale (COWS, 0-48).

COWS has 11 items (Wesson DR & Ling W 2003 J Psychoactive Drugs 35:253). Each is mapped to the
physiology that produces it — withdrawal is a state of the model, not a timer:
- noradrenergic/autonomic items, from LC noradrenaline above normal: resting pulse (0-4),
  sweating (0-4), pupil size (0-5), runny nose/tearing (0-4), GI upset (0-5), tremor (0-4),
  yawning (0-4), gooseflesh (0-5) — 35 points;
- bone/joint aches (0-4), from pain above the subject's own drug-free level (hyperalgesia);
- restlessness (0-5) and anxiety/irritability (0-4), from the CRF-driven (between-system) part of
  negative affect — 9 points. COWS does not score dysphoria or anhedonia, so the within-system
  part (a reward system below its normal tone, model/stress.py) is not counted here.
Each item saturates smoothly (Hill function) at its maximum.
"""
from __future__ import annotations

import math

from ..params import Parameter
from .base import Module, hill, softplus

PARAMETERS = (
    Parameter("cows_autonomic_half", 1.0, "1", "fitted: noradrenaline doubled (LC firing ≈ 2× normal) gives half of "
              "the autonomic items; precipitated withdrawal raises LC firing several-fold (Rasmussen K et al. 1990 "
              "J Neurosci 10:2308)"),
    Parameter("cows_autonomic_hill", 1.5, "1", "assumed"),
    Parameter("cows_aches_half", 1.5, "1", "assumed: 1.5 points of extra pain (0-10 scale) give half of the aches item"),
    Parameter("cows_affect_half", 4.0, "1", "assumed: CRF-driven anxiety 4/10 gives half of restlessness and "
              "anxiety"),
    Parameter("cows_smoothing", 0.02, "1", "numerical: smooth max(x, 0)"),
)

# Item maxima summed by the physiology that produces them (Wesson & Ling 2003, COWS form).
AUTONOMIC_POINTS = 4 + 4 + 5 + 4 + 5 + 4 + 4 + 5  # pulse, sweat, pupils, rhinorrhoea, GI, tremor, yawn, gooseflesh
ACHES_POINTS = 4
AFFECT_POINTS = 5 + 4  # restlessness, anxiety/irritability

#: Wesson & Ling 2003 bands: (name, lowest score, highest score) on the 0-48 scale
COWS_BANDS = (("mild", 5, 12), ("moderate", 13, 24), ("moderately severe", 25, 36), ("severe", 37, 48))


def cows_band(score: float) -> str:
    """The Wesson & Ling 2003 band of a score: 5-12 mild, 13-24 moderate, 25-36 moderately severe,
    > 36 severe; "none" below 5. The clinical score is a whole number: the model's continuous score
    is rounded to the nearest one first (12.6 is moderate). NaN gives "–"."""
    if score is None or not math.isfinite(score):
        return "–"
    rounded = math.floor(float(score) + 0.5)
    for name, lowest, _highest in reversed(COWS_BANDS):
        if rounded >= lowest:
            return name
    return "none"


class WithdrawalModule(Module):
    name = "withdrawal"
    inputs = ("noradrenaline", "anxiety", "pain", "ac_superactivation")
    parameters = PARAMETERS
    provides = ("cows",)

    def outputs(self, y, u, p):
        na_excess = softplus(u["noradrenaline"] - 1.0, p["cows_smoothing"])
        autonomic = AUTONOMIC_POINTS * hill(na_excess, p["cows_autonomic_half"], p["cows_autonomic_hill"])
        # the part of pain due to hyperalgesia: pain rises in proportion to AC superactivation
        aches = ACHES_POINTS * hill(softplus(u["ac_superactivation"], p["cows_smoothing"]) * u["pain"],
                           p["cows_aches_half"], 1.0)
        affect = AFFECT_POINTS * hill(u["anxiety"], p["cows_affect_half"], 1.5)
        return {"cows": autonomic + aches + affect}

    def rates(self, t, y, u, p):
        return {}
