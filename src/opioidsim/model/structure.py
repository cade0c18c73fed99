"""Brain structure: regional grey matter, white matter, hypoxic injury, toxic leukoencephalopathy.

Grey matter. Heroin users have less grey matter than matched controls in the prefrontal cortex,
anterior cingulate, temporal cortex and insula (VBM: Lyoo IK et al. 2006 Psychopharmacology
184:139; Yuan Y et al. 2009 Brain Cogn 71:223; Liu H et al. 2009 Psychiatry Clin Neurosci
63:563), in the fusiform cortex (Qiu et al. 2013, as the seed whitepaper's table cites it), and a
smaller nucleus accumbens (Seifert CL et al. 2015 Eur Arch Psychiatry Clin Neurosci 265:637): the
seed whitepaper's region table. The deficit grows with years of use (Yuan 2009; Shi H et al. 2020
Psychiatry Res Neuroimaging, doi:10.1016/j.pscychresns.2020.111150) and part of it recovers in
abstinence (in cocaine users grey matter is back to control levels after about 35 weeks:
Connolly CG et al. 2013 PLoS One 8:e59645; in heroin users deficits remain after 5 months of
abstinence: Yuan 2009). The model has two pools of loss shared by all regions, each region
taking its own share of them:

- a reversible loss (dendritic and spine retraction, glial and water changes: morphine prunes
  spines in PFC and NAc, Robinson TE & Kolb B 1999 Synapse 33:160) that builds while the drug is
  taken and recovers over months;
- a lasting loss (neurons and neuropil that do not come back) that accumulates with cumulative
  exposure and never recovers.

Both are driven by the opioid itself (the time-averaged VTA MOR signal, integrated by the rates)
and by neuroinflammation (`glial_activation`). Hypoxic injury adds its own regional pattern.
`gmv_<region>` is grey matter as a fraction of the subject's own baseline.

White matter integrity (`white_matter`, fractional anisotropy relative to the subject's baseline)
falls with years of use (DTI: Qiu Y et al. 2013 PLoS One 8:e63212, progressive with duration;
Wollman SC et al. 2015 Am J Drug Alcohol Abuse 41:133, meta-analysis), with inflammation and with
hypoxia (delayed post-hypoxic leukoencephalopathy), and recovers slowly.

Hypoxic injury (`hypoxic_injury`, 0-1: the lost fraction of hypoxia-vulnerable neurons, globus
pallidus, hippocampus and cortex; Andersen SN & Skullerud K 1999 Forensic Sci Int 102:51)
accumulates while SpO2 is deeply low (overdoses, near misses) and does not recover.

Toxic (spongiform) leukoencephalopathy is a rare, often fatal white-matter disease of people who
inhale heated heroin vapour ("chasing the dragon"; Wolters EC et al. 1982 Lancet 2:1233; 27 cases
in British Columbia 2001-2006, 48 % fatal, all had smoked heroin for 3 years or more, consistent
with a dose-response: Buxton JA et al. 2011 Harm Reduct J 8:3). The route is visible to the model
through the pharmacokinetics: heroin absorbed from the smoked-route depot (`inhaled_heroin`, mg
per minute) feeds a cumulative hazard, and `leukoencephalopathy_risk` is the probability that the
disease has developed by now. It is a risk, not a lesion: an individual's white matter is not
lowered by it.
"""
from __future__ import annotations

import jax.numpy as jnp

from ..params import Parameter
from .base import Module, State
from .inflammation import hypoxia_severity

REGIONS = ("pfc", "acc", "temporal", "insula", "nac", "fusiform")

REGION_NAMES = {"pfc": "prefrontal cortex", "acc": "anterior cingulate cortex", "temporal": "temporal cortex",
                "insula": "insular cortex", "nac": "nucleus accumbens", "fusiform": "fusiform cortex"}

_TABLE = "seed whitepaper region table"

PARAMETERS = (
    Parameter("neurotoxic_signal_reference", 0.2, "1", "scale definition: the time-averaged VTA MOR signal of daily "
              "use (20 mg IV heroin three times a day) counts as one unit of opioid exposure"),
    Parameter("neurotoxic_glia_weight", 0.5, "1", "assumed: glial activation of 1 damages half as much as a unit of "
              "direct opioid exposure (cytokine-mediated damage; Kohno M et al. 2019 Pharmacol Biochem Behav "
              "179:34)"),
    Parameter("gm_reversible_loss_rate", 1.4e-4, "1/day", "assumed: the reversible loss settles near 3 % of PFC "
              "grey matter in daily use (with glial activation ≈ 0.4, exposure ≈ 1.2 units)"),
    Parameter("gm_recovery_time", 180.0, "day", "assumed: reversible grey-matter loss recovers over months of "
              "abstinence (cocaine users back to control volumes after ≈ 35 weeks: Connolly CG et al. 2013 PLoS "
              "One 8:e59645)"),
    Parameter("gm_lasting_loss_rate", 2.3e-5, "1/day", "fitted to V-GMV-2 (assumed size): ≈ 1 % of PFC grey "
              "matter lost for good per year of daily use, so that the deficit grows with duration (Yuan Y et al. "
              "2009 Brain Cogn 71:223) and reaches ≈ 7-8 % after five years"),
    Parameter("gm_lasting_loss_max", 0.25, "1", "assumed: lasting loss saturates (no region loses more than a "
              "quarter of its grey matter to opioids alone)"),
    Parameter("gm_weight_pfc", 1.0, "1", f"scale identity: the PFC shows the largest, most replicated deficit "
              f"({_TABLE}; Yuan 2009; Lyoo IK et al. 2006 Psychopharmacology 184:139; Liu H et al. 2009 Psychiatry "
              f"Clin Neurosci 63:563)"),
    Parameter("gm_weight_acc", 1.0, "1", f"assumed: as large as in the PFC ({_TABLE}; Yuan 2009; Liu 2009)"),
    Parameter("gm_weight_temporal", 0.8, "1", f"assumed: somewhat smaller than in the PFC ({_TABLE}; Yuan 2009; "
              f"Lyoo 2006)"),
    Parameter("gm_weight_insula", 0.8, "1", f"assumed: somewhat smaller than in the PFC ({_TABLE}; Yuan 2009)"),
    Parameter("gm_weight_nac", 0.6, "1", f"assumed: smaller, one-sided in the one study (left NAc: Seifert CL et al. "
              f"2015 Eur Arch Psychiatry Clin Neurosci 265:637; {_TABLE})"),
    Parameter("gm_weight_fusiform", 0.6, "1", f"assumed: smaller, reported by fewer studies ({_TABLE}: Qiu 2013)"),
    # hypoxia
    Parameter("injury_spo2", 75.0, "%", "assumed: neurons are lost only in deep hypoxaemia (SpO2 below 75 %, the "
              "model's overdose criterion)"),
    Parameter("injury_severity_span", 25.0, "%", "scale definition: injury severity 1 at SpO2 50 %"),
    Parameter("hypoxic_injury_rate", 0.005, "1/min", "assumed: ten minutes at SpO2 50 % destroy ≈ 5 % of "
              "hypoxia-vulnerable neurons (pallidal and hippocampal lesions in heroin users: Andersen SN & "
              "Skullerud K 1999 Forensic Sci Int 102:51)"),
    Parameter("hypoxic_weight_pfc", 0.5, "1", "assumed: cortex is less vulnerable than hippocampus and pallidum "
              "(Andersen & Skullerud 1999)"),
    Parameter("hypoxic_weight_acc", 0.5, "1", "assumed: as the rest of the cortex"),
    Parameter("hypoxic_weight_temporal", 1.0, "1", "assumed: the hippocampus lies in the temporal lobe and is the "
              "most vulnerable cortex (Andersen & Skullerud 1999)"),
    Parameter("hypoxic_weight_insula", 0.5, "1", "assumed: as the rest of the cortex"),
    Parameter("hypoxic_weight_nac", 1.0, "1", "assumed: the basal ganglia (pallidum, striatum) are the classic "
              "site of hypoxic lesions in heroin users (Andersen & Skullerud 1999)"),
    Parameter("hypoxic_weight_fusiform", 0.5, "1", "assumed: as the rest of the cortex"),
    # white matter
    Parameter("wm_loss_rate", 5.1e-5, "1/day", "assumed: fractional anisotropy ≈ 4 % lower after five years of daily "
              "use, growing with duration (Qiu Y et al. 2013 PLoS One 8:e63212; Wollman SC et al. 2015 Am J Drug "
              "Alcohol Abuse 41:133)"),
    Parameter("wm_recovery_time", 730.0, "day", "assumed: white matter recovers over years (damage in the cingulum "
              "smaller after long abstinence: Wollman 2015, moderator analysis)"),
    Parameter("wm_hypoxic_weight", 0.5, "1", "assumed: hypoxic injury damages white matter half as much as the "
              "vulnerable grey matter (delayed post-hypoxic leukoencephalopathy)"),
    # toxic leukoencephalopathy from inhaled heroin
    Parameter("tle_hazard_per_mg", 5e-8, "1/mg", "assumed, order of magnitude: about 1 in 1,000 a year for a daily "
              "smoker absorbing ≈ 50 mg of heroin a day by inhalation (rare sporadic clusters: Wolters EC et al. "
              "1982 Lancet 2:1233; Buxton JA et al. 2011 Harm Reduct J 8:3, 27 cases in two cities over five "
              "years, all after 3 years or more of smoking)"),
    Parameter("structure_smoothing", 0.005, "1", "numerical: smooth max(x, 0) of the SpO2 deficit"),
)


class StructureModule(Module):
    name = "structure"
    timescale = "slow"
    states = (
        State("gm_reversible_loss", "1", 0.0, "grey-matter loss that abstinence restores (fraction of a region's "
              "baseline with weight 1)", upper=1.0),
        State("gm_lasting_loss", "1", 0.0, "grey-matter loss that does not recover", upper=1.0),
        State("wm_loss", "1", 0.0, "loss of white-matter integrity (fractional anisotropy), fraction", upper=1.0),
        State("hypoxic_injury", "1", 0.0, "lost fraction of hypoxia-vulnerable neurons", upper=1.0),
        State("tle_hazard", "1", 0.0, "cumulative hazard of toxic leukoencephalopathy from inhaled heroin"),
    )
    parameters = PARAMETERS
    rate_inputs = ("mor_signal_vta", "glial_activation", "spo2", "inhaled_heroin")
    provides = tuple(f"gmv_{r}" for r in REGIONS) + ("white_matter", "hypoxic_injury", "leukoencephalopathy_risk")

    def outputs(self, y, u, p):
        loss = y["gm_reversible_loss"] + y["gm_lasting_loss"]
        out = {f"gmv_{r}": jnp.clip(1.0 - p[f"gm_weight_{r}"] * loss - p[f"hypoxic_weight_{r}"] * y["hypoxic_injury"],
                                    0.0, 1.0) for r in REGIONS}
        out["white_matter"] = jnp.clip(1.0 - y["wm_loss"] - p["wm_hypoxic_weight"] * y["hypoxic_injury"], 0.0, 1.0)
        out["hypoxic_injury"] = y["hypoxic_injury"]
        out["leukoencephalopathy_risk"] = 1.0 - jnp.exp(-y["tle_hazard"])
        return out

    def rates(self, t, y, u, p):
        exposure = (u["mor_signal_vta"] / p["neurotoxic_signal_reference"]
                    + p["neurotoxic_glia_weight"] * u["glial_activation"])
        severity = hypoxia_severity(u["spo2"], p["injury_spo2"], p["injury_severity_span"], p["structure_smoothing"])
        lasting = y["gm_lasting_loss"]
        return {
            "gm_reversible_loss": p["gm_reversible_loss_rate"] * exposure - y["gm_reversible_loss"] / p["gm_recovery_time"],
            "gm_lasting_loss": p["gm_lasting_loss_rate"] * exposure * (1.0 - lasting / p["gm_lasting_loss_max"]),
            "wm_loss": p["wm_loss_rate"] * exposure - y["wm_loss"] / p["wm_recovery_time"],
            "hypoxic_injury": p["hypoxic_injury_rate"] * severity * (1.0 - y["hypoxic_injury"]),
            "tle_hazard": p["tle_hazard_per_mg"] * u["inhaled_heroin"],
        }
