"""The readout contract: names, units and meanings that scripts, notebooks and reports rely on.

Names follow ../shared/DESIGN.md. A readout listed here is produced by some model module; the
engine records only the readouts a scenario asks for (all of them by default).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Readout:
    name: str
    units: str
    long_name: str


_R = [
    Readout("plasma_heroin", "ng/mL", "plasma heroin (diacetylmorphine)"),
    Readout("plasma_6mam", "ng/mL", "plasma 6-monoacetylmorphine"),
    Readout("plasma_morphine", "ng/mL", "plasma morphine"),
    Readout("plasma_fentanyl", "ng/mL", "plasma fentanyl"),
    Readout("plasma_methadone", "ng/mL", "plasma methadone"),
    Readout("plasma_buprenorphine", "ng/mL", "plasma buprenorphine"),
    Readout("plasma_naloxone", "ng/mL", "plasma naloxone"),
    Readout("plasma_naltrexone", "ng/mL", "plasma naltrexone"),
    Readout("plasma_naltrexol", "ng/mL", "plasma 6β-naltrexol (naltrexone's active metabolite)"),
    Readout("brain_heroin", "ng/mL", "brain (effect-site) heroin, plasma-equivalent"),
    Readout("brain_6mam", "ng/mL", "brain (effect-site) 6-MAM, plasma-equivalent"),
    Readout("brain_morphine", "ng/mL", "brain (effect-site) morphine, plasma-equivalent"),
    Readout("brain_fentanyl", "ng/mL", "brain (effect-site) fentanyl, plasma-equivalent"),
    Readout("brain_methadone", "ng/mL", "brain (effect-site) methadone, plasma-equivalent"),
    Readout("brain_buprenorphine", "ng/mL", "brain (effect-site) buprenorphine, plasma-equivalent"),
    Readout("brain_naloxone", "ng/mL", "brain (effect-site) naloxone, plasma-equivalent"),
    Readout("brain_naltrexone", "ng/mL", "brain (effect-site) naltrexone, plasma-equivalent"),
    Readout("brain_naltrexol", "ng/mL", "brain (effect-site) 6β-naltrexol, plasma-equivalent"),
    Readout("mor_occupancy_vta", "1", "fraction of VTA mu-opioid receptors occupied (any ligand)"),
    Readout("mor_occupancy_dorsal_horn", "1", "fraction of dorsal-horn mu-opioid receptors occupied"),
    Readout("mor_occupancy_brainstem", "1", "fraction of brainstem mu-opioid receptors occupied"),
    Readout("mor_signal_vta", "1", "VTA mu-opioid receptor activation (efficacy-weighted occupancy)"),
    Readout("mor_signal_dorsal_horn", "1", "dorsal-horn mu-opioid receptor activation"),
    Readout("mor_signal_brainstem", "1", "brainstem mu-opioid receptor activation"),
    Readout("mor_signal_lc", "1", "locus coeruleus mu-opioid receptor activation (brainstem binding, "
            "own transduction; drives the cAMP pathway of withdrawal)"),
    Readout("mor_density_vta", "1", "VTA mu-opioid receptor density, relative to a typical naive brain"),
    Readout("mor_density_dorsal_horn", "1", "dorsal-horn mu-opioid receptor density, relative"),
    Readout("mor_density_brainstem", "1", "brainstem mu-opioid receptor density, relative"),
    Readout("mor_density_lc", "1", "locus coeruleus mu-opioid receptor density, relative"),
    Readout("mor_capacity_vta", "1", "VTA MOR signalling capacity (1 = naive; lower = tolerance)"),
    Readout("mor_capacity_dorsal_horn", "1", "dorsal-horn MOR signalling capacity (1 = naive)"),
    Readout("mor_capacity_brainstem", "1", "brainstem (respiratory network) MOR signalling capacity (1 = naive)"),
    Readout("mor_capacity_lc", "1", "locus coeruleus MOR signalling capacity (1 = naive; its tolerance sets "
            "withdrawal's cAMP rebound)"),
    Readout("camp_lc", "1", "locus coeruleus cAMP, relative to naive baseline"),
    Readout("noradrenaline", "1", "LC noradrenergic output, relative to naive baseline"),
    Readout("crf", "1", "amygdala CRF activity, relative to baseline"),
    Readout("negative_affect", "1", "negative affect on a 0-10 scale"),
    Readout("stress_reactivity", "1", "gain of the CRF stress response, relative to a naive subject (protracted abstinence)"),
    Readout("vta_gaba_activity", "1", "VTA GABA interneuron activity, fraction of baseline"),
    Readout("nac_dopamine", "nM", "extracellular dopamine in the nucleus accumbens"),
    Readout("d2_activation", "1", "fraction of NAc D2 receptors occupied by dopamine"),
    Readout("da_stores", "1", "releasable dopamine, relative to a naive subject"),
    Readout("d2_density", "1", "striatal D2 receptor density, relative to a typical naive brain"),
    Readout("pet_d2_bp", "1", "striatal [11C]raclopride binding potential (BPND) a PET scan would measure"),
    Readout("dat_density", "1", "striatal dopamine-transporter availability, relative to a typical naive brain"),
    Readout("natural_reward_response", "1", "D2 response to a standard natural reward, relative to the subject "
            "when drug-naive (below 1: anhedonia)"),
    Readout("hedonic_state", "1", "pleasure (+) / displeasure (-) on a -10..10 scale"),
    Readout("hedonic_set_point", "1", "hedonic level with no drug on board (allostatic set point), -10..10"),
    Readout("opponent_process", "1", "the slow opponent (b-) process, 0..10"),
    Readout("reward_threshold", "%", "brain-reward (ICSS) threshold now, drug on board included, % of the subject's naive threshold"),
    Readout("substance_p", "1", "dorsal-horn Substance P release, fraction of unopposed release"),
    Readout("pain", "1", "perceived pain on a 0-10 numeric rating scale"),
    Readout("ventilation", "L/min", "minute ventilation"),
    Readout("paco2", "mmHg", "arterial CO2 partial pressure"),
    Readout("pao2", "mmHg", "arterial O2 partial pressure"),
    Readout("spo2", "%", "arterial oxygen saturation"),
    Readout("overdose", "1", "life-threatening opioid toxicity: apnoea, SpO2 below 75 % or cardiac arrest (0/1)"),
    Readout("cows", "1", "Clinical Opiate Withdrawal Scale score, 0-48 (Wesson & Ling 2003)"),
    Readout("cardiac_arrest", "1", "hypoxic cardiac-arrest criterion met (0/1), latched"),
    Readout("glt1", "1", "NAc core GLT-1 glutamate transport, relative to the drug-naive brain"),
    Readout("nac_glutamate", "1", "NAc core extrasynaptic glutamate spillover at rest, relative to naive "
            "(synaptic release over GLT-1 uptake)"),
    Readout("cue_memory", "1", "strength of the drug-cue association, 0-1"),
    Readout("cue_incubation", "1", "abstinence-dependent potentiation of the cue → NAc glutamate pathway "
            "(incubation of craving), 0-1"),
    Readout("cue_glutamate", "1", "NAc core extrasynaptic glutamate a drug cue would evoke now, relative to the "
            "naive resting level"),
    Readout("cue_craving", "1", "craving a drug cue would evoke now, 0-10 VAS (a cue-reactivity test)"),
    Readout("craving", "1", "background craving without a cue, 0-10 VAS"),
    Readout("opioid_exposure", "day", "cumulative VTA MOR signal: days at full receptor activation"),
    Readout("glial_activation", "1", "activated fraction of microglia and astrocytes above the drug-naive brain, 0-1"),
    Readout("gmv_pfc", "1", "prefrontal grey matter, fraction of the subject's own baseline"),
    Readout("gmv_acc", "1", "anterior cingulate grey matter, fraction of the subject's own baseline"),
    Readout("gmv_temporal", "1", "temporal cortex grey matter, fraction of the subject's own baseline"),
    Readout("gmv_insula", "1", "insular grey matter, fraction of the subject's own baseline"),
    Readout("gmv_nac", "1", "nucleus accumbens volume, fraction of the subject's own baseline"),
    Readout("gmv_fusiform", "1", "fusiform cortex grey matter, fraction of the subject's own baseline"),
    Readout("white_matter", "1", "white-matter integrity (fractional anisotropy), fraction of the subject's own baseline"),
    Readout("hypoxic_injury", "1", "lost fraction of hypoxia-vulnerable neurons (pallidum, hippocampus, cortex), 0-1"),
    Readout("leukoencephalopathy_risk", "1", "probability that toxic leukoencephalopathy from inhaled heroin has "
            "developed by now, 0-1"),
    Readout("executive", "1", "executive function, fraction of the subject's drug-naive level"),
    Readout("memory", "1", "working memory, mean of its verbal and spatial domains, fraction of the subject's "
            "drug-naive level"),
    Readout("memory_verbal", "1", "verbal working memory (digit span, letter-number sequencing), fraction of the "
            "subject's drug-naive level"),
    Readout("memory_spatial", "1", "spatial working memory (spatial span, CANTAB SWM), fraction of the subject's "
            "drug-naive level"),
    Readout("attention", "1", "sustained attention, fraction of the subject's drug-naive level"),
    Readout("pfc_control", "1", "prefrontal top-down control of choice, 0-1 (1 = intact)"),
    Readout("fmri_cue_nac", "%", "drug-cue minus neutral-cue BOLD contrast in the nucleus accumbens (% signal change)"),
    Readout("vbm_pfc", "%", "prefrontal grey matter a VBM scan would report, % difference from a typical matched control"),
    Readout("vbm_acc", "%", "anterior cingulate grey matter (VBM), % difference from a typical matched control"),
    Readout("vbm_temporal", "%", "temporal grey matter (VBM), % difference from a typical matched control"),
    Readout("vbm_insula", "%", "insular grey matter (VBM), % difference from a typical matched control"),
    Readout("vbm_nac", "%", "nucleus accumbens volume (segmentation), % difference from a typical matched control"),
    Readout("vbm_fusiform", "%", "fusiform grey matter (VBM), % difference from a typical matched control"),
]

READOUTS: dict[str, Readout] = {r.name: r for r in _R}
