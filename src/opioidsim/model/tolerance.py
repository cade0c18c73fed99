"""Tolerance: mu-opioid receptor regulation by the agonist signal, per region (slow; days-weeks).

Two processes, both driven by the receptors' own activation s: the functional receptors an agonist
activates, capacity × efficacy-weighted occupancy (`mor_activation_<region>`, before any receptor
reserve amplifies the cell's response: a receptor desensitises when it is itself activated):
- desensitisation (uncoupling and internalisation, lumped): d/dt = k_r·s·(1 − D) − k_res·D
- density (down-regulation against constitutive turnover):   d/dt = k_t·(R0 − R) − k_down·s·R
The signalling capacity (1 − D)·R scales the receptor signal each region transmits. Rates differ
by region: tolerance to euphoria (VTA) develops faster than to analgesia (dorsal horn), and both
faster than to respiratory depression (brainstem), which is why tolerant users still overdose
(White & Irvine 1999 Addiction 94:961; Hill R et al. 2016 Br J Pharmacol 173:2305). The locus
coeruleus binds as the brainstem does (model/receptor.py) but desensitises at its own rate, the
one its withdrawal targets were fitted with, so the respiratory rate can be fitted to humans.
OPRM1 A118G G-carriers start with fewer available receptors (Ray R et al. 2011 PNAS 108:9268).
"""
from __future__ import annotations

from ..params import Parameter
from .base import Module, State

#: the locus coeruleus shares the brainstem's binding (model/receptor.py) but not its tolerance:
#: its own rate is the one the withdrawal targets are fitted with, the respiratory network's is
#: fitted to human fentanyl data
REGIONS = ("vta", "dorsal_horn", "brainstem", "lc")
_DAY = "assumed time scale; "

PARAMETERS = (
    Parameter("desensitization_rate_vta", 2.0, "1/day", "fitted with the dorsal-horn rate (V-TOL-1): euphoria "
              "tolerance develops faster than analgesic tolerance (White & Irvine 1999)"),
    Parameter("desensitization_rate_dorsal_horn", 1.2, "1/day", "fitted: chronic opioid shifts the analgesic ED50 "
              "2-8-fold within about a week (V-TOL-1; Br J Pharmacol 2007;151:1324)"),
    Parameter("desensitization_rate_brainstem", 1.0, "1/day", "fitted to Algera MH et al. 2021 Clin Pharmacol Ther "
              "109:637: the fentanyl effect-site concentration halving isohypercapnic ventilation was 1.82 ± 0.39 ng/mL "
              "in chronic high-dose opioid users against 0.42 ± 0.07 in opioid-naive volunteers, a 4.3-fold shift; "
              "with the brainstem's full reserve the shift is 1/capacity. Raised toward it as far as breathing's "
              "tolerance stays behind analgesia's after a week (Hill R et al. 2016 Br J Pharmacol 173:2305; "
              "tests/test_chronic.py): a month of 20 mg IV heroin every 8 h leaves a capacity ≈ 0.43, a 2.3-fold "
              "shift (tests/test_overdose_after_abstinence.py), short of 4.3",
              note="short of Algera's shift because desensitisation is driven by the activated receptors, so it slows "
              "as capacity falls: a rate of 2.5/day, faster than the VTA's, still gives only 3.1-fold. Apnoea still "
              "occurred in Algera's tolerant users, at 600-1,800 µg fentanyl against 225-475 µg in naive ones"),
    Parameter("desensitization_rate_lc", 0.3, "1/day", "fitted with the locus coeruleus's cAMP (model/camp.py) to the "
              "withdrawal targets V-WD-1..3 (this rate was the brainstem's, shared with the LC, when they were fitted)"),
    Parameter("resensitization_rate", 0.2, "1/day", "assumed: tolerance is largely lost within 1-2 weeks of "
              "abstinence, the window of overdose risk after detoxification or prison release (Strang J et al. "
              "2003 BMJ 326:959; Merrall ELC et al. 2010 Addiction 105:1545)"),
    Parameter("mor_turnover_rate", 1 / 5, "1/day", "assumed: MOR protein turnover over days (receptor half-life "
              "≈ 3-5 d in cell and rodent studies)"),
    Parameter("mor_downregulation_rate", 0.1, "1/day", "assumed: chronic agonists lower MOR density only modestly "
              "(≈ 10-30 %), most tolerance being desensitisation (Williams JT et al. 2013 Pharmacol Rev 65:223)"),
    Parameter("oprm1_g_density_factor", 0.8, "1", "Ray 2011: lower MOR binding potential in A118G G-carriers; "
              "assumed 20 % fewer available receptors"),
    Parameter("oprm1_g_carrier", 0.0, "1", "genotype indicator (0/1), drawn per subject from "
              "oprm1_g_carrier_frequency; 0 for a typical subject"),
    Parameter("oprm1_g_carrier_frequency", 0.25, "1", "Bond C et al. 1998 PNAS 95:9608: A118G allele frequency "
              "≈ 0.11-0.15 in European ancestry (carriers ≈ 25 %); higher in East Asian ancestry"),
)


class ToleranceModule(Module):
    name = "tolerance"
    timescale = "slow"
    states = tuple(
        [State(f"mor_desensitized_{r}", "1", 0.0, f"fraction of {r} MOR desensitised", upper=1.0) for r in REGIONS]
        + [State(f"mor_density_{r}", "1", 1.0, f"{r} MOR density relative to a typical naive brain") for r in REGIONS]
    )
    parameters = PARAMETERS
    rate_inputs = tuple(f"mor_activation_{r}" for r in REGIONS)
    provides = tuple(f"mor_capacity_{r}" for r in REGIONS) + tuple(f"mor_density_{r}" for r in REGIONS)

    @staticmethod
    def baseline_density(p):
        return 1.0 - (1.0 - p["oprm1_g_density_factor"]) * p["oprm1_g_carrier"]

    def initial_state(self, p):
        out = {f"mor_desensitized_{r}": 0.0 for r in REGIONS}
        out.update({f"mor_density_{r}": self.baseline_density(p) for r in REGIONS})
        return out

    def outputs(self, y, u, p):
        out = {}
        for r in REGIONS:
            out[f"mor_capacity_{r}"] = (1.0 - y[f"mor_desensitized_{r}"]) * y[f"mor_density_{r}"]
            out[f"mor_density_{r}"] = y[f"mor_density_{r}"]
        return out

    def rates(self, t, y, u, p):
        rate = {r: p[f"desensitization_rate_{r}"] for r in REGIONS}
        d = {}
        for r in REGIONS:
            s = u[f"mor_activation_{r}"]
            des, dens = y[f"mor_desensitized_{r}"], y[f"mor_density_{r}"]
            d[f"mor_desensitized_{r}"] = rate[r] * s * (1.0 - des) - p["resensitization_rate"] * des
            d[f"mor_density_{r}"] = (p["mor_turnover_rate"] * (self.baseline_density(p) - dens)
                                     - p["mor_downregulation_rate"] * s * dens)
        return d
