"""VTA → nucleus accumbens dopamine: the seeds' steps 2-4.

MOR on VTA GABA interneurons inhibits them; the dopamine neurons they restrain are disinhibited
(Johnson & North 1992 J Neurosci 12:483). Dopamine-neuron firing follows its drive with a short
network time constant; NAc extracellular dopamine is in quasi-steady state between release
(∝ firing) and DAT uptake, which clears dopamine in well under a second, so it is algebraic here.
D2 activation is the fraction of D2 receptors occupied by dopamine.
"""
from __future__ import annotations

from ..params import Parameter
from .base import Module, State, hill

PARAMETERS = (
    Parameter("gaba_max_inhibition", 0.9, "1", "assumed: MOR agonists silence most VTA GABA-neuron firing "
              "(Johnson & North 1992 J Neurosci 12:483)"),
    Parameter("gaba_signal_half", 0.5, "1", "fitted: IV heroin raises NAc dopamine by ≈ 100-200 % at its peak "
              "and the surge subsides within hours (Di Chiara & Imperato 1988 PNAS 85:5274; Hemby SE et al. "
              "1995 JPET 273:591; V-AC-1)"),
    Parameter("gaba_signal_hill", 2.0, "1", "fitted with gaba_signal_half (V-AC-1)"),
    Parameter("disinhibition_gain", 2.5, "1", "fitted with gaba_signal_half: maximal DA-neuron firing ≈ 3.3× "
              "baseline under full disinhibition (rat VTA burst firing, Johnson & North 1992)"),
    Parameter("da_firing_time_constant", 1.0, "min", "assumed: seconds-to-a-minute network response; places "
              "the dopamine peak after the receptor-occupancy peak as in microdialysis"),
    Parameter("da_basal_nac", 5.0, "nM", "Parsons LH & Justice JB 1992 J Neurochem 58:212: NAc extracellular "
              "dopamine ≈ 4-5 nM by no-net-flux microdialysis", cv=0.2,
              cv_source="assumed: 20 % CV between individuals"),
    Parameter("d2_dopamine_kd", 10.0, "nM", "Richfield EK et al. 1989 Neuroscience 30:767: dopamine affinity "
              "for the high-affinity D2 state ≈ 10 nM"),
)


class DopamineModule(Module):
    name = "dopamine"
    states = (State("da_firing", "1", 1.0, "VTA dopamine-neuron firing rate, relative to baseline"),)
    parameters = PARAMETERS
    inputs = ("mor_signal_vta",)
    provides = ("vta_gaba_activity", "nac_dopamine", "d2_activation", "d2_activation_baseline")

    def outputs(self, y, u, p):
        gaba = 1.0 - p["gaba_max_inhibition"] * hill(u["mor_signal_vta"], p["gaba_signal_half"], p["gaba_signal_hill"])
        da = p["da_basal_nac"] * y["da_firing"]
        return {
            "vta_gaba_activity": gaba,
            "nac_dopamine": da,
            "d2_activation": da / (da + p["d2_dopamine_kd"]),
            "d2_activation_baseline": p["da_basal_nac"] / (p["da_basal_nac"] + p["d2_dopamine_kd"]),
        }

    def rates(self, t, y, u, p):
        gaba = self.outputs(y, u, p)["vta_gaba_activity"]
        target = 1.0 + p["disinhibition_gain"] * (1.0 - gaba)
        return {"da_firing": (target - y["da_firing"]) / p["da_firing_time_constant"]}
