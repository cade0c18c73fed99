"""Neuroinflammation: glial activation by chronic opioid exposure and by hypoxia.

Opioids activate microglia and astrocytes directly (morphine acts on glial TLR4 as well as on
MOR; Hutchinson MR et al. 2007 ScientificWorldJournal 7:98), and repeated exposure keeps them
activated: chronic morphine raises microglial and astrocytic markers in rodents (Song P & Zhao ZQ
2001 Neurosci Res 39:281), and post-mortem brains of heroin users show activated microglia
(Büttner A 2011 Neuropathol Appl Neurobiol 37:118, review). Hypoxia, from the respiratory
depression of each dose and above all from overdoses, activates glia too. Activated glia release
pro-inflammatory cytokines that damage neurons and the reward circuit and worsen mood (the seed
whitepaper; Kohno M et al. 2019 Pharmacol Biochem Behav 179:34, review of imaging).

`glial_activation` is the activated fraction of glia above the drug-naive brain (0 = resting).
It builds while the time-averaged VTA MOR signal stays up (the glutamate module's `recent_use`
reads the same signal), and resolves over weeks once the drug stops. The rates read the fast
signals (`mor_signal_vta`, `spo2`) as rate inputs and integrate them, so no average is needed.
`opioid_exposure` is the VTA MOR signal integrated over time (days at full activation): its
growth over a window is the mean signal there (opioidsim.imaging uses it to carry a steady use
pattern over years).
"""
from __future__ import annotations

from ..params import Parameter
from .base import Module, State, excess

PARAMETERS = (
    Parameter("glia_opioid_activation_rate", 0.11, "1/day", "assumed: with the time-averaged VTA MOR signal of "
              "daily use (≈ 0.2, 20 mg IV heroin three times a day) glial activation settles near 0.4 within "
              "weeks; direction from chronic morphine in rodents (Song & Zhao 2001 Neurosci Res 39:281) and "
              "post-mortem heroin users (Büttner 2011 Neuropathol Appl Neurobiol 37:118)"),
    Parameter("glia_resolution_time", 30.0, "day", "assumed: activated (primed) microglia return to rest over "
              "weeks to months of abstinence"),
    Parameter("glia_hypoxia_activation_rate", 0.03, "1/min", "assumed: ten minutes at SpO2 50 % (hypoxia "
              "severity 1) activate a quarter of the resting glia; direction from hypoxic-ischaemic microglial "
              "activation in heroin users' brains (Büttner 2011)"),
    Parameter("glia_hypoxia_spo2", 90.0, "%", "assumed: glia respond to hypoxaemia below SpO2 90 % (the clinical "
              "threshold of hypoxaemia)"),
    Parameter("hypoxia_severity_span", 40.0, "%", "scale definition: hypoxia severity 1 is an SpO2 40 points below "
              "its threshold"),
    Parameter("exposure_unit", 1.0, "day", "scale definition: opioid exposure counted in days at full activation"),
    Parameter("hypoxia_smoothing", 0.005, "1", "numerical: smooth max(x, 0) of the SpO2 deficit (half a point)"),
)


def hypoxia_severity(spo2_percent, threshold, span, smoothing):
    """How far SpO2 (readout, in %) is below `threshold` (a fraction, as % parameters are held
    internally), in units of `span`: 0 above the threshold, 1 one span below it."""
    return excess(threshold - spo2_percent / 100.0, smoothing) / span


class InflammationModule(Module):
    name = "inflammation"
    timescale = "slow"
    states = (State("glial_activation", "1", 0.0, "activated fraction of microglia and astrocytes above the "
                    "drug-naive brain", upper=1.0),
              State("opioid_exposure", "1", 0.0, "cumulative VTA MOR signal: days at full receptor activation"))
    parameters = PARAMETERS
    rate_inputs = ("mor_signal_vta", "spo2")
    provides = ("glial_activation", "opioid_exposure")

    def outputs(self, y, u, p):
        return {"glial_activation": y["glial_activation"], "opioid_exposure": y["opioid_exposure"]}

    def rates(self, t, y, u, p):
        g = y["glial_activation"]
        hypoxia = hypoxia_severity(u["spo2"], p["glia_hypoxia_spo2"], p["hypoxia_severity_span"],
                                   p["hypoxia_smoothing"])
        drive = p["glia_opioid_activation_rate"] * u["mor_signal_vta"] + p["glia_hypoxia_activation_rate"] * hypoxia
        return {"glial_activation": drive * (1.0 - g) - g / p["glia_resolution_time"],
                "opioid_exposure": u["mor_signal_vta"] / p["exposure_unit"]}
