"""Pain: nociception → dorsal-horn Substance P → ascending pain, gated by MOR (seeds: step 'pain relief').

Noxious input drives Substance P release from primary afferents in the dorsal horn; MOR on those
terminals inhibits release (Jessell & Iversen 1977 Nature 268:549; Kondo I et al. 2005 J Neurosci
25:3651). Pain is the tonic noxious stimulus weighted by the fraction of Substance P still released.
"""
from __future__ import annotations

import jax.numpy as jnp

from ..params import Parameter
from .base import Module, State, hill

PARAMETERS = (
    Parameter("pain_stimulus", 0.5, "1", "scenario condition: tonic noxious input (0 none … 1 maximal); 0.5 is a "
              "standard moderate experimental stimulus (assumed)"),
    Parameter("sp_max_inhibition", 0.9, "1", "Kondo 2005: mu agonists suppress most but not all evoked "
              "Substance P release; assumed 90 %"),
    Parameter("sp_signal_half", 0.3, "1", "fitted: 10 mg IV morphine gives roughly half-maximal relief of a "
              "moderate experimental pain (equianalgesic tables)"),
    Parameter("sp_signal_hill", 1.5, "1", "assumed: moderately steep (clinical concentration-effect curves of "
              "opioids are steep, Stanski & Hug 1982)"),
    Parameter("sp_time_constant", 1.0, "min", "assumed: Substance P release and clearance within a minute"),
    Parameter("pain_scale", 10.0, "1", "scale definition: numeric rating scale 0-10"),
    Parameter("hyperalgesia_gain", 0.3, "1", "assumed: spinal adenylyl-cyclase superactivation parallels the LC's "
              "and raises Substance P release, so pain rises in withdrawal and with long use (opioid-induced "
              "hyperalgesia, Angst MS & Clark JD 2006 Anesthesiology 104:570)"),
)


class PainModule(Module):
    name = "pain"
    states = (State("substance_p_release", "1", 1.0, "dorsal-horn Substance P release, fraction of unopposed"),)
    parameters = PARAMETERS
    inputs = ("mor_signal_dorsal_horn", "ac_superactivation")
    provides = ("substance_p", "pain")

    def outputs(self, y, u, p):
        sp = y["substance_p_release"]
        return {"substance_p": sp, "pain": jnp.clip(p["pain_scale"] * p["pain_stimulus"] * sp, 0.0, p["pain_scale"])}

    def rates(self, t, y, u, p):
        target = (1.0 - p["sp_max_inhibition"] * hill(u["mor_signal_dorsal_horn"], p["sp_signal_half"],
                                                      p["sp_signal_hill"])) * (
            1.0 + p["hyperalgesia_gain"] * u["ac_superactivation"])
        return {"substance_p_release": (target - y["substance_p_release"]) / p["sp_time_constant"]}
