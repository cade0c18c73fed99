"""Dependence: MOR → Gi → adenylyl cyclase → cAMP in the locus coeruleus (slow superactivation).

Acutely, MOR activation inhibits adenylyl cyclase and LC firing falls. Under chronic activation the
cyclase pathway is up-regulated until cAMP is back near normal despite the drug (Nestler EJ &
Aghajanian GK 1997 Science 278:58). When the agonist falls — it wanes, or an antagonist displaces
it — the up-regulated cyclase is unmasked: cAMP and LC noradrenaline overshoot, driving the
physiological signs of withdrawal, which subside as the cyclase returns to normal over days.
cAMP is algebraic (it follows the signal within minutes); the cyclase level is the slow state.
The LC, a pontine nucleus, shares the brainstem's receptor binding and tolerance but has its own
transduction (`mor_signal_lc`, model/receptor.py).

The up-regulation has two parts. A fast one (cyclase and PKA protein, days) restores cAMP and falls
back to normal within days once the agonist is gone. A slow, transcriptional one (CREB-driven
AC8/PKA expression: Lane-Ladd SB et al. 1997 J Neurosci 17:7890; Zachariou V et al. 2008 PNAS
105:13937) builds over weeks to months of exposure and outlasts the fast one: the fast part only
adds to it (it never pushes activity below normal to cancel it), so after long use the overshoot
has a slow tail. Longer use therefore gives longer withdrawal, as clinicians report.
"""
from __future__ import annotations

from ..params import Parameter
from .base import Module, State, excess, hill, relax

PARAMETERS = (
    Parameter("lc_camp_max_inhibition", 0.8, "1", "assumed: full agonists suppress most LC firing (Aghajanian GK "
              "1978 Nature 276:186); sets the size of the withdrawal overshoot"),
    Parameter("lc_camp_signal_half", 0.3, "1", "assumed: half-maximal inhibition at moderate receptor activation"),
    Parameter("lc_camp_signal_hill", 1.0, "1", "assumed"),
    Parameter("ac_upregulation_time", 4.0, "day", "Nestler EJ & Tallman JF 1988 Mol Pharmacol 33:127: LC adenylyl "
              "cyclase up-regulation builds over ~5 days of chronic morphine"),
    Parameter("ac_recovery_time", 1.5, "day", "fitted: the acute withdrawal phase is over within 5-10 days after the "
              "last heroin dose (V-WD-1; WHO 2009 guideline)"),
    Parameter("ac_transcriptional_share", 0.3, "1", "fitted to V-WD-2 (methadone withdrawal lasts ≥ 14 days "
              "after months of maintenance while heroin withdrawal after a month of use is over in 5-10 days): "
              "share of the full compensation carried by the slow, transcriptional part"),
    Parameter("ac_transcriptional_buildup_time", 120.0, "day", "assumed: transcriptional adaptation "
              "accumulates over months of use (withdrawal severity grows with duration of use; CREB/ΔFosB target genes, "
              "Nestler EJ 2004 Trends Pharmacol Sci 25:210)"),
    Parameter("ac_transcriptional_recovery_time", 20.0, "day", "fitted to V-WD-2: the slow tail of "
              "methadone withdrawal, weeks (WHO 2009 guideline)"),
    Parameter("crf_lc_gain", 0.6, "1", "assumed: CRF excites LC neurons (Valentino RJ & Van Bockstaele E 2008 Eur J "
              "Pharmacol 583:194); with crf_noradrenaline_gain the loop gain stays below 1 (no runaway)"),
    Parameter("ac_switch_width", 0.02, "1", "numerical: smooth switch between build-up and recovery time constants"),
)


class CampModule(Module):
    name = "camp"
    timescale = "slow"
    states = (
        State("adenylyl_cyclase_lc", "1", 1.0, "fast (protein-level) LC adenylyl-cyclase/PKA activity, relative "
              "to naive"),
        State("adenylyl_cyclase_lc_transcriptional", "1", 0.0, "slow, transcriptional up-regulation of the LC "
              "cyclase pathway, added to the fast part"),
    )
    parameters = PARAMETERS
    inputs = ("mor_signal_lc", "crf")
    provides = ("camp_lc", "noradrenaline", "ac_superactivation")

    @staticmethod
    def _inhibition(u, p):
        return p["lc_camp_max_inhibition"] * hill(u["mor_signal_lc"], p["lc_camp_signal_half"],
                                                  p["lc_camp_signal_hill"])

    @staticmethod
    def _cyclase(y):
        return y["adenylyl_cyclase_lc"] + y["adenylyl_cyclase_lc_transcriptional"]

    def outputs(self, y, u, p):
        camp = self._cyclase(y) * (1.0 - self._inhibition(u, p))
        # LC firing and noradrenaline release follow cAMP/PKA drive (Nestler & Aghajanian 1997), amplified
        # by CRF input to the LC during withdrawal; relative units
        noradrenaline = camp * (1.0 + p["crf_lc_gain"] * (u["crf"] - 1.0))
        return {"camp_lc": camp, "noradrenaline": noradrenaline, "ac_superactivation": self._cyclase(y) - 1.0}

    def rates(self, t, y, u, p):
        full = 1.0 / (1.0 - self._inhibition(u, p)) - 1.0  # the extra activity that restores cAMP to normal
        slow = y["adenylyl_cyclase_lc_transcriptional"]
        fast_target = 1.0 + excess(full - slow, p["ac_switch_width"])  # never below normal
        return {
            "adenylyl_cyclase_lc": relax(y["adenylyl_cyclase_lc"], fast_target, p["ac_upregulation_time"],
                                         p["ac_recovery_time"], p["ac_switch_width"]),
            "adenylyl_cyclase_lc_transcriptional": relax(
                slow, p["ac_transcriptional_share"] * full, p["ac_transcriptional_buildup_time"],
                p["ac_transcriptional_recovery_time"], p["ac_switch_width"]),
        }
