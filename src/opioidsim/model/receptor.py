"""Mu-opioid receptor: several ligands compete for one receptor pool in each region.

For ligand i at free effect-site concentration L_i (Mann et al. 2022, Suppl. eq. 1, extended to
competition for a shared free-receptor fraction):

    dB_i/dt = koff_i · ( (L_i / Kd_i)^n_i · R_free − B_i ),   R_free = 1 − Σ_j B_j

which is kon·L^n·R − koff·B with kon = koff / Kd^n. Occupancy is Σ B_i; the activation signal is
the efficacy-weighted occupancy Σ ε_i B_i (ε = 1 full agonist, 0 antagonist, in between a partial
agonist), so a partial agonist has a ceiling and an antagonist occupies without signalling.

L_i = brain partition × effect-site concentration (plasma-equivalent) converted to nM. Mann 2022
drove in-vitro binding kinetics with the plasma-equivalent effect-site concentration directly for
fentanyl and naloxone (partition 1); morphine-type ligands, whose in-vitro affinity is similar
but whose clinical potency per plasma concentration is far lower (slow, P-gp-limited brain entry;
lower intrinsic efficacy), get a brain partition < 1 fitted to clinical potency (see each source).
Regions share ligand binding constants; they differ downstream in how the signal is transduced.
"""
from __future__ import annotations

from ..params import Parameter
from .base import Module, State, safe_pow
from .pk import MW
from .tolerance import REGIONS as TOLERANT_REGIONS  # the three below and the locus coeruleus

REGIONS = ("vta", "dorsal_horn", "brainstem")  # regions with bound-receptor states of their own

MANN_S2 = "Mann J et al. 2022 Clin Pharmacol Ther 112:1020, Suppl. Table S2 (C6-hMOR binding kinetics)"
VOLPE = "Volpe DA et al. 2011 Regul Toxicol Pharmacol 59:385 (uniform MOR Ki panel)"


class Ligand:
    """Parameter names of one ligand (explicit, not built from strings at run time)."""

    def __init__(self, drug: str, effect_input: str, kd: str, koff: str, hill: str, efficacy: str, partition: str):
        self.drug, self.effect_input = drug, effect_input
        self.kd, self.koff, self.hill, self.efficacy, self.partition = kd, koff, hill, efficacy, partition


LIGANDS = (
    Ligand("heroin", "brain_heroin", "heroin_mor_kd", "heroin_mor_koff", "heroin_mor_hill", "heroin_efficacy",
           "heroin_brain_partition"),
    Ligand("6mam", "brain_6mam", "sixmam_mor_kd", "sixmam_mor_koff", "sixmam_mor_hill", "sixmam_efficacy",
           "sixmam_brain_partition"),
    Ligand("morphine", "brain_morphine", "morphine_mor_kd", "morphine_mor_koff", "morphine_mor_hill",
           "morphine_efficacy", "morphine_brain_partition"),
    Ligand("fentanyl", "brain_fentanyl", "fentanyl_mor_kd", "fentanyl_mor_koff", "fentanyl_mor_hill",
           "fentanyl_efficacy", "fentanyl_brain_partition"),
    Ligand("methadone", "brain_methadone", "methadone_mor_kd", "methadone_mor_koff", "methadone_mor_hill",
           "methadone_efficacy", "methadone_brain_partition"),
    Ligand("buprenorphine", "brain_buprenorphine", "buprenorphine_mor_kd", "buprenorphine_mor_koff",
           "buprenorphine_mor_hill", "buprenorphine_efficacy", "buprenorphine_brain_partition"),
    Ligand("naloxone", "brain_naloxone", "naloxone_mor_kd", "naloxone_mor_koff", "naloxone_mor_hill",
           "naloxone_efficacy", "naloxone_brain_partition"),
    Ligand("naltrexone", "brain_naltrexone", "naltrexone_mor_kd", "naltrexone_mor_koff", "naltrexone_mor_hill",
           "naltrexone_efficacy", "naltrexone_brain_partition"),
    Ligand("naltrexol", "brain_naltrexol", "naltrexol_mor_kd", "naltrexol_mor_koff", "naltrexol_mor_hill",
           "naltrexol_efficacy", "naltrexol_brain_partition"),
)

_MORPHINAN_KOFF = ("assumed: morphinan agonists dissociate within about a minute, between naloxone "
                   "(t½ 0.29 min) and fentanyl (t½ 2.7 min) in " + MANN_S2)

PARAMETERS = (
    # fentanyl and naloxone: Kd = (koff/kon)^(1/n) from Mann 2022 Table S2 (kon in pM^-n s^-1)
    Parameter("fentanyl_mor_kd", (4.33e-3 / 3.08e-5) ** (1 / 0.844) / 1000, "nM",
              MANN_S2 + ": kon 3.08e-5 pM^-n/s, koff 4.33e-3 /s, n 0.844 → Kd = (koff/kon)^(1/n)"),
    Parameter("fentanyl_mor_koff", 4.33e-3, "1/s", MANN_S2),
    Parameter("fentanyl_mor_hill", 0.844, "1", MANN_S2),
    Parameter("fentanyl_efficacy", 1.0, "1", "full agonist (Mann 2022 treats bound fentanyl as fully active)"),
    Parameter("fentanyl_brain_partition", 1.0, "1", MANN_S2 + ": binding driven by the effect-site concentration"),
    Parameter("naloxone_mor_kd", (3.96e-2 / 1.67e-4) ** (1 / 0.86) / 1000, "nM",
              MANN_S2 + ": kon 1.67e-4 pM^-n/s, koff 3.96e-2 /s, n 0.86 → Kd = (koff/kon)^(1/n)"),
    Parameter("naloxone_mor_koff", 3.96e-2, "1/s", MANN_S2),
    Parameter("naloxone_mor_hill", 0.86, "1", MANN_S2),
    Parameter("naloxone_efficacy", 0.0, "1", "neutral antagonist (no intrinsic activity at MOR)"),
    Parameter("naloxone_brain_partition", 1.0, "1", MANN_S2 + ": binding driven by the effect-site concentration"),
    # naltrexone and its metabolite 6β-naltrexol: competitive antagonists without intrinsic activity
    Parameter("naltrexone_mor_kd", 0.2, "nM", "assumed: MOR Ki of naltrexone is sub-nanomolar, ≈ 0.1-0.5 nM in "
              "binding studies (e.g. Raynor K et al. 1994 Mol Pharmacol 45:330, cloned receptors; its exact value not "
              "re-checked here); 0.2 nM is ≈ 3× "
              "below this model's naloxone Kd, as naltrexone is ≈ 2-3× more potent than naloxone in vivo "
              "(Porter SJ et al. 2002 Addict Biol 7:219: mouse hot-plate ID50 7 vs 16 µg/kg). Check: plasma "
              "naltrexone ≥ 2 ng/mL then holds ≥ 95 % of MOR, as ≥ 2 ng/mL blocked the liking of 25 mg IV "
              "heroin in Castillo F et al. 2024 J Addict Med 18:110"),
    Parameter("naltrexone_mor_koff", 3.96e-2, "1/s", "assumed as naloxone (" + MANN_S2 + "): a closely related "
              "morphinan antagonist; no kinetic data in Mann 2022"),
    Parameter("naltrexone_mor_hill", 1.0, "1", "assumed: simple mass action (Ki from competition binding)"),
    Parameter("naltrexone_efficacy", 0.0, "1", "antagonist without intrinsic activity at MOR (ReVia label: "
              "'essentially a pure opioid antagonist')", note="naltrexone is an inverse agonist where basal MOR "
              "signalling is raised (Wang D et al. 2001 J Neurochem 77:1590); not modelled"),
    Parameter("naltrexone_brain_partition", 1.0, "1", "assumed as naloxone (" + MANN_S2 + "): binding driven by "
              "the effect-site concentration of a lipophilic antagonist that crosses the blood-brain barrier freely"),
    Parameter("naltrexol_mor_kd", 0.4, "nM", "Ko MC et al. 2006 J Pharmacol Exp Ther 316:772: 6β-naltrexol binds "
              "MOR with half the affinity of naltrexone (monkey brain membranes); 2 × naltrexone_mor_kd"),
    Parameter("naltrexol_mor_koff", 3.96e-2, "1/s", "assumed as naltrexone"),
    Parameter("naltrexol_mor_hill", 1.0, "1", "assumed: simple mass action"),
    Parameter("naltrexol_efficacy", 0.0, "1", "neutral antagonist at MOR (Wang D et al. 2001 J Neurochem 77:1590; "
              "Ko 2006)"),
    Parameter("naltrexol_brain_partition", 0.2, "1",
              "derived: per dose, 6β-naltrexol is 71× (Li JX, McMahon LR & France CP 2008 Psychopharmacology, "
              "drug discrimination in monkeys) to 100× (Ko 2006: apparent pA2 6.5 vs 8.5 in monkeys) less potent "
              "an MOR antagonist in vivo than naltrexone, but a dose of it gives ≈ 7× the plasma exposure "
              "(clearance 0.5 vs 3.5 L/min, model/pk.py), so per plasma concentration it is ≈ 1/10-1/14 as "
              "potent; 1/10 with its 2× lower affinity gives 0.2 (slow, limited brain entry of the polar "
              "metabolite). With it a 50 mg tablet still holds ≈ 95 % of MOR at 24 h, and 100 mg ≈ 92 % at "
              "48 h (PET: 50 mg blocks ≈ 92-98 % of MOR within hours, Rabiner EA et al. 2011 Mol Psychiatry "
              "16:826; blockade wanes over days, Lee MC et al. 1988 J Nucl Med 29:1207)",
              note="after a 50 mg tablet the model holds 98 % of MOR at 1 h, 95 % at 24 h, 85 % at 48 h and 61 % "
              "at 72 h, near Lee 1988's blockade half-time of 72-108 h; Lee ascribed it to a slow terminal phase of "
              "plasma naltrexone (≈ 96 h) that the one-compartment naltrexone here lacks, so here 6β-naltrexol "
              "carries it. The model's heroin (no receptor reserve) needs near-complete occupancy to be blocked: "
              "25 mg IV heroin's NAc dopamine response is ≈ 40 % of its size without naltrexone 24 h after 50 mg, "
              "≈ 60 % 48 h after 100 mg and ≈ 80 % 72 h after 150 mg (label: blocked for 24, 48 and 72 h)"),
    Parameter("buprenorphine_mor_kd", 1.0 * 1000 / 467.6, "nM",
              "fitted to PET: half of MOR occupied at 1 ng/mL plasma (Greenwald MK et al. 2014 Drug Alcohol Depend "
              "144:1: withdrawal suppression needs ≤ 50 % MOR availability, reached at trough levels ≥ 1 ng/mL), "
              "which with the model's maintenance levels gives whole-brain occupancy near Greenwald MK et al. 2003 "
              "Neuropsychopharmacology 28:2000 (41, 80 and 84 % at 2, 16 and 32 mg daily, 4 h after the dose)",
              note="an apparent in-vivo constant (effect-site concentration in ng/mL of a 467.6 g/mol drug → nM); "
              "Mann 2022's in-vitro kon 4.83e-5 pM^-n/s and n 0.5 give ≈ 0.008 nM and occupy 94-98 % of MOR at "
              "every maintenance dose, far above PET at 2 mg. With it the model occupies 40, 85 and 92 % of VTA MOR 4 h after "
              "the 7th daily dose of 2, 16 and 32 mg, and 24, 72 and 83 % at the trough"),
    Parameter("buprenorphine_mor_koff", 1.37e-4, "1/s", MANN_S2 + ": slow dissociation (t½ 84 min)"),
    Parameter("buprenorphine_mor_hill", 1.0, "1", "assumed: simple mass action; the PET dose-occupancy slopes of "
              "Greenwald 2003 (whole brain and regions) correspond to Hill coefficients ≈ 0.9-1.2, not Mann "
              "2022's in-vitro 0.5"),
    Parameter("buprenorphine_efficacy", 0.5, "1", "fitted: partial agonist whose respiratory depression "
              "plateaus at ≈ 50 % of baseline ventilation (Dahan A et al. 2005 Br J Anaesth 94:825)"),
    Parameter("buprenorphine_brain_partition", 1.0, "1", MANN_S2 + ": binding driven by the effect-site "
              "concentration (its apparent affinity is fitted to PET, see buprenorphine_mor_kd)"),
    Parameter("methadone_mor_kd", 3.378, "nM", VOLPE + ": methadone Ki 3.378 nM"),
    Parameter("methadone_mor_koff", 1.2, "1/min", "assumed: as the morphinans (no kinetic data in Mann 2022)"),
    Parameter("methadone_mor_hill", 1.0, "1", "assumed: simple mass action"),
    Parameter("methadone_efficacy", 1.0, "1", "full agonist"),
    Parameter("methadone_brain_partition", 0.002, "1",
              "fitted: methadone maintenance occupies only ≈ 20-30 % of MOR at trough in PET (Kling MA et al. 2000 "
              "JPET 295:1070: [11C]carfentanil binding 19-32 % lower), so occupancy, and withdrawal, follow plasma "
              "levels as they fall (V-WD-2 onset 24-48 h). The model has no receptor reserve, so a single IV dose "
              "is less potent relative to morphine than in Gourlay GK et al. 1986 Anesthesiology 64:322 (a known "
              "limitation)"),
    # morphine-type ligands: in-vitro affinity from the Volpe panel
    Parameter("morphine_mor_kd", 1.168, "nM", VOLPE + ": morphine Ki 1.168 nM"),
    Parameter("morphine_mor_koff", 1.2, "1/min", _MORPHINAN_KOFF),
    Parameter("morphine_mor_hill", 1.0, "1", "assumed: simple mass action"),
    Parameter("morphine_efficacy", 1.0, "1", "full agonist at MOR for the purposes of this model"),
    Parameter("morphine_brain_partition", 0.01, "1",
              "fitted: 10 mg IV morphine gives about half-maximal relief of a moderate pain (V-AC-2 range), and "
              "morphine is far less potent than fentanyl per plasma concentration (Dahan 2004: morphine "
              "respiratory C50 tens of ng/mL vs fentanyl ≈ 1-2 ng/mL); reflects P-gp-limited brain entry "
              "(Kp,uu ≈ 0.3, Tunblad 2003) and lower intrinsic efficacy"),
    Parameter("sixmam_mor_kd", 1.168, "nM", "assumed equal to morphine: Selley DE et al. 2001 Biochem Pharmacol "
              "62:447 report similar MOR affinity of 6-MAM and morphine"),
    Parameter("sixmam_mor_koff", 1.2, "1/min", _MORPHINAN_KOFF),
    Parameter("sixmam_mor_hill", 1.0, "1", "assumed: simple mass action"),
    Parameter("sixmam_efficacy", 1.0, "1", "Selley 2001: 6-MAM is a full (higher-efficacy than morphine) agonist"),
    Parameter("sixmam_brain_partition", 0.015, "1",
              "fitted: IV heroin ≈ 2× as potent as IV morphine (Kaiko RF et al. 1981 N Engl J Med 304:1501) and "
              "10 mg IV heroin in a naive adult depresses breathing without apnoea; its acute effect is carried "
              "by 6-MAM, which enters the brain fast (Gottås 2013)"),
    Parameter("heroin_mor_kd", 11.7, "nM", "assumed: heroin binds MOR about 10× more weakly than morphine "
              "(Inturrisi 1984: heroin is chiefly a prodrug)"),
    Parameter("heroin_mor_koff", 1.2, "1/min", _MORPHINAN_KOFF),
    Parameter("heroin_mor_hill", 1.0, "1", "assumed: simple mass action"),
    Parameter("heroin_efficacy", 1.0, "1", "assumed full agonist"),
    Parameter("heroin_brain_partition", 0.015, "1", "assumed equal to 6-MAM (both lipophilic esters)"),
    # receptor reserve per region (transduced_signal): how much of the signal lost receptors take with them
    Parameter("mor_reserve_vta", 0.0, "1", "assumed: no reserve, the form V-D2-1/2 and V-SA-1/2/3 are fitted "
              "with (a reserve in every region, tried with desensitisation driven by the transduced signal, kept "
              "chronic signalling high and broke those fits; a refit is open)",
              bounded_fraction=True),
    Parameter("mor_reserve_dorsal_horn", 0.0, "1", "assumed: no reserve, the form V-TOL-1's 2-8-fold analgesic "
              "ED50 shift is fitted with (with a reserve, tried with desensitisation driven by the transduced signal, "
              "the fitted rates gave 1.9-fold)",
              bounded_fraction=True),
    Parameter("mor_reserve_brainstem", 1.0, "1",
              "Paronis CA & Woods JH 1997 J Pharmacol Exp Ther 282:355: after 40 weeks of daily morphine, monkeys "
              "whose antinociceptive ED50 had shifted 4.4-fold (6.4 → 28.4 mg/kg) kept their ventilatory ED50 "
              "(2.9 → 2.3 mg/kg) and were depressed as deeply by mu agonists; tolerant users die of overdose (White "
              "JM & Irvine RJ 1999 Addiction 94:961). Lost brainstem receptors must not cap the depth of "
              "depression, which a full reserve ensures",
              note="with the brainstem desensitisation of model/tolerance.py a month of daily heroin leaves a "
              "capacity ≈ 0.43, i.e. a ≈ 2.3-fold shift in occupancy odds (Algera 2021: 4.3-fold in humans): more "
              "than Paronis & Woods measured in "
              "monkeys, far less than the analgesic shift", bounded_fraction=True),
    Parameter("mor_reserve_lc", 0.0, "1", "assumed: no reserve in the locus coeruleus's path to withdrawal "
              "(model/camp.py), the form V-WD-1..3 and the buprenorphine and naltrexone withdrawal tests are fitted "
              "with; a reserve there is untested", bounded_fraction=True),
)


def transduced_signal(stimulus, capacity, reserve):
    """The signal a region transmits from its efficacy-weighted occupancy (the stimulus), given its
    signalling capacity c (1 in a naive brain; lowered by tolerance, model/tolerance.py) and its
    receptor reserve ρ ∈ [0, 1]:

        signal = c·S / (1 + ρ·(c − 1)·S)

    ρ = 0: lost receptors transmit nothing, so tolerance scales the dose-response down and caps it at
    c. ρ = 1: the spare receptors make up the loss, so for a full agonist tolerance shifts the
    dose-response to the right (signal odds = c × occupancy odds) and a large enough dose still
    reaches the naive maximum, while a partial agonist loses maximal effect (the operational model's
    receptor reserve, Black JW & Leff P 1983 Proc R Soc Lond B 220:141). With c = 1 the signal is S
    whatever ρ, so a naive brain is the same in both."""
    return capacity * stimulus / (1.0 + reserve * (capacity - 1.0) * stimulus)


def bound_state(region: str, ligand: Ligand) -> str:
    return f"mor_bound_{region}_{ligand.drug}"


class ReceptorModule(Module):
    name = "receptor"
    carries_drug = True
    states = tuple(
        # atol: 2e-5 of the receptors (assumed: far below any measurable occupancy or effect); the
        # relative error is measured against the region's occupancy, the ligands' sum, which is
        # what the signal and the free receptors see
        State(bound_state(r, lig), "1", 0.0, f"fraction of {r} MOR bound by {lig.drug}", upper=1.0, atol=2e-5,
              error_scale_with=tuple(bound_state(r, other) for other in LIGANDS if other is not lig))
        for r in REGIONS for lig in LIGANDS
    )
    parameters = PARAMETERS
    # the locus coeruleus shares the brainstem's binding but has its own tolerance and transduction
    inputs = tuple(lig.effect_input for lig in LIGANDS) + tuple(f"mor_capacity_{r}" for r in TOLERANT_REGIONS)
    provides = (tuple(f"mor_occupancy_{r}" for r in REGIONS) + tuple(f"mor_signal_{r}" for r in REGIONS)
                + tuple(f"mor_stimulus_{r}" for r in REGIONS)
                + ("mor_signal_lc",) + tuple(f"mor_activation_{r}" for r in TOLERANT_REGIONS))

    @staticmethod
    def free_ligand_nM(u, p, lig: Ligand):
        # ng/mL → nM: × 1000 / molar mass (g/mol)
        return p[lig.partition] * u[lig.effect_input] * 1000.0 / MW[lig.drug]

    def outputs(self, y, u, p):
        out = {}
        for r in REGIONS:
            out[f"mor_occupancy_{r}"] = sum(y[bound_state(r, lig)] for lig in LIGANDS)
            # the efficacy-weighted occupancy (stimulus): what the receptors sense of the agonists on
            # board, before tolerance (behaviour's satiety reads it)
            stimulus = sum(p[lig.efficacy] * y[bound_state(r, lig)] for lig in LIGANDS)
            out[f"mor_stimulus_{r}"] = stimulus
            # receptors activated, before transduction: what desensitises them (model/tolerance.py)
            out[f"mor_activation_{r}"] = u[f"mor_capacity_{r}"] * stimulus
            out[f"mor_signal_{r}"] = transduced_signal(stimulus, u[f"mor_capacity_{r}"], p[f"mor_reserve_{r}"])
        out["mor_activation_lc"] = u["mor_capacity_lc"] * out["mor_stimulus_brainstem"]
        out["mor_signal_lc"] = transduced_signal(out["mor_stimulus_brainstem"], u["mor_capacity_lc"],
                                                 p["mor_reserve_lc"])
        return out

    def rates(self, t, y, u, p):
        d = {}
        drive = {lig.drug: safe_pow(self.free_ligand_nM(u, p, lig) / p[lig.kd], p[lig.hill]) for lig in LIGANDS}
        for r in REGIONS:
            free = 1.0 - sum(y[bound_state(r, lig)] for lig in LIGANDS)
            for lig in LIGANDS:
                b = y[bound_state(r, lig)]
                d[bound_state(r, lig)] = p[lig.koff] * (drive[lig.drug] * free - b)
        return d
