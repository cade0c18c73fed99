"""VTA → nucleus accumbens dopamine: the seeds' steps 2-4, and its slow adaptation.

Acute: MOR on VTA GABA interneurons inhibits them; the dopamine neurons they restrain are
disinhibited (Johnson & North 1992 J Neurosci 12:483). Dopamine-neuron firing follows its drive
with a short network time constant; NAc extracellular dopamine is in quasi-steady state between
release (∝ firing × releasable stores) and DAT uptake, which clears it in well under a second.

Within-system dependence: chronic MOR inhibition of the GABA terminals up-regulates their cAMP
pathway, so GABA release onto dopamine neurons recovers despite the drug; when the agonist falls
— it wanes, or an antagonist strips it — GABA release overshoots and dopamine-neuron firing and
NAc dopamine fall below normal (Bonci A & Williams JT 1997 J Neurosci 17:796; Pothos E et al.
1991 Brain Res 566:348; Rossetti ZL et al. 1992 Eur J Pharmacol 221:227). That dip is the
within-system part of withdrawal dysphoria (Koob GF & Le Moal M 2008 Annu Rev Psychol 59:29).
GABA release above normal inhibits firing as 1/(1 + g·(GABA − 1)), the continuation with the same
slope g of the disinhibition line 1 + g·(1 − GABA) below normal.

Chronic: repeated surges deplete releasable dopamine (recovering with synthesis over weeks) and
down-regulate D2 receptors (recovering over months); D2 signalling = density × occupancy by
dopamine. DRD2 Taq1A A1 carriers start with fewer D2 receptors. Together these make the blunted
response and the anhedonia of chronic use and early abstinence (Volkow ND et al. 2004 Mol
Psychiatry 9:557; Wang GJ et al. 1997 Neuropsychopharmacology 16:174). Dopamine-transporter
availability falls too (Kamp F et al. 2019 Neuropsychopharmacology 44:660). DAT loss is read as
loss of transporter at the terminals: release and uptake scale together there, so the
extracellular level it leaves is unchanged and DAT is a readout, not a feedback.

`natural_reward_response` is how much D2 signalling a standard natural reward (dopamine firing
up by half, as for food in a hungry animal; Schultz W 1998 J Neurophysiol 80:1) still produces,
relative to the subject's drug-naive brain: the anhedonia of chronic use and early abstinence.
Adolescent onset (model/development.py) slows the recovery of D2 receptors.
"""
from __future__ import annotations

import jax.numpy as jnp

from ..params import Parameter
from .base import Module, State, excess, hill, relax

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
    # slow adaptation
    Parameter("gaba_camp_share", 1.0, "1", "assumed: the GABA-terminal cAMP up-regulation fully restores the "
              "release the drug inhibits on average, as assumed for the LC cyclase; GABA release is clearly raised "
              "in withdrawal (Bonci A & Williams JT 1997 J Neurosci 17:796). With intermittent doses the average "
              "inhibition is small, so surges are blunted only modestly, in line with an undiminished dopamine "
              "surge to morphine after a week of daily doses (Pothos E et al. 1991 Brain Res 566:348)"),
    Parameter("gaba_camp_upregulation_time", 4.0, "day", "assumed: as the LC cyclase (Nestler EJ & Tallman JF "
              "1988 Mol Pharmacol 33:127); Bonci & Williams 1997 saw it after 6-7 days of morphine"),
    Parameter("gaba_camp_recovery_time", 1.5, "day", "assumed: as the LC cyclase; NAc dopamine stays below "
              "normal for days of withdrawal (Acquas E & Di Chiara G 1992 J Neurochem 58:1620)"),
    Parameter("da_store_recovery_time", 21.0, "day", "assumed: releasable dopamine recovers with synthesis over "
              "weeks of abstinence"),
    Parameter("da_store_depletion_rate", 0.03, "1/day", "assumed: each unit of excess firing depletes releasable "
              "stores; with daily heroin use stores settle ≈ 20-30 % below normal"),
    Parameter("d2_recovery_time", 90.0, "day", "assumed: striatal D2 availability recovers over months of "
              "abstinence (Volkow ND et al. 2001 Am J Psychiatry 158:2015, methamphetamine; seeds)"),
    Parameter("d2_downregulation_rate", 0.08, "1/day", "fitted: D2 availability ≈ 18 % lower in opioid-dependent "
              "people after years of use (V-D2-1, Wang 1997)"),
    Parameter("d2_between_subject", 1.0, "1", "typical relative D2 density; between-subject spread of striatal "
              "D2 availability", cv=0.14,
              cv_source="Volkow ND et al. 1996 and Farde L et al. 1995: striatal D2 BP CV ≈ 10-15 % in controls; the "
              "upper end, as a scan's BP also carries test-retest variability (≈ 5-10 %)"),
    Parameter("drd2_a1_density_factor", 0.85, "1", "Pohjalainen T et al. 1998 Mol Psychiatry 3:256: ≈ 15 % lower "
              "striatal D2 availability in Taq1A A1 carriers"),
    Parameter("drd2_a1_carrier", 0.0, "1", "genotype indicator (0/1), drawn per subject from "
              "drd2_a1_carrier_frequency; 0 for a typical subject"),
    Parameter("drd2_a1_carrier_frequency", 0.33, "1", "Noble EP 2003 Am J Med Genet B 116:103: A1 allele "
              "frequency ≈ 0.18-0.20 in European ancestry (carriers ≈ 1/3)"),
    Parameter("pet_bp_baseline", 3.0, "1", "striatal [11C]raclopride BPND ≈ 3 in healthy adults (Volkow ND et "
              "al. 1996 Synapse)"),
    Parameter("raclopride_da_kd", 20.0, "nM", "assumed: endogenous dopamine competing with raclopride "
              "(Laruelle M 2000 J Cereb Blood Flow Metab 20:423)"),
    Parameter("dat_downregulation_rate", 0.04, "1/day", "fitted to V-D2-2: striatal DAT availability in "
              "opioid users lower with Hedges g ≈ 1.55 (Kamp F et al. 2019 Neuropsychopharmacology 44:660)"),
    Parameter("dat_recovery_time", 180.0, "day", "assumed: DAT deficits persist for months of abstinence "
              "(Shi J et al. 2008 PLoS One 3:e3454: lower DAT in abstinent heroin users)"),
    Parameter("dat_between_subject", 1.0, "1", "typical relative DAT density; between-subject spread of "
              "striatal DAT availability", cv=0.1,
              cv_source="van Dyck CH et al. 2002 J Nucl Med 43:1114: [123I]β-CIT striatal DAT ≈ 10 % CV in "
              "healthy adults of one age"),
    Parameter("natural_reward_firing", 1.5, "1", "assumed: a natural reward raises dopamine-neuron firing by "
              "about half (phasic responses, Schultz 1998 J Neurophysiol 80:1)"),
    Parameter("adolescent_d2_recovery_slowing", 1.0, "1", "assumed: D2 recovery takes twice as long after "
              "adolescent onset; direction from the prolonged deficits after adolescent exposure in rodents "
              "(Spear LP 2000 Neurosci Biobehav Rev 24:417)"),
    Parameter("da_excess_smoothing", 0.02, "1", "numerical: smooth max(x, 0)"),
)


class DopamineModule(Module):
    name = "dopamine"
    states = (
        State("gaba_camp_vta", "1", 1.0, "cAMP-pathway drive of GABA release onto VTA dopamine neurons, "
              "relative to naive (up-regulated by chronic MOR inhibition)"),
        State("da_firing", "1", 1.0, "VTA dopamine-neuron firing rate, relative to baseline"),
        State("da_stores", "1", 1.0, "releasable dopamine, relative to a naive subject"),
        State("d2_density", "1", 1.0, "striatal D2 receptor density, relative to a typical naive brain"),
        State("dat_density", "1", 1.0, "striatal dopamine-transporter density, relative to a typical naive brain"),
    )
    parameters = PARAMETERS
    inputs = ("mor_signal_vta", "adolescent_onset")
    provides = ("vta_gaba_activity", "nac_dopamine", "d2_activation", "d2_signal", "d2_signal_reference",
                "da_stores", "d2_density", "pet_d2_bp", "tonic_d2_signal", "dat_density", "natural_reward_response")

    @staticmethod
    def baseline_d2(p):
        return p["d2_between_subject"] * (1.0 - (1.0 - p["drd2_a1_density_factor"]) * p["drd2_a1_carrier"])

    def initial_state(self, p):
        return {"gaba_camp_vta": 1.0, "da_firing": 1.0, "da_stores": 1.0, "d2_density": self.baseline_d2(p),
                "dat_density": p["dat_between_subject"]}

    @staticmethod
    def _inhibition(u, p):
        return p["gaba_max_inhibition"] * hill(u["mor_signal_vta"], p["gaba_signal_half"], p["gaba_signal_hill"])

    @staticmethod
    def _firing_target(gaba, p):
        below = 1.0 + p["disinhibition_gain"] * (1.0 - gaba)
        above = 1.0 / (1.0 + p["disinhibition_gain"] * jnp.maximum(gaba - 1.0, 0.0))
        return jnp.where(gaba <= 1.0, below, above)

    def outputs(self, y, u, p):
        gaba = y["gaba_camp_vta"] * (1.0 - self._inhibition(u, p))
        da = p["da_basal_nac"] * y["da_firing"] * y["da_stores"]
        act = da / (da + p["d2_dopamine_kd"])
        tonic_da = p["da_basal_nac"] * y["da_stores"]
        act0 = p["da_basal_nac"] / (p["da_basal_nac"] + p["d2_dopamine_kd"])
        reward_da, reward_da0 = p["natural_reward_firing"] * tonic_da, p["natural_reward_firing"] * p["da_basal_nac"]
        reward_now = y["d2_density"] * (reward_da / (reward_da + p["d2_dopamine_kd"])
                                        - tonic_da / (tonic_da + p["d2_dopamine_kd"]))
        reward_naive = self.baseline_d2(p) * (reward_da0 / (reward_da0 + p["d2_dopamine_kd"]) - act0)
        # raclopride sees the receptors dopamine leaves free (Laruelle 2000)
        bp_free = y["d2_density"] / (1.0 + da / p["raclopride_da_kd"])
        bp_ref = 1.0 / (1.0 + p["da_basal_nac"] / p["raclopride_da_kd"])
        return {
            "vta_gaba_activity": gaba,
            "nac_dopamine": da,
            "d2_activation": act,
            "d2_signal": y["d2_density"] * act,
            # the subject's own drug-naive D2 signalling: pleasure is felt relative to it
            "d2_signal_reference": self.baseline_d2(p) * act0,
            "tonic_d2_signal": y["d2_density"] * tonic_da / (tonic_da + p["d2_dopamine_kd"]),
            "da_stores": y["da_stores"],
            "d2_density": y["d2_density"],
            "pet_d2_bp": p["pet_bp_baseline"] * bp_free / bp_ref,
            "dat_density": y["dat_density"],
            "natural_reward_response": reward_now / reward_naive,
        }

    def rates(self, t, y, u, p):
        inhibition = self._inhibition(u, p)
        gaba = y["gaba_camp_vta"] * (1.0 - inhibition)
        target = self._firing_target(gaba, p)
        camp_target = 1.0 + p["gaba_camp_share"] * (1.0 / (1.0 - inhibition) - 1.0)
        excess_firing = excess(y["da_firing"] - 1.0, p["da_excess_smoothing"])
        excess_da = excess(y["da_firing"] * y["da_stores"] - 1.0, p["da_excess_smoothing"])
        return {
            "gaba_camp_vta": relax(y["gaba_camp_vta"], camp_target, p["gaba_camp_upregulation_time"],
                                   p["gaba_camp_recovery_time"], p["da_excess_smoothing"]),
            "da_firing": (target - y["da_firing"]) / p["da_firing_time_constant"],
            "da_stores": ((1.0 - y["da_stores"]) / p["da_store_recovery_time"]
                          - p["da_store_depletion_rate"] * excess_firing * y["da_stores"]),
            "d2_density": ((self.baseline_d2(p) - y["d2_density"])
                           / (p["d2_recovery_time"] * (1.0 + p["adolescent_d2_recovery_slowing"] * u["adolescent_onset"]))
                           - p["d2_downregulation_rate"] * excess_da * y["d2_density"]),
            "dat_density": ((p["dat_between_subject"] - y["dat_density"]) / p["dat_recovery_time"]
                            - p["dat_downregulation_rate"] * excess_da * y["dat_density"]),
        }
